// Objects the loader must refuse with a clear message; exactly one CASE_* is defined per build:
// legacy maps, globals in .bss/.data/.rodata, an extern, a BPF-to-BPF call (into .text or within
// the section), an unknown section and an unsupported pinning value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef CASE_LEGACY_MAPS
struct legacy_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct legacy_def legacy SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0 };
#endif

#ifdef CASE_GLOBAL_VAR
volatile int hits;
#define TOUCH() (hits++)
#endif

#ifdef CASE_DATA
int counter = 5;
#define TOUCH() (counter++)
#endif

#ifdef CASE_RODATA
#define TOUCH() bpf_trace_printk("n=%d", 5, 1)
#endif

#ifdef CASE_EXTERN
extern int LINUX_KERNEL_VERSION __kconfig;
#define TOUCH() (LINUX_KERNEL_VERSION)
#endif

#ifdef CASE_BAD_PINNING
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u32);
    __uint(max_entries, 1);
    __uint(pinning, 2);
} pinned SEC(".maps");
#endif

#ifdef CASE_SUBPROG
__attribute__((noinline)) int helper(int x) { return x + 1; }
#define VERDICT helper(1)
#else
#define VERDICT XDP_PASS
#endif

#ifdef CASE_CALL
SEC("xdp") __attribute__((noinline)) int leaf(struct xdp_md *ctx) { return ctx->ingress_ifindex ? XDP_PASS : XDP_DROP; }
#undef VERDICT
#define VERDICT leaf(ctx)
#endif

#ifndef TOUCH
#define TOUCH() 0
#endif

#ifdef CASE_BAD_SECTION
#define PROG_SEC "socket"
#else
#define PROG_SEC "xdp"
#endif

SEC(PROG_SEC)
int prog(struct xdp_md *ctx)
{
    if (TOUCH() == 12345)
        return XDP_DROP;
    return VERDICT;
}

char LICENSE[] SEC("license") = "GPL";
