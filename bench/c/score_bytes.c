// C twin of bench/whistler/score-bytes.lisp: score the first 8 bytes after the Ethernet header with
// nested tests in a loop and publish the score.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} scores SEC(".maps");

SEC("xdp")
int score_bytes(struct xdp_md *ctx)
{
    unsigned char *data = (unsigned char *)(long)ctx->data;
    unsigned char *end = (unsigned char *)(long)ctx->data_end;
    if (data + 22 > end)
        return XDP_PASS;
    __u64 score = 0;
    for (int i = 0; i < 8; i++) {
        unsigned char b = data[14 + i];
        if (b > 0x80) {
            if (b > 0xc0)
                score += 4;
            else
                score += 2;
        } else if (b > 0x40) {
            score += 1;
        }
    }
    __u32 zero = 0;
    bpf_map_update_elem(&scores, &zero, &score, BPF_ANY);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
