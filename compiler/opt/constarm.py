"""Hoist a constant arm: assign the constant before the branch and let that edge skip the arm.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
``if c then (r = ...) else (r = C)`` becomes ``r = C; if c then (r = ...)``: the else arm
(only ``mov r, C`` and a jump to the join) disappears, saving its jump, so ``(if p (load ...) 0)``
and materialised booleans need one instruction fewer. Sound when the other arm does not read
``r`` before writing it (``r`` is not live into it) and the branch does not test ``r``.
"""

from __future__ import annotations

from .. import ir
from ..ir import Insn


def _constant_arm(block: ir.Block, preds: dict):
    """(r, C, join) if ``block`` only does ``r = C`` and jumps on, with one predecessor."""
    if len(preds[block.label]) != 1 or len(block.insns) != 1 or block.term.op != "jump":
        return None
    (insn,) = block.insns
    if insn.op != "mov" or not isinstance(insn.args[0], int):
        return None
    return insn.dst, insn.args[0], block.term.targets[0]


def run(fn: ir.Function) -> bool:
    out = None  # liveness, computed once a constant arm is found
    preds = fn.predecessors()
    blocks = fn.block_map()
    for block in fn.blocks:
        term = block.term
        if term.op != "branch" or term.targets[0] == term.targets[1]:
            continue
        for arm, other in (term.targets[::-1], term.targets):
            found = _constant_arm(blocks[arm], preds)
            if found is None:
                continue
            r, value, join = found
            out = out or ir.live_out(fn)
            if r in term.args or r in ir.live_in_of(blocks[other], out[other]):
                continue
            block.insns.append(Insn("mov", r, [value], blocks[arm].insns[0].loc))
            term.targets = tuple(join if t == arm else t for t in term.targets)
            ir.prune_unreachable(fn)
            return True  # liveness and predecessors changed: the next round looks again
    return False
