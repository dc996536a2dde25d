"""Test frames for BPF_PROG_TEST_RUN: a description in, the frame's bytes out.

In: hex text (``"ffffffffffff 0200..."``; spaces, ``:`` and ``-`` between bytes are ignored) or a small
structured description, every layer optional except Ethernet::

    {"eth": {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02", "vlan": 100},   # vlan: id or [outer, inner]
     "ipv4": {"src": "10.0.0.1", "dst": "10.0.0.2", "ttl": 64},                       # or "ipv6": {...}
     "udp": {"sport": 1234, "dport": 53},                                             # or "tcp" / "icmp"
     "payload": 16}                                                                    # bytes of payload (zeros)

Out: ``frame_bytes(description, where)``: the frame (IPv4 header, TCP/UDP/ICMP and ICMPv6 checksums
computed, lengths filled in); ``FrameError`` naming the field (``where`` prefixes it, e.g.
``tests[2].frame``) for anything malformed. ``VERDICTS`` maps XDP verdict names to return codes.
Pure standard library; nothing here touches the kernel.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from typing import Dict, List, Optional, Tuple

VERDICTS = {"XDP_ABORTED": 0, "XDP_DROP": 1, "XDP_PASS": 2, "XDP_TX": 3, "XDP_REDIRECT": 4}
VERDICT_NAMES = {code: name for name, code in VERDICTS.items()}

ETH_P_IPV4, ETH_P_IPV6, ETH_P_8021Q, ETH_P_8021AD = 0x0800, 0x86DD, 0x8100, 0x88A8
ETH_P_EXPERIMENTAL = 0x88B5  # IEEE "local experimental": the type of a frame described without an IP layer
PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6 = 1, 6, 17, 58
MAX_FRAME = 65535
TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20, "ece": 0x40, "cwr": 0x80}
_HEX_SEPARATORS = re.compile(r"[\s:\-]")

LAYERS = {
    "eth": {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02", "type": None, "vlan": None},
    "ipv4": {"src": "10.0.0.1", "dst": "10.0.0.2", "ttl": 64, "tos": 0, "id": 0, "df": False, "proto": None},
    "ipv6": {"src": "fd00::1", "dst": "fd00::2", "hop_limit": 64, "flow_label": 0, "next_header": None},
    "tcp": {"sport": 40000, "dport": 80, "flags": ["syn"], "seq": 0, "ack": 0, "window": 65535},
    "udp": {"sport": 40000, "dport": 53},
    "icmp": {"type": None, "code": 0, "id": 0, "seq": 0},
}
L3, L4 = ("ipv4", "ipv6"), ("tcp", "udp", "icmp")


class FrameError(ValueError):
    """A frame description that cannot be built; the message names the field."""


def frame_bytes(description, where: str = "frame") -> bytes:
    """The frame ``description`` (hex text or a dict, see the module docstring) stands for."""
    if isinstance(description, str):
        return _from_hex(description, where)
    if not isinstance(description, dict):
        raise FrameError(f"{where}: expected hex bytes (a string) or a description (a dict), "
                         f"got {type(description).__name__}")
    return _Builder(description, where).build()


def _from_hex(text: str, where: str) -> bytes:
    digits = _HEX_SEPARATORS.sub("", text)
    if len(digits) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", digits):
        raise FrameError(f"{where}: not hex bytes (two hex digits per byte; spaces, ':' and '-' between "
                         f"bytes are allowed): {text[:40]!r}")
    data = bytes.fromhex(digits)
    return _checked_length(data, where)


def _checked_length(data: bytes, where: str) -> bytes:
    if len(data) < 14:
        raise FrameError(f"{where}: {len(data)} bytes is shorter than an Ethernet header (14 bytes)")
    if len(data) > MAX_FRAME:
        raise FrameError(f"{where}: {len(data)} bytes is longer than {MAX_FRAME}")
    return data


class _Builder:
    def __init__(self, description: Dict, where: str):
        self.where = where
        unknown = sorted(set(description) - set(LAYERS) - {"payload"}, key=str)
        if unknown:
            raise FrameError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(list(LAYERS) + ['payload'])})")
        self.layers = {name: self._fields(name, description[name]) for name in LAYERS if name in description}
        self.layers.setdefault("eth", dict(LAYERS["eth"]))
        self.l3 = self._one_of(L3)
        self.l4 = self._one_of(L4)
        if self.l4 and not self.l3:
            raise FrameError(f"{where}.{self.l4}: needs an IP layer (ipv4 or ipv6)")
        self.payload = self._int("payload", description.get("payload", 0), 0, MAX_FRAME)

    # -- checking the description ---------------------------------------------------------------

    def _fields(self, layer: str, given) -> Dict:
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise FrameError(f"{self.where}.{layer}: expected a dict of fields, got {type(given).__name__}")
        unknown = sorted(set(given) - set(LAYERS[layer]), key=str)
        if unknown:
            raise FrameError(f"{self.where}.{layer}: unknown field {unknown[0]!r} "
                             f"(known: {', '.join(LAYERS[layer])})")
        return dict(LAYERS[layer], **given)

    def _one_of(self, names: Tuple[str, ...]) -> Optional[str]:
        present = [name for name in names if name in self.layers]
        if len(present) > 1:
            raise FrameError(f"{self.where}: {' and '.join(present)} given; a frame has at most one of "
                             f"{', '.join(names)}")
        return present[0] if present else None

    def _int(self, field: str, value, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and re.fullmatch(r"(0x[0-9A-Fa-f]+|[0-9]+)", value.strip()):
                value = int(value.strip(), 0)
            else:
                raise FrameError(f"{self.where}.{field}: expected an integer, got {value!r}")
        if not low <= value <= high:
            raise FrameError(f"{self.where}.{field}: {value} is out of range ({low}..{high})")
        return value

    def _mac(self, field: str, value) -> bytes:
        text = str(value)
        if not re.fullmatch(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}", text):
            raise FrameError(f"{self.where}.{field}: {value!r} is not a MAC address (like 02:00:00:00:00:01)")
        return bytes.fromhex(_HEX_SEPARATORS.sub("", text))

    def _address(self, field: str, value, version: int) -> bytes:
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            address = None
        if address is None or address.version != version:
            raise FrameError(f"{self.where}.{field}: {value!r} is not an IPv{version} address")
        return address.packed

    # -- building, innermost layer first ---------------------------------------------------------

    def build(self) -> bytes:
        data = bytes(self.payload)
        if self.l4:
            data = getattr(self, "_" + self.l4)(self.layers[self.l4], data)
        if self.l3:
            data = getattr(self, "_" + self.l3)(self.layers[self.l3], data)
        return _checked_length(self._eth(self.layers["eth"], data), self.where)

    def _pseudo_header(self, proto: int, length: int) -> bytes:
        ip = self.layers[self.l3]
        if self.l3 == "ipv4":
            return (self._address("ipv4.src", ip["src"], 4) + self._address("ipv4.dst", ip["dst"], 4)
                    + struct.pack("!BBH", 0, proto, length))
        return (self._address("ipv6.src", ip["src"], 6) + self._address("ipv6.dst", ip["dst"], 6)
                + struct.pack("!IxxxB", length, proto))

    def _udp(self, f: Dict, data: bytes) -> bytes:
        length = 8 + len(data)
        header = struct.pack("!HHHH", self._int("udp.sport", f["sport"], 0, 65535),
                             self._int("udp.dport", f["dport"], 0, 65535), length, 0)
        checksum = _checksum(self._pseudo_header(PROTO_UDP, length) + header + data) or 0xFFFF
        return header[:6] + struct.pack("!H", checksum) + data

    def _tcp(self, f: Dict, data: bytes) -> bytes:
        flags = f["flags"]
        names = [flags] if isinstance(flags, str) else flags
        if not isinstance(names, list) or any(str(n).lower() not in TCP_FLAGS for n in names):
            raise FrameError(f"{self.where}.tcp.flags: expected a list of {', '.join(TCP_FLAGS)}, got {flags!r}")
        bits = 0
        for name in names:
            bits |= TCP_FLAGS[str(name).lower()]
        header = struct.pack("!HHIIBBHHH", self._int("tcp.sport", f["sport"], 0, 65535),
                             self._int("tcp.dport", f["dport"], 0, 65535), self._int("tcp.seq", f["seq"], 0, 2**32 - 1),
                             self._int("tcp.ack", f["ack"], 0, 2**32 - 1), 5 << 4, bits,
                             self._int("tcp.window", f["window"], 0, 65535), 0, 0)
        checksum = _checksum(self._pseudo_header(PROTO_TCP, len(header) + len(data)) + header + data)
        return header[:16] + struct.pack("!H", checksum) + header[18:] + data

    def _icmp(self, f: Dict, data: bytes) -> bytes:
        v6 = self.l3 == "ipv6"
        default_type = 128 if v6 else 8  # echo request
        icmp_type = self._int("icmp.type", default_type if f["type"] is None else f["type"], 0, 255)
        header = struct.pack("!BBHHH", icmp_type, self._int("icmp.code", f["code"], 0, 255), 0,
                             self._int("icmp.id", f["id"], 0, 65535), self._int("icmp.seq", f["seq"], 0, 65535))
        covered = header + data
        if v6:
            covered = self._pseudo_header(PROTO_ICMPV6, len(header) + len(data)) + covered
        return header[:2] + struct.pack("!H", _checksum(covered)) + header[4:] + data

    def _l4_proto(self, field: str, given) -> int:
        if self.l4:
            if given is not None:
                raise FrameError(f"{self.where}.{field}: set by the {self.l4} layer; leave it out")
            return {"tcp": PROTO_TCP, "udp": PROTO_UDP}.get(self.l4) or (
                PROTO_ICMPV6 if self.l3 == "ipv6" else PROTO_ICMP)
        return self._int(field, 59 if given is None and self.l3 == "ipv6" else (given or 0), 0, 255)

    def _ipv4(self, f: Dict, data: bytes) -> bytes:
        length = 20 + len(data)
        if length > 65535:
            raise FrameError(f"{self.where}.payload: an IPv4 packet holds at most 65535 bytes")
        header = struct.pack("!BBHHHBBH4s4s", 0x45, self._int("ipv4.tos", f["tos"], 0, 255), length,
                             self._int("ipv4.id", f["id"], 0, 65535), 0x4000 if f["df"] else 0,
                             self._int("ipv4.ttl", f["ttl"], 0, 255), self._l4_proto("ipv4.proto", f["proto"]), 0,
                             self._address("ipv4.src", f["src"], 4), self._address("ipv4.dst", f["dst"], 4))
        return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + data

    def _ipv6(self, f: Dict, data: bytes) -> bytes:
        header = struct.pack("!IHBB16s16s", (6 << 28) | self._int("ipv6.flow_label", f["flow_label"], 0, 0xFFFFF),
                             len(data), self._l4_proto("ipv6.next_header", f["next_header"]),
                             self._int("ipv6.hop_limit", f["hop_limit"], 0, 255),
                             self._address("ipv6.src", f["src"], 6), self._address("ipv6.dst", f["dst"], 6))
        return header + data

    def _eth(self, f: Dict, data: bytes) -> bytes:
        if self.l3:
            if f["type"] is not None:
                raise FrameError(f"{self.where}.eth.type: set by the {self.l3} layer; leave it out")
            ethertype = ETH_P_IPV4 if self.l3 == "ipv4" else ETH_P_IPV6
        else:
            ethertype = self._int("eth.type", ETH_P_EXPERIMENTAL if f["type"] is None else f["type"], 0, 65535)
        vlans = self._vlans(f["vlan"])
        tags = b""
        for i, vid in enumerate(vlans):
            tpid = ETH_P_8021AD if i == 0 and len(vlans) == 2 else ETH_P_8021Q  # QinQ: 802.1ad outside
            tags += struct.pack("!HH", tpid, vid)
        return self._mac("eth.dst", f["dst"]) + self._mac("eth.src", f["src"]) + tags + struct.pack("!H", ethertype) + data

    def _vlans(self, vlan) -> List[int]:
        if vlan is None:
            return []
        ids = vlan if isinstance(vlan, list) else [vlan]
        if not 1 <= len(ids) <= 2:
            raise FrameError(f"{self.where}.eth.vlan: one VLAN id, or two (outer, inner) for QinQ")
        return [self._int("eth.vlan", vid, 0, 4095) for vid in ids]


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
