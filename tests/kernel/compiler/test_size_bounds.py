"""Code size never regresses past its bounds: ``bench/compare.py --check`` (every benchmark program at
most clang -O2's instruction slots, all of them together at most 0.95 of clang's) passes. Instruction
counts are deterministic, so this is a check of the compiler's output, not a timing: the ratios
themselves are printed by the benchmark (docs/benchmarks.md).

In: bench/compare.py's programs and their C twins (clang, which scripts/bootstrap.sh installs).
Out: pass/fail, with the benchmark's table on failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_no_program_above_clang_and_the_total_within_bound():
    run = subprocess.run([sys.executable, str(REPO / "bench" / "compare.py"), "--check"], cwd=REPO,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| **total** |" in run.stdout  # the table was built from the programs, not skipped
