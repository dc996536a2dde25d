"""Dead code elimination: drop instructions whose only effect is a value nobody reads.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed. Uses
liveness, so it also removes dead assignments to multiply-assigned vregs (an ``if`` result
in statement position). A helper call whose result is unused goes too when reading the result
is all it does (``Insn.is_pure_call``: a map lookup, the time); any other keeps running but loses
its destination.
"""

from __future__ import annotations

from .. import ir


def run(fn: ir.Function) -> bool:
    if not _may_be_dead(fn):
        return False
    out = ir.live_out(fn)
    changed = False
    for block in fn.blocks:
        live = set(out[block.label]) | set(block.term.vreg_uses())
        kept = []
        for insn in reversed(block.insns):
            if insn.dst is not None and insn.dst not in live:
                if insn.op in ir.PURE or insn.is_pure_call:
                    changed = True
                    continue
                insn.dst = None
                changed = True
            if insn.dst is not None:
                live.discard(insn.dst)
            live.update(insn.vreg_uses())
            kept.append(insn)
        block.insns = kept[::-1]
    return changed


def _may_be_dead(fn: ir.Function) -> bool:
    """Can any assignment be dead, before paying for liveness? Not when every vreg is assigned once
    and read somewhere: a read by a dead instruction needs that instruction's own vreg unread, and
    single assignments cannot read each other in a cycle (each is assigned before it is read)."""
    assigned, read = set(), set()
    for insn in fn.all_insns():
        if insn.dst is not None:
            if insn.dst in assigned:
                return True
            assigned.add(insn.dst)
        read.update(insn.vreg_uses())
    return not assigned <= read
