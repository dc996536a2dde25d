// Maps with struct keys and values, for xdp_map and the BTF value codec, and a filter that reads them:
//   blocklist   HASH      key struct flow_key {__be32 addr; __be16 port; __u8 proto} (1 byte of padding)
//   port_config ARRAY     value struct port_config: enum, bitfields, a char name and an array field
//   recent      LRU_HASH  key __u32 source address, value struct counters
//   stats       PERCPU_ARRAY of __u64
//   nets        LPM_TRIE  key struct {__u32 prefixlen; __u8 data[4];}, value enum verdict
//   nets6       LPM_TRIE  key struct {__u32 prefixlen; __u8 data[16];}, value __u32
//   jt          a prog-array (xdp_map refuses it: xdp_prog_array manages jump tables)
// xdp_filter: a source in `nets` whose verdict is DROP, or a (source, destination port, protocol) in
// `blocklist`, drops the packet; otherwise `port_config[dport % 1024]`, when enabled, gives the verdict.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum verdict { VERDICT_DROP = 1, VERDICT_PASS = 2 };

struct flow_key {
    __be32 addr;
    __be16 port;
    __u8 proto;
};

struct port_config {
    enum verdict verdict;
    __u16 rate_limit;
    __u8 enabled : 1, log : 1, level : 3;
    char name[9];
    __u32 allowed[3];
};

struct counters {
    __u64 packets;
    __u64 bytes;
};

struct ipv4_lpm_key {
    __u32 prefixlen;
    __u8 data[4];
};

struct ipv6_lpm_key {
    __u32 prefixlen;
    __u8 data[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct flow_key);
    __type(value, __u32);
    __uint(max_entries, 16);
} blocklist SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, struct port_config);
    __uint(max_entries, 1024);
} port_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __type(key, __u32);
    __type(value, struct counters);
    __uint(max_entries, 128);
} recent SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 2);
} stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __type(key, struct ipv4_lpm_key);
    __type(value, enum verdict);
    __uint(max_entries, 32);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} nets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __type(key, struct ipv6_lpm_key);
    __type(value, __u32);
    __uint(max_entries, 8);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} nets6 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(key_size, 4);
    __uint(value_size, 4);
    __uint(max_entries, 4);
} jt SEC(".maps");

static __always_inline void count(__u32 slot)
{
    __u64 *n = bpf_map_lookup_elem(&stats, &slot);

    if (n)
        *n += 1;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    __be16 *ports = data + sizeof(*eth) + sizeof(*ip);

    if ((void *)(ports + 2) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;

    struct ipv4_lpm_key net = {.prefixlen = 32};
    __builtin_memcpy(net.data, &ip->saddr, 4);
    enum verdict *by_net = bpf_map_lookup_elem(&nets, &net);
    if (by_net && *by_net == VERDICT_DROP) {
        count(1);
        return XDP_DROP;
    }

    struct flow_key flow;
    __builtin_memset(&flow, 0, sizeof(flow));
    flow.addr = ip->saddr;
    flow.port = ports[1];
    flow.proto = ip->protocol;
    if (bpf_map_lookup_elem(&blocklist, &flow)) {
        count(1);
        return XDP_DROP;
    }

    struct counters fresh = {.packets = 1, .bytes = data_end - data};
    struct counters *seen = bpf_map_lookup_elem(&recent, &ip->saddr);
    if (seen) {
        seen->packets += 1;
        seen->bytes += data_end - data;
    } else {
        bpf_map_update_elem(&recent, &ip->saddr, &fresh, BPF_ANY);
    }

    __u32 slot = bpf_ntohs(ports[1]) % 1024;
    struct port_config *config = bpf_map_lookup_elem(&port_config, &slot);
    if (config && config->enabled) {
        count(config->verdict == VERDICT_DROP);
        return config->verdict;
    }
    count(0);
    return XDP_PASS;
}

SEC("xdp")
int xdp_unused(struct xdp_md *ctx)
{
    bpf_tail_call(ctx, &jt, 0);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
