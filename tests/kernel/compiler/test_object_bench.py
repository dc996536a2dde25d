"""The benchmark pairs compute the same thing: each Whistler program and its clang-built C twin
give the same verdicts (and, for TC, the same skb mark and priority) and leave the same map
contents and ring buffer records on the same frames, so the instruction counts and timings
bench/compare.py and bench/speed.py set side by side compare like with like. clang is the
oracle here.

In: every pair of bench/compare.BENCHMARKS, crafted frames, the map entries each pair needs
preset (a blocked address, denied next headers, LPM rules). Out: pass/fail.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.kernel import frames as f
from tests.kernel.harness import BpftoolError, loaded

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bench"))
from compare import BENCHMARKS, CLANG  # noqa: E402

SKB_SIZE, SKB_MARK = 192, 8  # sizeof(struct __sk_buff), offsetof mark


def addr(dotted: str) -> int:
    """An IPv4 address as a program reads it from the wire: network-order bytes, little-endian."""
    return int.from_bytes(socket.inet_aton(dotted), "little")


def dns_query(txid: int) -> bytes:
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00\x00\x01\x00\x01"


def tagged(tags: list, inner: bytes, inner_type: int) -> bytes:
    """Ethernet with VLAN ``tags`` [(tag EtherType, vid)...], outermost first."""
    types = [t for t, _vid in tags] + [inner_type]
    body = inner
    for (_t, vid), next_type in reversed(list(zip(tags, types[1:]))):
        body = f.vlan(vid, next_type, body)
    return f.eth(types[0], body)


def bad_checksum(frame: bytes) -> bytes:
    return frame[:24] + bytes([frame[24] ^ 0x5A]) + frame[25:]


FRAMES = [
    f.tcp_frame(dport=9999), f.tcp_frame(dport=80), f.tcp_frame(dport=9999)[:53], f.udp_frame(dport=9999),
    f.icmp_frame(), f.pad(f.eth(f.ETH_ARP, f.arp())), f.eth(f.ETH_IPV6, f.ipv6(f.PROTO_TCP, f.tcp(dport=9999))),
    f.eth(f.ETH_VLAN, f.vlan(7, f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(dport=9999)))), f.tcp_frame()[:20],
    # DNS queries (and one too short for txid and flags), an answer
    f.udp_frame(sport=5353, dport=53, payload=dns_query(0xBEEF)),
    f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(sport=40001, dport=53, payload=dns_query(7)), src="192.168.7.9")),
    f.udp_frame(dport=53, payload=b"\x12\x34")[:45], f.udp_frame(sport=53, dport=40000, payload=dns_query(1)),
    # flows: TCP flags, a second segment of a flow, TCP cut short after the ports
    f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(sport=40000, dport=443, flags=0x10), src="10.0.0.1")),
    f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(sport=40000, dport=443, flags=0x18), src="10.0.0.1")),
    f.tcp_frame(dport=443)[:40],
    # classes: DSCP EF, ssh both ways, UDP to port 22, a blocked destination
    f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(), tos=46 << 2)), f.tcp_frame(dport=22),
    f.tcp_frame(sport=22, dport=50000), f.udp_frame(dport=22),
    f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(), dst="10.0.0.9", tos=46 << 2)),
    # VLAN tags and IPv6 next headers
    tagged([(f.ETH_VLAN, 100)], f.ipv6(f.PROTO_TCP, f.tcp()), f.ETH_IPV6),
    tagged([(0x88A8, 7), (f.ETH_VLAN, 200)], f.ipv6(43, bytes(16)), f.ETH_IPV6),
    tagged([(0x88A8, 300)], f.ipv4(f.PROTO_UDP, f.udp()), f.ETH_IPV4),
    tagged([(f.ETH_VLAN, 100)], f.ipv6(f.PROTO_TCP, f.tcp()), f.ETH_IPV6)[:14 + 4 + 39], f.eth(f.ETH_IPV6),
    # LPM rules: a /32 that passes, a /8 that drops, an address no rule covers
    f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(), src="10.9.8.7")),
    f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp(), src="192.168.1.1")),
    # IPv4 header checksums that do not add up
    bad_checksum(f.tcp_frame()), bad_checksum(f.udp_frame(dport=53, payload=dns_query(3))),
]


@dataclass(frozen=True)
class Pair:
    slots: dict = field(default_factory=dict)  # prog-array -> {slot: program}
    preset: tuple = ()  # (map, key, value) written before the frames run
    volatile: dict = field(default_factory=dict)  # map -> value bits that hold times (masked out)
    prog_type: str = "xdp"


TIMES = ((1 << 128) - 1) << 128  # flow-stats: first_seen, last_seen (bytes 16..31)
PAIRS = {
    "bench/whistler/tail-call-dispatch.lisp": Pair(slots={"jt": {6: "tcp_handler", 17: "udp_handler"}}),
    "examples/flow-stats.lisp": Pair(volatile={"flows": TIMES}),
    "examples/tc-priority.lisp": Pair(preset=(("blocked", addr("10.0.0.9"), 1),), prog_type="tc"),
    "examples/vlan-ipv6.lisp": Pair(preset=(("v6_deny", 43, 1),)),
    "bench/whistler/lpm-filter.lisp": Pair(preset=(
        ("rules", 32 | addr("10.0.0.1") << 32, 0 << 64),  # /32: count, pass
        ("rules", 8 | addr("10.0.0.0") << 32, 1 << 64),  # /8: count, drop
    )),
}


def _behaviour(obj_path: Path, pin_dir: Path, pair: Pair) -> tuple[dict, dict]:
    """What every program did to every frame (verdict, packet, for TC the skb's mark and
    priority), then every map's contents (a ring buffer's records)."""
    ctx = bytearray(SKB_SIZE)
    struct.pack_into("<I", ctx, SKB_MARK, 0xAB)  # a mark the program must replace or leave
    with loaded(obj_path, pin_dir, prog_type=pair.prog_type) as obj:
        for prog_array, wiring in pair.slots.items():
            for key, prog in wiring.items():
                obj.set_slot(prog_array, key, prog)
        for name, key, value in pair.preset:
            obj.set(name, key, value)
        effects = {}
        for prog in obj.programs:
            for i, frame in enumerate(FRAMES):
                try:
                    result = obj.run_full(prog, frame, bytes(ctx) if pair.prog_type == "tc" else None)
                except BpftoolError as err:  # the kernel refuses some frames as an skb, whatever the program
                    effects[prog, i] = str(err).splitlines()[-1]
                    continue
                effects[prog, i] = (result.retval, result.data_out, result.ctx_out[:SKB_SIZE])
        maps = {}
        for name in obj.maps:
            if name in pair.slots:
                continue
            if obj.map_info(name)["type"] == "ringbuf":
                maps[name] = obj.records(name)
            else:
                keep = ~pair.volatile.get(name, 0)
                maps[name] = {k: v & keep for k, v in obj.map(name).items()}
    return effects, maps


def _compile_ours(lisp: str, tmp_path: Path) -> Path:
    import compiler

    out = tmp_path / "ours.bpf.o"
    out.write_bytes(compiler.compile_source((REPO / lisp).read_text(), lisp).elf)
    return out


@pytest.mark.parametrize("lisp, c", BENCHMARKS, ids=[Path(p[0]).stem for p in BENCHMARKS])
def test_whistler_and_clang_twins_behave_alike(lisp, c, tmp_path, pin_dir):
    pair = PAIRS.get(lisp, Pair())
    theirs = tmp_path / "clang.o"
    subprocess.run([*CLANG, "-c", str(REPO / c), "-o", str(theirs)], check=True)
    ours_effects, ours_maps = _behaviour(_compile_ours(lisp, tmp_path), pin_dir, pair)
    clang_effects, clang_maps = _behaviour(theirs, pin_dir, pair)
    assert ours_effects == clang_effects
    assert ours_maps == clang_maps
    assert any(any(m.values()) if isinstance(m, dict) else m for m in clang_maps.values()), \
        "the frames should make the programs count or record something"
    verdicts = {effect[0] for effect in clang_effects.values() if isinstance(effect, tuple)}
    assert len(verdicts) > 1 or lisp in NO_VERDICT_CHANGE, \
        "the frames should reach more than one verdict"


# Programs that pass every frame (they only count or record).
NO_VERDICT_CHANGE = {"bench/whistler/tail-call-dispatch.lisp", "bench/whistler/count-xdp.lisp",
                     "examples/dns-events.lisp", "examples/flow-stats.lisp", "bench/whistler/sum-counters.lisp",
                     "bench/whistler/score-bytes.lisp"}
