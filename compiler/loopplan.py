"""Loop planning: how each ``dotimes`` of a program runs, decided before lowering.

In: a ``decls.ProgDef`` whose body is core forms, and the ``Unit`` (map sizes). Out: a ``LoopPlan``
that ``lower`` follows, with one ``Loop`` per ``(dotimes (VAR COUNT MAX) ...)`` form (by identity):

  "unroll"    the body once per iteration, VAR a constant (counts 0 and 1; small loops that the
              pipeline finds smaller unrolled, or worth unrolling for speed: ``unroll_candidates``,
              ``keep_unrolled``),
  "open"      a real loop in the program's code; the verifier walks it once per iteration,
  "callback"  the body becomes a function the ``bpf_loop`` helper calls COUNT times; the verifier
              checks that function a few times (until its entry state stops changing), whatever
              the count.

Why: the kernel verifier walks an open-coded loop iteration by iteration and counts every
instruction it processes against a budget of 1,000,000 (6.18: a loop of b instructions plus
increment and branch costs COUNT * (b + 2); 300,000 iterations of a one-instruction body load,
150,000 of a five-instruction body do not). ``_Planner.walk`` estimates that count from the core
forms, erring high (on the programs measured it is 1.2 to 20 times the kernel's count). Loops start
open; while the estimate for the whole program exceeds ``WALK_BUDGET``, the loops whose conversion
saves most become callbacks. A program that still does not fit is a located ``CompileError``:
never a verifier rejection at load time.

What the verifier tracks decides what a loop costs. It stops re-walking a callback once the
variables the body changes are no longer known exactly: it forgets ("widens") their values on
each new call, unless a test against a value it knows (``(when (< s 1000) ...)``), an address or a
helper argument needed the exact value ("precise"). Such a variable (``Loop.tracked``) is followed
through every iteration, after the loop as well: each iteration's end then starts its own walk of
the code that follows. So a loop that changes a tracked variable cannot become a callback, and
with a run-time count (which may stop after any iteration) it costs the code after it once per
iteration. The verifier also refuses ``tail-call`` inside a callback, and ``asm`` there might
not mean what it means in the program (``exit`` would end the callback).
"""

from __future__ import annotations

from .decls import ProgDef, Unit
from .errors import CompileError
from .forms import Form, Int, List, Symbol, short
from .records import dataclass, field, replace

WALK_BUDGET = 1_000_000  # instructions the verifier processes before giving up (BPF_COMPLEXITY_LIMIT_INSNS)
CALLBACK_WALKS = 4  # times the verifier walks a callback before its entry state converges (measured: 3)
LOOP_OVERHEAD = 3  # per iteration: counter increment, compare-and-branch, the VAR copy
MAX_PATHS = 8  # the most paths through one iteration the estimate assumes the verifier keeps apart
RUNTIME_COUNT_FACTOR = 2  # a run-time count: each iteration also walks the exit path to its first merge
UNROLL_TRIAL_COUNT = 8  # loops with at most this many iterations ...
UNROLL_TRIAL_WALK = 64  # ... and at most this much code unrolled are tried both ways
# An indexed loop (see ``keep_unrolled``) with at most this many iterations and this much code
# unrolled is tried both ways too, and kept unrolled when that costs at most SPEED_UNROLL_GROWTH
# instruction slots more than the loop.
SPEED_UNROLL_COUNT = 16
SPEED_UNROLL_WALK = 512
SPEED_UNROLL_GROWTH = 96

COMPARE = frozenset(("=", "/=", "<", "<=", ">", ">=", "S<", "S<=", "S>", "S>="))
MAP_OPS = frozenset(("MAP-LOOKUP", "MAP-UPDATE", "MAP-DELETE", "MAP-LOOKUP-PTR", "MAP-UPDATE-PTR",
                     "MAP-DELETE-PTR"))
# Forms whose value the verifier does not know in advance (memory, helpers): a comparison
# against them does not pin down the other side.
UNKNOWN_VALUES = MAP_OPS | {"LOAD", "CTX-LOAD", "CALL"}
TYPED = frozenset(("LOAD", "STORE", "ATOMIC-ADD", "CAST", "CTX-LOAD", "CTX-STORE"))  # first operand a type


@dataclass(frozen=True)
class Loop:
    form: List  # the (dotimes ...) core form
    var: str  # the loop variable's name
    trip: int  # most iterations (MAX)
    constant: bool  # COUNT is a constant (then exactly ``trip`` iterations)
    strategy: str  # "unroll", "open" or "callback"
    reads: frozenset  # free variables the body reads or assigns (a callback captures them)
    assigns: frozenset  # free variables the body assigns (a callback writes them back)
    reads_var: bool  # the body reads the loop variable
    returns: bool  # the body contains a return
    blocker: str = ""  # why the body cannot run as a callback ("" when it can)
    tracked: Symbol | None = None  # where the program needs the exact value of a variable the body changes
    indexed: bool = False  # the body computes a memory address from the loop variable
    calls: bool = False  # the body calls a helper (a map operation, a tail call ...)


@dataclass(frozen=True)
class LoopPlan:
    loops: dict = field(default_factory=dict)  # id(form) -> Loop
    walk: int = 0  # estimated instructions the verifier walks for the whole program
    unroll_candidates: tuple = ()  # Loops worth trying unrolled (the pipeline keeps what is smaller)

    def loop(self, form: List) -> Loop:
        return self.loops[id(form)]

    def unrolling(self, loop: Loop) -> LoopPlan:
        """This plan with ``loop`` unrolled."""
        loops = dict(self.loops)
        loops[id(loop.form)] = replace(loop, strategy="unroll")
        return replace(self, loops=loops, unroll_candidates=tuple(c for c in self.unroll_candidates
                                                                  if c is not loop))


def plan(prog: ProgDef, unit: Unit) -> LoopPlan:
    body = _progn(prog.body, prog.loc)
    planner = _Planner(unit, _pinned(body))
    found = list(planner.collect(body, ()))
    strategies = {id(lp.form): ("unroll" if lp.trip <= 1 else "open") for lp in found}
    while True:
        planner.rest = planner.walk(body, strategies, 1, rest=False)[0]
        walk = planner.walk(body, strategies, 1)[0]
        if walk <= WALK_BUDGET:
            break
        chosen = planner.conversions(walk - WALK_BUDGET)
        if not chosen:
            raise planner.too_big(body, strategies, walk)
        for key in chosen:
            strategies[key] = "callback"
    loops = {id(lp.form): replace(lp, strategy=strategies[id(lp.form)]) for lp in found}

    def candidate(lp: Loop) -> bool:
        if lp.strategy != "open" or not lp.constant:
            return False
        unrolled = lp.trip * planner.walk(_body(lp.form), strategies, 1)[0]
        if lp.indexed and not lp.calls:
            return lp.trip <= SPEED_UNROLL_COUNT and unrolled <= SPEED_UNROLL_WALK
        return lp.trip <= UNROLL_TRIAL_COUNT and unrolled <= UNROLL_TRIAL_WALK

    return LoopPlan(loops, walk, tuple(lp for lp in loops.values() if candidate(lp)))


def keep_unrolled(loop: Loop, rolled_slots: int, unrolled_slots: int) -> bool:
    """Should the program keep ``loop`` unrolled, given its instruction slots both ways? When that
    is smaller, and also for an indexed loop without helper calls (a scan of packet bytes, say)
    when it costs at most SPEED_UNROLL_GROWTH slots more: BPF has no indexed addressing, so each
    rolled iteration spends about as much on its address arithmetic and counter as on its work,
    where unrolled the addresses are constant offsets (docs/loops.md, Speed)."""
    if unrolled_slots < rolled_slots:
        return True
    return loop.indexed and not loop.calls and unrolled_slots <= rolled_slots + SPEED_UNROLL_GROWTH


def _body(form: List) -> List:
    return _progn(form.items[2:], form.loc)


def _progn(forms, loc) -> List:
    return List((Symbol("PROGN", loc), *forms), loc)


def _head(form: Form) -> str | None:
    if isinstance(form, List) and form.items and isinstance(form.items[0], Symbol):
        return form.items[0].name
    return None


def _subforms(form: List) -> tuple:
    """The parts of a core form that are expressions: a let's inits and body, a dotimes's count,
    bound and body, any other form's operands. (A binding such as ``(DOTIMES NIL 0)``, of a
    variable named dotimes, is not a loop.)"""
    head = _head(form)
    if head == "LET" and isinstance(form.items[1], List):
        inits = (b.items[2] for b in form.items[1].items if isinstance(b, List) and len(b.items) == 3)
        return (*inits, *form.items[2:])
    if head == "DOTIMES":
        return (*form.items[1].items[1:], *form.items[2:])
    return form.items[1:] if head is not None else form.items


class _Planner:
    def __init__(self, unit: Unit, pinned: dict):
        self.unit = unit
        self.pinned = pinned  # variable name -> a place where the verifier needs its exact value
        self.rest = 0  # the program's walk, leaving out what tracked run-time loops add (see walk)
        self.loops: dict = {}  # id(form) -> Loop, as collected
        self.outer: dict = {}  # id(form) -> ids of the loops around it
        self.walks: dict = {}  # id(form) -> the loop's walk in the last estimate without ``rest``
        self.savings: dict = {}  # id(form) of an open loop -> walk saved by running it as a callback

    # -- what each loop needs ----------------------------------------------------------------
    def collect(self, form: Form, outer: tuple):
        """Every dotimes under ``form`` (outer ones first), with its free variables."""
        if _head(form) == "DOTIMES":
            loop = self._loop(form)
            self.loops[id(form)] = loop
            self.outer[id(form)] = frozenset(outer)
            outer = (*outer, id(form))
            yield loop
        if isinstance(form, List):
            for item in _subforms(form):
                yield from self.collect(item, outer)

    def _loop(self, form: List) -> Loop:
        var, count, maximum = form.items[1].items
        body = _body(form)
        reads, assigns = _free(body, frozenset((var.name,)))
        blocker = ""
        tail = _find(body, lambda f: _head(f) in ("TAIL-CALL", "ASM"))
        indexed = _find(body, lambda f: any(isinstance(g, Symbol) and g.name == var.name
                                            for g in _flatten(_addresses(f))))
        if tail is not None:
            blocker = (f"it contains a tail-call ({tail.loc}), which the verifier refuses inside a bpf_loop "
                       "callback" if _head(tail) == "TAIL-CALL" else
                       f"it contains asm ({tail.loc}), whose instruction might not mean the same inside a "
                       "bpf_loop callback (an exit would end the callback, not the program)")
        elif indexed is not None:
            blocker = (f"it computes an address from {var.name.lower()} ({indexed.loc}): under bpf_loop "
                       "the verifier knows only the range of the index, where a packet access needs its "
                       "exact value")
        tracked = next((self.pinned[n] for n in sorted(assigns) if n in self.pinned), None)
        if tracked is not None and not blocker:
            blocker = (f"the body changes {tracked.name.lower()}, whose exact value the verifier follows "
                       f"(it is tested or used as an address at {tracked.loc}), so it would walk every "
                       "iteration anyway")
        constant = isinstance(count, Int)
        trip = min(count.value & ((1 << 64) - 1), maximum.value) if constant else maximum.value
        calls = _find(body, lambda f: _head(f) in MAP_OPS or _head(f) in ("CALL", "TAIL-CALL", "ASM")) is not None
        return Loop(form, var.name, trip, constant, "open", reads, assigns,
                    var.name in _free(body, frozenset())[0],
                    _find(body, lambda f: _head(f) == "RETURN") is not None, blocker, tracked,
                    indexed is not None, calls)

    # -- the verifier's walk -----------------------------------------------------------------
    def walk(self, form: Form, strategies: dict, times: int, rest: bool = True) -> tuple[int, int]:
        """(instructions the verifier processes for ``form`` with every arm of every branch,
        conditional branches in it outside its loops); ``form`` itself is walked ``times`` times
        (which scales what converting a loop inside it saves). ``rest``: count the code after a
        tracked run-time loop once per iteration (as ``self.rest``, all of the program)."""
        if isinstance(form, Int):
            return 1, 0
        if not isinstance(form, List):
            return 0, 0
        head = _head(form)
        if head == "DOTIMES":
            return self._loop_walk(form, strategies, times, rest), 0
        walk, branches = self._own(form, head)
        for item in _subforms(form):
            w, b = self.walk(item, strategies, times, rest)
            walk, branches = walk + w, branches + b
        return walk, branches

    def _loop_walk(self, form: List, strategies: dict, times: int, rest: bool) -> int:
        """Open: each iteration walks the body once per path the verifier may have to keep apart
        (a branch usually rejoins, but not when the arms leave values it tracks exactly; at most
        ``MAX_PATHS``). A run-time count also walks the exit after each iteration; when the loop
        changes a tracked variable, that exit is all the code after it."""
        key = id(form)
        loop = self.loops[key]
        count = self.walk(form.items[1].items[1], strategies, times, rest)[0]
        if strategies[key] == "unroll":
            body, branches = self.walk(_body(form), strategies, times * max(loop.trip, 1), rest)
            walk = count + max(loop.trip, 1) * body * min(1 + branches, MAX_PATHS)
        else:
            factor = loop.trip * (1 if loop.constant else RUNTIME_COUNT_FACTOR)
            inner = factor if strategies[key] == "open" else CALLBACK_WALKS
            body, branches = self.walk(_body(form), strategies, times * inner, rest)
            iteration = body * min(1 + branches, MAX_PATHS) + LOOP_OVERHEAD
            captures = 2 * len(loop.reads) + 2 * len(loop.assigns) + 8
            # the code after this loop: at most the rest of the program
            after = max(self.rest - self.walks.get(key, 0), 0)
            exits = loop.trip * after if rest and loop.tracked is not None and not loop.constant else 0
            open_walk = count + factor * iteration + exits + LOOP_OVERHEAD
            callback_walk = count + CALLBACK_WALKS * (iteration + captures) + captures
            walk = open_walk if strategies[key] == "open" else callback_walk
            self.savings.pop(key, None)
            if strategies[key] == "open" and not loop.blocker and callback_walk < open_walk:
                self.savings[key] = times * (open_walk - callback_walk)
        if not rest:
            self.walks[key] = walk
        return walk

    def _own(self, form: List, head: str | None) -> tuple[int, int]:
        """(instructions, conditional branches) a form costs besides its operands, erring high."""
        if head in MAP_OPS:
            mapdef = self.unit.map_named(form.items[1].name) if isinstance(form.items[1], Symbol) else None
            spill = 0 if mapdef is None else (mapdef.key_size + mapdef.value_size + 7) // 8 * 2
            return 8 + spill, 0
        if head == "CALL":
            return 2 + len(form.items), 0
        if head == "STRUCT-ALLOC":
            return (2 + form.items[1].value // 4 if isinstance(form.items[1], Int) else 2), 0
        if head == "LET":
            return (len(form.items[1].items) if isinstance(form.items[1], List) else 0), 0
        if head in ("PROGN", "CTX-PTR") or head is None:
            return 0, 0
        if head in ("AND", "OR"):
            return 2 * len(form.items), len(form.items) - 1
        if head in ("IF", "NOT") or head in COMPARE:
            return 2, 1
        if head == "TAIL-CALL":
            return 5, 0
        return (1, 0) if head == "SETQ" else (2, 0)

    def conversions(self, excess: int) -> list:
        """Open loops to run as callbacks so the walk shrinks by ``excess``: the biggest savings
        first (outer loops on a tie), never two loops of one nest in a round (converting one
        changes what the other saves)."""
        chosen: list = []
        for key in sorted(self.savings, key=lambda k: (-self.savings[k], len(self.outer[k]))):
            if any(key in self.outer[c] or c in self.outer[key] for c in chosen):
                continue
            chosen.append(key)
            excess -= self.savings[key]
            if excess <= 0:
                break
        return chosen

    def too_big(self, body: List, strategies: dict, walk: int) -> CompileError:
        """The error for a program too big to verify, at the loop that could not become a callback,
        or else the heaviest one."""
        heaviest = max(self.loops.values(), default=None,
                       key=lambda lp: (strategies[id(lp.form)] == "open" and bool(lp.blocker), self.walks[id(lp.form)]))
        where = heaviest.form if heaviest is not None else body
        hint = "split the work across programs (tail calls) or make the loop bodies smaller"
        if heaviest is not None and heaviest.blocker:
            hint = (f"this loop cannot run under bpf_loop: {heaviest.blocker}; run fewer iterations "
                    "or move that part out of the loop")
            if heaviest.tracked is not None and not heaviest.constant:
                hint += ("; with a run-time count the verifier also walks the code after the loop once "
                         "per iteration: a constant count avoids that")
        return CompileError(where.loc, f"the verifier would have to walk about {walk} instructions of this "
                            f"program, more than its budget of {WALK_BUDGET}", form=short(where), hint=hint)


# -- scope-aware scans of core forms -------------------------------------------------------------

def _free(form: Form, bound: frozenset) -> tuple[frozenset, frozenset]:
    """(variables read or assigned, variables assigned) in ``form`` that it does not bind itself."""
    reads: set = set()
    assigns: set = set()

    def visit(f: Form, bound: frozenset) -> None:
        if isinstance(f, Symbol):
            if f.name not in bound and f.name != "NIL":
                reads.add(f.name)
            return
        if not isinstance(f, List) or not f.items:
            return
        head = _head(f)
        if head == "LET" and isinstance(f.items[1], List):
            inner = set(bound)
            for binding in f.items[1].items:
                if isinstance(binding, List) and len(binding.items) == 3:
                    visit(binding.items[2], bound)
                    if isinstance(binding.items[0], Symbol):
                        inner.add(binding.items[0].name)
            for item in f.items[2:]:
                visit(item, frozenset(inner))
            return
        if head == "DOTIMES":
            visit(f.items[1].items[1], bound)
            for item in f.items[2:]:
                visit(item, bound | {f.items[1].items[0].name})
            return
        if head == "SETQ" and len(f.items) == 3 and isinstance(f.items[1], Symbol):
            if f.items[1].name not in bound:
                reads.add(f.items[1].name)
                assigns.add(f.items[1].name)
            visit(f.items[2], bound)
            return
        for item in _operands(f, head):
            visit(item, bound)

    visit(form, bound)
    return frozenset(reads), frozenset(assigns)


def _operands(form: List, head: str | None) -> tuple:
    """The operands of a core form that are expressions (not types, map names or helper ids)."""
    items = form.items[1:]
    if head in TYPED or head in MAP_OPS or head in ("TAIL-CALL", "CALL"):
        return items[1:]
    if head == "STRUCT-ALLOC":
        return ()
    return items if head is not None else form.items


def _addresses(form: Form) -> tuple:
    """The operands of ``form`` that are addresses: of a memory access, or passed to a helper."""
    head = _head(form)
    if head in ("LOAD", "STORE", "ATOMIC-ADD"):
        return (form.items[2],)
    if head == "CALL" or (head in MAP_OPS and head.endswith("-PTR")):
        return tuple(form.items[2:])
    return ()


def _flatten(forms):
    for f in forms:
        yield f
        if isinstance(f, List):
            yield from _flatten(f.items)


def _find(form: Form, pred) -> Form | None:
    """The first subform (depth first) satisfying ``pred``."""
    if pred(form):
        return form
    if isinstance(form, List):
        for item in _subforms(form):
            found = _find(item, pred)
            if found is not None:
                return found
    return None


def _pinned(body: Form) -> dict:
    """name -> the first place where the verifier needs the exact value of a variable of that name:
    a test whose every operand it may know (constants and variables, but no memory, helper result
    or variable bound to one), an address, a helper argument, a loop count. Names are not told
    apart by scope (erring towards "needed")."""
    structural = COMPARE | {"IF", "NOT", "AND", "OR", "PROGN", "LET"}
    found: dict = {}

    def knowable(f: Form, unknown: frozenset) -> bool:
        return _find(f, lambda g: _head(g) in UNKNOWN_VALUES or (isinstance(g, Symbol) and g.name in unknown)) is None

    def suspects(f: Form, head: str | None, unknown: frozenset) -> tuple:
        def tested(t: Form) -> bool:  # a value compared with zero
            return _head(t) not in structural and knowable(t, unknown)

        if head in COMPARE:
            return (f,) if knowable(f, unknown) else ()
        if head == "IF":
            return tuple(t for t in f.items[1:2] if tested(t))
        if head in ("NOT", "AND", "OR"):
            return tuple(t for t in f.items[1:] if tested(t))
        if head in ("LOAD", "STORE", "ATOMIC-ADD"):
            return (f.items[2],)
        if head == "CALL" or (head in MAP_OPS and head.endswith("-PTR")):
            return tuple(f.items[2:])
        if head == "DOTIMES":
            return tuple(t for t in f.items[1].items[1:2] if knowable(t, unknown))
        return ()

    def mentions(f: Form):
        if isinstance(f, Symbol):
            yield f
        elif isinstance(f, List):
            for item in f.items:
                yield from mentions(item)

    def visit(f: Form, unknown: frozenset) -> None:
        head = _head(f)
        for suspect in suspects(f, head, unknown):
            for symbol in mentions(suspect):
                found.setdefault(symbol.name, symbol)
        if head == "LET" and isinstance(f.items[1], List):
            inner = set(unknown)
            for binding in f.items[1].items:
                if isinstance(binding, List) and len(binding.items) == 3:
                    visit(binding.items[2], unknown)
                    name = binding.items[0].name if isinstance(binding.items[0], Symbol) else None
                    (inner.discard if knowable(binding.items[2], unknown) else inner.add)(name)
            items, unknown = f.items[2:], frozenset(inner)
        elif head == "DOTIMES":  # open loops know their index
            items = f.items[1].items[1:2] + f.items[2:]
        else:
            items = f.items if isinstance(f, List) else ()
        for item in items:
            visit(item, unknown)

    visit(body, frozenset())
    return found
