"""Program and map names longer than the 15 characters the kernel keeps (issue 9).

The object keeps the whole name (ELF symbols, BTF FUNC and VAR names), so libbpf/bpftool pin
each program and map under its whole name, while the kernel truncates the object name it
stores to 15 characters. Two programs and two maps whose names share their first 15
characters are four distinct objects that each do their own work.
"""

from __future__ import annotations

import os

from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc

from compiler.elfread import read_programs
from tests.kernel.harness import XDP_DROP, XDP_PASS, bpftool_json, compile_text, loaded

SOURCE = """(defmap counters-for-ingress-a :type :array :key-size 4 :value-size 8 :max-entries 1)
(defmap counters-for-ingress-b :type :array :key-size 4 :value-size 8 :max-entries 1)
(defprog classify-and-count-tcp (:section "xdp/tcp")
  (incf (getmap counters-for-ingress-a 0))
  XDP_PASS)
(defprog classify-and-count-udp (:section "xdp/udp")
  (incf (getmap counters-for-ingress-b 0) 2)
  XDP_DROP)
"""
PROGS = ("classify_and_count_tcp", "classify_and_count_udp")
MAPS = ("counters_for_ingress_a", "counters_for_ingress_b")


def test_object_keeps_whole_names(tmp_path):
    elf = compile_text(SOURCE)
    assert sorted(p.name for p in read_programs(elf)) == list(PROGS)
    path = tmp_path / "long.bpf.o"
    path.write_bytes(elf)
    names = {t["name"] for t in bpftool_json("btf", "dump", "file", str(path))["types"]}
    assert set(PROGS) | set(MAPS) <= names


def test_names_sharing_fifteen_characters_are_distinct_objects(pin_dir):
    with loaded(SOURCE, pin_dir) as obj:
        assert obj.programs == list(PROGS)
        assert obj.maps == list(MAPS)
        assert obj.run(PROGS[0], bytes(64)) == XDP_PASS
        assert obj.run(PROGS[1], bytes(64)) == XDP_DROP
        assert obj.map(MAPS[0]) == {0: 1}
        assert obj.map(MAPS[1]) == {0: 2}
        # what the kernel stores (bpftool would show the whole name again, from the BTF)
        progs = [_kernel_info(sc.prog_info, obj.pins / p) for p in PROGS]
        assert [p.name for p in progs] == ["classify_and_co"] * 2
        assert progs[0].id != progs[1].id
        maps = [_kernel_info(sc.map_info, obj.pins / "maps" / m) for m in MAPS]
        assert [m.name for m in maps] == ["counters_for_in"] * 2
        assert maps[0].id != maps[1].id


def _kernel_info(info, path):
    fd = sc.obj_get(str(path))
    try:
        return info(fd)
    finally:
        os.close(fd)


def test_our_loader_pins_them_under_their_whole_names(pin_dir, tmp_path):
    path = tmp_path / "long.bpf.o"
    path.write_bytes(compile_text(SOURCE))
    result = load.apply_load(load.plan_load(objfile.read_object(str(path)), str(pin_dir / "app")))
    assert set(result.programs) == set(PROGS) and set(result.maps) == set(MAPS)
    for name, prog in result.programs.items():
        assert prog.pin == str(pin_dir / "app" / name)
        assert _kernel_info(sc.prog_info, prog.pin).name == name[:15]
    assert len({m.id for m in result.maps.values()}) == 2
