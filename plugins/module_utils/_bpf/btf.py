"""BPF Type Format: raw ``.BTF``/``.BTF.ext`` bytes in, types, fixed-up bytes and info records out.

- ``Btf.parse(data)``: the type table (ids from 1; 0 is void) with names, sizes and members.
- ``Btf.fixup_datasecs(section_sizes, symbol_offsets)``: clang leaves DATASEC sizes and VAR offsets 0,
  which the kernel rejects; this fills them from the ELF (libbpf's ``btf_fixup_datasec``) and returns
  loadable bytes. The header is kept as it is.
  (``btfvalue`` turns map keys and values into Python data and back following these types.)
- ``parse_ext(data)``: ``.BTF.ext`` func_info/line_info as {section name: (rec_size, [record bytes])}.
Pure: no kernel access.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

MAGIC = 0xEB9F
(INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR,
 DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64) = range(1, 20)
MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4
MAX_NESTING = 64  # deeper type chains (arrays of arrays ...) are treated as a loop

# kind -> (bytes after the 12-byte common header, bytes per vlen entry)
_TAIL = {INT: (4, 0), PTR: (0, 0), ARRAY: (12, 0), STRUCT: (0, 12), UNION: (0, 12), ENUM: (0, 8), FWD: (0, 0),
         TYPEDEF: (0, 0), VOLATILE: (0, 0), CONST: (0, 0), RESTRICT: (0, 0), FUNC: (0, 0), FUNC_PROTO: (0, 8),
         VAR: (4, 0), DATASEC: (0, 12), FLOAT: (0, 0), DECL_TAG: (4, 0), TYPE_TAG: (0, 0), ENUM64: (0, 12)}


class BtfError(ValueError):
    """Malformed or unsupported BTF."""


def _string(strings: bytes, off: int) -> str:
    """The NUL-terminated name at ``off`` in a BTF string section ("" past its end)."""
    if off >= len(strings):
        return ""
    end = strings.find(b"\0", off)
    if end < 0:
        raise BtfError(f"BTF string at offset {off} is not NUL-terminated")
    try:
        return strings[off:end].decode()
    except UnicodeDecodeError:
        raise BtfError(f"BTF string at offset {off} is not valid UTF-8: {strings[off:end]!r}") from None


@dataclass
class Member:
    """A STRUCT/UNION member (offset in bits; ``bits`` is a bitfield's width, 0 if it is none), an ENUM
    value (in ``offset``), a FUNC_PROTO param or a DATASEC entry (offset and size in bytes)."""

    name: str
    type: int
    offset: int = 0
    size: int = 0
    bits: int = 0


@dataclass
class Type:
    id: int
    kind: int
    name: str
    size_or_type: int
    vlen: int
    kind_flag: bool
    extra: Tuple[int, ...] = ()       # INT encoding word; ARRAY (elem, index, nelems); VAR linkage
    members: List[Member] = field(default_factory=list)
    pos: int = 0                      # byte offset of this record in the type section

    # An INT's encoding word: flags (INT_SIGNED, INT_CHAR, INT_BOOL), bit offset and width.
    @property
    def int_encoding(self) -> int:
        return (self.extra[0] >> 24) & 0x0F

    @property
    def int_offset(self) -> int:
        return (self.extra[0] >> 16) & 0xFF

    @property
    def int_bits(self) -> int:
        return self.extra[0] & 0xFF


class Btf:
    def __init__(self, data: bytes, hdr_len: int, type_off: int, str_off: int, types: List[Optional[Type]]):
        self.data = data
        self._hdr_len, self._type_off, self._str_off = hdr_len, type_off, str_off
        self.types = types  # index = type id; types[0] is None (void)

    @property
    def strings(self) -> bytes:
        """The string table (names, and line_info's file names and source lines)."""
        return self.data[self._hdr_len + self._str_off:]

    @classmethod
    def parse(cls, data: bytes) -> Btf:
        """Decode ``data``; raises BtfError (never another exception) on anything malformed."""
        if len(data) < 24:
            raise BtfError("BTF shorter than its header")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != MAGIC:
            raise BtfError(f"bad BTF magic {magic:#x} (big-endian objects are not supported)")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        base = hdr_len + type_off
        if hdr_len < 24 or base + type_len > len(data) or hdr_len + str_off + str_len > len(data):
            raise BtfError("BTF sections run past the end of the data")
        strings = data[hdr_len + str_off:hdr_len + str_off + str_len]

        types: List[Optional[Type]] = [None]
        pos = 0
        while pos < type_len:
            if pos + 12 > type_len:
                raise BtfError(f"type {len(types)}: record runs past the end of the type section")
            name_off, info, size_or_type = struct.unpack_from("<III", data, base + pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind not in _TAIL:
                raise BtfError(f"type {len(types)}: unknown BTF kind {kind}")
            fixed, per = _TAIL[kind]
            if pos + 12 + fixed + per * vlen > type_len:
                raise BtfError(f"type {len(types)}: record runs past the end of the type section")
            t = Type(len(types), kind, _string(strings, name_off), size_or_type, vlen, bool(info >> 31), pos=pos)
            at = base + pos + 12
            if fixed:
                t.extra = struct.unpack_from(f"<{fixed // 4}I", data, at)
            at += fixed
            for i in range(vlen if per else 0):
                words = struct.unpack_from(f"<{per // 4}I", data, at + i * per)
                if kind in (STRUCT, UNION) and t.kind_flag:  # offset word: bitfield width << 24 | offset
                    t.members.append(Member(_string(strings, words[0]), words[1], words[2] & 0xFFFFFF,
                                            bits=words[2] >> 24))
                elif kind in (STRUCT, UNION):
                    t.members.append(Member(_string(strings, words[0]), words[1], words[2]))
                elif kind == DATASEC:
                    t.members.append(Member("", words[0], words[1], words[2]))
                elif kind == ENUM64:
                    t.members.append(Member(_string(strings, words[0]), 0, words[1] | words[2] << 32))
                else:  # ENUM value / FUNC_PROTO parameter
                    t.members.append(Member(_string(strings, words[0]), words[1] if kind == FUNC_PROTO else 0,
                                            words[1] if kind == ENUM else 0))
            pos += 12 + fixed + per * vlen
            types.append(t)
        return cls(bytes(data), hdr_len, type_off, str_off, types)

    # -- lookups ----------------------------------------------------------------------------

    def type(self, type_id: int) -> Type:
        if not 0 < type_id < len(self.types):
            raise BtfError(f"no BTF type {type_id}")
        return self.types[type_id]

    def skip_modifiers(self, type_id: int) -> Type:
        t = self.type(type_id)
        for _step in range(len(self.types)):
            if t.kind not in MODIFIERS:
                return t
            t = self.type(t.size_or_type)
        raise BtfError(f"BTF type {type_id}: modifiers form a loop")

    def size(self, type_id: int, _depth: int = 0) -> int:
        if _depth > MAX_NESTING:
            raise BtfError(f"BTF type {type_id}: types nest deeper than {MAX_NESTING} (a loop?)")
        t = self.skip_modifiers(type_id)
        if t.kind == PTR:
            return 8
        if t.kind == ARRAY:
            return t.extra[2] * self.size(t.extra[0], _depth + 1)
        if t.kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC):
            return t.size_or_type
        raise BtfError(f"BTF type {type_id} ({t.name or 'anonymous'}) has no size")

    def find(self, kind: int, name: str) -> Optional[Type]:
        return next((t for t in self.types[1:] if t.kind == kind and t.name == name), None)

    # -- fix-up -----------------------------------------------------------------------------

    def fixup_datasecs(self, section_sizes: Dict[str, int], symbol_offsets: Dict[str, int]) -> bytes:
        """Loadable bytes: each DATASEC sized like its ELF section, VAR offsets from their symbols."""
        out = bytearray(self.data)
        base = self._hdr_len + self._type_off
        for t in self.types[1:]:
            if t.kind != DATASEC:
                continue
            if t.name not in section_sizes:
                raise BtfError(f"DATASEC {t.name!r} has no ELF section")
            struct.pack_into("<I", out, base + t.pos + 8, section_sizes[t.name])
            entries = []
            for m in t.members:
                var = self.type(m.type)
                if var.kind == VAR and var.name not in symbol_offsets:
                    raise BtfError(f"DATASEC {t.name!r}: variable {var.name!r} has no ELF symbol")
                offset = symbol_offsets[var.name] if var.kind == VAR else m.offset
                entries.append((offset, m.type, m.size or self.size(var.size_or_type)))
            for i, (offset, type_id, size) in enumerate(sorted(entries)):
                struct.pack_into("<III", out, base + t.pos + 12 + i * 12, type_id, offset, size)
        return bytes(out)


@dataclass
class ExtSection:
    """One section's func_info or line_info records (``insn_off`` in bytes within the section)."""

    rec_size: int
    records: List[bytes]


# Smallest record of each .BTF.ext block: func_info {insn_off, type_id}, line_info {insn_off, file, line, col}.
_MIN_REC = {"func_info": 8, "line_info": 16}


def parse_ext(data: bytes, btf: Btf) -> Tuple[Dict[str, ExtSection], Dict[str, ExtSection]]:
    """``.BTF.ext`` -> (func_info, line_info), each {section name: ExtSection}; section names from ``btf``.
    Raises BtfError on anything malformed (a count that does not fit the data, a bad name offset)."""
    if len(data) < 24:
        raise BtfError(".BTF.ext shorter than its header")
    magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != MAGIC:
        raise BtfError(f"bad .BTF.ext magic {magic:#x}")
    func_off, func_len, line_off, line_len = struct.unpack_from("<IIII", data, 8)
    strings = btf.data[btf._hdr_len + btf._str_off:]

    def blocks(what: str, off: int, length: int) -> Dict[str, ExtSection]:
        result: Dict[str, ExtSection] = {}
        if not length:
            return result
        at, end = hdr_len + off, hdr_len + off + length
        if end > len(data) or length < 4:
            raise BtfError(f".BTF.ext {what} runs past the end of the section")
        rec_size = struct.unpack_from("<I", data, at)[0]
        if rec_size < _MIN_REC[what] or rec_size % 4:
            raise BtfError(f".BTF.ext {what}: bad record size {rec_size}")
        at += 4
        while at < end:
            if at + 8 > end:
                raise BtfError(f".BTF.ext {what}: truncated block header")
            name_off, count = struct.unpack_from("<II", data, at)
            at += 8
            if count * rec_size > end - at:
                raise BtfError(f".BTF.ext {what}: {count} records of {rec_size} bytes do not fit the section")
            name = _string(strings, name_off)
            recs = [data[at + i * rec_size:at + (i + 1) * rec_size] for i in range(count)]
            result.setdefault(name, ExtSection(rec_size, [])).records.extend(recs)
            at += count * rec_size
        return result

    return blocks("func_info", func_off, func_len), blocks("line_info", line_off, line_len)
