// C twin of bench/whistler/sum-counters.lisp: count each packet by its length modulo 4, then add
// up the four counters in a loop of map lookups and publish the total.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 4);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} totals SEC(".maps");

SEC("xdp")
int sum_counters(struct xdp_md *ctx)
{
    __u32 key = (ctx->data_end - ctx->data) & 3;
    __u64 *count = bpf_map_lookup_elem(&counters, &key);
    if (count)
        __sync_fetch_and_add(count, 1);
    __u64 total = 0;
    for (__u32 i = 0; i < 4; i++) {
        __u32 k = i;
        __u64 *v = bpf_map_lookup_elem(&counters, &k);
        if (v && *v)
            total += *v;
    }
    __u32 zero = 0;
    bpf_map_update_elem(&totals, &zero, &total, BPF_ANY);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
