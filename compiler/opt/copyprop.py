"""Copy and constant propagation: use the source of a single-definition ``mov`` directly.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed. A use of ``v``
where ``v = mov s`` is ``v``'s only definition becomes a use of ``s`` when ``s`` is a constant
or slot address (if ``ir.operand_ok`` allows it in that position) or a single-definition vreg
(whose value cannot change between the two points). The ``mov`` is left for ``dce``.
"""

from __future__ import annotations

from .. import ir
from ..ir import VReg
from .facts import Facts


def _chain(facts: Facts, v: VReg) -> list:
    """``v`` followed by the operands it is a copy of, nearest first."""
    chain = [v]
    while isinstance(chain[-1], VReg):
        d = facts.definition(chain[-1])
        if d is None or d.op != "mov":
            break
        src = d.args[0]
        if isinstance(src, VReg) and src not in facts.single:
            break
        chain.append(src)
    return chain


def run(fn: ir.Function) -> bool:
    facts = Facts(fn)
    changed = False
    for insn in fn.all_insns():
        for i, a in enumerate(insn.args):
            if not isinstance(a, VReg):
                continue
            best = next(s for s in reversed(_chain(facts, a)) if s == a or ir.operand_ok(insn, i, s))
            if best != a:
                insn.args[i] = best
                changed = True
    return changed
