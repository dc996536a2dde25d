"""Inline assembly: ``(asm OPCODE DST SRC OFF IMM)`` -> the core form ``asm`` (one raw instruction).

In: the form and the ``BodyExpander``. Out: ``(asm OPCODE DST SRC OFF IMM)`` with five checked
integers (constants may be named). The instruction is emitted as written, at its place in the
program; r0-r5 are its scratch registers, as for a helper call (values the program keeps
across it live in r6-r9), and its value is r0 afterwards: ``(asm #x85 0 0 0 5)`` calls
ktime_get_ns and yields the time, ``(asm #xb7 0 0 0 42)`` yields 42.

Refused, because they would break code the compiler lays out around the instruction: jumps
and exit (use ``if`` and ``return``), the two-slot ``ld_imm64`` and the legacy packet loads
(class LD), calls other than to a helper, and registers other than r0-r5 (r6-r9 hold the
program's variables, r10 its stack frame).
"""

from __future__ import annotations

from ..forms import Int
from .base import L, error

_CLASS_LD, _CLASS_JMP, _CLASS_JMP32 = 0, 5, 6
_CALL = 0x85
_SCRATCH = range(6)
_SHAPE = "(asm OPCODE DST SRC OFF IMM)"


def _asm(bx, form):
    args = bx.args(form, 5, 5, _SHAPE)
    opcode, dst, src, off, imm = (bx.literal(a, form, f"asm {what}").value
                                  for a, what in zip(args, ("opcode", "dst", "src", "off", "imm")))
    if not 0 <= opcode <= 0xFF:
        raise error(form, f"asm opcode {opcode} does not fit 8 bits", expected=_SHAPE)
    cls = opcode & 7
    if cls == _CLASS_LD:
        raise error(form, f"asm opcode {opcode:#04x} (class LD: ld_imm64 or a legacy packet load) is not supported",
                    hint="write the constant as a literal, or read packets with load")
    if cls in (_CLASS_JMP, _CLASS_JMP32) and opcode != _CALL:
        raise error(form, f"asm opcode {opcode:#04x} is a jump or exit, which would skip code the compiler placed",
                    hint="use if, when and return for control flow")
    if opcode == _CALL and (dst or src or off):
        raise error(form, "an asm call takes dst 0, src 0 and off 0 and a helper id as imm",
                    hint="BPF-to-BPF and kfunc calls are not supported")
    for value, what in ((dst, "dst"), (src, "src")):
        if value not in _SCRATCH:
            raise error(form, f"asm {what} register r{value} is not available",
                        expected="r0 to r5 (r6-r9 hold the program's variables, r10 is the frame pointer)")
    if not -0x8000 <= off <= 0x7FFF:
        raise error(form, f"asm offset {off} does not fit 16 bits (signed)")
    if not -0x80000000 <= imm <= 0xFFFFFFFF:
        raise error(form, f"asm immediate {imm} does not fit 32 bits")
    if imm > 0x7FFFFFFF:
        imm -= 1 << 32  # the same 32 bits, as the signed field holds them
    return L(form.loc, "ASM", *(Int(v, form.loc) for v in (opcode, dst, src, off, imm)))


FORMS = {"ASM": _asm}
