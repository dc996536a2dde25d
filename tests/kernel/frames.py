"""Frame builder for BPF_PROG_TEST_RUN: header fields in, wire-format bytes out.

Each function returns the bytes of one header (network byte order, built with ``struct``),
followed by ``payload`` where it takes one, so a frame reads like its layering::

    eth(ETH_IPV4) + ipv4(PROTO_TCP, tcp(dport=80))

``ipv4``/``ipv6`` fill in length fields and the IPv4 header checksum; the L4 checksums are
left 0 (nothing under test reads them as checksums). Defaults are fixed, documented values so
tests can derive expected accessor results from them.
"""

from __future__ import annotations

import socket
import struct

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
ETH_IPV6 = 0x86DD

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

DST_MAC = bytes.fromhex("020000000002")
SRC_MAC = bytes.fromhex("020000000001")


def eth(ethertype: int, payload: bytes = b"", dst: bytes = DST_MAC, src: bytes = SRC_MAC) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def vlan(vid: int, inner_type: int, payload: bytes = b"") -> bytes:
    """The 4 bytes after an 0x8100 EtherType: TCI (priority 0, DEI 0, vid) and the inner type."""
    return struct.pack("!HH", vid & 0x0FFF, inner_type) + payload


def checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(proto: int, payload: bytes = b"", src: str = "10.0.0.1", dst: str = "10.0.0.2",
         ttl: int = 64, tos: int = 0, ident: int = 0x1234, frag_off: int = 0x4000) -> bytes:
    """A 20-byte IPv4 header (no options) + payload; frag_off 0x4000 = Don't Fragment."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident, frag_off, ttl, proto,
                         0, socket.inet_aton(src), socket.inet_aton(dst))
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def ipv6(nexthdr: int, payload: bytes = b"", src: str = "fd00::1", dst: str = "fd00::2",
         hop_limit: int = 64, traffic_class: int = 0, flow: int = 0) -> bytes:
    ver_tc_flow = (6 << 28) | (traffic_class << 20) | (flow & 0xFFFFF)
    return (struct.pack("!IHBB", ver_tc_flow, len(payload), nexthdr, hop_limit)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + payload)


def tcp(sport: int = 40000, dport: int = 80, seq: int = 1000, ack: int = 0, flags: int = 0x02,
        window: int = 65535, urgent: int = 0, payload: bytes = b"") -> bytes:
    """A 20-byte TCP header (data offset 5 -> byte 12 = 0x50); flags default SYN."""
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, urgent) + payload


def udp(sport: int = 40000, dport: int = 53, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(icmp_type: int = 8, code: int = 0, rest: int = 0x00010001, payload: bytes = b"") -> bytes:
    """An ICMP header (echo request by default; ``rest`` = identifier << 16 | sequence)."""
    body = struct.pack("!BBHI", icmp_type, code, 0, rest) + payload
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


def arp(op: int = 1, sender_ip: str = "10.0.0.1", target_ip: str = "10.0.0.2") -> bytes:
    """An Ethernet/IPv4 ARP body (28 bytes)."""
    return (struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, op) + SRC_MAC + socket.inet_aton(sender_ip)
            + bytes(6) + socket.inet_aton(target_ip))


def pad(frame: bytes, size: int = 60) -> bytes:
    """Pad to the Ethernet minimum (60 bytes without FCS), as a NIC would deliver it."""
    return frame + bytes(max(0, size - len(frame)))


# Ready-made frames used by several tests.
def tcp_frame(**kw) -> bytes:
    return eth(ETH_IPV4, ipv4(PROTO_TCP, tcp(**kw)))


def udp_frame(**kw) -> bytes:
    return eth(ETH_IPV4, ipv4(PROTO_UDP, udp(**kw)))


def icmp_frame(**kw) -> bytes:
    return eth(ETH_IPV4, ipv4(PROTO_ICMP, icmp(**kw)))
