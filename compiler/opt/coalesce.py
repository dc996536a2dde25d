"""Merge a copy's two vregs when their values never need to coexist: ``d = mov s``, where the copy
is s's only use, becomes s written as d throughout.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
The register allocator removes most copies this way too, but only after optimisation: merged
here, the passes see one variable. A return value set early on one path and through a
temporary on another (``retval`` and ``crossjump`` together) becomes one vreg, and
``constprop`` drops the assignment of the value it already holds. Two vregs interfere when one
is assigned where the other is live (Chaitin's test, on the liveness fixpoint, so on loops too);
the copy itself does not count.
"""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..ir import VReg


def _interfere(fn: ir.Function, d: VReg, s: VReg, copy: ir.Insn, out: dict) -> bool:
    for block in fn.blocks:
        live = set(out[block.label])
        for insn in reversed([*block.insns, block.term]):
            if insn is not copy and insn.dst is not None:
                if (insn.dst == s and d in live) or (insn.dst == d and s in live):
                    return True
            if insn.dst is not None:
                live.discard(insn.dst)
            live.update(insn.vreg_uses())
    return False


MAX_MERGES = 64  # per run, each recomputing liveness


def _candidate(fn: ir.Function, insn: ir.Insn, uses: Counter, defs: Counter) -> bool:
    """A copy of a vreg used nowhere else, one of the two assigned more than once (a copy
    between two single-assignment vregs is ``copyprop``'s)."""
    if insn.op != "mov" or not isinstance(insn.args[0], VReg) or insn.dst == insn.args[0]:
        return False
    d, s = insn.dst, insn.args[0]
    return uses[s] == 1 and (defs[d] > 1 or defs[s] > 1) and not any(
        i.op == "arg" and i.dst in (d, s) for i in fn.blocks[0].insns)


def run(fn: ir.Function) -> bool:
    changed = False
    for _merge in range(MAX_MERGES):
        uses = Counter(v for insn in fn.all_insns() for v in insn.vreg_uses())
        defs = Counter(insn.dst for insn in fn.all_insns() if insn.dst is not None)
        out = None
        merged = False
        for insn in fn.all_insns():
            if not _candidate(fn, insn, uses, defs):
                continue
            d, s = insn.dst, insn.args[0]
            out = out if out is not None else ir.live_out(fn)
            if _interfere(fn, d, s, insn, out):
                continue
            for other in fn.all_insns():
                if other.dst == s:
                    other.dst = d
                other.args = [d if a == s else a for a in other.args]
            for block in fn.blocks:
                block.insns = [i for i in block.insns if not (i.op == "mov" and i.dst == d and i.args == [d])]
            merged = changed = True
            break  # liveness changed
        if not merged:
            break
    return changed
