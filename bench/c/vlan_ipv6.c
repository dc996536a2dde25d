// C twin of examples/vlan-ipv6.lisp: step over up to two VLAN tags (802.1ad outer, 802.1Q
// inner), count frames per innermost VLAN id and IPv6 packets per next header, and drop IPv6
// next headers marked in v6_deny. Built with clang -O2 -g -target bpf.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 4096);
} vlan_packets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 256);
} v6_next SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u8);
    __uint(max_entries, 256);
} v6_deny SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
    __u64 *v = bpf_map_lookup_elem(map, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("xdp")
int vlan_ipv6(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    if (data + 14 > data_end)
        return XDP_PASS;
    __u16 type = bpf_ntohs(*(__u16 *)(data + 12));
    void *l3 = data + 14;
    __u32 vid = 0;
    if ((type == 0x88a8 || type == 0x8100) && l3 + 4 <= data_end) {
        vid = bpf_ntohs(*(__u16 *)l3) & 0xfff;
        type = bpf_ntohs(*(__u16 *)(l3 + 2));
        l3 += 4;
    }
    if (type == 0x8100 && l3 + 4 <= data_end) {
        vid = bpf_ntohs(*(__u16 *)l3) & 0xfff;
        type = bpf_ntohs(*(__u16 *)(l3 + 2));
        l3 += 4;
    }
    bump(&vlan_packets, vid);
    if (type == 0x86dd && l3 + 40 <= data_end) {
        __u32 next = *(__u8 *)(l3 + 6);
        bump(&v6_next, next);
        __u8 *deny = bpf_map_lookup_elem(&v6_deny, &next);
        if (deny && *deny)
            return XDP_DROP;
    }
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
