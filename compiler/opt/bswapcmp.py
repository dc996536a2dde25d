"""Compare a loaded value against a byte-swapped constant instead of swapping the value.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
``branch (bswap x) ==/!= C`` becomes ``branch x ==/!= swap(C)`` when ``x`` fits in the swap's
width (a 16-bit load under ``bswap16``, ...), so ``(= (eth-type data) #x0800)`` is one load and
one compare against 8. A constant wider than the swap can never be equal: the branch becomes a
jump. The swapped constant goes into a fresh vreg when it does not fit an immediate.
"""

from __future__ import annotations

from .. import ir
from ..ir import Insn, evaluate
from .facts import Facts


def run(fn: ir.Function) -> bool:
    facts = Facts(fn)
    changed = False
    for block in fn.blocks:
        term = block.term
        if term.op != "branch" or term.cond not in ("eq", "ne"):
            continue
        swap, c = facts.definition(term.args[0]), facts.const(term.args[1])
        if swap is None or swap.op != "bswap" or c is None:
            continue
        x = swap.args[0]
        if x not in facts.single or facts.width(x) > swap.size:
            continue
        if c >> (8 * swap.size):
            never_equal = term.targets[1] if term.cond == "eq" else term.targets[0]
            block.term = Insn("jump", None, [], term.loc, targets=(never_equal,))
        else:
            swapped = evaluate("bswap", c, size=swap.size)
            if not ir.fits_s32(swapped):
                reg = fn.new_vreg()
                block.insns.append(Insn("mov", reg, [swapped], term.loc))
                swapped = reg
            term.args = [x, swapped]
        changed = True
    ir.prune_unreachable(fn)  # a branch that became a jump may orphan its other target
    return changed
