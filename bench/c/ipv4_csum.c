// C twin of bench/whistler/ipv4-csum.lisp: check the IPv4 header checksum in a loop over its ten
// 16-bit words, count good (slot 0) and bad (slot 1) headers, drop the bad ones.
// Built with clang -O2 -g -target bpf.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 2);
} csum_stats SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&csum_stats, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("xdp")
int ipv4_csum(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 34 > data_end)
        return XDP_PASS;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    __u16 *ip = data + 14;
    __u64 sum = 0;
    for (int i = 0; i < 10; i++)
        sum += ip[i];
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    if (sum == 0xffff) {
        bump(0);
        return XDP_PASS;
    }
    bump(1);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
