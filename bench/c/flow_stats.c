// C twin of examples/flow-stats.lisp: per-flow packets, bytes, first/last seen and TCP flags in
// an LRU hash map with struct keys and values. Built with clang -O2 -g -target bpf.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct flow_key {
    __u32 src;
    __u32 dst;
    __u16 sport;
    __u16 dport;
    __u8 proto;
    __u8 pad[3];
};

struct flow {
    __u64 packets;
    __u64 bytes;
    __u64 first_seen;
    __u64 last_seen;
    __u8 tcp_flags;
    __u8 pad[7];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __type(key, struct flow_key);
    __type(value, struct flow);
    __uint(max_entries, 4096);
} flows SEC(".maps");

SEC("xdp")
int flow_stats(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 38 > data_end)
        return XDP_PASS;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    void *ip = data + 14, *l4 = ip + 20;
    __u8 proto = *(__u8 *)(ip + 9);
    __u64 now = bpf_ktime_get_ns();
    __u64 size = data_end - data;
    struct flow_key key = {.src = *(__u32 *)(ip + 12), .dst = *(__u32 *)(ip + 16), .proto = proto};
    if (proto == 6 || proto == 17) {
        key.sport = bpf_ntohs(*(__u16 *)l4);
        key.dport = bpf_ntohs(*(__u16 *)(l4 + 2));
    }
    struct flow *f = bpf_map_lookup_elem(&flows, &key);
    if (f) {
        f->packets += 1;
        f->bytes += size;
        f->last_seen = now;
    } else {
        struct flow v = {.packets = 1, .bytes = size, .first_seen = now, .last_seen = now};
        bpf_map_update_elem(&flows, &key, &v, BPF_ANY);
    }
    if (proto == 6 && l4 + 20 <= data_end) {
        f = bpf_map_lookup_elem(&flows, &key);
        if (f)
            f->tcp_flags |= *(__u8 *)(l4 + 13);
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
