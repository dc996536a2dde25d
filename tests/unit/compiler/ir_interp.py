"""A reference interpreter for ``ir.Function``: the meaning of IR, written without the compiler.

In: a function and the context bytes. Out: the returned 64-bit value. Pointers are
(region, offset) pairs: region "ctx" (the given bytes) or a stack slot (function name, slot id),
each function call getting fresh slots; reading stack bytes nothing wrote is an error, as it is
to the verifier. ``bpf_loop`` (helper 181) runs the callback named by its
``FuncRef`` with (index, pointer) as the kernel does, stopping when it returns 1; other helper
calls are not modelled (``Unsupported``). ``steps`` bounds the instructions run (a loop that
never ends is a failure, not a hang). Used to check that optimisation passes preserve meaning.
"""

from __future__ import annotations

from compiler import ir
from compiler.ir import FuncRef, SlotRef, VReg

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


BPF_LOOP = 181


def run(fn: ir.Function, ctx: bytes, steps: int = 1_000_000) -> int:
    memory = {"ctx": bytearray(ctx)}
    callbacks = {c.name: c for c in fn.callbacks}
    budget = [steps]
    return _call(fn, [("ctx", 0)], memory, callbacks, budget)


def _call(fn: ir.Function, arguments: list, memory: dict, callbacks: dict, budget: list):
    frame = id(object())  # this activation's stack slots
    memory.update({(fn.name, frame, s.id): bytearray(s.size) for s in fn.slots})
    # which stack bytes were written: reading one that was not is what the verifier refuses
    memory.update({("written", fn.name, frame, s.id): bytearray(s.size) for s in fn.slots})
    regs: dict = {}

    def value(a):
        if isinstance(a, VReg):
            return regs[a]
        if isinstance(a, SlotRef):
            return ((fn.name, frame, a.slot.id), 0)
        if isinstance(a, FuncRef):
            return a.name
        return a

    def address(insn):
        region, off = value(insn.args[0])
        return region, off + insn.off

    blocks = fn.block_map()
    block = fn.blocks[0]
    while True:
        budget[0] -= len(block.insns) + 1
        if budget[0] < 0:
            raise AssertionError(f"{fn.name}: still running after the step budget")
        for insn in block.insns:
            op = insn.op
            if op == "arg":
                regs[insn.dst] = arguments[insn.off]
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
                region, off = address(insn)
                pointer = memory.get(("pointer", region, off))
                if pointer is not None and insn.size == 8:
                    regs[insn.dst] = pointer
                else:
                    written = memory.get(("written", *region)) if isinstance(region, tuple) else None
                    if written is not None and not all(written[off:off + insn.size]):
                        raise AssertionError(f"{insn}: reads stack bytes {off}..{off + insn.size - 1} of "
                                             f"slot {region[2]} that nothing wrote")
                    regs[insn.dst] = int.from_bytes(memory[region][off:off + insn.size], "little")
            elif op == "store":
                _store(memory, *address(insn), value(insn.args[1]), insn.size)
            elif op == "call" and insn.helper == BPF_LOOP:
                count, callback, pointer, _flags = (value(a) for a in insn.args)
                done = 0
                for index in range(count & 0xFFFFFFFF):
                    done += 1
                    if _call(callbacks[callback], [index, pointer], memory, callbacks, budget) == 1:
                        break
                if insn.dst is not None:
                    regs[insn.dst] = done
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


def _store(memory: dict, region, off: int, v, size: int) -> None:
    """Integers are stored as bytes; a pointer (8 bytes, as the loop capture areas hold them) is
    kept whole beside the bytes."""
    if isinstance(v, tuple):
        if size != 8:
            raise Unsupported("a pointer stored in part")
        memory[("pointer", region, off)] = v
        if isinstance(region, tuple):
            memory[("written", *region)][off:off + size] = b"\1" * size
        return
    memory.pop(("pointer", region, off), None)
    v &= (1 << (8 * size)) - 1
    memory[region][off:off + size] = v.to_bytes(size, "little")
    if isinstance(region, tuple):
        memory[("written", *region)][off:off + size] = b"\1" * size
