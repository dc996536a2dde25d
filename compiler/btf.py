"""BTF for an object: the ``.BTF`` and ``.BTF.ext`` section bytes, and the ``.maps`` layout.

In: the ``Unit`` (maps, programs), each program's ``ProgramCode`` and the source text.
Out: ``map_layout(maps)`` -> one ``MapSlot`` (offset and size in ``.maps``) per map, and
``build(unit, placed, slots, source_text)`` -> ``ObjectBtf(btf, ext)``, where ``placed`` pairs
each program with its byte offset inside its section (programs may share a section).

Maps are libbpf "BTF-defined maps", encoded as clang encodes them: a global ``VAR`` of an
anonymous struct whose members carry the values in their *types* — ``__uint(name, N)`` is a
pointer to ``int[N]``, ``__type(key, __u32)`` a pointer to the key type, ``__type(value,
struct conn_event)`` a pointer to that STRUCT. Each member is a pointer, so a map's struct is
8 bytes a member; ``.maps`` holds the structs back to back and the ``DATASEC`` carries the real
section size and offsets, so no loader needs to patch them.

Every ``defstruct`` becomes a named STRUCT (size = sizeof, members by name with ``__u8`` ..
``__u64`` typedef types, array fields as ARRAY of the element typedef) and every ``defunion``
a UNION of its member structs, as clang emits them, so tools print map entries field by field.

``.BTF.ext`` has one func_info record per program and per loop callback (a static FUNC
``long NAME(__u64 index, void *ctx)`` in ``.text``) and a line_info record wherever the source
location changes, grouped by section (``insn_off`` in bytes within the section, as libbpf expects).
"""

from __future__ import annotations

import struct

from .code import ProgramCode, Subprogram
from .decls import MapDef, StructDef, Unit
from .errors import Loc
from .records import dataclass

BTF_MAGIC = 0xEB9F

# BTF_KIND_*
INT, PTR, ARRAY, STRUCT, UNION, FWD, TYPEDEF, FUNC, FUNC_PROTO, VAR, DATASEC = 1, 2, 3, 4, 5, 7, 8, 12, 13, 14, 15
INT_SIGNED = 1
LINKAGE_STATIC, LINKAGE_GLOBAL = 0, 1  # FUNC: static / global function; VAR: global allocated variable

# Map kinds whose key/value the kernel accepts as plain BTF integers. The others take sizes
# only: fd-holding maps (prog-array, sockmap, ...) reject BTF key/value types outright
# (map_check_no_btf), lpm-trie insists on a struct key, ringbuf has no key or value.
_TYPED_KINDS = frozenset({"hash", "array", "percpu-hash", "percpu-array", "lru-hash"})
# ... and the ones that take a struct key or value type (lpm_trie requires its key to be one).
_STRUCT_TYPED_KINDS = _TYPED_KINDS | {"lpm-trie"}
_UINT_NAMES = {1: ("__u8", "unsigned char"), 2: ("__u16", "unsigned short"),
               4: ("__u32", "unsigned int"), 8: ("__u64", "unsigned long long")}

TEXT = ".text"  # the section of the loop callbacks

# The C struct a program's context pointer points to (its BTF is only a forward declaration).
_CTX_STRUCT = {"xdp": "xdp_md", "tc": "__sk_buff"}


@dataclass(frozen=True)
class MapSlot:
    map: MapDef
    offset: int  # byte offset of the map's struct in .maps (= its symbol's st_value)
    members: tuple[tuple[str, str, int | str], ...]  # (member, "uint"|"type"|"struct", value,
    # integer type size or struct lisp name)

    @property
    def size(self) -> int:
        return 8 * len(self.members)


@dataclass(frozen=True)
class ObjectBtf:
    btf: bytes
    ext: bytes


def map_members(m: MapDef) -> tuple[tuple[str, str, int], ...]:
    """The libbpf map-definition members for ``m``: ``__uint`` values, ``__type`` integer sizes
    and struct names."""
    typed = {}
    for field, size, struct_name in (("key", m.key_size, m.key_struct), ("value", m.value_size, m.value_struct)):
        if struct_name is not None and m.kind in _STRUCT_TYPED_KINDS:
            typed[field] = (field, "struct", struct_name)
        elif m.kind in _TYPED_KINDS and size in _UINT_NAMES:
            typed[field] = (field, "type", size)
    if "value" not in typed:
        typed.pop("key", None)  # the kernel refuses a key type without a value type (map_create: EINVAL)
    members = [("type", "uint", m.map_type)]
    for field, size in (("key", m.key_size), ("value", m.value_size)):
        if field in typed:
            members.append(typed[field])
        elif size:
            members.append((f"{field}_size", "uint", size))
    members.append(("max_entries", "uint", m.max_entries))
    if m.flags:
        members.append(("map_flags", "uint", m.flags))
    return tuple(members)


def map_layout(maps: tuple[MapDef, ...]) -> list[MapSlot]:
    slots, offset = [], 0
    for m in maps:
        slot = MapSlot(m, offset, map_members(m))
        slots.append(slot)
        offset += slot.size
    return slots


class _Strings:
    """The BTF string table: offset 0 is the empty string; equal strings share one entry."""

    def __init__(self):
        self.data = bytearray(b"\0")
        self.offsets = {"": 0}

    def add(self, s: str) -> int:
        if s not in self.offsets:
            self.offsets[s] = len(self.data)
            self.data += s.encode() + b"\0"
        return self.offsets[s]


class _Types:
    """BTF type records, numbered from 1; an identical record is added only once."""

    def __init__(self, strings: _Strings):
        self.strings = strings
        self.records: list[bytes] = []
        self.ids: dict[bytes, int] = {}

    def _add(self, kind: int, name: str, vlen: int, size_or_type: int, tail: bytes = b"") -> int:
        info = (kind << 24) | vlen
        record = struct.pack("<III", self.strings.add(name), info, size_or_type) + tail
        if record not in self.ids:
            self.records.append(record)
            self.ids[record] = len(self.records)
        return self.ids[record]

    def int_(self, name: str, size: int, signed: bool = False) -> int:
        encoding = INT_SIGNED if signed else 0
        return self._add(INT, name, 0, size, struct.pack("<I", (encoding << 24) | (size * 8)))

    def ptr(self, target: int) -> int:
        return self._add(PTR, "", 0, target)

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self._add(ARRAY, "", 0, 0, struct.pack("<III", elem, index, nelems))

    def typedef(self, name: str, target: int) -> int:
        return self._add(TYPEDEF, name, 0, target)

    def fwd_struct(self, name: str) -> int:
        return self._add(FWD, name, 0, 0)

    def struct_(self, name: str, size: int, members: list[tuple[str, int, int]], kind: int = STRUCT) -> int:
        tail = b"".join(struct.pack("<III", self.strings.add(n), t, bit_off) for n, t, bit_off in members)
        return self._add(kind, name, len(members), size, tail)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        tail = b"".join(struct.pack("<II", self.strings.add(n), t) for n, t in params)
        return self._add(FUNC_PROTO, "", len(params), ret, tail)

    def func(self, name: str, proto: int, linkage: int = LINKAGE_GLOBAL) -> int:
        return self._add(FUNC, name, linkage, proto)

    def var(self, name: str, target: int) -> int:
        return self._add(VAR, name, 0, target, struct.pack("<I", LINKAGE_GLOBAL))

    def datasec(self, name: str, size: int, entries: list[tuple[int, int, int]]) -> int:
        tail = b"".join(struct.pack("<III", *e) for e in entries)
        return self._add(DATASEC, name, len(entries), size, tail)


def _btf_bytes(types: _Types, strings: _Strings) -> bytes:
    type_data = b"".join(types.records)
    header = struct.pack("<HBBIIIII", BTF_MAGIC, 1, 0, 24, 0, len(type_data), len(type_data),
                         len(strings.data))
    return header + type_data + bytes(strings.data)


def _uint(types: _Types, size: int) -> int:
    """``__u8`` .. ``__u64``: a typedef of the unsigned C integer, as the kernel headers have it."""
    typedef_name, int_name = _UINT_NAMES[size]
    return types.typedef(typedef_name, types.int_(int_name, size))


def _array_index(types: _Types) -> int:
    return types.int_("__ARRAY_SIZE_TYPE__", 4)


def _add_struct(types: _Types, unit: Unit, lisp_name: str) -> int:
    s: StructDef = unit.struct_named(lisp_name)
    if s.is_union:
        members = [(unit.struct_named(m).name, _add_struct(types, unit, m), 0) for m in s.members]
        return types.struct_(s.name, s.size, members, UNION)
    members = []
    for f in s.fields:
        t = _uint(types, f.elem_size)
        if f.count:
            t = types.array(t, _array_index(types), f.count)
        members.append((f.name, t, 8 * f.offset))
    return types.struct_(s.name, s.size, members)


def _add_maps(types: _Types, unit: Unit, slots: list[MapSlot]) -> None:
    if not slots:
        return
    c_int = types.int_("int", 4, signed=True)
    index = _array_index(types)
    entries = []
    for slot in slots:
        members = []
        for i, (member, how, value) in enumerate(slot.members):
            if how == "uint":
                target = types.array(c_int, index, value)
            elif how == "struct":
                target = _add_struct(types, unit, value)
            else:
                target = _uint(types, value)
            members.append((member, types.ptr(target), 64 * i))
        var = types.var(slot.map.name, types.struct_("", slot.size, members))
        entries.append((var, slot.offset, slot.size))
    total = slots[-1].offset + slots[-1].size
    types.datasec(".maps", total, entries)


def _line_records(insns, start: Loc, base: int, strings: _Strings, source_file: str,
                  source_lines: list[str]) -> list[bytes]:
    """A line_info record at a function's first instruction and wherever the location changes."""
    records, offset, last = [], base, None
    for insn in insns:
        loc: Loc = insn.loc or last or start
        if loc != last:
            text = source_lines[loc.line - 1] if loc.file == source_file and 1 <= loc.line <= len(
                source_lines) else ""
            line_col = (loc.line << 10) | min(max(loc.col, 0), 0x3FF)
            records.append(struct.pack("<IIII", offset, strings.add(loc.file), strings.add(text), line_col))
            last = loc
        offset += 8 * insn.slots
    return records


def _ext_block(rec_size: int, groups: list[tuple[int, list[bytes]]]) -> bytes:
    out = struct.pack("<I", rec_size)
    for sec_name_off, records in groups:
        out += struct.pack("<II", sec_name_off, len(records)) + b"".join(records)
    return out


def build(unit: Unit, placed: list[tuple[ProgramCode, int]], slots: list[MapSlot],
          source_text: str, subprograms: list[tuple[Subprogram, int]] = ()) -> ObjectBtf:
    """``placed``: every program with its byte offset in its section, in section order;
    ``subprograms``: every loop callback with its byte offset in ``.text``."""
    strings = _Strings()
    types = _Types(strings)
    _add_maps(types, unit, slots)
    for s in unit.structs:  # the ones no map refers to, too: a program's record types
        _add_struct(types, unit, s.lisp_name)

    c_int = types.int_("int", 4, signed=True)
    source_lines = source_text.splitlines()
    func_groups: dict[str, list[bytes]] = {}
    line_groups: dict[str, list[bytes]] = {}
    for prog, base in placed:
        ctx = types.ptr(types.fwd_struct(_CTX_STRUCT.get(prog.decl.prog_type, "xdp_md")))
        func = types.func(prog.decl.name, types.func_proto(c_int, [("ctx", ctx)]))
        section = prog.decl.section
        func_groups.setdefault(section, []).append(struct.pack("<II", base, func))
        line_groups.setdefault(section, []).extend(
            _line_records(prog.insns, prog.decl.loc, base, strings, unit.source_file, source_lines))
    if subprograms:
        # long NAME(__u64 index, void *ctx): what bpf_loop calls
        u64 = types.typedef("__u64", types.int_("unsigned long long", 8))
        proto = types.func_proto(types.int_("long", 8, signed=True), [("index", u64), ("ctx", types.ptr(0))])
        for sub, base in subprograms:
            func = types.func(sub.name, proto, LINKAGE_STATIC)
            func_groups.setdefault(TEXT, []).append(struct.pack("<II", base, func))
            line_groups.setdefault(TEXT, []).extend(
                _line_records(sub.insns, sub.loc, base, strings, unit.source_file, source_lines))

    func_info = _ext_block(8, [(strings.add(s), r) for s, r in func_groups.items()])
    line_info = _ext_block(16, [(strings.add(s), r) for s, r in line_groups.items()])
    ext_header = struct.pack("<HBBIIIIIII", BTF_MAGIC, 1, 0, 32, 0, len(func_info), len(func_info),
                             len(line_info), len(func_info) + len(line_info), 0)
    return ObjectBtf(_btf_bytes(types, strings), ext_header + func_info + line_info)
