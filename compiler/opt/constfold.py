"""Constant folding and operand canonicalisation.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
- An ALU instruction whose operands are all known constants becomes ``mov dst, RESULT``,
  computed with BPF's runtime semantics (wrap mod 2**64, x/0 = 0, x mod 0 = x; shifts by 64 or
  more are left to run).
- Identities: ``x + 0``, ``x - 0``, ``x | 0``, ``x ^ 0``, shifts by 0, ``x * 1``, ``x / 1``, ``x mod 0``
  -> ``mov x``; ``x & 0``, ``x * 0``, ``x / 0`` -> ``mov 0``; ``x & 0xFFFFFFFF`` -> ``trunc x, 4``;
  ``(x + c1) + c2`` -> ``x + (c1 + c2)``.
  (A divisor known to be 0 must not reach emission: the verifier rejects a division by an
  immediate 0, while the same division by a register holding 0 runs with the results above.)
- A constant first operand of a commutative op or a compare is moved to the second position,
  where it can be an immediate.
- A branch on two constants becomes a jump; a branch whose two targets agree becomes a jump; so
  does an unsigned compare against a constant that the known width of the value decides
  (``x >= 2**32`` is false when x is a u32 helper result).
- An 8-byte store of a constant that is no sign-extended s32 becomes two 4-byte stores.
"""

from __future__ import annotations

from .. import ir
from ..ir import MASK64, Insn, evaluate, to_signed
from .facts import Facts


def compare(cond: str, a: int, b: int) -> bool:
    if cond.startswith("s"):
        a, b, cond = to_signed(a), to_signed(b), cond[1:]
    return {"eq": a == b, "ne": a != b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[cond]


_ZERO_IS_IDENTITY = frozenset(("add", "sub", "or", "xor", "lsh", "rsh", "arsh", "mod"))


def _fold_alu(insn: Insn, facts: Facts) -> bool:
    consts = [facts.const(a) for a in insn.args]
    if all(c is not None for c in consts):
        value = evaluate(insn.op, *consts, size=insn.size)
        if value is None:
            return False
        insn.op, insn.args, insn.size = "mov", [value], 0
        return True
    if insn.op not in ir.BINARY_OPS:
        return False
    a, b = insn.args
    ca, cb = consts
    if ca is not None and insn.op in ir.COMMUTATIVE:
        insn.args = [b, a]
        return True
    if cb is None:
        return False
    if (cb == 0 and insn.op in _ZERO_IS_IDENTITY) or (cb == 1 and insn.op in ("mul", "div")):
        insn.op, insn.args = "mov", [a]
        return True
    if cb == 0 and insn.op in ("and", "mul", "div"):
        insn.op, insn.args = "mov", [0]
        return True
    if cb == 0xFFFFFFFF and insn.op == "and":  # no immediate holds this mask; a 32-bit mov does it
        insn.op, insn.args, insn.size = "trunc", [a], 4
        return True
    inner = facts.definition(a)
    if insn.op == "add" and inner is not None and inner.op == "add" and inner.args[0] in facts.single:
        c1 = facts.const(inner.args[1])
        if c1 is not None and ir.fits_s32((c1 + cb) & MASK64):
            insn.args = [inner.args[0], (c1 + cb) & MASK64]
            return True
    return False


def _fold_branch(block: ir.Block, facts: Facts) -> bool:
    term = block.term
    if term.op != "branch":
        return False
    yes, no = term.targets
    ca, cb = (facts.const(x) for x in term.args)
    if yes == no or (ca is not None and cb is not None):
        taken = yes if yes == no else (yes if compare(term.cond, ca, cb) else no)
        block.term = Insn("jump", None, [], term.loc, targets=(taken,))
        return True
    if ca is not None:
        term.args, term.cond = term.args[::-1], ir.MIRRORED[term.cond]
        return True
    outcome = _decided_by_width(block, facts, term.cond, term.args[0], cb)
    if outcome is not None:
        block.term = Insn("jump", None, [], term.loc, targets=(yes if outcome else no,))
        return True
    return False


def _decided_by_width(block: ir.Block, facts: Facts, cond: str, x, c: int | None) -> bool | None:
    """The outcome of the unsigned ``x COND c`` when every value ``x`` can hold at the end of
    ``block`` is below ``c`` (x's last definition in the block, else its only one, says how wide
    it is), or None."""
    if c is None or cond not in ("eq", "ne", "gt", "ge", "lt", "le") or c < 0x100:
        return None
    local = next((i for i in reversed(block.insns) if i.dst == x), None)
    bound = 1 << 8 * (facts.width_of(local) if local is not None else facts.width(x))  # x < bound
    if c < bound - 1 or (c == bound - 1 and cond in ("eq", "ne", "ge", "lt")):
        return None
    return cond in ("ne", "lt", "le")


def _split_wide_store(block: ir.Block, facts: Facts) -> bool:
    changed = False
    out = []
    for insn in block.insns:
        value = facts.const(insn.args[1]) if insn.op == "store" and insn.size == 8 else None
        if value is not None and not ir.fits_s32(value):
            for half, shift in ((0, 0), (4, 32)):
                out.append(Insn("store", None, [insn.args[0], (value >> shift) & 0xFFFFFFFF], insn.loc,
                                size=4, off=insn.off + half))
            changed = True
        else:
            out.append(insn)
    block.insns = out
    return changed


def run(fn: ir.Function) -> bool:
    facts = Facts(fn)
    changed = False
    for block in fn.blocks:
        for insn in block.insns:
            if insn.op in ir.BINARY_OPS or insn.op in ir.UNARY_OPS:
                changed |= _fold_alu(insn, facts)
        changed |= _fold_branch(block, facts)
        changed |= _split_wide_store(block, facts)
    ir.prune_unreachable(fn)  # a branch that became a jump may orphan its other target
    return changed
