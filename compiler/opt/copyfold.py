"""Compute straight into a variable: ``t = a OP b; v = mov t`` is ``v = a OP b``.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
A ``setq`` lowers to a temporary holding the new value and a copy into the variable; when the
copy comes right after the temporary's only definition and is the temporary's only use, the
instruction writes the variable itself (``(setf total (+ total v))`` is one ``add``). Sound: the
instruction reads its operands before writing, and nothing else read the temporary. Not when the
variable is the second operand of an op that does not commute (``(setf s (- k s))``): the IR
never holds ``dst = a OP dst`` (``ir.overwrites_second_operand``).
"""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..ir import VReg

FOLDABLE = frozenset(("mov", "load", *ir.BINARY_OPS, *ir.UNARY_OPS))


def run(fn: ir.Function) -> bool:
    uses = Counter(v for insn in fn.all_insns() for v in insn.vreg_uses())
    defs = Counter(insn.dst for insn in fn.all_insns() if insn.dst is not None)
    changed = False
    for block in fn.blocks:
        kept = []
        for insn in block.insns:
            prev = kept[-1] if kept else None
            if (insn.op == "mov" and isinstance(insn.args[0], VReg) and prev is not None and prev.dst == insn.args[0]
                    and prev.op in FOLDABLE and uses[prev.dst] == 1 and defs[prev.dst] == 1 and insn.dst != prev.dst
                    and not ir.overwrites_second_operand(prev.op, insn.dst, prev.args)):
                prev.dst = insn.dst
                changed = True
                continue
            kept.append(insn)
        block.insns = kept
    return changed
