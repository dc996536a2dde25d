// Several section kinds in one object: plain xdp, xdp.frags, the seed's xdp/<name>, and tc.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int plain_pass(struct xdp_md *ctx) { return XDP_PASS; }

SEC("xdp")
int plain_drop(struct xdp_md *ctx) { return XDP_DROP; }

SEC("xdp.frags")
int frags_pass(struct xdp_md *ctx) { return XDP_PASS; }

SEC("xdp/tcp")
int named_pass(struct xdp_md *ctx) { return XDP_PASS; }

SEC("tc")
int tc_ok(struct __sk_buff *skb) { return TC_ACT_OK; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
