// Objects the loader must refuse with a clear message; exactly one CASE_* is defined per build.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef CASE_LEGACY_MAPS
struct legacy_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct legacy_def legacy SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0 };
#endif

#ifdef CASE_GLOBAL_VAR
volatile int hits;
#define TOUCH() (hits++)
#else
#define TOUCH() 0
#endif

#ifdef CASE_SUBPROG
__attribute__((noinline)) int helper(int x) { return x + 1; }
#define VERDICT helper(1)
#else
#define VERDICT XDP_PASS
#endif

#ifdef CASE_BAD_SECTION
#define PROG_SEC "socket"
#else
#define PROG_SEC "xdp"
#endif

SEC(PROG_SEC)
int prog(struct xdp_md *ctx)
{
    TOUCH();
    return VERDICT;
}

char LICENSE[] SEC("license") = "GPL";
