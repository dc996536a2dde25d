"""Conformance: bounded loops (reference §2.15, issue 9), run in the kernel.

Every case is loaded by bpftool (libbpf) and run with BPF_PROG_TEST_RUN; expected values are computed
here in Python. Counts cover 0, 1, small, thousands (open-coded loops the verifier walks) and a
million (bpf_loop), nests of 64x64, 64x64x64 and 64**4, run-time counts with ``:max`` (clamped),
variables set in the body and read after it, map operations, early returns, tail calls, the
context and the packet inside loops, and stack memory. ``test_planned_walk_covers_the_verifier``
loads every case with our own loader as well and checks that the compiler's estimate of the
verifier's work (``loopplan``) is never below what the kernel reports (``verified_insns``).
"""

from __future__ import annotations

import re
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.fd import FdOwner
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program

import compiler
from compiler import loopplan
from tests.kernel.compiler.conformance.case import (
    DEFAULT_FRAME,
    MASK64,
    PRELUDE,
    Case,
    program,
    res,
    run_case,
    value,
)

A = "(getmap args 0)"
COUNT = "(incf (getmap res 1))"  # bumps the side-effect counter in res[1]
M = MASK64


def summed(n: int, start: int = 0) -> int:
    return (start + n * (n - 1) // 2) & M


def fibonacci(n: int) -> int:
    a, b = 0, 1
    for _step in range(n):
        a, b = b, (a + b) & M
    return a


def counted(case_id: str, count: str, expected_by_a: dict[int, int], **kw) -> list[Case]:
    """``(dotimes (i COUNT) (incf s i))`` per run-time value of A."""
    return [value(f"{case_id} a={a:#x}", f"(let ((s 0)) (dotimes (i {count}) (incf s i)) s)", expected,
                  args={0: a}, **kw) for a, expected in expected_by_a.items()]


JT = "(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 8)"
LOOPING_TARGET = """(defprog target (:section "xdp/target")
  (let ((s 0))
    (dotimes (i 100) (incf s i))
    (dotimes (i 1000000) (incf (getmap res 3)))
    (setf (getmap res 2) s))
  XDP_TX)"""

CASES = [
    # constant counts: unrolled (0, 1), open-coded loops (up to a few hundred thousand), bpf_loop
    *[value(f"sum of {n} indices", f"(let ((s {A})) (dotimes (i {n}) (incf s i)) s)", summed(n, 5), args={0: 5})
      for n in (0, 1, 2, 10, 5000, 100000, 1000000)],
    value("a count from a constant expression", "(let ((s 0)) (dotimes (i (* +n+ 3)) (incf s)) s)", 21,
          extra="(defconstant +n+ 7)"),
    value("zero iterations run nothing", f"(progn (dotimes (i 0) {COUNT}) 5)", 5, counts=(0,)),
    value("one iteration runs once", f"(progn (dotimes (i 1) {COUNT}) 5)", 5, counts=(1,)),
    # nests
    value("64x64 nest", "(let ((s 0)) (dotimes (i 64) (dotimes (j 64) (incf s (* i j)))) s)",
          sum(i * j for i in range(64) for j in range(64))),
    value("64x64x64 nest", "(let ((s 0)) (dotimes (i 64) (dotimes (j 64) (dotimes (k 64) (incf s (logxor i j k))))) s)",
          sum(i ^ j ^ k for i in range(64) for j in range(64) for k in range(64))),
    # found by the fuzzer: the callbacks' register pressure spills a value an arg defines
    value("64x64x64 nest reading a map", f"(let ((s 0)) (dotimes (i 64) (dotimes (j 64) (dotimes (k 64)"
          f" (incf s (logxor i j {A}))))) s)", sum(i ^ j ^ 5 for i in range(64) for j in range(64)) * 64, args={0: 5}),
    value("64**4 nest", "(let ((s 0)) (dotimes (i 64) (dotimes (j 64) (dotimes (k 64) (dotimes (l 64)"
          " (incf s (logand (+ i j k l) 7)))))) s)", 64 ** 4 // 8 * sum(range(8))),
    value("inner count from the outer index", "(let ((s 0)) (dotimes (i 10) (dotimes (j i :max 10) (incf s))) s)",
          sum(range(10))),
    # run-time counts: min(COUNT, MAX) iterations, COUNT unsigned
    *counted("run-time count", f"{A} :max 16",
             {0: 0, 5: summed(5), 16: summed(16), 17: summed(16), M: summed(16), 1 << 40: summed(16)}),
    *counted("run-time count, bpf_loop", f"{A} :max 1000000",
             {0: 0, 123457: summed(123457), 1 << 33: summed(1000000)}),
    *counted("run-time count bounded by 0", f"{A} :max 0", {9: 0}),
    *counted("run-time count bounded by 1", f"{A} :max 1", {0: 0, 9: 0}),
    value("the count is evaluated once", f"(let ((s 0)) (dotimes (i (progn {COUNT} {A}) :max 8) (incf s)) s)", 3,
          args={0: 3}, counts=(1,)),
    # variables set in the body are visible after it; the index is a fresh copy each iteration
    # a variable computed from itself as the second operand of an op that does not commute: BPF's
    # two-operand form cannot compute s = k - s in s's register (an internal error before)
    *[value(f"the variable is the second operand of - a={a}", f"(let ((s 7)) (dotimes (i {A} :max 40)"
            " (setf s (- 100 s))) s)", 7 if a % 2 == 0 else 93, args={0: a}) for a in (0, 1, 5, 40)],
    value("the variable is the divisor and the shift count", f"(let ((s 3) (u 1)) (dotimes (i {A} :max 8)"
          " (setf s (/ 1000 s)) (setf u (<< 1 u))) (+ (* s 1000) u))", 3 * 1000 + 65536, args={0: 4}),
    value("fibonacci", "(let ((a 0) (b 1)) (dotimes (i 90) (let ((c (+ a b))) (setf a b) (setf b c))) a)",
          fibonacci(90)),
    value("fibonacci under bpf_loop", "(let ((a 0) (b 1)) (dotimes (i 1000000) (let ((c (+ a b))) (setf a b)"
          " (setf b c))) a)", fibonacci(1000000)),
    value("setting the index changes only its copy", "(let ((s 0)) (dotimes (i 5) (setf i (+ i 10)) (incf s i)) s)",
          sum(i + 10 for i in range(5))),
    value("a value from before the loop", f"(let ((k {A}) (s 0)) (dotimes (i 1000000) (incf s k)) (+ s k))",
          (1000000 * 3 + 3) & M, args={0: 3}),
    # map operations
    value("map updates in a loop", "(progn (dotimes (i 3) (setf (getmap res (+ i 1)) (* (+ i 1) 11))) 0)", 0,
          counts=(11, 22, 33)),
    value("counter bumped in a loop", f"(progn (dotimes (i 10) {COUNT}) 0)", 0, counts=(10,)),
    value("counter bumped a million times", f"(progn (dotimes (i 1000000) {COUNT}) 0)", 0, counts=(1000000,)),
    Case("lookups in a loop", program("(let ((s 0))\n    (dotimes (i 4) (let ((v (getmap args i))) (when v (incf s v))))"
                                      "\n    (setf (getmap res 0) s) s)"), 1 + 2 + 3 + 40, res(46),
         args={0: 1, 1: 2, 2: 3, 3: 40}),
    Case("largest value in a million lookups",
         program("(let ((s 0))\n    (dotimes (i 1000000) (let ((v (getmap args (logand i 3)))) (when (> v s) (setf s v))))"
                 "\n    (setf (getmap res 0) s) s)"), 40, res(40), args={0: 1, 1: 2, 2: 40, 3: 7}),
    # early returns
    *[Case(f"return from a {kind} a={a}",
           program(f"(dotimes (i {n}) (when (= i {A}) (return (+ i 1))))\n  (setf (getmap res 0) 1)\n  7"),
           expected & 0xFFFFFFFF, res(stored), args={0: a})
      for kind, n in (("loop", 100), ("bpf_loop", 1000000))
      for a, expected, stored in ((42, 43, 0), (n - 1, n, 0), (n, 7, 1))],
    *[Case(f"return from a nest a={a}",
           program(f"(dotimes (i 1000) (dotimes (j 1000) (when (= (+ (* i 1000) j) {A}) (return j))))\n  9"),
           expected, res(), args={0: a}) for a, expected in ((500123, 123), (999999, 999), (10 ** 6, 9))],
    # context and packet
    value("context reads in a million iterations", "(let ((s 0)) (dotimes (i 1000000) (incf s (- (xdp-data-end) "
          "(xdp-data)))) s)", 1000000 * len(DEFAULT_FRAME)),
    value("packet bytes at the index", "(let ((s 0)) (with-packet (d de :min-len 16) (dotimes (i 16) "
          "(incf s (load u8 d i)))) s)", sum(DEFAULT_FRAME[:16])),
    value("packet bytes at the index in a long loop", "(let ((s 0)) (with-packet (d de :min-len 64)"
          " (dotimes (i 40000) (incf s (load u8 d (logand i 63))))) s)",
          sum(DEFAULT_FRAME[i & 63] for i in range(64)) * (40000 // 64)),
    # stack memory written in a loop, read after it
    value("struct bytes filled in a loop", "(let ((p (struct-alloc 16))) (dotimes (i 16) (store u8 p i (* i 3)))"
          " (+ (load u64 p 0) (load u64 p 8)))",
          sum(struct.unpack("<QQ", bytes(i * 3 for i in range(16)))) & M),
    value("struct bytes filled under bpf_loop", "(let ((p (struct-alloc 16)) (k 0)) (dotimes (i 1000000)"
          " (store u8 p 9 k) (incf k)) (load u64 p 8))", ((1000000 - 1) & 0xFF) << 8),
    # tail calls: from a loop, and into a program with loops
    Case("tail-call from a loop tries slots in order", program(f"(dotimes (i 4) {COUNT} (tail-call jt (+ i {A})))\n  42",
                                                               JT + "\n" + LOOPING_TARGET),
         3, res(0, 3, summed(100), 1000000), args={0: 1}, slots={("jt", 3): "target"}),
    Case("tail-call from a loop falls through", program(f"(dotimes (i 4) {COUNT} (tail-call jt (+ i {A})))\n  42",
                                                        JT + "\n" + LOOPING_TARGET),
         42, res(0, 4), args={0: 5}, slots={("jt", 3): "target"}),
    # TC
    Case("loop in a tc program", program("(let ((s 0)) (dotimes (i 1000000) (incf s (ctx len))) (setf (getmap res 0) s)"
                                         " 0)", options=":type :tc"), 0, res(1000000 * len(DEFAULT_FRAME)),
         prog_type="tc"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_loop(case, pin_dir):
    run_case(case, pin_dir)


def _verified(elf: bytes) -> dict:
    """Program name -> instructions the verifier processed, loading with our loader."""
    spec = objfile.read_object(elf)
    owners = [FdOwner(sc.btf_load(spec.btf), "btf")]
    try:
        maps = {m.name: Map.create(m, owners[0].fd) for m in spec.maps}
        owners += maps.values()
        out = {}
        for p in spec.programs:
            prog = Program.load(p, {name: m.fd for name, m in maps.items()}, owners[0].fd)
            owners.append(prog)
            out[p.name] = prog.info().verified_insns
        return out
    finally:
        for owner in reversed(owners):
            owner.close()


LOOP_SOURCES = sorted({c.source for c in CASES}, key=len)


@pytest.mark.parametrize("source", LOOP_SOURCES, ids=[re.sub(r"\s+", " ", s)[-60:] for s in LOOP_SOURCES])
def test_planned_walk_covers_the_verifier(source):
    compiled = compiler.compile_source(PRELUDE + source, "loop.lisp")
    verified = _verified(compiled.elf)
    for prog in compiled.unit.programs:
        planned = loopplan.plan(prog, compiled.unit).walk
        assert verified[prog.name] <= planned, f"{prog.name}: the kernel walked more than planned"


def test_cases_cover_every_strategy():
    """The cases above run open-coded loops, bpf_loop callbacks (nested ones too) and unrolled ones."""
    seen = set()
    for source in LOOP_SOURCES:
        compiled = compiler.compile_source(PRELUDE + source, "loop.lisp")
        for prog in compiled.unit.programs:
            seen |= {lp.strategy for lp in loopplan.plan(prog, compiled.unit).loops.values()}
        code = compiled.programs[-1]
        if "64**4" in source or "(dotimes (l 64)" in source:
            assert len(code.subprograms) == 2  # two levels of bpf_loop, the inner one inside the outer callback
    assert seen == {"unroll", "open", "callback"}
