"""Minimal BPF ELF reader (standard library only), for ``python -m compiler disasm OBJ``.

In: the bytes of a BPF relocatable object — ours or clang's. Out: ``read_programs(data)`` ->
one ``ObjectProgram`` per ``STT_FUNC`` symbol in an executable section (several may share a
section, as clang puts them), with its instructions decoded and every relocated ``ld_imm64``
marked as a map load (``src = PSEUDO_MAP_FD``, ``map_ref`` = the relocation's symbol name) or,
when the relocation is against a code section (a ``bpf_loop`` callback in ``.text``), as a
function address (``src = PSEUDO_FUNC``, ``func_ref`` = the function found at that offset).
A file that is not a little-endian ELF64 BPF object raises ``ValueError`` saying why.
"""

from __future__ import annotations

import struct

from .isa import PSEUDO_FUNC, PSEUDO_MAP_FD, Insn, decode
from .records import dataclass, replace

EM_BPF = 247
SHT_SYMTAB, SHT_REL = 2, 9
SHF_EXECINSTR = 0x4
STT_FUNC, STT_SECTION = 2, 3


@dataclass(frozen=True)
class ObjectProgram:
    section: str
    name: str
    insns: tuple[Insn, ...]


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    flags: int
    data: bytes
    link: int
    info: int


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode(errors="replace")


def _sections(data: bytes) -> list[_Section]:
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    machine, = struct.unpack_from("<H", data, 18)
    if machine != EM_BPF:
        raise ValueError(f"ELF machine is {machine}, not BPF ({EM_BPF})")
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    if shentsize != 64 or shoff + 64 * shnum > len(data) or shstrndx >= shnum:
        raise ValueError("truncated or corrupt section header table")
    headers = []
    for i in range(shnum):
        name, typ, flags, _addr, off, size, link, info = struct.unpack_from("<IIQQQQII", data, shoff + 64 * i)
        if typ != 8 and off + size > len(data):  # 8 = SHT_NOBITS has no file data
            raise ValueError(f"section {i} extends past the end of the file")
        headers.append((name, typ, flags, data[off:off + size] if typ != 8 else b"", link, info))
    names = headers[shstrndx][3]
    return [_Section(_cstr(names, n), t, f, d, link, info) for n, t, f, d, link, info in headers]


def _symbols(sections: list[_Section]) -> list[tuple[str, int, int, int, int]]:
    """(name, type, section index, value, size) for every symbol."""
    symtab = next((s for s in sections if s.type == SHT_SYMTAB), None)
    if symtab is None:
        return []
    strtab = sections[symtab.link].data
    out = []
    for off in range(0, len(symtab.data) - 23, 24):
        name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", symtab.data, off)
        out.append((_cstr(strtab, name), info & 0xF, shndx, value, size))
    return out


def _map_loads(sections: list[_Section], symbols) -> dict[int, dict[int, tuple]]:
    """section index -> {byte offset of a relocated instruction: symbol (name, type, section, value)}."""
    loads: dict[int, dict[int, tuple]] = {}
    for sec in sections:
        if sec.type != SHT_REL or not sections[sec.info].flags & SHF_EXECINSTR:
            continue
        for off in range(0, len(sec.data) - 15, 16):
            r_offset, r_info = struct.unpack_from("<QQ", sec.data, off)
            loads.setdefault(sec.info, {})[r_offset] = symbols[r_info >> 32][:4]
    return loads


def _relocated(insn: Insn, symbol: tuple, sections: list[_Section], symbols) -> Insn:
    """``insn`` (an ld_imm64) marked with what its relocation loads: a map or a function."""
    name, typ, shndx, value = symbol
    if not (0 < shndx < len(sections) and sections[shndx].flags & SHF_EXECINSTR):
        return replace(insn, src=PSEUDO_MAP_FD, map_ref=name)
    target = value + (insn.imm if typ == STT_SECTION else 0)
    func = next((n for n, t, s, v, _size in symbols if t == STT_FUNC and s == shndx and v == target), None)
    return replace(insn, src=PSEUDO_FUNC, func_ref=func or f"{sections[shndx].name}+{target}")


def read_programs(data: bytes) -> list[ObjectProgram]:
    sections = _sections(data)
    symbols = _symbols(sections)
    loads = _map_loads(sections, symbols)
    programs = []
    for name, typ, shndx, value, size in symbols:
        if typ != STT_FUNC or not 0 < shndx < len(sections) or not sections[shndx].flags & SHF_EXECINSTR:
            continue
        relocated = loads.get(shndx, {})
        insns, offset = [], value
        for insn in decode(sections[shndx].data[value:value + size]):
            symbol = relocated.get(offset)
            if insn.is_ld_imm64 and symbol is not None:
                insn = _relocated(insn, symbol, sections, symbols)
            insns.append(insn)
            offset += 8 * insn.slots
        programs.append(ObjectProgram(sections[shndx].name, name, tuple(insns)))
    return programs
