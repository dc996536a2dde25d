"""Lowering of ``dotimes``: each loop the way the program's ``loopplan.LoopPlan`` chose.

In: a ``(dotimes (VAR COUNT MAX) F...)`` core form and the lowerer (``lower._Lowerer``) at that
point. Out: the loop's IR in the lowerer's function, value 0. COUNT is evaluated once, first; a
run-time count is clamped, ``n = min(COUNT, MAX)`` (unsigned), so the bound the verifier sees is
MAX. Each iteration binds VAR afresh to a copy of the index.

unroll    the body once per iteration with the index a constant. A run-time count of at most
          one iteration is ``if n != 0``; zero iterations lower the body into unreachable code
          (its errors are still reported) that is then dropped.
open      a loop tested at the bottom: ``c = 0; L: VAR = c; body; c += 1; if c < n goto L``,
          entered only when ``n != 0``. The verifier walks it once per iteration.
callback  ``bpf_loop(n, PROGRAM_loopK, &area, 0)``: the body becomes a function of its own, put in
          the program's ``callbacks``. ``area`` is a stack slot of the caller holding every variable
          the body uses (8 bytes each, stored before the call; those the body assigns are loaded
          back after it), the context pointer, and for a body that can ``return`` a flag and a
          value: the callback stores them and returns 1, which stops bpf_loop, and the caller then
          returns the value. The callback receives (index, &area) in r1, r2, loads what it needs,
          stores back what it assigned at the end of each iteration and returns 0 to go on. When the
          body reads VAR, ``index >= MAX`` returns 1 first: it never happens, but it tells the
          verifier the index's range.
"""

from __future__ import annotations

from . import ir, loopplan
from .errors import Loc
from .forms import List, Symbol
from .ir import FuncRef, SlotRef, VReg
from .records import dataclass

HELPER_LOOP = 181  # long bpf_loop(u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags)
CONTINUE, STOP = 0, 1  # what a bpf_loop callback returns


def lower_dotimes(lw, form: List) -> VReg:
    loop = lw.plan.loop(form)
    body = list(form.items[2:])
    loc = form.loc
    n = None if loop.constant else lw.lower(form.items[1].items[1])
    if loop.strategy == "unroll":
        _unrolled(lw, loop, body, n, loc)
    else:
        limit = loop.trip if n is None else _clamped(lw, n, loop.trip, loc)
        (_open if loop.strategy == "open" else _callback)(lw, loop, body, limit, loc)
    return lw._const(0, loc)


def _iteration(lw, loop: loopplan.Loop, body: list, index, loc: Loc) -> None:
    """The body once, with VAR bound to a fresh copy of ``index``."""
    var = lw.fn.new_vreg()
    lw._emit("mov", var, [index], loc)
    lw.scopes.append({loop.var: var})
    try:
        lw._progn(body, loc)
    finally:
        lw.scopes.pop()


def _unrolled(lw, loop: loopplan.Loop, body: list, n: VReg | None, loc: Loc) -> None:
    if loop.trip == 0:
        continuation, lw.block = lw.block, None
        _iteration(lw, loop, body, 0, loc)
        lw.block = continuation
    elif n is not None:  # at most one iteration, if the count is not 0
        go, done = lw._new_block("once"), lw._new_block("done")
        lw._branch("ne", n, lw._const(0, loc), go, done, loc)
        lw.block = go
        _iteration(lw, loop, body, 0, loc)
        lw._jump(done, loc)
        lw.block = done
    else:
        for i in range(loop.trip):
            _iteration(lw, loop, body, i, loc)


def _clamped(lw, n: VReg, maximum: int, loc: Loc) -> VReg:
    """min(n, maximum), unsigned."""
    limit = lw.fn.new_vreg()
    lw._emit("mov", limit, [n], loc)
    clamp, go = lw._new_block("clamp"), lw._new_block("go")
    lw._branch("gt", limit, lw._const(maximum, loc), clamp, go, loc)
    lw.block = clamp
    lw._emit("mov", limit, [maximum], loc)
    lw._jump(go, loc)
    lw.block = go
    return limit


def _open(lw, loop: loopplan.Loop, body: list, limit, loc: Loc) -> None:
    done = lw._new_block("done")
    if isinstance(limit, VReg):
        enter = lw._new_block("enter")
        lw._branch("eq", limit, lw._const(0, loc), done, enter, loc)
        lw.block = enter
    counter = lw.fn.new_vreg()
    lw._emit("mov", counter, [0], loc)
    head = lw._new_block("loop")
    lw._jump(head, loc)
    lw.block = head
    _iteration(lw, loop, body, counter, loc)
    if lw.block is not None:
        lw._emit("add", counter, [counter, 1], loc)
        bound = limit if isinstance(limit, VReg) else lw._const(limit, loc)
        lw._branch("lt", counter, bound, head, done, loc)
    lw.block = done


@dataclass
class Callback:
    """How the body of a loop lowered as a bpf_loop callback ends an iteration or returns."""

    area: VReg  # the caller's capture area (r2 at entry)
    fields: dict  # variable name -> its offset in the area
    assigns: tuple  # variables the body assigns, stored back at the end of each iteration
    returned: int | None  # offset of the "returned" flag (the value follows it), if the body returns

    def next_iteration(self, lw, loc: Loc) -> None:
        for name in self.assigns:
            lw._emit("store", None, [self.area, lw._lookup(Symbol(name, loc))], loc, size=8,
                     off=self.fields[name])
        lw._terminate("ret", [CONTINUE], loc)

    def return_(self, lw, value: VReg, loc: Loc) -> None:
        lw._emit("store", None, [self.area, value], loc, size=8, off=self.returned + 8)
        lw._emit("store", None, [self.area, 1], loc, size=8, off=self.returned)
        lw._terminate("ret", [STOP], loc)


def _callback(lw, loop: loopplan.Loop, body: list, limit, loc: Loc) -> None:
    captured = [name for name in sorted(loop.reads) if any(name in scope for scope in lw.scopes)]
    fields = {name: 8 * k for k, name in enumerate(captured)}
    ctx_at = 8 * len(captured)
    returned = ctx_at + 8 if loop.returns else None
    area = SlotRef(lw.fn.new_slot(ctx_at + (24 if loop.returns else 8), "capture", loc))
    for name in captured:
        lw._emit("store", None, [area, lw._lookup(Symbol(name, loc))], loc, size=8, off=fields[name])
    lw._emit("store", None, [area, lw.ctx], loc, size=8, off=ctx_at)
    if returned is not None:
        lw._emit("store", None, [area, 0], loc, size=8, off=returned)

    fn = ir.Function(_callback_name(lw), loc, [])
    lw.program.callbacks.append(fn)
    sub = type(lw)(lw.prog, lw.unit, lw.plan, fn, lw.program)
    index = sub._value("arg", [], loc, off=0)
    base = sub._value("arg", [], loc, off=1)
    sub.scopes.append({name: sub._value("load", [base], loc, size=8, off=fields[name]) for name in captured})
    sub.ctx = sub._value("load", [base], loc, size=8, off=ctx_at)
    sub.callback = Callback(base, fields, tuple(n for n in captured if n in loop.assigns), returned)
    if loop.reads_var:
        stop, go = sub._new_block("stop"), sub._new_block("go")
        sub._branch("ge", index, sub._const(loop.trip, loc), stop, go, loc)
        sub.block = stop
        sub._terminate("ret", [STOP], loc)
        sub.block = go
    _iteration(sub, loop, body, index, loc)
    if sub.block is not None:
        sub.callback.next_iteration(sub, loc)
    ir.prune_unreachable(fn)
    ir.checked(fn)

    lw._emit("call", None, [limit, FuncRef(fn.name), area, 0], loc, helper=HELPER_LOOP)
    for name in sub.callback.assigns:
        lw._emit("load", lw._lookup(Symbol(name, loc)), [area], loc, size=8, off=fields[name])
    if returned is not None:
        flag = lw._value("load", [area], loc, size=8, off=returned)
        leave, stay = lw._new_block("returned"), lw._new_block("after")
        lw._branch("ne", flag, lw._const(0, loc), leave, stay, loc)
        lw.block = leave
        lw._return(lw._value("load", [area], loc, size=8, off=returned + 8), loc)
        lw.block = stay


def _callback_name(lw) -> str:
    """PROGRAM_loopK, clear of every program, map and callback name of the unit."""
    taken = {p.name for p in lw.unit.programs} | {m.name for m in lw.unit.maps} | {
        c.name for c in lw.program.callbacks}
    k = len(lw.program.callbacks) + 1
    while f"{lw.program.name}_loop{k}" in taken:
        k += 1
    return f"{lw.program.name}_loop{k}"
