"""Shared helpers for the back-end unit tests: core-form text in, IR / allocation / code out.

In: a program body written as core forms (``decls`` vocabulary), optionally maps and a loop
strategy forced on every loop. Out: ``lowered``, ``optimized``, ``allocated``, ``compiled`` (the
back-end stages run in pipeline order) and ``listing`` (instructions in bpftool notation, jump
offsets resolved).
"""

from __future__ import annotations

from dataclasses import replace

from compiler import emit, ir, isa, loopplan, lower, opt, reader, regalloc
from compiler.code import ProgramCode
from compiler.decls import MAP_TYPES, MapDef, ProgDef, Unit
from compiler.errors import Loc

FILE = "core.lisp"


def mapdef(name: str, kind: str = "array", key: int = 4, value: int = 8, entries: int = 4) -> MapDef:
    return MapDef(name.lower().replace("-", "_"), name.upper(), kind, MAP_TYPES[kind], key, value, entries, 0,
                  Loc(FILE, 1, 1))


DEFAULT_MAPS = (mapdef("stats"), mapdef("jt", "prog-array", 4, 4), mapdef("wide", "hash", 8, 8),
                mapdef("odd", "hash", 6, 3))


def prog(body: str, name: str = "t") -> ProgDef:
    return ProgDef(name, name.upper(), "xdp", "xdp", "GPL", tuple(reader.read(body, FILE)), Loc(FILE, 1, 1))


def unit(maps=DEFAULT_MAPS) -> Unit:
    return Unit(tuple(maps), (), FILE)


def forced(program: ProgDef, the_unit: Unit, strategy: str) -> loopplan.LoopPlan:
    """The program's loop plan with every loop run as ``strategy`` ("open", "callback", or
    "unroll", which applies to constant counts only)."""
    plan = loopplan.plan(program, the_unit)
    loops = {key: replace(lp, strategy=strategy) if lp.trip > 1 and (strategy != "unroll" or lp.constant) else lp
             for key, lp in plan.loops.items()}
    return replace(plan, loops=loops)


def lowered(body: str, maps=DEFAULT_MAPS, strategy: str | None = None) -> ir.Function:
    program, the_unit = prog(body), unit(maps)
    return lower.lower_program(program, the_unit, forced(program, the_unit, strategy) if strategy else None)


def optimized(body: str, maps=DEFAULT_MAPS, strategy: str | None = None) -> ir.Function:
    return opt.optimize(lowered(body, maps, strategy))


def allocated(body: str, maps=DEFAULT_MAPS, strategy: str | None = None) -> regalloc.Allocation:
    return regalloc.allocate(optimized(body, maps, strategy))


def compiled(body: str, maps=DEFAULT_MAPS) -> ProgramCode:
    return emit.emit_program(allocated(body, maps), prog(body))


def listing(code: ProgramCode) -> list[str]:
    return [isa.format_insn(i) for i in code.insns]
