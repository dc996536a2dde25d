"""Control-flow cleanup: thread empty jumps, merge straight-line blocks, drop unreachable ones.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
- A non-entry block that only jumps elsewhere is bypassed: its predecessors jump straight on.
- A block that jumps to a block with no other predecessor absorbs it.
- Blocks no path from the entry reaches are removed.
"""

from __future__ import annotations

from .. import ir


def _retarget(block: ir.Block, old: str, new: str) -> None:
    block.term.targets = tuple(new if t == old else t for t in block.term.targets)


def _thread(fn: ir.Function) -> bool:
    changed = False
    blocks, preds = fn.block_map(), fn.predecessors()
    for empty in fn.blocks[1:]:
        if empty.insns or empty.term.op != "jump" or empty.term.targets[0] == empty.label:
            continue
        target = empty.term.targets[0]
        for label in dict.fromkeys(preds[empty.label]):
            _retarget(blocks[label], empty.label, target)
            preds[target].append(label)
            changed = True
        preds[empty.label] = []
    return changed


def _merge(fn: ir.Function) -> bool:
    changed = False
    preds = fn.predecessors()
    blocks = fn.block_map()
    for block in list(fn.blocks):
        while block.term.op == "jump":
            nxt = blocks[block.term.targets[0]]
            if nxt is fn.blocks[0] or preds[nxt.label] != [block.label]:
                break
            block.insns += nxt.insns
            block.term = nxt.term
            for t in nxt.successors:
                preds[t] = [block.label if p == nxt.label else p for p in preds[t]]
            preds[nxt.label] = []
            changed = True
    return changed


def run(fn: ir.Function) -> bool:
    changed = _thread(fn)
    changed |= ir.prune_unreachable(fn)
    changed |= _merge(fn)
    changed |= ir.prune_unreachable(fn)
    return changed
