"""Conformance: BPF helpers called by name (reference §2.12) return what the kernel says they
should; checked against clocks and limits read in Python around the run.

In: small programs that store helper results in ``res``. Out: pass/fail.
"""

from __future__ import annotations

import os
import time

from tests.kernel.compiler.conformance.case import DEFAULT_FRAME, PRELUDE, program
from tests.kernel.harness import loaded

STORE_TWO = "(setf (getmap res 0) {first})\n  (setf (getmap res 1) {second})\n  1"


def run(pin_dir, body: str) -> tuple[int, dict[int, int]]:
    with loaded(PRELUDE + program(body), pin_dir, "helpers.lisp") as obj:
        retval = obj.run("conf", DEFAULT_FRAME)
        return retval, obj.map("res")


def test_ktime_get_ns_is_the_monotonic_clock(pin_dir):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    retval, res = run(pin_dir, STORE_TWO.format(first="(ktime-get-ns)", second="(ktime-get-ns)"))
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    assert retval == 1
    assert before <= res[0] <= res[1] <= after


def test_ktime_get_boot_ns_is_the_boottime_clock(pin_dir):
    before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    retval, res = run(pin_dir, STORE_TWO.format(first="(ktime-get-boot-ns)", second="(ktime-get-boot-ns)"))
    after = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    assert retval == 1
    assert before <= res[0] <= res[1] <= after


def test_get_prandom_u32_gives_32_bit_values(pin_dir):
    retval, res = run(pin_dir, STORE_TWO.format(first="(get-prandom-u32)", second="(get-prandom-u32)"))
    assert retval == 1
    assert res[0] < 2**32 and res[1] < 2**32
    assert res[0] != res[1]  # equal with probability 2**-32


def test_compares_that_the_width_of_a_u32_result_decides(pin_dir):
    # the compiler folds these compares (the helpers return u32s); the kernel runs the same values
    body = ("(let ((x (get-prandom-u32)))\n"
            "    (setf (getmap res 0) x)\n"
            "    (setf (getmap res 1) (+ (if (>= x #x100000000) 1 0) (if (< x #x100000000) 2 0)"
            " (if (<= (get-smp-processor-id) #xFFFFFFFF) 4 0) (if (= x #x100000000) 8 0)))\n"
            "    (setf (getmap res 2) (log2 x))\n    1)")
    retval, res = run(pin_dir, body)
    assert retval == 1
    assert res[1] == 2 + 4
    assert res[2] == max(res[0].bit_length() - 1, 0)


def test_get_smp_processor_id_is_a_cpu(pin_dir):
    retval, res = run(pin_dir, STORE_TWO.format(first="(get-smp-processor-id)", second="(+ 1 (get-smp-processor-id))"))
    assert retval == 1
    assert 0 <= res[0] < os.cpu_count()
    assert res[1] == res[0] + 1  # no preemption between the two calls inside one run


def test_jiffies64_is_non_zero(pin_dir):
    retval, res = run(pin_dir, STORE_TWO.format(first="(jiffies64)", second="(if (> (jiffies64) 0) 1 0)"))
    assert retval == 1
    assert res[0] > 0 and res[1] == 1


def test_helper_results_survive_later_calls(pin_dir):
    # a is live across three helper calls that clobber r0-r5
    body = ("(let* ((a (get-prandom-u32)) (t1 (ktime-get-ns)) (b (get-prandom-u32)) (t2 (ktime-get-ns)))\n"
            "    (setf (getmap res 0) a)\n    (setf (getmap res 1) b)\n    (setf (getmap res 2) (- t2 t1))\n"
            "    (logand a #xFFFF))")
    retval, res = run(pin_dir, body)
    assert retval == res[0] & 0xFFFF
    assert res[0] < 2**32 and res[1] < 2**32
    assert res[2] < 10**9  # t2 >= t1, and both calls happened within one run (no wrap)
