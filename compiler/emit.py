"""Emission: allocated IR -> BPF instructions (``code.ProgramCode``).

In: a ``regalloc.Allocation`` and the program's ``ProgDef``. Out: ``ProgramCode`` with jump
offsets resolved (in slots), a map name on every map ``ld_imm64``, a callback name on every
``ld_imm64`` of a callback's address, every instruction located at the form that produced it,
and the loop callbacks as ``Subprogram``s.

Emission is a direct translation; it makes no decisions the allocator or the optimiser should
make. Blocks are laid out in reverse postorder (jumps go forward, except a loop's jump back to
its header), with each block's preferred successor placed right after it so its edge is a
fall-through; a branch whose fall-through target is the next block needs one conditional
jump, inverted if that helps.
Two-operand ALU forms are ``mov dst, a; OP dst, b`` (the ``mov`` vanishes when the allocator
put ``dst`` and ``a`` together). Helper arguments are put into r1-r5 by a parallel move
(r0, which the call overwrites anyway, breaks cycles), then constants, stack addresses, map
fds and callback addresses; the result is taken from r0.
"""

from __future__ import annotations

from . import ir, isa
from .code import ProgramCode, Subprogram
from .decls import ProgDef
from .errors import CompileError
from .ir import FuncRef, Insn, MapRef, SlotRef, VReg
from .records import replace
from .regalloc import Allocation

ALU = {"add": isa.ADD, "sub": isa.SUB, "mul": isa.MUL, "div": isa.DIV, "mod": isa.MOD, "and": isa.AND,
       "or": isa.OR, "xor": isa.XOR, "lsh": isa.LSH, "rsh": isa.RSH, "arsh": isa.ARSH}
JUMP = {"eq": isa.JEQ, "ne": isa.JNE, "gt": isa.JGT, "ge": isa.JGE, "lt": isa.JLT, "le": isa.JLE,
        "sgt": isa.JSGT, "sge": isa.JSGE, "slt": isa.JSLT, "sle": isa.JSLE}
TRUNC_MASK = {1: 0xFF, 2: 0xFFFF}


def emit_program(alloc: Allocation, prog: ProgDef) -> ProgramCode:
    subprograms = tuple(Subprogram(cb.fn.name, tuple(_Emitter(cb).run()), cb.stack_size, cb.fn.loc)
                        for cb in alloc.callbacks)
    return ProgramCode(prog, tuple(_Emitter(alloc).run()), alloc.stack_size, subprograms)


def layout(fn: ir.Function) -> list:
    """Blocks in reverse postorder; of two successors, the one with fewer predecessors (the
    branch's own continuation rather than a shared exit) comes right after, else the false one."""
    preds = fn.predecessors()

    def successors(block: ir.Block) -> list:
        # visited last = placed next; stable sort keeps the false target last among equals
        return sorted(block.successors, key=lambda t: -len(preds[t]))

    return ir.depth_first_postorder(fn.block_map(), fn.blocks[0].label, successors)[::-1]


class _Emitter:
    def __init__(self, alloc: Allocation):
        self.alloc = alloc
        self.out: list = []

    def reg(self, v: VReg) -> int:
        return self.alloc.regs[v]

    def put(self, insn: Insn, *code: isa.Insn) -> None:
        self.out += [c.at(insn.loc) for c in code]

    def run(self) -> list:
        order = layout(self.alloc.fn)
        starts: dict = {}
        for i, block in enumerate(order):
            starts[block.label] = len(self.out)
            for insn in block.insns:
                getattr(self, "_" + insn.op if insn.op not in ALU else "_alu")(insn)
            nxt = order[i + 1].label if i + 1 < len(order) else None
            getattr(self, "_" + block.term.op)(block.term, nxt)
        return _resolve(self.out, starts)

    # -- operands --------------------------------------------------------------------------
    def _load_const(self, insn: Insn, dst: int, value) -> None:
        """Put a constant, slot address or map fd into register ``dst``."""
        if isinstance(value, MapRef):
            self.put(insn, isa.ld_map_fd(dst, value.name))
        elif isinstance(value, FuncRef):
            self.put(insn, isa.ld_func(dst, value.name))
        elif isinstance(value, SlotRef):
            self.put(insn, isa.mov64_reg(dst, isa.R10),
                     isa.alu64_imm(isa.ADD, dst, self.alloc.frame[value.slot.id]))
        elif ir.fits_s32(value):
            self.put(insn, isa.mov64_imm(dst, ir.to_signed(value)))
        else:
            self.put(insn, isa.ld_imm64(dst, value))

    def _copy(self, insn: Insn, dst: int, src: int) -> None:
        if dst != src:
            self.put(insn, isa.mov64_reg(dst, src))

    def _address(self, insn: Insn) -> tuple:
        """(register, offset) of a memory instruction's address."""
        base = insn.args[0]
        if isinstance(base, SlotRef):
            return isa.R10, insn.off + self.alloc.frame[base.slot.id]
        return self.reg(base), insn.off

    # -- instructions ----------------------------------------------------------------------
    def _arg(self, insn: Insn) -> None:
        self._copy(insn, self.reg(insn.dst), isa.R1 + insn.off)

    def _mov(self, insn: Insn) -> None:
        src = insn.args[0]
        if isinstance(src, VReg):
            self._copy(insn, self.reg(insn.dst), self.reg(src))
        else:
            self._load_const(insn, self.reg(insn.dst), src)

    def _alu(self, insn: Insn) -> None:
        a, b = insn.args
        d = self.reg(insn.dst)
        if isinstance(b, VReg) and self.reg(b) == d and self.reg(a) != d:
            assert insn.op in ir.COMMUTATIVE, f"allocator put {insn.dst} and {b} together in {insn}"
            a, b = b, a
        self._copy(insn, d, self.reg(a))
        if isinstance(b, VReg):
            self.put(insn, isa.alu64_reg(ALU[insn.op], d, self.reg(b)))
        else:
            self.put(insn, _alu_imm(insn.op, d, b))

    def _neg(self, insn: Insn) -> None:
        d = self.reg(insn.dst)
        self._copy(insn, d, self.reg(insn.args[0]))
        self.put(insn, isa.neg64(d))

    def _bswap(self, insn: Insn) -> None:
        d = self.reg(insn.dst)
        self._copy(insn, d, self.reg(insn.args[0]))
        self.put(insn, isa.to_be(d, insn.size * 8))

    def _trunc(self, insn: Insn) -> None:
        d, a = self.reg(insn.dst), self.reg(insn.args[0])
        if insn.size == 4:
            self.put(insn, isa.mov32_reg(d, a))  # a 32-bit mov zero-extends
            return
        self._copy(insn, d, a)
        self.put(insn, _alu_imm("and", d, TRUNC_MASK[insn.size]))

    def _load(self, insn: Insn) -> None:
        base, off = self._address(insn)
        self.put(insn, isa.ldx(isa.SIZE_OF_BYTES[insn.size], self.reg(insn.dst), base, off))

    def _store(self, insn: Insn) -> None:
        base, off = self._address(insn)
        size, value = isa.SIZE_OF_BYTES[insn.size], insn.args[1]
        if isinstance(value, VReg):
            self.put(insn, isa.stx(size, base, off, self.reg(value)))
        else:
            low = value & ((1 << (8 * insn.size)) - 1) if insn.size < 8 else value
            self.put(insn, isa.st(size, base, off, ir.to_signed(low, 64 if insn.size == 8 else 32)))

    def _atomic_add(self, insn: Insn) -> None:
        base, off = self._address(insn)
        self.put(insn, isa.atomic_add(isa.SIZE_OF_BYTES[insn.size], base, off, self.reg(insn.args[1])))

    def _call(self, insn: Insn) -> None:
        moves = {k + 1: self.reg(a) for k, a in enumerate(insn.args)
                 if isinstance(a, VReg) and self.reg(a) != k + 1}
        self._parallel_move(insn, moves)
        for k, a in enumerate(insn.args):
            if not isinstance(a, VReg):
                self._load_const(insn, k + 1, a)
        self.put(insn, isa.call(insn.helper))
        if insn.dst is not None:
            self._copy(insn, self.reg(insn.dst), isa.R0)

    def _asm(self, insn: Insn) -> None:
        opcode, dst, src, off, imm = insn.raw
        self.put(insn, isa.Insn(opcode, dst, src, off, imm))
        if insn.dst is not None:
            self._copy(insn, self.reg(insn.dst), isa.R0)

    def _parallel_move(self, insn: Insn, pending: dict) -> None:
        """dst <- src for every pair at once; r0 holds a value while a cycle is broken."""
        while pending:
            ready = sorted(d for d in pending if d not in pending.values())
            if ready:
                d = ready[0]
                self._copy(insn, d, pending.pop(d))
                continue
            d = min(pending)
            self._copy(insn, isa.R0, d)
            pending = {k: (isa.R0 if s == d else s) for k, s in pending.items()}

    # -- terminators -----------------------------------------------------------------------
    def _jump(self, insn: Insn, nxt: str | None) -> None:
        if insn.targets[0] != nxt:
            self.put(insn, isa.ja(insn.targets[0]))

    def _branch(self, insn: Insn, nxt: str | None) -> None:
        yes, no = insn.targets
        cond = insn.cond
        if yes == nxt:
            cond, yes, no = ir.NEGATED[cond], no, yes
        a, b = insn.args
        if isinstance(b, VReg):
            self.put(insn, isa.jmp_reg(JUMP[cond], self.reg(a), self.reg(b), yes))
        else:
            self.put(insn, isa.jmp_imm(JUMP[cond], self.reg(a), ir.to_signed(b), yes))
        if no != nxt:
            self.put(insn, isa.ja(no))

    def _ret(self, insn: Insn, nxt: str | None) -> None:
        value = insn.args[0]
        if isinstance(value, VReg):
            self._copy(insn, isa.R0, self.reg(value))
        else:
            self._load_const(insn, isa.R0, value)
        self.put(insn, isa.exit_())


def _alu_imm(op: str, d: int, b: int) -> isa.Insn:
    """``d OP= b``. An ``and`` with a mask below 2**31 is the 32-bit instruction, as Whistler
    emits it: the same result (both clear the upper half) in the narrower encoding."""
    if op == "and" and 0 <= b <= 0x7FFFFFFF:
        return isa.alu32_imm(isa.AND, d, b)
    return isa.alu64_imm(ALU[op], d, ir.to_signed(b))


MAX_JUMP = 0x7FFF  # a jump's offset is a signed 16-bit number of slots


def _resolve(code: list, starts: dict) -> list:
    """Turn jump labels into slot offsets; a jump farther than 16 bits reach is a located error."""
    slot_at, slot = [], 0
    for c in code:
        slot_at.append(slot)
        slot += c.slots
    slot_at.append(slot)
    out = []
    for i, c in enumerate(code):
        if c.target is not None:
            off = slot_at[starts[c.target]] - slot_at[i] - 1
            if not -MAX_JUMP - 1 <= off <= MAX_JUMP:
                raise CompileError(c.loc, f"this code would need a jump over {abs(off)} instructions, more than "
                                   f"the {MAX_JUMP} a BPF jump reaches",
                                   hint="make the branches or loop bodies here smaller, or split the work "
                                        "across programs with tail-call")
            c = replace(c, off=off, target=None)
        out.append(c)
    return out
