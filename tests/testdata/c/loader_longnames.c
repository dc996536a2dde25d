// Program and map names longer than the kernel's 15 characters (BPF_OBJ_NAME_LEN - 1). The two handlers
// share their first 15 characters, so only their full ELF names tell them apart.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(key_size, 4);
    __uint(value_size, 4);
    __uint(max_entries, 8);
} jump_table_of_handlers SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 3);
} protocol_statistics_counters SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&protocol_statistics_counters, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("xdp")
int dispatcher_with_a_long_name(struct xdp_md *ctx)
{
    bump(0);
    bpf_tail_call(ctx, &jump_table_of_handlers, 0);
    return XDP_PASS;
}

SEC("xdp")
int handler_with_long_name_first(struct xdp_md *ctx)
{
    bump(1);
    return XDP_DROP;
}

SEC("xdp")
int handler_with_long_name_second(struct xdp_md *ctx)
{
    bump(2);
    return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
