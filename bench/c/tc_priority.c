// C twin of examples/tc-priority.lisp: a TC classifier that drops IPv4 packets to blocked
// destinations and classes the rest by DSCP and ssh ports into skb->priority and skb->mark.
// Built with clang -O2 -g -target bpf.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __u32);
    __type(value, __u8);
    __uint(max_entries, 1024);
} blocked SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 4);
} class_stats SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&class_stats, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("tc")
int tc_priority(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;

    if (data + 34 > data_end)
        return TC_ACT_OK;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    void *ip = data + 14, *l4 = ip + 20;
    __u32 daddr = *(__u32 *)(ip + 16);
    if (bpf_map_lookup_elem(&blocked, &daddr)) {
        bump(3);
        return TC_ACT_SHOT;
    }
    int ssh = *(__u8 *)(ip + 9) == 6 && l4 + 4 <= data_end
              && (*(__u16 *)(l4 + 2) == bpf_htons(22) || *(__u16 *)l4 == bpf_htons(22));
    __u32 class = (*(__u8 *)(ip + 1) >> 2) == 46 ? 2 : ssh ? 1 : 0;
    skb->priority = class;
    skb->mark = 0x100 + class;
    bump(class);
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
