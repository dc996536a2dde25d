"""Loop planning: which loops run open-coded, unrolled or under bpf_loop, and the located errors for
programs the verifier could not walk within its budget whatever the choice."""

from __future__ import annotations

import time

import pytest

import compiler
from compiler import loopplan, reader
from compiler.errors import CompileError, Loc
from compiler.expand import expand_unit
from compiler.records import replace

MAPS = """(defmap res :type :array :key-size 4 :value-size 8 :max-entries 4)
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 4) (defmap wide :type :array :key-size 4 :value-size 256 :max-entries 1)
"""
WIDE_UPDATE = "(setf (getmap wide 0) (+ s {k}))"  # about 40 instructions: the value is 32 stores


def unit_of(body: str):
    return expand_unit(reader.read(f"{MAPS}(defprog p ()\n  {body})", "t.lisp"), "t.lisp")


def strategies(body: str) -> list:
    """(loop variable, trip, strategy) of every loop, outer ones first."""
    unit = unit_of(body)
    plan = loopplan.plan(unit.programs[0], unit)
    return [(lp.var.lower(), lp.trip, lp.strategy) for lp in plan.loops.values()]


def error(body: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        compiler.compile_source(f"{MAPS}(defprog p ()\n  {body})", "t.lisp")
    return info.value


SUM = "(let ((s 0)) {} s)"


@pytest.mark.parametrize("body, expected", [
    ("(dotimes (i 0) (incf s))", [("i", 0, "unroll")]),
    ("(dotimes (i 1) (incf s))", [("i", 1, "unroll")]),
    ("(dotimes (i 10) (incf s i))", [("i", 10, "open")]),
    ("(dotimes (i 100000) (incf s i))", [("i", 100000, "open")]),
    ("(dotimes (i 1000000) (incf s i))", [("i", 1000000, "callback")]),
    ("(dotimes (i 8388608) (incf s i))", [("i", 8388608, "callback")]),
    ("(dotimes (i (getmap res 0) :max 5000) (incf s i))", [("i", 5000, "open")]),
    ("(dotimes (i 64) (dotimes (j 64) (incf s (* i j))))", [("i", 64, "open"), ("j", 64, "open")]),
    ("(dotimes (i 64) (dotimes (j 64) (dotimes (k 64) (incf s (logxor i j k)))))",
     [("i", 64, "callback"), ("j", 64, "open"), ("k", 64, "open")]),
    # a loop of map updates: each iteration costs more to walk, so fewer iterations fit
    ("(dotimes (i 200000) (setf (getmap res (logand i 3)) i))", [("i", 200000, "callback")]),
])
def test_strategy(body, expected):
    assert strategies(SUM.format(body)) == expected


def test_many_loops_that_fit_alone_but_not_together():
    loops = " ".join(f"(dotimes (i{k} 60000) (incf s i{k}))" for k in range(8))
    got = strategies(SUM.format(loops))
    assert {s for _v, _t, s in got} == {"open", "callback"}
    assert sum(s == "open" for _v, _t, s in got) <= 2


def test_small_loops_are_unroll_candidates_large_ones_are_not():
    unit = unit_of("(let ((s 0)) (dotimes (i 2) (incf s)) (dotimes (j 100) (incf s)) s)")
    plan = loopplan.plan(unit.programs[0], unit)
    assert [lp.var for lp in plan.unroll_candidates] == ["I"]
    assert plan.unrolling(plan.unroll_candidates[0]).loop(plan.unroll_candidates[0].form).strategy == "unroll"


def test_unrolling_is_kept_only_when_smaller():
    tiny = compiler.compile_source(f"{MAPS}(defprog p () (let ((s 0)) (dotimes (i 2) (incf s)) s))")
    assert not any(i.is_jump and i.off < 0 for i in tiny.programs[0].insns)  # unrolled: no back edge
    bigger = compiler.compile_source(
        f"{MAPS}(defprog p () (let ((s 0)) (dotimes (i 3) (setf (getmap res i) (+ s i))) s))")
    assert any(i.is_jump and i.off < 0 for i in bigger.programs[0].insns)  # three map updates: a loop


def test_a_tail_call_keeps_a_loop_open_and_too_long_is_an_error():
    err = error("(dotimes (i 1000000)\n    (tail-call jt (logand i 3)))\n  2")
    assert (err.loc.line, err.loc.col) == (4, 3)
    assert "more than its budget of 1000000" in err.what
    assert "tail-call (t.lisp:5:5)" in err.hint and "refuses inside a bpf_loop callback" in err.hint
    assert strategies("(dotimes (i 1000) (tail-call jt 0))") == [("i", 1000, "open")]


def test_a_variable_the_verifier_must_follow_keeps_a_loop_open():
    err = error("(let ((s 0))\n    (dotimes (i 1000000)\n      (when (< s 100000) (incf s)))\n    s)")
    assert (err.loc.line, err.loc.col) == (5, 5)
    assert "the body changes s, whose exact value the verifier follows" in err.hint
    assert "(it is tested or used as an address at t.lisp:6:16)" in err.hint


def test_a_variable_tested_after_the_loop_is_followed_too():
    after = "(when (> s 5) (setf (getmap res 1) 1))"
    # as a callback every call would start a walk of the test: it stays open, and this one is too long
    err = error(f"(let ((s 0))\n    (dotimes (i 1000000) (incf s))\n    {after}\n    s)")
    assert "tested or used as an address at t.lisp:6:14" in err.hint
    # with a run-time count, the code after the loop is walked once per iteration that may be the last
    unit = unit_of(f"(let ((s 0) (n (getmap res 0))) (dotimes (i n :max 3000) (incf s)) {after} s)")
    plan = loopplan.plan(unit.programs[0], unit)
    assert [lp.strategy for lp in plan.loops.values()] == ["open"] and plan.walk > 3000 * 10
    assert strategies("(let ((s 0)) (dotimes (i 1000000) (incf s)) (setf (getmap res 1) s) s)")[0][2] == "callback"


@pytest.mark.parametrize("body", [
    "(dotimes (i 1000000) (let ((v (getmap res (logand i 3)))) (when (> v s) (setf s v))))",  # vs a map value
    "(dotimes (i 1000000) (when (< i 5) (incf s)))",  # tests the index, not s
    "(dotimes (i 1000000) (setf (getmap res 0) s) (incf s))",  # s only stored
])
def test_variables_the_verifier_does_not_follow_allow_bpf_loop(body):
    assert strategies(SUM.format(body))[0][2] == "callback"


def test_a_body_too_large_for_any_strategy_is_an_error_at_its_loop():
    # Eight nested loops of 100: each level run as a callback still multiplies the walk by the
    # verifier's few walks of a callback. (A single loop whose body alone is too large would be a
    # program past the compiler's size limit, refused before planning.)
    nest = "".join(f"(dotimes (i{n} 100)\n      " for n in range(8)) + "(incf (getmap res 0))" + ")" * 8
    err = error(f"(let ((s 0))\n    {nest}\n    s)")
    assert "the verifier would have to walk about" in err.what and err.loc == Loc("t.lisp", 5, 5)


def test_deep_nests_convert_one_level_at_a_time():
    # 64**4 iterations: one callback level leaves 4 * 64**3 walks of the body, still too many
    body = "(incf s (logxor i j k l))"
    for var in "lkji":
        body = f"(dotimes ({var} 64) {body})"
    assert [s for _v, _t, s in strategies(SUM.format(body))] == ["callback", "callback", "open", "open"]


def test_nests_plan_in_linear_time():
    deep = "(incf s)"
    for k in range(7):
        deep = f"(dotimes (i{k} 8) {deep})"
    start = time.process_time()
    unit = unit_of(SUM.format(deep))
    plan = loopplan.plan(unit.programs[0], unit)
    assert time.process_time() - start < 1.0  # a few rounds over the nest, each linear in its size
    got = [lp.strategy for lp in plan.loops.values()]
    assert plan.walk <= loopplan.WALK_BUDGET and got[0] == "callback" and got[-1] == "open"


def test_an_address_from_the_index_keeps_a_loop_open():
    err = error("(let ((p (struct-alloc 16)))\n    (dotimes (i 1000000)\n      (store u8 p (logand i 15) i))\n    0)")
    assert (err.loc.line, err.loc.col) == (5, 5)
    assert "it computes an address from i (t.lisp:6:7)" in err.hint
    assert strategies("(let ((p (struct-alloc 16))) (dotimes (i 1000) (store u8 p (logand i 15) i)) 0)") == \
        [("i", 1000, "open")]


def test_a_loop_body_beyond_a_jumps_reach_is_a_located_error():
    huge = " ".join(WIDE_UPDATE.format(k=k) for k in range(900))
    err = error(f"(let ((s 0))\n    (dotimes (i 2)\n      {huge})\n    s)")
    assert "jump over" in err.what and "more than the 32767 a BPF jump reaches" in err.what
    assert err.loc.line == 5


def test_a_variable_named_dotimes_is_not_a_loop():
    # its binding, (DOTIMES NIL INIT) in core forms, looks like a loop form to a blind walk
    found = strategies("(let ((dotimes (getmap res 0))) (dotimes (i 3) (incf dotimes)) dotimes)")
    assert [(var, trip) for var, trip, _strategy in found] == [("i", 3)]


def test_a_scan_of_packet_bytes_is_unrolled_for_speed_a_loop_of_lookups_is_not():
    scan = (f"{MAPS}(defprog p () (with-packet (data end :min-len 30) (let ((s 0))"
            " (dotimes (i 8) (when (> (load u8 data (+ 14 i)) 64) (setf s (+ s 1)))) (setf (getmap res 0) s))) 0)")
    lookups = f"{MAPS}(defprog p () (let ((s 0)) (dotimes (i 4) (setf s (+ s (getmap res i)))) s))"
    for source, unrolled in ((scan, True), (lookups, False)):
        code = compiler.compile_source(source).programs[0]
        assert any(i.is_jump and i.off < 0 for i in code.insns) != unrolled, source


def test_keeping_a_loop_unrolled():
    unit = unit_of("(let ((s 0)) (dotimes (i 2) (incf s)) s)")
    loop = loopplan.plan(unit.programs[0], unit).unroll_candidates[0]
    assert not loop.indexed and loopplan.keep_unrolled(loop, 10, 9) and not loopplan.keep_unrolled(loop, 10, 11)
    indexed = replace(loop, indexed=True)
    assert loopplan.keep_unrolled(indexed, 10, 10 + loopplan.SPEED_UNROLL_GROWTH)
    assert not loopplan.keep_unrolled(indexed, 10, 11 + loopplan.SPEED_UNROLL_GROWTH)
    assert not loopplan.keep_unrolled(replace(indexed, calls=True), 10, 11)
