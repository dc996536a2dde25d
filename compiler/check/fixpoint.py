"""The abstract interpretation: a worklist over the control-flow graph until nothing changes.

In: a validated, optimised ``ir.Function`` (a program, or a bpf_loop callback of one), its
``ProgDef`` and the ``Unit``. Out: nothing, or the ``CompileError`` of the first instruction the
verifier would refuse; for a callback, the states it returns in.

Like the verifier, the analysis is path-sensitive: each block keeps the states it was reached
with, up to ``STATES_PER_BLOCK``, and a state another one covers (on the registers live there)
is not explored again — the verifier's state pruning, with numbers no check depends on forgotten
(``relevance``) as the verifier ignores those it did not mark precise. A loop's head keeps more
states, ``STATES_PER_LOOP_HEAD``: short loops are walked iteration by iteration, as the verifier
walks them. Past that many, a new state is joined into
one it is compatible with (the same kinds of pointers in the same places), so the number of
states stays bounded; numbers that were constants on each path stay ``exact`` (the verifier, which
walks each path, sees a constant). At a loop's head the joins widen every bound that still moves,
to the next of the program's own constants (a counter stops at its limit) or to the extreme, so
loops reach a fixpoint however many times they run: the widened state covers every iteration
the verifier walks. Blocks are visited in reverse postorder.

A bpf_loop callback is analysed at each call, from the caller's stack (its capture area and
anything it points to) and an unknown index, again and again with the stack its iterations
leave until that stops changing: the caller continues with the stack any number of iterations
can leave. A program whose analysis outgrows ``MAX_STEPS`` instructions is left to the kernel.
"""

from __future__ import annotations

import heapq

from .. import ir
from ..decls import ProgDef, Unit
from . import relevance, scalar, values
from .state import State, fresh_slot, slot_key
from .transfer import step, terminate

STATES_PER_BLOCK = 12
STATES_PER_LOOP_HEAD = 72  # a loop's iterations, walked one by one as the verifier walks them
MAX_STATES_PER_BLOCK = 160
WIDEN_AFTER = 3
MAX_STEPS = 400_000
MAX_CALLBACK_ROUNDS = 8


class TooComplex(Exception):
    """The analysis would take too long: the program is left to the kernel's verifier."""


class _Entry:
    __slots__ = ("state", "joins")

    def __init__(self, state: State):
        self.state = state
        self.joins = 0


class Budget:
    """Instructions interpreted so far, shared by a program and its callbacks."""

    def __init__(self):
        self.steps = 0

    def spend(self, n: int) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise TooComplex()


class Checker:
    def __init__(self, fn: ir.Function, prog: ProgDef, unit: Unit, callbacks: dict | None = None,
                 budget: Budget | None = None):
        self.fn = fn
        self.prog = prog
        self.unit = unit
        self.prog_type = prog.prog_type
        self.callbacks = callbacks if callbacks is not None else {c.name: c for c in fn.callbacks}
        self.budget = budget or Budget()
        self.is_callback = budget is not None
        self.blocks = fn.block_map()
        order = ir.reverse_postorder(fn)
        self.rank = {b.label: i for i, b in enumerate(order)}
        self.loop_heads = {t for b in order for t in b.successors if self.rank[t] <= self.rank[b.label]}
        out = ir.live_out(fn)
        self.live_in = {b.label: ir.live_in_of(b, out[b.label]) for b in order}
        self.scratch = {slot_key(s) for s in fn.slots if s.kind == "scratch"}
        self.relevant = relevance.relevant(fn, returns_checked=self.is_callback)
        self.thresholds = _thresholds(fn)
        self._ids = {}
        for i, insn in enumerate(fn.all_insns(), 1):
            self._ids[id(insn)] = i * 4
        self.exits: list = []  # the states a callback returns in
        self.moves_packet = False  # a helper that moves packet data ran (a callback's caller must know)
        self.args: dict = {0: values.Pointer(values.CTX, origin=fn.loc)}  # what ``arg N`` holds

    def new_id(self, insn, k: int = 0) -> int:
        """A deterministic id for what ``insn`` creates (a lookup result, a packet pointer's new base)."""
        return self._ids[id(insn)] + k

    def entry_state(self) -> State:
        return State(stack={slot_key(s): fresh_slot(s.size) for s in self.fn.slots if s.kind != "scratch"})

    def run(self, start: State | None = None) -> list:
        """Interpret from ``start`` (the program's entry state by default); the states of ``ret``."""
        entry = self.fn.blocks[0].label
        start = start if start is not None else self.entry_state()
        stored: dict = {label: [] for label in self.blocks}
        heap, seq = [], 0

        def admit(label: str, state: State) -> None:
            nonlocal seq
            if label != entry:
                state = state.restrict(self.live_in[label], self.scratch, self.relevant)
            entries = stored[label]
            for e in entries:
                if e.state.contains(state):
                    return
            target = None
            if len(entries) < (STATES_PER_LOOP_HEAD if label in self.loop_heads else STATES_PER_BLOCK):
                entries.append(_Entry(state))
                target = state
            else:
                for e in entries:
                    if e.state.compatible(state):
                        widen = label in self.loop_heads and e.joins >= WIDEN_AFTER
                        joined = e.state.join(state, widen, self.thresholds)
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
            self.budget.spend(len(block.insns) + 1)
            current = state.copy()
            for insn in block.insns:
                step(self, current, insn)
            if block.term.op == "ret":
                terminate(self, current, block.term)
                if self.is_callback:
                    self.exits.append(current)
                continue
            for target, out in terminate(self, current, block.term):
                admit(target, out)
        return self.exits

    # -- bpf_loop callbacks ----------------------------------------------------------------
    def run_callback(self, insn, state: State, name: str, area) -> bool:
        """Analyse callback ``name`` as bpf_loop runs it from ``state`` (after the call's argument
        checks) and leave in ``state`` the caller's stack after any number of iterations; returns
        whether the callback moves packet data."""
        fn = self.callbacks[name]
        caller = set(state.stack)
        stack, spills = dict(state.stack), dict(state.spills)
        moved = False
        for rounds in range(MAX_CALLBACK_ROUNDS + 1):
            sub = Checker(fn, self.prog, self.unit, self.callbacks, self.budget)
            sub.args = {0: scalar.UNKNOWN, 1: area}  # the index, unknown to the verifier; the area
            start = sub.entry_state()
            start.stack.update(stack)
            start.spills.update(spills)
            start.refs = dict(state.refs)
            exits = sub.run(start)
            moved |= sub.moves_packet
            after = State({}, dict(stack), dict(spills), {})
            widen = rounds >= WIDEN_AFTER
            for out in exits:
                mine = State({}, {k: b for k, b in out.stack.items() if k in caller},
                             {k: v for k, v in out.spills.items() if k[0] in caller}, {})
                joined = after.join(mine, widen, self.thresholds)
                after = joined if joined is not None else _forget_pointers(after, mine)
            if after.same_as(State({}, stack, spills, {})):
                break
            stack, spills = after.stack, after.spills
        else:
            raise TooComplex(name)
        state.stack, state.spills = dict(stack), dict(spills)
        return moved


def _forget_pointers(a: State, b: State) -> State:
    """Two stacks no single state describes (a pointer in one where the other has a number):
    what the verifier could tell of either, plain data."""
    stack = {k: "".join(x if x == y and x != "s" else "m" for x, y in zip(v, b.stack.get(k, v)))
             for k, v in a.stack.items()}
    return State({}, stack, {}, {})


def _thresholds(fn: ir.Function) -> tuple:
    """The constants the program compares with or adds (and one either side): where a widened
    bound should stop first."""
    found = set()
    for insn in fn.all_insns():
        if insn.op in ("branch", "add", "sub", "mov", "and"):
            for a in insn.args:
                if isinstance(a, int):
                    v = scalar.signed(a)
                    found.update((v - 1, v, v + 1))
    return tuple(sorted(found))
