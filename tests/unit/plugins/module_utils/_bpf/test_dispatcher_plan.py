"""dispatcher.plan: which generation goes live, how interfaces get there, what is pruned, swept or refused,
from a desired state and a host described by hand (no kernel)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import HookView, RecordedAttachment
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.generations import (
    GenArray,
    Generation,
    GenProgram,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.layout import Layout
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.plan import (
    Desired,
    HostState,
    Interface,
    PlanError,
    make_plan,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netlink import XdpState
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import (
    MapSpec,
    ObjectSpec,
    ProgramSpec,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pinned import Pinned

ROOT = "/sys/fs/bpf/app"
LAYOUT = Layout(ROOT)
LD_MAP = struct.pack("<BBhi", 0x18, 1, 0, 0) + bytes(8)
EXIT = struct.pack("<BBhi", 0x95, 0, 0, 0)
IFINDEX, NETNS_INO = 7, 4026532000
STATS_ID = 10


def mov_r0(value):
    return struct.pack("<BBhi", 0xB7, 0, 0, value)


def spec(tcp_value=2):
    progs = [ProgramSpec("dispatch", "xdp", LD_MAP + LD_MAP + EXIT, 6, 37, 0, [(0, "stats"), (2, "jt")]),
             ProgramSpec("tcp", "xdp/tcp", LD_MAP + mov_r0(tcp_value) + EXIT, 6, 37, 0, [(0, "stats")]),
             ProgramSpec("udp", "xdp/udp", LD_MAP + mov_r0(2) + EXIT, 6, 37, 0, [(0, "stats")])]
    maps = [MapSpec("jt", sc.MAP_TYPE_PROG_ARRAY, 4, 4, 256), MapSpec("stats", sc.MAP_TYPE_ARRAY, 4, 8, 3)]
    return ObjectSpec("obj.o", "GPL", progs, maps)


def generation(number, obj=None, stats_id=STATS_ID, slots=None, complete=True, first_id=None):
    """Generation ``number`` as if ``obj`` had been loaded there: program ids number*100 + 0, 1, 2."""
    obj = obj or spec()
    base = first_id or number * 100
    array_id = base + 50
    gen = Generation(number, LAYOUT.generation(number), record_id=base + 99 if complete else 0,
                     record={"schema": 1, "programs": {}, "dispatcher": "dispatch", "jump_table": "jt"} if complete else None)
    for i, p in enumerate(obj.programs):
        maps = tuple(array_id if m == "jt" else stats_id for m in p.map_names)
        gen.programs[p.name] = GenProgram(p.name, LAYOUT.program(number, p.name), base + i, sorted(p.tags())[0], 6, maps)
    entries = {6: base + 1, 17: base + 2} if slots is None else slots
    gen.arrays["jt"] = GenArray("jt", LAYOUT.array(number, "jt"), array_id, 256, entries)
    return gen


def shared(stats_id=STATS_ID):
    state = load.PinState()
    if stats_id:
        info = sc.MapInfo(sc.MAP_TYPE_ARRAY, stats_id, 4, 8, 3, 0, "stats", 0, 0, 0)
        state.maps["stats"] = load.PinnedMap(f"{ROOT}/maps/stats", info)
    else:
        state.maps["stats"] = None
    return state


def host(*generations, current=None, previous=None, legacy=None, records=(), stats_id=STATS_ID, strays=()):
    gens = {g.number: g for g in generations}
    return HostState(LAYOUT, gens, legacy, current, previous, list(strays), list(records), shared(stats_id))


@dataclass
class Hook:
    """A fake kernel for attach planning: one hook and the programs pinned under the root."""

    state: XdpState
    pins: dict = field(default_factory=dict)

    def hook(self, interface, netns):
        return HookView(IFINDEX, interface if isinstance(interface, str) else "veth0", self.state)

    def netns_id(self, netns):
        return NETNS_INO

    def pinned(self, path):
        return self.pins.get(path)

    def owned_prog_ids(self, directory):
        return {p.prog_id for path, p in self.pins.items() if path.startswith(directory + "/")}

    def xdp_link(self, ifindex, prog_id):
        return None


def hook(prog_id=0, *generations):
    state = XdpState(IFINDEX, "generic" if prog_id else None, prog_id, skb_id=prog_id)
    pins = {}
    for gen in generations:
        for p in gen.programs.values():
            pins[p.path] = Pinned(p.path, "prog", p.id, p.id)
    return Hook(state, pins)


def desired(obj=None, state="present", **kw):
    kw.setdefault("interfaces", [Interface("veth0", "ns1", "generic")])
    return Desired(state, ROOT, "dispatch", "jt", {6: "tcp", 17: "udp"}, spec=obj or spec(), **kw)


def test_a_fresh_host_gets_generation_1_attached():
    plan = make_plan(desired(), host(stats_id=0), hook())
    assert (plan.target, plan.new_generation, plan.current_after, plan.previous_after) == (1, True, 1, None)
    assert [m.action for m in plan.load.maps] == ["create", "create"]
    assert plan.load.maps[0].pin == f"{ROOT}/gen/1/maps/jt" and plan.load.maps[1].pin == f"{ROOT}/maps/stats"
    assert [(p.action, p.program_pin) for p in plan.attach] == [("attach", f"{ROOT}/gen/1/progs/dispatch")]
    assert plan.changed and not plan.prune


def test_the_live_generation_matching_everything_changes_nothing():
    gen1 = generation(1)
    plan = make_plan(desired(), host(gen1, current=1), hook(100, gen1))
    assert (plan.target, plan.new_generation, plan.changed) == (1, False, False)
    assert [p.action for p in plan.attach] == ["noop"]


def test_a_changed_handler_makes_a_new_generation_and_the_live_one_previous():
    gen1 = generation(1)
    plan = make_plan(desired(spec(tcp_value=1)), host(gen1, current=1), hook(100, gen1))
    assert (plan.target, plan.new_generation, plan.previous_after) == (2, True, 1)
    assert [(p.action, p.previous_prog_id) for p in plan.attach] == [("replace", 100)]
    assert [m.action for m in plan.load.maps] == ["create", "reuse"]


def test_the_oldest_generation_is_pruned_beyond_keep_generations():
    gens = generation(1, spec(tcp_value=0)), generation(2, spec(tcp_value=1))
    plan = make_plan(desired(), host(*gens, current=2, previous=1), hook(200, *gens))
    assert (plan.target, plan.previous_after, plan.prune) == (3, 2, [1])
    plan = make_plan(desired(keep_generations=3), host(*gens, current=2, previous=1), hook(200, *gens))
    assert plan.prune == []
    plan = make_plan(desired(keep_generations=1), host(*gens, current=2, previous=1), hook(200, *gens))
    assert (plan.prune, plan.previous_after) == ([1, 2], None)


def test_a_kept_generation_that_matches_goes_live_without_loading():
    gens = generation(1), generation(2, spec(tcp_value=1))
    plan = make_plan(desired(), host(*gens, current=2, previous=1), hook(200, *gens))
    assert (plan.target, plan.new_generation, plan.load) == (1, False, None)
    assert [(p.action, p.program_pin) for p in plan.attach] == [("replace", f"{ROOT}/gen/1/progs/dispatch")]
    assert (plan.current_after, plan.previous_after, plan.prune) == (1, 2, [])


@pytest.mark.parametrize("change", ["map re-created", "slots", "missing program", "attach type"])
def test_a_generation_that_differs_in_anything_but_tags_is_not_reused(change):
    gen1 = generation(1)
    stats_id = STATS_ID
    if change == "map re-created":
        stats_id = 11
    elif change == "slots":
        gen1.arrays["jt"] = GenArray("jt", gen1.arrays["jt"].path, 150, 256, {6: 101})
    elif change == "missing program":
        del gen1.programs["udp"]
    else:
        gen1.record["programs"]["tcp"] = {"attach_type": 0, "flags": 0}
    plan = make_plan(desired(), host(gen1, current=1, stats_id=stats_id), hook(100, gen1))
    assert (plan.target, plan.new_generation) == (2, True)


def test_previous_goes_back_and_fails_clearly_without_one():
    gens = generation(1), generation(2, spec(tcp_value=1))
    plan = make_plan(Desired("previous", ROOT, interfaces=[Interface("veth0", "ns1", "generic")]),
                     host(*gens, current=2, previous=1), hook(200, *gens))
    assert (plan.target, plan.current_after, plan.previous_after, plan.prune) == (1, 1, 1, [])
    assert [(p.action, p.program_pin) for p in plan.attach] == [("replace", f"{ROOT}/gen/1/progs/dispatch")]
    with pytest.raises(PlanError, match=r"no previous generation to roll back to \(generations: 2 \(live\)\)"):
        make_plan(Desired("previous", ROOT), host(gens[1], current=2), hook())


def test_an_incomplete_generation_is_swept_and_numbers_go_past_it():
    gen1, cut = generation(1), generation(2, spec(tcp_value=1), complete=False)
    plan = make_plan(desired(spec(tcp_value=0)), host(gen1, cut, current=1, strays=[f"{ROOT}/x_whistler_tmp_1"]),
                     hook(100, gen1))
    assert (plan.sweep, plan.target, plan.strays) == ([2], 3, [f"{ROOT}/x_whistler_tmp_1"])
    rerun = make_plan(desired(), host(gen1, cut, current=1), hook(100, gen1))
    assert rerun.target == 1 and rerun.changed, "sweeping alone is a change"


def legacy():
    gen = generation(0, first_id=500)
    for p in gen.programs.values():
        gen.programs[p.name] = GenProgram(p.name, f"{ROOT}/{p.name}", p.id, p.tag, p.prog_type, p.map_ids)
    gen.arrays["jt"] = GenArray("jt", f"{ROOT}/maps/jt", 550, 256, {6: 501, 17: 502})
    return Generation(0, ROOT, gen.programs, gen.arrays, legacy=True,
                      all_pins=[p.path for p in gen.programs.values()] + [f"{ROOT}/maps/jt"])


def test_a_version_1_layout_is_adopted_as_generation_0():
    old = legacy()
    plan = make_plan(desired(), host(legacy=old), hook(500, old))
    assert (plan.adopt, plan.target, plan.new_generation, plan.current_after) == (True, 0, False, 0)
    assert [(p.action, p.program_pin) for p in plan.attach] == [("noop", f"{ROOT}/dispatch")]
    upgrade = make_plan(desired(spec(tcp_value=1)), host(legacy=old), hook(500, old))
    assert (upgrade.adopt, upgrade.target, upgrade.previous_after) == (True, 1, 0)


def test_version_1_pins_beside_generations_are_swept_if_adopted_and_refused_if_foreign():
    gen0, old = generation(0, first_id=500), legacy()
    plan = make_plan(desired(), host(gen0, current=0, legacy=old), hook(500, gen0))
    assert sorted(plan.strays) == sorted(old.all_pins) and not plan.adopt
    stranger = legacy()
    stranger.programs["tcp"] = GenProgram("tcp", f"{ROOT}/tcp", 999, "00", 6, ())
    with pytest.raises(PlanError, match=f"{ROOT}/tcp \\(program 999\\)"):
        make_plan(desired(), host(gen0, current=0, legacy=stranger), hook(500, gen0))


def test_an_interface_no_longer_listed_is_detached_and_a_stale_record_dropped():
    gen1 = generation(1)
    left = RecordedAttachment(f"{ROOT}/attached/if9_ns1", 100, "veth9", live=True, ifindex=9, netns="ns1", present=True)
    stale = RecordedAttachment(f"{ROOT}/attached/if8_ns1", 100, "veth8", live=False, ifindex=8, netns="ns1", present=True)
    plan = make_plan(desired(interfaces=[]), host(gen1, current=1, records=[left, stale]), hook(100, gen1))
    assert [(p.action, p.previous_prog_id) for p in plan.detach] == [("detach", 100)]
    assert plan.drop_records == [stale.record] and plan.changed


@pytest.mark.parametrize("change, message", [
    (dict(dispatcher="../etc"), "dispatcher '../etc': contains '/'"),
    (dict(jump_table="stats"), "is not a prog-array"),
    (dict(jump_table="nope"), "no map named 'nope'"),
    (dict(handlers={6: "icmp"}), "handlers[6]: obj.o has no program 'icmp'"),
    (dict(handlers={256: "tcp"}), "slot out of range: jump table 'jt' has 256 slots"),
    (dict(interfaces=[Interface("veth0\x00x")]), "contains a NUL character"),
    (dict(interfaces=[Interface("a-very-long-interface-name")]), "longer than 15 bytes"),
    (dict(interfaces=[Interface("veth0", mode="turbo")]), "mode 'turbo'"),
    (dict(interfaces=[Interface("veth0"), Interface("veth0")]), "listed twice"),
    (dict(keep_generations=0), "keep_generations 0"),
])
def test_bad_desired_states_fail_before_anything(change, message):
    want = desired()
    for key, value in change.items():
        setattr(want, key, value)
    with pytest.raises(ValueError) as err:
        make_plan(want, host(), hook())
    assert message in str(err.value)


def test_names_from_the_object_are_checked_before_paths_are_built():
    bad = spec()
    bad.programs[1].name = "../../tmp/x"
    want = desired(bad)
    want.handlers = {6: "../../tmp/x"}
    with pytest.raises(ValueError, match="contains '/'"):
        make_plan(want, host(), hook())
