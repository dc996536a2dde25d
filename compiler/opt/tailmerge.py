"""Share common return blocks.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
When two or more blocks end in ``ret X`` with the same ``X``, one block holding only ``ret X``
is shared and the others jump to it (a jump is one instruction, often none once laid out as a
fall-through; ``mov r0, X; exit`` is two). Blocks that end alike in other ways: ``crossjump``.
"""

from __future__ import annotations

from .. import ir
from ..ir import Insn


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
    return _share_returns(fn)
