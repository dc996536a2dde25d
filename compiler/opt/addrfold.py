"""Fold constant address arithmetic into the offset of loads, stores and atomic adds.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
``*(base + off)`` where ``base = x + C`` (its only definition, ``x`` unchanging) becomes
``*(x + off + C)``; when ``x`` is a slot address the access goes straight to the frame. So
``(load u8 (+ data 14) 9)`` is ``ldxb [data + 23]``. Offsets must stay within 16 bits.
"""

from __future__ import annotations

from .. import ir
from ..ir import SlotRef
from .facts import Facts

MEMORY_OPS = ("load", "store", "atomic_add")


def run(fn: ir.Function) -> bool:
    facts = Facts(fn)
    changed = False
    for insn in fn.all_insns():
        if insn.op not in MEMORY_OPS:
            continue
        d = facts.definition(insn.args[0])
        if d is None or d.op != "add" or d.args[0] not in facts.single:
            continue
        c = facts.const(d.args[1])
        if c is None:
            continue
        off = insn.off + ir.to_signed(c)
        if not -0x8000 <= off <= 0x7FFF:
            continue
        base = d.args[0]
        slot = facts.definition(base)
        if slot is not None and slot.op == "mov" and isinstance(slot.args[0], SlotRef):
            base = slot.args[0]
        insn.args[0], insn.off = base, off
        changed = True
    return changed
