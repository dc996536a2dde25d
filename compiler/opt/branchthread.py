"""Thread a branch whose outcome the branch before it already decided.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
When block P ends in ``if a C1 b`` and one of its edges enters a block B that ends in
``if a C2 b`` on the same operands, and C1's outcome on that edge decides C2, the edge goes
straight to the target C2 picks; B's few other instructions (at most ``MAX_COPIED``, none of
which assigns a or b) are copied onto that edge. Two ``(when (= proto 6) ...)`` in a row then
test proto once on each path. Besides the instructions saved, the verifier needs this: it
does not remember that a value is *not* equal to a constant, so it would walk the impossible
path through the second test, where a packet bounds check made on the real path is missing.
Sound because the two tests compare the same values: nothing between them assigns a or b.
"""

from __future__ import annotations

from .. import ir
from ..records import replace

MAX_COPIED = 4

# The outcomes (below, equal, above) each condition accepts, in unsigned and signed order;
# eq and ne mean the same in both.
_ORDERS = (
    {"eq": {"="}, "ne": {"<", ">"}, "lt": {"<"}, "le": {"<", "="}, "gt": {">"}, "ge": {">", "="}},
    {"eq": {"="}, "ne": {"<", ">"}, "slt": {"<"}, "sle": {"<", "="}, "sgt": {">"}, "sge": {">", "="}},
)


def implied(known: str, test: str) -> bool | None:
    """Is ``a test b`` true (True), false (False) or undecided (None) given ``a known b``?"""
    for order in _ORDERS:
        if known in order and test in order:
            k, t = order[known], order[test]
            if k <= t:
                return True
            if not k & t:
                return False
    return None


def run(fn: ir.Function) -> bool:
    blocks = fn.block_map()
    changed = False
    for block in fn.blocks:
        first = block.term
        if first.op != "branch" or first.targets[0] == first.targets[1]:
            continue
        edges = list(zip(first.targets, (first.cond, ir.NEGATED[first.cond])))  # (target, what holds there)
        for i, (target, known) in enumerate(edges):
            nxt = blocks[target]
            second = nxt.term
            if second.op != "branch" or len(nxt.insns) > MAX_COPIED or \
                    any(i.dst is not None and i.dst in second.args for i in nxt.insns):
                continue
            if second.args == first.args:
                outcome = implied(known, second.cond)
            elif second.args == first.args[::-1]:
                outcome = implied(ir.MIRRORED[known], second.cond)
            else:
                continue
            if outcome is None:
                continue
            decided = second.targets[0] if outcome else second.targets[1]
            if nxt.insns:  # the edge still runs B's instructions, then goes on
                copy = ir.Block(fn.new_label("thread"), [replace(i, args=list(i.args)) for i in nxt.insns],
                                ir.Insn("jump", None, [], second.loc, targets=(decided,)))
                fn.blocks.append(copy)
                blocks[copy.label] = copy
                decided = copy.label
            targets = list(first.targets)
            targets[i] = decided
            first.targets = tuple(targets)
            changed = True
    if changed:
        ir.prune_unreachable(fn)
    return changed
