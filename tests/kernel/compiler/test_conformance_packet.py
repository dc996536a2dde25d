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
# Long enough (>= 54 bytes) that with-tcp's length check passes and its protocol check decides.
UDP_FRAME = f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(sport=5353, dport=53, payload=b"abcdefghijkl"), ttl=33))
ICMP_ECHO = f.icmp(icmp_type=8, code=3, rest=0x12345678, payload=b"0123456789abcdef")
ICMP_FRAME = f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_ICMP, ICMP_ECHO))
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
    "arp-33": ARP_FRAME[:33],  # the kernel refuses skbs with an IPv4 EtherType and < 20 IP bytes
    "udp-41": UDP_FRAME[:41], "udp-42": UDP_FRAME[:42], "big-120": f.pad(TCP_FRAME, 120),
    "tcp-22": f.tcp_frame(dport=22, flags=0x10), "syn": f.tcp_frame(flags=0x02), "syn-ack": f.tcp_frame(flags=0x12),
    "jumbo": f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(dport=8080, payload=bytes(1400)))),
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
                 {"udp": 33, "ipv6": FELL_THROUGH, "arp-33": OK, "arp": FELL_THROUGH}, "tc"),
    *frame_cases("with-tc-tcp", "(with-tc-tcp (d de tcp) (return (tcp-dst-port tcp)))\n  77",
                 {"tcp": 8080, "tcp-53": OK, "udp": FELL_THROUGH}, "tc"),
    *frame_cases("with-tc-udp", "(with-tc-udp (d de udp) (return (udp-dst-port udp)))\n  77",
                 {"udp": 53, "udp-41": OK, "tcp": FELL_THROUGH}, "tc"),
]

SRC_ADDR_RAW = struct.unpack("<I", socket.inet_aton("192.168.1.10"))[0]  # ipv4-src-addr is not swapped
H = "(defmap h :type :hash :key-size 4 :value-size 8 :max-entries 16)"
H2 = "(defmap h2 :type :hash :key-size 2 :value-size 4 :max-entries 16)"

# Small filters in the style of the reference's examples (drop-port, synflood).
LOGIC_CASES = [
    *frame_cases("drop port 8080", "(with-tcp (d de tcp) (when (= (tcp-dst-port tcp) 8080) (return XDP_DROP)))\n"
                 "  XDP_PASS", {"tcp": 1, "jumbo": 1, "tcp-22": PASS, "udp": PASS}),
    *frame_cases("SYN without ACK", "(with-tcp (d de tcp)\n"
                 "    (when (= (logand (tcp-flags tcp) (logior +tcp-syn+ +tcp-ack+)) +tcp-syn+) (return 7)))\n  8",
                 {"syn": 7, "syn-ack": 8, "tcp": 8}),
    *frame_cases("source address match", f"(with-ipv4 (d de ip) (when (= (ipv4-src-addr ip) #x{SRC_ADDR_RAW:X}) "
                 "(return 5)))\n  6", {"tcp": 5, "udp": 6}),
    *frame_cases("sequence number compare", "(with-tcp (d de tcp) (return (if (= (tcp-seq tcp) #x01020304) 1 0)))\n  9",
                 {"tcp": 1, "syn": 0}),
    Case("count per protocol in a hash map", program("(with-ipv4 (d de ip) (incf (getmap h (ipv4-protocol ip))))\n"
         "  XDP_PASS", H), PASS, {**res(), "h": {6: 3}}, runs=3),
    Case("count per port with a 2-byte key", program("(with-tcp (d de tcp) (incf (getmap h2 (tcp-dst-port tcp))))\n"
         "  XDP_PASS", H2), PASS, {**res(), "h2": {8080: 2}}, runs=2),
    Case("ctx reads inside a loop", program("(let ((n 0)) (dotimes (i 4) (setf n (+ n (- (ctx data-end) (ctx data))))) n)"),
         4 * len(TCP_FRAME), res()),
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

CASES = [*(accessor_case(*row) for row in ACCESSORS), *MACRO_CASES, *LOGIC_CASES, *CTX_CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_packet(case, pin_dir):
    run_case(case, pin_dir)
