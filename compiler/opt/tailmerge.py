"""Share identical code at the ends of paths: duplicate blocks and common return blocks.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
- Blocks that do exactly the same thing (same instructions and terminator, locations aside)
  are one block: predecessors of the copies go to the first.
- When two or more blocks end in ``ret X`` with the same ``X``, one block holding only
  ``ret X`` is shared and the others jump to it (a jump is one instruction, often none once
  laid out as a fall-through; ``mov r0, X; exit`` is two).
"""

from __future__ import annotations

from .. import ir
from ..ir import Insn


def _shape(block: ir.Block) -> tuple:
    return tuple(i.shape() for i in block.insns) + (block.term.shape(),)


def _dedupe(fn: ir.Function) -> bool:
    first: dict = {}
    rename: dict = {}
    for block in fn.blocks[1:]:
        key = _shape(block)
        if key in first:
            rename[block.label] = first[key]
        else:
            first[key] = block.label
    if not rename:
        return False
    for block in fn.blocks:
        block.term.targets = tuple(rename.get(t, t) for t in block.term.targets)
    fn.blocks = [b for b in fn.blocks if b.label not in rename]
    return True


def _share_returns(fn: ir.Function) -> bool:
    by_value: dict = {}
    for block in fn.blocks:
        if block.term.op == "ret":
            by_value.setdefault(block.term.args[0], []).append(block)
    changed = False
    for value, blocks in by_value.items():
        if len(blocks) < 2:
            continue
        shared = next((b for b in blocks if not b.insns and b is not fn.blocks[0]), None)
        if shared is None:
            shared = ir.Block(fn.new_label("ret"), [], Insn("ret", None, [value], blocks[0].term.loc))
            fn.blocks.append(shared)
        for block in blocks:
            if block is not shared:
                block.term = Insn("jump", None, [], block.term.loc, targets=(shared.label,))
                changed = True
    return changed


def run(fn: ir.Function) -> bool:
    changed = _dedupe(fn)
    changed |= _share_returns(fn)
    return changed
