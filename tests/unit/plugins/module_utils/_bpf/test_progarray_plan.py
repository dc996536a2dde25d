"""plan_prog_array compares slots by program id against a fake kernel view: overwrite what differs,
empty only what must be empty, and name the map, key or pin when the request is wrong."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pinned import Pinned
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import (
    ProgArrayError,
    ProgArrayView,
    plan_prog_array,
)
from hypothesis import given, settings
from hypothesis import strategies as st

JT = "/sys/fs/bpf/app/maps/jt"
TCP, UDP, OLD = "/sys/fs/bpf/app/tcp_handler", "/sys/fs/bpf/app/udp_handler", "/sys/fs/bpf/app/old"
PROG_ARRAY, HASH = 3, 1


class FakeKernel:
    def __init__(self, entries, map_type=PROG_ARRAY, max_entries=256):
        self.view = ProgArrayView(map_id=9, map_type=map_type, max_entries=max_entries, entries=entries)
        self.pins = {TCP: Pinned(TCP, "prog", 61, 61), UDP: Pinned(UDP, "prog", 62, 62),
                     OLD: Pinned(OLD, "prog", 50, 50), JT: Pinned(JT, "map", 9)}

    def prog_array(self, map_pin):
        return self.view if map_pin == JT else None

    def pinned(self, path):
        return self.pins.get(path)


def plan(entries, current, **kw):
    reader = kw.pop("reader", None) or FakeKernel(current)
    return plan_prog_array(JT, entries, reader=reader, **kw)


def test_empty_slots_are_written_and_equal_ones_left_alone():
    p = plan({6: TCP, 17: UDP}, {6: 61})
    assert p.writes == {17: UDP} and p.deletes == ()
    assert p.before == {6: 61} and p.after == {6: 61, 17: 62} and p.changed


def test_converged_array_is_unchanged():
    p = plan({6: TCP, 17: UDP}, {6: 61, 17: 62})
    assert not p.changed and p.after == p.before


def test_a_changed_slot_is_overwritten_not_deleted():
    p = plan({6: TCP}, {6: 50})
    assert p.writes == {6: TCP} and p.deletes == () and p.after == {6: 61}


def test_unnamed_slots_stay_unless_exclusive():
    assert plan({6: TCP}, {6: 61, 1: 50}).deletes == ()
    p = plan({6: TCP}, {6: 61, 1: 50}, exclusive=True)
    assert p.deletes == (1,) and p.writes == {} and p.after == {6: 61}


def test_absent_empties_named_slots_that_hold_the_named_program():
    current = {6: 61, 17: 50, 1: 62}
    p = plan({6: TCP, 17: UDP, 1: None, 9: None}, current, state="absent")
    assert p.deletes == (1, 6) and p.writes == {} and p.after == {17: 50}
    assert plan({}, current, state="absent", exclusive=True).after == {}


@pytest.mark.parametrize("entries, message", [
    ({256: TCP}, "slot 256 is out of range: the array has 256 slots"),
    ({-1: TCP}, "slot -1 is out of range"),
    ({"6": TCP}, "slot '6' is out of range"),
    ({6: "/sys/fs/bpf/app/nothing"}, "slot 6: no program is pinned at /sys/fs/bpf/app/nothing"),
    ({6: JT}, "a map is pinned at"),
    ({6: None}, "slot 6 needs a program pin"),
])
def test_bad_entries_are_named(entries, message):
    with pytest.raises(ProgArrayError, match=message):
        plan(entries, {})


def test_wrong_map_type_and_missing_map():
    with pytest.raises(ProgArrayError, match="has type 1, not a prog array"):
        plan({6: TCP}, {}, reader=FakeKernel({}, map_type=HASH))
    with pytest.raises(ProgArrayError, match="nothing is pinned there"):
        plan_prog_array("/sys/fs/bpf/app/maps/none", {6: TCP}, reader=FakeKernel({}))


PROGRAMS = {TCP: 61, UDP: 62, OLD: 50}


@settings(max_examples=200, deadline=None)
@given(current=st.dictionaries(st.integers(0, 7), st.sampled_from(sorted(PROGRAMS.values())), max_size=8),
       entries=st.dictionaries(st.integers(0, 7), st.sampled_from(sorted(PROGRAMS)), max_size=8),
       exclusive=st.booleans())
def test_present_plans_reach_the_desired_slots_without_delete_then_insert(current, entries, exclusive):
    p = plan(entries, current, exclusive=exclusive)
    assert not set(p.writes) & set(p.deletes), "a slot is never deleted and written in one plan"
    assert all(current.get(key) != PROGRAMS[pin] for key, pin in p.writes.items()), "only differing slots"
    reached = dict(current)
    reached.update({key: PROGRAMS[pin] for key, pin in p.writes.items()})
    for key in p.deletes:
        del reached[key]
    desired = {key: PROGRAMS[pin] for key, pin in entries.items()}
    kept = {} if exclusive else {k: v for k, v in current.items() if k not in entries}
    assert reached == p.after == {**kept, **desired}


def test_absent_with_nothing_pinned_is_an_empty_plan():
    """Already gone is fine: no array pinned means nothing to empty (state=present still fails)."""
    p = plan_prog_array("/sys/fs/bpf/app/maps/gone", {6: TCP}, state="absent", reader=FakeKernel({}))
    assert not p.changed and p.before == {} == p.after
    with pytest.raises(ProgArrayError, match="nothing is pinned there"):
        plan_prog_array("/sys/fs/bpf/app/maps/gone", {6: TCP}, reader=FakeKernel({}))


def test_absent_naming_a_program_no_longer_pinned_empties_nothing():
    gone = "/sys/fs/bpf/app/gone_handler"
    p = plan({6: gone, 17: UDP}, {6: 61, 17: 62}, state="absent")
    assert p.deletes == (17,) and p.after == {6: 61}
    with pytest.raises(ProgArrayError, match="no program is pinned"):
        plan({6: gone}, {6: 61})
