"""Constants in variables: where a vreg assigned more than once is known to hold a constant, use
the constant, and drop an assignment of the value it already holds.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
``facts`` knows the constants of vregs with one definition; a variable that is ``setq``'d (an
unrolled loop's accumulator, a return value set on several paths) has none. Forward "must"
dataflow: vreg -> the constant it holds at a point, known on entry to a block when every
predecessor leaves it with the same constant (a fixpoint, optimistic on back edges so a loop
keeps only what its every iteration keeps). A use of such a vreg becomes the constant where
``ir.operand_ok`` allows (``s = 0; s = s + x`` is ``s = x + 0``, which ``constfold`` makes a
copy), except in returns and helper calls; an operation on constants only is computed
(``s = s + 1`` is ``s = 1``), and ``mov v, K`` where v already holds K goes.
"""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..ir import Insn, VReg
from . import dataflow

# A return or helper argument already in its register (r0, r1-r5) costs nothing; a constant
# costs a mov. (``retval`` makes returns read a register on purpose.)
KEEP_REGISTERS = frozenset(("ret", "call"))


class _Constants:
    """The dataflow's step, over the vregs assigned more than once (``facts`` has the others; a
    copy of one of these into a single-assignment vreg becomes a constant here, for ``facts``)."""

    def __init__(self, fn: ir.Function):
        defs = Counter(insn.dst for insn in fn.all_insns() if insn.dst is not None)
        self.tracked = {v for v, n in defs.items() if n > 1}

    def step(self, state: dict, insn: Insn) -> dict:
        if insn.dst is None or insn.dst not in self.tracked:
            return state
        value = insn.args[0] if insn.op == "mov" else None
        if isinstance(value, VReg):
            value = state.get(value)
        if isinstance(value, int):
            return state if state.get(insn.dst) == value else {**state, insn.dst: value}
        if insn.dst in state:
            state = dict(state)
            del state[insn.dst]
        return state


def run(fn: ir.Function) -> bool:
    constants = _Constants(fn)
    _step = constants.step
    # nothing tracked: no vreg ever holds a known constant here, only operations on immediates fold
    entering = dataflow.entering(fn, _step) if constants.tracked else (lambda _block: {})
    rewritten = False
    for block in fn.blocks:
        state = entering(block)
        kept = []
        for insn in [*block.insns, block.term]:
            if insn.op in ir.BINARY_OPS or insn.op in ir.UNARY_OPS:
                values = [state.get(a) if isinstance(a, VReg) else a for a in insn.args]
                result = None if None in values else ir.evaluate(insn.op, *values, size=insn.size)
                if result is not None:
                    insn.op, insn.args, insn.size = "mov", [result], 0
                    rewritten = True
            if insn.op in ir.COMMUTATIVE and insn.args[0] in state and isinstance(insn.args[1], VReg) \
                    and insn.args[1] not in state:
                insn.args.reverse()  # the constant goes second, where it can be an immediate
            for i, a in enumerate(insn.args):
                if insn.op not in KEEP_REGISTERS and isinstance(a, VReg) and a in state \
                        and ir.operand_ok(insn, i, state[a]):
                    insn.args[i] = state[a]
                    rewritten = True
            if insn.op == "mov" and isinstance(insn.args[0], int) and state.get(insn.dst) == insn.args[0]:
                rewritten = True
                continue  # it already holds that value
            state = _step(state, insn)
            kept.append(insn)
        block.insns, block.term = kept[:-1], kept[-1]
    return rewritten
