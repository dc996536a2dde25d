"""Loops in the back end: the IR's invariants on cyclic control flow (validation, liveness, order),
every loop strategy computing what the language says (a differential check against ``exprgen``,
run by the reference IR interpreter before and after optimisation), loop-invariant code motion
where it is sound and nowhere else, and register allocation across back edges."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from compiler import ir
from compiler.errors import Loc
from compiler.ir import Insn, VReg
from tests.unit.compiler import ir_interp
from tests.unit.compiler.backend_util import allocated, lowered, optimized
from tests.unit.compiler.exprgen import OPERANDS, evaluate, expressions, render
from tests.unit.compiler.test_regalloc import check

ARGS = "(let ((a nil (ctx-load u64 0)) (b nil (ctx-load u64 8)) (c nil (ctx-load u64 16))) {})"
STRATEGIES = (None, "open", "callback", "unroll")
L0 = Loc("hand.lisp", 1, 1)


def ctx_of(a: int, b: int, c: int = 0) -> bytes:
    return b"".join(x.to_bytes(8, "little") for x in (a, b, c))


def loop_blocks(fn: ir.Function) -> list:
    """Blocks on a cycle (reachable from one of their own successors)."""
    blocks = fn.block_map()

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            label = stack.pop()
            if label == goal:
                return True
            if label not in seen:
                seen.add(label)
                stack.extend(blocks[label].successors)
        return False

    return [b for b in fn.blocks if any(reaches(t, b.label) for t in b.successors)]


# -- every strategy means the same ----------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), OPERANDS, OPERANDS, OPERANDS)
def test_every_loop_strategy_computes_the_expression(expr, a, b, c):
    expected = evaluate(expr, {"a": a, "b": b, "c": c})
    body = ARGS.format(render(expr, "core"))
    for strategy in STRATEGIES:
        assert ir_interp.run(lowered(body, strategy=strategy), ctx_of(a, b, c)) == expected, strategy
        assert ir_interp.run(optimized(body, strategy=strategy), ctx_of(a, b, c)) == expected, strategy


LOOPS = {
    # name: (core body over a and b, expected as a function of a and b)
    "sum of the index": ("(let ((s nil 0)) (dotimes (i 10 10) (setq s (+ s i))) s)", lambda a, b: 45),
    "zero iterations": ("(let ((s nil 7)) (dotimes (i 0 0) (setq s 99)) s)", lambda a, b: 7),
    "one iteration": ("(let ((s nil 7)) (dotimes (i 1 1) (setq s (+ s 1))) s)", lambda a, b: 8),
    "run-time count below the bound": ("(let ((s nil 0)) (dotimes (i a 6) (setq s (+ s 1))) s)",
                                       lambda a, b: min(a, 6)),
    "loop-carried swap": ("(let ((x nil a) (y nil b)) (dotimes (i 3 3) (let ((t nil x)) (setq x y) (setq y t))) "
                          "(- x y))", lambda a, b: (b - a) % (1 << 64)),
    "fibonacci": ("(let ((x nil 0) (y nil 1)) (dotimes (i 20 20) (let ((t nil (+ x y))) (setq x y) (setq y t))) x)",
                  lambda a, b: 6765),
    "setting the index changes only this iteration": (
        "(let ((s nil 0)) (dotimes (i 5 5) (setq i (+ i 100)) (setq s (+ s i))) s)", lambda a, b: 510),
    "nested with an outer value": ("(let ((s nil 0)) (dotimes (i 4 4) (dotimes (j b 3) (setq s (+ s (* i a))))) s)",
                                   lambda a, b: (min(b, 3) * 6 * a) % (1 << 64)),
    "early return": ("(progn (dotimes (i 10 10) (if (= i a) (return (+ i 100)) 0)) 7)",
                     lambda a, b: a + 100 if a < 10 else 7),
    "return from a nested loop": ("(progn (dotimes (i 5 5) (dotimes (j 5 5) (if (= (+ (* i 5) j) a) (return j) 0))) 99)",
                                  lambda a, b: a % 5 if a < 25 else 99),
    "stack memory across iterations": (
        "(let ((p nil (struct-alloc 8))) (dotimes (i 8 8) (store u8 (+ p i) 0 (+ i a))) (load u64 p 0))",
        lambda a, b: int.from_bytes(bytes((i + a) & 0xFF for i in range(8)), "little")),
}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_loop_programs(name, strategy):
    body, expected = LOOPS[name]
    for a, b in ((0, 0), (3, 2), (7, 9), (24, 1), (1 << 40, 5)):
        for fn in (lowered(ARGS.format(body), strategy=strategy), optimized(ARGS.format(body), strategy=strategy)):
            assert ir_interp.run(fn, ctx_of(a, b)) == expected(a, b), (a, b)
    check(allocated(ARGS.format(body), strategy=strategy))


# -- the shapes the strategies produce ------------------------------------------------------------

def test_open_loop_tests_at_the_bottom_against_the_count():
    fn = optimized(ARGS.format("(let ((s nil 0)) (dotimes (i 10 10) (setq s (+ s a))) s)"), strategy="open")
    (body,) = loop_blocks(fn)
    assert body.term.op == "branch" and body.term.cond == "lt" and body.term.args[1] == 10
    assert body.term.targets[0] == body.label and not fn.callbacks


def test_run_time_count_is_clamped_and_may_skip_the_loop():
    fn = lowered(ARGS.format("(dotimes (i a 6) (setq b i))"), strategy="open")
    branches = [(b.term.cond, b.term.args[1]) for b in fn.blocks if b.term.op == "branch"]
    assert ("gt", branches[0][1]) == branches[0] and ("eq",) == branches[1][:1]
    for a, iterations in ((0, 0), (4, 4), (6, 6), (7, 6), ((1 << 64) - 1, 6)):
        fn = optimized(ARGS.format("(let ((s nil 0)) (dotimes (i a 6) (setq s (+ s 1))) s)"), strategy="open")
        assert ir_interp.run(fn, ctx_of(a, 0)) == iterations


def test_callback_loop_hands_its_variables_through_the_capture_area():
    fn = optimized(ARGS.format("(let ((s nil 0)) (dotimes (i 1000 1000) (setq s (+ s (* i b)))) (+ s a))"),
                   strategy="callback")
    (callback,) = fn.callbacks
    (call,) = [i for i in fn.all_insns() if i.op == "call"]
    assert call.helper == 181 and call.args[0] == 1000 and call.args[1] == ir.FuncRef(callback.name)
    assert [s.kind for s in fn.slots if s.kind == "capture"] == ["capture"]
    assert not loop_blocks(fn) and not loop_blocks(callback)
    assert [i.off for i in callback.blocks[0].insns[:2]] == [0, 1]  # (index, area) arrive in r1, r2
    assert ir_interp.run(fn, ctx_of(5, 3)) == 5 + 3 * sum(range(1000))


def test_zero_iterations_leave_no_code_but_still_check_the_body():
    fn = optimized("(progn (dotimes (i 0 0) (store u64 (ctx-ptr) 0 1)) 5)")
    assert [i.op for i in fn.all_insns()] == ["arg", "ret"] or [i.op for i in fn.all_insns()] == ["ret"]
    with pytest.raises(Exception, match="unbound variable nope"):
        lowered("(dotimes (i 0 0) nope)")


# -- IR invariants on cyclic control flow ---------------------------------------------------------

def counted_loop(use_after: bool, init: bool = True) -> ir.Function:
    """entry: [s = 0]; c = 0; jump L
    L: s = s + c; c = c + 1; branch c < 4 -> L, out
    out: ret s (or ret c)"""
    fn = ir.Function("hand", L0, [])
    s, c = VReg(1), VReg(2)
    fn.next_id = 10
    entry = [Insn("mov", s, [0], L0)] if init else []
    fn.blocks = [
        ir.Block("entry", entry + [Insn("mov", c, [0], L0)], Insn("jump", None, [], L0, targets=("L",))),
        ir.Block("L", [Insn("add", s, [s, c], L0), Insn("add", c, [c, 1], L0)],
                 Insn("branch", None, [c, 4], L0, cond="lt", targets=("L", "out"))),
        ir.Block("out", [], Insn("ret", None, [s if use_after else c], L0)),
    ]
    return fn


def test_validation_accepts_a_loop_and_its_order_puts_the_header_first():
    fn = ir.validate(counted_loop(use_after=True))
    assert [b.label for b in ir.reverse_postorder(fn)] == ["entry", "L", "out"]
    assert ir.has_back_edges(ir.reverse_postorder(fn))
    assert not ir.has_back_edges(ir.reverse_postorder(optimized("(if (ctx-load u8 0) 1 2)")))
    assert ir_interp.run(fn, b"") == 0 + 1 + 2 + 3


def test_a_value_carried_around_the_loop_must_be_assigned_before_it():
    with pytest.raises(ir.MalformedIR, match="%1 used in `%1 = add %1, %2` before it is assigned on every path"):
        ir.validate(counted_loop(use_after=True, init=False))


def test_a_value_assigned_only_in_a_loop_that_may_not_run_is_not_assigned_after_it():
    fn = lowered(ARGS.format("(dotimes (i a 4) (setq b i))"))
    for block in fn.blocks:  # use, after the loop, a vreg only the body assigns
        if block.term.op == "ret":
            body_vreg = next(i.dst for b in loop_blocks(fn) for i in b.insns if i.op == "mov" and i.dst is not None)
            block.term.args = [body_vreg]
    with pytest.raises(ir.MalformedIR, match="before it is assigned on every path"):
        ir.validate(fn)


def test_liveness_carries_values_around_the_back_edge():
    fn = counted_loop(use_after=True)
    out = ir.live_out(fn)
    assert out["entry"] == {VReg(1), VReg(2)}
    assert out["L"] == {VReg(1), VReg(2)}  # both go around again (and s leaves the loop)
    fn = counted_loop(use_after=False)
    assert VReg(1) in ir.live_out(fn)["L"]  # still read by the next iteration, although dead after


def test_dead_code_elimination_keeps_what_the_next_iteration_reads():
    fn = optimized(ARGS.format("(let ((s nil 0) (t nil 1)) (dotimes (i 5 5) (setq s t) (setq t (+ t a))) s)"))
    assert ir_interp.run(fn, ctx_of(3, 0)) == 1 + 4 * 3


# -- loop-invariant code motion --------------------------------------------------------------------

def test_context_loads_leave_the_loop():
    fn = optimized("(let ((s nil 0)) (dotimes (i 4 4) (setq s (+ s (- (ctx-load u32 4) (ctx-load u32 0))))) s)")
    assert not any(i.op == "load" for b in loop_blocks(fn) for i in b.insns)
    assert ir_interp.run(fn, (10).to_bytes(4, "little") + (25).to_bytes(4, "little")) == 60


def test_context_loads_stay_when_a_helper_may_move_the_packet():
    fn = optimized("(let ((s nil 0)) (dotimes (i 4 4) (call 44 (ctx-ptr) 0) (setq s (+ s (ctx-load u32 0)))) s)")
    assert any(i.op == "load" for b in loop_blocks(fn) for i in b.insns)


def test_invariant_arithmetic_in_the_header_leaves_the_loop():
    fn = optimized(ARGS.format("(let ((s nil 0)) (dotimes (i 4 4) (setq s (+ s (* a b)))) s)"))
    assert not any(i.op == "mul" for b in loop_blocks(fn) for i in b.insns)
    assert ir_interp.run(fn, ctx_of(3, 5)) == 60


def test_arithmetic_behind_a_test_in_the_loop_stays_behind_it():
    # (+ p 8) on a map value that may be null must stay after the null test: the verifier refuses
    # arithmetic on a pointer that may be null
    body = "(let ((p nil (map-lookup stats 0)) (s nil 0)) (dotimes (i 4 4) (if p (setq s (+ s (+ p 8))) 0)) s)"
    fn = optimized(body)
    adds = [b for b in loop_blocks(fn) for i in b.insns if i.op == "add" and i.args[1] == 8]
    assert adds and all(b.label != loop_blocks(fn)[0].label for b in adds)


def test_values_spilled_around_a_loop_keep_their_values():
    names = [f"v{k}" for k in range(12)]
    binds = " ".join(f"({n} nil (+ a {k}))" for k, n in enumerate(names))
    step = " ".join(f"(setq {n} (+ {n} {names[(k + 1) % 12]}))" for k, n in enumerate(names))
    body = ARGS.format(f"(let ({binds}) (dotimes (i 5 5) {step}) " + "(+ " * 11 + names[0] + " "
                       + ") ".join(names[1:]) + "))")
    for strategy in ("open", "callback"):
        alloc = allocated(body, strategy=strategy)
        assert any(s.kind == "spill" for f in (alloc, *alloc.callbacks) for s in f.fn.slots)
        check(alloc)
        values = [3 + k for k in range(12)]
        for _round in range(5):
            values = [(values[k] + values[(k + 1) % 12]) & ((1 << 64) - 1) if k < 11 else values[k] for k in range(12)]
            values[11] = (values[11] + values[0]) & ((1 << 64) - 1)
        assert ir_interp.run(alloc.fn, ctx_of(3, 0)) == sum(values) & ((1 << 64) - 1), strategy
