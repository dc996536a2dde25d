"""The ELF writer, read back with pyelftools (an independent ELF parser), and ``elfread``.

In: the hand-built unit and programs of ``handmade`` (and a clang-built object for elfread).
Out: pass/fail on header, sections, symbols, relocations and error handling.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from compiler import isa
from compiler.elf import write_object
from compiler.elfread import read_programs
from compiler.errors import CompileError
from tests.unit.compiler.handmade import SOURCE, unit_and_programs

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def handmade():
    unit, programs = unit_and_programs()
    return unit, programs, ELFFile(io.BytesIO(write_object(unit, programs, SOURCE)))


def test_header_is_bpf_relocatable(handmade):
    elf = handmade[2]
    assert elf.elfclass == 64 and elf.little_endian
    assert elf["e_type"] == "ET_REL" and elf["e_machine"] == "EM_BPF"
    assert elf["e_phnum"] == 0 and elf["e_entry"] == 0


def test_one_executable_section_per_program_holding_its_code(handmade):
    programs, elf = handmade[1:]
    for prog in programs:
        sec = elf.get_section_by_name(prog.decl.section)
        assert sec["sh_type"] == "SHT_PROGBITS"
        assert sec["sh_flags"] == 0x6  # SHF_ALLOC | SHF_EXECINSTR
        assert sec.data() == isa.encode(list(prog.insns))


def test_symbols_name_programs_and_maps(handmade):
    unit, programs, elf = handmade
    symtab = elf.get_section_by_name(".symtab")
    by_name = {s.name: s for s in symtab.iter_symbols() if s.name}
    for prog in programs:
        sym = by_name[prog.decl.name]
        assert (sym["st_info"]["type"], sym["st_info"]["bind"]) == ("STT_FUNC", "STB_GLOBAL")
        assert elf.get_section(sym["st_shndx"]).name == prog.decl.section
        assert (sym["st_value"], sym["st_size"]) == (0, 8 * prog.slots)
    maps_index = elf.get_section_index(".maps")
    # Each map definition is 4 pointer-sized members: type, key, value, max_entries.
    for i, m in enumerate(unit.maps):
        sym = by_name[m.name]
        assert (sym["st_info"]["type"], sym["st_info"]["bind"]) == ("STT_OBJECT", "STB_GLOBAL")
        assert (sym["st_shndx"], sym["st_value"], sym["st_size"]) == (maps_index, 32 * i, 32)
    assert elf.get_section_by_name(".maps").data_size == 32 * len(unit.maps)
    assert symtab["sh_info"] == 1  # every symbol after the null one is global


def test_map_loads_are_relocated_against_the_map_symbols(handmade):
    programs, elf = handmade[1:]
    symtab = elf.get_section_by_name(".symtab")
    for prog in programs:
        expected, slot = [], 0
        for insn in prog.insns:
            if insn.map_ref:
                expected.append((8 * slot, insn.map_ref))
            slot += insn.slots
        rel = elf.get_section_by_name(".rel" + prog.decl.section)
        assert isinstance(rel, RelocationSection)
        assert elf.get_section(rel["sh_info"]).name == prog.decl.section
        got = [(r["r_offset"], symtab.get_symbol(r["r_info_sym"]).name) for r in rel.iter_relocations()]
        assert all(r["r_info_type"] == 1 for r in rel.iter_relocations())  # R_BPF_64_64
        assert expected and got == expected


def test_license_and_btf_sections_exist(handmade):
    elf = handmade[2]
    assert elf.get_section_by_name("license").data() == b"GPL\0"
    assert elf.get_section_by_name(".BTF").data()[:2] == b"\x9f\xeb"
    assert elf.get_section_by_name(".BTF.ext").data()[:2] == b"\x9f\xeb"


def test_a_map_with_flags_gets_a_larger_slot():
    unit, programs = unit_and_programs()
    flagged = dataclasses.replace(unit.maps[0], flags=1)
    unit = dataclasses.replace(unit, maps=(flagged, unit.maps[1]))
    elf = ELFFile(io.BytesIO(write_object(unit, programs, SOURCE)))
    syms = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols()}
    assert (syms["stats"]["st_value"], syms["stats"]["st_size"]) == (0, 40)
    assert (syms["jt"]["st_value"], syms["jt"]["st_size"]) == (40, 32)
    assert elf.get_section_by_name(".maps").data_size == 72


def test_programs_with_different_licenses_are_rejected():
    unit, programs = unit_and_programs()
    other = dataclasses.replace(programs[1], decl=dataclasses.replace(programs[1].decl, license="MIT"))
    with pytest.raises(CompileError) as exc:
        write_object(unit, [programs[0], other], SOURCE)
    assert exc.value.loc == other.decl.loc
    assert "license" in exc.value.what


@pytest.mark.parametrize("section", [".maps", "license", ".BTF", ".relxdp", ""])
def test_a_section_name_the_object_needs_itself_is_rejected(section):
    unit, programs = unit_and_programs()
    clash = dataclasses.replace(programs[1], decl=dataclasses.replace(programs[1].decl, section=section))
    with pytest.raises(CompileError) as exc:
        write_object(unit, [programs[0], clash], SOURCE)
    assert exc.value.loc == clash.decl.loc


def test_unresolved_jump_is_refused():
    unit, programs = unit_and_programs()
    broken = dataclasses.replace(programs[0], insns=(isa.ja("nowhere"), *programs[0].insns))
    with pytest.raises(ValueError, match="nowhere"):
        write_object(unit, [broken, programs[1]], SOURCE)


def test_elfread_recovers_programs_and_map_names(handmade):
    unit, programs = handmade[:2]
    data = write_object(unit, programs, SOURCE)
    read = read_programs(data)
    assert [(p.section, p.name) for p in read] == [(p.decl.section, p.decl.name) for p in programs]
    for got, prog in zip(read, programs):
        assert got.insns == prog.insns  # Insn equality ignores map_ref: compare those separately
        assert [i.map_ref for i in got.insns] == [i.map_ref for i in prog.insns]


def test_elfread_reads_a_clang_object(tmp_path):
    obj = tmp_path / "tcd.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(REPO / "bench/c/tail_call_dispatch.c"), "-o", str(obj)], check=True)
    read = {p.name: p for p in read_programs(obj.read_bytes())}
    assert sorted(read) == ["tcp_handler", "udp_handler", "xdp_dispatch"]
    assert {p.section for p in read.values()} == {"xdp"}  # three programs share one section
    dispatch_maps = [i.map_ref for i in read["xdp_dispatch"].insns if i.map_ref]
    assert dispatch_maps == ["proto_stats", "jt"]
    # clang leaves src_reg 0 on map loads; a relocation makes them map loads all the same.
    assert all(i.src == isa.PSEUDO_MAP_FD for i in read["xdp_dispatch"].insns if i.map_ref)
    # Slot counts as measured with clang 14 (see the task brief / docs/benchmarks.md).
    assert [isa.slot_count(list(read[n].insns)) for n in ("xdp_dispatch", "tcp_handler", "udp_handler")] \
        == [26, 11, 12]


@pytest.mark.parametrize("data, why", [
    (b"hello", "not an ELF"),
    (b"\x7fELF\x01\x01" + bytes(58), "64-bit"),
    (b"\x7fELF\x02\x01\x01" + bytes(11) + b"\x3e\x00" + bytes(44), "not BPF"),
])
def test_elfread_explains_what_it_cannot_read(data, why):
    with pytest.raises(ValueError, match=why):
        read_programs(data)


def test_programs_sharing_a_section_follow_each_other():
    unit, programs = unit_and_programs()
    shared = dataclasses.replace(programs[1], decl=dataclasses.replace(programs[1].decl, section="xdp"))
    data = write_object(unit, [programs[0], shared], SOURCE)
    elf = ELFFile(io.BytesIO(data))
    assert [s.name for s in elf.iter_sections() if s["sh_flags"] & 0x4] == ["xdp"]
    first = isa.encode(list(programs[0].insns))
    assert elf.get_section_by_name("xdp").data() == first + isa.encode(list(shared.insns))
    syms = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols()}
    assert (syms["counter"]["st_value"], syms["bumper"]["st_value"]) == (0, len(first))
    # bumper's map load is its 4th slot (after st, mov, add): offset counted from the section start
    rel = elf.get_section_by_name(".relxdp")
    assert [r["r_offset"] for r in rel.iter_relocations()][-1] == len(first) + 3 * 8
    read = read_programs(data)
    assert [(p.section, p.name) for p in read] == [("xdp", "counter"), ("xdp", "bumper")]
    assert [i.map_ref for i in read[1].insns] == [i.map_ref for i in shared.insns]
