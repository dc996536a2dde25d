// C twin of bench/whistler/lpm-filter.lisp: the longest prefix of an LPM trie holding the IPv4
// source decides; its rule counts the packet and drops it when its action is 1; addresses no
// rule covers are counted in misses. Built with clang -O2 -g -target bpf.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct v4_prefix {
    __u32 prefixlen;
    __u32 addr;
};

struct rule {
    __u64 hits;
    __u32 action;
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __type(key, struct v4_prefix);
    __type(value, struct rule);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} rules SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} misses SEC(".maps");

SEC("xdp")
int lpm_filter(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 34 > data_end)
        return XDP_PASS;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    struct v4_prefix key = {.prefixlen = 32, .addr = *(__u32 *)(data + 14 + 12)};
    struct rule *r = bpf_map_lookup_elem(&rules, &key);
    if (r) {
        __sync_fetch_and_add(&r->hits, 1);
        if (r->action == 1)
            return XDP_DROP;
    } else {
        __u32 zero = 0;
        __u64 *m = bpf_map_lookup_elem(&misses, &zero);
        if (m)
            __sync_fetch_and_add(m, 1);
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
