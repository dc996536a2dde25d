"""Drop a test for zero that guards only an operation zero leaves unchanged.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
``if x != 0 then t = t + x`` is ``t = t + x``: with x = 0 the addition changes nothing. A block
that ends in ``branch x ne 0`` (or ``eq 0``) into an arm doing only ``t = t OP x``, where 0 is
OP's identity on the right (add, sub, or, xor, shifts), that arm having no other predecessor and
going on where the branch's other edge goes, runs the operation unconditionally and jumps on:
one branch fewer on every path (``(when v (setf total (+ total v)))`` after a map lookup).
"""

from __future__ import annotations

from .. import ir
from ..ir import Insn
from .facts import zero_test

ZERO_IS_IDENTITY = frozenset(("add", "sub", "or", "xor", "lsh", "rsh", "arsh"))


def run(fn: ir.Function) -> bool:
    preds = fn.predecessors()
    blocks = fn.block_map()
    changed = False
    for block in fn.blocks:
        test = zero_test(block.term)
        if test is None:
            continue
        x, arm_label, other = test
        arm = blocks[arm_label]
        if arm is block or preds[arm_label] != [block.label] or len(arm.insns) != 1 \
                or arm.term.op != "jump" or arm.term.targets[0] != other:
            continue
        (insn,) = arm.insns
        if insn.op not in ZERO_IS_IDENTITY or insn.args[1] != x or insn.dst != insn.args[0]:
            continue
        block.insns.append(Insn(insn.op, insn.dst, list(insn.args), insn.loc))
        block.term = Insn("jump", None, [], block.term.loc, targets=(other,))
        changed = True
    if changed:
        ir.prune_unreachable(fn)
    return changed
