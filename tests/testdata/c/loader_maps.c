// Map definitions beyond the dispatcher's: an 8-byte key, map_flags and a pinning attribute, used
// from an xdp.frags program (which must be loaded with BPF_F_XDP_HAS_FRAGS).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u64);
    __type(value, __u32);
    __uint(max_entries, 16);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wide SEC(".maps");

SEC("xdp.frags")
int frags_lookup(struct xdp_md *ctx)
{
    __u64 key = 0x100000001ULL;  /* needs all 8 key bytes */
    __u32 *verdict = bpf_map_lookup_elem(&wide, &key);

    return verdict ? *verdict : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
