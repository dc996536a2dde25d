// C twin of examples/dns-events.lisp: one 12-byte record per IPv4/UDP datagram to port 53 in a
// ring buffer, with counters of records sent and lost. Built with clang -O2 -g -target bpf.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct dns_query {
    __u32 client_addr;
    __u16 client_port;
    __u16 txid;
    __u16 length;
    __u16 flags;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} queries SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 2);
} dns_stats SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&dns_stats, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("xdp")
int dns_events(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 46 > data_end)
        return XDP_PASS;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP) || *(__u8 *)(data + 23) != 17)
        return XDP_PASS;
    void *ip = data + 14, *udp = ip + 20, *dns = udp + 8;
    if (*(__u16 *)(udp + 2) != bpf_htons(53))
        return XDP_PASS;
    struct dns_query *q = bpf_ringbuf_reserve(&queries, sizeof(*q), 0);
    if (q) {
        q->client_addr = *(__u32 *)(ip + 12);
        q->client_port = bpf_ntohs(*(__u16 *)udp);
        q->txid = bpf_ntohs(*(__u16 *)dns);
        q->flags = bpf_ntohs(*(__u16 *)(dns + 2));
        q->length = bpf_ntohs(*(__u16 *)(udp + 4)) - 8;
        bpf_ringbuf_submit(q, 0);
        bump(0);
    } else {
        bump(1);
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
