"""The original Whistler's own XDP/TC programs, through our compiler and the kernel.

In: a checkout of the original Whistler (``--whistler PATH``; its files are read, never built or
run). Out: a tally on stdout (markdown, or ``--json``): programs found, compiled, loaded and
behaved, and each failure with its reason. Needs root, bpffs and bpftool (programs are loaded
with ``bpftool prog loadall`` and run with BPF_PROG_TEST_RUN through ``tests/kernel/harness``).

    sudo .venv/bin/python bench/original_programs.py --whistler /path/to/Whistler [--json]

Where the programs come from:

* ``examples/*.lisp`` with at least one ``defprog`` and only ``:xdp``/``:tc`` programs; the
  others (tracepoints, uprobes, cgroup, sk_lookup, loader sessions) are listed as excluded.
  "Behaved" runs each example against the expectations in ``original/examples.py``, derived
  from what the example's comments say it does (the original's tests only compile them).
* ``tests/*.lisp``: every FiveAM ``test`` (and ``deftest``) that compiles Whistler code —
  ``w-body``, ``w-count``, ``compile-single``, ``compile-program``, ``torture-verify``, inline
  ``defmap``/``defprog``, ``eval-whistler`` — is evaluated by a small interpreter for the
  subset of Common Lisp the tests use, with those functions backed by our compiler. Each
  program is loaded as XDP (which is what ``compile-single`` compiles for) and "behaved" means
  every assertion of its test held (opcode checks run on our instruction bytes). Programs that
  use tracing-only forms, or helpers the kernel does not offer XDP programs, are excluded and
  counted as such; bpftrace tests and host-side tests (loader, symbolizer) have no program.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from original.examples import defprog_types, example_programs, run_example  # noqa: E402
from original.programs import Kernel, Program  # noqa: E402
from original.testlisp import TestRun, run_tests  # noqa: E402


def tally(programs: list[Program]) -> dict:
    counted = [p for p in programs if not p.excluded]
    return {"found": len(counted), "compiled": sum(p.compiled for p in counted),
            "loaded": sum(p.loaded for p in counted), "behaved": sum(p.behaved for p in counted),
            "excluded": len(programs) - len(counted)}


def report(examples: list[Program], runs: list[TestRun]) -> dict:
    test_programs, seen = [], set()
    for run in runs:
        for prog in run.programs:
            if id(prog) not in seen:
                seen.add(id(prog))
                test_programs.append(prog)
    failing_tests = [(r.origin, r.failures[0]) for r in runs
                     if r.failures and any(not p.excluded for p in r.programs)]
    evaluated = [r for r in runs if any(not p.excluded for p in r.programs) or r.negative]
    return {
        "examples": tally(examples), "tests": tally(test_programs),
        "test_count": {"with_programs": len(evaluated), "all_assertions_held": sum(not r.failures for r in evaluated)},
        "example_programs": sum(len(defprog_types(p.source)) for p in examples if not p.excluded),
        "example_rows": [{"file": p.origin, "excluded": p.excluded, "compiled": p.compiled, "loaded": p.loaded,
                          "behaved": p.behaved, "reason": p.reason} for p in examples],
        "test_failures": [{"test": t, "reason": why} for t, why in failing_tests],
        "test_excluded": sorted({(p.origin, p.excluded) for p in test_programs if p.excluded}),
        "negative_tests": [{"test": r.origin, "ok": not r.failures} for r in runs if r.negative],
    }


def markdown(result: dict) -> str:
    out = ["| | programs | compiled | loaded | behaved | excluded |", "|---|---:|---:|---:|---:|---:|"]
    for name in ("examples", "tests"):
        t = result[name]
        out.append(f"| {name} | {t['found']} | {t['compiled']} | {t['loaded']} | {t['behaved']} | {t['excluded']} |")
    counts = result["test_count"]
    out += ["", f"Example files hold {result['example_programs']} XDP/TC programs. Of the original's FiveAM tests, "
            f"{counts['with_programs']} compile XDP code (the others are host-side: loader, bpftrace, symbolizer); "
            f"every assertion held in {counts['all_assertions_held']} of them."]
    out += ["", "| example | result |", "|---|---|"]
    for row in result["example_rows"]:
        if row["excluded"]:
            verdict = f"excluded: {row['excluded']}"
        elif row["behaved"]:
            verdict = "compiles, loads, behaves"
        else:
            verdict = row["reason"]
        out.append(f"| {row['file']} | {verdict} |")
    if result["test_failures"]:
        out += ["", "| test | first failure |", "|---|---|"]
        out += [f"| {f['test']} | {f['reason'].replace('|', '/')} |" for f in result["test_failures"]]
    if result["test_excluded"]:
        out += ["", "| excluded test program | why |", "|---|---|"]
        out += [f"| {origin} | {why} |" for origin, why in result["test_excluded"]]
    if result["negative_tests"]:
        out += ["", "| test expecting a compile error | rejected as expected |", "|---|---|"]
        out += [f"| {n['test']} | {'yes' if n['ok'] else 'no'} |" for n in result["negative_tests"]]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whistler", required=True, type=Path, help="checkout of the original Whistler")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    root = args.whistler
    if not (root / "examples").is_dir() or not (root / "tests").is_dir():
        parser.error(f"{root} has no examples/ and tests/ directories")
    kernel = Kernel()
    workdir = Path(tempfile.mkdtemp(prefix="whistler-bench-"))
    try:
        examples = example_programs(root)
        for prog in examples:
            run_example(kernel, prog)
        runs = run_tests(kernel, root, workdir)
    finally:
        kernel.close()
        shutil.rmtree(workdir, ignore_errors=True)
    result = report(examples, runs)
    print(json.dumps(result, indent=2) if args.json else markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
