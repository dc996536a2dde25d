"""module_utils._overlay: the loader's plans read a fake kernel through the check-mode overlay, and what
each plan records is what the next plan reads; planned ids never reach a module's return values."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import (
    AttachRefused,
    HookView,
    RecordedAttachment,
    plan_attach,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netlink import XdpState
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import (
    MapSpec,
    ObjectSpec,
    ProgramSpec,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pinned import Pinned
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import (
    ProgArrayView,
    plan_prog_array,
)
from ansible_collections.whistler.xdp.plugins.module_utils._overlay import (
    Overlay,
    Planned,
    PlannedHook,
    PlannedPin,
    decode_id,
    encode_id,
    hook_key,
    program_words,
    public,
)

APP = "/sys/fs/bpf/app"
MAPS = f"{APP}/maps"
JT, TCP, DISPATCH = f"{MAPS}/jt", f"{APP}/tcp", f"{APP}/dispatch"
IFINDEX, NETNS_INO = 4, 4026532100
KEY = hook_key(IFINDEX, NETNS_INO)
RECORD = f"{APP}/attached/{KEY}"
LD_MAP = struct.pack("<BBhi", 0x18, 1, 0, 0) + bytes(8)
EXIT = struct.pack("<BBhi", 0x95, 0, 0, 0)


def _spec(tcp_insns=LD_MAP + EXIT):
    progs = [ProgramSpec("dispatch", "xdp", LD_MAP + EXIT, 6, 37, 0, [(0, "jt")]),
             ProgramSpec("tcp", "xdp", tcp_insns, 6, 37, 0, [(0, "jt")])]
    return ObjectSpec("obj.o", "GPL", progs, [MapSpec("jt", 3, 4, 4, 8)])


@dataclass
class FakeKernel:
    """What ``module_utils._overlay.KernelView`` reads, faked: ``at`` (pin path -> Pinned), prog-arrays
    (path -> ProgArrayView) and one hook; nothing is pinned where an object would go."""

    at: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    hook_state: XdpState = field(default_factory=lambda: XdpState(IFINDEX, None, 0))

    def pins(self, spec, prog_dir, map_dir, with_users=False, map_dirs=None):
        return load.PinState(maps={m.name: None for m in spec.maps}, programs={p.name: None for p in spec.programs})

    def pinned(self, path):
        return self.at.get(path)

    def prog_array(self, map_pin):
        return self.arrays.get(map_pin)

    def hook(self, interface, netns):
        return HookView(IFINDEX, interface, self.hook_state)

    def netns_id(self, netns):
        return NETNS_INO

    def xdp_link(self, ifindex, prog_id):
        return None

    def pinned_programs(self, directory):
        return {path: p.prog_id for path, p in self.at.items() if path.startswith(directory + "/") and p.prog_id}


def _overlay(data=None, kernel=None):
    overlay = Overlay.decode(data or {})
    overlay.kernel = kernel or FakeKernel()
    return overlay


def _load_plan(overlay, spec):
    """``plan_load`` as the module calls it in check mode, on the fake kernel (no pin directory checks)."""
    return load.decide(spec, overlay.reader().pins(spec, APP, MAPS), APP, MAPS)


# -- identities ----------------------------------------------------------------------------------

def test_planned_ids_round_trip_and_bad_ones_are_named():
    planned = Planned("prog", TCP, "tcp", "a1b2c3d4e5f6a7b8")
    assert decode_id(encode_id(planned)) == planned
    assert decode_id(encode_id(812)) == 812 and decode_id(None) is None
    for bad in ("812", True, {"planned": "file", "pin": TCP}, {"planned": "prog"}):
        with pytest.raises(ValueError, match="_check_overlay"):
            decode_id(bad)


def test_pins_and_hooks_round_trip():
    pin = PlannedPin("prog", Planned("prog", TCP, "tcp", "ab"), "tcp", "ab", 6, (Planned("map", JT, "jt"), 77))
    assert PlannedPin.decode(TCP, pin.encode()) == pin
    hook = PlannedHook("veth0", "blue", IFINDEX, "generic", Planned("prog", DISPATCH, "dispatch", "cd"))
    assert PlannedHook.decode(KEY, hook.encode()) == hook
    overlay = Overlay.decode({"pins": {TCP + "/": pin.encode(), JT: None}, "hooks": {KEY: hook.encode()},
                              "slots": {JT: {"6": 812, "7": None}}, "files": {"/var/lib/x//o.bpf.o": "/tmp/a"}})
    assert overlay.pins == {TCP: pin, JT: None}
    assert overlay.slots == {JT: {6: 812, 7: None}}
    assert overlay.file("/var/lib/x/o.bpf.o") == "/tmp/a" and overlay.file("/other") == "/other"
    with pytest.raises(ValueError, match="hook"):
        Overlay.decode({"hooks": {KEY: {"interface": "veth0"}}})
    with pytest.raises(ValueError, match="slots of"):
        Overlay.decode({"slots": {JT: {"six": 1}}})


def test_public_hides_planned_ids_and_words_name_programs():
    planned = Planned("prog", TCP, "tcp_handler", "c3d4e5f6a7b8c9d0")
    assert public({"entries": {6: planned, 17: 813}, "ids": [planned, 1]}) == {
        "entries": {6: None, 17: 813}, "ids": [None, 1]}
    assert program_words(planned) == "tcp_handler (tag c3d4e5f6a7b8c9d0, new)"
    assert program_words(812, "tcp_handler", "a1b2c3d4e5f6a7b8") == "tcp_handler (tag a1b2c3d4e5f6a7b8, id 812)"
    assert program_words(0) is None


# -- plans through the overlay -------------------------------------------------------------------

def test_an_inactive_overlay_changes_nothing():
    overlay = Overlay()
    assert overlay.reader() is None and overlay.exit_fields() == {}
    overlay.record_pin(TCP, None)
    assert overlay.planned["pins"] == {}


def test_a_load_planned_earlier_is_what_the_next_load_sees():
    first = _overlay({})
    plan = _load_plan(first, _spec())
    assert {s.action for s in plan.programs} == {"load"} and plan.maps[0].action == "create"
    first.record_load(plan, {"dispatch": "d1", "tcp": "t1"})
    planned = first.exit_fields()["_check_overlay_planned"]
    assert set(planned["pins"]) == {JT, TCP, DISPATCH}

    # Same object again in the same check run: nothing more to do.
    second = _overlay(planned)
    spec = _spec()
    for p in spec.programs:  # the tags the first plan predicted are what the kernel would report
        p.tags = lambda name=p.name: {"dispatch": {"d1"}, "tcp": {"t1"}}[name]
    again = _load_plan(second, spec)
    assert not again.changed, [(s.name, s.action, s.reason) for s in again.programs + again.maps]
    assert isinstance(again.maps[0].current_id, Planned)


def test_a_slot_follows_a_handler_the_run_would_re_pin():
    kernel = FakeKernel(at={TCP: Pinned(TCP, "prog", 812, 812)},
                        arrays={JT: ProgArrayView(77, sc.MAP_TYPE_PROG_ARRAY, 8, {6: 812})})
    assert not plan_prog_array(JT, {6: TCP}, reader=_overlay({}, kernel).reader()).changed

    new_tcp = Planned("prog", TCP, "tcp", "t2")
    overlay = _overlay({"pins": {TCP: PlannedPin("prog", new_tcp, "tcp", "t2", 6).encode()}}, kernel)
    plan = plan_prog_array(JT, {6: TCP}, reader=overlay.reader())
    assert plan.writes == {6: TCP} and plan.after == {6: new_tcp}
    overlay.record_prog_array(plan)
    assert overlay.planned["slots"] == {JT: {"6": encode_id(new_tcp)}}

    # The wiring recorded, a second wiring of the same run has nothing left to do.
    again = _overlay({"pins": {TCP: PlannedPin("prog", new_tcp, "tcp", "t2", 6).encode()},
                      "slots": overlay.planned["slots"]}, kernel)
    assert not plan_prog_array(JT, {6: TCP}, reader=again.reader()).changed


def test_a_table_the_run_would_create_or_remove():
    jt = Planned("map", JT, "jt")
    created = _overlay({"pins": {JT: PlannedPin("map", jt, "jt", map_type=sc.MAP_TYPE_PROG_ARRAY,
                                                max_entries=8).encode(),
                                 TCP: PlannedPin("prog", 812, "tcp", "t1").encode()}})
    plan = plan_prog_array(JT, {6: TCP}, reader=created.reader())
    assert (plan.map_id, plan.max_entries, plan.before, plan.after) == (jt, 8, {}, {6: 812})
    removed = _overlay({"pins": {JT: None}}, FakeKernel(arrays={JT: ProgArrayView(77, 3, 8, {6: 812})}))
    gone = plan_prog_array(JT, {}, exclusive=True, state="absent", reader=removed.reader())
    assert not gone.changed and not gone.map_id
    with pytest.raises(ValueError, match="nothing is pinned there"):
        plan_prog_array(JT, {6: TCP}, reader=removed.reader())


def test_the_dispatcher_the_run_would_re_pin_is_swapped_in_on_the_hook():
    kernel = FakeKernel(at={DISPATCH: Pinned(DISPATCH, "prog", 900, 900), RECORD: Pinned(RECORD, "prog", 900, 900)},
                        hook_state=XdpState(IFINDEX, "generic", 900, skb_id=900))
    new = Planned("prog", DISPATCH, "dispatch", "d2")
    overlay = _overlay({"pins": {DISPATCH: PlannedPin("prog", new, "dispatch", "d2", 6).encode()}}, kernel)
    plan = plan_attach("veth0", "blue", DISPATCH, mode="generic", reader=overlay.reader())
    assert (plan.action, plan.prog_id, plan.previous_prog_id) == ("replace", new, 900)
    overlay.record_attach(plan, NETNS_INO)
    planned = overlay.planned
    assert planned["hooks"][KEY]["program"] == encode_id(new)
    assert PlannedPin.decode(RECORD, planned["pins"][RECORD]).id == new

    # Later in the run: attaching again is a no-op, and the new program counts as ours.
    later = _overlay({"pins": dict(overlay.planned["pins"], **{DISPATCH: planned["pins"][RECORD]}),
                      "hooks": planned["hooks"]}, kernel)
    assert plan_attach("veth0", "blue", DISPATCH, mode="generic", reader=later.reader()).action == "noop"
    assert new in later.reader().owned_prog_ids(APP)


def test_a_detach_planned_earlier_lets_the_unload_go_ahead():
    kernel = FakeKernel(at={RECORD: Pinned(RECORD, "prog", 900, 900)},
                        hook_state=XdpState(IFINDEX, "generic", 900, skb_id=900))
    live = RecordedAttachment(RECORD, 900, "interface 'veth0'", True)
    detach = _overlay({}, kernel)
    plan = plan_attach("veth0", "blue", DISPATCH, state="absent", reader=detach.reader(), force=True)
    assert plan.action == "detach"
    detach.record_attach(plan, NETNS_INO)
    assert detach.planned["hooks"] == {KEY: None} and detach.planned["pins"] == {RECORD: None}

    after = _overlay(detach.planned, kernel)
    assert after.records(APP, [live]) == []
    hook_only = _overlay({"hooks": {KEY: None}}, kernel)
    assert hook_only.records(APP, [live]) == [RecordedAttachment(RECORD, 900, "interface 'veth0'", False)]
    assert _overlay({}, kernel).records(APP, [live]) == [live]


def test_unload_sees_pins_the_run_would_add_or_remove():
    plan = load.UnloadPlan([TCP, JT], [MAPS, APP])  # (the directories do not exist here: none is emptied)
    overlay = _overlay({"pins": {TCP: None, DISPATCH: PlannedPin("prog", 1, "dispatch").encode(),
                                 "/sys/fs/bpf/other/x": PlannedPin("prog", 2, "x").encode()}})
    adjusted = overlay.unload(plan, lambda path: path.startswith(APP + "/"))
    assert adjusted.pins == [JT, DISPATCH]
    overlay.record_unload(adjusted.pins)
    assert overlay.planned["pins"] == {JT: None, DISPATCH: None}


def test_a_mode_change_is_still_refused_on_a_planned_hook():
    overlay = _overlay({"hooks": {KEY: PlannedHook("veth0", "blue", IFINDEX, "native", 900).encode()},
                        "pins": {DISPATCH: PlannedPin("prog", 901, "dispatch").encode()}})
    with pytest.raises(AttachRefused, match="native mode, not generic"):
        plan_attach("veth0", "blue", DISPATCH, mode="generic", reader=overlay.reader())


def test_a_task_that_plans_several_steps_reads_its_own_plans():
    """Load, wire and attach planned in one task: each step plans on the steps before it."""
    overlay = _overlay({})
    plan = _load_plan(overlay, _spec())
    overlay.record_load(plan, {"dispatch": "d1", "tcp": "t1"})
    wire = plan_prog_array(JT, {6: TCP}, reader=overlay.reader())
    new_tcp = Planned("prog", TCP, "tcp", "t1")
    assert wire.after == {6: new_tcp} and wire.map_id == Planned("map", JT, "jt")
    overlay.record_prog_array(wire)
    assert not plan_prog_array(JT, {6: TCP}, reader=overlay.reader()).changed
    attach = plan_attach("veth0", "blue", DISPATCH, mode="generic", reader=overlay.reader())
    assert (attach.action, attach.prog_id) == ("attach", Planned("prog", DISPATCH, "dispatch", "d1"))
    overlay.record_attach(attach, NETNS_INO)
    assert plan_attach("veth0", "blue", DISPATCH, mode="generic", reader=overlay.reader()).action == "noop"
    # Re-pinning the table drops the slots planned for the old one.
    overlay.record_pin(JT, PlannedPin("map", Planned("map", JT, "jt2"), "jt", map_type=sc.MAP_TYPE_PROG_ARRAY,
                                      max_entries=8))
    assert plan_prog_array(JT, {6: TCP}, reader=overlay.reader()).before == {}
