"""Must show 1: the seed's dispatcher (clang build and our compiled seed) loads; all three programs and
both maps are pinned; the kernel's tags equal the offline tags; a second run changes nothing. Also the
other section kinds (xdp.frags with its flag, xdp/<name>, tc), an 8-byte-key map with a pinning
attribute, and BTF without any DATASEC."""

from __future__ import annotations

import hashlib

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import OwnerMismatchError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map, possible_cpus
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import MapSpec
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


def test_frags_tc_and_several_programs_per_section_load_as_their_sections_say(build, pin_dir):
    """loader_sections.c: two programs in 'xdp', one each in 'xdp.frags', 'xdp/tcp' and 'tc'. The frags
    flag is invisible in program info, so the jump table's owner check shows it: a frags program and
    a plain one cannot share a prog-array."""
    app = pin_dir / "app"
    load.apply_load(load.plan_load(objfile.read_object(build("loader_sections.c")), str(app)))
    kinds = {}
    for name in ("plain_pass", "plain_drop", "frags_pass", "named_pass", "tc_ok"):
        with Program.from_pin(str(app / name)) as prog:
            kinds[name] = prog.info().type
    assert kinds == {"plain_pass": sc.PROG_TYPE_XDP, "plain_drop": sc.PROG_TYPE_XDP, "frags_pass": sc.PROG_TYPE_XDP,
                     "named_pass": sc.PROG_TYPE_XDP, "tc_ok": sc.PROG_TYPE_SCHED_CLS}

    with Program.from_pin(str(app / "frags_pass")) as frags, Program.from_pin(str(app / "plain_pass")) as plain, \
            Program.from_pin(str(app / "named_pass")) as named:
        with Map.create(MapSpec("jt", sc.MAP_TYPE_PROG_ARRAY, 4, 4, 2)) as jt:
            jt.set(0, plain.fd)  # owner: XDP, BPF_XDP, no frags
            jt.set(1, named.fd)  # xdp/<name> is the same kind of program
            with pytest.raises(OwnerMismatchError, match="frags"):
                jt.set(1, frags.fd)
        with Map.create(MapSpec("jt", sc.MAP_TYPE_PROG_ARRAY, 4, 4, 2)) as jt:
            jt.set(0, frags.fd)  # owner: XDP with frags
            with pytest.raises(OwnerMismatchError):
                jt.set(1, plain.fd)


def test_wide_key_map_with_pinning_attribute_is_pinned_and_reused(build, pin_dir, frame):
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_maps.c"))
    first = load.apply_load(load.plan_load(spec, str(app)))
    with Map.from_pin(str(app / "maps" / "wide")) as wide:
        assert (wide.info.type, wide.info.key_size, wide.info.value_size, wide.info.flags) == (1, 8, 4, 1)
        assert wide.info.btf_key_type_id == spec.map("wide").btf_key_type_id  # created with its BTF types
        wide.update(0x100000001, 1)  # XDP_DROP under the full 8-byte key
        wide.update(1, 3)            # the low half alone must not match
        assert wide.typed_items() == {0x100000001: 1, 1: 3}
    with Program.from_pin(str(app / "frags_lookup")) as prog:
        assert prog.test_run(frame(6)).retval == 1

    plan = load.plan_load(spec, str(app))
    assert not plan.changed
    assert load.apply_load(plan).maps["wide"].id == first.maps["wide"].id


def test_object_whose_btf_has_no_datasec_loads_with_its_btf(build, pin_dir):
    result = load.apply_load(load.plan_load(objfile.read_object(build("loader_nodatasec.c")), str(pin_dir / "app")))
    assert result.btf_loaded and set(result.programs) == {"first", "second"}
    with Program.from_pin(str(pin_dir / "app" / "second")) as second:
        assert second.info().btf_id != 0  # loaded with func_info against the object's BTF
        assert second.test_run(bytes(64)).retval == 1


def test_ring_buffer_and_perf_event_array_load_and_are_reused(build, pin_dir, frame):
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_events.c"))
    assert (spec.map("events").key_size, spec.map("events").value_size) == (0, 0)
    assert (spec.map("perf_events").key_size, spec.map("perf_events").max_entries) == (4, 0)
    first = load.apply_load(load.plan_load(spec, str(app)))
    with Map.from_pin(str(app / "maps" / "events")) as events:
        assert (events.info.type, events.info.max_entries) == (sc.MAP_TYPE_RINGBUF, 4096)
    with Map.from_pin(str(app / "maps" / "perf_events")) as perf:
        assert perf.info.max_entries == possible_cpus()  # declared 0: one per possible CPU
    with Program.from_pin(str(app / "record_frames")) as prog:
        assert prog.test_run(frame(17)).retval == 2

    plan = load.plan_load(spec, str(app))
    assert not plan.changed  # the pinned perf event array's CPU count is what the spec asks for
    assert load.apply_load(plan).maps["events"].id == first.maps["events"].id
