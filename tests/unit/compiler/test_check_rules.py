"""The checking stage refuses each program of ``check_cases.CASES`` at the right place with the
right words, and accepts each one's near miss.

In: the table. Out: pass/fail. The kernel's side (each refused program is refused by the verifier
too when compiled without the stage, each near miss loads) is
``tests/kernel/compiler/test_checker_rules.py``.
"""

from __future__ import annotations

import pytest

from compiler import CompileError, compile_source
from tests.unit.compiler.check_cases import CASES, PRELUDE_LINES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_where_and_why(case):
    with pytest.raises(CompileError) as info:
        compile_source(case.source(), "prog.lisp")
    err = info.value
    assert (err.loc.file, err.loc.line - PRELUDE_LINES - 1, err.loc.col) == ("prog.lisp", case.line, case.col), str(err)
    assert case.message in str(err)
    assert err.hint, "every refusal says how to fix it"
    assert str(err).startswith(f"prog.lisp:{err.loc.line}:{case.col}: error: ")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_near_miss_compiles(case):
    assert compile_source(case.source(case.fixed), "prog.lisp").programs


REREAD = ("(defmap h :type :array :key-size 4 :value-size 8 :max-entries 4)\n(defprog p ()\n"
          "  (with-packet (data data-end :min-len 14) (setf (getmap h 0) (load u8 (xdp-data) 0)))\n  0)\n")


def test_a_packet_pointer_read_again_after_the_check_is_the_checked_one():
    """Two loads of ``data`` from the context with nothing written between are one value (loadcse),
    so the verifier sees the checked pointer: the stage accepts it (the kernel loads it:
    ``tests/kernel/compiler/test_checker_rules.py``)."""
    assert compile_source(REREAD).programs[0].slots > 0
