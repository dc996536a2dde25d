"""How long the CLI takes to compile a program, as a multiple of a bare Python start.

In: a Whistler source (default: the seed, examples/seed/xdp-tail-call-dispatch.lisp), a run
count, the Python to use (default: this one). Out: a table of medians: whole-process wall
and CPU time (user + system, the kernel's accounting of the finished child) of

  A  python -m compiler compile SRC -o OUT     (what a user or an Ansible worker runs)
  B  python -c pass                            (the same interpreter starting and exiting)

run in turn (A B A B ...) so that both see the same machine, and the ratios A/B taken pair by
pair. ``--check`` exits 1 when the median CPU ratio is above ``--max-ratio`` (default 3).

The compiler's bytecode is compiled first (``compileall``) and written normally: a user's
installation has its ``.pyc`` files after the first run, and ``PYTHONDONTWRITEBYTECODE`` (set in
some shells) would otherwise have every run recompile every module.

    .venv/bin/python bench/compile_speed.py [--runs 40] [--check] [SRC]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "examples" / "seed" / "xdp-tail-call-dispatch.lisp"


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``, which must succeed."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("src", nargs="?", default=str(SEED))
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--check", action="store_true", help="fail when the CPU ratio exceeds --max-ratio")
    parser.add_argument("--max-ratio", type=float, default=3.0)
    args = parser.parse_args()

    compileall.compile_dir(str(REPO / "compiler"), quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="whistler-speed-") as tmp:
        compile_cmd = [args.python, "-m", "compiler", "compile", args.src, "-o", os.path.join(tmp, "out.bpf.o")]
        bare_cmd = [args.python, "-c", "pass"]
        for _warmup in range(3):
            timed(compile_cmd, env), timed(bare_cmd, env)
        pairs = [(timed(compile_cmd, env), timed(bare_cmd, env)) for _run in range(args.runs)]

    def median(values) -> float:
        return statistics.median(values)

    rows = [("A: python -m compiler compile", [a for a, _b in pairs]), ("B: python -c pass", [b for _a, b in pairs])]
    print(f"{args.runs} runs each, alternating; {Path(args.src).name}; {args.python}")
    print("| command | wall median (ms) | CPU median (ms) |\n|---|---:|---:|")
    for name, runs in rows:
        print(f"| {name} | {1e3 * median(w for w, _c in runs):.1f} | {1e3 * median(c for _w, c in runs):.1f} |")
    wall_ratio = median(a[0] / b[0] for a, b in pairs)
    cpu_ratio = median(a[1] / b[1] for a, b in pairs if b[1] > 0)
    print(f"| ratio A/B (median of pairs) | {wall_ratio:.2f} | {cpu_ratio:.2f} |")
    if args.check and cpu_ratio > args.max_ratio:
        print(f"CPU ratio {cpu_ratio:.2f} is above {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
