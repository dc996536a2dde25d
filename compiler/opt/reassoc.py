"""Shorten chains of one associative operation: ``s = s + x1; s = s + x2; ...`` adds in pairs.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
An unrolled sum (a checksum over header words) is a chain where every addition waits for the
one before; the JIT keeps BPF's order, so the CPU does too. Within a block, the links
``s = s OP x`` of one accumulator s (OP one of add, mul, and, or, xor: associative and
commutative on 64-bit values) whose operands x are computed in the block and read only there
are regrouped: each operand is combined with the last one as soon as both exist, those sums
with each other likewise (a binary counter, so at most log2(n) partial results wait in
registers), and s takes the total where the last link stood: the same number of operations,
the chain log2(n) long instead of n. Only when nothing else reads or writes s between the
first link and the last.
"""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..ir import Insn, VReg

CHAINABLE = frozenset(("add", "mul", "and", "or", "xor"))
MIN_LINKS = 3


def _chains(block: ir.Block, uses: Counter, defs: Counter) -> list:
    """(accumulator, op, positions of its links) for each regroupable chain in the block."""
    found = []
    defined_here = {i.dst for i in block.insns if i.dst is not None}
    open_chains: dict = {}  # accumulator -> (op, positions)
    for pos, insn in enumerate(block.insns):
        link = (insn.op in CHAINABLE and insn.dst is not None and insn.args[0] == insn.dst
                and isinstance(insn.args[1], VReg) and insn.args[1] != insn.dst
                and insn.args[1] in defined_here and uses[insn.args[1]] == 1 and defs[insn.args[1]] == 1)
        s = insn.dst if link else None
        for acc in [a for a in open_chains if a in insn.vreg_uses() or a == insn.dst]:
            op, positions = open_chains[acc]
            if acc == s and insn.op == op:
                continue  # the chain goes on
            found.append((acc, op, positions))  # something else touches it: the chain ends here
            del open_chains[acc]
        if link:
            open_chains.setdefault(s, (insn.op, []))[1].append(pos)
    found += [(acc, op, positions) for acc, (op, positions) in open_chains.items()]
    return [c for c in found if len(c[2]) >= MIN_LINKS]


def _regroup(fn: ir.Function, block: ir.Block, acc: VReg, op: str, positions: list) -> None:
    last = positions[-1]
    pending: list = []  # (level, vreg): partial results of 2**level operands
    new: dict = {}  # position -> instructions replacing the link there
    for pos in positions:
        link = block.insns[pos]
        pending.append((0, link.args[1]))
        code = []
        while len(pending) >= 2 and pending[-1][0] == pending[-2][0]:
            (level, b), (_level, a) = pending.pop(), pending.pop()
            t = fn.new_vreg()
            code.append(Insn(op, t, [a, b], link.loc))
            pending.append((level + 1, t))
        if pos == last:
            while len(pending) >= 2:
                (_lb, b), (la, a) = pending.pop(), pending.pop()
                t = fn.new_vreg()
                code.append(Insn(op, t, [a, b], link.loc))
                pending.append((max(la, _lb) + 1, t))
            code.append(Insn(op, acc, [acc, pending[0][1]], link.loc))
        new[pos] = code
    out = []
    for pos, insn in enumerate(block.insns):
        out.extend(new.get(pos, [insn]))
    block.insns = out


def run(fn: ir.Function) -> bool:
    uses = Counter(v for insn in fn.all_insns() for v in insn.vreg_uses())
    defs = Counter(insn.dst for insn in fn.all_insns() if insn.dst is not None)
    changed = False
    for block in fn.blocks:
        for acc, op, positions in _chains(block, uses, defs):
            _regroup(fn, block, acc, op, positions)
            changed = True
            break  # positions of other chains moved: the next round finds them
    return changed
