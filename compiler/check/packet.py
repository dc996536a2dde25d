"""Packet rules: which bytes a packet pointer may touch, and which comparisons prove it.

In: packet pointers (``values.Pointer`` of kind PACKET / PACKET_META) and the comparisons the
program branches on. Out: a located error for an access no comparison covers; on each side of a
comparison against data_end, the states with the ranges it proves.

The verifier's rules (kernel/bpf/verifier.c, try_match_pkt_pointers, find_good_pkt_pointers,
check_packet_access), checked against this kernel by tests/kernel/compiler/test_checker_rules.py:
- only unsigned ordering comparisons (>, >=, <, <=) of a packet pointer P against data_end
  (or of a metadata pointer against an unmoved data pointer) prove anything; ``=``, ``/=`` and
  signed comparisons prove nothing;
- on the side where P <= end holds, P's offset bytes are proven; where P < end holds, one more;
  the range goes to every copy of P's base (the same variable part, ``id``), but not to a
  pointer loaded from the context again afterwards;
- the side where P > end (or >=) marks P as beyond (at) the end, which decides a later
  comparison of the same pointer;
- nothing is proven for a negative offset or a variable part that may exceed 65535;
- an access of N bytes at offset o needs o >= 0, o + N <= range, and a variable part that
  cannot be negative.
"""

from __future__ import annotations

from .diag import byte_range, fail, line
from .state import State
from .values import AT_END, BEYOND_END, MAX_PACKET_OFF, PACKET, PACKET_END, PACKET_META, Pointer

# pkt COND end -> (what the true side learns, what the false side learns)
_LEARN = {"gt": ("beyond", "le"), "le": ("le", "beyond"), "lt": ("lt", "at"), "ge": ("at", "lt")}
_FLIP = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}


def check_access(insn, ptr: Pointer, off: int, size: int, verb: str) -> None:
    what = "packet metadata" if ptr.kind == PACKET_META else "packet"
    if ptr.var.smin < 0:
        fail(insn.loc, f"{verb} the {what} at a variable offset that may be negative ({ptr.var.describe()})",
             hint="use an unsigned index, or check (>= i 0) before adding it")
    at = ptr.off + off
    if ptr.var.exact and not ptr.var.is_const:  # a fixed offset on each path the verifier walks
        if ptr.range >= 0 and at + ptr.var.smin >= 0 and at + ptr.var.umax + size <= ptr.range:
            return
        at_most = at + ptr.var.umax
        if ptr.range < 0 or at + ptr.var.smin < 0:
            at = at + ptr.var.smin
        else:
            at = at_most
    elif ptr.range >= 0 and at >= 0 and at + size <= ptr.range:
        return
    variable = not ptr.var.exact
    need = at + size
    if ptr.range < 0:
        fail(insn.loc, f"{verb} {byte_range(at, size)} of the {what} where a comparison{line(ptr.checked)} "
                       f"showed the packet ends before them", hint="access it on the other side of that check")
    if at < 0:
        fail(insn.loc, f"{verb} {byte_range(at, size)} of the {what}: before the start of the packet",
             hint="packet offsets are counted from data, which the verifier treats as the first byte")
    if variable and ptr.var.umax > MAX_PACKET_OFF:
        fail(insn.loc, f"{verb} the {what} at a variable offset of {ptr.var.describe()} bytes: the verifier only "
                       f"accepts a check against data-end for offsets it knows are below 65536",
             hint="bound the offset first, e.g. (logand i #xfff) or (when (< i 1500) ...), then compare "
                  f"(+ PTR {need}) with data-end")
    checked = f"only {ptr.range} are checked{line(ptr.checked)}" if ptr.range else "no comparison with data-end covers them"
    if variable:
        fail(insn.loc, f"{verb} {byte_range(at, size)} past a variable offset ({ptr.var.describe()}) into the "
                       f"{what}, but {checked}",
             hint=f"compare that pointer plus {need} with data-end first, e.g. "
                  f"(when (<= (+ PTR {need}) data-end) ...)")
    fail(insn.loc, f"{verb} {byte_range(at, size)} of the {what}, but {checked}",
         hint=f"raise :min-len to {need}, or check the length here: (when (<= (+ data {need}) data-end) ...)"
         if ptr.kind == PACKET else f"compare (+ meta {need}) with data first")


def _is_init_data(v) -> bool:
    return isinstance(v, Pointer) and v.kind == PACKET and v.off == 0 and v.var.is_const and v.var.value == 0


def match(cond: str, a, b):
    """If ``a COND b`` compares a packet pointer with its end, ``(pointer, normalised cond, which)``
    with the pointer on the left (``which``: 0 if it is ``a``), else None."""
    if cond not in _LEARN or not (isinstance(a, Pointer) and isinstance(b, Pointer)):
        return None
    if (a.kind == PACKET and b.kind == PACKET_END) or (a.kind == PACKET_META and _is_init_data(b)):
        return a, cond, 0
    if (b.kind == PACKET and a.kind == PACKET_END) or (b.kind == PACKET_META and _is_init_data(a)):
        return b, _FLIP[cond], 1
    return None


def decided(ptr: Pointer, cond: str, against_end: bool) -> bool | None:
    """Does the comparison's outcome follow from an earlier one (is_pkt_ptr_branch_taken)?"""
    if not against_end or ptr.range >= 0:
        return None
    if cond in ("le", "gt") and ptr.range == BEYOND_END:
        return cond == "gt"
    if cond in ("lt", "ge"):
        return cond == "ge"
    return None


def learn(state: State, reg, ptr: Pointer, fact: str, loc) -> None:
    """Apply one side's knowledge: ``le``/``lt`` prove bytes, ``at``/``beyond`` mark the pointer."""
    if fact in ("at", "beyond"):
        if ptr.kind == PACKET and reg is not None:
            state.regs[reg] = ptr._replace(range=AT_END if fact == "at" else BEYOND_END, checked=loc)
        return
    open_right = fact == "lt"
    if ptr.off < 0 or (ptr.off == 0 and not open_right):
        return
    if ptr.var.umax > MAX_PACKET_OFF or ptr.var.umax + ptr.off > MAX_PACKET_OFF:
        return
    # with an exact variable part each path proves its own offset; the smallest holds on all
    new = ptr.off + (ptr.var.umin if ptr.var.exact else 0) + (1 if open_right else 0)

    def widen(x):
        if isinstance(x, Pointer) and x.kind == ptr.kind and x.id == ptr.id and new > x.range:
            return x._replace(range=new, checked=loc)
        return x
    state.map_values(widen)
