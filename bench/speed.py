"""Run time, side by side: our object vs clang -O2's C twin under BPF_PROG_TEST_RUN.

In: the SPEED table below (Whistler source, C twin, the program to run, its frame and the
prog-array slots to wire). Out: a markdown table on stdout, per program: the median ns per
packet of each side and the ratio ours/clang. With ``--check`` the exit status is 1 when a
ratio of a checked program (the seed and the loop-heavy ones) exceeds ``--limit`` (default
1.00). Needs root, bpffs and bpftool.

    sudo .venv/bin/python bench/speed.py [--check] [--rounds 31] [--repeat 1000000] [--loads 5]

How it measures: both objects are loaded with ``bpftool prog loadall`` (libbpf: the loader a C
user would use, so both sides are loaded alike) and their jump tables wired. Each round runs
ours and clang's program ``--repeat`` times in one BPF_PROG_TEST_RUN each, alternating which
goes first, and times each call by the CPU time of this thread (``CLOCK_THREAD_CPUTIME_ID``):
the kernel's own per-run figure is whole nanoseconds, too coarse for programs that take a
few, and wall time would count the time other processes on a busy machine ran instead. The
fixed cost of one call (a few microseconds) is spread over a million runs. Where the kernel
places a JIT image shifts timings by about 1%, so each side is loaded ``--loads`` times and the
rounds are spread over the loads. The table reports each side's median over all rounds, their
ratio, and the middle half of the ratios of the rounds (ours / clang's in the same round): how
far apart the two would look from one round to the next.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compare import CLANG  # noqa: E402  (bench/ is on sys.path when run as a script)

from compiler import compile_source  # noqa: E402
from plugins.module_utils._bpf import syscalls  # noqa: E402
from tests.kernel import frames  # noqa: E402
from tests.kernel.harness import loaded  # noqa: E402

BPFFS = Path("/sys/fs/bpf")


@dataclass(frozen=True)
class Speed:
    lisp: str  # Whistler source, relative to the repository root
    c: str  # its C twin
    program: str  # the program BPF_PROG_TEST_RUN runs
    frame: bytes  # the packet it runs on
    slots: dict = field(default_factory=dict)  # prog-array name -> {slot: program}
    prog_type: str = "xdp"
    checked: bool = True  # --check holds it to --limit (else the row is for information)


SPEED = [
    # the seed: the dispatcher counts, then tail-calls the TCP handler through the jump table
    Speed("bench/whistler/tail-call-dispatch.lisp", "bench/c/tail_call_dispatch.c", "xdp_dispatch",
          frames.tcp_frame(dport=80), {"jt": {6: "tcp_handler", 17: "udp_handler"}}),
    # loop-heavy: scans of packet bytes, most of their work in the loop
    Speed("bench/whistler/score-bytes.lisp", "bench/c/score_bytes.c", "score_bytes", frames.tcp_frame()),
    Speed("bench/whistler/ipv4-csum.lisp", "bench/c/ipv4_csum.c", "ipv4_csum", frames.tcp_frame()),
    # a loop of four map lookups, kept a loop to stay smaller than the original Whistler's
    # (docs/benchmarks.md): the loop's counter costs about 1-2% against clang's unrolled code
    Speed("bench/whistler/sum-counters.lisp", "bench/c/sum_counters.c", "sum_counters", frames.tcp_frame(),
          checked=False),
]


def _objects(bench: Speed, work: Path) -> dict[str, Path]:
    ours, clang = work / "ours.bpf.o", work / "clang.o"
    ours.write_bytes(compile_source((REPO / bench.lisp).read_text(), bench.lisp).elf)
    subprocess.run([*CLANG, "-c", str(REPO / bench.c), "-o", str(clang)], check=True, capture_output=True)
    return {"ours": ours, "clang": clang}


def _load(stack: ExitStack, bench: Speed, obj: Path, pins: Path) -> int:
    """Load ``obj``, wire its slots, return an fd of the program to run."""
    loaded_obj = stack.enter_context(loaded(obj, pins, prog_type=bench.prog_type))
    for prog_array, wiring in bench.slots.items():
        for key, prog in wiring.items():
            loaded_obj.set_slot(prog_array, key, prog)
    fd = syscalls.obj_get(str(loaded_obj.pins / bench.program))
    stack.callback(_close, fd)
    return fd


def _close(fd: int) -> None:
    import os

    os.close(fd)


def _ns_per_run(fd: int, frame: bytes, repeat: int) -> tuple[float, int]:
    start = time.thread_time_ns()
    result = syscalls.prog_test_run(fd, frame, repeat)
    return (time.thread_time_ns() - start) / repeat, result.retval


def measure(bench: Speed, rounds: int, repeat: int, loads: int) -> dict[str, list[float]]:
    """ns per run of each side, one figure per round."""
    times: dict[str, list[float]] = {"ours": [], "clang": []}
    pins = BPFFS / f"whistler-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="whistler-speed-") as work:
        objects = _objects(bench, Path(work))
        pins.mkdir()
        try:
            for load in range(loads):
                with ExitStack() as stack:
                    fds = {side: _load(stack, bench, obj, pins) for side, obj in objects.items()}
                    verdicts = {side: _ns_per_run(fd, bench.frame, 1)[1] for side, fd in fds.items()}
                    if verdicts["ours"] != verdicts["clang"]:
                        raise SystemExit(f"{bench.program}: ours returns {verdicts['ours']}, clang's "
                                         f"{verdicts['clang']} on the benchmark frame")
                    share = rounds // loads + (load < rounds % loads)
                    for r in range(share):
                        order = ("ours", "clang") if r % 2 == 0 else ("clang", "ours")
                        for side in order:
                            times[side].append(_ns_per_run(fds[side], bench.frame, repeat)[0])
        finally:
            pins.rmdir()
    return times


def table(results: list[tuple[Speed, dict]], limit: float) -> tuple[str, bool]:
    lines = ["| program | Whistler source | ours ns/packet | clang -O2 ns/packet | ratio | rounds' ratios (middle half) |",
             "|---|---|---:|---:|---:|---:|"]
    ok = True
    for bench, times in results:
        ours, clang = statistics.median(times["ours"]), statistics.median(times["clang"])
        ratio = ours / clang
        over = bench.checked and ratio > limit
        ok = ok and not over
        note = " (over)" if over else "" if bench.checked else " (not checked)"
        paired = sorted(a / b for a, b in zip(times["ours"], times["clang"]))
        q1, q3 = paired[len(paired) // 4], paired[(3 * len(paired)) // 4]
        lines.append(f"| {bench.program} | {bench.lisp} | {ours:.2f} | {clang:.2f} | {ratio:.3f}{note} | "
                     f"{q1:.3f}-{q3:.3f} |")
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Whistler vs clang -O2: ns per packet under BPF_PROG_TEST_RUN")
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio exceeds --limit")
    parser.add_argument("--limit", type=float, default=1.00, help="highest acceptable ours/clang ratio")
    parser.add_argument("--rounds", type=int, default=31, help="timed runs of each side per program")
    parser.add_argument("--repeat", type=int, default=1_000_000, help="runs per BPF_PROG_TEST_RUN call")
    parser.add_argument("--loads", type=int, default=5, help="times each object is loaded afresh")
    parser.add_argument("--only", action="append", default=[], help="program name(s) to run")
    args = parser.parse_args(argv)
    text, ok = run(args.limit, args.rounds, args.repeat, args.loads, args.only)
    print(text)
    return 0 if ok or not args.check else 1


def run(limit: float = 1.00, rounds: int = 31, repeat: int = 1_000_000, loads: int = 5,
        only: list | None = None) -> tuple[str, bool]:
    """The markdown table of the SPEED programs (``only`` these when given), and whether every
    checked ratio is within ``limit``."""
    chosen = [b for b in SPEED if not only or b.program in only]
    results = [(b, measure(b, rounds, repeat, max(1, min(loads, rounds)))) for b in chosen]
    return table(results, limit)


if __name__ == "__main__":
    sys.exit(main())
