"""Compiled code: what ``emit`` hands to the object writer (``btf``/``elf``) and the CLI.

In: produced per program by the back end. Out: ``ProgramCode`` with final instructions
(jump offsets resolved, ``map_ref`` set on every map ``ld_imm64``, ``loc`` set for line info),
and ``CompiledObject``, the result of ``compiler.compile_source``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .decls import ProgDef, Unit
from .isa import Insn, slot_count


@dataclass(frozen=True)
class ProgramCode:
    decl: ProgDef
    insns: tuple[Insn, ...]
    stack_size: int = 0  # bytes of stack the program uses (<= 512)

    @property
    def slots(self) -> int:
        """Instruction count as the kernel counts it (ld_imm64 = 2)."""
        return slot_count(list(self.insns))


@dataclass(frozen=True)
class CompiledObject:
    unit: Unit
    programs: tuple[ProgramCode, ...]
    elf: bytes
