// C twin of bench/whistler/drop-port.lisp: drop IPv4 TCP segments to port 9999 and count them.
// Like Whistler's with-tcp: IPv4 options are not skipped (TCP assumed at offset 34).
// Built with clang -O2 -g -target bpf (see bench/compare.py).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define BLOCKED_PORT 9999

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} drop_count SEC(".maps");

SEC("xdp")
int drop_port(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 54 > data_end)
        return XDP_PASS;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    if (*(__u8 *)(data + 14 + 9) != 6)
        return XDP_PASS;
    if (*(__u16 *)(data + 34 + 2) != bpf_htons(BLOCKED_PORT))
        return XDP_PASS;
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&drop_count, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
