"""Must show 1: the seed's dispatcher (clang build and our compiled seed) loads; all three programs and
both maps are pinned; the kernel's tags equal the offline tags; a second run changes nothing."""

from __future__ import annotations

import hashlib

from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program

PROGRAMS = {"xdp_dispatch", "tcp_handler", "udp_handler"}


def test_load_pins_programs_and_maps(dispatch_object, pin_dir):
    spec = objfile.read_object(dispatch_object)
    result = load.apply_load(load.plan_load(spec, str(pin_dir / "app")))

    assert result.changed
    assert set(result.programs) == PROGRAMS
    assert sorted(p.name for p in (pin_dir / "app").iterdir() if p.is_file()) == sorted(PROGRAMS)
    assert sorted(p.name for p in (pin_dir / "app" / "maps").iterdir()) == ["jt", "proto_stats"]
    for name in PROGRAMS:
        with Program.from_pin(str(pin_dir / "app" / name)) as prog:
            info = prog.info()
            assert info.type == sc.PROG_TYPE_XDP
            assert info.id == result.programs[name].id
            assert info.tag in spec.program(name).tags()
    with Map.from_pin(str(pin_dir / "app" / "maps" / "jt")) as jt:
        assert (jt.info.type, jt.info.key_size, jt.info.value_size, jt.info.max_entries) == (3, 4, 4, 256)
    with Map.from_pin(str(pin_dir / "app" / "maps" / "proto_stats")) as stats:
        assert (stats.info.type, stats.info.key_size, stats.info.value_size, stats.info.max_entries) == \
            (2, 4, 8, 3)


def test_kernel_tag_matches_independent_sha256(build, pin_dir):
    """The offline tag, recomputed here by hand (zeroed map imms, src_reg 1), equals the kernel's."""
    spec = objfile.read_object(build("tail_call_dispatch.c"))
    result = load.apply_load(load.plan_load(spec, str(pin_dir / "app")))
    for prog in spec.programs:
        insns = bytearray(prog.insns)
        for index, _map_name in prog.relocations:
            insns[index * 8 + 1] = 0x10 | (insns[index * 8 + 1] & 0x0F)
            insns[index * 8 + 4:index * 8 + 8] = bytes(4)
        assert hashlib.sha256(bytes(insns)).hexdigest()[:16] == result.programs[prog.name].tag


def test_second_load_is_unchanged(dispatch_object, pin_dir):
    spec = objfile.read_object(dispatch_object)
    first = load.apply_load(load.plan_load(spec, str(pin_dir / "app")))
    plan = load.plan_load(spec, str(pin_dir / "app"))

    assert not plan.changed
    assert {s.action for s in plan.maps} == {"reuse"}
    assert {s.action for s in plan.programs} == {"unchanged"}
    second = load.apply_load(plan)
    assert not second.changed
    assert {n: p.id for n, p in second.programs.items()} == {n: p.id for n, p in first.programs.items()}
    assert {n: m.id for n, m in second.maps.items()} == {n: m.id for n, m in first.maps.items()}


def test_map_pin_path_is_configurable(build, pin_dir):
    spec = objfile.read_object(build("tail_call_dispatch.c"))
    load.apply_load(load.plan_load(spec, str(pin_dir / "progs"), str(pin_dir / "shared")))
    assert sorted(p.name for p in (pin_dir / "shared").iterdir()) == ["jt", "proto_stats"]
    assert not (pin_dir / "progs" / "maps").exists()


def test_unload_removes_every_pin(build, pin_dir):
    spec = objfile.read_object(build("tail_call_dispatch.c"))
    load.apply_load(load.plan_load(spec, str(pin_dir / "app")))
    plan = load.plan_unload(str(pin_dir / "app"))
    assert len(plan.pins) == 5
    assert len(load.apply_unload(plan)) == 5
    assert not (pin_dir / "app").exists()
    assert not load.plan_unload(str(pin_dir / "app")).changed
