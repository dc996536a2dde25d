"""Forward "must" dataflow over dict-valued facts, shared by the passes that need one.

In: a function and ``step(state, insn) -> state`` (a fact holds after ``insn`` given the facts
before it; return a new dict when anything changes). Out: ``entering(fn, step)``, a function
giving the facts known on entry to a block: those every predecessor leaves with the same
value (nothing at the entry). Iterated over reverse postorder to a fixpoint, optimistic on
back edges: a predecessor not reached yet counts as knowing everything, so a loop keeps a fact
only if its every iteration does.
"""

from __future__ import annotations

from .. import ir


def meet(states: list) -> dict:
    """The facts every one of ``states`` holds with the same value."""
    first, *rest = states
    return {k: v for k, v in first.items() if all(s.get(k) == v for s in rest)}


def entering(fn: ir.Function, step):
    order = ir.reverse_postorder(fn)
    preds = fn.predecessors()
    out: dict = {}  # label -> facts at its end; a label missing: not reached yet (optimistic)
    entry = order[0].label

    def facts_on_entry(block: ir.Block) -> dict:
        known = [out[p] for p in preds[block.label] if p in out]
        return meet(known) if known and block.label != entry else {}

    changed = True
    while changed:
        changed = False
        for block in order:
            state = facts_on_entry(block)
            for insn in block.insns:
                state = step(state, insn)
            if out.get(block.label) != state:
                out[block.label] = state
                changed = True
    return facts_on_entry
