"""Loads, stores and atomic adds: which memory a pointer may touch, dispatched by its kind.

In: a ``load``/``store``/``atomic_add`` instruction, its base's value and the ``State``. Out: the
loaded value or the updated state, or a located error. Packet, stack and context accesses follow
``packet``, ``stack`` and ``ctx``; here are the rest (check_mem_access, check_map_access,
check_mem_region_access, check_atomic):
- a number is not a pointer ("invalid mem access 'scalar'"), nor is data-end, nor a pointer a
  map lookup or ring buffer reservation returned before it is compared with 0;
- a map value is ``value_size`` bytes, a ring buffer record the size it was reserved with; an
  access at a variable offset must stay inside for every offset the variable part allows, which
  must not be negative;
- atomic adds go to map values, stack or ring buffer records, not to the packet or the context,
  at an address aligned to their size (the verifier checks alignment strictly for them).
"""

from __future__ import annotations

from ..ir import SlotRef
from . import alu, ctx, packet, scalar, stack, tnum, values
from .diag import byte_range, fail, line
from .scalar import Scalar
from .values import BTF, CTX, MAP_VALUE, MEM, PACKET_END, PACKET_KINDS, SOCKET, STACK, STALE, Pointer

MAX_VAR_OFF = 1 << 29


def base_of(ck, state, insn) -> Pointer | Scalar:
    base = insn.args[0]
    if isinstance(base, SlotRef):
        return Pointer(STACK, region=base.slot, origin=base.slot.loc)
    return state.regs[base]


def _not_a_pointer(insn, v, verb: str):
    if isinstance(v, Pointer) and v.kind == STALE:
        fail(insn.loc, f"{verb} through a packet pointer that the helper call{line(v.origin)} invalidated: helpers "
                       f"that move packet data (xdp-adjust-head/-tail/-meta, skb-pull-data, checksum and store "
                       f"helpers) leave every earlier packet pointer unusable",
             hint="read data and data-end again after the call, and check the length again")
    if isinstance(v, Scalar):
        what = f"the number {v.describe()}" if v.is_const else "a number"
        fail(insn.loc, f"{verb} through {what}, which is not a pointer: the verifier only dereferences pointers",
             hint="pass a pointer: data from with-packet, a map value from getmap/map-lookup (checked for 0), "
                  "or a struct (make-NAME ...)")
    if v.maybe_null:
        source = "map lookup" if v.kind == MAP_VALUE else "ring buffer reservation" if v.kind == MEM else "lookup"
        fail(insn.loc, f"{verb} through the result of a {source}{line(v.origin)} that may be null: the verifier "
                       f"requires a comparison with 0 first",
             hint="check it: (let ((v (map-lookup M K))) (when v ... (load u64 v 0) ...))")
    if v.kind == PACKET_END:
        fail(insn.loc, f"{verb} through data-end: it marks the end of the packet and cannot be dereferenced",
             hint="read through data (plus an offset) after checking it against data-end")


def region_check(insn, ptr: Pointer, off: int, size: int, limit: int, what: str, verb: str) -> None:
    """An access inside ``limit`` bytes (a map value, a ring buffer record)."""
    var = ptr.var
    lo = ptr.off + off + var.smin
    if var.smin < 0 and not var.is_const:
        fail(insn.loc, f"{verb} {what} at a variable offset that may be negative ({var.describe()})",
             hint="use an unsigned index, or check (>= i 0)")
    if var.umax >= MAX_VAR_OFF and not var.is_const:
        fail(insn.loc, f"{verb} {what} at an unbounded variable offset ({var.describe()})",
             hint="bound the index first, e.g. (when (< i N) ...) or (logand i MASK)")
    hi = ptr.off + off + (scalar.signed(var.value) if var.is_const else var.umax) + size
    if lo < 0 or hi > limit:
        at = byte_range(lo, size) if var.is_const else f"bytes {lo}..{hi - 1}"
        fail(insn.loc, f"{verb} {at} of {what}, which has {limit} bytes",
             hint=f"stay within bytes 0..{limit - 1}" + ("" if var.is_const else ": bound the index"))


def _map_value(ptr: Pointer) -> tuple:
    m = ptr.region
    return m.value_size, f"a value of map {m.lisp_name.lower()}{line(ptr.origin)}"


def access(ck, state, insn, base, off: int, size: int, write: bool, value=None):
    """Check one access and apply it; returns the loaded value for a load."""
    verb = "writes" if write else "reads"
    if not isinstance(base, Pointer) or base.kind == STALE or base.maybe_null or base.kind == PACKET_END:
        _not_a_pointer(insn, base, verb)
    kind = base.kind
    if kind in PACKET_KINDS:
        packet.check_access(insn, base, off, size, verb)
        return None if write else scalar.of_width(size)
    if kind == STACK:
        slot = base.region
        total = base.off + off
        lo, hi = stack.check_access(insn, slot, total, base.var, size, verb)
        fixed = base.var.is_const
        if write:
            if fixed:
                stack.write(insn, state, slot, lo, size, value, False)
            else:
                stack.write_var(state, slot, lo, hi, value)
            return None
        return stack.read(insn, state, slot, lo, size) if fixed else stack.read_var(state, slot, lo, hi, size)
    if kind == CTX:
        return ctx.access(insn, ck.prog_type, base, off, size, write)
    if kind == MAP_VALUE:
        limit, what = _map_value(base)
        region_check(insn, base, off, size, limit, what, verb)
        return None if write else scalar.of_width(size)
    if kind == MEM:
        region_check(insn, base, off, size, base.region, f"the ring buffer record{line(base.origin)}", verb)
        return None if write else scalar.of_width(size)
    if kind in (SOCKET, BTF):
        return None if write else scalar.of_width(size)  # kernel objects: BTF-checked by the kernel
    fail(insn.loc, f"{verb} through {values.describe(base)}, which the verifier does not let a program "
                   f"dereference", hint="read packets, map values, the stack or the context")


def atomic(ck, state, insn, base, off: int, size: int, value) -> None:
    if isinstance(base, Pointer) and base.kind in (*PACKET_KINDS, CTX):
        fail(insn.loc, f"atomic-add into {values.describe(base)}: the verifier allows atomic operations only on "
                       f"map values and the stack", hint="use a plain load, add and store")
    if isinstance(base, Pointer) and not tnum.add(base.var.tn, tnum.const(base.off + off)).is_aligned(size):
        fail(insn.loc, f"atomic-add of {size} bytes at offset {base.off + off}"
                       f"{'' if base.var.is_const else f' plus {base.var.describe()}'} of {values.describe(base)}: "
                       f"the verifier wants atomic operations aligned to their size",
             hint=f"add at an offset that is a multiple of {size}")
    access(ck, state, insn, base, off, size, False)
    if isinstance(base, Pointer) and base.kind == STACK and base.var.is_const:
        stack.write(insn, state, base.region, base.off + off, size, alu.as_number(scalar.UNKNOWN), False)
