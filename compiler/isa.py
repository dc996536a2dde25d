"""The eBPF instruction set in one place: opcodes, ``Insn``, builders, encode/decode, disassembly.

In: nothing (plain data). Out: ``Insn`` values that ``emit`` produces and ``elf`` encodes.

Opcode byte layout (kernel Documentation/bpf/standardization/instruction-set.rst):

    ALU/JMP:   | op (4 bits) | source (1 bit: K=imm, X=reg) | class (3 bits) |
    LD/ST:     | mode (3 bits) | size (2 bits) | class (3 bits) |

A 64-bit immediate load (``ld_imm64``) is one ``Insn`` here and two 8-byte slots on the wire.
Jumps carry a symbolic ``target`` label until ``emit`` resolves it into ``off`` (slots to skip);
``encode`` refuses an unresolved jump. ``map_ref`` on an ``ld_imm64`` names the map it loads
(the ELF writer turns it into an ``R_BPF_64_64`` relocation), ``func_ref`` the callback whose
address it loads (relocated against ``.text``, as clang does); ``loc`` is the source location
that produced the instruction (for ``.BTF.ext`` line_info).
"""

from __future__ import annotations

import struct

from .errors import Loc
from .records import dataclass, field, replace

# Instruction classes
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
# Sizes
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
SIZE_BYTES = {W: 4, H: 2, B: 1, DW: 8}
SIZE_OF_BYTES = {4: W, 2: H, 1: B, 8: DW}
# Modes
IMM, MEM, ATOMIC = 0x00, 0x60, 0xC0
# Sources
K, X = 0x00, 0x08
# ALU operations
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR, MOV, ARSH, END = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0)
# Jump operations
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, CALL, EXIT, JLT, JLE, JSLT, JSLE = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0)
# END source bit: to big endian
TO_LE, TO_BE = 0x00, 0x08
# ld_imm64 src_reg values: a map fd, a function's address (imm: its offset, relocated)
PSEUDO_MAP_FD, PSEUDO_FUNC = 1, 4

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

ALU_NAMES = {ADD: "+=", SUB: "-=", MUL: "*=", DIV: "/=", OR: "|=", AND: "&=", LSH: "<<=",
             RSH: ">>=", MOD: "%=", XOR: "^=", MOV: "=", ARSH: "s>>="}
JMP_NAMES = {JEQ: "==", JGT: ">", JGE: ">=", JSET: "&", JNE: "!=", JSGT: "s>", JSGE: "s>=",
             JLT: "<", JLE: "<=", JSLT: "s<", JSLE: "s<="}
SIZE_NAMES = {W: "u32", H: "u16", B: "u8", DW: "u64"}


@dataclass(frozen=True)
class Insn:
    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0  # 32-bit signed, or the 64-bit value of an ld_imm64
    target: str | None = field(default=None, compare=False)  # unresolved jump label
    map_ref: str | None = field(default=None, compare=False)  # map name of an ld_imm64
    func_ref: str | None = field(default=None, compare=False)  # callback name of an ld_imm64
    loc: Loc | None = field(default=None, compare=False)

    @property
    def cls(self) -> int:
        return self.opcode & 0x07

    @property
    def is_ld_imm64(self) -> bool:
        return self.opcode == (LD | DW | IMM)

    @property
    def slots(self) -> int:
        return 2 if self.is_ld_imm64 else 1

    @property
    def is_jump(self) -> bool:
        return self.cls in (JMP, JMP32) and (self.opcode & 0xF0) not in (CALL, EXIT)

    @property
    def is_exit(self) -> bool:
        return self.opcode == (JMP | EXIT)

    @property
    def is_call(self) -> bool:
        return self.opcode == (JMP | CALL)

    def at(self, loc: Loc | None) -> Insn:
        return replace(self, loc=loc)


# -- builders ------------------------------------------------------------------------------

def alu64_imm(op: int, dst: int, imm: int) -> Insn:
    return Insn(ALU64 | op | K, dst, 0, 0, imm)


def alu64_reg(op: int, dst: int, src: int) -> Insn:
    return Insn(ALU64 | op | X, dst, src)


def alu32_imm(op: int, dst: int, imm: int) -> Insn:
    return Insn(ALU | op | K, dst, 0, 0, imm)


def alu32_reg(op: int, dst: int, src: int) -> Insn:
    return Insn(ALU | op | X, dst, src)


def mov64_imm(dst: int, imm: int) -> Insn:
    return alu64_imm(MOV, dst, imm)


def mov64_reg(dst: int, src: int) -> Insn:
    return alu64_reg(MOV, dst, src)


def mov32_reg(dst: int, src: int) -> Insn:
    return alu32_reg(MOV, dst, src)


def neg64(dst: int) -> Insn:
    return Insn(ALU64 | NEG, dst)


def to_be(dst: int, bits: int) -> Insn:
    """Host (little endian) -> big endian, zero-extending: bswap for bits 16/32/64."""
    return Insn(ALU | END | TO_BE, dst, 0, 0, bits)


def ld_imm64(dst: int, value: int) -> Insn:
    return Insn(LD | DW | IMM, dst, 0, 0, value & 0xFFFFFFFFFFFFFFFF)


def ld_map_fd(dst: int, map_name: str) -> Insn:
    return Insn(LD | DW | IMM, dst, PSEUDO_MAP_FD, 0, 0, map_ref=map_name)


def ld_func(dst: int, func_name: str) -> Insn:
    """The address of a function (a bpf_loop callback); ``imm`` is set when its place is known."""
    return Insn(LD | DW | IMM, dst, PSEUDO_FUNC, 0, 0, func_ref=func_name)


def ldx(size: int, dst: int, src: int, off: int) -> Insn:
    return Insn(LDX | MEM | size, dst, src, off)


def stx(size: int, dst: int, off: int, src: int) -> Insn:
    return Insn(STX | MEM | size, dst, src, off)


def st(size: int, dst: int, off: int, imm: int) -> Insn:
    return Insn(ST | MEM | size, dst, 0, off, imm)


def atomic_add(size: int, dst: int, off: int, src: int) -> Insn:
    """lock *(size *)(dst + off) += src   (no fetch)."""
    return Insn(STX | ATOMIC | size, dst, src, off, ADD)


def jmp_imm(op: int, dst: int, imm: int, target: str) -> Insn:
    return Insn(JMP | op | K, dst, 0, 0, imm, target=target)


def jmp_reg(op: int, dst: int, src: int, target: str) -> Insn:
    return Insn(JMP | op | X, dst, src, target=target)


def ja(target: str) -> Insn:
    return Insn(JMP | JA, target=target)


def call(helper_id: int) -> Insn:
    return Insn(JMP | CALL, 0, 0, 0, helper_id)


def exit_() -> Insn:
    return Insn(JMP | EXIT)


# -- encoding ------------------------------------------------------------------------------

_SLOT = struct.Struct("<BBhi")


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def encode(insns: list[Insn]) -> bytes:
    """Instructions -> wire bytes (8 bytes a slot, ld_imm64 takes two)."""
    out = bytearray()
    for i, insn in enumerate(insns):
        if insn.target is not None:
            raise ValueError(f"instruction {i} has an unresolved jump to {insn.target!r}")
        regs = (insn.dst & 0xF) | ((insn.src & 0xF) << 4)
        if insn.is_ld_imm64:
            value = insn.imm & 0xFFFFFFFFFFFFFFFF
            out += _SLOT.pack(insn.opcode, regs, insn.off, _s32(value))
            out += _SLOT.pack(0, 0, 0, _s32(value >> 32))
        else:
            out += _SLOT.pack(insn.opcode, regs, insn.off, _s32(insn.imm))
    return bytes(out)


def decode(code: bytes) -> list[Insn]:
    """Wire bytes -> instructions (an ld_imm64 pair becomes one ``Insn``)."""
    if len(code) % 8:
        raise ValueError(f"code length {len(code)} is not a multiple of 8")
    insns = []
    i = 0
    while i < len(code):
        opcode, regs, off, imm = _SLOT.unpack_from(code, i)
        if opcode == (LD | DW | IMM):
            if i + 16 > len(code):
                raise ValueError(f"truncated ld_imm64 at byte {i}")
            hi = _SLOT.unpack_from(code, i + 8)[3]
            value = (imm & 0xFFFFFFFF) | ((hi & 0xFFFFFFFF) << 32)
            insns.append(Insn(opcode, regs & 0xF, regs >> 4, off, value))
            i += 16
        else:
            insns.append(Insn(opcode, regs & 0xF, regs >> 4, off, imm))
            i += 8
    return insns


def slot_count(insns: list[Insn]) -> int:
    return sum(i.slots for i in insns)


# -- disassembly ---------------------------------------------------------------------------

def format_insn(insn: Insn) -> str:
    """One instruction in the verifier's / bpftool's C-like notation."""
    cls, op = insn.cls, insn.opcode & 0xF0
    d, s = f"r{insn.dst}", f"r{insn.src}"
    if cls in (ALU, ALU64):
        w = "w" if cls == ALU else "r"
        d, s = f"{w}{insn.dst}", f"{w}{insn.src}"
        if op == NEG:
            return f"{d} = -{d}"
        if op == END:
            kind = "be" if insn.opcode & TO_BE else "le"
            return f"r{insn.dst} = {kind}{insn.imm} r{insn.dst}"
        rhs = s if insn.opcode & X else str(insn.imm)
        return f"{d} {ALU_NAMES.get(op, '?=')} {rhs}"
    if insn.is_ld_imm64:
        if insn.src == PSEUDO_MAP_FD:
            return f"r{insn.dst} = map[{insn.map_ref or f'fd:{insn.imm}'}]"
        if insn.src == PSEUDO_FUNC:
            return f"r{insn.dst} = func[{insn.func_ref or f'{insn.imm:+d}'}]"
        return f"r{insn.dst} = {insn.imm:#x} ll"
    size = SIZE_NAMES.get(insn.opcode & 0x18, "?")
    if cls == LDX:
        return f"{d} = *({size} *)({s} {insn.off:+d})"
    if cls == ST:
        return f"*({size} *)({d} {insn.off:+d}) = {insn.imm}"
    if cls == STX:
        if insn.opcode & 0xE0 == ATOMIC:
            return f"lock *({size} *)({d} {insn.off:+d}) += {s}"
        return f"*({size} *)({d} {insn.off:+d}) = {s}"
    if cls in (JMP, JMP32):
        if op == CALL:
            return f"call {insn.imm}"
        if op == EXIT:
            return "exit"
        where = insn.target if insn.target is not None else f"{insn.off:+d}"
        if op == JA:
            return f"goto {where}"
        rhs = s if insn.opcode & X else str(insn.imm)
        return f"if {d} {JMP_NAMES.get(op, '?')} {rhs} goto {where}"
    return f"<unknown opcode {insn.opcode:#04x}>"


def disassemble(insns: list[Insn]) -> list[str]:
    """Numbered listing, numbering by slot as the verifier does."""
    lines, slot = [], 0
    for insn in insns:
        lines.append(f"{slot:4d}: {format_insn(insn)}")
        slot += insn.slots
    return lines
