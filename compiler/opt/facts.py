"""What the passes may assume about a value: single definitions, constants, known widths.

In: an ``ir.Function``. Out: ``Facts``, a snapshot taken at the start of a pass. A vreg with
exactly one definition is an SSA value (``ir`` guarantees its definition dominates every use),
so what its defining instruction says holds at every use. Vregs assigned more than once
(variables that are ``setq``'d, joined ``if`` results) get no facts at all.
"""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..ir import Insn, VReg


class Facts:
    def __init__(self, fn: ir.Function):
        counts = Counter(i.dst for i in fn.all_insns() if i.dst is not None)
        self.single: dict = {i.dst: i for i in fn.all_insns() if i.dst is not None and counts[i.dst] == 1}

    def definition(self, operand) -> Insn | None:
        """The one instruction that defines ``operand``, or None."""
        return self.single.get(operand) if isinstance(operand, VReg) else None

    def const(self, operand) -> int | None:
        """The constant ``operand`` always holds, or None."""
        if isinstance(operand, int):
            return operand
        d = self.definition(operand)
        if d is not None and d.op == "mov" and isinstance(d.args[0], int):
            return d.args[0]
        return None

    def width(self, operand) -> int:
        """Bytes that can be non-zero in ``operand`` (8 when nothing is known)."""
        c = self.const(operand)
        if c is not None:
            return max(1, (c.bit_length() + 7) // 8)
        return self.width_of(self.definition(operand))

    def width_of(self, d: Insn | None) -> int:
        """Bytes that can be non-zero in what instruction ``d`` writes (8 when nothing is known)."""
        if d is None:
            return 8
        if d.op == "call" and d.helper in ir.U32_HELPERS:
            return 4
        if d.op == "mov" and isinstance(d.args[0], int):
            return self.width(d.args[0])
        if d.op in ("load", "trunc", "bswap"):
            return d.size
        if d.op == "and":
            return min(self.width(d.args[0]), self.width(d.args[1]))
        if d.op == "mov" and isinstance(d.args[0], VReg):
            return self.width(d.args[0])
        return 8


def zero_test(term: Insn):
    """(x, target when x != 0, target when x == 0) if ``term`` branches on a vreg against 0."""
    if term.op != "branch" or term.cond not in ("eq", "ne") or term.args[1] != 0 \
            or not isinstance(term.args[0], VReg) or term.targets[0] == term.targets[1]:
        return None
    nonzero, zero = term.targets if term.cond == "ne" else term.targets[::-1]
    return term.args[0], nonzero, zero
