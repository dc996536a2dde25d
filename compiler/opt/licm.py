"""Loop-invariant code motion: compute before a loop what every iteration computes alike.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed. A loop is a
header H with back edges from blocks H dominates, and every block that reaches one of them
without passing H. When H has a preheader P (its only predecessor outside the loop, ending in
``jump H``), instructions whose single-definition vreg cannot change within the loop move to the
end of P:

- a load of a context field (``load`` from a program's ``arg 0``), from anywhere in the loop,
  when nothing in the loop stores through the context or calls a helper that might move the
  packet (``(ctx data)`` changes under ``bpf_xdp_adjust_head``; the helpers in ``KEEP_PACKET``
  are known to leave it; an ``asm`` instruction may be any call): the verifier accepts a context
  load anywhere;
- a pure computation (copy, ALU, byte swap, truncation) in H itself whose operands are constants
  or vregs the loop never assigns. Only H's own instructions: they run on every iteration before
  any test, so the verifier meets the value at the same point of the first iteration. (Hoisting
  ``(+ p 8)`` above a null test of ``p`` further down would be refused.)

Loads of the context are the ones that pay (one memory read per iteration, usually feeding a
packet bounds check); a map's fd is not hoisted: its ``ld_imm64`` in the loop would become a
register copy plus one ``ld_imm64`` before the loop, one slot more, and pin a callee-saved register.
"""

from __future__ import annotations

from .. import ir
from .facts import Facts

KEEP_PACKET = frozenset((1, 2, 3, 5, 7, 8, 12))  # map lookup/update/delete, ktime, prandom, cpu id, tail_call
HOISTABLE = frozenset(("mov", *ir.BINARY_OPS, *ir.UNARY_OPS))


def _preheader(fn: ir.Function, header: str, body: set) -> ir.Block | None:
    outside = [p for p in fn.predecessors()[header] if p not in body]
    if len(outside) != 1:
        return None
    block = fn.block_map()[outside[0]]
    return block if block.term.op == "jump" else None


def _context(fn: ir.Function):
    first = fn.blocks[0].insns[0] if fn.blocks[0].insns else None
    return first.dst if first is not None and first.op == "arg" and first.off == 0 else None


def run(fn: ir.Function) -> bool:
    changed = False
    ctx = _context(fn)
    for header, body in sorted(ir.loops(fn).items(), key=lambda item: len(item[1])):  # inner loops first
        pre = _preheader(fn, header, body)
        if pre is None:
            continue
        facts = Facts(fn)
        blocks = [b for b in fn.blocks if b.label in body]
        assigned = {i.dst for b in blocks for i in [*b.insns, b.term] if i.dst is not None}
        packet_stays = not any(
            (i.op == "call" and i.helper not in KEEP_PACKET) or i.op == "asm"
            or (i.op in ("store", "atomic_add") and i.args[0] == ctx)
            for b in blocks for i in b.insns)
        for block in blocks:
            kept = []
            for insn in block.insns:
                movable = insn.dst in facts.single and (
                    (insn.op == "load" and ctx is not None and insn.args[0] == ctx and packet_stays)
                    or (block.label == header and insn.op in HOISTABLE
                        and not any(a in assigned for a in insn.vreg_uses())))
                if movable:
                    pre.insns.append(insn)
                    assigned.discard(insn.dst)
                    changed = True
                else:
                    kept.append(insn)
            block.insns = kept
    return changed
