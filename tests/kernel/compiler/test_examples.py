"""The example programs under examples/ compile, load with bpftool and do what their header
comments say, checked with crafted frames through BPF_PROG_TEST_RUN.

In: examples/dns-events.lisp (ring buffer records), flow-stats.lisp (struct keys and values),
tc-priority.lisp (a TC classifier), vlan-ipv6.lisp (VLAN tags and IPv6 through defheader).
Out: pass/fail. Expected records, map entries and verdicts are derived from the frames built
here and from each program's comment, not from the compiler.
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import pytest

from tests.kernel import frames as f
from tests.kernel.harness import XDP_DROP, XDP_PASS, loaded

REPO = Path(__file__).resolve().parents[3]
TC_ACT_OK, TC_ACT_SHOT = 0, 2
SKB_SIZE, SKB_MARK, SKB_PRIORITY = 192, 8, 32  # sizeof(struct __sk_buff), offsetof mark / priority


def example(name: str, pin_dir: Path, prog_type: str = "xdp"):
    """The example compiled and loaded (a context manager, see ``harness.loaded``)."""
    return loaded((REPO / "examples" / name).read_text(), pin_dir, name, prog_type)


def addr(dotted: str) -> int:
    """An IPv4 address as a program reads it from the wire: network-order bytes, little-endian u32."""
    return int.from_bytes(socket.inet_aton(dotted), "little")


def dns_query(txid: int, flags: int, question: bytes = b"\x07example\x03com\x00\x00\x01\x00\x01") -> bytes:
    return struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0) + question


def test_dns_events_reports_each_query(pin_dir):
    queries = [(f.udp_frame(sport=5353, dport=53, payload=dns_query(0xBEEF, 0x0100)), "10.0.0.1", 5353, 0xBEEF),
               (f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(sport=40001, dport=53, payload=dns_query(7, 0x0120)),
                                         src="192.168.7.9")), "192.168.7.9", 40001, 7)]
    others = [f.udp_frame(sport=53, dport=40000, payload=dns_query(1, 0x8180)),  # an answer, not a query
              f.tcp_frame(dport=53), f.pad(f.eth(f.ETH_ARP, f.arp())),
              f.udp_frame(dport=53, payload=b"\x12\x34")[:45]]  # one byte short of txid and flags
    with example("dns-events.lisp", pin_dir) as obj:
        assert [obj.run("dns_events", frame) for frame, *_expected in queries] == [XDP_PASS, XDP_PASS]
        assert [obj.run("dns_events", frame) for frame in others] == [XDP_PASS] * len(others)
        expected = [struct.pack("<IHHHH", addr(src), sport, txid, len(dns_query(0, 0)), flags)
                    for (frame, src, sport, txid), flags in zip(queries, (0x0100, 0x0120))]
        assert obj.records("queries") == expected
        assert obj.map("dns_stats") == {0: 2, 1: 0}


def test_flow_stats_counts_per_flow(pin_dir):
    syn = f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(sport=40000, dport=443, flags=0x02), src="10.0.0.1"))
    ack = f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(sport=40000, dport=443, flags=0x10), src="10.0.0.1"))
    dns = f.udp_frame(sport=1234, dport=53)
    ping = f.icmp_frame()
    with example("flow-stats.lisp", pin_dir) as obj:
        for frame in (syn, ack, ack, dns, ping):
            assert obj.run("flow_stats", frame) == XDP_PASS
        assert obj.run("flow_stats", f.pad(f.eth(f.ETH_ARP, f.arp()))) == XDP_PASS
        flows = {json.dumps(e["formatted"]["key"], sort_keys=True): e["formatted"]["value"] for e in obj.dump("flows")}

    def key(src, sport, dport, proto):
        return json.dumps({"src": addr(src), "dst": addr("10.0.0.2"), "sport": sport, "dport": dport,
                           "proto": proto, "pad": [0, 0, 0]}, sort_keys=True)
    tcp, udp, icmp = key("10.0.0.1", 40000, 443, 6), key("10.0.0.1", 1234, 53, 17), key("10.0.0.1", 0, 0, 1)
    assert set(flows) == {tcp, udp, icmp}
    assert (flows[tcp]["packets"], flows[tcp]["bytes"], flows[tcp]["tcp_flags"]) == (3, len(syn) + 2 * len(ack), 0x12)
    assert (flows[udp]["packets"], flows[udp]["bytes"], flows[udp]["tcp_flags"]) == (1, len(dns), 0)
    assert (flows[icmp]["packets"], flows[icmp]["bytes"]) == (1, len(ping))
    for value in flows.values():
        assert 0 < value["first_seen"] <= value["last_seen"]
    assert flows[tcp]["first_seen"] < flows[tcp]["last_seen"]


def tc_frame(dst: str = "10.0.0.2", tos: int = 0, proto: int = f.PROTO_UDP, **l4) -> bytes:
    payload = f.tcp(**l4) if proto == f.PROTO_TCP else f.udp(**l4)
    return f.eth(f.ETH_IPV4, f.ipv4(proto, payload, dst=dst, tos=tos))


@pytest.mark.parametrize("frame, verdict, cls", [
    (tc_frame(tos=46 << 2), TC_ACT_OK, 2),                          # DSCP EF
    (tc_frame(proto=f.PROTO_TCP, dport=22), TC_ACT_OK, 1),          # ssh out
    (tc_frame(proto=f.PROTO_TCP, sport=22, dport=50000), TC_ACT_OK, 1),  # ssh back
    (tc_frame(proto=f.PROTO_UDP, dport=22), TC_ACT_OK, 0),          # UDP port 22 is no ssh
    (tc_frame(tos=10 << 2, proto=f.PROTO_TCP, dport=443), TC_ACT_OK, 0),
    (tc_frame(dst="10.0.0.9"), TC_ACT_SHOT, None),                  # blocked destination
    (tc_frame(dst="10.0.0.9", tos=46 << 2), TC_ACT_SHOT, None),
    (f.eth(f.ETH_IPV6, f.ipv6(f.PROTO_UDP, f.udp())), TC_ACT_OK, "untouched"),
], ids=["ef", "ssh-out", "ssh-back", "udp-22", "af11-https", "blocked", "blocked-ef", "ipv6"])
def test_tc_priority_classifies(pin_dir, frame, verdict, cls):
    with example("tc-priority.lisp", pin_dir, "tc") as obj:
        obj.set("blocked", addr("10.0.0.9"), 1)
        ctx = bytearray(SKB_SIZE)
        struct.pack_into("<I", ctx, SKB_MARK, 0xAB)  # a mark the program must replace (or leave)
        result = obj.run_full("tc_priority", frame, bytes(ctx))
        assert result.retval == verdict
        mark, priority = (struct.unpack_from("<I", result.ctx_out, off)[0] for off in (SKB_MARK, SKB_PRIORITY))
        stats = obj.map("class_stats")
        if cls == "untouched":
            assert (mark, priority) == (0xAB, 0) and stats == {0: 0, 1: 0, 2: 0, 3: 0}
        elif cls is None:
            assert mark == 0xAB and stats == {0: 0, 1: 0, 2: 0, 3: 1}
        else:
            assert (mark, priority) == (0x100 + cls, cls)
            assert stats == {k: int(k == cls) for k in range(4)}


def vlan_frame(tags: list[tuple[int, int]], inner: bytes, inner_type: int) -> bytes:
    """Ethernet with ``tags`` [(tag EtherType, vid)...], outermost first."""
    types = [t for t, _vid in tags] + [inner_type]
    body = inner
    for (_t, vid), next_type in reversed(list(zip(tags, types[1:]))):
        body = f.vlan(vid, next_type, body)
    return f.eth(types[0], body)


def test_vlan_ipv6_counts_and_filters(pin_dir):
    v6_tcp = f.ipv6(f.PROTO_TCP, f.tcp())
    v6_routing = f.ipv6(43, bytes(16))
    v4 = f.ipv4(f.PROTO_UDP, f.udp())
    cases = [
        (vlan_frame([], v6_tcp, f.ETH_IPV6), XDP_PASS),
        (vlan_frame([(f.ETH_VLAN, 100)], v6_tcp, f.ETH_IPV6), XDP_PASS),
        (vlan_frame([(0x88A8, 7), (f.ETH_VLAN, 200)], v6_routing, f.ETH_IPV6), XDP_DROP),
        (vlan_frame([(0x88A8, 300)], v4, f.ETH_IPV4), XDP_PASS),
        (vlan_frame([(f.ETH_VLAN, 100)], v4, f.ETH_IPV4), XDP_PASS),
        (vlan_frame([(f.ETH_VLAN, 100)], v6_tcp, f.ETH_IPV6)[:14 + 4 + 39], XDP_PASS),  # IPv6 header cut short
        (f.eth(f.ETH_IPV6), XDP_PASS),  # an IPv6 EtherType and nothing after it
    ]
    with example("vlan-ipv6.lisp", pin_dir) as obj:
        obj.set("v6_deny", 43, 1)
        assert [obj.run("vlan_ipv6", frame) for frame, _verdict in cases] == [verdict for _frame, verdict in cases]
        assert {k: v for k, v in obj.map("vlan_packets").items() if v} == {0: 2, 100: 3, 200: 1, 300: 1}
        assert {k: v for k, v in obj.map("v6_next").items() if v} == {6: 2, 43: 1}
