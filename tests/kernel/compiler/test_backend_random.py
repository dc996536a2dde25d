"""Back end against the kernel: random expressions compiled end to end, loaded by the verifier
and run with BPF_PROG_TEST_RUN; the expected value comes from ``exprgen.evaluate``, written
without the compiler. Operand b is read after a map update, so values cross helper calls. The
expressions include loops; the second test makes every program one (loops in loops, run-time counts)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.kernel.compiler.conformance.case import run_case, value
from tests.unit.compiler.exprgen import OPERANDS, evaluate, expressions, loops, render

BINDINGS = ("(let ((a (getmap args 0)) (b (progn (incf (getmap res 1)) (getmap args 1))) (c (getmap args 2)))\n"
            "  {})")


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(expressions(), OPERANDS, OPERANDS, OPERANDS)
def test_random_expression_runs_as_evaluated(pin_dir, expr, a, b, c):
    expected = evaluate(expr, {"a": a, "b": b, "c": c})
    case = value("random", BINDINGS.format(render(expr, "source")), expected, args={0: a, 1: b, 2: c},
                 counts=(1,))
    run_case(case, pin_dir)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(loops(), OPERANDS, OPERANDS, OPERANDS)
def test_random_loop_runs_as_evaluated(pin_dir, expr, a, b, c):
    test_random_expression_runs_as_evaluated.hypothesis.inner_test(pin_dir, expr, a, b, c)
