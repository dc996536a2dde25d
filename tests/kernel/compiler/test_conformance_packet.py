"""Conformance: context fields, every protocol accessor, and the with-*/parse-* macros, XDP and TC
(reference §2.14, §3), on real frames in the kernel.

Accessor expectations come from the reference's table (offset, width, byte order) applied to the
frame bytes with ``struct`` -- not from the compiler's protocol library.
"""

from __future__ import annotations

import socket
import struct

import pytest

from tests.kernel import frames as f
from tests.kernel.compiler.conformance.case import DEFAULT_FRAME, MASK32, Case, program, res, run_case, value

TCP_FRAME = DEFAULT_FRAME
UDP_FRAME = f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(sport=5353, dport=53, payload=b"abcd"), ttl=33))
ICMP_FRAME = f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_ICMP, f.icmp(icmp_type=8, code=3, rest=0x12345678)))
IPV6_FRAME = f.eth(f.ETH_IPV6, f.ipv6(f.PROTO_TCP, f.tcp(dport=22), src="fd00::1234:5678:9abc:def0",
                                      dst="2001:db8::42", hop_limit=17, traffic_class=0xB8, flow=0x12345))
ARP_FRAME = f.pad(f.eth(f.ETH_ARP, f.arp()))

# (accessor, frame, header start in the frame, field offset, struct format: "!" = ntoh*, "<" = raw)
ACCESSORS = [
    ("eth-dst-mac-hi", TCP_FRAME, 0, 0, "<I"), ("eth-dst-mac-lo", TCP_FRAME, 0, 4, "<H"),
    ("eth-src-mac-hi", TCP_FRAME, 0, 6, "<I"), ("eth-src-mac-lo", TCP_FRAME, 0, 10, "<H"),
    ("eth-type", TCP_FRAME, 0, 12, "!H"),
    ("ipv4-ver-ihl", TCP_FRAME, 14, 0, "<B"), ("ipv4-tos", TCP_FRAME, 14, 1, "<B"),
    ("ipv4-total-len", TCP_FRAME, 14, 2, "!H"), ("ipv4-id", TCP_FRAME, 14, 4, "!H"),
    ("ipv4-frag-off", TCP_FRAME, 14, 6, "!H"), ("ipv4-ttl", TCP_FRAME, 14, 8, "<B"),
    ("ipv4-protocol", TCP_FRAME, 14, 9, "<B"), ("ipv4-checksum", TCP_FRAME, 14, 10, "<H"),
    ("ipv4-src-addr", TCP_FRAME, 14, 12, "<I"), ("ipv4-dst-addr", TCP_FRAME, 14, 16, "<I"),
    ("ipv6-ver-tc-flow", IPV6_FRAME, 14, 0, "!I"), ("ipv6-payload-len", IPV6_FRAME, 14, 4, "!H"),
    ("ipv6-nexthdr", IPV6_FRAME, 14, 6, "<B"), ("ipv6-hop-limit", IPV6_FRAME, 14, 7, "<B"),
    ("ipv6-src-addr-hi", IPV6_FRAME, 14, 8, "<Q"), ("ipv6-src-addr-lo", IPV6_FRAME, 14, 16, "<Q"),
    ("ipv6-dst-addr-hi", IPV6_FRAME, 14, 24, "<Q"), ("ipv6-dst-addr-lo", IPV6_FRAME, 14, 32, "<Q"),
    ("icmp-type", ICMP_FRAME, 34, 0, "<B"), ("icmp-code", ICMP_FRAME, 34, 1, "<B"),
    ("icmp-checksum", ICMP_FRAME, 34, 2, "<H"), ("icmp-rest", ICMP_FRAME, 34, 4, "<I"),
    ("tcp-src-port", TCP_FRAME, 34, 0, "!H"), ("tcp-dst-port", TCP_FRAME, 34, 2, "!H"),
    ("tcp-seq", TCP_FRAME, 34, 4, "!I"), ("tcp-ack-seq", TCP_FRAME, 34, 8, "!I"),
    ("tcp-data-off", TCP_FRAME, 34, 12, "<B"), ("tcp-flags", TCP_FRAME, 34, 13, "<B"),
    ("tcp-window", TCP_FRAME, 34, 14, "!H"), ("tcp-checksum", TCP_FRAME, 34, 16, "<H"),
    ("tcp-urgent", TCP_FRAME, 34, 18, "!H"),
    ("udp-src-port", UDP_FRAME, 34, 0, "!H"), ("udp-dst-port", UDP_FRAME, 34, 2, "!H"),
    ("udp-length", UDP_FRAME, 34, 4, "!H"), ("udp-checksum", UDP_FRAME, 34, 6, "<H"),
]


def accessor_case(name: str, frame: bytes, base: int, off: int, fmt: str) -> Case:
    expected = struct.unpack_from(fmt, frame, base + off)[0]
    need = base + off + struct.calcsize(fmt)
    body = (f"(let ((data (xdp-data)) (data-end (xdp-data-end)))\n"
            f"    (when (> (+ data {need}) data-end) (return 999))\n"
            f"    (let ((result ({name} (+ data {base}))))\n"
            f"      (setf (getmap res 0) result)\n"
            f"      result))")
    return Case(f"accessor {name}", program(body), expected & MASK32, res(expected), frame=frame)


def frame_cases(case_id: str, body: str, expected_by_frame: dict[str, int], prog_type: str = "xdp") -> list[Case]:
    options = ":type :tc" if prog_type == "tc" else ""
    return [Case(f"{case_id} on {frame_id}", program(body, options=options), expected, res(),
                 frame=FRAMES[frame_id], prog_type=prog_type)
            for frame_id, expected in expected_by_frame.items()]


FRAMES = {
    "tcp": TCP_FRAME, "udp": UDP_FRAME, "icmp": ICMP_FRAME, "ipv6": IPV6_FRAME, "arp": ARP_FRAME,
    "eth-only": f.eth(f.ETH_IPV4), "runt-33": TCP_FRAME[:33], "tcp-53": TCP_FRAME[:53], "tcp-54": TCP_FRAME[:54],
    "udp-41": UDP_FRAME[:41], "udp-42": UDP_FRAME[:42], "big-120": f.pad(TCP_FRAME, 120),
}
PASS, OK, FELL_THROUGH = 2, 0, 77

MACRO_CASES = [
    *frame_cases("with-packet min-len 100", "(with-packet (d de :min-len 100) (- de d))",
                 {"tcp": PASS, "big-120": 120}),
    *frame_cases("with-eth", "(with-eth (d de) (eth-type d))", {"eth-only": 0x0800, "arp": 0x0806}),
    *frame_cases("with-ipv4", "(with-ipv4 (d de ip) (return (ipv4-ttl ip)))\n  77",
                 {"tcp": 61, "udp": 33, "arp": FELL_THROUGH, "ipv6": FELL_THROUGH, "runt-33": PASS}),
    *frame_cases("with-tcp", "(with-tcp (d de tcp) (return (tcp-dst-port tcp)))\n  77",
                 {"tcp": 8080, "tcp-54": 8080, "tcp-53": PASS, "udp": FELL_THROUGH, "icmp": FELL_THROUGH,
                  "arp": FELL_THROUGH}),
    *frame_cases("with-udp", "(with-udp (d de udp) (return (udp-dst-port udp)))\n  77",
                 {"udp": 53, "udp-42": 53, "udp-41": PASS, "tcp": FELL_THROUGH}),
    *frame_cases("parse-eth", "(if-let (eth (parse-eth (xdp-data) (xdp-data-end))) (eth-type eth) 77)",
                 {"tcp": 0x0800, "ipv6": 0x86DD}),
    *frame_cases("parse-ipv4", "(if-let (ip (parse-ipv4 (xdp-data) (xdp-data-end))) (ipv4-protocol ip) 77)",
                 {"tcp": 6, "udp": 17, "arp": FELL_THROUGH, "runt-33": FELL_THROUGH}),
    *frame_cases("parse-tcp", "(if-let (tcp (parse-tcp (xdp-data) (xdp-data-end))) (tcp-src-port tcp) 77)",
                 {"tcp": 0x1234, "tcp-53": FELL_THROUGH, "udp": FELL_THROUGH}),
    *frame_cases("parse-udp", "(if-let (udp (parse-udp (xdp-data) (xdp-data-end))) (udp-src-port udp) 77)",
                 {"udp": 5353, "tcp": FELL_THROUGH, "udp-41": FELL_THROUGH}),
    *frame_cases("with-tc-packet", "(with-tc-packet (d de :min-len 100) (- de d))",
                 {"tcp": OK, "big-120": 120}, "tc"),
    *frame_cases("with-tc-eth", "(with-tc-eth (d de) (eth-type d))", {"arp": 0x0806}, "tc"),
    *frame_cases("with-tc-ipv4", "(with-tc-ipv4 (d de ip) (return (ipv4-ttl ip)))\n  77",
                 {"udp": 33, "ipv6": FELL_THROUGH, "runt-33": OK}, "tc"),
    *frame_cases("with-tc-tcp", "(with-tc-tcp (d de tcp) (return (tcp-dst-port tcp)))\n  77",
                 {"tcp": 8080, "tcp-53": OK, "udp": FELL_THROUGH}, "tc"),
    *frame_cases("with-tc-udp", "(with-tc-udp (d de udp) (return (udp-dst-port udp)))\n  77",
                 {"udp": 53, "udp-41": OK, "tcp": FELL_THROUGH}, "tc"),
]

# Context fields. BPF_PROG_TEST_RUN gives XDP programs queue 0 of the loopback device of the
# caller's network namespace; TC programs see the frame as an skb with protocol = EtherType.
CTX_CASES = [
    value("ctx data and data-end", "(- (ctx data-end) (ctx data))", len(TCP_FRAME)),
    value("xdp-data and xdp-data-end", "(- (xdp-data-end) (xdp-data))", len(TCP_FRAME)),
    value("raw ctx offsets", "(- (ctx u32 4) (ctx u32 0))", len(TCP_FRAME)),
    value("ctx data-meta equals data without metadata", "(= (ctx data-meta) (ctx data))", 1),
    value("ctx ingress-ifindex is loopback", "(ctx ingress-ifindex)", socket.if_nametoindex("lo")),
    value("ctx rx-queue-index", "(ctx rx-queue-index)", 0),
    Case("tc ctx len", program("(ctx len)", options=":type :tc"), len(TCP_FRAME), res(), prog_type="tc"),
    Case("tc ctx protocol is network order", program("(ctx protocol)", options=":type :tc"),
         struct.unpack("<H", struct.pack("!H", f.ETH_IPV4))[0], res(), prog_type="tc"),
    Case("tc-data and tc-data-end", program("(- (tc-data-end) (tc-data))", options=":type :tc"),
         len(TCP_FRAME), res(), prog_type="tc"),
    Case("tc setf ctx mark", program("(setf (ctx mark) 7)\n  (+ (ctx mark) 100)", options=":type :tc"),
         107, res(), prog_type="tc"),
]

CASES = [*(accessor_case(*row) for row in ACCESSORS), *MACRO_CASES, *CTX_CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_packet(case, pin_dir):
    run_case(case, pin_dir)
