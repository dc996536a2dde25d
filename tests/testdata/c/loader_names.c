// A template for crafted objects: tests rewrite its names in place (tests/testdata/elfpatch.py) into
// hostile ones. The program, map and section names are over 120 characters long, so any replacement up
// to that length fits. With -DHUGE_NAMES the program name is 261 characters: too long to pin.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define X64 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define STR(x) #x
#define XSTR(x) STR(x)
#ifdef HUGE_NAMES
#define PROG_NAME XCAT(prog_, XCAT(X64, XCAT(X64, XCAT(X64, X64))))
#else
#define PROG_NAME XCAT(XCAT(prog_placeholder_, X64), _yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy)
#endif
#define MAP_NAME XCAT(XCAT(map_placeholder_, X64), _zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz)

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
} MAP_NAME SEC(".maps");

SEC("xdp/section_" XSTR(X64) "_wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww")
int PROG_NAME(struct xdp_md *ctx)
{
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&MAP_NAME, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
