"""Issue #2 "Must show" 1 and 2: the seed and examples/tail-call-dispatch.lisp compile, load with
bpftool (libbpf), and dispatch crafted frames exactly as the program's text says.

In: the seed program (``seed_program`` fixture) and the example. Out: pass/fail.

What the dispatcher does, read off its source (this is where the expected counts come from):
  1. fewer than 34 bytes (Ethernet 14 + IPv4 20)  -> XDP_PASS, nothing counted;
  2. EtherType (bytes 12-13) not 0x0800            -> XDP_PASS, nothing counted (VLAN tags too);
  3. otherwise proto-stats[0] += 1, then tail-call jt[byte 23 = IPv4 protocol]:
     jt[6] = tcp-handler  -> proto-stats[1] += 1, XDP_PASS;
     jt[17] = udp-handler -> proto-stats[2] += 1, XDP_PASS;
     empty slot           -> falls through to the final XDP_PASS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel import frames as f
from tests.kernel.harness import XDP_PASS, loaded

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "tail-call-dispatch.lisp"
DISPATCHED, TCP, UDP = 0, 1, 2

# (frame id, frame, the proto-stats slots that frame increments)
FRAMES = [
    ("tcp", f.tcp_frame(dport=443), (DISPATCHED, TCP)),
    ("udp", f.udp_frame(dport=53), (DISPATCHED, UDP)),
    ("icmp", f.icmp_frame(), (DISPATCHED,)),  # jt[1] is empty: falls through
    ("arp", f.pad(f.eth(f.ETH_ARP, f.arp())), ()),
    ("ipv6-tcp", f.eth(f.ETH_IPV6, f.ipv6(f.PROTO_TCP, f.tcp())), ()),
    ("vlan-tcp", f.eth(f.ETH_VLAN, f.vlan(100, f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp()))), ()),
    ("runt-33", f.tcp_frame()[:33], ()),  # one byte short of the 34-byte bound
    ("exact-34-udp", f.udp_frame()[:34], (DISPATCHED, UDP)),  # the bound is inclusive
    ("gre", f.eth(f.ETH_IPV4, f.ipv4(47, bytes(8))), (DISPATCHED,)),
]


@pytest.fixture(params=["seed", "example"])
def program(request, seed_program) -> tuple[str, str]:
    """(file name, source text) of the program under test."""
    if request.param == "seed":
        return "seed.lisp", seed_program
    return EXAMPLE.name, EXAMPLE.read_text()


def test_compiles_and_loads_all_three_programs(program, pin_dir):
    filename, text = program
    with loaded(text, pin_dir, filename) as obj:
        assert obj.programs == ["tcp_handler", "udp_handler", "xdp_dispatch"]
        assert obj.maps == ["jt", "proto_stats"]
        for prog in obj.programs:
            assert obj.prog_info(prog)["type"] == "xdp"
        jt, stats = obj.map_info("jt"), obj.map_info("proto_stats")
        assert (jt["type"], jt["bytes_key"], jt["bytes_value"], jt["max_entries"]) == ("prog_array", 4, 4, 256)
        assert (stats["type"], stats["bytes_key"], stats["bytes_value"], stats["max_entries"]) == ("array", 4, 8, 3)


def test_proto_stats_dump_is_typed_json(program, pin_dir):
    filename, text = program
    with loaded(text, pin_dir, filename) as obj:
        entries = obj.dump("proto_stats")
        # BTF key/value types make bpftool print plain integers, not byte arrays.
        assert [e["formatted"] for e in entries] == [{"key": k, "value": 0} for k in range(3)]


@pytest.mark.parametrize("frame_id", [entry[0] for entry in FRAMES])
def test_dispatch_each_frame(program, pin_dir, frame_id):
    filename, text = program
    _fid, frame, bumps = next(entry for entry in FRAMES if entry[0] == frame_id)
    with loaded(text, pin_dir, filename) as obj:
        obj.set_slot("jt", 6, "tcp_handler")
        obj.set_slot("jt", 17, "udp_handler")
        assert obj.run("xdp_dispatch", frame) == XDP_PASS
        assert obj.map("proto_stats") == {slot: int(slot in bumps) for slot in range(3)}


def test_dispatch_all_frames_accumulate(program, pin_dir):
    filename, text = program
    expected = {slot: 0 for slot in range(3)}
    with loaded(text, pin_dir, filename) as obj:
        obj.set_slot("jt", 6, "tcp_handler")
        obj.set_slot("jt", 17, "udp_handler")
        for _fid, frame, bumps in FRAMES * 2:
            assert obj.run("xdp_dispatch", frame) == XDP_PASS
            for slot in bumps:
                expected[slot] += 1
            assert obj.map("proto_stats") == expected
        assert obj.typed_dump("proto_stats") == expected


def test_empty_jump_table_falls_through(program, pin_dir):
    filename, text = program
    with loaded(text, pin_dir, filename) as obj:
        for frame in (f.tcp_frame(), f.udp_frame()):
            assert obj.run("xdp_dispatch", frame) == XDP_PASS
        assert obj.map("proto_stats") == {DISPATCHED: 2, TCP: 0, UDP: 0}


def test_handlers_count_when_run_directly(program, pin_dir):
    filename, text = program
    with loaded(text, pin_dir, filename) as obj:
        assert obj.run("tcp_handler", f.tcp_frame()) == XDP_PASS
        assert obj.run("udp_handler", f.udp_frame()) == XDP_PASS
        assert obj.run("udp_handler", f.udp_frame()) == XDP_PASS
        assert obj.map("proto_stats") == {DISPATCHED: 0, TCP: 1, UDP: 2}
