"""Object writer: maps + compiled programs -> the bytes of a BPF ELF relocatable object.

In: the ``Unit``, one ``ProgramCode`` per program (jumps resolved, ``map_ref`` on map loads,
``loc`` for line info) and the source text. Out: ELF64 little-endian, ``EM_BPF``, ``ET_REL``
that libbpf/bpftool and our loader load as is:

  one PROGBITS AX section per section name (programs sharing a name follow each other),
  ``.maps``, ``license``, ``.BTF``, ``.BTF.ext`` (see ``btf``), ``.rel<section>`` with an
  ``R_BPF_64_64`` per map load,
  ``.symtab`` (a global FUNC per program, a global OBJECT per map), ``.strtab``, ``.shstrtab``.

The output depends only on the input: no timestamps, no paths beyond the given file name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import btf
from .code import ProgramCode
from .decls import Unit
from .errors import CompileError
from .isa import encode

EM_BPF = 247
ET_REL = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_REL = 1, 2, 3, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_INFO_LINK = 0x1, 0x2, 0x4, 0x40
STB_GLOBAL = 1
STT_OBJECT, STT_FUNC = 1, 2
R_BPF_64_64 = 1

_RESERVED_SECTIONS = (".maps", "license", ".BTF", ".BTF.ext", ".symtab", ".strtab", ".shstrtab")


@dataclass
class _Section:
    name: str
    type: int
    flags: int
    data: bytes
    align: int
    entsize: int = 0
    link: str | None = None  # name of the linked section
    info: int | str = 0  # a number, or the name of the section it applies to


@dataclass(frozen=True)
class _Symbol:
    name: str
    type: int
    section: str
    value: int
    size: int


class _StrTab:
    def __init__(self):
        self.data = bytearray(b"\0")
        self.offsets = {"": 0}

    def add(self, s: str) -> int:
        if s not in self.offsets:
            self.offsets[s] = len(self.data)
            self.data += s.encode() + b"\0"
        return self.offsets[s]


def _license(programs: list[ProgramCode]) -> str:
    """The object's one license: every program must carry the same."""
    first = programs[0].decl
    for prog in programs[1:]:
        if prog.decl.license != first.license:
            raise CompileError(prog.decl.loc, f"program {prog.decl.name} has license "
                               f"{prog.decl.license!r} but {first.name} has {first.license!r}",
                               expected="one license for all programs of an object",
                               hint="give every defprog the same :license")
    return first.license


def _check_sections(programs: list[ProgramCode]) -> None:
    for prog in programs:
        name = prog.decl.section
        if name in _RESERVED_SECTIONS or name.startswith(".rel") or not name:
            raise CompileError(prog.decl.loc, f"section name {name!r} of program {prog.decl.name} "
                               "is reserved for the object's own data",
                               hint='use "xdp" (or "tc") or a name like "xdp/NAME"')


def _place(programs: list[ProgramCode]) -> dict[str, list[tuple[ProgramCode, bytes, int]]]:
    """Section name -> its programs with their code and byte offset, sections in first-use order.

    Programs that share a section (as clang puts several ``SEC("xdp")`` functions) follow each
    other in it; libbpf tells them apart by their FUNC symbols.
    """
    sections: dict[str, list[tuple[ProgramCode, bytes, int]]] = {}
    for prog in programs:
        placed = sections.setdefault(prog.decl.section, [])
        offset = sum(len(code) for _prog, code, _offset in placed)
        placed.append((prog, encode(list(prog.insns)), offset))
    return sections


def _relocations(placed: list[tuple[ProgramCode, bytes, int]], unit: Unit,
                 symbol_index: dict[str, int]) -> bytes:
    out = b""
    for prog, _code, offset in placed:
        for insn in prog.insns:
            if insn.is_ld_imm64 and insn.map_ref is not None:
                m = unit.map_named(insn.map_ref)
                if m is None:
                    raise ValueError(f"program {prog.decl.name} loads unknown map {insn.map_ref!r}")
                out += struct.pack("<QQ", offset, (symbol_index[m.name] << 32) | R_BPF_64_64)
            offset += 8 * insn.slots
    return out


def write_object(unit: Unit, programs: list[ProgramCode], source_text: str) -> bytes:
    _check_sections(programs)
    slots = btf.map_layout(unit.maps)
    code_sections = _place(programs)
    placed = [(p, off) for progs in code_sections.values() for p, _code, off in progs]
    object_btf = btf.build(unit, placed, slots, source_text)

    symbols = [_Symbol(p.decl.name, STT_FUNC, name, off, len(code))
               for name, progs in code_sections.items() for p, code, off in progs]
    symbols += [_Symbol(s.map.name, STT_OBJECT, ".maps", s.offset, s.size) for s in slots]
    symbol_index = {s.name: i + 1 for i, s in enumerate(symbols)}  # 0 is the null symbol

    sections = [_Section(name, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, b"".join(c for _prog, c, _offset in progs), 8)
                for name, progs in code_sections.items()]
    if slots:
        size = slots[-1].offset + slots[-1].size
        sections.append(_Section(".maps", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, bytes(size), 8))
    if programs:
        sections.append(_Section("license", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC,
                                 _license(programs).encode() + b"\0", 1))
    sections.append(_Section(".BTF", SHT_PROGBITS, 0, object_btf.btf, 4))
    sections.append(_Section(".BTF.ext", SHT_PROGBITS, 0, object_btf.ext, 4))
    for name, progs in code_sections.items():
        rel = _relocations(progs, unit, symbol_index)
        if rel:
            sections.append(_Section(".rel" + name, SHT_REL, SHF_INFO_LINK, rel, 8, 16, ".symtab", name))

    strtab = _StrTab()
    section_names = ["", *(s.name for s in sections), ".symtab", ".strtab", ".shstrtab"]
    section_index = {name: i for i, name in enumerate(section_names)}
    symtab = bytes(24) + b"".join(
        struct.pack("<IBBHQQ", strtab.add(s.name), (STB_GLOBAL << 4) | s.type, 0,
                    section_index[s.section], s.value, s.size) for s in symbols)
    # sh_info of .symtab = index of the first global symbol; all ours are global.
    sections.append(_Section(".symtab", SHT_SYMTAB, 0, symtab, 8, 24, ".strtab", 1))
    sections.append(_Section(".strtab", SHT_STRTAB, 0, bytes(strtab.data), 1))
    shstrtab = _StrTab()
    for name in section_names:
        shstrtab.add(name)
    sections.append(_Section(".shstrtab", SHT_STRTAB, 0, bytes(shstrtab.data), 1))

    return _layout(sections, section_index, shstrtab)


def _layout(sections: list[_Section], section_index: dict[str, int], shstrtab: _StrTab) -> bytes:
    """Header, section contents in order (each aligned), then the section header table."""
    body = bytearray(64)
    offsets = []
    for s in sections:
        body += bytes(-len(body) % s.align)
        offsets.append(len(body))
        body += s.data
    body += bytes(-len(body) % 8)
    shoff = len(body)

    body += bytes(64)  # the null section header
    for s, offset in zip(sections, offsets):
        info = section_index[s.info] if isinstance(s.info, str) else s.info
        link = section_index[s.link] if s.link else 0
        body += struct.pack("<IIQQQQIIQQ", shstrtab.add(s.name), s.type, s.flags, 0, offset, len(s.data),
                            link, info, s.align, s.entsize)

    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # ELF64, little endian, version 1, SysV ABI
    body[0:64] = ident + struct.pack("<HHIQQQIHHHHHH", ET_REL, EM_BPF, 1, 0, 0, shoff, 0, 64, 0, 0, 64,
                                     len(sections) + 1, section_index[".shstrtab"])
    return bytes(body)
