"""The frame builder for packet tests: descriptions and hex in, exact bytes out, located errors for the rest.

Checksums are checked the way a receiver checks them (the one's-complement sum over the header, or the
pseudo header plus segment, including the checksum field, is 0xffff), independently of how they were made."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.packet import (
    VERDICTS,
    FrameError,
    frame_bytes,
)
from hypothesis import given
from hypothesis import strategies as st


def ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_hex_with_separators():
    assert frame_bytes("ff:ff:ff:ff:ff:ff 02-00-00-00-00-01\n0806") == bytes.fromhex("ffffffffffff0200000000010806")


@pytest.mark.parametrize("text, message", [
    ("ffff", "2 bytes is shorter than an Ethernet header"),
    ("zz" * 14, "not hex bytes"),
    ("f" * 29, "not hex bytes"),
])
def test_bad_hex_is_a_located_error(text, message):
    with pytest.raises(FrameError, match=message) as err:
        frame_bytes(text, "tests[3].frame")
    assert str(err.value).startswith("tests[3].frame: ")


def test_ipv4_udp_frame_layout_and_checksums():
    frame = frame_bytes({"eth": {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b"},
                         "ipv4": {"src": "192.0.2.1", "dst": "198.51.100.7", "ttl": 9},
                         "udp": {"sport": 1234, "dport": 53}, "payload": 5})
    assert frame[:14] == bytes.fromhex("02000000000b 02000000000a 0800")
    ip, udp = frame[14:34], frame[34:]
    assert len(frame) == 14 + 20 + 8 + 5
    assert ip[0] == 0x45 and struct.unpack("!H", ip[2:4])[0] == 33 and ip[8] == 9 and ip[9] == 17
    assert ip[12:16] == bytes([192, 0, 2, 1]) and ip[16:20] == bytes([198, 51, 100, 7])
    assert ones_sum(ip) == 0xFFFF
    assert struct.unpack("!HHH", udp[:6]) == (1234, 53, 13) and udp[8:] == bytes(5)
    assert ones_sum(ip[12:20] + struct.pack("!BBH", 0, 17, 13) + udp) == 0xFFFF


def test_tcp_flags_and_checksum():
    frame = frame_bytes({"ipv4": {}, "tcp": {"sport": 1, "dport": 2, "flags": ["syn", "ACK"], "seq": 7}})
    tcp = frame[34:]
    assert struct.unpack("!HHI", tcp[:8]) == (1, 2, 7) and tcp[12] == 0x50 and tcp[13] == 0x12
    assert ones_sum(frame[26:34] + struct.pack("!BBH", 0, 6, len(tcp)) + tcp) == 0xFFFF


def test_ipv6_icmpv6_uses_the_pseudo_header():
    frame = frame_bytes({"ipv6": {"src": "fd00::1", "dst": "fd00::2"}, "icmp": {}, "payload": 3})
    assert frame[12:14] == b"\x86\xdd" and frame[14] >> 4 == 6 and frame[20] == 58
    icmp = frame[54:]
    assert icmp[0] == 128 and struct.unpack("!H", frame[18:20])[0] == len(icmp) == 11
    pseudo = frame[22:54] + struct.pack("!IxxxB", len(icmp), 58)
    assert ones_sum(pseudo + icmp) == 0xFFFF


def test_vlan_and_qinq_tags():
    single = frame_bytes({"eth": {"vlan": 100}, "ipv4": {}})
    assert single[12:18] == struct.pack("!HHH", 0x8100, 100, 0x0800)
    double = frame_bytes({"eth": {"vlan": [10, 20]}, "ipv6": {}})
    assert double[12:22] == struct.pack("!HHHHH", 0x88A8, 10, 0x8100, 20, 0x86DD)


def test_without_an_ip_layer_the_type_is_the_given_one():
    assert frame_bytes({"eth": {"type": "0x0806"}, "payload": 28})[12:14] == b"\x08\x06"
    assert frame_bytes({})[12:14] == b"\x88\xb5"


@pytest.mark.parametrize("description, message", [
    ({"ipv5": {}}, "frame: unknown field 'ipv5'"),
    ({"ipv4": {}, "ipv6": {}}, "ipv4 and ipv6 given"),
    ({"udp": {}}, "frame.udp: needs an IP layer"),
    ({"ipv4": {"ttl": 256}}, "frame.ipv4.ttl: 256 is out of range (0..255)"),
    ({"ipv4": {"src": "::1"}}, "frame.ipv4.src: '::1' is not an IPv4 address"),
    ({"ipv4": {}, "udp": {"dport": "1_0"}}, "frame.udp.dport: expected an integer, got '1_0'"),
    ({"ipv4": {}, "tcp": {"flags": ["syn", "bogus"]}}, "frame.tcp.flags"),
    ({"eth": {"src": "02:00:00:00:00"}}, "frame.eth.src"),
    ({"eth": {"type": 0x800}, "ipv4": {}}, "frame.eth.type: set by the ipv4 layer"),
    ({"eth": {"vlan": [1, 2, 3]}}, "frame.eth.vlan"),
    ({"ipv4": {"proto": 6}, "tcp": {}}, "frame.ipv4.proto: set by the tcp layer"),
    ({"ipv4": {}, "payload": 70000}, "frame.payload: 70000 is out of range"),
    ({"ipv4": "yes"}, "frame.ipv4: expected a dict"),
    (42, "expected hex bytes (a string) or a description (a dict)"),
])
def test_bad_descriptions_name_the_field(description, message):
    with pytest.raises(FrameError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        frame_bytes(description)


def test_verdict_codes_are_the_kernels():
    assert VERDICTS == {"XDP_ABORTED": 0, "XDP_DROP": 1, "XDP_PASS": 2, "XDP_TX": 3, "XDP_REDIRECT": 4}


@given(src=st.ip_addresses(v=4), dst=st.ip_addresses(v=4), sport=st.integers(0, 65535),
       dport=st.integers(0, 65535), payload=st.integers(0, 1400), vlan=st.none() | st.integers(0, 4095))
def test_any_ipv4_udp_frame_is_consistent(src, dst, sport, dport, payload, vlan):
    frame = frame_bytes({"eth": {"vlan": vlan}, "ipv4": {"src": str(src), "dst": str(dst)},
                         "udp": {"sport": sport, "dport": dport}, "payload": payload})
    ip_at = 14 + (4 if vlan is not None else 0)
    ip = frame[ip_at:ip_at + 20]
    assert ipaddress.ip_address(ip[12:16]) == src and ipaddress.ip_address(ip[16:20]) == dst
    assert struct.unpack("!H", ip[2:4])[0] == len(frame) - ip_at == 28 + payload
    assert ones_sum(ip) == 0xFFFF
    udp = frame[ip_at + 20:]
    assert struct.unpack("!HH", udp[:4]) == (sport, dport)
    assert ones_sum(ip[12:20] + struct.pack("!BBH", 0, 17, len(udp)) + udp) == 0xFFFF
