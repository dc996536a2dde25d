"""Map contents as desired state: plan (read-only), then apply.

In: ``plan_map_entries(map_pin, entries, exclusive, state)``, where ``entries`` is the task's option as
given (a dict key -> value, or a list of ``{key, value}``); a reader opens the pinned map: the kernel by
default, a fake in unit tests, in check mode the overlay (``_overlay``), which also opens a map an earlier
task would create (``maps.NewMap``). Out: a ``MapPlan`` (writes and deletes as raw bytes, and what each
key held before, for rolling back; before/after of every key concerned, decoded for the diff) and, from
``apply_map_entries(plan)``, a ``MapResult``. Nothing pinned is an error, except for state=absent: then
there is nothing to remove (an empty plan with map id 0).

Every entry is checked against the JSON Schema of the map's BTF types (``schema``) and encoded
(``btfvalue``) before anything is written; all problems are reported at once, each naming the entry
and the field. Values are compared decoded, so equal values never count as a change, and keys as the
kernel tells them apart (an LPM key without host bits). Writes update in place (BPF_ANY): changed
keys first, then new ones; unwanted keys are deleted afterwards, or first when the map could not hold
old and new keys together. If a write fails, the keys already written get their old values back.
Arrays cannot lose elements: "removing" one writes zeros, its initial value.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import pins
from . import syscalls as sc
from .btfvalue import CodecError, MapCodec
from .errors import BpfError
from .maps import PERCPU_TYPES, Map
from .names import map_type_name
from .schema import entry_errors, entry_schema, field_path, validator

STATES = ("present", "absent")
WRITABLE_TYPES = (sc.MAP_TYPE_HASH, sc.MAP_TYPE_ARRAY, sc.MAP_TYPE_LRU_HASH, 11)  # 11: LPM_TRIE
CAPPED_TYPES = (sc.MAP_TYPE_HASH, 11)  # full at max_entries (an LRU hash evicts instead)
REFUSED = {
    sc.MAP_TYPE_PROG_ARRAY: "it is a prog-array: whistler.xdp.xdp_prog_array manages jump tables",
    27: "it is a ring buffer: it carries events to user space and has no entries",
}
MAX_ERRORS = 20


class MapEntriesError(ValueError):
    """The plan cannot be made: not a map xdp_map manages, entries that do not fit the map."""


@dataclass(frozen=True)
class Entry:
    """One entry of the task as given (``item``: its ``{key, value}``); ``where`` names it in messages.
    A key given as a dict key is text, read through the key codec (``key_from_text``)."""

    where: str
    item: Dict[str, Any]
    key_is_text: bool = False

    @property
    def value(self):
        return self.item.get("value")


def entries_from_option(entries) -> List[Entry]:
    """The ``entries`` option (a dict key -> value, a list of {key, value}, or None) as Entry records."""
    if entries is None:
        return []
    if isinstance(entries, dict):
        return [Entry(f"entries[{key!r}]", {"key": key} if value is None else {"key": key, "value": value},
                      key_is_text=True) for key, value in entries.items()]
    if isinstance(entries, list):
        result = []
        for index, item in enumerate(entries):
            if not isinstance(item, dict) or "key" not in item:
                raise MapEntriesError(f"entries[{index}]: expected a dict with key and value, not {item!r}")
            result.append(Entry(f"entries[{index}]", dict(item)))
        return result
    raise MapEntriesError(f"entries: expected a dict (key: value) or a list of {{key, value}}, not {entries!r}")


class KernelReader:
    """Opens pinned maps for planning (tests substitute a fake with the same ``open``)."""

    def open(self, map_pin: str) -> Optional[Map]:
        try:
            return Map.from_pin(map_pin)
        except BpfError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise


@dataclass(frozen=True)
class Write:
    """Set ``key`` to ``value`` (raw bytes); ``value`` None deletes the key."""

    label: Any
    key: bytes
    value: Optional[bytes]


@dataclass(frozen=True)
class MapPlan:
    map_pin: str
    map_id: int
    map_type: str
    max_entries: int
    writes: Tuple[Write, ...] = ()                     # in the order they are applied
    previous: Dict[bytes, Optional[bytes]] = field(default_factory=dict)  # key -> raw value before (None: absent)
    before: Dict[Any, Any] = field(default_factory=dict)  # label -> decoded value of every key concerned
    after: Dict[Any, Any] = field(default_factory=dict)
    added: Tuple[Any, ...] = ()                        # decoded keys
    updated: Tuple[Any, ...] = ()
    removed: Tuple[Any, ...] = ()
    entries: Tuple[dict, ...] = ()                     # the listed keys after the task: {key, value}
    contents: Optional[Tuple[dict, ...]] = None        # the whole map after the task, when asked for

    @property
    def changed(self) -> bool:
        return bool(self.writes)


@dataclass(frozen=True)
class MapResult:
    changed: bool
    warnings: Tuple[str, ...] = ()


def plan_map_entries(map_pin: str, entries, exclusive: bool = False, state: str = "present",
                     contents: bool = False, reader=None) -> MapPlan:
    """Compare the map pinned at ``map_pin`` with ``entries``; reads only, changes nothing."""
    if state not in STATES:
        raise ValueError(f"state {state!r}: expected one of {', '.join(STATES)}")
    wanted = entries_from_option(entries)
    bpf_map = (reader or KernelReader()).open(map_pin)
    if bpf_map is None and state == "absent":
        return MapPlan(map_pin, 0, "", 0, contents=() if contents else None)  # nothing left to remove
    if bpf_map is None:
        raise MapEntriesError(f"map {map_pin}: nothing is pinned there (load the object first)")
    with bpf_map:
        info = bpf_map.info
        _check_type(map_pin, info.type, writes=bool(wanted) or exclusive)
        codec = bpf_map.codec()
        desired = _encode(map_pin, codec, wanted, state, info)
        if exclusive or contents or info.type != sc.MAP_TYPE_ARRAY:
            current = {codec.identity(k): (k, v) for k, v in bpf_map.raw_items().items()}
        else:  # an array's listed indices are all there is to read
            current = {}
            for key, _value, _entry in desired.values():
                current[key] = (key, bpf_map.lookup(key))
        return _plan(map_pin, info, codec, desired, current, exclusive, state, contents)


def _check_type(map_pin: str, map_type: int, writes: bool) -> None:
    name = map_type_name(map_type)
    if map_type in REFUSED:
        raise MapEntriesError(f"map {map_pin}: {REFUSED[map_type]}")
    if map_type in PERCPU_TYPES:
        if writes:
            raise MapEntriesError(f"map {map_pin}: {name} maps are read-only here: every CPU holds its own "
                                  "value (read them with contents: true or whistler.xdp.xdp_info)")
        return
    if map_type not in WRITABLE_TYPES:
        raise MapEntriesError(f"map {map_pin}: {name} maps are not supported (xdp_map manages hash, lru_hash, "
                              "array and lpm_trie maps, and reads per-CPU maps)")


def _encode(map_pin: str, codec: MapCodec, wanted: List[Entry], state: str,
            info: sc.MapInfo) -> Dict[bytes, Tuple[bytes, Optional[bytes], Entry]]:
    """{key identity: (raw key, raw value or None, entry)}; raises MapEntriesError with every problem."""
    checker = validator(_entry_schema(codec, info, value_required=state == "present"))
    problems: List[str] = []
    desired: Dict[bytes, Tuple[bytes, Optional[bytes], Entry]] = {}
    for entry in wanted:
        key = codec.key_from_text(entry.item["key"]) if entry.key_is_text else entry.item["key"]
        item = dict(entry.item, key=key)
        if item.get("value", 0) is None:  # null: any value (state=absent), or missing (present)
            del item["value"]
        errors = entry_errors(checker, item, entry.where)
        if not errors:
            try:
                raw_key = codec.key.encode(key)
            except CodecError as exc:
                errors = [f"{field_path(entry.where, ('key',) + exc.path)}: {exc}"]
        if not errors and entry.value is not None:
            try:
                raw_value = codec.value.encode(entry.value)
            except CodecError as exc:
                errors = [f"{field_path(entry.where, ('value',) + exc.path)}: {exc}"]
        if errors:
            problems.extend(errors)
            continue
        identity = codec.identity(raw_key)
        if identity in desired:
            problems.append(f"{entry.where}: the same key as {desired[identity][2].where}")
            continue
        desired[identity] = (raw_key, None if entry.value is None else raw_value, entry)
    if problems:
        shown = problems[:MAX_ERRORS] + ([f"... and {len(problems) - MAX_ERRORS} more"]
                                         if len(problems) > MAX_ERRORS else [])
        raise MapEntriesError(f"map {map_pin}: " + "; ".join(shown))
    return desired


def _entry_schema(codec: MapCodec, info: sc.MapInfo, value_required: bool) -> dict:
    schema = entry_schema(codec, value_required)
    if info.type == sc.MAP_TYPE_ARRAY:  # indices stop before max_entries
        key = schema["properties"]["key"]
        key["maximum"] = min(key.get("maximum", info.max_entries - 1), info.max_entries - 1)
    return schema


Current = Dict[bytes, Tuple[bytes, Optional[bytes]]]  # key identity -> (raw key, raw value or None)


def _plan(map_pin, info, codec: MapCodec, desired, current: Current, exclusive, state, contents) -> MapPlan:
    updates, inserts, removals = _changes(info, codec, desired, current, exclusive, state)
    # A full hash or LPM trie refuses new keys: delete first when old and new would not fit together.
    deletes_first = False
    if info.type in CAPPED_TYPES:
        final = len(current) + len(inserts) - len(removals)
        if final > info.max_entries:
            raise MapEntriesError(f"map {map_pin}: {final} entries after this task do not fit its max_entries "
                                  f"{info.max_entries} ({len(current)} there now, {len(inserts)} to add, "
                                  f"{len(removals)} to remove)")
        deletes_first = len(current) + len(inserts) > info.max_entries
    writes = tuple(removals + updates + inserts) if deletes_first else tuple(updates + inserts + removals)

    after_raw = {identity: kv for identity, kv in current.items() if kv[1] is not None}
    for w in writes:
        if w.value is None:
            after_raw.pop(codec.identity(w.key), None)
        else:
            after_raw[codec.identity(w.key)] = (w.key, w.value)
    before, after = {}, {}
    for identity in dict.fromkeys(list(desired) + [codec.identity(w.key) for w in writes]):
        for side, state_of in ((before, current), (after, after_raw)):
            key, value = state_of.get(identity, (None, None))
            if value is not None:
                side[_label(codec, key)] = codec.decode_value(value)

    def decoded(items) -> Tuple[dict, ...]:
        return tuple({"key": codec.key.decode(key), "value": codec.decode_value(value)} for key, value in items)

    return MapPlan(
        map_pin, info.id, map_type_name(info.type), info.max_entries, writes,
        previous={w.key: current.get(codec.identity(w.key), (w.key, None))[1] for w in writes},
        before=before, after=after,
        added=tuple(codec.key.decode(w.key) for w in inserts),
        updated=tuple(codec.key.decode(w.key) for w in updates),
        removed=tuple(codec.key.decode(w.key) for w in removals),
        entries=decoded(after_raw[i] for i in desired if i in after_raw),
        contents=decoded(sorted(after_raw.values(), key=lambda kv: _order(_label(codec, kv[0]))))
        if contents else None)


def _changes(info, codec: MapCodec, desired, current: Current, exclusive: bool, state: str):
    """``(updates, inserts, removals)``: the writes that make ``current`` what the task asks for."""
    is_array = info.type == sc.MAP_TYPE_ARRAY
    zero = bytes(info.value_size)
    updates: List[Write] = []
    inserts: List[Write] = []
    removals: List[Write] = []
    removed = set()

    def remove(identity: bytes, key: bytes, value: bytes) -> None:
        if identity in removed or (is_array and value == zero):
            return
        removed.add(identity)
        removals.append(Write(_label(codec, key), key, zero if is_array else None))

    for identity, (key, value, _entry) in desired.items():
        have_key, have = current.get(identity, (key, None))
        if state == "present" and have is None:
            inserts.append(Write(_label(codec, key), key, value))
        elif state == "present" and codec.decode_value(have) != codec.decode_value(value):
            updates.append(Write(_label(codec, key), have_key, value))
        elif state == "absent" and have is not None and (
                value is None or codec.decode_value(have) == codec.decode_value(value)):
            remove(identity, have_key, have)
    if exclusive:
        keep = set(desired) if state == "present" else set()
        for identity, (key, value) in current.items():
            if identity not in keep and value is not None:
                remove(identity, key, value)
    return updates, inserts, removals


def _label(codec: MapCodec, raw_key: bytes):
    return codec.label(codec.key.decode(raw_key))


def _order(label) -> tuple:
    return (0, label, "") if isinstance(label, int) else (1, 0, str(label))


def apply_map_entries(plan: MapPlan) -> MapResult:
    """Make the planned writes, holding the lock of the map's pin directory (``pins.locked``); if one
    fails, the keys already written get their previous values back and the error is raised."""
    if not plan.changed:
        return MapResult(False)
    with pins.locked(os.path.dirname(plan.map_pin)):
        with Map.from_pin(plan.map_pin) as bpf_map:
            if bpf_map.info.id != plan.map_id:
                raise MapEntriesError(f"map {plan.map_pin}: a different map was pinned there since the plan")
            done: List[Write] = []
            try:
                for w in plan.writes:
                    _write(bpf_map, plan.map_pin, w)
                    done.append(w)
            except BaseException:
                _restore(bpf_map, done, plan.previous)
                raise
            return MapResult(True, tuple(_missing_after(bpf_map, plan)))


def _write(bpf_map: Map, map_pin: str, w: Write) -> None:
    try:
        if w.value is None:
            bpf_map.delete(w.key)
        else:
            bpf_map.update(w.key, w.value, sc.ANY)
    except BpfError as exc:
        exc.op, exc.obj = ("delete map entry" if w.value is None else "update map entry"), f"{map_pin} key {w.label}"
        raise


def _restore(bpf_map: Map, done: List[Write], previous: Dict[bytes, Optional[bytes]]) -> None:
    """Put back what the written keys held (best effort, newest first)."""
    for w in reversed(done):
        try:
            if previous.get(w.key) is None:
                bpf_map.delete(w.key)
            else:
                bpf_map.update(w.key, previous[w.key], sc.ANY)
        except BpfError:
            continue


def _missing_after(bpf_map: Map, plan: MapPlan) -> List[str]:
    """Keys written that are gone right after the task: an LRU hash evicted them, or a program
    deleted them meanwhile."""
    written = [w for w in plan.writes if w.value is not None]
    if not written or bpf_map.info.type == sc.MAP_TYPE_ARRAY:
        return []
    present = set(bpf_map.raw_items())
    return [f"map {plan.map_pin}: key {w.label} was written but is gone already (an LRU map evicts "
            f"entries when it is full; a program may delete entries)" for w in written if w.key not in present]
