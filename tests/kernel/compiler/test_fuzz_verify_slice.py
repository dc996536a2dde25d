"""CI slice of the verifier fuzzer (bench/fuzz_verify.py): of the mutated programs the compiler
accepts, at least 99.5% load, and the checking stage refuses nothing the kernel would load.

In: a fixed seed and range of programs (the first ``COUNT`` of seed ``SEED``). Out: pass/fail,
with the refused programs' reasons in the message. The full measurement (over 10,000 accepted
programs) is in docs/verifier-checks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import fuzz_verify  # noqa: E402

SEED, COUNT = 20261201, 800


def test_accepted_programs_load():
    summary = fuzz_verify.run(SEED, 0, COUNT)
    counts = summary["counts"]
    assert summary["accepted"] >= COUNT // 3, counts  # enough programs get through to mean something
    assert counts["ice"] == 0, counts
    assert summary["pass_rate"] >= fuzz_verify.THRESHOLD, summary["rejections"]
    assert counts["false-refusal"] == 0, summary["false_refusals"]
