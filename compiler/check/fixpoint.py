"""The abstract interpretation: a worklist over the control-flow graph until nothing changes.

In: a validated, optimised ``ir.Function``, its ``ProgDef`` and the ``Unit``. Out: nothing, or
the ``CompileError`` of the first instruction the verifier would refuse.

Like the verifier, the analysis is path-sensitive: each block keeps the states it was reached
with, up to ``STATES_PER_BLOCK``, and a state another one covers (on the registers live there)
is not explored again — the verifier's state pruning. Past that many, a new state is joined
into one it is compatible with (the same kinds of pointers in the same places), so the number
of states stays bounded; at a loop's head the joins widen every bound that still moves, so
loops reach a fixpoint however many times they run (the verifier walks bounded loops; the
widened state covers every iteration it would walk). Blocks are visited in reverse postorder.
A program whose analysis outgrows ``MAX_STEPS`` instructions is left to the kernel.
"""

from __future__ import annotations

import heapq

from .. import ir
from ..decls import ProgDef, Unit
from .state import State, fresh_slot
from .transfer import step, terminate

STATES_PER_BLOCK = 12
MAX_STATES_PER_BLOCK = 64
WIDEN_AFTER = 3
MAX_STEPS = 400_000


class TooComplex(Exception):
    """The analysis would take too long: the program is left to the kernel's verifier."""


class _Entry:
    __slots__ = ("state", "joins")

    def __init__(self, state: State):
        self.state = state
        self.joins = 0


class Checker:
    def __init__(self, fn: ir.Function, prog: ProgDef, unit: Unit):
        self.fn = fn
        self.prog = prog
        self.unit = unit
        self.prog_type = prog.prog_type
        self.blocks = fn.block_map()
        order = ir.reverse_postorder(fn)
        self.rank = {b.label: i for i, b in enumerate(order)}
        self.loop_heads = {t for b in order for t in b.successors if self.rank[t] <= self.rank[b.label]}
        out = ir.live_out(fn)
        self.live_in = {b.label: _live_in(b, out[b.label]) for b in order}
        self.scratch = {s.id for s in fn.slots if s.kind == "scratch"}
        self._ids = {}
        for i, insn in enumerate(fn.all_insns(), 1):
            self._ids[id(insn)] = i * 4
        self.steps = 0

    def new_id(self, insn, k: int = 0) -> int:
        """A deterministic id for what ``insn`` creates (a lookup result, a packet pointer's new base)."""
        return self._ids[id(insn)] + k

    def run(self) -> None:
        entry = self.fn.blocks[0].label
        start = State(stack={s.id: fresh_slot(s.size) for s in self.fn.slots})
        stored: dict = {label: [] for label in self.blocks}
        heap, seq = [], 0

        def admit(label: str, state: State) -> None:
            nonlocal seq
            state = state.restrict(self.live_in[label], self.scratch) if label != entry else state
            entries = stored[label]
            for e in entries:
                if e.state.contains(state):
                    return
            if len(entries) < STATES_PER_BLOCK:
                entries.append(_Entry(state))
                target = state
            else:
                target = None
                for e in entries:
                    if e.state.compatible(state):
                        joined = e.state.join(state, widen=label in self.loop_heads and e.joins >= WIDEN_AFTER)
                        if joined is None:
                            continue
                        e.joins += 1
                        e.state = joined
                        target = joined
                        break
                if target is None:
                    if len(entries) >= MAX_STATES_PER_BLOCK:
                        raise TooComplex(label)
                    entries.append(_Entry(state))
                    target = state
            seq += 1
            heapq.heappush(heap, (self.rank[label], seq, label, target))

        admit(entry, start)
        while heap:
            _rank, _seq, label, state = heapq.heappop(heap)
            if not any(e.state is state for e in stored[label]):
                continue  # replaced by a join since it was queued
            block = self.blocks[label]
            self.steps += len(block.insns) + 1
            if self.steps > MAX_STEPS:
                raise TooComplex(label)
            current = state.copy()
            for insn in block.insns:
                step(self, current, insn)
            for target, out in terminate(self, current, block.term):
                admit(target, out)


def _live_in(block: ir.Block, live_out: set) -> set:
    live = set(live_out)
    for insn in reversed([*block.insns, block.term]):
        if insn.dst is not None:
            live.discard(insn.dst)
        live.update(insn.vreg_uses())
    return live
