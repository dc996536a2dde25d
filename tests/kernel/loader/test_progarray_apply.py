"""Jump-table plans applied to a real pinned prog-array: slots overwritten in place and compared
by program id, only unwanted slots emptied, bad requests rejected before anything changes, and a
failed write rolled back with an explanation instead of a bare EINVAL; slots traced back to program
names and pins."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pinned import pinned
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import (
    ProgArrayError,
    SlotProgram,
    apply_prog_array,
    describe_entries,
    plan_prog_array,
    read_prog_array,
)

from tests.kernel.harness import bpftool_json
from tests.kernel.loader.xdp_setup import load_pinned


@pytest.fixture
def app(pin_dir, build):
    app = load_pinned(build("counter_dispatch.c"), pin_dir / "app")
    return {name: str(app / name) for name in ("handler_a", "handler_b", "dispatch_v1")} | {
        "jt": str(app / "maps" / "jt"), "handled": str(app / "maps" / "handled")}


def ids(app, *names):
    return [pinned(app[name]).id for name in names]


def slots_by_bpftool(map_pin):
    """{key: prog id} as bpftool (libbpf) reads the array: an oracle independent of our reader."""
    return {int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"):
            int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
            for e in bpftool_json("map", "dump", "pinned", map_pin)}


def test_fill_overwrite_and_converge(app):
    a, b = ids(app, "handler_a", "handler_b")
    first = plan_prog_array(app["jt"], {6: app["handler_a"], 17: app["handler_b"]})
    assert (first.before, first.after, first.deletes) == ({}, {6: a, 17: b}, ())
    result = apply_prog_array(first)
    assert result.changed and result.after == {6: a, 17: b} == slots_by_bpftool(app["jt"])

    swap = plan_prog_array(app["jt"], {6: app["handler_b"], 17: app["handler_b"]})
    assert swap.writes == {6: app["handler_b"]} and swap.deletes == ()
    assert apply_prog_array(swap).after == {6: b, 17: b} == slots_by_bpftool(app["jt"])

    again = plan_prog_array(app["jt"], {6: app["handler_b"], 17: app["handler_b"]})
    assert not again.changed and not apply_prog_array(again).changed


def test_exclusive_and_absent_empty_only_what_they_must(app):
    a, b = ids(app, "handler_a", "handler_b")
    apply_prog_array(plan_prog_array(app["jt"], {1: app["handler_a"], 2: app["handler_b"], 3: app["handler_a"]}))
    kept = apply_prog_array(plan_prog_array(app["jt"], {2: app["handler_b"]}, exclusive=True))
    assert kept.after == {2: b} == slots_by_bpftool(app["jt"])

    apply_prog_array(plan_prog_array(app["jt"], {5: app["handler_a"]}))
    wrong_program = plan_prog_array(app["jt"], {2: app["handler_a"]}, state="absent")
    assert not wrong_program.changed, "slot 2 holds handler_b, not handler_a"
    assert apply_prog_array(plan_prog_array(app["jt"], {2: None}, state="absent")).after == {5: a}


def test_bad_requests_change_nothing(app, pin_dir):
    apply_prog_array(plan_prog_array(app["jt"], {6: app["handler_a"]}))
    before = slots_by_bpftool(app["jt"])
    with pytest.raises(ProgArrayError, match="slot 32 is out of range: the array has 32 slots"):
        plan_prog_array(app["jt"], {6: app["handler_b"], 32: app["handler_a"]})
    with pytest.raises(ProgArrayError, match="has type 2, not a prog array"):
        plan_prog_array(app["handled"], {0: app["handler_a"]})
    with pytest.raises(ProgArrayError, match="no program is pinned at"):
        plan_prog_array(app["jt"], {6: str(pin_dir / "app" / "nothing")})
    with pytest.raises(ProgArrayError, match="nothing is pinned there"):
        plan_prog_array(str(pin_dir / "app" / "maps" / "nothing"), {6: app["handler_a"]})
    assert slots_by_bpftool(app["jt"]) == before


def test_incompatible_program_is_explained_and_rolled_back(app, pin_dir, build):
    tc = load_pinned(build("counter_tc.c"), pin_dir / "tc")
    a, = ids(app, "handler_a")
    apply_prog_array(plan_prog_array(app["jt"], {6: app["handler_a"]}))
    # Slot 6 is written first (keys in order), then slot 7 fails: slot 6 must get handler_a back.
    doomed = plan_prog_array(app["jt"], {6: app["handler_b"], 7: str(tc / "tc_counter")})
    with pytest.raises(BpfError, match="the prog-array is owned by xdp programs") as err:
        apply_prog_array(doomed)
    assert "key 7 -> " + str(tc / "tc_counter") in str(err.value) and "sched_cls" in str(err.value)
    assert read_prog_array(app["jt"]).entries == {6: a} == slots_by_bpftool(app["jt"])


def test_entries_resolve_to_program_names_and_pins(app, pin_dir):
    a, b = ids(app, "handler_a", "handler_b")
    apply_prog_array(plan_prog_array(app["jt"], {6: app["handler_a"], 17: app["handler_b"], 18: app["handler_b"]}))
    entries = read_prog_array(app["jt"]).entries
    assert describe_entries(entries, [str(pin_dir / "app")]) == {
        6: SlotProgram(a, "handler_a", (app["handler_a"],)),
        17: SlotProgram(b, "handler_b", (app["handler_b"],)),
        18: SlotProgram(b, "handler_b", (app["handler_b"],))}
    assert describe_entries(entries, [str(pin_dir / "elsewhere")])[6] == SlotProgram(a, "handler_a", ())
