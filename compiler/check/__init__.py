"""The checking stage: refuse at compile time, with a located error and a hint, what the kernel's
verifier would refuse at load time.

In: an optimised ``ir.Function`` (after ``opt``, before ``regalloc``), its ``decls.ProgDef`` and
the ``Unit``. Out: nothing, or a ``CompileError`` at the form whose instruction breaks a rule.

Why here: the IR after optimisation is, instruction for instruction, what ``emit`` writes (the
allocator only names registers and adds 8-byte spills of whole values, which the verifier tracks
exactly), and it still knows what the user wrote: which vreg is a variable, which stack slot is a
struct-alloc, which map a call uses, the source location of every instruction.

An abstract interpretation of the program over its control-flow graph (``fixpoint``) with the
verifier's own abstract domain (``values``: value kinds, ``scalar``/``tnum``: number bounds and
known bits; ``state``: registers, stack bytes, held references) and its rules, one concern per
module: ``alu`` (arithmetic on numbers and pointers), ``memory`` (loads and stores by pointer
kind), ``packet`` (packet bounds and the comparisons that prove them), ``stack`` (slot bounds,
alignment, spills), ``ctx`` (context fields), ``branches`` (what a comparison teaches each side:
packet ranges, null checks, number bounds), ``helpers`` (each helper's prototype, availability,
references); ``relevance`` says which numbers can matter to a check (the others are forgotten,
as the verifier prunes states ignoring numbers it did not mark precise). ``diag`` words the
errors; docs/verifier-checks.md has the whole picture and the measurements.
"""

from __future__ import annotations

from .. import ir
from ..decls import ProgDef, Unit
from .fixpoint import Checker, TooComplex


def check_program(fn: ir.Function, prog: ProgDef, unit: Unit) -> None:
    """Raise ``CompileError`` at the first instruction the verifier would refuse."""
    try:
        Checker(fn, prog, unit).run()
    except TooComplex:
        pass  # beyond the analysis' budget: the kernel's verifier decides


__all__ = ["check_program"]
