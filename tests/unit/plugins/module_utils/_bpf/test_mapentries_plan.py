"""Planning map contents against in-memory maps: what is written, in which order, what is reported,
and which input is refused before anything is written."""

from __future__ import annotations

import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import btfvalue as bv
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.mapentries import (
    MapEntriesError,
    plan_map_entries,
)

HASH, ARRAY, LRU_HASH, LPM, PERCPU_ARRAY, PROG_ARRAY, RINGBUF, DEVMAP = 1, 2, 9, 11, 6, 3, 27, 14
PIN = "/sys/fs/bpf/test/maps/m"


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


class FakeMap:
    """A map in memory: {raw key: raw value}, u32 keys and values unless a codec is given."""

    def __init__(self, map_type=HASH, items=None, max_entries=16, codec=None, key_size=4, value_size=4):
        self.info = sc.MapInfo(map_type, 42, key_size, value_size, max_entries, 0, "m", 0, 0, 0)
        self.items = dict(items or {})
        self._codec = codec or bv.map_codec(map_type, key_size, value_size)
        if map_type == ARRAY:
            for index in range(max_entries):
                self.items.setdefault(u32(index), bytes(value_size))

    def codec(self):
        return self._codec

    def raw_items(self):
        return dict(self.items)

    def lookup(self, key):
        return self.items.get(key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class Reader:
    def __init__(self, bpf_map):
        self.bpf_map = bpf_map

    def open(self, _pin):
        return self.bpf_map


def plan(bpf_map, entries, **kw):
    return plan_map_entries(PIN, entries, reader=Reader(bpf_map), **kw)


def test_present_adds_and_updates_in_place_and_reports():
    m = FakeMap(items={u32(1): u32(10), u32(2): u32(20)})
    p = plan(m, {"1": 11, "2": 20, "3": 30})
    assert [(w.label, w.value) for w in p.writes] == [(1, u32(11)), (3, u32(30))]  # update before insert
    assert (p.added, p.updated, p.removed) == ((3,), (1,), ())
    assert p.before == {1: 10, 2: 20} and p.after == {1: 11, 2: 20, 3: 30}
    assert p.previous == {u32(1): u32(10), u32(3): None}
    assert p.entries == ({"key": 1, "value": 11}, {"key": 2, "value": 20}, {"key": 3, "value": 30})


def test_unchanged_when_values_are_equal():
    m = FakeMap(items={u32(1): u32(10)})
    p = plan(m, [{"key": 1, "value": 10}])
    assert not p.changed and p.writes == () and p.before == p.after == {1: 10}


def test_exclusive_deletes_after_writes():
    m = FakeMap(items={u32(1): u32(10), u32(2): u32(20)})
    p = plan(m, {"3": 30}, exclusive=True)
    assert [(w.label, w.value) for w in p.writes] == [(3, u32(30)), (1, None), (2, None)]
    assert p.removed == (1, 2)
    assert p.after == {3: 30}


def test_full_hash_deletes_first_and_overfull_is_refused():
    m = FakeMap(items={u32(1): u32(10), u32(2): u32(20)}, max_entries=2)
    p = plan(m, {"1": 10, "3": 30}, exclusive=True)
    assert [(w.label, w.value) for w in p.writes] == [(2, None), (3, u32(30))]
    with pytest.raises(MapEntriesError, match="3 entries after this task do not fit its max_entries 2"):
        plan(m, {"3": 30})


def test_lru_hash_may_be_filled_past_max_entries():
    m = FakeMap(LRU_HASH, items={u32(1): u32(10)}, max_entries=1)
    assert [w.label for w in plan(m, {"3": 30}).writes] == [3]


def test_absent_removes_listed_keys_holding_the_value_or_anything():
    m = FakeMap(items={u32(1): u32(10), u32(2): u32(20), u32(3): u32(30)})
    p = plan(m, [{"key": 1}, {"key": 2, "value": 99}, {"key": 3, "value": 30}, {"key": 4}], state="absent")
    assert [(w.label, w.value) for w in p.writes] == [(1, None), (3, None)]
    assert p.entries == ({"key": 2, "value": 20},)
    everything = plan(m, {}, state="absent", exclusive=True)
    assert [w.label for w in everything.writes] == [1, 2, 3]


def test_array_elements_are_reset_to_zero_not_deleted():
    m = FakeMap(ARRAY, items={u32(0): u32(5), u32(1): u32(6)}, max_entries=4)
    p = plan(m, {"2": 7}, exclusive=True)
    assert [(w.label, w.value) for w in p.writes] == [(2, u32(7)), (0, u32(0)), (1, u32(0))]
    assert p.removed == (0, 1)
    assert p.after == {0: 0, 1: 0, 2: 7}
    absent = plan(m, {"3": None}, state="absent")  # already zero: nothing to do
    assert not absent.changed


def test_array_index_beyond_max_entries_is_refused():
    with pytest.raises(MapEntriesError, match=r"entries\['4'\].key: 4 is greater than the maximum of 3"):
        plan(FakeMap(ARRAY, max_entries=4), {"4": 1})


def test_every_problem_is_reported_at_once_and_nothing_is_planned():
    m = FakeMap()
    with pytest.raises(MapEntriesError) as caught:
        plan(m, [{"key": 1, "value": -1}, {"key": "x", "value": 1}, {"key": 1, "value": 2}, {"key": 5},
                 {"key": 6, "value": 1, "extra": 0}, {"key": 1, "value": 3}])
    assert str(caught.value) == (
        f"map {PIN}: entries[0].value: -1 is less than the minimum of 0; "
        "entries[1].key: 'x' is not of type 'integer'; "
        "entries[3]: 'value' is a required property; "
        "entries[4]: Additional properties are not allowed ('extra' was unexpected); "
        "entries[5]: the same key as entries[2]")


@pytest.mark.parametrize("entries, message", [
    ("nope", r"entries: expected a dict \(key: value\) or a list"),
    ([5], r"entries\[0\]: expected a dict with key and value"),
    ([{"value": 1}], r"entries\[0\]: expected a dict with key and value"),
])
def test_malformed_entries_option(entries, message):
    with pytest.raises(MapEntriesError, match=message):
        plan(FakeMap(), entries)


def test_lpm_keys_match_without_host_bits_and_by_network_text():
    codec = bv.map_codec(LPM, 8, 4)
    stored = struct.pack("<I", 8) + bytes([10, 0, 0, 9])  # written by someone else, host bits set
    m = FakeMap(LPM, items={stored: u32(1)}, key_size=8, codec=codec)
    same = plan(m, {"10.0.0.0/8": 1})
    assert not same.changed and same.before == {"10.0.0.0/8": 1}
    changed = plan(m, {"10.0.0.0/8": 2})
    assert [w.key for w in changed.writes] == [stored]  # updated under the key the kernel holds
    with pytest.raises(MapEntriesError, match="the same key as"):
        plan(m, [{"key": "10.0.0.0/8", "value": 1}, {"key": "10.0.0.0/8", "value": 2}])


@pytest.mark.parametrize("map_type, message", [
    (PROG_ARRAY, "xdp_prog_array manages jump tables"),
    (RINGBUF, "ring buffer"),
    (DEVMAP, "devmap maps are not supported"),
])
def test_refused_map_types(map_type, message):
    with pytest.raises(MapEntriesError, match=message):
        plan(FakeMap(map_type), {})


def test_per_cpu_maps_are_read_only_views():
    codec = bv.map_codec(PERCPU_ARRAY, 4, 4, cpus=2)
    m = FakeMap(PERCPU_ARRAY, items={u32(0): u32(1) + bytes(4) + u32(2) + bytes(4)}, max_entries=1, codec=codec)
    view = plan(m, [], contents=True)
    assert not view.changed and view.contents == ({"key": 0, "value": [1, 2]},)
    for kw in ({"entries": {"0": 1}}, {"entries": [], "exclusive": True}):
        with pytest.raises(MapEntriesError, match="read-only here"):
            plan(m, **kw)


def test_contents_predicts_the_whole_map_in_key_order():
    m = FakeMap(items={u32(9): u32(90), u32(2): u32(20)})
    p = plan(m, {"5": 50}, contents=True)
    assert p.contents == ({"key": 2, "value": 20}, {"key": 5, "value": 50}, {"key": 9, "value": 90})


def test_nothing_pinned_fails_present_and_is_nothing_to_remove_for_absent():
    with pytest.raises(MapEntriesError, match=f"map {PIN}: nothing is pinned there"):
        plan(None, {"1": 1})
    gone = plan(None, {"1": None}, state="absent", exclusive=True, contents=True)
    assert not gone.changed and (gone.map_id, gone.entries, gone.contents) == (0, (), ())
