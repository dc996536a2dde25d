"""Objects with bpf_loop callbacks, read back with pyelftools and our ``elfread``: the callbacks sit
in ``.text`` as local functions after a local section symbol, each program loads a callback's
address with an ``ld_imm64`` relocated against ``.text`` whose immediate is the callback's offset
(as clang emits it), and BTF gives every callback a static FUNC with func_info and line_info in
``.text`` (what libbpf and the kernel need to load it)."""

from __future__ import annotations

import io
import struct

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

import compiler
from compiler import isa
from compiler.elfread import read_programs

SOURCE = """(defmap res :type :array :key-size 4 :value-size 8 :max-entries 4)
(defprog outer ()
  (let ((s 0))
    (dotimes (i 64)
      (dotimes (j 64)
        (dotimes (k 64)
          (dotimes (l 64) (incf s (logand (+ i j k l) 7))))))
    (setf (getmap res 0) s))
  2)
(defprog flat (:section "xdp/flat")
  (let ((s 0)) (dotimes (i 1000000) (incf (getmap res 1)) (incf s i)) s))
"""


def compiled():
    obj = compiler.compile_source(SOURCE, "loops.lisp")
    return obj, ELFFile(io.BytesIO(obj.elf))


def test_callbacks_are_local_functions_in_text():
    obj, elf = compiled()
    names = [s.name for p in obj.programs for s in p.subprograms]
    assert names == ["outer_loop1", "outer_loop2", "flat_loop1"]
    symtab = elf.get_section_by_name(".symtab")
    symbols = list(symtab.iter_symbols())
    text = elf.get_section_index(".text")
    assert symbols[1]["st_info"]["type"] == "STT_SECTION" and symbols[1]["st_shndx"] == text
    funcs = [s for s in symbols if s["st_info"]["type"] == "STT_FUNC"]
    local = [s for s in funcs if s["st_info"]["bind"] == "STB_LOCAL"]
    assert [s.name for s in local] == names and all(s["st_shndx"] == text for s in local)
    assert symtab["sh_info"] == 1 + 1 + len(local)  # the first global symbol follows the locals
    starts = [s["st_value"] for s in local]
    sizes = [s["st_size"] for s in local]
    assert starts == [sum(sizes[:k]) for k in range(len(sizes))]
    assert sum(sizes) == elf.get_section_by_name(".text")["sh_size"]


def test_callback_addresses_are_relocated_against_text_with_the_offset_inline():
    obj, elf = compiled()
    symbols = list(elf.get_section_by_name(".symtab").iter_symbols())
    start = {s.name: s["st_value"] for s in symbols if s["st_info"]["type"] == "STT_FUNC"}
    loads = 0
    for section in elf.iter_sections():
        if not isinstance(section, RelocationSection):
            continue
        code = elf.get_section(section["sh_info"]).data()
        for r in section.iter_relocations():
            sym = symbols[r["r_info_sym"]]
            if sym["st_info"]["type"] != "STT_SECTION":
                continue
            opcode, regs, _off, imm = struct.unpack_from("<BBhi", code, r["r_offset"])
            assert opcode == 0x18 and regs >> 4 == isa.PSEUDO_FUNC and r["r_info_type"] == 1
            assert imm in start.values()
            loads += 1
    assert loads == 3  # outer -> loop1, loop1 -> loop2 (from .rel.text), flat -> loop1
    assert elf.get_section_by_name(".rel.text") is not None


def test_elfread_names_the_callbacks_and_their_loads():
    obj, _elf = compiled()
    programs = {p.name: p for p in read_programs(obj.elf)}
    assert {p.section for p in programs.values()} == {"xdp", "xdp/flat", ".text"}
    refs = {name: [i.func_ref for i in p.insns if i.func_ref] for name, p in programs.items()}
    assert refs == {"outer": ["outer_loop1"], "outer_loop1": ["outer_loop2"], "outer_loop2": [],
                    "flat": ["flat_loop1"], "flat_loop1": []}
    assert "func[outer_loop2]" in "\n".join(isa.disassemble(list(programs["outer_loop1"].insns)))


def test_btf_has_a_static_func_and_ext_info_for_each_callback():
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf import btf

    obj, elf = compiled()
    types = btf.Btf.parse(elf.get_section_by_name(".BTF").data())
    funcs = {types.type(i).name: types.type(i) for i in range(1, len(types.types))
             if types.type(i).kind == btf.FUNC}
    assert set(funcs) == {"outer", "flat", "outer_loop1", "outer_loop2", "flat_loop1"}
    assert [funcs[n].vlen for n in ("outer", "outer_loop1")] == [1, 0]  # linkage: global, static
    func_info, line_info = btf.parse_ext(elf.get_section_by_name(".BTF.ext").data(), types)
    symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    text_funcs = [struct.unpack_from("<I", r)[0] for r in func_info[".text"].records]
    assert text_funcs == [symbols["outer_loop1"], symbols["outer_loop2"], symbols["flat_loop1"]]
    text_lines = {struct.unpack_from("<I", r)[0] for r in line_info[".text"].records}
    assert set(text_funcs) <= text_lines  # each callback starts with a line record


def test_our_loader_links_each_program_with_its_callbacks():
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf import objfile

    obj, _elf = compiled()
    spec = objfile.read_object(obj.elf)
    for prog in obj.programs:
        linked = spec.program(prog.decl.name)
        assert linked.slots == prog.slots  # main code and every callback it reaches
        assert linked.func_info.count == 1 + len(prog.subprograms)
