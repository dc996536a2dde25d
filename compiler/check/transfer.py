"""One instruction's effect on the abstract state (the checker's transfer function).

In: the ``Checker`` (program facts: maps, program type, ids), a mutable ``State`` and an IR
instruction. Out: the state after it, or a located error from the rule it breaks. Terminators
return the successors that can run, each with its state; ``ret`` checks that no reference
(a ring buffer record, a socket) is still held.

What ``emit`` makes of an instruction matters where the verifier sees the difference, and is
modelled here: a ``SlotRef`` is r10 plus the slot's frame offset (a stack pointer), an ``int``
operand an immediate or a constant in a register, ``and`` with a small mask and casts to
u8/u16 are 32-bit instructions (``alu``).
"""

from __future__ import annotations

from ..ir import SlotRef
from . import alu, branches, helpers, memory, scalar
from .diag import fail
from .scalar import Scalar
from .values import STACK, Pointer


def value(state, operand):
    if isinstance(operand, int):
        return scalar.known(operand)
    if isinstance(operand, SlotRef):
        return Pointer(STACK, region=operand.slot, origin=operand.slot.loc)
    return state.regs[operand]


def step(ck, state, insn) -> None:
    op = insn.op
    if op == "arg":
        state.regs[insn.dst] = ck.args.get(insn.off, scalar.UNKNOWN)
    elif op == "mov":
        src = insn.args[0]
        v = value(state, src)
        if isinstance(v, Scalar) and not v.is_const and not isinstance(src, int):
            if not v.id:
                v = v.with_id(ck.new_id(insn, 1))
                state.regs[src] = v
        state.regs[insn.dst] = v
    elif op in ("neg", "bswap", "trunc"):
        state.regs[insn.dst] = alu.unary(insn, op, value(state, insn.args[0]))
    elif op == "load":
        base = memory.base_of(ck, state, insn)
        state.regs[insn.dst] = memory.access(ck, state, insn, base, insn.off, insn.size, False)
    elif op == "store":
        base = memory.base_of(ck, state, insn)
        memory.access(ck, state, insn, base, insn.off, insn.size, True, value(state, insn.args[1]))
    elif op == "atomic_add":
        base = memory.base_of(ck, state, insn)
        memory.atomic(ck, state, insn, base, insn.off, insn.size, value(state, insn.args[1]))
    elif op == "call":
        result = helpers.call(ck, state, insn)
        if insn.dst is not None:
            state.regs[insn.dst] = result
    elif op == "asm":
        _asm(ck, state, insn)
    else:  # binary ALU
        a, b = (value(state, x) for x in insn.args)
        state.regs[insn.dst] = alu.binary(insn, op, a, b, ck.new_id(insn))


def terminate(ck, state, insn) -> list:
    if insn.op == "jump":
        return [(insn.targets[0], state)]
    if insn.op == "branch":
        return branches.split(state, insn)
    if ck.is_callback:  # ret of a bpf_loop callback: 0 goes on, 1 stops
        v = value(state, insn.args[0])
        if not isinstance(v, Scalar) or v.umax > 1:
            fail(insn.loc, f"a loop body run by bpf_loop returns {v.describe() if isinstance(v, Scalar) else 'a pointer'}"
                           f": the verifier wants 0 (go on) or 1 (stop)", hint="this is a compiler bug: please report it")
        return []
    if state.refs:  # ret
        fail(insn.loc, f"returns while {helpers.held(state)} on this path: the verifier refuses a program "
                       f"that can leak it",
             hint="call ringbuf-submit or ringbuf-discard on every path (with-ringbuf does), or sk-release "
                  "for a socket")
    return []


_ASM_ALU, _ASM_ALU64 = 4, 7
_ASM_MOV = 0xB0


def _asm(ck, state, insn) -> None:
    """One raw instruction on r0-r5, which hold nothing the program named: only an instruction
    that reads no register (a move of an immediate, a call of a helper without arguments) has a
    defined effect."""
    opcode, dst, src, off, imm = insn.raw
    cls = opcode & 7
    if opcode == 0x85:
        proto = helpers.PROTOS.get(imm)
        if proto is not None and proto.args:
            fail(insn.loc, f"asm calls {proto.name}, which takes {len(proto.args)} argument(s) in r1-r{len(proto.args)}; "
                           f"those registers hold nothing the program put there",
                 hint=f"call it by name: ({proto.name} ...)", rule="asm-registers")
        if proto is not None and imm in helpers.UNAVAILABLE[ck.prog_type]:
            fail(insn.loc, f"{proto.name} (helper {imm}) is not available to {ck.prog_type.upper()} programs",
                 hint="the kernel offers it only to other program types")
        result = scalar.UNKNOWN
    elif cls in (_ASM_ALU, _ASM_ALU64) and opcode & 0xF0 == _ASM_MOV and not opcode & 0x08:
        if src or off:
            fail(insn.loc, f"asm move of an immediate with src {src} and off {off}: the verifier refuses set "
                           f"reserved fields (BPF_MOV uses reserved fields)", hint="use src 0 and off 0")
        v = imm & 0xFFFFFFFF if cls == _ASM_ALU else imm
        result = scalar.known(v) if dst == 0 else None
    else:
        fail(insn.loc, f"asm instruction {opcode:#04x} reads a register, but r0-r5 hold nothing the program put "
                       f"there at an asm instruction", hint="use the dialect's forms for loads, stores and arithmetic",
             rule="asm-registers")
    if insn.dst is not None:
        if result is None:
            fail(insn.loc, "the value of this asm is r0, which it does not set", rule="asm-registers",
                 hint="write the result to r0 (dst 0), or do not use the asm's value")
        state.regs[insn.dst] = result
