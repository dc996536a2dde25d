"""Merge a copy's two vregs when their values never need to coexist: ``d = mov s``, where the copy
is s's only use, becomes s written as d throughout.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
The register allocator removes most copies this way too, but only after optimisation: merged
here, the passes see one variable. A return value set early on one path and through a
temporary on another (``retval`` and ``crossjump`` together) becomes one vreg, and
``constprop`` drops the assignment of the value it already holds. Two vregs interfere when one
is assigned where the other is live (Chaitin's test, on the liveness fixpoint, so on loops too);
the copy itself does not count. A merged vreg is live wherever either was, so liveness is
updated in place, not recomputed, after each merge.
"""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..ir import VReg


class _Function:
    """Uses and definitions of each vreg; liveness and where each vreg occurs, computed for the first
    candidate (most functions have none) and kept up to date through merges."""

    def __init__(self, fn: ir.Function):
        self.fn = fn
        self.uses = Counter(v for insn in fn.all_insns() for v in insn.vreg_uses())
        self.defs = Counter(insn.dst for insn in fn.all_insns() if insn.dst is not None)
        self.args = {i.dst for i in fn.blocks[0].insns if i.op == "arg"}
        self.blocks: dict = {}
        self.out: dict | None = None
        self.where: dict = {}  # vreg -> labels of the blocks it occurs in

    def _analyse(self) -> None:
        fn = self.fn
        self.blocks = fn.block_map()
        self.out = ir.live_out(fn)
        for block in fn.blocks:
            for insn in [*block.insns, block.term]:
                for v in [*insn.vreg_uses(), *([insn.dst] if insn.dst is not None else [])]:
                    self.where.setdefault(v, set()).add(block.label)

    def candidate(self, insn: ir.Insn) -> bool:
        """A copy of a vreg read nowhere else, one of the two assigned more than once (a copy
        between single-assignment vregs is ``copyprop``'s), no function argument."""
        if insn.op != "mov" or not isinstance(insn.args[0], VReg) or insn.dst == insn.args[0]:
            return False
        d, s = insn.dst, insn.args[0]
        return self.uses[s] == 1 and (self.defs[d] > 1 or self.defs[s] > 1) and not {d, s} & self.args

    def interfere(self, d: VReg, s: VReg, copy: ir.Insn) -> bool:
        if self.out is None:
            self._analyse()
        for label in self.where[d] | self.where[s]:  # the blocks that assign either
            block = self.blocks[label]
            live = set(self.out[label])
            for insn in reversed([*block.insns, block.term]):
                if _overwrites_second_operand_merged(insn, d, s):
                    return True
                if insn is not copy and insn.dst is not None and (
                        (insn.dst == s and d in live) or (insn.dst == d and s in live)):
                    return True
                if insn.dst is not None:
                    live.discard(insn.dst)
                live.update(insn.vreg_uses())
        return False

    def merge(self, d: VReg, s: VReg, copy: ir.Insn) -> None:
        for label in self.where[s]:
            block = self.blocks[label]
            block.insns = [i for i in block.insns if i is not copy]
            for insn in [*block.insns, block.term]:
                if insn.dst == s:
                    insn.dst = d
                insn.args = [d if a == s else a for a in insn.args]
        for live in self.out.values():
            if s in live:
                live.discard(s)
                live.add(d)
        self.where[d] |= self.where.pop(s)
        self.uses[d] += self.uses.pop(s) - 1
        self.defs[d] += self.defs.pop(s) - 1


def run(fn: ir.Function) -> bool:
    state = _Function(fn)
    changed = False
    for insn in list(fn.all_insns()):
        if state.candidate(insn) and not state.interfere(insn.dst, insn.args[0], insn):
            state.merge(insn.dst, insn.args[0], insn)
            changed = True
    return changed


def _overwrites_second_operand_merged(insn: ir.Insn, d: VReg, s: VReg) -> bool:
    """Would ``insn`` become ``dst = a OP dst``, which the IR forbids, once s is written as d?"""
    def merged(v):
        return d if v == s else v

    return ir.overwrites_second_operand(insn.op, merged(insn.dst), [merged(a) for a in insn.args])
