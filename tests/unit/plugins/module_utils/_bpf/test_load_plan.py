"""load.decide: the read-only plan from a spec and a (fake) pinned state, without the kernel."""

from __future__ import annotations

import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, tag
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import (
    MapSpec,
    ObjectSpec,
    ProgramSpec,
)

APP, MAPS = "/sys/fs/bpf/app", "/sys/fs/bpf/app/maps"
LD_MAP = struct.pack("<BBhi", 0x18, 1, 0, 0) + bytes(8)
EXIT = struct.pack("<BBhi", 0x95, 0, 0, 0)


def _spec(handler_insns=LD_MAP + EXIT, stats_entries=3):
    progs = [ProgramSpec("dispatch", "xdp", LD_MAP + LD_MAP + EXIT, 6, 37, 0, [(0, "stats"), (2, "jt")]),
             ProgramSpec("handler", "xdp", handler_insns, 6, 37, 0, [(0, "stats")])]
    maps = [MapSpec("jt", 3, 4, 4, 256), MapSpec("stats", 2, 4, 8, stats_entries)]
    return ObjectSpec("obj.o", "GPL", progs, maps)


def _map_info(map_id, spec):
    return sc.MapInfo(spec.type, map_id, spec.key_size, spec.value_size, spec.max_entries, spec.flags,
                      spec.name, 0, 0, 0)


def _pinned(spec, owner=6, tags=None, prog_type=6):
    """State as if ``spec`` had been loaded: maps id 10, 11; programs id 20, 21 using them."""
    state = load.PinState()
    ids = {}
    for map_id, m in enumerate(spec.maps, start=10):
        ids[m.name] = map_id
        state.maps[m.name] = load.PinnedMap(f"{MAPS}/{m.name}", _map_info(map_id, m),
                                            owner if m.type == 3 else None)
    for prog_id, p in enumerate(spec.programs, start=20):
        kernel_tag = (tags or {}).get(p.name) or tag.program_tag(p.insns, map_loads=[i for i, _name in p.relocations])
        info = sc.ProgInfo(prog_type, prog_id, kernel_tag, p.name[:15], [ids[n] for n in p.map_names])
        state.programs[p.name] = load.PinnedProgram(f"{APP}/{p.name}", info)
    return state


def _actions(plan):
    return ({s.name: s.action for s in plan.maps}, {s.name: s.action for s in plan.programs})


def test_nothing_pinned_creates_and_loads_everything():
    plan = load.decide(_spec(), load.PinState(), APP, MAPS)
    assert _actions(plan) == ({"jt": "create", "stats": "create"}, {"dispatch": "load", "handler": "load"})
    assert plan.changed and plan.errors == []
    assert [s.pin for s in plan.programs] == [f"{APP}/dispatch", f"{APP}/handler"]
    assert [s.pin for s in plan.maps] == [f"{MAPS}/jt", f"{MAPS}/stats"]


def test_same_object_is_unchanged():
    plan = load.decide(_spec(), _pinned(_spec()), APP, MAPS)
    assert _actions(plan) == ({"jt": "reuse", "stats": "reuse"}, {"dispatch": "unchanged", "handler": "unchanged"})
    assert not plan.changed


def test_sha1_tag_from_an_older_kernel_is_recognised():
    spec = _spec()
    old = {p.name: tag.program_tag(p.insns, "sha1", [i for i, _name in p.relocations]) for p in spec.programs}
    assert not load.decide(spec, _pinned(spec, tags=old), APP, MAPS).changed


def test_changed_handler_is_replaced_and_maps_reused():
    new = _spec(handler_insns=LD_MAP + struct.pack("<BBhi", 0xB7, 0, 0, 1) + EXIT)
    plan = load.decide(new, _pinned(_spec()), APP, MAPS)
    assert _actions(plan) == ({"jt": "reuse", "stats": "reuse"}, {"dispatch": "unchanged", "handler": "replace"})
    step = plan.programs[1]
    assert step.current_id == 21 and step.reason.startswith("instructions changed")


def test_incompatible_map_is_an_error_unless_replacing():
    plan = load.decide(_spec(stats_entries=4), _pinned(_spec()), APP, MAPS)
    assert _actions(plan)[0] == {"jt": "reuse", "stats": "error"}
    assert plan.errors == [f"map 'stats' pinned at {MAPS}/stats: max_entries is 3, the object wants 4"]

    plan = load.decide(_spec(stats_entries=4), _pinned(_spec()), APP, MAPS, replace_incompatible_maps=True)
    assert _actions(plan) == ({"jt": "reuse", "stats": "replace"}, {"dispatch": "replace", "handler": "replace"})
    assert plan.errors == []


def test_prog_array_owned_by_other_program_type_is_incompatible():
    plan = load.decide(_spec(), _pinned(_spec(), owner=sc.PROG_TYPE_SCHED_CLS), APP, MAPS)
    assert plan.maps[0].action == "error"
    assert "owned by sched_cls programs" in plan.maps[0].reason


def test_wrong_kind_at_a_pin_is_an_error():
    state = load.PinState(other={f"{MAPS}/jt": "program", f"{APP}/handler": "map"})
    plan = load.decide(_spec(), state, APP, MAPS)
    assert plan.errors == [f"map 'jt' pinned at {MAPS}/jt: a program is pinned there, not a map",
                           f"program 'handler' pinned at {APP}/handler: a map is pinned there, not a program"]


def test_program_of_another_type_is_replaced():
    plan = load.decide(_spec(), _pinned(_spec(), prog_type=3, owner=6), APP, MAPS)
    assert {s.action for s in plan.programs} == {"replace"}


def _bigger_jt():
    spec = _spec()
    spec.maps[0] = MapSpec("jt", 3, 4, 4, 512)
    return spec


def test_prog_array_in_use_is_never_replaced():
    state = _pinned(_spec())
    state.maps["jt"].users = [(20, "dispatch"), (30, "other_disp")]
    plan = load.decide(_bigger_jt(), state, APP, MAPS, replace_incompatible_maps=True)
    assert _actions(plan)[0] == {"jt": "error", "stats": "reuse"}
    reason = plan.maps[0].reason
    assert reason.startswith("max_entries is 256, the object wants 512; this prog-array is not re-created")
    assert "dispatch (id 20), other_disp (id 30)" in reason and "another pin_path" in reason
    with pytest.raises(BpfError) as caught:
        plan.check()
    assert "replace_incompatible_maps re-creates" not in str(caught.value)


def test_prog_array_nobody_uses_is_replaced_when_asked():
    plan = load.decide(_bigger_jt(), _pinned(_spec()), APP, MAPS, replace_incompatible_maps=True)
    assert _actions(plan) == ({"jt": "replace", "stats": "reuse"}, {"dispatch": "replace", "handler": "unchanged"})
    without = load.decide(_bigger_jt(), _pinned(_spec()), APP, MAPS)
    with pytest.raises(BpfError, match="replace_incompatible_maps re-creates incompatible maps"):
        without.check()
