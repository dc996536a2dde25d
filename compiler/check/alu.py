"""Arithmetic rules: what ALU instructions do to numbers and pointers, and what the verifier refuses.

In: an IR ALU instruction (``ir.BINARY_OPS``, ``neg``, ``bswap``, ``trunc``) and its operands'
values. Out: the result's value, or a located error.

Numbers follow ``scalar``. On pointers (kernel/bpf/verifier.c adjust_ptr_min_max_vals, for a
loader with CAP_BPF and CAP_PERFMON, as root has):
- pointer + number and number + pointer move the pointer: a constant joins the fixed offset,
  anything else the variable part (a packet pointer then gets a new base with nothing proven);
  pointer - number likewise, except on stack pointers (refused);
- the number must not be unbounded below, nor the offset reach 2**29;
- pointer - pointer is a number (the distance); pointer + pointer, number - pointer, any other
  operation with a pointer operand, is refused, and so is arithmetic on data_end and on a
  map-lookup or ring buffer result not yet compared with 0;
- ``emit`` turns ``and`` with a mask below 2**31 and casts to u8/u16 into 32-bit instructions,
  which the verifier refuses on pointers; a cast to u32 (a 32-bit move), ``neg`` and byte swaps
  of a pointer give a number.
"""

from __future__ import annotations

from . import scalar, values
from .diag import fail, line
from .scalar import Scalar
from .values import CTX, MAP_VALUE, MEM, PACKET_END, PACKET_KINDS, STACK, STALE, Pointer

MAX_VAR_OFF = 1 << 29
_MOVABLE = (CTX, MAP_VALUE, STACK, MEM, "packet", "packet_meta", "btf")
_OP_WORDS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "mod", "and": "logand", "or": "logior",
             "xor": "logxor", "lsh": "<<", "rsh": ">>", "arsh": ">>>"}


def as_number(v):
    """An invalidated packet pointer is just a number to the verifier."""
    return scalar.UNKNOWN if isinstance(v, Pointer) and v.kind == STALE else v


def binary(insn, op: str, a, b, new_id: int):
    a, b = as_number(a), as_number(b)
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        mask = insn.args[1]
        if op == "and" and isinstance(mask, int) and 0 <= mask <= 0x7FFFFFFF:  # emit: a 32-bit and
            return scalar.and32(a, mask)
        return scalar.alu(op, a, b)
    if isinstance(a, Pointer) and isinstance(b, Pointer):
        if op == "sub":
            return scalar.UNKNOWN
        fail(insn.loc, f"({_OP_WORDS[op]} ...) of two pointers ({values.describe(a)}, {values.describe(b)}): the "
                       f"verifier only allows subtracting one pointer from another",
             hint="add a number (an offset) to a pointer instead")
    ptr, num, ptr_first = (a, b, True) if isinstance(a, Pointer) else (b, a, False)
    if op == "and" and isinstance(insn.args[1], int) and 0 <= insn.args[1] <= 0x7FFFFFFF:
        _refuse(insn, ptr, "masks", "a pointer cannot be masked")
    if op not in ("add", "sub"):
        _refuse(insn, ptr, f"uses ({_OP_WORDS[op]} ...) on", "only adding or subtracting a number moves a pointer")
    if op == "sub" and not ptr_first:
        fail(insn.loc, f"subtracts {values.describe(ptr)} from a number: the verifier refuses that",
             hint="subtract the number from the pointer, or subtract two pointers to get a distance")
    return move(insn, ptr, num, op, new_id)


def _refuse(insn, ptr: Pointer, verb: str, why: str):
    fail(insn.loc, f"{verb} {values.describe(ptr)}{line(ptr.origin)}: {why}",
         hint="do the arithmetic on numbers, e.g. load the bytes the pointer points to first")


def move(insn, ptr: Pointer, num: Scalar, op: str, new_id: int) -> Pointer:
    if ptr.maybe_null:
        fail(insn.loc, f"moves {values.describe(ptr)}{line(ptr.origin)} before comparing it with 0: the "
                       f"verifier refuses arithmetic on a pointer that may be null",
             hint="check it first: (when P ...) or (if P ... 0), then add the offset")
    if ptr.kind == PACKET_END:
        fail(insn.loc, "moves data-end: the verifier refuses arithmetic on the packet end",
             hint="move the packet pointer instead and compare it with data-end: (> (+ data N) data-end)")
    if ptr.kind not in _MOVABLE:
        fail(insn.loc, f"moves {values.describe(ptr)}: the verifier refuses arithmetic on it",
             hint="use the pointer as it is, or read the field you need through it")
    if op == "sub" and ptr.kind == STACK:
        fail(insn.loc, "subtracts from a stack pointer: the verifier refuses that",
             hint="add a negative offset to the buffer's start instead, or index from its start")
    _sane(insn, ptr, num)
    if num.is_const:
        delta = scalar.signed(num.value)
        off = ptr.off + delta if op == "add" else ptr.off - delta
        if -(1 << 31) <= off < (1 << 31):
            moved = ptr._replace(off=off)
            _sane_offset(insn, moved)
            return moved
    var = scalar.alu(op, ptr.var, num)
    moved = ptr._replace(var=var)
    if var.exact:  # a constant on each path the verifier walks: the base and its range stay
        _sane_offset(insn, moved)
        return moved
    if ptr.kind in PACKET_KINDS:
        keep_range = op == "sub" and num.smin >= 0
        moved = moved._replace(id=new_id, range=ptr.range if keep_range else 0, checked=None)
    _sane_offset(insn, moved)
    return moved


def _sane(insn, ptr: Pointer, num: Scalar) -> None:
    if num.exact:
        v = num.smax if num.smax >= MAX_VAR_OFF else num.smin
        if v >= MAX_VAR_OFF or v <= -MAX_VAR_OFF:
            fail(insn.loc, f"adds {v} to {values.describe(ptr)}: the verifier refuses offsets of 2**29 or more",
                 hint="offsets into packets, maps and the stack are small; check the arithmetic")
        return
    if num.smin == scalar.S64_MIN:
        fail(insn.loc, f"adds a number with no lower bound to {values.describe(ptr)}: the verifier refuses "
                       f"pointer arithmetic with a value it cannot bound",
             hint="bound the offset first: mask it, e.g. (logand i #xff), or compare it, e.g. (when (< i 64) ...); "
                  "a value loaded as u8/u16/u32 is bounded, division and modulo results are not")
    if num.smin >= MAX_VAR_OFF or num.smin <= -MAX_VAR_OFF:
        fail(insn.loc, f"adds {num.describe()} to {values.describe(ptr)}: the verifier refuses offsets of 2**29 "
                       f"or more", hint="bound the offset first, e.g. (logand i #xffff)")


def _sane_offset(insn, ptr: Pointer) -> None:
    if ptr.off >= MAX_VAR_OFF or ptr.off <= -MAX_VAR_OFF:
        fail(insn.loc, f"moves {values.describe(ptr)} by {ptr.off} bytes: the verifier refuses offsets of 2**29 "
                       f"or more", hint="offsets into packets, maps and the stack are small; check the arithmetic")
    if not ptr.var.is_const and (ptr.var.smin == scalar.S64_MIN or ptr.var.smin <= -MAX_VAR_OFF
                                 or ptr.var.smin >= MAX_VAR_OFF):
        fail(insn.loc, f"moves {values.describe(ptr)} by {ptr.var.describe()} bytes: the verifier refuses "
                       f"a pointer it cannot bound", hint="bound the offset first, e.g. (logand i #xff)")


def unary(insn, op: str, a):
    a = as_number(a)
    if isinstance(a, Scalar):
        if op == "neg":
            return scalar.neg(a)
        if op == "bswap":
            return scalar.bswap(a, insn.size)
        return scalar.truncate(a, insn.size)
    if op == "trunc" and insn.size < 4:
        _refuse(insn, a, f"casts to u{8 * insn.size}", "a pointer cannot be cut to fewer than 32 bits")
    return scalar.UNKNOWN if op != "trunc" else scalar.of_width(4)  # the pointer's value, as a number
