"""Object writer: maps + compiled programs -> the bytes of a BPF ELF relocatable object.

In: the ``Unit``, one ``ProgramCode`` per program (jumps resolved, ``map_ref`` on map loads,
``loc`` for line info) and the source text. Out: ELF64 little-endian, ``EM_BPF``, ``ET_REL``
that libbpf/bpftool and our loader load as is:

  one PROGBITS AX section per section name (programs sharing a name follow each other),
  ``.text`` with the loop callbacks of every program (bpf_loop bodies, static functions),
  ``.maps``, ``license``, ``.BTF``, ``.BTF.ext`` (see ``btf``), ``.rel<section>`` with an
  ``R_BPF_64_64`` per map load and per load of a callback's address,
  ``.symtab`` (the .text section symbol and a local FUNC per callback, then a global FUNC per
  program and a global OBJECT per map), ``.strtab``, ``.shstrtab``.

The output depends only on the input: no timestamps, no paths beyond the given file name.
"""

from __future__ import annotations

import struct

from . import btf
from .code import ProgramCode
from .decls import Unit
from .errors import CompileError
from .isa import encode, slot_count
from .records import dataclass, replace

EM_BPF = 247
ET_REL = 1
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_REL = 1, 2, 3, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_INFO_LINK = 0x1, 0x2, 0x4, 0x40
STB_LOCAL, STB_GLOBAL = 0, 1
STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
TEXT = ".text"  # where the loop callbacks go, as clang puts static functions
R_BPF_64_64 = 1

_RESERVED_SECTIONS = (".maps", "license", ".BTF", ".BTF.ext", ".symtab", ".strtab", ".shstrtab", TEXT)


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
    binding: int


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


@dataclass(frozen=True)
class _Func:
    """A function placed in a code section: a program (global) or a loop callback in .text (local)."""

    name: str
    section: str
    insns: tuple  # callback addresses already resolved to their offsets in .text
    offset: int  # bytes into the section
    code: bytes
    is_program: bool


def _place(programs: list[ProgramCode]) -> list[_Func]:
    """Every function with its section and byte offset: program sections in first-use order
    (programs that share a section, as clang puts several ``SEC("xdp")`` functions, follow each
    other in it; libbpf tells them apart by their FUNC symbols), then ``.text`` with every loop
    callback. A callback's address is loaded as clang does it: ``ld_imm64`` whose immediate is the
    callback's byte offset in .text, relocated against the .text section symbol."""
    subprograms = [s for p in programs for s in p.subprograms]
    text_offset, at = {}, 0
    for sub in subprograms:
        text_offset[sub.name] = at
        at += 8 * slot_count(list(sub.insns))

    def resolved(insns) -> tuple:
        return tuple(replace(i, imm=text_offset[i.func_ref]) if i.func_ref is not None else i for i in insns)

    funcs: list[_Func] = []
    ends: dict[str, int] = {}
    units = [(p.decl.name, p.decl.section, p.insns, True) for p in programs]
    units += [(s.name, TEXT, s.insns, False) for s in subprograms]
    for name, section, insns, is_program in units:
        insns = resolved(insns)
        code = encode(list(insns))
        funcs.append(_Func(name, section, insns, ends.get(section, 0), code, is_program))
        ends[section] = ends.get(section, 0) + len(code)
    order = list(ends)
    return sorted(funcs, key=lambda f: order.index(f.section))


def _relocations(funcs: list[_Func], unit: Unit, symbol_index: dict[str, int]) -> bytes:
    """``R_BPF_64_64`` for every map load (against the map) and callback address (against .text)."""
    out = b""
    for f in funcs:
        offset = f.offset
        for insn in f.insns:
            if insn.is_ld_imm64 and insn.map_ref is not None:
                m = unit.map_named(insn.map_ref)
                if m is None:
                    raise ValueError(f"function {f.name} loads unknown map {insn.map_ref!r}")
                out += struct.pack("<QQ", offset, (symbol_index[m.name] << 32) | R_BPF_64_64)
            elif insn.is_ld_imm64 and insn.func_ref is not None:
                out += struct.pack("<QQ", offset, (symbol_index[TEXT] << 32) | R_BPF_64_64)
            offset += 8 * insn.slots
    return out


def write_object(unit: Unit, programs: list[ProgramCode], source_text: str) -> bytes:
    _check_sections(programs)
    slots = btf.map_layout(unit.maps)
    funcs = _place(programs)
    by_name = {p.decl.name: p for p in programs}
    subs = {s.name: s for p in programs for s in p.subprograms}
    object_btf = btf.build(unit, [(by_name[f.name], f.offset) for f in funcs if f.is_program], slots, source_text,
                           [(subs[f.name], f.offset) for f in funcs if not f.is_program])
    sections_in_order = list(dict.fromkeys(f.section for f in funcs))

    # Local symbols come first (sh_info of .symtab is the index of the first global one).
    symbols = []
    if subs:
        symbols.append(_Symbol(TEXT, STT_SECTION, TEXT, 0, 0, STB_LOCAL))
    symbols += [_Symbol(f.name, STT_FUNC, f.section, f.offset, len(f.code), STB_GLOBAL if f.is_program else STB_LOCAL)
                for f in sorted(funcs, key=lambda f: f.is_program)]
    symbols += [_Symbol(s.map.name, STT_OBJECT, ".maps", s.offset, s.size, STB_GLOBAL) for s in slots]
    symbol_index = {s.name: i + 1 for i, s in enumerate(symbols)}  # 0 is the null symbol
    first_global = 1 + sum(s.binding == STB_LOCAL for s in symbols)

    sections = [_Section(name, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR,
                         b"".join(f.code for f in funcs if f.section == name), 8)
                for name in sections_in_order]
    if slots:
        size = slots[-1].offset + slots[-1].size
        sections.append(_Section(".maps", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, bytes(size), 8))
    if programs:
        sections.append(_Section("license", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC,
                                 _license(programs).encode() + b"\0", 1))
    sections.append(_Section(".BTF", SHT_PROGBITS, 0, object_btf.btf, 4))
    sections.append(_Section(".BTF.ext", SHT_PROGBITS, 0, object_btf.ext, 4))
    for name in sections_in_order:
        rel = _relocations([f for f in funcs if f.section == name], unit, symbol_index)
        if rel:
            sections.append(_Section(".rel" + name, SHT_REL, SHF_INFO_LINK, rel, 8, 16, ".symtab", name))

    strtab = _StrTab()
    section_names = ["", *(s.name for s in sections), ".symtab", ".strtab", ".shstrtab"]
    section_index = {name: i for i, name in enumerate(section_names)}
    symtab = bytes(24) + b"".join(
        struct.pack("<IBBHQQ", strtab.add(s.name) if s.type != STT_SECTION else 0, (s.binding << 4) | s.type, 0,
                    section_index[s.section], s.value, s.size) for s in symbols)
    sections.append(_Section(".symtab", SHT_SYMTAB, 0, symtab, 8, 24, ".strtab", first_global))
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
