"""Stack rules: bounds, alignment, per-byte contents, spilled pointers (the verifier's stack model).

In: a ``State``, the ``ir.StackSlot`` accessed, the offset into it (fixed, and the bounds of a
variable part) and the access size. Out: the loaded value, the state updated by a store, or a
located error.

Rules (kernel/bpf/verifier.c, check_stack_{read,write}_{fixed,var}_off, check_ptr_alignment):
- an access stays inside its slot: the frame layout is the allocator's, so bytes outside a
  slot are someone else's (and past the frame the verifier refuses them);
- the stack is strictly aligned: an access of N bytes sits at a multiple of N. The allocator
  starts every slot at an 8-aligned frame offset (``ir.slot_alignment``), so alignment within
  the slot is alignment in the frame, and the verifier's 8-byte chunks are the slot's;
- a pointer is stored whole: 8 bytes at an 8-aligned offset ("invalid size of register
  spill"); reading part of a stored pointer is refused ("invalid size of register fill");
- a number stored at an 8-aligned offset is remembered exactly (a spill) and read back whole
  or by its low bytes; zero bytes are remembered per byte; other bytes read as some number of
  the load's width. Uninitialised bytes may be read (the loader has CAP_PERFMON, so the
  verifier allows it); they read as some number too;
- ``constant_at``: the number a map key in the stack is known to be (get_constant_map_key).
"""

from __future__ import annotations

from .. import ir
from ..ir import StackSlot
from . import scalar, values
from .diag import byte_range, fail, slot_name
from .scalar import Scalar
from .state import INVALID, MISC, SPILL, ZERO, State, fresh_slot, slot_key
from .values import Value


def aligned8(slot: StackSlot) -> bool:
    """Does the slot start at an 8-aligned frame offset (so its 8-aligned offsets are)?"""
    return ir.slot_alignment(slot.size) % 8 == 0


def check_access(insn, slot: StackSlot, off: int, var: Scalar, size: int, verb: str) -> tuple:
    """The lowest and highest offsets (lo, hi_exclusive) the access may touch; refuses an access
    outside the slot or misaligned."""
    if var.is_const:
        lo = off + scalar.signed(var.value)
        hi = lo + size
    else:
        lo, hi = off + var.smin, off + var.smax + size
    if lo < 0 or hi > slot.size:
        where = byte_range(lo, size) if var.is_const else f"bytes {lo}..{hi - 1} (the offset is {var.describe()} + {off})"
        fail(insn.loc, f"{verb} {where} of {slot_name(slot)}, which has only bytes 0..{slot.size - 1}",
             hint=f"stay within the {slot.size} bytes allocated" if var.is_const else
             f"bound the offset (e.g. (when (< i {max(slot.size - size - off + 1, 1)}) ...)) or allocate more",
             rule="stack-slot-bounds")
    if size > 1:
        from . import tnum
        at = tnum.add(var.tn, tnum.const(off))
        if not at.is_aligned(size):
            what = f"offset {lo}" if var.is_const else f"offset {var.describe()} + {off}"
            fail(insn.loc, f"{verb} {size} bytes at {what} of {slot_name(slot)}, which is not a multiple "
                           f"of {size}: the verifier refuses misaligned stack access",
                 hint=f"use an offset that is a multiple of {size}, or access it in smaller pieces")
    return lo, hi


# -- contents ----------------------------------------------------------------------------------

def _bytes(state: State, slot: StackSlot) -> str:
    """The slot's byte codes; a helper call's key/value buffer not yet written this block is fresh."""
    b = state.stack.get(slot_key(slot))
    return b if b is not None else fresh_slot(slot.size)


def _drop_spill_chunk(state: State, slot: StackSlot, chunk: int) -> None:
    """A write into an 8-byte chunk holding a spill leaves plain data there."""
    if (slot_key(slot), chunk) in state.spills:
        del state.spills[(slot_key(slot), chunk)]
        b = _bytes(state, slot)
        state.stack[slot_key(slot)] = b[:chunk] + b[chunk:chunk + 8].replace(SPILL, MISC) + b[chunk + 8:]


def _set(state: State, slot: StackSlot, lo: int, hi: int, code: str) -> None:
    b = _bytes(state, slot)
    state.stack[slot_key(slot)] = b[:lo] + code * (hi - lo) + b[hi:]


def write(insn, state: State, slot: StackSlot, off: int, size: int, value: Value, from_imm: bool) -> None:
    """A fixed-offset store (bounds and alignment already checked)."""
    chunk = off - off % 8
    spillable = aligned8(slot) and off % 8 == 0
    if values.is_pointer(value) and value.kind != values.STALE:
        if size != 8:
            fail(insn.loc, f"stores {values.describe(value)} in {size} bytes of {slot_name(slot)}: the verifier "
                           f"only lets a pointer be stored whole, in 8 bytes (invalid size of register spill)",
                 hint="a map key or value is the bytes of a number: load the bytes you mean, "
                      "e.g. (load u32 PTR OFF), instead of passing the pointer"
                 if slot.kind == "scratch" else "store pointers as u64")
        _drop_spill_chunk(state, slot, chunk)
        _set(state, slot, off, off + 8, SPILL)
        state.spills[(slot_key(slot), off)] = (value, 8)
        return
    if values.is_pointer(value):  # an invalidated packet pointer is a number to the verifier
        value = scalar.UNKNOWN
    _drop_spill_chunk(state, slot, chunk)
    if spillable:
        b = _bytes(state, slot)
        rest = "".join(c if c in (ZERO, INVALID, MISC) else MISC for c in b[off + size:off + 8])
        state.stack[slot_key(slot)] = b[:off] + SPILL * size + rest + b[off + 8:]
        state.spills[(slot_key(slot), off)] = (value, size)  # the whole register, as the verifier keeps it
        return
    zero = value.is_const and value.value & ((1 << (8 * size)) - 1) == 0
    _set(state, slot, off, off + size, ZERO if zero else MISC)


def read(insn, state: State, slot: StackSlot, off: int, size: int) -> Value:
    """A fixed-offset load (bounds and alignment already checked)."""
    b = _bytes(state, slot)
    chunk = off - off % 8
    spill = state.spills.get((slot_key(slot), chunk)) if aligned8(slot) else None
    if spill is not None:
        value, spill_size = spill
        if size == 8 and spill_size == 8:
            return value
        if values.is_pointer(value):
            fail(insn.loc, f"reads {size} bytes of {values.describe(value)} stored in {slot_name(slot)}: the "
                           f"verifier only lets a stored pointer be read back whole (invalid size of register fill)",
                 hint="load it as u64")
        if size <= spill_size and off == chunk:
            return scalar.coerce(value, size)
    part = b[off:off + size]
    if all(c == ZERO for c in part):
        return scalar.ZERO
    if all(c == SPILL for c in part) and spill is not None and spill[0].is_const and spill[0].value == 0:
        return scalar.ZERO
    return scalar.of_width(size)


def write_var(state: State, slot: StackSlot, lo: int, hi: int, value: Value) -> None:
    """A store at a variable offset may have written any of bytes lo..hi-1."""
    zero = not values.is_pointer(value) and value.is_const and value.value == 0
    for chunk in range(lo - lo % 8, hi, 8):
        _drop_spill_chunk(state, slot, chunk)
    b = _bytes(state, slot)
    state.stack[slot_key(slot)] = b[:lo] + "".join(ZERO if zero and c == ZERO else MISC for c in b[lo:hi]) + b[hi:]


def read_var(state: State, slot: StackSlot, lo: int, hi: int, size: int) -> Value:
    part = _bytes(state, slot)[lo:hi]
    return scalar.ZERO if part and all(c == ZERO for c in part) else scalar.of_width(size)


def helper_writes(state: State, slot: StackSlot, lo: int, hi: int) -> None:
    """A helper filled bytes lo..hi-1 with data."""
    write_var(state, slot, lo, hi, scalar.UNKNOWN)


def constant_at(state: State, slot: StackSlot, off: int, size: int) -> int | None:
    """The number bytes off..off+size-1 are known to hold, if the verifier knows it: zero bytes
    from ``off`` within its 8-byte chunk, or a number stored whole at ``off`` (8-aligned)."""
    b = _bytes(state, slot)
    chunk_end = off - off % 8 + 8
    if off + size <= chunk_end and all(c == ZERO for c in b[off:off + size]):
        return 0
    spill = state.spills.get((slot_key(slot), off)) if off % 8 == 0 and aligned8(slot) else None
    if spill is not None and spill[1] == size and not values.is_pointer(spill[0]) and spill[0].is_const:
        return spill[0].value
    return None
