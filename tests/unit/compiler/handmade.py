"""Hand-built compiler output for testing the object writer without the front and back end.

In: nothing. Out: ``unit_and_programs()`` -> a ``Unit`` with an array map ``stats`` (u32 -> u64,
2 entries) and a prog-array ``jt``, and two ``ProgramCode``: ``counter`` (bumps ``stats[0]``,
tail-calls ``jt[1]``, returns XDP_PASS) and ``bumper`` (bumps ``stats[1]``, returns XDP_DROP),
written with the ``isa`` builders, plus the source text their locations point into.
"""

from __future__ import annotations

from compiler import isa
from compiler.code import ProgramCode
from compiler.decls import MAP_TYPES, MapDef, ProgDef, Unit
from compiler.errors import Loc

FILE = "handmade.lisp"
SOURCE = """\
(defmap stats :type :array :key-size 4 :value-size 8 :max-entries 2)
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 4)
(defprog counter (:type :xdp :section "xdp")
  (incf (getmap stats 0))
  (tail-call jt 1)
  XDP_PASS)
(defprog bumper (:type :xdp :section "xdp/bump")
  (incf (getmap stats 1))
  XDP_DROP)
"""
XDP_DROP, XDP_PASS = 1, 2


def loc(line: int, col: int) -> Loc:
    return Loc(FILE, line, col)


def _map(name: str, kind: str, key: int, value: int, entries: int, line: int) -> MapDef:
    return MapDef(name, name.upper(), kind, MAP_TYPES[kind], key, value, entries, 0, loc(line, 1))


def _bump(key: int, at: Loc) -> list[isa.Insn]:
    """stats[key] += 1 (if the lookup succeeds); keeps r6 = ctx."""
    return [i.at(at) for i in (
        isa.st(isa.W, isa.R10, -4, key),
        isa.mov64_reg(isa.R2, isa.R10),
        isa.alu64_imm(isa.ADD, isa.R2, -4),
        isa.ld_map_fd(isa.R1, "stats"),
        isa.call(1),  # bpf_map_lookup_elem
        isa.Insn(isa.JMP | isa.JEQ | isa.K, isa.R0, 0, 2, 0),  # null -> skip the add
        isa.mov64_imm(isa.R1, 1),
        isa.atomic_add(isa.DW, isa.R0, 0, isa.R1),
    )]


def _prog(name: str, section: str, line: int, insns: list[isa.Insn]) -> ProgramCode:
    decl = ProgDef(name, name.upper(), "xdp", section, "GPL", (), loc(line, 1))
    return ProgramCode(decl, tuple(insns), stack_size=4)


def unit_and_programs() -> tuple[Unit, list[ProgramCode]]:
    maps = (_map("stats", "array", 4, 8, 2, 1), _map("jt", "prog-array", 4, 4, 4, 2))
    counter = _prog("counter", "xdp", 3, [
        isa.mov64_reg(isa.R6, isa.R1).at(loc(3, 1)),
        *_bump(0, loc(4, 3)),
        *(i.at(loc(5, 3)) for i in (
            isa.mov64_reg(isa.R1, isa.R6),
            isa.ld_map_fd(isa.R2, "jt"),
            isa.mov64_imm(isa.R3, 1),
            isa.call(12),  # bpf_tail_call
        )),
        isa.mov64_imm(isa.R0, XDP_PASS).at(loc(6, 3)),
        isa.exit_().at(loc(6, 3)),
    ])
    bumper = _prog("bumper", "xdp/bump", 7, [
        *_bump(1, loc(8, 3)),
        isa.mov64_imm(isa.R0, XDP_DROP).at(loc(9, 3)),
        isa.exit_().at(loc(9, 3)),
    ])
    unit = Unit(maps, (counter.decl, bumper.decl), FILE)
    return unit, [counter, bumper]
