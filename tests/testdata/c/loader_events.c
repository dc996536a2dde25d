// Maps that carry no key or value of their own: a ring buffer (sized by max_entries alone) and a
// perf event array declared without sizes or max_entries (libbpf: 4-byte keys and values, one
// entry per possible CPU). The program reserves a ring buffer record for every frame.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
} perf_events SEC(".maps");

SEC("xdp")
int record_frames(struct xdp_md *ctx)
{
    __u32 *len = bpf_ringbuf_reserve(&events, sizeof(*len), 0);
    __u32 queue = ctx->rx_queue_index;

    if (len) {
        *len = ctx->data_end - ctx->data;
        bpf_ringbuf_submit(len, 0);
    }
    bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &queue, sizeof(queue));
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
