// A program the verifier rejects only after a long walk: its log is several times larger than the
// loader's first log buffer, so the loader must grow the buffer to return the whole log.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int long_walk(struct xdp_md *ctx)
{
    volatile __u32 acc = 0;

#pragma clang loop unroll(full)
    for (int i = 0; i < 3000; i++)
        acc += i;
    unsigned char *data = (void *)(long)ctx->data;
    return data[acc & 1];  /* no bounds check: rejected at the very end */
}

char LICENSE[] SEC("license") = "GPL";
