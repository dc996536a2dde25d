"""The object reader on clang objects built in the session (expected values come from the C sources
and from the clang slot counts quoted in the project brief, not from the reader)."""

from __future__ import annotations

import io
import random
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import btf, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import ObjectFileError
from elftools.elf.elffile import ELFFile

from tests.testdata.build import build_c


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    out = tmp_path_factory.mktemp("objs")
    return lambda name, *defines: build_c(name, out, *defines)


def test_dispatch_object(objects):
    spec = objfile.read_object(objects("tail_call_dispatch.c"))
    assert spec.license == "GPL"
    assert [(p.name, p.section, p.slots) for p in spec.programs] == \
        [("xdp_dispatch", "xdp", 26), ("tcp_handler", "xdp", 11), ("udp_handler", "xdp", 12)]
    for p in spec.programs:
        assert (p.prog_type, p.expected_attach_type, p.prog_flags) == (6, 37, 0)
        for index, _name in p.relocations:
            assert p.insns[index * 8] == 0x18  # every relocation is a map ld_imm64
    assert [name for _index, name in spec.program("xdp_dispatch").relocations] == ["proto_stats", "jt"]
    assert spec.program("xdp_dispatch").map_names == ["proto_stats", "jt"]
    assert [name for _index, name in spec.program("tcp_handler").relocations] == ["proto_stats"]
    jt, stats = spec.maps
    assert (jt.name, jt.type, jt.key_size, jt.value_size, jt.max_entries) == ("jt", 3, 4, 4, 256)
    assert (jt.btf_key_type_id, jt.btf_value_type_id) == (0, 0)
    assert (stats.name, stats.type, stats.key_size, stats.value_size, stats.max_entries) == \
        ("proto_stats", 2, 4, 8, 3)
    types = spec.types
    assert types.size(stats.btf_key_type_id) == 4 and types.size(stats.btf_value_type_id) == 8


def test_ext_info_is_program_relative(objects):
    spec = objfile.read_object(objects("tail_call_dispatch.c"))
    for p in spec.programs:
        assert p.func_info.count == 1
        assert struct.unpack_from("<I", p.func_info.data, 0)[0] == 0  # first func_info at insn 0
        offsets = [struct.unpack_from("<I", p.line_info.data, i * 16)[0] for i in range(p.line_info.count)]
        assert p.line_info.count > 0 and all(0 <= off < p.slots for off in offsets)


def test_btf_datasec_fixed_up(objects):
    spec = objfile.read_object(objects("tail_call_dispatch.c"))
    fixed = btf.Btf.parse(spec.btf).find(btf.DATASEC, ".maps")
    # two 32-byte map definitions (4 pointer members each), jt at 0 and proto_stats at 32
    assert fixed.size_or_type == 64
    assert [(fixed_var.offset, fixed_var.size) for fixed_var in fixed.members] == [(0, 32), (32, 32)]


def test_section_kinds(objects):
    spec = objfile.read_object(objects("loader_sections.c"))
    got = {p.name: (p.section, p.prog_type, p.expected_attach_type, p.prog_flags) for p in spec.programs}
    assert got == {
        "plain_pass": ("xdp", 6, 37, 0), "plain_drop": ("xdp", 6, 37, 0),
        "frags_pass": ("xdp.frags", 6, 37, 0x20), "named_pass": ("xdp/tcp", 6, 37, 0),
        "tc_ok": ("tc", 3, 0, 0)}
    assert spec.license == "Dual BSD/GPL"
    assert spec.maps == []


def test_bytes_and_path_give_the_same_spec(objects):
    path = objects("tail_call_dispatch.c")
    a, b = objfile.read_object(path), objfile.read_object(path.read_bytes())
    assert [(p.name, p.insns, p.relocations) for p in a.programs] == \
        [(p.name, p.insns, p.relocations) for p in b.programs]
    assert a.btf == b.btf


@pytest.mark.parametrize("case, message", [
    ("CASE_LEGACY_MAPS", "legacy 'maps' section"),
    ("CASE_GLOBAL_VAR", r"section 'xdp' offset 0x[0-9a-f]+: reference to 'hits' in '.bss' is not a map"),
    ("CASE_BAD_SECTION", "section 'socket': unknown program type"),
])
def test_unsupported_objects(objects, case, message):
    path = objects("loader_unsupported.c", case)
    with pytest.raises(ObjectFileError, match=message) as caught:
        objfile.read_object(path)
    assert str(caught.value).startswith(str(path))


def test_not_a_bpf_object():
    with pytest.raises(ObjectFileError, match="malformed object"):
        objfile.read_object(b"not an elf file at all")
    with pytest.raises(ObjectFileError, match="not a BPF object"):
        objfile.read_object("/bin/true")


def test_unreadable_path_is_named_with_the_reason(tmp_path):
    missing = tmp_path / "nope.bpf.o"
    with pytest.raises(ObjectFileError) as caught:
        objfile.read_object(missing)
    assert str(caught.value) == f"{missing}: cannot read the object file: No such file or directory"
    with pytest.raises(ObjectFileError, match="is a directory, not a regular file"):
        objfile.read_object(tmp_path)


def test_truncated_or_corrupted_objects_are_object_file_errors(objects):
    """Every prefix, and seeded random byte flips, of a real object: an ObjectFileError naming the
    file or a parse, never another exception, a hang or a huge allocation."""
    data = objects("tail_call_dispatch.c").read_bytes()
    rnd = random.Random(3)
    corrupted = []
    for _variant in range(400):
        buf = bytearray(data)
        for _flip in range(rnd.randint(1, 4)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        corrupted.append(bytes(buf))
    for blob in [data[:n] for n in range(0, len(data), 13)] + corrupted:
        try:
            objfile.read_object(blob)
        except ObjectFileError as exc:
            assert str(exc).startswith("<bytes>: ")


def test_relocation_against_a_missing_symbol_is_named(objects):
    data = bytearray(objects("tail_call_dispatch.c").read_bytes())
    elf = ELFFile(io.BytesIO(bytes(data)))
    rel = elf.get_section_by_name(".relxdp")
    first = rel["sh_offset"]  # Elf64_Rel {r_offset, r_info}: the symbol index is r_info's high half
    struct.pack_into("<I", data, first + 12, 9999)
    with pytest.raises(ObjectFileError, match=r"section 'xdp' offset 0x[0-9a-f]+: relocation names symbol 9999"):
        objfile.read_object(bytes(data))


@pytest.mark.parametrize("define, message", [
    ("CASE_RODATA", r"section 'xdp' offset 0x[0-9a-f]+: reference to '\S+' in '\.rodata[^']*' is not a map"),
    ("CASE_DATA", r"section 'xdp' offset 0x[0-9a-f]+: reference to 'counter' in '.data' is not a map"),
    ("CASE_EXTERN", r"section 'xdp' offset 0x[0-9a-f]+: reference to 'LINUX_KERNEL_VERSION', which is not "
                    "defined in the object"),
    ("CASE_CALL", r"section 'xdp' offset 0x[0-9a-f]+: unsupported relocation type 10 against 'leaf'"),
    ("CASE_BAD_PINNING", "map 'pinned': pinning 2 is not supported"),
])
def test_unsupported_references_name_section_and_offset(objects, define, message):
    with pytest.raises(ObjectFileError, match=message):
        objfile.read_object(objects("loader_unsupported.c", define))


def test_maps_with_wide_keys_pinning_and_flags(objects):
    spec = objfile.read_object(objects("loader_maps.c"))
    wide = spec.map("wide")
    assert (wide.type, wide.key_size, wide.value_size, wide.max_entries, wide.flags, wide.pinning) == \
        (1, 8, 4, 16, 1, 1)
    assert spec.types.size(wide.btf_key_type_id) == 8
    assert spec.program("frags_lookup").prog_flags == 0x20
    assert spec.program("frags_lookup").map_names == ["wide"]


def test_btf_without_datasec_is_kept_as_it_is(objects):
    spec = objfile.read_object(objects("loader_nodatasec.c"))
    assert [p.name for p in spec.programs] == ["first", "second"]
    assert spec.license == "" and spec.maps == []
    assert spec.btf is not None and btf.Btf.parse(spec.btf).find(btf.DATASEC, "license") is None
