"""The compiler pipeline: Whistler source text -> ``code.CompiledObject``.

In: source text and the file name to report in errors and line info. Out: the ``Unit``, one
``ProgramCode`` per program, and the ELF bytes. Stages, in order::

    reader.read -> expand.expand_unit -> per program: loopplan.plan -> lower.lower_program
    -> opt.optimize -> check.check_program -> regalloc.allocate -> emit.emit_program
    -> elf.write_object

A loop that the plan lists as worth trying unrolled (a few iterations of a small body) is
compiled both ways, one loop at a time, and among the ways the checking stage accepts the program
keeps whichever ``loopplan.keep_unrolled`` prefers: the smaller, or unrolled when that makes a scan
of memory faster for a few slots (the error of the planned way if the stage accepts none).

A ``CompileError`` (bad source) propagates with the offending source line attached. Running
out of recursion depth while compiling a program is a ``CompileError`` at that program. Any
other exception is a compiler bug; it becomes an ``InternalError`` that names the stage and
the program being compiled, chained to the original exception.
"""

from __future__ import annotations

import gc
import sys

from . import check, elf, emit, expand, loopplan, lower, opt, reader, regalloc
from .code import CompiledObject
from .errors import CompileError, Loc

# The stages walk forms recursively. A form nested ``reader.MAX_NESTING`` deep, or a long
# ``let*`` / ``when-let`` (one nested ``let`` per binding), needs a few thousand Python frames,
# more than the default limit of 1000; past this limit, running out is a located error.
RECURSION_LIMIT = 20_000


class InternalError(Exception):
    """A compiler bug (not a problem in the source), located at the form being compiled."""

    def __init__(self, stage: str, loc: Loc | None, cause: BaseException):
        where = f" at {loc}" if loc else ""
        super().__init__(f"internal compiler error in {stage}{where}: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.loc = loc


def _run(stage: str, loc: Loc | None, fn, *args):
    try:
        return fn(*args)
    except CompileError:
        raise
    except RecursionError as exc:
        if loc is None:  # the reader and expand locate their own; elf does not recurse
            raise InternalError(stage, loc, exc) from exc
        raise CompileError(loc, "this program nests too deeply to compile", form=None,
                           hint="split long let*/when-let chains and deep expressions into smaller "
                                "ones (a macro can generate them)") from None
    except Exception as exc:
        raise InternalError(stage, loc, exc) from exc


def compile_source(text: str, filename: str = "<string>", check_stage: bool = True) -> CompiledObject:
    """``check_stage=False`` skips the checking stage (to measure what it catches: the kernel
    then decides at load time)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    # The stages build trees and tables, not reference cycles, and the budget bounds how much
    # they build; the cycle collector would only rescan the ever-growing heap of live forms
    # (it made copying a large macro result four times slower).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _compile(text, filename, check_stage)
    finally:
        if collecting:
            gc.enable()
        sys.setrecursionlimit(limit)


def _compile(text: str, filename: str, check_stage: bool = True) -> CompiledObject:
    try:
        forms = _run("reader", None, reader.read, text, filename)
        unit = _run("expand", None, expand.expand_unit, forms, filename)
        programs = [_program(prog, unit, check_stage) for prog in unit.programs]
        elf_bytes = _run("elf", None, elf.write_object, unit, programs, text)
    except CompileError as err:
        if err.loc.file == filename:
            err.attach_source(text)
        raise
    return CompiledObject(unit, tuple(programs), elf_bytes)


def _program(prog, unit, check_stage: bool):
    plan = _run("loopplan", prog.loc, loopplan.plan, prog, unit)
    best, refused = _back_end(prog, unit, plan, check_stage)
    for loop in plan.unroll_candidates:
        trial = plan.unrolling(loop)
        code, _refused = _back_end(prog, unit, trial, check_stage)
        if code is not None and (best is None or loopplan.keep_unrolled(loop, best.slots, code.slots)):
            plan, best = trial, code
    if best is None:
        raise refused
    return best


def _back_end(prog, unit, plan, check_stage: bool):
    """(the program's code, None), or (None, the checking stage's error)."""
    fn = _run("lower", prog.loc, lower.lower_program, prog, unit, plan)
    fn = _run("opt", prog.loc, opt.optimize, fn)
    if check_stage:
        try:
            _run("check", prog.loc, check.check_program, fn, prog, unit)
        except CompileError as err:
            return None, err
    alloc = _run("regalloc", prog.loc, regalloc.allocate, fn)
    return _run("emit", prog.loc, emit.emit_program, alloc, prog), None
