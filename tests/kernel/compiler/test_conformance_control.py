"""Conformance: control flow, scoping and assignment, and/or/not values with their side effects,
loops, user macros and constants, tail calls (reference §1.4, §1.6, §2.2, §2.3, §2.13, §2.15),
run in the kernel.

Side effects are counted through ``(incf (getmap res 1))`` so "evaluated once" and
"not evaluated" are observable. ``A`` below is a run-time operand (args[0]).
"""

from __future__ import annotations

import pytest

from tests.kernel.compiler.conformance.case import DEFAULT_FRAME, Case, program, res, run_case, value

A = "(getmap args 0)"
COUNT = "(incf (getmap res 1))"  # bumps the side-effect counter in res[1]


def branches(case_id: str, expr: str, expected_by_a: dict[int, int], **kw) -> list[Case]:
    """One case per run-time value of A."""
    return [value(f"{case_id} a={a:#x}", expr, expected, args={0: a}, **kw) for a, expected in expected_by_a.items()]


VALUE_CASES = [
    *branches("if two arms", f"(if (> {A} 5) 10 20)", {7: 10, 3: 20}),
    *branches("one-armed if not taken is 0", f"(if (> {A} 5) 7)", {3: 0, 9: 7}),
    *branches("if tests all 64 bits", f"(if {A} 1 2)", {1 << 32: 1, 0: 2}),
    *branches("when value is last form", f"(when (/= {A} 0) 1 2 3)", {1: 3, 0: 0}),
    *branches("unless", f"(unless (= {A} 0) 5)", {0: 0, 1: 5}),
    *branches("nested if", f"(if (> {A} 10) (if (> {A} 20) 3 2) (if (> {A} 5) 1 0))",
              {25: 3, 15: 2, 7: 1, 1: 0}),
    *branches("cond", f"(cond ((= {A} 1) 10) ((= {A} 2) 20) (t 30))", {1: 10, 2: 20, 9: 30}),
    *branches("cond without match is 0", f"(cond ((= {A} 1) 10) ((= {A} 2) 20))", {3: 0}),
    *branches("cond clause body is a progn", f"(cond ((> {A} 1) 1 2 (+ {A} 100)) (t 0))", {5: 105}),
    *branches("case", f"(case {A} (1 10) ((2 3) 20) (otherwise 30))", {1: 10, 3: 20, 2: 20, 7: 30}),
    *branches("case with t clause", f"(case {A} (5 50) (t 60))", {5: 50, 6: 60}),
    *branches("case without match is 0", f"(case {A} (1 10) (2 20))", {3: 0}),
    value("case evaluates its key once", f"(case (progn {COUNT} {A}) (1 10) (2 20) (3 30))", 30,
          args={0: 3}, counts=(1,)),
    value("and of literals is the last", "(and 1 2 3)", 3),
    value("and with a zero is 0", "(and 1 0 3)", 0),
    value("empty and is 1", "(and)", 1),
    value("or of literals is the first non-zero", "(or 0 0 5 6)", 5),
    value("empty or is 0", "(or)", 0),
    *branches("runtime and value", f"(and {A} (+ {A} 1))", {0: 0, 9: 10}),
    *branches("runtime or value", f"(or {A} 77)", {0: 77, 9: 9}),
    value("and stops at the first zero", f"(and {A} (progn {COUNT} 7))", 0, args={0: 0}, counts=(0,)),
    value("and evaluates every true operand once", f"(and {A} (progn {COUNT} 7))", 7, args={0: 5}, counts=(1,)),
    value("or evaluates its first operand once", f"(or (progn {COUNT} {A}) 99)", 5, args={0: 5}, counts=(1,)),
    value("or falls to the second operand", f"(or (progn {COUNT} {A}) 99)", 99, args={0: 0}, counts=(1,)),
    value("or stops at the first non-zero", f"(or {A} (progn {COUNT} 1))", 3, args={0: 3}, counts=(0,)),
    *branches("and in a test", f"(if (and (> {A} 1) (< {A} 10)) 1 0)", {5: 1, 1: 0, 10: 0}),
    *branches("or in a test", f"(if (or (= {A} 1) (= {A} 10)) 1 0)", {1: 1, 10: 1, 5: 0}),
    *branches("not in a test", f"(if (not (= {A} 3)) 1 0)", {3: 0, 4: 1}),
    value("not 0", "(not 0)", 1),
    *branches("not value", f"(not {A})", {7: 0, 0: 1, 1 << 40: 0}),
    value("progn value is the last", "(progn 1 2 3)", 3),
    value("empty progn is 0", "(progn)", 0),
    # scoping and assignment
    value("let binds", "(let ((x 5) (y 6)) (* x y))", 30),
    value("inner let shadows", "(let ((x 1)) (let ((x 2)) x))", 2),
    value("shadowing ends with the form", "(let ((x 1)) (+ (let ((x 10)) x) x))", 11),
    value("let inits see the outer scope", "(let ((x 1)) (let ((x 2) (y x)) y))", 1),
    value("let* inits see earlier bindings", "(let ((x 1)) (let* ((x 2) (y x)) y))", 2),
    value("let* chain", f"(let* ((a {A}) (b (* a 2)) (c (+ b a))) c)", 21, args={0: 7}),
    value("typed binding without init is 0", "(let ((x u32)) (+ x 5))", 5),
    value("declared type does not mask", f"(let ((x u8 {A})) x)", 300, args={0: 300}),
    value("declare form", f"(let ((x {A})) (declare (type u32 x)) (+ x 1))", 43, args={0: 42}),
    value("setf value is the new value", "(let ((x 1)) (setf x 9))", 9),
    value("setf variable", f"(let ((x {A})) (setf x (+ x 5)) x)", 12, args={0: 7}),
    value("multi-pair setf runs left to right", "(let ((a 0) (b 0)) (setf a 3 b (+ a 4)) (+ (* a 10) b))", 37),
    *branches("setf in branches is visible after the join",
              f"(let ((x 0) (y 0)) (if (> {A} 5) (setf x 1 y 2) (setf x 3 y 4)) (+ (* x 10) y))",
              {7: 12, 1: 34}),
    value("setf of a shadowed variable leaves the outer one",
          "(let ((x 1)) (let ((x 2)) (setf x 50)) x)", 1),
    value("setf of an outer variable from an inner scope",
          "(let ((x 1)) (let ((y 2)) (setf x (+ y 40))) x)", 42),
    value("incf and decf variables", "(let ((x 5)) (incf x) (incf x 10) (decf x 3) (decf x) x)", 12),
    value("when-let binds and runs", f"(when-let ((x {A}) (y (+ x 1))) (* x y))", 42, args={0: 6}),
    value("when-let stops at a zero", f"(when-let ((x {A}) (y (progn {COUNT} 1))) 9)", 0,
          args={0: 0}, counts=(0,)),
    value("when-let typed binding", f"(when-let ((x u64 {A})) (+ x 1))", 8, args={0: 7}),
    *branches("if-let", f"(if-let (x {A}) (+ x 1) 100)", {0: 100, 4: 5}),
    *branches("if-let without else", f"(if-let (x {A}) (+ x 1))", {0: 0}),
    value("many values live across a helper call",
          f"(let* ((a {A}) (b (+ a 1)) (c (+ b 1)) (d (+ c 1)) (e (+ d 1)) (f (+ e 1)) (g (+ f 1))"
          " (tm (ktime-get-ns)) (h (+ g 1)))"
          " (+ a b c d e f g h (* 0 tm)))", sum(range(10, 18)), args={0: 10}),
    value("t is 1", "(+ t 1)", 2),
    # bounded loops (§2.15)
    value("dotimes sums its counter", "(let ((s 0)) (dotimes (i 10) (setf s (+ s i))) s)", sum(range(10))),
    value("dotimes with a constant count and a map update", f"(progn (dotimes (i +n+) {COUNT}) {A})", 3,
          args={0: 3}, extra="(defconstant +n+ 7)", counts=(7,)),
    value("nested dotimes", "(let ((s 0)) (dotimes (i 4) (dotimes (j 5) (setf s (+ s (* i j))))) s)",
          sum(i * j for i in range(4) for j in range(5))),
    value("dotimes with a helper call and a live value", f"(let ((s {A})) (dotimes (i 3) (setf s (+ s (* 0 (ktime-get-ns)) 2))) s)",
          5 + 3 * 2, args={0: 5}),
    value("dotimes of zero runs nothing", f"(progn (dotimes (i 0) {COUNT}) 5)", 5, counts=(0,)),
    # macros and constants (§1.4, §1.6)
    value("user macro", f"(twice {A})", 42, args={0: 21}, extra="(defmacro twice (x) `(+ ,x ,x))"),
    value("user macro with &body", f"(my-unless (= {A} 1) 5 6)", 6, args={0: 2},
          extra="(defmacro my-unless (test &body body) `(if ,test 0 (progn ,@body)))"),
    value("macro using gensym evaluates once", f"(square-once (progn {COUNT} {A}))", 49, args={0: 7},
          counts=(1,),
          extra="(defmacro square-once (x) (let ((v (gensym))) `(let ((,v ,x)) (* ,v ,v))))"),
    value("defconstant", "(+ +k+ 1)", 21, extra="(defconstant +k+ (* 4 5))"),
    value("defconstant over constants", "+b+", 9, extra="(defconstant +a+ 3)\n(defconstant +b+ (* +a+ +a+))"),
    # As in Common Lisp, NIL and () are empty key lists: the clause never matches, not even 0.
    *branches("case key nil never matches", f"(case {A} (nil 10) (() 20) (t 30))", {0: 30, 1: 30}),
    # sizes far past hand-written code (one chain of tests, compiled without deep recursion)
    *branches("case with 400 arms", f"(case {A} " + " ".join(f"({k} {k * 7 + 1})" for k in range(400)) + ")",
              {0: 1, 199: 199 * 7 + 1, 399: 399 * 7 + 1, 400: 0}),
    *branches("cond with 300 clauses", "(cond " + " ".join(f"((< {A} {k}) {k})" for k in range(1, 301))
              + " (t 1000))", {0: 1, 150: 151, 299: 300, 300: 1000}),
    value("let* with 500 bindings", "(let* ((v0 (getmap args 0)) "
          + " ".join(f"(v{k} (+ v{k - 1} {k}))" for k in range(1, 500)) + ") v499)",
          3 + sum(range(500)), args={0: 3}),
    value("when-let nested 120 deep", "(when-let ((p (map-lookup args 0))) " * 120 + A + ")" * 120, 9,
          args={0: 9}),
    value("expression nested 190 deep", f"(let ((a {A})) " + "(+ a " * 190 + "1" + ")" * 191, 190 * 5 + 1,
          args={0: 5}),
]

RETURN_CASES = [
    Case(f"early return a={a}", program(f"(when (= {A} 1) (return 7))\n  (setf (getmap res 0) 5)\n  9"),
         expected, res(stored), args={0: a})
    for a, expected, stored in ((1, 7, 0), (0, 9, 5))
] + [
    Case(f"return from nested let a={a}",
         program(f"(let ((x {A})) (let ((y (* x 2))) (if (> y 10) (return y) (setf (getmap res 0) y)))) 1"),
         expected, res(stored), args={0: a})
    for a, expected, stored in ((6, 12, 0), (2, 1, 4))
] + [
    Case("empty body returns 0", program(""), 0, res()),
] + [
    Case(f"return from inside dotimes a={a}",
         program(f"(dotimes (i 10) (when (= i {A}) (return (* i 100))))\n  (setf (getmap res 0) 1)\n  7"),
         expected, res(stored), args={0: a})
    for a, expected, stored in ((4, 400, 0), (12, 7, 1))
] + [
    Case("return without implicit wrap", program("(return XDP_DROP)"), 1, res()),
]

JT = "(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 8)"
TARGET = '(defprog target (:section "xdp/target")\n  (incf (getmap res 2))\n  (- (xdp-data-end) (xdp-data)))'
TAIL = f"{COUNT}\n  (tail-call jt {{index}})\n  42"
TAIL_CASES = [
    Case("tail-call to an empty slot falls through", program(TAIL.format(index=3), JT + "\n" + TARGET),
         42, res(0, 1, 0)),
    Case("tail-call to a wired slot", program(TAIL.format(index=3), JT + "\n" + TARGET),
         len(DEFAULT_FRAME), res(0, 1, 1), slots={("jt", 3): "target"}),
    Case("tail-call with a run-time index", program(TAIL.format(index=A), JT + "\n" + TARGET),
         len(DEFAULT_FRAME), res(0, 1, 1), args={0: 5}, slots={("jt", 5): "target"}),
    Case("tail-call to another slot falls through", program(TAIL.format(index=A), JT + "\n" + TARGET),
         42, res(0, 1, 0), args={0: 4}, slots={("jt", 5): "target"}),
    Case("tail-call out of range falls through", program(TAIL.format(index=A), JT + "\n" + TARGET),
         42, res(0, 1, 0), args={0: 1000}, slots={("jt", 5): "target"}),
    Case("values live across a tail-call that falls through",
         program(f"(let ((x {A}) (y (* {A} 3)))\n    (tail-call jt x)\n    (+ x y))", JT + "\n" + TARGET),
         4 * 11, res(), args={0: 11}),
    Case("tail-call twice keeps state", program(TAIL.format(index=0), JT + "\n" + TARGET),
         len(DEFAULT_FRAME), res(0, 2, 2), slots={("jt", 0): "target"}, runs=2),
]

CASES = VALUE_CASES + RETURN_CASES + TAIL_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_control(case, pin_dir):
    run_case(case, pin_dir)
