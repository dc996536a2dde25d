"""``.BTF`` and ``.BTF.ext`` of written objects, decoded by a small reader written here from the
kernel's BTF format description (Documentation/bpf/btf.rst), not from ``compiler.btf``.

In: the hand-built unit and programs of ``handmade``. Out: pass/fail on the map definitions
(libbpf's BTF-defined-map encoding), DATASEC sizes/offsets, FUNCs, func_info and line_info.
"""

from __future__ import annotations

import dataclasses
import io
import struct

import pytest
from elftools.elf.elffile import ELFFile

from compiler.decls import MAP_TYPES, FieldDef, StructDef
from compiler.elf import write_object
from tests.unit.compiler.handmade import FILE, SOURCE, unit_and_programs

KINDS = {1: "INT", 2: "PTR", 3: "ARRAY", 4: "STRUCT", 5: "UNION", 7: "FWD", 8: "TYPEDEF", 12: "FUNC",
         13: "FUNC_PROTO", 14: "VAR", 15: "DATASEC"}


def _name(strings: bytes, off: int) -> str:
    return strings[off:strings.index(b"\0", off)].decode()


def decode_btf(data: bytes) -> tuple[dict[int, dict], bytes]:
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", data)
    assert (magic, version, hdr_len) == (0xEB9F, 1, 24)
    strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
    assert strings[:1] == b"\0"
    types, pos, end, tid = {}, hdr_len + type_off, hdr_len + type_off + type_len, 1
    while pos < end:
        name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
        pos += 12
        kind, vlen = KINDS[(info >> 24) & 0x1F], info & 0xFFFF
        t = {"kind": kind, "name": _name(strings, name_off), "vlen": vlen, "size_or_type": size_or_type}
        if kind == "INT":
            (extra,) = struct.unpack_from("<I", data, pos)
            t.update(signed=bool((extra >> 24) & 1), bits=extra & 0xFF)
            pos += 4
        elif kind == "ARRAY":
            t["elem"], t["index"], t["nelems"] = struct.unpack_from("<III", data, pos)
            pos += 12
        elif kind in ("STRUCT", "UNION", "DATASEC"):
            t["members"] = [struct.unpack_from("<III", data, pos + 12 * i) for i in range(vlen)]
            pos += 12 * vlen
        elif kind == "FUNC_PROTO":
            t["params"] = [struct.unpack_from("<II", data, pos + 8 * i) for i in range(vlen)]
            pos += 8 * vlen
        elif kind == "VAR":
            (t["linkage"],) = struct.unpack_from("<I", data, pos)
            pos += 4
        types[tid] = t
        tid += 1
    assert pos == end
    return types, strings


def decode_ext(data: bytes, strings: bytes) -> dict[str, dict[str, list[tuple]]]:
    magic, version, _flags, hdr_len, fi_off, fi_len, li_off, li_len = struct.unpack_from("<HBBIIIII", data)
    assert (magic, version) == (0xEB9F, 1) and hdr_len >= 32
    out = {}
    for kind, off, length, rec in (("func", fi_off, fi_len, "<II"), ("line", li_off, li_len, "<IIII")):
        block = data[hdr_len + off:hdr_len + off + length]
        (rec_size,) = struct.unpack_from("<I", block)
        assert rec_size == struct.calcsize(rec)
        groups, pos = {}, 4
        while pos < len(block):
            sec, n = struct.unpack_from("<II", block, pos)
            pos += 8
            groups[_name(strings, sec)] = [struct.unpack_from(rec, block, pos + rec_size * i) for i in range(n)]
            pos += rec_size * n
        out[kind] = groups
    return out


class Obj:
    def __init__(self, unit, programs):
        self.unit, self.programs = unit, programs
        self.elf = ELFFile(io.BytesIO(write_object(unit, programs, SOURCE)))
        self.types, self.strings = decode_btf(self.elf.get_section_by_name(".BTF").data())
        self.ext = decode_ext(self.elf.get_section_by_name(".BTF.ext").data(), self.strings)

    def named(self, kind: str, name: str) -> tuple[int, dict]:
        [(tid, t)] = [(i, t) for i, t in self.types.items() if t["kind"] == kind and t["name"] == name]
        return tid, t

    def resolve(self, tid: int) -> dict:
        """Follow TYPEDEFs to the underlying type."""
        t = self.types[tid]
        return self.resolve(t["size_or_type"]) if t["kind"] == "TYPEDEF" else t

    def map_members(self, map_name: str) -> dict[str, object]:
        """Member -> N for ``__uint`` members, or the pointed-to type for ``__type`` members."""
        _var_id, var = self.named("VAR", map_name)
        assert var["linkage"] == 1  # global: libbpf refuses static maps
        struct_t = self.types[var["size_or_type"]]
        assert struct_t["kind"] == "STRUCT" and struct_t["name"] == ""
        out = {}
        for i, (name_off, tid, bit_off) in enumerate(struct_t["members"]):
            assert bit_off == 64 * i
            ptr = self.types[tid]
            assert ptr["kind"] == "PTR"
            target = self.types[ptr["size_or_type"]]
            out[_name(self.strings, name_off)] = target["nelems"] if target["kind"] == "ARRAY" else \
                self.resolve(ptr["size_or_type"])
        assert struct_t["size_or_type"] == 8 * len(out)
        return out


@pytest.fixture
def obj():
    return Obj(*unit_and_programs())


def test_array_map_has_typed_key_and_value(obj):
    members = obj.map_members("stats")
    assert members["type"] == MAP_TYPES["array"] and members["max_entries"] == 2
    key, value = members["key"], members["value"]
    assert (key["kind"], key["size_or_type"], key["signed"], key["bits"]) == ("INT", 4, False, 32)
    assert (value["kind"], value["size_or_type"], value["signed"], value["bits"]) == ("INT", 8, False, 64)
    assert set(members) == {"type", "key", "value", "max_entries"}


def test_prog_array_uses_sizes_not_types(obj):
    assert obj.map_members("jt") == {"type": MAP_TYPES["prog-array"], "key_size": 4, "value_size": 4,
                                     "max_entries": 4}


def _with_map(**changes) -> Obj:
    unit, programs = unit_and_programs()
    stats = dataclasses.replace(unit.maps[0], **changes)
    return Obj(dataclasses.replace(unit, maps=(stats, unit.maps[1])), programs)


def test_map_flags_appear_only_when_set():
    members = _with_map(flags=1).map_members("stats")
    assert members["map_flags"] == 1


def test_odd_sized_key_and_value_are_given_as_sizes():
    members = _with_map(kind="hash", map_type=MAP_TYPES["hash"], key_size=6, value_size=16).map_members("stats")
    assert (members["key_size"], members["value_size"]) == (6, 16)
    assert "key" not in members and "value" not in members


def test_datasec_has_the_real_size_and_offsets(obj):
    _sec_id, sec = obj.named("DATASEC", ".maps")
    assert sec["size_or_type"] == obj.elf.get_section_by_name(".maps").data_size
    symbols = {s.name: s for s in obj.elf.get_section_by_name(".symtab").iter_symbols()}
    entries = [(obj.types[v]["name"], off, size) for v, off, size in sec["members"]]
    assert entries == [(m.name, symbols[m.name]["st_value"], symbols[m.name]["st_size"]) for m in obj.unit.maps]


def test_one_global_func_per_program_with_a_ctx_parameter(obj):
    for prog in obj.programs:
        _func_id, func = obj.named("FUNC", prog.decl.name)
        assert func["vlen"] == 1  # linkage global
        proto = obj.types[func["size_or_type"]]
        assert proto["kind"] == "FUNC_PROTO"
        [(param_name, param_type)] = proto["params"]
        assert _name(obj.strings, param_name) == "ctx"
        assert obj.types[param_type]["kind"] == "PTR"


def test_func_info_points_each_section_at_its_func(obj):
    assert set(obj.ext["func"]) == {p.decl.section for p in obj.programs}
    for prog in obj.programs:
        [(insn_off, type_id)] = obj.ext["func"][prog.decl.section]
        assert insn_off == 0 and obj.types[type_id]["name"] == prog.decl.name


def test_line_info_marks_every_change_of_source_location(obj):
    source_lines = SOURCE.splitlines()
    for prog in obj.programs:
        expected, offset, previous = [], 0, None
        for insn in prog.insns:
            if insn.loc != previous:
                expected.append((offset, FILE, source_lines[insn.loc.line - 1], insn.loc.line, insn.loc.col))
                previous = insn.loc
            offset += 8 * insn.slots
        got = [(off, _name(obj.strings, f), _name(obj.strings, line), lc >> 10, lc & 0x3FF)
               for off, f, line, lc in obj.ext["line"][prog.decl.section]]
        assert got == expected and got[0][0] == 0 and len(got) >= 2


def test_instructions_without_location_inherit_the_program_location():
    unit, programs = unit_and_programs()
    bare = dataclasses.replace(programs[1], insns=tuple(i.at(None) for i in programs[1].insns))
    obj = Obj(unit, [programs[0], bare])
    [(off, f, line, lc)] = obj.ext["line"][bare.decl.section]
    decl = bare.decl.loc
    assert (off, _name(obj.strings, f), _name(obj.strings, line), lc) == \
        (0, FILE, SOURCE.splitlines()[decl.line - 1], (decl.line << 10) | decl.col)


def test_ext_info_of_programs_sharing_a_section_is_offset_within_it():
    unit, programs = unit_and_programs()
    shared = dataclasses.replace(programs[1], decl=dataclasses.replace(programs[1].decl, section="xdp"))
    obj = Obj(unit, [programs[0], shared])
    first_size = 8 * programs[0].slots
    funcs = [(off, obj.types[t]["name"]) for off, t in obj.ext["func"]["xdp"]]
    assert funcs == [(0, "counter"), (first_size, "bumper")]
    lines = [off for off, *_rest in obj.ext["line"]["xdp"]]
    assert lines == sorted(lines) and first_size in lines and set(obj.ext["line"]) == {"xdp"}


def test_a_key_type_comes_only_with_a_value_type():
    # the kernel refuses a map with a BTF key type and no value type (map_create: EINVAL)
    members = _with_map(kind="hash", map_type=MAP_TYPES["hash"], key_size=4, value_size=16).map_members("stats")
    assert (members["key_size"], members["value_size"]) == (4, 16)


EV = StructDef("ev", "EV", 16, (FieldDef("a", "A", "U8", 0, 0), FieldDef("b", "B", "U32", 0, 4),
                                FieldDef("tag", "TAG", "U16", 4, 8)), None)
SMALL = StructDef("small", "SMALL", 2, (FieldDef("x", "X", "U8", 0, 0), FieldDef("y", "Y", "U8", 0, 1)), None)
EITHER = StructDef("either", "EITHER", 16, (), None, ("EV", "SMALL"))


def _with_structs() -> Obj:
    unit, programs = unit_and_programs()
    stats = dataclasses.replace(unit.maps[0], kind="hash", map_type=MAP_TYPES["hash"], value_size=16,
                                value_struct="EV")
    return Obj(dataclasses.replace(unit, maps=(stats, unit.maps[1]), structs=(EV, SMALL, EITHER)), programs)


def test_struct_value_is_a_named_struct_with_typed_members():
    obj = _with_structs()
    value = obj.map_members("stats")["value"]
    assert (value["kind"], value["name"], value["size_or_type"]) == ("STRUCT", "ev", 16)
    members = [(_name(obj.strings, n), obj.types[t], bits) for n, t, bits in value["members"]]
    assert [(n, bits) for n, _t, bits in members] == [("a", 0), ("b", 32), ("tag", 64)]
    a, b, tag = (t for _n, t, _bits in members)
    assert (a["kind"], a["name"], obj.resolve(a["size_or_type"])["bits"]) == ("TYPEDEF", "__u8", 8)
    assert (b["name"], obj.resolve(b["size_or_type"])["bits"]) == ("__u32", 32)
    assert (tag["kind"], tag["nelems"], obj.types[tag["elem"]]["name"]) == ("ARRAY", 4, "__u16")


def test_unions_and_unused_structs_are_emitted_too():
    obj = _with_structs()
    _sid, small = obj.named("STRUCT", "small")
    assert small["size_or_type"] == 2
    _uid, union = obj.named("UNION", "either")
    assert union["size_or_type"] == 16
    assert [(_name(obj.strings, n), obj.types[t]["name"], bits) for n, t, bits in union["members"]] == \
        [("ev", "ev", 0), ("small", "small", 0)]
