// The bench dispatcher (bench/c/tail_call_dispatch.c) with knobs for the loader's upgrade tests:
// HANDLER_VERDICT changes the handlers' code only; STATS_ENTRIES makes proto_stats incompatible,
// JT_ENTRIES the jump table.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef HANDLER_VERDICT
#define HANDLER_VERDICT XDP_PASS
#endif
#ifndef JT_ENTRIES
#define JT_ENTRIES 256
#endif
#ifndef STATS_ENTRIES
#define STATS_ENTRIES 3
#endif

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(key_size, 4);
    __uint(value_size, 4);
    __uint(max_entries, JT_ENTRIES);
} jt SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, STATS_ENTRIES);
} proto_stats SEC(".maps");

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
    bump(0);
    bpf_tail_call(ctx, &jt, proto);
    return XDP_PASS;
}

SEC("xdp")
int tcp_handler(struct xdp_md *ctx)
{
    bump(1);
    return HANDLER_VERDICT;
}

SEC("xdp")
int udp_handler(struct xdp_md *ctx)
{
    bump(2);
    return HANDLER_VERDICT;
}

char LICENSE[] SEC("license") = "GPL";
