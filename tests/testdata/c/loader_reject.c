// Three programs sharing a counter map. Built as is, all three pass the verifier (version 1). Built with
// -DV2_BROKEN, the first two change (new verdicts) and the third reads the packet without a bounds
// check, so the verifier rejects the object's last program after the first two loaded fine.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef V2_BROKEN
#define VERDICT XDP_DROP
#else
#define VERDICT XDP_PASS
#endif

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} hits SEC(".maps");

static __always_inline void bump(void)
{
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&hits, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("xdp")
int first(struct xdp_md *ctx)
{
    bump();
    return VERDICT;
}

SEC("xdp")
int second(struct xdp_md *ctx)
{
    bump();
    return VERDICT;
}

SEC("xdp")
int unchecked_read(struct xdp_md *ctx)
{
    unsigned char *data = (void *)(long)ctx->data;
#ifndef V2_BROKEN
    if ((void *)(data + 21) > (void *)(long)ctx->data_end)
        return XDP_PASS;
#endif
    return data[20] == 6 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
