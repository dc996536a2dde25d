// Subprograms in .text, linked into the programs that reach them: a bpf_loop callback (its address
// in an ld_imm64), a static helper and a global one (bpf-to-bpf calls), a helper that calls another
// helper, and a map used from inside a subprogram. Two programs share the helpers.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 4);
} hits SEC(".maps");

struct sum { __u64 total; };

static long add_index(__u64 index, void *ctx)
{
    ((struct sum *)ctx)->total += index;
    return 0;
}

static __attribute__((noinline)) int bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&hits, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}

__attribute__((noinline)) int twice(int x)
{
    bump(1);
    return x * 2;
}

SEC("xdp")
int sum_loop(struct xdp_md *ctx)
{
    struct sum s = {0};
    bpf_loop(10, add_index, &s, 0);     /* 0 + 1 + ... + 9 = 45 */
    bump(0);
    return s.total == 45 ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int calls(struct xdp_md *ctx)
{
    bump(2);
    return twice(1) == 2 ? XDP_TX : XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
