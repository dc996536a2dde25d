"""Which numbers can matter to the verifier's decisions: the checker's form of its precision marks.

In: an ``ir.Function``. Out: the set of vregs whose numeric value can change whether a check
passes or which way a branch goes: the operands of branches, of memory accesses and helper calls,
both operands of an addition or subtraction of two registers (one may be a pointer, whose
offset the other becomes), a value stored where it can be loaded back exactly (the stack, and a
map key written for a call), the value returned where the verifier checks its range
(``returns_checked``: a bpf_loop callback must return 0 or 1), and everything any of those is
computed from.

The verifier prunes a state when another one it already verified differs only in numbers it did
not mark precise (numbers no check depended on). The checker does the same by forgetting, at each
block, what it knows about the numbers outside this set: a counter that is only published, a
byte count that is only stored in a map, do not multiply the states a loop is walked with.
"""

from __future__ import annotations

from .. import ir
from ..ir import SlotRef, VReg

_MEMORY = ("load", "store", "atomic_add")


def relevant(fn: ir.Function, returns_checked: bool = False) -> set:
    key_slots = _key_slots(fn)
    defs: dict = {}
    for insn in fn.all_insns():
        if insn.dst is not None:
            defs.setdefault(insn.dst, []).append(insn)
    work = []
    for insn in fn.all_insns():
        op = insn.op
        if op in ("branch", "call") or (op == "ret" and returns_checked):
            work += insn.vreg_uses()
        elif op in _MEMORY:
            base, *value = insn.args
            if isinstance(base, VReg):
                work.append(base)
            if value and isinstance(value[0], VReg) and _kept(insn, base, key_slots):
                work.append(value[0])
        elif op in ("add", "sub") and all(isinstance(a, VReg) for a in insn.args):
            work += insn.args
    seen: set = set()
    while work:
        v = work.pop()
        if v in seen:
            continue
        seen.add(v)
        for d in defs.get(v, ()):
            work += d.vreg_uses()
    return seen


def _kept(insn, base, key_slots: set) -> bool:
    """Is a value stored here one the program can read back as it was (so its bounds matter)?"""
    if insn.op == "atomic_add":
        return True
    if isinstance(base, SlotRef):
        return base.slot.kind != "scratch" or base.slot.id in key_slots
    return True  # through a pointer: maybe the stack


def _key_slots(fn: ir.Function) -> set:
    """Scratch slots passed where a helper reads a key: a constant key decides a lookup's nullness."""
    keys = set()
    for insn in fn.all_insns():
        if insn.op == "call" and len(insn.args) >= 2 and isinstance(insn.args[1], SlotRef):
            keys.add(insn.args[1].slot.id)
    return keys
