"""The benchmark pairs compute the same thing: each Whistler program and its clang-built C twin
give the same verdicts and leave the same map contents on the same frames, so the instruction
counts bench/compare.py sets side by side compare like with like. clang is the oracle here.

In: bench/compare.BENCHMARKS, crafted frames. Out: pass/fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.kernel import frames as f
from tests.kernel.harness import loaded

REPO = Path(__file__).resolve().parents[3]
CLANG = ["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]
PAIRS = [
    ("bench/whistler/tail-call-dispatch.lisp", "bench/c/tail_call_dispatch.c",
     {"jt": {6: "tcp_handler", 17: "udp_handler"}}),
    ("bench/whistler/count-xdp.lisp", "bench/c/count_xdp.c", {}),
    ("bench/whistler/drop-port.lisp", "bench/c/drop_port.c", {}),
    ("bench/whistler/sum-counters.lisp", "bench/c/sum_counters.c", {}),
    ("bench/whistler/score-bytes.lisp", "bench/c/score_bytes.c", {}),
]
FRAMES = [
    f.tcp_frame(dport=9999), f.tcp_frame(dport=80), f.tcp_frame(dport=9999)[:53], f.udp_frame(dport=9999),
    f.icmp_frame(), f.pad(f.eth(f.ETH_ARP, f.arp())), f.eth(f.ETH_IPV6, f.ipv6(f.PROTO_TCP, f.tcp(dport=9999))),
    f.eth(f.ETH_VLAN, f.vlan(7, f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(dport=9999)))), f.tcp_frame()[:20],
]


def _behaviour(obj_path: Path, pin_dir: Path, slots: dict) -> tuple[dict, dict]:
    """Verdict of every program on every frame, then every map's contents."""
    with loaded(obj_path, pin_dir) as obj:
        for prog_array, wiring in slots.items():
            for key, prog in wiring.items():
                obj.set_slot(prog_array, key, prog)
        verdicts = {(p, i): obj.run(p, frame) for p in obj.programs for i, frame in enumerate(FRAMES)}
        maps = {m: obj.map(m) for m in obj.maps if m not in slots}
    return verdicts, maps


def _compile_ours(lisp: str, tmp_path: Path) -> Path:
    import compiler

    out = tmp_path / "ours.bpf.o"
    out.write_bytes(compiler.compile_source((REPO / lisp).read_text(), lisp).elf)
    return out


@pytest.mark.parametrize("lisp, c, slots", PAIRS, ids=[Path(p[0]).stem for p in PAIRS])
def test_whistler_and_clang_twins_behave_alike(lisp, c, slots, tmp_path, pin_dir):
    theirs = tmp_path / "clang.o"
    subprocess.run([*CLANG, "-c", str(REPO / c), "-o", str(theirs)], check=True)
    ours_verdicts, ours_maps = _behaviour(_compile_ours(lisp, tmp_path), pin_dir, slots)
    clang_verdicts, clang_maps = _behaviour(theirs, pin_dir, slots)
    assert ours_verdicts == clang_verdicts
    assert ours_maps == clang_maps
    assert any(any(m.values()) for m in clang_maps.values()), "the frames should make the programs count something"
