"""Compiled code: what ``emit`` hands to the object writer (``btf``/``elf``) and the CLI.

In: produced per program by the back end. Out: ``ProgramCode`` with final instructions
(jump offsets resolved, ``map_ref`` set on every map ``ld_imm64``, ``func_ref`` on every load
of a callback's address, ``loc`` set for line info) with its loop callbacks (``Subprogram``),
and ``CompiledObject``, the result of ``compiler.compile_source``.
"""

from __future__ import annotations

from .decls import ProgDef, Unit
from .errors import Loc
from .isa import Insn, slot_count
from .records import dataclass


@dataclass(frozen=True)
class Subprogram:
    """A function a program calls: the body of a loop that runs under bpf_loop."""

    name: str
    insns: tuple[Insn, ...]
    stack_size: int
    loc: Loc  # the loop


@dataclass(frozen=True)
class ProgramCode:
    decl: ProgDef
    insns: tuple[Insn, ...]
    stack_size: int = 0  # bytes of stack the program uses (<= 512)
    subprograms: tuple[Subprogram, ...] = ()  # loop callbacks, referenced by ``func_ref``

    @property
    def slots(self) -> int:
        """Instruction count as the kernel counts it (ld_imm64 = 2), callbacks included."""
        return slot_count(list(self.insns)) + sum(slot_count(list(s.insns)) for s in self.subprograms)


@dataclass(frozen=True)
class CompiledObject:
    unit: Unit
    programs: tuple[ProgramCode, ...]
    elf: bytes
