// C equivalent of the seed's Whistler program (../shared/seed/xdp-tail-call-dispatch.txt):
// a dispatcher that counts IPv4 packets and tail-calls per-protocol handlers through a
// prog-array, and two handlers that count TCP / UDP. Built with clang -O2 -g -target bpf.
// All three programs sit in SEC("xdp") (libbpf 1.x does not recognise "xdp/tcp").
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(key_size, 4);
    __uint(value_size, 4);
    __uint(max_entries, 256);
} jt SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 3);
} proto_stats SEC(".maps");

#define STAT_DISPATCHED 0
#define STAT_TCP 1
#define STAT_UDP 2

static __always_inline void bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&proto_stats, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 34 > data_end)
        return XDP_PASS;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    __u32 proto = *(__u8 *)(data + 14 + 9);
    bump(STAT_DISPATCHED);
    bpf_tail_call(ctx, &jt, proto);
    return XDP_PASS;
}

SEC("xdp")
int tcp_handler(struct xdp_md *ctx)
{
    bump(STAT_TCP);
    return XDP_PASS;
}

SEC("xdp")
int udp_handler(struct xdp_md *ctx)
{
    bump(STAT_UDP);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
