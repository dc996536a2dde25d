"""Must show 3: reloading a changed object reuses the pinned maps (proto_stats counters and jump-table
entries survive); an incompatible pinned map is a clear error that changes nothing."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program

TCP = 6
XDP_DROP, XDP_PASS = 1, 2


def _load_and_wire(obj, app):
    result = load.apply_load(load.plan_load(objfile.read_object(obj), str(app)))
    with Map.from_pin(str(app / "maps" / "jt")) as jt, Program.from_pin(str(app / "tcp_handler")) as tcp:
        jt.set(TCP, tcp.fd)
    return result


def test_changed_object_reuses_maps_and_keeps_counters(build, pin_dir, frame):
    app = pin_dir / "app"
    v1 = _load_and_wire(build("loader_dispatch.c"), app)
    with Program.from_pin(str(app / "xdp_dispatch")) as dispatch:
        assert dispatch.test_run(frame(TCP), repeat=4).retval == XDP_PASS

    v2_spec = objfile.read_object(build("loader_dispatch.c", "HANDLER_VERDICT=XDP_DROP"))
    plan = load.plan_load(v2_spec, str(app))
    assert {s.name: s.action for s in plan.maps} == {"jt": "reuse", "proto_stats": "reuse"}
    assert {s.name: s.action for s in plan.programs} == \
        {"xdp_dispatch": "unchanged", "tcp_handler": "replace", "udp_handler": "replace"}
    v2 = load.apply_load(plan)

    assert {n: m.id for n, m in v2.maps.items()} == {n: m.id for n, m in v1.maps.items()}
    assert v2.programs["tcp_handler"].id != v1.programs["tcp_handler"].id
    with Program.from_pin(str(app / "tcp_handler")) as tcp:
        assert tcp.id == v2.programs["tcp_handler"].id
    with Map.from_pin(str(app / "maps" / "proto_stats")) as stats:
        assert stats.typed_items() == {0: 4, 1: 4, 2: 0}
    with Map.from_pin(str(app / "maps" / "jt")) as jt:
        assert jt.entries() == {TCP: v1.programs["tcp_handler"].id}  # slots change only by xdp_prog_array
        with Program.from_pin(str(app / "tcp_handler")) as tcp:
            jt.set(TCP, tcp.fd)
    with Program.from_pin(str(app / "xdp_dispatch")) as dispatch:
        assert dispatch.test_run(frame(TCP), repeat=3).retval == XDP_DROP
    with Map.from_pin(str(app / "maps" / "proto_stats")) as stats:
        assert stats.typed_items() == {0: 7, 1: 7, 2: 0}


def test_incompatible_pinned_map_is_an_error_and_changes_nothing(build, pin_dir, frame, snapshot):
    app = pin_dir / "app"
    _load_and_wire(build("loader_dispatch.c"), app)
    with Program.from_pin(str(app / "xdp_dispatch")) as dispatch:
        dispatch.test_run(frame(TCP), repeat=2)
    before = snapshot(pin_dir)

    spec = objfile.read_object(build("loader_dispatch.c", "STATS_ENTRIES=4", "HANDLER_VERDICT=XDP_DROP"))
    plan = load.plan_load(spec, str(app))
    assert [s.action for s in plan.maps] == ["reuse", "error"]
    assert plan.errors == [f"map 'proto_stats' pinned at {app}/maps/proto_stats: max_entries is 3, "
                           "the object wants 4"]
    with pytest.raises(BpfError, match="proto_stats.*max_entries is 3, the object wants 4"):
        load.apply_load(plan)

    assert snapshot(pin_dir) == before
    with Map.from_pin(str(app / "maps" / "proto_stats")) as stats:
        assert stats.typed_items() == {0: 2, 1: 2, 2: 0}


def test_replace_incompatible_maps_recreates_only_those(build, pin_dir):
    app = pin_dir / "app"
    v1 = _load_and_wire(build("loader_dispatch.c"), app)
    spec = objfile.read_object(build("loader_dispatch.c", "STATS_ENTRIES=4"))
    plan = load.plan_load(spec, str(app), replace_incompatible_maps=True)
    assert {s.name: s.action for s in plan.maps} == {"jt": "reuse", "proto_stats": "replace"}
    # every program uses proto_stats, so every program is reloaded against the new map
    assert {s.action for s in plan.programs} == {"replace"}
    v2 = load.apply_load(plan)
    assert v2.maps["jt"].id == v1.maps["jt"].id
    assert v2.maps["proto_stats"].id != v1.maps["proto_stats"].id
    with Map.from_pin(str(app / "maps" / "proto_stats")) as stats:
        assert stats.info.max_entries == 4
