"""A short slice of the compiler fuzzer (``tests/fuzz/compile_fuzz.py``): no internal errors.

In: programs 0..COUNT-1 of seed SEED, generated and mutated from the repository's own programs.
Out: every one compiles or fails with a located ``CompileError``; a failure message names the
program's index so ``python -m tests.fuzz.compile_fuzz --seed 7 --start INDEX --count 1 --show``
replays it. The long runs (500,000 programs and more) are recorded in docs/fuzzing.md.
"""

from __future__ import annotations

from tests.fuzz import compile_fuzz

SEED = 7
COUNT = 2000


def test_fuzzed_programs_compile_or_fail_with_a_located_error():
    result = compile_fuzz.run(SEED, 0, COUNT)
    assert sum(result["counts"].values()) == COUNT
    assert result["counts"].get("ok", 0) > COUNT // 10, result["counts"]  # the mutations leave many programs valid
    bad = [f"#{f['index']} {f['kind']}: {f['detail'][:300]}" for f in result["failures"]
           if not f["kind"].startswith("slow:")]
    assert not bad, "\n".join(bad)
