"""The abstract machine state at one program point: registers, stack bytes, held references.

In: nothing. Out: ``State``, mutable while one block is interpreted and copied at branches, with
``restrict`` (keep only live registers), ``contains`` (does one state cover another: pruning),
``compatible`` / ``join`` (merging states, widening at loop heads).

Stack slots (``ir.StackSlot``: a struct-alloc, a helper call's key or value buffer) are tracked
per byte as the verifier tracks its stack: ``INVALID`` (never written), ``MISC`` (some data),
``ZERO`` (known zero), ``SPILL`` (part of a value stored whole at an 8-byte aligned offset,
whose abstract value ``spills[(slot, off)]`` keeps: a pointer, or a number the verifier keeps
exactly). Slot contents are a string of those codes, one character per byte.
"""

from __future__ import annotations

from ..ir import VReg
from . import values

INVALID, MISC, ZERO, SPILL = "i", "m", "z", "s"


class State:
    __slots__ = ("regs", "stack", "spills", "refs")

    def __init__(self, regs=None, stack=None, spills=None, refs=None):
        self.regs: dict = regs if regs is not None else {}  # VReg -> Value
        self.stack: dict = stack if stack is not None else {}  # slot_key -> str of byte codes
        self.spills: dict = spills if spills is not None else {}  # (slot_key, off) -> (Value, size)
        self.refs: dict = refs if refs is not None else {}  # reference id -> Loc where acquired

    def copy(self) -> State:
        return State(dict(self.regs), dict(self.stack), dict(self.spills), dict(self.refs))

    def restrict(self, live: set, scratch: set, relevant: set) -> State:
        """Only the registers in ``live`` survive, numbers outside ``relevant`` are forgotten (no
        check depends on them: ``relevance``), and the ``scratch`` slots (a helper call's key and
        value buffers, written right before it) are dropped: they start over unwritten."""
        stack = {s: b for s, b in self.stack.items() if s not in scratch}
        regs = {}
        for v, x in self.regs.items():
            if v in live:
                regs[v] = x if v in relevant or values.is_pointer(x) else values.FORGOTTEN
        return State(regs, stack, {k: x for k, x in self.spills.items() if k[0] not in scratch}, dict(self.refs))

    # -- every value, for rules that update all copies of a pointer at once --------------
    def each_value(self):
        """(setter, value) for every register and spilled value."""
        for v, x in list(self.regs.items()):
            yield (lambda new, v=v: self.regs.__setitem__(v, new)), x
        for k, (x, size) in list(self.spills.items()):
            yield (lambda new, k=k, size=size: self.spills.__setitem__(k, (new, size))), x

    def map_values(self, fn) -> None:
        """Replace every value x (registers and spills) by fn(x)."""
        for setter, x in self.each_value():
            new = fn(x)
            if new is not x:
                setter(new)

    # -- comparisons ---------------------------------------------------------------------
    def contains(self, other: State) -> bool:
        """Is every run ``other`` describes also described here? (Same registers assumed.)"""
        if self.refs.keys() != other.refs.keys():
            return False
        for v, x in self.regs.items():
            y = other.regs.get(v)
            if y is None or not values.contains(x, y):
                return False
        for slot, mine in self.stack.items():
            theirs = other.stack.get(slot)
            if theirs is None or not self._bytes_contain(slot, mine, other, theirs):
                return False
        return True

    def _bytes_contain(self, slot, mine: str, other: State, theirs: str) -> bool:
        if mine == theirs and not self.spills and not other.spills:
            return True
        for off, (a, b) in enumerate(zip(mine, theirs)):
            if a == b and a != SPILL:
                continue
            if a == INVALID:
                continue
            if a == MISC and b in (ZERO, MISC):
                continue
            if a == MISC and b == SPILL and not values.is_pointer(other._spill_at(slot, off)):
                continue
            if a == SPILL and b == SPILL:
                x, y = self._spill_at(slot, off), other._spill_at(slot, off)
                if x is not None and y is not None and values.contains(x, y):
                    continue
            return False
        return True

    def _spill_at(self, slot, off: int):
        base = off - off % 8
        entry = self.spills.get((slot, base))
        return entry[0] if entry is not None else None

    def compatible(self, other: State) -> bool:
        if self.refs.keys() != other.refs.keys():
            return False
        for v, x in self.regs.items():
            y = other.regs.get(v)
            if y is None or not values.compatible(x, y):
                return False
        for key, (x, _size) in self.spills.items():
            theirs = other.spills.get(key)
            if theirs is not None and values.is_pointer(x) and not values.compatible(x, theirs[0]):
                return False
        return True

    def join(self, other: State, widen: bool = False, thresholds: tuple = ()) -> State | None:
        """The least state containing both, or None if some register is a pointer in one and not in
        the other (or of another kind)."""
        regs = {}
        for v, x in self.regs.items():
            y = other.regs.get(v)
            if y is None:
                continue
            j = values.join(x, y, widen, thresholds)
            if j is None:
                return None
            regs[v] = j
        stack, spills = {}, {}
        for slot, mine in self.stack.items():
            theirs = other.stack.get(slot)
            if theirs is None:
                continue
            out = []
            for a, b in zip(mine, theirs):
                out.append(a if a == b else INVALID if INVALID in (a, b) else MISC)
            for off in range(0, len(mine), 8):
                x, y = self.spills.get((slot, off)), other.spills.get((slot, off))
                if x is None or y is None or x[1] != y[1] or out[off] != SPILL:
                    if SPILL in out[off:off + 8]:
                        out[off:off + 8] = [c if c != SPILL else MISC for c in out[off:off + 8]]
                    continue
                j = values.join(x[0], y[0], widen, thresholds)
                if j is None:
                    if values.is_pointer(x[0]) or values.is_pointer(y[0]):
                        return None
                    out[off:off + x[1]] = [MISC] * x[1]
                    continue
                spills[(slot, off)] = (j, x[1])
            stack[slot] = "".join(out)
        refs = dict(self.refs) if self.refs.keys() == other.refs.keys() else None
        if refs is None:
            return None
        return State(regs, stack, spills, refs)

    def same_as(self, other: State) -> bool:
        return (self.stack == other.stack and self.refs.keys() == other.refs.keys()
                and self.regs.keys() == other.regs.keys()
                and all(values.same(x, other.regs[v]) for v, x in self.regs.items())
                and self.spills.keys() == other.spills.keys()
                and all(values.same(x[0], other.spills[k][0]) and x[1] == other.spills[k][1]
                        for k, x in self.spills.items()))


def fresh_slot(size: int) -> str:
    return INVALID * size


def slot_key(slot) -> int:
    """The key of an ``ir.StackSlot`` in ``State.stack``: the slot object itself (a callback's
    slots and its caller's are numbered independently)."""
    return id(slot)


__all__ = ["State", "VReg", "INVALID", "MISC", "ZERO", "SPILL", "fresh_slot", "slot_key"]
