// A tc (SCHED_CLS) program: inserting it into an XDP-owned prog-array must fail with an
// explanation, and must leave the array as it was.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_counter(struct __sk_buff *skb)
{
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
