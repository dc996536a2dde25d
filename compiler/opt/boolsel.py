"""Select a 0/1 value by copying it: ``if v then r = 1 else r = 0`` is ``r = v``.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
A block ending in ``branch v ne 0`` (or ``eq 0``) whose two targets each only set the same
vreg ``r`` to 1 and 0 and jump to the same join, with the branch their only predecessor,
becomes ``r = v`` (``r = v ^ 1`` when the arms are the other way round) and a jump to the join.
Sound when every value ``v`` can hold is 0 or 1 (``booleans``): a variable bound to an ``and``
of tests, a materialised comparison, and copies of those.
"""

from __future__ import annotations

from .. import ir
from ..ir import Insn
from .facts import zero_test


def booleans(fn: ir.Function) -> set:
    """Vregs whose every definition sets 0, 1 or the value of another such vreg: the largest
    such set (start from every vreg defined only by copies, drop those a definition breaks)."""
    defs: dict = {}
    for insn in fn.all_insns():
        if insn.dst is not None:
            defs.setdefault(insn.dst, []).append(insn)
    candidates = {v for v, ds in defs.items() if all(d.op == "mov" for d in ds)}
    changed = True
    while changed:
        changed = False
        for v in list(candidates):
            if not all(d.args[0] in (0, 1) or d.args[0] in candidates for d in defs[v]):
                candidates.discard(v)
                changed = True
    return candidates


def _sets(block: ir.Block, preds: dict):
    """(r, value, join) when ``block`` only does ``r = 0|1`` and jumps on, with one predecessor."""
    if len(preds[block.label]) != 1 or len(block.insns) != 1 or block.term.op != "jump":
        return None
    (insn,) = block.insns
    if insn.op != "mov" or insn.args[0] not in (0, 1):
        return None
    return insn.dst, insn.args[0], block.term.targets[0]


def run(fn: ir.Function) -> bool:
    bools = None
    preds = fn.predecessors()
    blocks = fn.block_map()
    changed = False
    for block in fn.blocks:
        test = zero_test(block.term)
        if test is None:
            continue
        v, nonzero, zero = test
        when_set, when_clear = _sets(blocks[nonzero], preds), _sets(blocks[zero], preds)
        if when_set is None or when_clear is None or when_set[0] != when_clear[0] or when_set[2] != when_clear[2] \
                or when_set[1] == when_clear[1]:
            continue
        if bools is None:
            bools = booleans(fn)
        if v not in bools:
            continue
        r, value_when_set, join = when_set
        loc = block.term.loc
        block.insns.append(Insn("mov", r, [v], loc) if value_when_set == 1 else Insn("xor", r, [v, 1], loc))
        block.term = Insn("jump", None, [], loc, targets=(join,))
        changed = True
    if changed:
        ir.prune_unreachable(fn)
    return changed
