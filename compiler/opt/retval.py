"""Preset the return value: set the constant most returns return once, early, and leave
through one shared exit.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
When a function returns in two or more places, take the constant C of the return entered from
the most places (at least two) (XDP_PASS at the end of a filter's early exits, say). A fresh vreg ``rv`` is set
to C at the end of the block D that dominates those returns, they return ``rv``, and every other
``ret X`` becomes ``rv = X; ret rv``; ``tailmerge`` then makes them one exit, which the
allocator gives r0. So a filter's tests branch straight to a bare ``exit`` (clang's
``r0 = XDP_PASS`` at its top), and a block returning something else sets r0 and falls into it.

Only when no helper call (or ``asm``) lies on a path from D to those returns: r0 is clobbered
by a call, so ``rv`` would have to live in another register and be copied at the exit. Sound:
``rv`` is assigned nowhere else, so it holds C wherever D's value reaches a return of C, and X
right before every other return.
"""

from __future__ import annotations

import functools

from .. import ir
from ..ir import Insn


def _between(fn: ir.Function, start: str, ends: set) -> set:
    """Labels of the blocks on some path from ``start``'s successors to a block in ``ends``."""
    blocks, preds = fn.block_map(), fn.predecessors()
    forward, stack = set(), list(blocks[start].successors)
    while stack:
        label = stack.pop()
        if label not in forward:
            forward.add(label)
            stack.extend(blocks[label].successors)
    backward, stack = set(), list(ends)
    while stack:
        label = stack.pop()
        if label not in backward and label in forward:
            backward.add(label)
            stack.extend(preds[label])
    return backward


def run(fn: ir.Function) -> bool:
    returns = [b for b in fn.blocks if b.term.op == "ret"]
    if len(returns) < 2:
        return False
    preds = fn.predecessors()
    entered: dict = {}
    for block in returns:
        value = block.term.args[0]
        if isinstance(value, int):
            entered[value] = entered.get(value, 0) + max(len(preds[block.label]), 1)
    if not entered:
        return False
    common = max(entered, key=lambda c: (entered[c], -c))
    if entered[common] < 2:
        return False  # no return entered from two places: nothing to share
    targets = [b.label for b in returns if b.term.args[0] == common]
    order = {b.label: i for i, b in enumerate(ir.reverse_postorder(fn))}
    idom = ir.immediate_dominators(fn)
    d = functools.reduce(lambda a, b: ir.common_dominator(idom, order, a, b), [idom[t] for t in targets])
    blocks = fn.block_map()
    on_the_way = _between(fn, d, set(targets))
    if any(i.op in ir.CLOBBERS_SCRATCH for label in on_the_way for i in blocks[label].insns):
        return False
    rv = fn.new_vreg()
    blocks[d].insns.append(Insn("mov", rv, [common], blocks[targets[0]].term.loc))
    for block in returns:
        value = block.term.args[0]
        if value != common:
            block.insns.append(Insn("mov", rv, [value], block.term.loc))
        block.term = Insn("ret", None, [rv], block.term.loc)
    return True
