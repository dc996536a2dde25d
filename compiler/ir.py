"""The intermediate representation between lowering and emission, and its validator.

In: built by ``lower.lower_program``; rewritten by ``opt`` and ``regalloc``. Out: a ``Function``
that ``emit`` turns into BPF instructions.

A function is a list of basic blocks (the first is the entry). Each block holds straight-line
``Insn``s and ends in exactly one terminator (``jump``, ``branch`` or ``ret``). Values live in
virtual registers (``VReg``); a vreg may be assigned more than once (a variable that is
``setq``'d, the result of an ``if``), but every use must be preceded by a definition on every
path from the entry (``validate`` checks it). A vreg with a single definition therefore behaves
like an SSA value: its definition dominates every use, so the value it holds at a use is the one
its defining instruction computed last, also inside loops. Control flow may be cyclic: a
``dotimes`` lowered as a real loop jumps back to its header, and a vreg assigned in the loop
(the counter, a variable ``setq``'d in the body) carries its value around the back edge. Every
analysis here is a dataflow fixpoint, correct on cycles.

A program is one ``Function`` plus the callbacks its loops hand to ``bpf_loop`` (``callbacks``):
complete functions of their own, referenced by ``FuncRef``.

Operands are ``VReg``s, Python ``int``s (64-bit constants, kept in 0 .. 2**64-1), ``SlotRef``s
(the *address* of a stack slot, i.e. r10 + its frame offset), ``MapRef``s (a map's fd) and
``FuncRef``s (a callback's address), the last two only as helper-call arguments. Which operand kinds an instruction accepts in which position is
decided in one place, ``operand_ok``; passes that substitute constants ask it.

Instructions (``dst`` is the register written, ``args`` the operands read)::

    arg     dst         off=N       dst = argument N (r1+N at entry: the context pointer of a
                                    program; index, capture pointer of a callback); first insns only
    mov     dst, a                  a: VReg | int | SlotRef
    OP      dst, a, b               OP in BINARY_OPS, 64-bit; a: VReg, b: VReg | s32 int; b is not
                                    dst unless a is too, when OP does not commute (two-operand
                                    BPF: emit copies a into dst before it reads b)
    neg     dst, a
    bswap   dst, a      size        byte swap of the low size bytes, zero-extended (to_be)
    trunc   dst, a      size        keep the low size bytes (1, 2, 4)
    load    dst, base   size, off   dst = *(size *)(base + off); base: VReg | SlotRef
    store   base, v     size, off   *(size *)(base + off) = v; v: VReg | int fitting ``size``
    atomic_add base, v  size, off   lock *(size *)(base + off) += v; v: VReg; size 4 or 8
    call    [dst], a1..a5  helper   dst = helper(a1, ...); args: VReg | int | SlotRef | MapRef | FuncRef
    asm     [dst]       raw         the raw instruction raw = (opcode, dst, src, off, imm) on
                                    r0-r5, which it clobbers like a call; dst = r0 after it
  terminators:
    jump    targets=(T,)
    branch  a, b  cond, targets=(T, F)   if a COND b goto T else F; a: VReg, b: VReg | s32 int
    ret     a                        return a (r0 = a; exit)

Shared analyses: ``reverse_postorder``, ``has_back_edges``, ``live_out`` (liveness),
``live_in_of``, ``prune_unreachable``, ``immediate_dominators``, ``common_dominator`` and
``loops``.
"""

from __future__ import annotations

from .errors import Loc
from .records import dataclass, field

MASK64 = (1 << 64) - 1

BINARY_OPS = ("add", "sub", "mul", "div", "mod", "and", "or", "xor", "lsh", "rsh", "arsh")
COMMUTATIVE = frozenset(("add", "mul", "and", "or", "xor"))
SHIFTS = frozenset(("lsh", "rsh", "arsh"))
UNARY_OPS = ("neg", "bswap", "trunc")
# Instructions with no effect besides writing dst: removable when dst is dead.
PURE = frozenset(("arg", "mov", "load", *BINARY_OPS, *UNARY_OPS))
TERMINATORS = frozenset(("jump", "branch", "ret"))
ALL_OPS = frozenset(("arg", "mov", "load", "store", "atomic_add", "call", "asm", *BINARY_OPS, *UNARY_OPS,
                     *TERMINATORS))
# Instructions after which r0-r5 hold nothing the program put there.
CLOBBERS_SCRATCH = frozenset(("call", "asm"))
# Helpers whose only effect is their result: ktime_get_ns, get_smp_processor_id, ktime_get_boot_ns.
PURE_HELPERS = frozenset((5, 8, 125))
# Helpers whose result is a u32 (the kernel zero-extends it): get_prandom_u32, get_smp_processor_id.
U32_HELPERS = frozenset((7, 8))
HELPER_MAP_LOOKUP = 1
CONDS = ("eq", "ne", "gt", "ge", "lt", "le", "sgt", "sge", "slt", "sle")
# not (a COND b)  ==  a NEGATED b
NEGATED = {"eq": "ne", "ne": "eq", "gt": "le", "le": "gt", "ge": "lt", "lt": "ge",
           "sgt": "sle", "sle": "sgt", "sge": "slt", "slt": "sge"}
# a COND b  ==  b MIRRORED a
MIRRORED = {"eq": "eq", "ne": "ne", "gt": "lt", "lt": "gt", "ge": "le", "le": "ge",
            "sgt": "slt", "slt": "sgt", "sge": "sle", "sle": "sge"}
MAX_CALL_ARGS = 5


class VReg:
    """A virtual register; ``id`` is unique within a Function. Interned: ``VReg(n)`` is always the
    same object, so equality and hashing are the object's own (C-level, the hottest operations of
    the optimiser's dataflow) and still mean equal ids."""

    __slots__ = ("id",)
    _interned: dict = {}

    def __new__(cls, id: int):  # noqa: A002
        reg = cls._interned.get(id)
        if reg is None:
            reg = object.__new__(cls)
            object.__setattr__(reg, "id", id)
            cls._interned[id] = reg
        return reg

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r} of a VReg")

    def __reduce__(self):
        return VReg, (self.id,)

    def __repr__(self) -> str:
        return f"VReg(id={self.id})"

    def __str__(self) -> str:
        return f"%{self.id}"


@dataclass(frozen=True)
class StackSlot:
    id: int  # unique within a Function
    size: int  # bytes
    kind: str  # "alloc" (struct-alloc), "scratch" (a helper call's key/value), "spill"
    group: int  # scratch slots of different groups are never live together and may overlap
    loc: Loc = field(compare=False)  # the form that needed the slot (for the stack-limit error)


@dataclass(frozen=True)
class SlotRef:
    slot: StackSlot  # the operand is the slot's address, r10 + frame offset

    def __str__(self) -> str:
        return f"&slot{self.slot.id}"


@dataclass(frozen=True)
class MapRef:
    name: str  # MapDef.name (mangled); becomes ld_imm64 with a map relocation
    # a lookup in this map only reads it (an LRU map's lookup marks the entry used)
    pure_lookup: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        return f"map:{self.name}"


@dataclass(frozen=True)
class FuncRef:
    name: str  # Function.name of a callback; becomes ld_imm64 of the function's address

    def __str__(self) -> str:
        return f"func:{self.name}"


Operand = VReg | int | SlotRef | MapRef | FuncRef


@dataclass(eq=False)
class Insn:
    op: str  # one of ALL_OPS
    dst: VReg | None  # register written, if any
    args: list  # operands read (list of Operand), in the op's order (module docstring)
    loc: Loc  # the form that produced the instruction (line info)
    size: int = 0  # bytes for load/store/atomic_add/bswap/trunc
    off: int = 0  # constant byte offset of a memory access
    cond: str = ""  # branch condition, one of CONDS
    targets: tuple = ()  # labels: jump (T,), branch (T, F)
    helper: int = 0  # call: BPF helper id
    raw: tuple = ()  # asm: (opcode, dst, src, off, imm)

    @property
    def is_terminator(self) -> bool:
        return self.op in TERMINATORS

    @property
    def is_pure_call(self) -> bool:
        """A helper call whose only effect is its result (removable when nobody reads it)."""
        return self.op == "call" and (self.helper in PURE_HELPERS or (
            self.helper == HELPER_MAP_LOOKUP and bool(self.args) and isinstance(self.args[0], MapRef)
            and self.args[0].pure_lookup))

    def vreg_uses(self) -> list[VReg]:
        return [a for a in self.args if isinstance(a, VReg)]

    def shape(self) -> tuple:
        """Everything but the location: two instructions with equal shapes do the same thing."""
        return (self.op, self.dst, tuple(self.args), self.size, self.off, self.cond, self.targets,
                self.helper, self.raw)

    def __str__(self) -> str:
        extra = []
        if self.size:
            extra.append(f"size={self.size}")
        if self.off:
            extra.append(f"off={self.off}")
        if self.cond:
            extra.append(self.cond)
        if self.op == "call":
            extra.append(f"helper={self.helper}")
        if self.raw:
            extra.append("raw=" + ",".join(str(f) for f in self.raw))
        if self.targets:
            extra.append("-> " + ", ".join(self.targets))
        lhs = f"{self.dst} = " if self.dst is not None else ""
        return f"{lhs}{self.op} {', '.join(str(a) for a in self.args)} {' '.join(extra)}".rstrip()


@dataclass(eq=False)
class Block:
    label: str  # unique within a Function
    insns: list  # list of Insn, none a terminator
    term: Insn | None = None  # the terminator; None only while lowering builds the block

    @property
    def successors(self) -> tuple:
        return self.term.targets if self.term is not None else ()


@dataclass(eq=False)
class Function:
    name: str  # program name (mangled)
    loc: Loc  # the defprog
    blocks: list  # list of Block; blocks[0] is the entry
    slots: list = field(default_factory=list)  # StackSlots in creation order
    next_id: int = 0  # next free VReg / StackSlot / label number
    # bpf_loop callbacks the program's code refers to by FuncRef, nested ones included (set on
    # the program's own function only; each is a complete Function with its own frame)
    callbacks: list = field(default_factory=list)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def new_vreg(self) -> VReg:
        return VReg(self.new_id())

    def new_slot(self, size: int, kind: str, loc: Loc, group: int = 0) -> StackSlot:
        slot = StackSlot(self.new_id(), size, kind, group, loc)
        self.slots.append(slot)
        return slot

    def new_label(self, hint: str = "b") -> str:
        return f"{hint}{self.new_id()}"

    def block_map(self) -> dict:
        return {b.label: b for b in self.blocks}

    def predecessors(self) -> dict:
        preds = {b.label: [] for b in self.blocks}
        for b in self.blocks:
            for t in b.successors:
                preds[t].append(b.label)
        return preds

    def all_insns(self):
        for b in self.blocks:
            yield from b.insns
            yield b.term

    def functions(self) -> list:
        """This function followed by its callbacks."""
        return [self, *self.callbacks]

    def __str__(self) -> str:
        out = [f"function {self.name}:"]
        for b in self.blocks:
            out.append(f"{b.label}:")
            out += [f"    {i}" for i in b.insns]
            out.append(f"    {b.term}")
        return "\n".join(out)


SLOT_ALIGNMENT = 8


def slot_alignment(size: int) -> int:
    """The frame alignment of a stack slot: 8 bytes whatever its size. So an access aligned within
    its slot is aligned in the frame (the verifier's stack alignment is strict), and what the
    verifier remembers of the stack, which it tracks in 8-byte aligned chunks (a number stored at
    the start of a chunk is known exactly, so a constant map key is known and an array lookup
    with it cannot fail), follows from offsets within slots alone (``check.stack``)."""
    return SLOT_ALIGNMENT


# -- operand rules ---------------------------------------------------------------------------

def fits_s32(value: int) -> bool:
    """Does the 64-bit constant equal the sign extension of a 32-bit immediate?"""
    return value <= 0x7FFFFFFF or value >= MASK64 - 0x7FFFFFFF


def to_signed(value: int, bits: int = 64) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def evaluate(op: str, a: int, b: int = 0, size: int = 8) -> int | None:
    """The 64-bit result of ``op`` on constants, with BPF's run-time semantics (x/0 = 0, x mod 0 = x),
    or None when the kernel's result is undefined (a shift by 64 or more)."""
    if op in SHIFTS and b >= 64:
        return None
    result = {
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
        "div": lambda: a // b if b else 0, "mod": lambda: a % b if b else a,
        "and": lambda: a & b, "or": lambda: a | b, "xor": lambda: a ^ b,
        "lsh": lambda: a << b, "rsh": lambda: a >> b, "arsh": lambda: to_signed(a) >> b,
        "neg": lambda: -a, "trunc": lambda: a & ((1 << (8 * size)) - 1),
        "bswap": lambda: int.from_bytes((a & ((1 << (8 * size)) - 1)).to_bytes(size, "little"), "big"),
        "mov": lambda: a,
    }[op]()
    return result & MASK64


def operand_ok(insn: Insn, index: int, operand) -> bool:
    """May ``operand`` stand at position ``index`` of ``insn``? The one place these rules live."""
    op = insn.op
    if isinstance(operand, VReg):
        return op != "call" or index < MAX_CALL_ARGS
    if isinstance(operand, (MapRef, FuncRef)):
        return op == "call"
    if isinstance(operand, SlotRef):
        return op in ("mov", "call") or (op in ("load", "store", "atomic_add") and index == 0)
    if not isinstance(operand, int) or not 0 <= operand <= MASK64:
        return False
    if op in ("mov", "ret", "call"):
        return True
    if op in BINARY_OPS and index == 1:
        return operand < 64 if op in SHIFTS else fits_s32(operand)
    if op == "branch" and index == 1:
        return fits_s32(operand)
    if op == "store" and index == 1:
        return insn.size < 8 or fits_s32(operand)
    return False


# -- validation ------------------------------------------------------------------------------

class MalformedIR(Exception):
    """The IR breaks an invariant: a compiler bug, never the user's."""


def overwrites_second_operand(op: str, dst, args) -> bool:
    """``dst = a OP dst`` with ``a`` another register and ``OP`` not commuting: two-operand BPF
    cannot compute it in place (emit copies ``a`` into dst before it reads the second operand), so
    the IR never holds it."""
    return op in BINARY_OPS and op not in COMMUTATIVE and args[1] == dst and args[0] != dst


_ARITY = {"arg": 0, "asm": 0, "mov": 1, "neg": 1, "bswap": 1, "trunc": 1, "load": 1, "store": 2,
          "atomic_add": 2, "jump": 0, "branch": 2, "ret": 1, **{o: 2 for o in BINARY_OPS}}
_HAS_DST = frozenset(("arg", "mov", "load", *BINARY_OPS, *UNARY_OPS))
_SIZES = {"load": (1, 2, 4, 8), "store": (1, 2, 4, 8), "atomic_add": (4, 8), "bswap": (2, 4, 8),
          "trunc": (1, 2, 4)}


def _check_insn(fn: Function, block: Block, pos: int, insn: Insn, labels: set, slots: set) -> None:
    def fail(why: str):
        raise MalformedIR(f"{fn.name}:{block.label}[{pos}] {insn}: {why}")

    if insn.op not in ALL_OPS:
        fail("unknown op")
    last = pos == len(block.insns)
    if insn.is_terminator != last:
        fail("terminator not at the end of its block" if not last else "block does not end in a terminator")
    if insn.op == "call":
        if len(insn.args) > MAX_CALL_ARGS:
            fail("more than 5 call arguments")
    elif len(insn.args) != _ARITY[insn.op]:
        fail(f"expected {_ARITY[insn.op]} operands")
    if (insn.dst is not None) != (insn.op in _HAS_DST or (insn.op in CLOBBERS_SCRATCH and insn.dst is not None)):
        fail("destination present/absent where it must not be")
    if insn.op in _SIZES and insn.size not in _SIZES[insn.op]:
        fail(f"bad size {insn.size}")
    if insn.op in ("load", "store", "atomic_add") and not -0x8000 <= insn.off <= 0x7FFF:
        fail("offset does not fit 16 bits")
    if insn.op == "branch" and insn.cond not in CONDS:
        fail("bad condition")
    want_targets = {"jump": 1, "branch": 2}.get(insn.op, 0)
    if len(insn.targets) != want_targets or any(t not in labels for t in insn.targets):
        fail("bad jump targets")
    if (insn.op == "asm") != (len(insn.raw) == 5):
        fail("asm needs its five raw fields, and only asm has them")
    if insn.op == "arg" and (block is not fn.blocks[0] or any(i.op != "arg" for i in block.insns[:pos])
                             or not 0 <= insn.off < MAX_CALL_ARGS):
        fail("arg must be among the first instructions of the entry block, numbered 0..4")
    if overwrites_second_operand(insn.op, insn.dst, insn.args):
        fail("the second operand is the destination (dst = a OP dst cannot be emitted in place)")
    for i, a in enumerate(insn.args):
        if not operand_ok(insn, i, a):
            fail(f"operand {i} ({a!r}) not allowed here")
        if isinstance(a, SlotRef) and a.slot.id not in slots:
            fail(f"unknown stack slot {a.slot.id}")


# Validate at every stage boundary and after every optimisation pass (like LLVM's -verify-each), so a
# stage or pass that breaks an invariant is named. The tests and the fuzzer turn it on; a plain compile
# validates once, the optimised IR the checking stage and the allocator take (every compile is a new
# process, and the checks cost about a sixth of compiling a small program).
VERIFY_EACH_STAGE = False


def checked(fn: Function) -> Function:
    """``fn``, validated when ``VERIFY_EACH_STAGE`` is on (a stage's output)."""
    return validate(fn) if VERIFY_EACH_STAGE else fn


def validate(fn: Function) -> Function:
    """Raise ``MalformedIR`` unless ``fn`` satisfies every invariant above; returns ``fn``."""
    if not fn.blocks:
        raise MalformedIR(f"{fn.name}: no blocks")
    labels = [b.label for b in fn.blocks]
    if len(set(labels)) != len(labels):
        raise MalformedIR(f"{fn.name}: duplicate block labels")
    label_set, slots = set(labels), {s.id for s in fn.slots}
    for block in fn.blocks:
        if block.term is None:
            raise MalformedIR(f"{fn.name}:{block.label}: block has no terminator")
        for pos, insn in enumerate([*block.insns, block.term]):
            _check_insn(fn, block, pos, insn, label_set, slots)
    order = reverse_postorder(fn)
    if len(order) != len(fn.blocks):
        raise MalformedIR(f"{fn.name}: unreachable blocks")
    _check_definitely_assigned(fn, order)
    return fn


def prune_unreachable(fn: Function) -> bool:
    """Drop blocks no path from the entry reaches; returns whether any were dropped."""
    blocks, seen, stack = fn.block_map(), set(), [fn.blocks[0].label]
    while stack:
        label = stack.pop()
        if label not in seen:
            seen.add(label)
            stack.extend(blocks[label].successors)
    kept = [b for b in fn.blocks if b.label in seen]
    changed = len(kept) != len(fn.blocks)
    fn.blocks = kept
    return changed


def depth_first_postorder(blocks: dict, entry: str, successors=lambda block: block.successors) -> list:
    """Blocks reachable from ``entry`` in depth-first postorder, visiting each block's
    ``successors(block)`` in order; an edge back to a block on the current path (a loop's back
    edge) is not followed. Iterative: a long ``cond`` or ``case`` makes paths thousands of blocks
    long, deeper than Python recursion."""
    seen, post = {entry}, []
    stack = [(entry, iter(successors(blocks[entry])))]
    while stack:
        label, pending = stack[-1]
        t = next(pending, None)
        if t is None:
            stack.pop()
            post.append(blocks[label])
        elif t not in seen:
            seen.add(t)
            stack.append((t, iter(successors(blocks[t]))))
    return post


def reverse_postorder(fn: Function) -> list:
    """Blocks reachable from the entry, each after all its predecessors except those that reach
    it through a back edge (a loop's latch comes after its header)."""
    return depth_first_postorder(fn.block_map(), fn.blocks[0].label)[::-1]


def _check_definitely_assigned(fn: Function, order: list) -> None:
    """Forward "must" dataflow: the vregs assigned on every path into a block are the intersection
    over its predecessors, iterated to a fixpoint (a loop header's back edge first assumes
    everything, then only what the body keeps). Sets of vregs are int bitsets: intersecting them at
    every join of a long program stays cheap, where Python sets made validation quadratic."""
    preds = fn.predecessors()
    bit: dict = {}
    for insn in fn.all_insns():
        if insn.dst is not None:
            bit.setdefault(insn.dst, len(bit))
    everything = (1 << len(bit)) - 1
    entry = order[0].label
    assigned_out = {b.label: everything for b in order}

    def assigned_in(block: Block) -> int:
        if block.label == entry:
            return 0
        have = everything
        for p in preds[block.label]:
            have &= assigned_out[p]
        return have

    repeat = has_back_edges(order)
    while True:
        changed = False
        for block in order:
            have = assigned_in(block)
            for insn in [*block.insns, block.term]:
                if insn.dst is not None:
                    have |= 1 << bit[insn.dst]
            if have != assigned_out[block.label]:
                assigned_out[block.label] = have
                changed = True
        if not (repeat and changed):
            break
    for block in order:
        have = assigned_in(block)
        for insn in [*block.insns, block.term]:
            for v in insn.vreg_uses():
                if v not in bit or not have >> bit[v] & 1:
                    raise MalformedIR(f"{fn.name}:{block.label}: {v} used in `{insn}` before it is "
                                      f"assigned on every path")
            if insn.dst is not None:
                have |= 1 << bit[insn.dst]


# -- liveness --------------------------------------------------------------------------------

def live_in_of(block: Block, live_out: set) -> set:
    """The vregs live at the start of ``block`` given those live at its end."""
    live = set(live_out)
    for insn in reversed([*block.insns, block.term]):
        if insn.dst is not None:
            live.discard(insn.dst)
        live.update(insn.vreg_uses())
    return live


def live_out(fn: Function) -> dict:
    """label -> set of vregs live at the end of that block: backward dataflow over the blocks in
    postorder, one pass for acyclic code, repeated until nothing changes when there are loops."""
    rpo = reverse_postorder(fn)
    repeat = has_back_edges(rpo)
    out: dict = {}
    live_in: dict = {b.label: set() for b in rpo}
    while True:
        changed = False
        for block in reversed(rpo):
            out[block.label] = set().union(*(live_in[t] for t in block.successors))
            entry_live = live_in_of(block, out[block.label])
            if entry_live != live_in[block.label]:
                live_in[block.label] = entry_live
                changed = True
        if not (repeat and changed):
            return out


def has_back_edges(rpo: list) -> bool:
    """Does a block of ``rpo`` (``reverse_postorder``) jump to itself or an earlier block, i.e.
    does the function loop?"""
    position = {b.label: i for i, b in enumerate(rpo)}
    return any(position[t] <= position[b.label] for b in rpo for t in b.successors)


# -- dominators and loops ---------------------------------------------------------------------

def common_dominator(idom: dict, index: dict, a: str, b: str) -> str:
    """The nearest block dominating both ``a`` and ``b``, given immediate dominators (as far as
    known) and each label's position in reverse postorder."""
    while a != b:
        while index[a] > index[b]:
            a = idom[a]
        while index[b] > index[a]:
            b = idom[b]
    return a


def immediate_dominators(fn: Function) -> dict:
    """label -> its immediate dominator (the entry's is itself): Cooper, Harvey and Kennedy's
    iteration over reverse postorder."""
    order = reverse_postorder(fn)
    index = {b.label: i for i, b in enumerate(order)}
    preds = fn.predecessors()
    entry = order[0].label
    idom = {entry: entry}

    def meet(a: str, b: str) -> str:
        return common_dominator(idom, index, a, b)

    changed = True
    while changed:
        changed = False
        for block in order[1:]:
            known = [p for p in preds[block.label] if p in idom]
            new = known[0]
            for p in known[1:]:
                new = meet(p, new)
            if idom.get(block.label) != new:
                idom[block.label] = new
                changed = True
    return idom


def loops(fn: Function) -> dict:
    """header label -> set of the labels in its loop (natural loops; one per header)."""
    if not has_back_edges(reverse_postorder(fn)):
        return {}
    idom = immediate_dominators(fn)
    preds = fn.predecessors()

    def dominates(a: str, b: str) -> bool:
        while b != a and idom[b] != b:
            b = idom[b]
        return b == a

    found: dict = {}
    for block in fn.blocks:
        for header in block.successors:
            if not dominates(header, block.label):
                continue
            body = found.setdefault(header, {header})
            stack = [block.label]
            while stack:
                label = stack.pop()
                if label not in body:
                    body.add(label)
                    stack.extend(preds[label])
    return found
