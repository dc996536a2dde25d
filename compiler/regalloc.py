"""Register allocation: vregs -> r0..r9, stack slots -> frame offsets.

In: an optimised, valid ``ir.Function`` and its loop callbacks. Out: an ``Allocation`` per
function (the callbacks' in ``callbacks``): the function (with spill code added where needed),
the register of every vreg, the r10 offset of every stack slot and the frame size.

The function stays valid IR; a copy whose two vregs got the same register emits nothing.

Method: graph colouring over liveness. Two vregs interfere when one is defined while the other
is live (a ``mov``'s source excepted). A vreg live across a helper call (or an ``asm``
instruction) cannot use r0-r5, which the call clobbers. Copies (``mov d, s``, and the first operand of an ALU op, which emit copies
into the destination) are coalesced when their vregs do not interfere, so the copy disappears.
Colours follow hints where the hardware wants a value anyway: arguments arrive in r1 (the
context; a callback's index) and r2 (a callback's capture area), helper arguments go in r1-r5,
results come back and leave in r0. A copy whose merged vregs could no longer take a register
one of them is hinted to is coalesced only after the others: of a commutative op's two
operands, the one that can sit where the result is wanted takes it. Liveness is a fixpoint, so
a value carried around a loop interferes with everything defined in the loop while it is live.
If colouring fails, one vreg is spilled to an 8-byte slot (reloaded before each use) and
allocation starts again: the failed one or a neighbour holding a register it could use.

Frame: struct-alloc, loop-capture and spill slots get their own bytes; a helper call's scratch
slots (map keys and values, written just before the call) may share bytes with other calls'
scratch slots. More than 512 bytes is a ``CompileError`` with a breakdown. A callback runs on
its own frame stacked on its caller's: the verifier adds up the frames of every call chain, each
rounded up to 32 bytes, against the same 512 (``_check_call_chains``).
"""

from __future__ import annotations

from . import ir
from .errors import CompileError
from .ir import FuncRef, Insn, SlotRef, VReg
from .records import dataclass, field

CLOBBERED_BY_CALL = frozenset(range(6))  # r0 (result) and r1-r5 (arguments)
PREFERENCE = (1, 2, 3, 4, 5, 0, 6, 7, 8, 9)
STACK_LIMIT = 512


@dataclass
class Allocation:
    fn: ir.Function  # the function to emit, spill code added (copies within a register emit nothing)
    regs: dict  # VReg -> register number 0..9
    frame: dict  # StackSlot id -> offset from r10 (negative)
    stack_size: int  # bytes of stack in use
    callbacks: list = field(default_factory=list)  # Allocations of the program's loop callbacks


def allocate(fn: ir.Function) -> Allocation:
    main = _allocate(fn)
    main.callbacks = [_allocate(cb) for cb in fn.callbacks]
    _check_call_chains(main)
    return main


def _allocate(fn: ir.Function) -> Allocation:
    spill_temps: set = set()
    while True:
        graph = _Graph(fn)
        regs, failed = _color(graph, coalesce=True)
        if failed:
            regs, failed = _color(graph, coalesce=False)
        if not failed:
            break
        weights = _spill_weights(fn)
        chosen: set = set()
        for f in failed:  # a spill for each vreg that found no register
            if f not in chosen:
                chosen.add(_spill_choice(graph, regs, f, spill_temps, chosen, weights))
        for v in sorted(chosen, key=lambda v: v.id):
            _spill(fn, v, spill_temps)
    frame, size = _layout(fn)
    return Allocation(ir.checked(fn), regs, frame, size)


# -- interference ----------------------------------------------------------------------------

class _Graph:
    """Interference graph, call constraints, colour hints and copy pairs of one function."""

    def __init__(self, fn: ir.Function):
        self.adj: dict = {}  # VReg -> set of interfering VRegs
        self.forbidden: dict = {}  # VReg -> registers it must not use
        self.hints: dict = {}  # VReg -> registers the hardware would like it in (in order)
        self.copies: list = []  # (dst, src, the other operand of a commutative op or None): pairs
        # whose copy vanishes if they share a register, the most worth coalescing first: copies in
        # loops, then real copies before ALU operands
        self.first_def: dict = {}  # VReg -> position of its first definition (colouring order)
        out = ir.live_out(fn)
        in_loop = set().union(*ir.loops(fn).values())
        position = 0
        for block in ir.reverse_postorder(fn):
            insns = [*block.insns, block.term]
            for insn in insns:
                position += 1
                self._note(insn, position, LOOP_WEIGHT if block.label in in_loop else 1)
            live = set(out[block.label])
            for insn in reversed(insns):
                self._interfere(insn, live)

    def _node(self, v: VReg) -> None:
        self.adj.setdefault(v, set())
        self.forbidden.setdefault(v, set())
        self.hints.setdefault(v, [])

    def _note(self, insn: Insn, position: int, weight: int) -> None:
        for v in [*insn.vreg_uses(), *([insn.dst] if insn.dst is not None else [])]:
            self._node(v)
        if insn.dst is not None:
            self.first_def.setdefault(insn.dst, position)
        if insn.op == "arg":
            self.hints[insn.dst].append(1 + insn.off)
        elif insn.op in ir.CLOBBERS_SCRATCH:
            for k, a in enumerate(insn.args):
                if isinstance(a, VReg):
                    self.hints[a].append(k + 1)
            if insn.dst is not None:
                self.hints[insn.dst].append(0)
        elif insn.op == "ret" and isinstance(insn.args[0], VReg):
            self.hints[insn.args[0]].append(0)
        if insn.dst is not None and insn.op not in ("arg", "load", "call", "asm"):
            # a mov is a copy; an ALU op copies its first operand into dst first (either one, when
            # it commutes): each vanishes when the two share a register
            candidates = [insn.args[0], *(insn.args[1:] if insn.op in ir.COMMUTATIVE else ())]
            for rank, src in enumerate(candidates):
                if isinstance(src, VReg):
                    other = candidates[1 - rank] if len(candidates) == 2 else None
                    self.copies.append((-weight, insn.op != "mov", rank, position, insn.dst, src,
                                        other if isinstance(other, VReg) else None))

    def _edge(self, a: VReg, b: VReg) -> None:
        if a != b:
            self.adj[a].add(b)
            self.adj[b].add(a)

    def _interfere(self, insn: Insn, live: set) -> None:
        if insn.op in ir.CLOBBERS_SCRATCH:
            for v in live - {insn.dst}:
                self.forbidden[v] |= CLOBBERED_BY_CALL
        if insn.dst is not None:
            copied = insn.args[0] if insn.op == "mov" else None
            for v in live:
                if v != copied:
                    self._edge(insn.dst, v)
            b = insn.args[1] if insn.op in ir.BINARY_OPS else None
            if insn.op not in ir.COMMUTATIVE and isinstance(b, VReg) and b != insn.args[0]:
                # emit writes dst (mov dst, a) before it reads b
                self._edge(insn.dst, b)
            live.discard(insn.dst)
        live.update(insn.vreg_uses())


# -- colouring -------------------------------------------------------------------------------

def _color(graph: _Graph, coalesce: bool) -> tuple:
    """(VReg -> register, vregs that found no register)."""
    leader = {v: v for v in graph.adj}

    def find(v):
        while leader[v] != v:
            v = leader[v]
        return v

    adj = {v: set(n) for v, n in graph.adj.items()}
    members = {v: [v] for v in graph.adj}
    copies = [c[-3:] for c in sorted(graph.copies, key=lambda c: c[:4])]
    if coalesce:
        forbidden = {v: set(graph.forbidden[v]) for v in graph.adj}
        hints = {v: set(graph.hints[v]) for v in graph.adj}

        def merge(d, s, other, keep_hints: bool) -> bool:
            """Coalesce the classes of ``d`` and ``s``; False when they interfere, or (with
            ``keep_hints``) when the merged class could no longer take a register one of them
            is hinted to, or when ``d`` shares a hint with the ``other`` operand of its
            commutative op and not with ``s``: that copy is tried again after the others."""
            a, b = find(d), find(s)
            if a == b or b in adj[a]:
                return a == b
            if keep_hints and ((hints[a] and hints[a] <= forbidden[b]) or (hints[b] and hints[b] <= forbidden[a])
                               or (other is not None and hints[a] & hints[find(other)] and not hints[a] & hints[b])):
                return False
            leader[b] = a
            members[a] += members.pop(b)
            forbidden[a] |= forbidden.pop(b)
            hints[a] |= hints.pop(b)
            for n in adj.pop(b):
                adj[n].discard(b)
                adj[n].add(a)
                adj[a].add(n)
            return True

        deferred = [c for c in copies if not merge(*c, keep_hints=True)]
        for c in deferred:
            merge(*c, keep_hints=False)
    classes = sorted(members, key=lambda c: (not any(graph.forbidden[m] for m in members[c]),
                                             min(graph.first_def.get(m, 0) for m in members[c])))
    partners: dict = {c: set() for c in members}
    for d, s, _other in copies:
        a, b = find(d), find(s)
        if a != b:
            partners[a].add(b)
            partners[b].add(a)
    color: dict = {}
    failed: list = []
    for c in classes:
        forbidden = set().union(*(graph.forbidden[m] for m in members[c]))
        taken = {color[n] for n in adj[c] if n in color}
        candidates = [r for r in PREFERENCE if r not in forbidden and r not in taken]
        if not candidates:
            failed.append(c)
            continue
        hinted = [r for m in members[c] for r in graph.hints[m]]
        wanted_by_neighbours = {r for n in adj[c] if n not in color for m in members[n] for r in graph.hints[m]}
        partner_colors = {color[p] for p in partners[c] if p in color}

        def score(r, hinted=hinted, wanted=wanted_by_neighbours, partner_colors=partner_colors):
            return (-hinted.count(r), r not in partner_colors, r in wanted)

        color[c] = min(candidates, key=score)
    return {m: color[c] for c in color for m in members[c]}, failed


LOOP_WEIGHT = 8  # a use inside a loop counts as this many (it runs once per iteration)


def _spill_choice(graph: _Graph, regs: dict, failed: VReg, spill_temps: set, chosen: set, weights: dict) -> VReg:
    """The vreg to spill: the failed one or a neighbour (not a spill reload, preferably not one
    ``chosen`` already), the cheapest per interference removed (Chaitin's cost / degree), where
    the cost is the loads and stores spilling adds. A neighbour coloured with a register the
    failed one may not use anyway (r0-r5 next to a value live across a call) blocks nothing:
    spilling it would not help."""
    usable = set(PREFERENCE) - graph.forbidden[failed]
    neighbours = sorted((n for n in graph.adj[failed] if n not in regs or regs[n] in usable), key=lambda v: v.id)
    pool = [v for v in [failed, *neighbours] if v not in spill_temps]
    if not pool:
        raise RuntimeError(f"cannot colour {failed}: only spill reloads compete for registers")
    pool = [v for v in pool if v not in chosen] or pool
    return min(pool, key=lambda v: (weights.get(v, 0) / max(len(graph.adj[v]), 1), v.id))


def _spill_weights(fn: ir.Function) -> dict:
    """VReg -> the instructions spilling it would add, uses in loops weighted by LOOP_WEIGHT: a
    reload per use, and a store per definition unless the value is a constant (rematerialised)."""
    in_loop = set().union(*ir.loops(fn).values())
    defs: dict = {}
    for insn in fn.all_insns():
        if insn.dst is not None:
            defs.setdefault(insn.dst, []).append(insn)
    weights: dict = {}
    for block in fn.blocks:
        w = LOOP_WEIGHT if block.label in in_loop else 1
        for insn in [*block.insns, block.term]:
            for v in insn.vreg_uses():
                weights[v] = weights.get(v, 0) + w
            if insn.dst is not None and _constant(defs[insn.dst]) is None:
                weights[insn.dst] = weights.get(insn.dst, 0) + w
    return weights


def _constant(defs: list):
    """The constant or slot address a vreg always holds, when its only definition is a ``mov`` of one."""
    if len(defs) == 1 and defs[0].op == "mov" and isinstance(defs[0].args[0], (int, SlotRef)):
        return defs[0].args[0]
    return None


def _spill(fn: ir.Function, v: VReg, spill_temps: set) -> None:
    """Keep ``v`` in a fresh 8-byte slot: store after each definition, reload before each use.
    A constant (or slot address) is set again before each use instead, with no slot."""
    constant = _constant([i for i in fn.all_insns() if i.dst == v])
    first_def = next(i for i in fn.all_insns() if i.dst == v)
    slot = None if constant is not None else SlotRef(fn.new_slot(8, "spill", first_def.loc))
    for block in fn.blocks:
        out, after_args = [], []  # a value an arg defines is stored after the args, which stay first
        for insn in [*block.insns, block.term]:
            if after_args and insn.op != "arg":
                out += after_args
                after_args = []
            if v in insn.args:
                t = fn.new_vreg()
                spill_temps.add(t)
                out.append(Insn("mov", t, [constant], insn.loc) if slot is None
                           else Insn("load", t, [slot], insn.loc, size=8))
                insn.args = [t if a == v else a for a in insn.args]
            if insn.dst == v and slot is None:
                continue  # the constant's definition: every use sets it afresh
            out.append(insn)
            if insn.dst == v:
                t = fn.new_vreg()
                spill_temps.add(t)
                insn.dst = t
                (after_args if insn.op == "arg" else out).append(Insn("store", None, [slot, t], insn.loc, size=8))
        block.insns, block.term = out[:-1], out[-1]


# -- frame -----------------------------------------------------------------------------------

def _place(cursor: int, size: int) -> int:
    """The new depth below r10 after placing ``size`` bytes at depth ``cursor``."""
    align = ir.slot_alignment(size)
    return (cursor + size + align - 1) // align * align


def _layout(fn: ir.Function) -> tuple:
    frame: dict = {}
    used = {s.id for i in fn.all_insns() for s in (a.slot for a in i.args if isinstance(a, SlotRef))}
    slots = [s for s in fn.slots if s.id in used]
    depth = 0
    for slot in (s for s in slots if s.kind != "scratch"):
        depth = _place(depth, slot.size)
        frame[slot.id] = -depth
    scratch_base = depth
    groups: dict = {}
    for slot in (s for s in slots if s.kind == "scratch"):
        end = _place(groups.get(slot.group, scratch_base), slot.size)
        groups[slot.group] = end
        frame[slot.id] = -end
    depth = max([depth, *groups.values()])
    if depth > STACK_LIMIT:
        raise _stack_error(fn, slots, depth, scratch_base)
    return frame, depth


def _stack_error(fn: ir.Function, slots: list, depth: int, scratch_base: int) -> CompileError:
    def total(kind):
        return sum(s.size for s in slots if s.kind == kind)

    biggest = max(slots, key=lambda s: s.size)
    return CompileError(
        biggest.loc, f"program {fn.name} needs {depth} bytes of stack, more than the kernel's {STACK_LIMIT}",
        expected=f"at most {STACK_LIMIT} bytes",
        hint=(f"struct-alloc: {total('alloc')} bytes, register spills: {total('spill')} bytes, "
              f"loop variables handed to bpf_loop: {total('capture')} bytes, "
              f"map key/value temporaries: {depth - scratch_base} bytes (largest call); "
              f"the largest allocation ({biggest.size} bytes) is here"))


def _frame(size: int) -> int:
    """A frame as the verifier counts it in a call chain (``round_up_stack_depth`` without JIT)."""
    return (max(size, 1) + 31) // 32 * 32


def _check_call_chains(main: Allocation) -> None:
    """Every chain of calls (program -> callback -> nested callback ...) fits the 512-byte stack."""
    by_name = {a.fn.name: a for a in main.callbacks}

    def deepest(alloc: Allocation, depth: int) -> None:
        depth += _frame(alloc.stack_size)
        for insn in alloc.fn.all_insns():
            for callee in (a for a in insn.args if isinstance(a, FuncRef)):
                if depth + _frame(by_name[callee.name].stack_size) > STACK_LIMIT:
                    raise CompileError(
                        insn.loc, f"this loop's body runs on {by_name[callee.name].stack_size} bytes of stack "
                        f"on top of the {depth} its callers use, more than the kernel's {STACK_LIMIT} in all",
                        expected=f"at most {STACK_LIMIT} bytes for the loop and everything around it",
                        hint="bpf_loop runs the body as a function with a frame of its own (each rounded up "
                             "to 32 bytes); use fewer or smaller struct-allocs and map keys inside or "
                             "around the loop, or fewer variables used in its body")
                deepest(by_name[callee.name], depth)

    deepest(main, 0)
