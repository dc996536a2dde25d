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

Likewise a branch ``if v C k`` entered from a block whose last assignment to v sets it to a
constant: that edge goes where the test then goes (``(when (getmap m k) ...)`` tests the value
the lookup's miss arm set to 0 again; the miss path now skips the test).
"""

from __future__ import annotations

from .. import ir
from ..records import replace
from .constfold import compare

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


def _thread_edge(fn: ir.Function, blocks: dict, source: ir.Block, index: int, nxt: ir.Block, outcome: bool) -> None:
    """Send ``source``'s ``index``-th edge (into ``nxt``) to where ``nxt``'s branch goes when its
    test comes out as ``outcome``, through a copy of ``nxt``'s instructions if it has any."""
    second = nxt.term
    decided = second.targets[0] if outcome else second.targets[1]
    if nxt.insns:  # the edge still runs nxt's instructions, then goes on
        copy = ir.Block(fn.new_label("thread"), [replace(i, args=list(i.args)) for i in nxt.insns],
                        ir.Insn("jump", None, [], second.loc, targets=(decided,)))
        fn.blocks.append(copy)
        blocks[copy.label] = copy
        decided = copy.label
    targets = list(source.term.targets)
    targets[index] = decided
    source.term.targets = tuple(targets)


def _constants_at_end(block: ir.Block) -> dict:
    """vreg -> the constant it holds when ``block`` ends, for vregs the block last sets to one."""
    known: dict = {}
    for insn in block.insns:
        if insn.dst is not None:
            if insn.op == "mov" and isinstance(insn.args[0], int):
                known[insn.dst] = insn.args[0]
            else:
                known.pop(insn.dst, None)
    return known


def _decided(nxt: ir.Block, known: dict) -> bool | None:
    """The outcome of ``nxt``'s branch given the constants ``known`` on entry, if they decide it
    (following ``nxt``'s own copies of constants)."""
    known = dict(known)
    for insn in nxt.insns:
        if insn.dst is not None:
            value = insn.args[0] if insn.op == "mov" else None
            value = known.get(value) if isinstance(value, ir.VReg) else value
            if isinstance(value, int):
                known[insn.dst] = value
            else:
                known.pop(insn.dst, None)
    a, b = (x if isinstance(x, int) else known.get(x) for x in nxt.term.args)
    return None if a is None or b is None else compare(nxt.term.cond, a, b)


def _known_on_entry(fn: ir.Function, blocks: dict) -> bool:
    """A branch entered from a block that just set what it tests to constants is decided on that
    edge (an ``if`` whose arm yields 0, tested again)."""
    changed = False
    preds = fn.predecessors()
    for nxt in list(fn.blocks):
        if nxt.term.op != "branch" or len(nxt.insns) > MAX_COPIED:
            continue
        for label in dict.fromkeys(preds[nxt.label]):
            source = blocks[label]
            outcome = None if source is nxt else _decided(nxt, _constants_at_end(source))
            if outcome is None:
                continue
            for index, target in enumerate(source.term.targets):
                if target == nxt.label:
                    _thread_edge(fn, blocks, source, index, nxt, outcome)
                    changed = True
    return changed


def run(fn: ir.Function) -> bool:
    blocks = fn.block_map()
    changed = _known_on_entry(fn, blocks)
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
            _thread_edge(fn, blocks, block, i, nxt, outcome)
            changed = True
    if changed:
        ir.prune_unreachable(fn)
    return changed
