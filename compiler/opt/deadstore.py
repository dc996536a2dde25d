"""Dead stack stores: drop a store to a stack slot whose bytes are overwritten before anything
reads them, or never read again.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
``make-flow`` zeroes its struct and the initialisers then overwrite most of it; an LPM key's
zeroing is overwritten field by field. Backward dataflow over the bytes of each slot: a byte is
*dead* at a point when every path from there overwrites it before reading it or leaves the
function (a frame dies when its function returns). A store whose every byte is dead is removed.

What reads a slot: a load from it, and a helper call it is passed to (the helper may read all
of it; ``bpf_loop`` hands it to a callback that may). Only slots whose address is used nowhere
else are tracked: one copied into a vreg (``mov v, &slot``) may be read through that vreg
anywhere, so its stores all stay. Sound on loops: liveness is a fixpoint, and a back edge
carries "read before overwritten" around like any other edge.
"""

from __future__ import annotations

from .. import ir
from ..ir import SlotRef

MEMORY = ("load", "store", "atomic_add")


def _tracked(fn: ir.Function) -> set:
    """Ids of the slots addressed only as the base of a memory access or as a call argument."""
    escaped = set()
    seen = set()
    for insn in fn.all_insns():
        for i, a in enumerate(insn.args):
            if isinstance(a, SlotRef):
                seen.add(a.slot.id)
                if not ((insn.op in MEMORY and i == 0) or insn.op == "call"):
                    escaped.add(a.slot.id)
    return seen - escaped


def _bytes(insn: ir.Insn, slot_size: int) -> int:
    """The bytes of its slot a store or load covers, as a bitmask (clipped to the slot)."""
    lo, hi = max(insn.off, 0), min(insn.off + insn.size, slot_size)
    return ((1 << (hi - lo)) - 1) << lo if hi > lo else 0


class _Dead:
    """Per tracked slot, the bitmask of bytes dead at a point."""

    def __init__(self, sizes: dict, everything: bool):
        self.sizes = sizes
        self.mask = {s: ((1 << n) - 1) if everything else 0 for s, n in sizes.items()}

    def copy(self) -> _Dead:
        other = _Dead(self.sizes, False)
        other.mask = dict(self.mask)
        return other

    def meet(self, other: _Dead) -> None:
        for s in self.mask:
            self.mask[s] &= other.mask[s]

    def step(self, insn: ir.Insn) -> bool:
        """Move the state from after ``insn`` to before it; returns whether ``insn`` is a dead store."""
        if insn.op == "ret":
            for s, n in self.sizes.items():
                self.mask[s] = (1 << n) - 1
            return False
        base = insn.args[0] if insn.op in MEMORY else None
        if isinstance(base, SlotRef) and base.slot.id in self.mask:
            s = base.slot.id
            covered = _bytes(insn, self.sizes[s])
            if insn.op == "store":
                dead = covered & ~self.mask[s] == 0
                self.mask[s] |= covered
                return dead
            self.mask[s] &= ~covered  # a load, or an atomic add (which reads)
        if insn.op == "call":
            for a in insn.args:
                if isinstance(a, SlotRef) and a.slot.id in self.mask:
                    self.mask[a.slot.id] = 0
        return False


def run(fn: ir.Function) -> bool:
    tracked = _tracked(fn)
    if not tracked:
        return False
    sizes = {s.id: s.size for s in fn.slots if s.id in tracked}
    order = ir.reverse_postorder(fn)
    dead_in: dict = {b.label: _Dead(sizes, True) for b in order}  # optimistic start for loops

    def dead_out(block: ir.Block) -> _Dead:
        state = None
        for t in block.successors:
            if state is None:
                state = dead_in[t].copy()
            else:
                state.meet(dead_in[t])
        return state if state is not None else _Dead(sizes, True)

    changed = True
    while changed:
        changed = False
        for block in reversed(order):
            state = dead_out(block)
            for insn in reversed([*block.insns, block.term]):
                state.step(insn)
            if state.mask != dead_in[block.label].mask:
                dead_in[block.label] = state
                changed = True
    removed = False
    for block in order:
        state = dead_out(block)
        state.step(block.term)
        kept = []
        for insn in reversed(block.insns):
            if state.step(insn):
                removed = True
            else:
                kept.append(insn)
        block.insns = kept[::-1]
    return removed
