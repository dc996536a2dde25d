"""Reuse a loaded value: a load of what an earlier load already read, with nothing written in
between, becomes a copy.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
Forward "must" dataflow over the loads available at each point: (base, offset, size) -> the
vreg holding what was read. Available on entry to a block means available at the end of every
predecessor, with the same holder (a fixpoint, so loops are sound: a value is available in a
loop only if the back edge keeps it). A load finding its location available copies the holder.

What ends availability: assigning the base or the holder; a store or atomic add (through a
stack slot: loads of that slot and of pointers; through a pointer: everything but the context
and other slots); a helper call or ``asm`` (everything but the slots it is not handed, and the
context when the helper is known to leave the packet where it is, ``licm.KEEP_PACKET``).
Context fields (``(xdp-data)`` read twice, say) are the loads this pays for most.
"""

from __future__ import annotations

from .. import ir
from ..ir import Insn, SlotRef
from . import dataflow
from .licm import KEEP_PACKET


def _context(fn: ir.Function):
    first = fn.blocks[0].insns[0] if fn.blocks[0].insns else None
    return first.dst if first is not None and first.op == "arg" and first.off == 0 else None


class _Memory:
    """Which available loads an instruction may overwrite."""

    def __init__(self, fn: ir.Function):
        self.ctx = _context(fn)
        # slots whose address is copied into a vreg: any pointer may point into them
        self.escaped = {a.slot.id for i in fn.all_insns() if i.op == "mov" for a in i.args if isinstance(a, SlotRef)}

    def private(self, base) -> bool:
        """A stack slot only ever addressed directly: nothing but a store naming it writes it."""
        return isinstance(base, SlotRef) and base.slot.id not in self.escaped

    def step(self, state: dict, insn: Insn) -> dict:
        """The available loads after ``insn`` (a new dict when anything changes)."""
        if insn.op in ("store", "atomic_add"):
            target = insn.args[0]
            if self.private(target):
                state = {k: v for k, v in state.items() if k[0] != target}
            else:
                state = {k: v for k, v in state.items() if self.private(k[0])}
        elif insn.op in ir.CLOBBERS_SCRATCH:
            handed = {a for a in insn.args if isinstance(a, SlotRef)}
            keeps_ctx = insn.op == "call" and insn.helper in KEEP_PACKET
            state = {k: v for k, v in state.items()
                     if (self.private(k[0]) and k[0] not in handed) or (keeps_ctx and k[0] == self.ctx)}
        if insn.dst is not None:
            dst = insn.dst
            if any(k[0] == dst or v == dst for k, v in state.items()):
                state = {k: v for k, v in state.items() if k[0] != dst and v != dst}
            if insn.op == "load" and insn.args[0] != dst:
                state = {**state, (insn.args[0], insn.off, insn.size): dst}
        return state


def run(fn: ir.Function) -> bool:
    locations = [(i.args[0], i.off, i.size) for i in fn.all_insns() if i.op == "load"]
    if len(set(locations)) == len(locations):
        return False  # only a location loaded twice can be available at a load
    memory = _Memory(fn)
    entering = dataflow.entering(fn, memory.step)
    rewritten = False
    for block in fn.blocks:
        state = entering(block)
        for insn in block.insns:
            holder = state.get((insn.args[0], insn.off, insn.size)) if insn.op == "load" else None
            if holder is not None and holder != insn.dst:
                insn.op, insn.args, insn.size, insn.off = "mov", [holder], 0, 0
                rewritten = True
            state = memory.step(state, insn)
    return rewritten
