"""Objects from our ELF writer are accepted by the standard tools: bpftool/libbpf load them (the
kernel verifies the programs and our BTF), map dumps come out typed, and readelf,
llvm-objdump and ``bpftool btf dump`` parse them.

In: the hand-built unit of ``handmade`` written with ``elf.write_object``. Out: pass/fail.
Expected counts come from what the hand-written instructions do: ``counter`` adds 1 to
``stats[0]`` per run, then tail-calls ``jt[1]``; ``bumper`` adds 1 to ``stats[1]`` and drops.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map

from compiler.elf import write_object
from tests.kernel.harness import XDP_DROP, XDP_PASS, bpftool, bpftool_json, loaded
from tests.unit.compiler.handmade import SOURCE, unit_and_programs

FRAME = bytes(64)


@pytest.fixture
def obj_path(tmp_path) -> Path:
    path = tmp_path / "handmade.bpf.o"
    path.write_bytes(write_object(*unit_and_programs(), SOURCE))
    return path


def test_bpftool_loads_runs_and_dumps_typed_maps(obj_path, pin_dir):
    with loaded(obj_path, pin_dir) as obj:
        assert obj.programs == ["bumper", "counter"]
        assert obj.maps == ["jt", "stats"]
        for _run in range(3):
            assert obj.run("counter", FRAME) == XDP_PASS  # jt[1] empty: falls through
        # bpftool formats keys and values from our BTF: plain numbers, not byte lists.
        assert obj.typed_dump("stats") == {0: 3, 1: 0}

        obj.set_slot("jt", 1, "bumper")
        assert obj.run("counter", FRAME) == XDP_DROP  # the tail call now lands in bumper
        assert obj.typed_dump("stats") == {0: 4, 1: 1}
        assert obj.map("stats") == {0: 4, 1: 1}  # raw bytes agree with the typed view

        info = obj.map_info("stats")
        assert (info["type"], info["bytes_key"], info["bytes_value"], info["max_entries"]) == ("array", 4, 8, 2)
        assert info.get("btf_id")  # the kernel took our key/value BTF
        jt = obj.map_info("jt")
        assert (jt["type"], jt["bytes_key"], jt["bytes_value"], jt["max_entries"]) == ("prog_array", 4, 4, 4)


def test_kernel_reports_our_function_and_line_info(obj_path, pin_dir):
    with loaded(obj_path, pin_dir) as obj:
        out = bpftool("prog", "dump", "xlated", "pinned", str(obj.pins / "counter"), "linum")
    assert "int counter(struct xdp_md * ctx)" in out
    assert "(incf (getmap stats 0)) [file:handmade.lisp line_num:4 line_col:3]" in out


def test_bpftool_parses_our_btf(obj_path):
    types = bpftool_json("btf", "dump", "file", str(obj_path))["types"]
    by_name = {(t["kind"], t["name"]) for t in types}
    assert {("VAR", "stats"), ("VAR", "jt"), ("FUNC", "counter"), ("FUNC", "bumper"),
            ("DATASEC", ".maps")} <= by_name
    [datasec] = [t for t in types if t["kind"] == "DATASEC"]
    assert datasec["size"] == 64


def test_binutils_and_llvm_read_the_object(obj_path):
    readelf = subprocess.run(["readelf", "-a", "-W", str(obj_path)], check=False, capture_output=True, text=True)
    assert readelf.returncode == 0 and "warning" not in readelf.stderr.lower(), readelf.stderr
    assert "R_BPF_INSN_64" in readelf.stdout or "R_BPF_64_64" in readelf.stdout
    objdump = subprocess.run(["llvm-objdump", "-d", "-r", str(obj_path)], check=False, capture_output=True, text=True)
    assert objdump.returncode == 0 and not objdump.stderr, objdump.stderr
    assert "<counter>:" in objdump.stdout and "<bumper>:" in objdump.stdout
    assert "R_BPF_64_64\tstats" in objdump.stdout and "R_BPF_64_64\tjt" in objdump.stdout


def test_programs_sharing_a_section_load_and_run_separately(tmp_path, pin_dir):
    unit, programs = unit_and_programs()
    shared = dataclasses.replace(programs[1], decl=dataclasses.replace(programs[1].decl, section="xdp"))
    path = tmp_path / "shared.bpf.o"
    path.write_bytes(write_object(unit, [programs[0], shared], SOURCE))
    with loaded(path, pin_dir) as obj:
        assert obj.programs == ["bumper", "counter"]
        assert obj.run("bumper", FRAME) == XDP_DROP
        assert obj.run("counter", FRAME) == XDP_PASS
        assert obj.map("stats") == {0: 1, 1: 1}


# (defmap line, bpftool's type name, key size, value size, max entries, flags): every map type of
# reference §1.2, flags included, and the kernel's own account of each map it created.
MAP_TYPES = [
    ("(defmap h :type :hash :key-size 4 :value-size 8 :max-entries 4)", "hash", 4, 8, 4, 0),
    ("(defmap ar :type :array :key-size 4 :value-size 8 :max-entries 4 :map-flags 1024)", "array", 4, 8, 4, 1024),
    ("(defmap pa :type :prog-array :key-size 4 :value-size 4 :max-entries 4)", "prog_array", 4, 4, 4, 0),
    ("(defmap ph :type :percpu-hash :key-size 4 :value-size 8 :max-entries 4 :map-flags 1)", "percpu_hash",
     4, 8, 4, 1),
    ("(defmap pca :type :percpu-array :key-size 4 :value-size 8 :max-entries 4)", "percpu_array", 4, 8, 4, 0),
    ("(defmap st :type :stack-trace :key-size 4 :value-size 64 :max-entries 4)", "stack_trace", 4, 64, 4, 0),
    ("(defmap lru :type :lru-hash :key-size 8 :value-size 2 :max-entries 4)", "lru_hash", 8, 2, 4, 0),
    ("(defmap lpm :type :lpm-trie :key-size 8 :value-size 4 :max-entries 16 :map-flags 1)", "lpm_trie",
     8, 4, 16, 1),
    ("(defmap sm :type :sockmap :key-size 4 :value-size 4 :max-entries 4)", "sockmap", 4, 4, 4, 0),
    ("(defmap sh :type :sockhash :key-size 4 :value-size 4 :max-entries 4)", "sockhash", 4, 4, 4, 0),
    ("(defmap rb :type :ringbuf :max-entries 4096)", "ringbuf", 0, 0, 4096, 0),
    # flags on the last map: the reference's HEAD wrote a .maps slot too short for it
    ("(defmap last :type :hash :key-size 4 :value-size 4 :max-entries 4 :map-flags 1)", "hash", 4, 4, 4, 1),
]
MAP_USER = """(defprog conf ()
  (incf (getmap h 1)) (incf (getmap ph 1) 5) (incf (getmap pca 0) 2) (setf (getmap lru #x100000002) #x12345)
  (setf (getmap lpm #x0100000018) 7) (incf (getmap last 3))
  XDP_PASS)
"""


def test_every_map_type_loads_with_its_sizes_and_flags(pin_dir):
    source = "\n".join(line for line, *_fields in MAP_TYPES) + "\n" + MAP_USER
    with loaded(source, pin_dir) as obj:
        for line, kind, key, value, entries, flags in MAP_TYPES:
            info = obj.map_info(line.split()[1])
            assert (info["type"], info["bytes_key"], info["bytes_value"], info["max_entries"], info["flags"]) \
                == (kind, key, value, entries, flags), line
            with Map.from_id(info["id"]) as pinned:  # the loader (xdp_info) names it as bpftool does
                assert pinned.type_name == kind, line
        assert obj.run("conf", FRAME) == XDP_PASS
        assert obj.typed_dump("h") == {1: 1}
        assert obj.map("ph") == {1: 5}  # summed over CPUs; only one ran the program
        assert obj.map("pca") == {0: 2, 1: 0, 2: 0, 3: 0}
        assert obj.typed_dump("lru") == {0x100000002: 0x2345}  # 2-byte values keep 2 bytes
        # lpm key = u32 prefix length 0x18 = 24, then the first 4 data bytes: 01 00 00 00
        assert obj.map("lpm") == {0x0100000018: 7}
        assert obj.typed_dump("last") == {3: 1}
