// BTF without any DATASEC: no maps, no license, no globals; two programs in one section.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int first(struct xdp_md *ctx) { return XDP_PASS; }

SEC("xdp")
int second(struct xdp_md *ctx) { return XDP_DROP; }
