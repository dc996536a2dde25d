"""Instruction counts, side by side: our compiler on each Whistler program vs clang -O2 on its C
twin, and optionally vs another Whistler compiler (the original) on the same source.

In: the BENCHMARKS table below (Whistler source, C twin). Out: markdown tables on stdout. Per
program: our instruction slots, clang's and the ratio ours/clang; with ``--original-cmd``, a
second table with the other compiler's slots and the ratio ours/its. With ``--check`` the exit
status is 1 when any program is above clang (``--limit``, default 1.00), the total above
``--total-limit`` (default 0.95) of clang's, any program above the other compiler's count (when
it compiled the program), or anything fails to build.

    .venv/bin/python bench/compare.py [--check] [--original-cmd 'CMD {src} {out}'] [--speed]

``--speed`` adds the run-time table of ``bench/speed.py`` (and its bound to ``--check``).
``--original-cmd`` is a command you supply; ``{src}`` is replaced by the Whistler source and
``{out}`` by the object file to write. It runs in a scratch directory (a source may ask its
compiler to write files of its own there). A program it cannot compile gets the first lines of
its error in the table instead of a count.

Programs are matched by name (the mangled defprog name = the C function name). Counts are
8-byte instruction slots as the kernel counts them (a 64-bit immediate load is 2), read from
each object with ``compiler.elfread`` so every side is counted the same way; a program's count
includes the ``.text`` functions (bpf_loop callbacks) it loads the address of.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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
    ("examples/dns-events.lisp", "bench/c/dns_events.c"),
    ("examples/flow-stats.lisp", "bench/c/flow_stats.c"),
    ("examples/tc-priority.lisp", "bench/c/tc_priority.c"),
    ("examples/vlan-ipv6.lisp", "bench/c/vlan_ipv6.c"),
    ("bench/whistler/lpm-filter.lisp", "bench/c/lpm_filter.c"),
    ("bench/whistler/ipv4-csum.lisp", "bench/c/ipv4_csum.c"),
    ("bench/whistler/sum-counters.lisp", "bench/c/sum_counters.c"),
    ("bench/whistler/score-bytes.lisp", "bench/c/score_bytes.c"),
]
CLANG = ["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]
ORIGINAL_TIMEOUT = 300  # seconds for one compile by --original-cmd


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


def original_counts(cmd: str, src: str, workdir: Path) -> dict[str, int] | str:
    """Counts from the user's command, or why it failed (the first lines of its error)."""
    out = workdir / (Path(src).stem + ".original.o")
    run = workdir / f"run-{Path(src).stem}"
    run.mkdir()
    argv = [part.replace("{src}", str(REPO / src)).replace("{out}", str(out)) for part in shlex.split(cmd)]
    try:
        done = subprocess.run(argv, cwd=run, capture_output=True, text=True, timeout=ORIGINAL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"did not run: {err}"
    if done.returncode != 0 or not out.exists():
        return "fails: " + _first_error(done.stdout + done.stderr)
    return counts(out.read_bytes())


def _first_error(text: str) -> str:
    """The gist of a compiler's failure: its error line, or the condition SBCL reports."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        match = re.search(r"\berror: (.*)", line)
        if match and match.group(1).strip():
            return match.group(1).strip()
        if line.startswith("Unhandled"):
            gist = []
            for follow in lines[i + 1:]:
                if follow.startswith("Backtrace"):
                    break
                gist.append(follow)
            gist = re.sub(r"^.*?\}>:\s*", "", " ".join(gist))  # SBCL's thread name, wrapped
            return gist[:100] or line
    return (lines[-1] if lines else "no output")[:100]


@dataclass
class Row:
    name: str
    src: str
    ours: int | None
    clang: int | None
    original: int | None = None
    note: str = ""  # why a count is missing
    original_note: str = ""


def rows(workdir: Path, original_cmd: str | None = None) -> list[Row]:
    """A row for every program of every benchmark."""
    out = []
    for lisp, c in BENCHMARKS:
        try:
            ours = whistler_counts(lisp)
        except CompileError as err:
            out.append(Row("-", lisp, None, None, note=f"compile error: {str(err).splitlines()[0]}"))
            continue
        theirs = clang_counts(c, workdir)
        original = original_counts(original_cmd, lisp, workdir) if original_cmd else {}
        for name in sorted(set(ours) | set(theirs), key=lambda n: (n not in ours, n)):
            row = Row(name, lisp, ours.get(name), theirs.get(name))
            if name not in ours or name not in theirs:
                row.note = "missing on one side"
            if isinstance(original, str):
                row.original_note = original
            elif original_cmd:
                row.original = original.get(name)
                row.original_note = "" if row.original is not None else "no such program in its object"
            out.append(row)
    return out


def _ratio(a: int, b: int, limit: float | None) -> tuple[str, bool]:
    ratio = a / b
    over = limit is not None and ratio > limit + 1e-9
    return f"{ratio:.2f}{' (over)' if over else ''}", over


def clang_table(results: list[Row], limit: float, total_limit: float) -> tuple[str, bool]:
    lines = ["| program | Whistler source | ours | clang -O2 | ratio |", "|---|---|---:|---:|---:|"]
    ok = True
    for r in results:
        if r.ours is None or r.clang is None:
            ok = False
            lines.append(f"| {r.name} | {r.src} | {r.ours if r.ours is not None else '-'} | "
                         f"{r.clang if r.clang is not None else '-'} | {r.note} |")
            continue
        text, over = _ratio(r.ours, r.clang, limit)
        ok = ok and not over
        lines.append(f"| {r.name} | {r.src} | {r.ours} | {r.clang} | {text} |")
    paired = [r for r in results if r.ours is not None and r.clang is not None]
    if paired:
        text, over = _ratio(sum(r.ours for r in paired), sum(r.clang for r in paired), total_limit)
        ok = ok and not over
        lines.append(f"| **total** | | {sum(r.ours for r in paired)} | {sum(r.clang for r in paired)} | {text} |")
    return "\n".join(lines), ok


def original_table(results: list[Row]) -> tuple[str, bool]:
    lines = ["| program | Whistler source | ours | original | ratio |", "|---|---|---:|---:|---:|"]
    ok = True
    for r in results:
        if r.ours is None:
            continue
        if r.original is None:
            lines.append(f"| {r.name} | {r.src} | {r.ours} | - | {r.original_note} |")
            continue
        text, over = _ratio(r.ours, r.original, 1.0)
        ok = ok and not over
        lines.append(f"| {r.name} | {r.src} | {r.ours} | {r.original} | {text} |")
    paired = [r for r in results if r.ours is not None and r.original is not None]
    if paired:
        ours, theirs = sum(r.ours for r in paired), sum(r.original for r in paired)
        lines.append(f"| **total** (programs both compile) | | {ours} | {theirs} | {ours / theirs:.2f} |")
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Whistler vs clang -O2 (and the original) instruction counts")
    parser.add_argument("--check", action="store_true", help="exit 1 if a bound below is exceeded")
    parser.add_argument("--limit", type=float, default=1.00, help="highest acceptable ours/clang ratio per program")
    parser.add_argument("--total-limit", type=float, default=0.95, help="highest acceptable ours/clang ratio overall")
    parser.add_argument("--original-cmd", metavar="'CMD {src} {out}'",
                        help="a command compiling Whistler source {src} into the object {out}")
    parser.add_argument("--speed", action="store_true",
                        help="also time the programs of bench/speed.py (root, bpffs, bpftool)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="whistler-bench-") as work:
        results = rows(Path(work), args.original_cmd)
    text, ok = clang_table(results, args.limit, args.total_limit)
    print("Size vs clang -O2 (instruction slots)\n")
    print(text)
    if args.original_cmd:
        text, original_ok = original_table(results)
        ok = ok and original_ok
        print("\nSize vs the original Whistler (instruction slots)\n")
        print(text)
    if args.speed:
        import speed  # here, not above: speed imports this module (bench/ is on sys.path as a script)

        text, speed_ok = speed.run()
        ok = ok and speed_ok
        print("\nRun time vs clang -O2 (BPF_PROG_TEST_RUN, ns per packet)\n")
        print(text)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
