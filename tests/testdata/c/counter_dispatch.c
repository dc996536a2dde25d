// Two versions of a dispatcher and two versions of a handler, sharing their maps, for
// atomic-replacement tests under traffic. Only IPv4/UDP packets to TEST_PORT are counted
// (so stray traffic cannot blur the numbers) and every one is passed on.
//   dispatch_v1 / dispatch_v2: count into dispatched[1] / dispatched[2], then tail-call jt[17]
//   handler_a / handler_b:     count into handled[1] / handled[2]
// A packet seen by the hook is counted by exactly one dispatcher version and, when jt[17] is
// filled, by exactly one handler version.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TEST_PORT 9999

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(key_size, 4);
    __uint(value_size, 4);
    __uint(max_entries, 32);
} jt SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 3);
} dispatched SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 3);
} handled SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
    __u64 *v = bpf_map_lookup_elem(map, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

// IPv4 (no options) carrying UDP to TEST_PORT.
static __always_inline int is_test_packet(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 14 + 20 + 8 > data_end)
        return 0;
    if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
        return 0;
    if (*(__u8 *)(data + 14) != 0x45 || *(__u8 *)(data + 14 + 9) != 17)
        return 0;
    return *(__u16 *)(data + 14 + 20 + 2) == bpf_htons(TEST_PORT);
}

static __always_inline int dispatch(struct xdp_md *ctx, __u32 version)
{
    if (!is_test_packet(ctx))
        return XDP_PASS;
    bump(&dispatched, version);
    bpf_tail_call(ctx, &jt, 17);
    return XDP_PASS;
}

SEC("xdp")
int dispatch_v1(struct xdp_md *ctx)
{
    return dispatch(ctx, 1);
}

SEC("xdp")
int dispatch_v2(struct xdp_md *ctx)
{
    return dispatch(ctx, 2);
}

SEC("xdp")
int handler_a(struct xdp_md *ctx)
{
    bump(&handled, 1);
    return XDP_PASS;
}

SEC("xdp")
int handler_b(struct xdp_md *ctx)
{
    bump(&handled, 2);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
