"""xdp_map in check mode, without a kernel: a map a planned xdp_load would create is opened through the
overlay as the kernel would create it (empty, an array all zeros, typed by the object's BTF), and
``plan_map_entries`` plans on it as on a real map; a map a planned unload removes is gone; a program
pinned where the map should be, an object that changed since the load planned, fail with a message."""

from __future__ import annotations

import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.mapentries import (
    MapEntriesError,
    plan_map_entries,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import NewMap
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import MapSpec, read_object
from ansible_collections.whistler.xdp.plugins.module_utils._overlay import (
    Overlay,
    Planned,
    PlannedPin,
    public,
)

import compiler

APP = "/sys/fs/bpf/app"
MAPS = f"{APP}/maps"
RULES, LIMITS = f"{MAPS}/rules", f"{MAPS}/limits"

SOURCE = """
(defstruct port-key (port u16) (proto u8) (pad u8))
(defstruct port-rule (action u32) (hits u32))
(defmap rules :type :hash :key-type port-key :value-type port-rule :max-entries 8)
(defmap limits :type :array :key-size 4 :value-size 8 :max-entries 3)
(defprog port-filter ()
  (with-packet (data end :min-len 38)
    (let* ((key (make-port-key :port (tcp-dst-port (+ data 34)) :proto 6))
           (rule (getmap rules key)))
      (when rule
        (incf (getmap limits 0))
        (return XDP_DROP))))
  XDP_PASS)
"""


class KernelWithLimits:
    """The kernel as ``KernelView`` reads it, faked: nothing pinned where the object goes, and a map at
    ``LIMITS`` (what a load would reuse) that the test fills."""

    def __init__(self, limits=None):
        self.limits = limits

    def pins(self, spec, prog_dir, map_dir, with_users=False, map_dirs=None):
        state = load.PinState(maps={m.name: None for m in spec.maps}, programs={p.name: None for p in spec.programs})
        if self.limits is not None:
            state.maps["limits"] = load.PinnedMap(LIMITS, sc.MapInfo(2, 77, 4, 8, 3, 0, "limits", 0, 0, 0))
        return state

    def open(self, map_pin):
        return self.limits if map_pin == LIMITS else None


class PinnedLimits(NewMap):
    """The limits array pinned already (what a load reuses), index 1 holding 5."""

    def raw_items(self):
        return {struct.pack("<I", i): struct.pack("<Q", 5 if i == 1 else 0) for i in range(3)}

    def lookup(self, key):
        return self.raw_items().get(key)


@pytest.fixture
def obj(tmp_path):
    path = tmp_path / "filter.bpf.o"
    path.write_bytes(compiler.compile_source(SOURCE, "filter.lisp").elf)
    return path


def planned_load(obj, kernel=None, files=None):
    """An active overlay on ``kernel`` in which xdp_load planned to load ``obj`` (as the module plans it)."""
    overlay = Overlay.decode({"files": files or {}})
    overlay.kernel = kernel or KernelWithLimits()
    spec = read_object(overlay.file(str(obj)))
    spec.source = str(obj)
    plan = load.decide(spec, overlay.reader().pins(spec, APP, MAPS), APP, MAPS)
    overlay.record_load(plan, {p.name: "00" * 8 for p in spec.programs})
    return overlay


def test_a_new_map_is_empty_and_a_new_array_all_zeros():
    hash_map = NewMap(MapSpec("h", sc.MAP_TYPE_HASH, 4, 4, 8), None, 5)
    assert hash_map.raw_items() == {} and hash_map.lookup(bytes(4)) is None
    array = NewMap(MapSpec("a", sc.MAP_TYPE_ARRAY, 4, 8, 3), None, 6)
    assert array.raw_items() == {struct.pack("<I", i): bytes(8) for i in range(3)}
    assert array.lookup(struct.pack("<I", 2)) == bytes(8) and array.lookup(struct.pack("<I", 3)) is None
    assert (array.info.id, array.info.max_entries, array.codec().value.decode(bytes(8))) == (6, 3, 0)


def test_the_load_records_the_object_of_the_maps_it_creates(obj):
    overlay = planned_load(obj)
    rules = overlay.pins[RULES]
    assert (rules.kind, rules.object, rules.object_sha256) == ("map", str(obj), read_object(str(obj)).sha256)
    assert PlannedPin.decode(RULES, rules.encode()) == rules
    assert overlay.planned["pins"][RULES]["object"] == str(obj)


def test_struct_entries_of_a_planned_map_are_validated_and_planned_from_empty(obj):
    overlay = planned_load(obj)
    entry = {"key": {"port": 22, "proto": 6, "pad": 0}, "value": {"action": 1, "hits": 0}}
    plan = plan_map_entries(RULES, [entry], reader=overlay.reader())
    assert plan.changed and plan.added == (entry["key"],) and plan.before == {}
    assert plan.after == {'{"port":22,"proto":6,"pad":0}': entry["value"]}
    assert public(plan.map_id) is None and isinstance(plan.map_id, Planned)
    bad = [entry, {"key": {"port": 70000, "proto": 6, "pad": 0}, "value": {"action": 1, "hits": 0, "x": 1}}]
    with pytest.raises(MapEntriesError) as exc:
        plan_map_entries(RULES, bad, reader=overlay.reader())
    assert "entries[1].key.port: 70000 is greater than the maximum of 65535" in str(exc.value)
    assert "entries[1].value: Additional properties are not allowed ('x' was unexpected)" in str(exc.value)


def test_a_planned_array_holds_zeros_and_a_kept_one_its_contents(obj):
    overlay = planned_load(obj)
    plan = plan_map_entries(LIMITS, {"1": 5}, reader=overlay.reader(), contents=True)
    assert (plan.before, plan.after) == ({1: 0}, {1: 5})
    assert plan.contents == ({"key": 0, "value": 0}, {"key": 1, "value": 5}, {"key": 2, "value": 0})
    assert not plan_map_entries(LIMITS, {"2": None}, state="absent", reader=overlay.reader()).changed

    overlay = planned_load(obj, KernelWithLimits(PinnedLimits(MapSpec("limits", sc.MAP_TYPE_ARRAY, 4, 8, 3), None, 77)))
    assert LIMITS not in overlay.pins  # reused: the load plans nothing there
    assert not plan_map_entries(LIMITS, {"1": 5}, reader=overlay.reader()).changed


def test_a_map_the_run_would_remove_is_gone(obj):
    overlay = planned_load(obj)
    overlay.record_unload([RULES])
    with pytest.raises(MapEntriesError, match=f"map {RULES}: nothing is pinned there"):
        plan_map_entries(RULES, {"1": 1}, reader=overlay.reader())
    absent = plan_map_entries(RULES, [{"key": {"port": 22, "proto": 6, "pad": 0}}], state="absent",
                              exclusive=True, reader=overlay.reader())
    assert not absent.changed and absent.map_id == 0


def test_a_program_where_the_map_should_be_or_a_changed_object_is_refused(obj, tmp_path):
    overlay = planned_load(obj)
    overlay.record_pin(RULES, PlannedPin("prog", Planned("prog", RULES, "rules", "ab")))
    with pytest.raises(BpfError, match="not a BPF map"):
        plan_map_entries(RULES, {}, reader=overlay.reader())

    other = tmp_path / "other.bpf.o"
    other.write_bytes(compiler.compile_source(SOURCE.replace(":max-entries 8", ":max-entries 9"), "o.lisp").elf)
    overlay = planned_load(obj, files={str(obj): str(obj)})
    overlay.files[str(obj)] = str(other)  # a later task of the run would overwrite the object
    with pytest.raises(MapEntriesError, match="changes after the task that would create the map"):
        plan_map_entries(RULES, {}, reader=overlay.reader())
    overlay.record_pin(RULES, PlannedPin("map", Planned("map", RULES, "rules"), "rules", map_type=1))
    with pytest.raises(MapEntriesError, match="does not know its object"):
        plan_map_entries(RULES, {}, reader=overlay.reader())


def test_an_object_xdp_compile_would_deliver_is_read_from_where_it_was_shipped(obj, tmp_path):
    planned_path = "/var/lib/xdp/filter.bpf.o"  # not on this machine: only its planned content exists
    overlay = planned_load(planned_path, files={planned_path: str(obj)})
    assert overlay.pins[RULES].object == planned_path
    assert plan_map_entries(LIMITS, {"0": 1}, reader=overlay.reader()).changed
