"""Back end against the kernel: random expressions compiled end to end, loaded by the verifier
and run with BPF_PROG_TEST_RUN; the expected value comes from ``exprgen.evaluate``, written
without the compiler. Operand b is read after a map update, so values cross helper calls."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.kernel.compiler.conformance.case import run_case, value
from tests.unit.compiler.exprgen import OPERANDS, evaluate, expressions, render

BINDINGS = ("(let ((a (getmap args 0)) (b (progn (incf (getmap res 1)) (getmap args 1))) (c (getmap args 2)))\n"
            "  {})")


@settings(max_examples=300, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(expressions(depth=6), OPERANDS, OPERANDS, OPERANDS)
def test_random_expression_runs_as_evaluated(pin_dir, expr, a, b, c):
    expected = evaluate(expr, {"a": a, "b": b, "c": c})
    case = value("random", BINDINGS.format(render(expr, "source")), expected, args={0: a, 1: b, 2: c},
                 counts=(1,))
    run_case(case, pin_dir)
