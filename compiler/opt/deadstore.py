"""Dead stack stores: drop a store to a stack slot whose bytes are overwritten before anything
reads them, or never read again.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
``make-flow`` zeroes its struct and the initialisers then overwrite most of it; an LPM key's
zeroing is overwritten field by field. Backward dataflow over the bytes of each slot: a byte is
*dead* at a point when every path from there overwrites it before reading it or leaves the
function (a frame dies when its function returns). A store whose every byte is dead is removed.

What reads a slot: a load from it, and a helper call it is passed to (the helper may read all
of it; ``bpf_loop`` hands it to a callback that may). A slot whose address escapes (copied into
a vreg, ``mov v, &slot``) may also be read through a pointer: by any load or atomic add not
addressed at a slot, and by any helper call or ``asm``; those make all its bytes live. A store
to it is still dead when a store to the same bytes follows with none of those in between (the
zeroing of a ``struct-alloc`` whose fields are all set next). Sound on loops: liveness is a
fixpoint, and a back edge carries "read before overwritten" around like any other edge.
"""

from __future__ import annotations

from .. import ir
from ..ir import SlotRef

MEMORY = ("load", "store", "atomic_add")


def _addressed(fn: ir.Function) -> tuple[set, set]:
    """Ids of the slots addressed at all, and of those whose address escapes (is used other than
    as the base of a memory access or as a call argument)."""
    escaped = set()
    seen = set()
    for insn in fn.all_insns():
        for i, a in enumerate(insn.args):
            if isinstance(a, SlotRef):
                seen.add(a.slot.id)
                if not ((insn.op in MEMORY and i == 0) or insn.op == "call"):
                    escaped.add(a.slot.id)
    return seen, escaped


class _Bytes:
    """Where each tracked slot's bytes sit in one bitmask holding the state of all of them."""

    def __init__(self, slots: list, escaped: set):
        self.base: dict = {}
        self.size: dict = {}
        self.escaped = 0  # the bytes of the slots a pointer may reach
        bit = 0
        for slot in slots:
            self.base[slot.id], self.size[slot.id] = bit, slot.size
            if slot.id in escaped:
                self.escaped |= ((1 << slot.size) - 1) << bit
            bit += slot.size
        self.everything = (1 << bit) - 1

    def of_slot(self, slot_id: int) -> int:
        return ((1 << self.size[slot_id]) - 1) << self.base[slot_id]

    def of_access(self, insn: ir.Insn) -> int:
        """The bytes a load or store touches (clipped to its slot)."""
        s = insn.args[0].slot.id
        lo, hi = max(insn.off, 0), min(insn.off + insn.size, self.size[s])
        return ((1 << (hi - lo)) - 1) << (self.base[s] + lo) if hi > lo else 0

    def step(self, dead: int, insn: ir.Insn) -> tuple[int, bool]:
        """The dead bytes before ``insn`` given those after it, and whether it is a dead store."""
        if insn.op == "ret":
            return self.everything, False  # the frame dies
        base = insn.args[0] if insn.op in MEMORY else None
        if isinstance(base, SlotRef) and base.slot.id in self.base:
            covered = self.of_access(insn)
            if insn.op == "store":
                return dead | covered, covered & ~dead == 0
            dead &= ~covered  # a load, or an atomic add (which reads)
        elif insn.op in ("load", "atomic_add", "call", "asm"):
            dead &= ~self.escaped  # may read through a pointer
        if insn.op == "call":
            for a in insn.args:
                if isinstance(a, SlotRef) and a.slot.id in self.base:
                    dead &= ~self.of_slot(a.slot.id)
        return dead, False


def run(fn: ir.Function) -> bool:
    tracked, escaped = _addressed(fn)
    if not tracked:
        return False
    layout = _Bytes([s for s in fn.slots if s.id in tracked], escaped)
    order = ir.reverse_postorder(fn)
    dead_in = {b.label: layout.everything for b in order}  # optimistic start, for loops

    def dead_out(block: ir.Block) -> int:
        dead = layout.everything
        for t in block.successors:
            dead &= dead_in[t]
        return dead

    changed = True
    while changed:
        changed = False
        for block in reversed(order):
            dead = dead_out(block)
            for insn in reversed([*block.insns, block.term]):
                dead = layout.step(dead, insn)[0]
            if dead != dead_in[block.label]:
                dead_in[block.label] = dead
                changed = True
    removed = False
    for block in order:
        dead = layout.step(dead_out(block), block.term)[0]
        kept = []
        for insn in reversed(block.insns):
            dead, is_dead = layout.step(dead, insn)
            if is_dead:
                removed = True
            else:
                kept.append(insn)
        block.insns = kept[::-1]
    return removed
