"""Instruction counts, side by side: our compiler on each Whistler program vs clang -O2 on its C twin.

In: the BENCHMARKS table below (Whistler source, C twin). Out: a markdown table on stdout, per
program: our instruction slots, clang's, and the ratio ours/clang. With ``--check`` the exit
status is 1 when any ratio exceeds ``--limit`` (default 1.10) or any program fails to build.

    .venv/bin/python bench/compare.py [--check] [--limit 1.10]

Programs are matched by name (the mangled defprog name = the C function name). Counts are
8-byte instruction slots as the kernel counts them (a 64-bit immediate load is 2), read from
each object with ``compiler.elfread`` so both sides are counted the same way; a program's count
includes the ``.text`` functions (bpf_loop callbacks) it loads the address of.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compiler import CompileError, compile_source  # noqa: E402
from compiler.elfread import read_programs  # noqa: E402
from compiler.isa import slot_count  # noqa: E402

# (Whistler source, C twin), relative to the repository root.
BENCHMARKS = [
    ("bench/whistler/tail-call-dispatch.lisp", "bench/c/tail_call_dispatch.c"),
    ("bench/whistler/count-xdp.lisp", "bench/c/count_xdp.c"),
    ("bench/whistler/drop-port.lisp", "bench/c/drop_port.c"),
    ("bench/whistler/sum-counters.lisp", "bench/c/sum_counters.c"),
    ("bench/whistler/score-bytes.lisp", "bench/c/score_bytes.c"),
]
CLANG = ["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]


def counts(elf: bytes) -> dict[str, int]:
    """Program name -> its slots, with the .text functions it loads the address of (bpf_loop
    callbacks), as the kernel receives it once the loader appended them."""
    programs = read_programs(elf)
    text = {p.name: p for p in programs if p.section == ".text"}

    def reached(p, seen: set) -> int:
        callees = {i.func_ref for i in p.insns if i.func_ref in text} - seen
        seen |= callees
        return slot_count(list(p.insns)) + sum(reached(text[c], seen) for c in sorted(callees))

    return {p.name: reached(p, set()) for p in programs if p.section != ".text"}


def whistler_counts(src: str) -> dict[str, int]:
    path = REPO / src
    return counts(compile_source(path.read_text(), src).elf)


def clang_counts(src: str, workdir: Path) -> dict[str, int]:
    out = workdir / (Path(src).stem + ".o")
    subprocess.run([*CLANG, "-c", str(REPO / src), "-o", str(out)], check=True, capture_output=True, text=True)
    return counts(out.read_bytes())


def rows(workdir: Path) -> list[tuple[str, str, int | None, int | None, str]]:
    """(program, source, ours, clang's, note) for every program of every benchmark."""
    out = []
    for lisp, c in BENCHMARKS:
        try:
            ours = whistler_counts(lisp)
        except CompileError as err:
            out.append(("-", lisp, None, None, f"compile error: {str(err).splitlines()[0]}"))
            continue
        theirs = clang_counts(c, workdir)
        for name in sorted(set(ours) | set(theirs), key=lambda n: (n not in ours, n)):
            note = "" if name in ours and name in theirs else "missing on one side"
            out.append((name, lisp, ours.get(name), theirs.get(name), note))
    return out


def table(results, limit: float) -> tuple[str, bool]:
    lines = ["| program | Whistler source | ours | clang -O2 | ratio |", "|---|---|---:|---:|---:|"]
    ok = True
    for name, src, ours, theirs, note in results:
        if ours is None or theirs is None:
            ok = False
            lines.append(f"| {name} | {src} | {ours if ours is not None else '-'} | "
                         f"{theirs if theirs is not None else '-'} | {note} |")
            continue
        ratio = ours / theirs
        over = ratio > limit
        ok = ok and not over
        lines.append(f"| {name} | {src} | {ours} | {theirs} | {ratio:.2f}{' (over)' if over else ''} |")
    total_ours = sum(r[2] for r in results if r[2] is not None and r[3] is not None)
    total_theirs = sum(r[3] for r in results if r[2] is not None and r[3] is not None)
    if total_theirs:
        lines.append(f"| **total** | | {total_ours} | {total_theirs} | {total_ours / total_theirs:.2f} |")
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Whistler vs clang -O2 instruction counts")
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio exceeds --limit")
    parser.add_argument("--limit", type=float, default=1.10, help="highest acceptable ours/clang ratio")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="whistler-bench-") as work:
        text, ok = table(rows(Path(work)), args.limit)
    print(text)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
