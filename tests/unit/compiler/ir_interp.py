"""A reference interpreter for ``ir.Function``: the meaning of IR, written without the compiler.

In: a function and the context bytes. Out: the returned 64-bit value. Pointers are
(region, offset) pairs: region "ctx" (the given bytes) or a stack slot id. Helper calls are not
modelled (``Unsupported``). Used to check that optimisation passes preserve meaning.
"""

from __future__ import annotations

from compiler import ir
from compiler.ir import SlotRef, VReg

M = (1 << 64) - 1


class Unsupported(Exception):
    pass


def _signed(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def _alu(op: str, a, b: int) -> object:
    if isinstance(a, tuple):
        if op != "add":
            raise Unsupported(f"{op} on a pointer")
        return (a[0], a[1] + _signed(b))
    if op in ("lsh", "rsh", "arsh") and b >= 64:
        raise Unsupported("shift by 64 or more")
    return {
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a // b if b else 0,
        "mod": lambda: a % b if b else a, "and": lambda: a & b, "or": lambda: a | b, "xor": lambda: a ^ b,
        "lsh": lambda: a << b, "rsh": lambda: a >> b, "arsh": lambda: _signed(a) >> b,
    }[op]() & M


def _compare(cond: str, a: int, b: int) -> bool:
    if cond.startswith("s"):
        a, b, cond = _signed(a), _signed(b), cond[1:]
    return {"eq": a == b, "ne": a != b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[cond]


def run(fn: ir.Function, ctx: bytes) -> int:
    memory = {"ctx": bytearray(ctx), **{s.id: bytearray(s.size) for s in fn.slots}}
    regs: dict = {}

    def value(a):
        if isinstance(a, VReg):
            return regs[a]
        if isinstance(a, SlotRef):
            return (a.slot.id, 0)
        return a

    def address(insn):
        region, off = value(insn.args[0])
        return memory[region], off + insn.off

    blocks = fn.block_map()
    block = fn.blocks[0]
    while True:
        for insn in block.insns:
            op = insn.op
            if op == "arg":
                regs[insn.dst] = ("ctx", 0)
            elif op == "mov":
                regs[insn.dst] = value(insn.args[0])
            elif op in ir.BINARY_OPS:
                regs[insn.dst] = _alu(op, value(insn.args[0]), value(insn.args[1]))
            elif op == "neg":
                regs[insn.dst] = -value(insn.args[0]) & M
            elif op == "trunc":
                regs[insn.dst] = value(insn.args[0]) & ((1 << (8 * insn.size)) - 1)
            elif op == "bswap":
                low = value(insn.args[0]) & ((1 << (8 * insn.size)) - 1)
                regs[insn.dst] = int.from_bytes(low.to_bytes(insn.size, "little"), "big")
            elif op == "load":
                mem, off = address(insn)
                regs[insn.dst] = int.from_bytes(mem[off:off + insn.size], "little")
            elif op == "store":
                mem, off = address(insn)
                v = value(insn.args[1]) & ((1 << (8 * insn.size)) - 1)
                mem[off:off + insn.size] = v.to_bytes(insn.size, "little")
            else:
                raise Unsupported(op)
        term = block.term
        if term.op == "ret":
            return value(term.args[0])
        if term.op == "jump":
            block = blocks[term.targets[0]]
        else:
            taken = _compare(term.cond, value(term.args[0]), value(term.args[1]))
            block = blocks[term.targets[0 if taken else 1]]
