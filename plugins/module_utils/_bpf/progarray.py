"""Fill the slots of a pinned prog-array (jump table): plan (read-only), then apply.

In: ``plan_prog_array(map_pin, entries={key: program_pin}, exclusive, state)``; a reader (the kernel
by default, a fake in unit tests) supplies the array and what is pinned.
Out: a ``ProgArrayPlan`` (slots to overwrite, slots to empty, entries before and after, as
{key: prog id}) and from ``apply_prog_array(plan)`` a ``ProgArrayResult`` with the entries read back;
``describe_entries`` resolves {key: prog id} to each program's full name and pins. ``parse_slot`` turns
a slot as an option gives it (an int, or ASCII decimal or ``0x`` hex text: YAML/JSON keys are strings)
into a slot number, and refuses anything else ("1_0", "٣", " 3", "+3").

Slots are compared by program id (a lookup returns the id). A slot is changed by overwriting it
(BPF_ANY swaps the pointer in one step, so tail calls never fall through); only slots that must
end up empty are deleted, and never to insert again. ``exclusive`` empties every slot not named;
state=absent empties the named slots (those holding the named program, or anything for None). What is
already gone is fine for state=absent: no array pinned is an empty plan, and a named program that is no
longer pinned matches no slot.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from . import pins, syscalls
from .errors import BpfError
from .maps import Map, ProgArray
from .pinned import pinned, pins_by_prog_id
from .program import Program

STATES = ("present", "absent")
MAX_KEY = 0xFFFFFFFF  # prog-array keys are u32
_DECIMAL = re.compile(r"[0-9]{1,10}")          # [0-9], not \d: ASCII digits only
_HEX = re.compile(r"0[xX][0-9a-fA-F]{1,8}")


class ProgArrayError(ValueError):
    """The plan cannot be made: wrong map, key out of range, program not pinned."""


def parse_slot(key: object, what: str = "entries") -> int:
    """Slot number ``key``: an int, or text that is plain ASCII decimal (``6``) or hex (``0x11``), at
    most 0xFFFFFFFF; ProgArrayError naming ``what`` otherwise. Python's ``int()`` would also take "1_0",
    " 3" and non-ASCII digits ("٣"), which are refused here."""
    if isinstance(key, int) and not isinstance(key, bool):
        value = key
    elif isinstance(key, str) and _DECIMAL.fullmatch(key):
        value = int(key, 10)
    elif isinstance(key, str) and _HEX.fullmatch(key):
        value = int(key, 16)
    else:
        raise ProgArrayError(f"{what}: key {key!r} is not a slot number (plain decimal such as 6, or hex such "
                             "as 0x6)")
    if not 0 <= value <= MAX_KEY:
        raise ProgArrayError(f"{what}: slot {value} is out of range (0..{MAX_KEY})")
    return value


@dataclass(frozen=True)
class ProgArrayView:
    map_id: int
    map_type: int
    max_entries: int
    entries: Dict[int, int]


def read_prog_array(map_pin: str) -> ProgArrayView:
    """The map pinned at ``map_pin`` with, for a prog array, its filled slots ({key: prog id})."""
    with Map.from_pin(map_pin) as array:
        entries = array.entries() if isinstance(array, ProgArray) else {}
        return ProgArrayView(array.info.id, array.info.type, array.info.max_entries, entries)


@dataclass(frozen=True)
class SlotProgram:
    """The program in a slot: its id, full name ("" if it was unloaded meanwhile) and pin paths."""

    id: int
    name: str
    pins: Tuple[str, ...]


def describe_entries(entries: Dict[int, int], directories: Sequence[str]) -> Dict[int, SlotProgram]:
    """{key: SlotProgram} for ``entries`` ({key: prog id}): names from the kernel, pins found anywhere
    under ``directories`` (e.g. the pin path the object was loaded under)."""
    pinned_at: Dict[int, list] = {}
    for directory in directories:
        if os.path.isdir(directory):
            for prog_id, paths in pins_by_prog_id(directory).items():
                pinned_at.setdefault(prog_id, []).extend(paths)
    described = {}
    for key, prog_id in sorted(entries.items()):
        try:
            with Program.from_id(prog_id) as program:
                name = program.full_name()
        except BpfError as exc:
            if exc.errno != errno.ENOENT:
                raise
            name = ""
        described[key] = SlotProgram(prog_id, name, tuple(sorted(set(pinned_at.get(prog_id, ())))))
    return described


class KernelReader:
    """Read-only view of the kernel for planning (tests substitute a fake with the same methods)."""

    def prog_array(self, map_pin: str) -> Optional[ProgArrayView]:
        try:
            return read_prog_array(map_pin)
        except BpfError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise

    def pinned(self, path: str):
        return pinned(path)


@dataclass(frozen=True)
class ProgArrayPlan:
    map_pin: str
    map_id: int
    max_entries: int
    before: Dict[int, int]
    after: Dict[int, int]
    writes: Dict[int, str] = field(default_factory=dict)
    deletes: Tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.writes or self.deletes)


@dataclass(frozen=True)
class ProgArrayResult:
    before: Dict[int, int]
    after: Dict[int, int]
    changed: bool


def plan_prog_array(map_pin: str, entries: Dict[int, Optional[str]], exclusive: bool = False,
                    state: str = "present", reader=None) -> ProgArrayPlan:
    """Compare the array's slots with ``entries``; reads only, changes nothing."""
    if state not in STATES:
        raise ValueError(f"state {state!r}: expected one of {', '.join(STATES)}")
    reader = reader or KernelReader()
    view = reader.prog_array(map_pin)
    if view is None and state == "absent":
        return ProgArrayPlan(map_pin, 0, 0, {}, {})
    if view is None:
        raise ProgArrayError(f"map {map_pin}: nothing is pinned there (load the object first)")
    if view.map_type != syscalls.MAP_TYPE_PROG_ARRAY:
        raise ProgArrayError(f"map {map_pin}: map {view.map_id} has type {view.map_type}, "
                             f"not a prog array (type {syscalls.MAP_TYPE_PROG_ARRAY})")
    wanted = {}
    for key, program_pin in entries.items():
        if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < view.max_entries:
            raise ProgArrayError(f"map {map_pin}: slot {key!r} is out of range: the array has "
                                 f"{view.max_entries} slots (0..{view.max_entries - 1})")
        if program_pin is None and state == "present":
            raise ProgArrayError(f"map {map_pin}: slot {key} needs a program pin")
        if program_pin and state == "absent" and reader.pinned(program_pin) is None:
            continue  # the program is gone: no slot can be recognised as holding it
        wanted[key] = _program_id(reader, map_pin, key, program_pin) if program_pin else None

    after = dict(view.entries)
    writes = {}
    if state == "present":
        for key, prog_id in wanted.items():
            if view.entries.get(key) != prog_id:
                writes[key] = entries[key]
                after[key] = prog_id
        emptied = [key for key in view.entries if exclusive and key not in wanted]
    else:
        emptied = [key for key in view.entries
                   if exclusive or (key in wanted and wanted[key] in (None, view.entries[key]))]
    for key in emptied:
        del after[key]
    return ProgArrayPlan(map_pin, view.map_id, view.max_entries, dict(view.entries), after, writes,
                         tuple(sorted(emptied)))


def _program_id(reader, map_pin: str, key: int, program_pin: str) -> int:
    found = reader.pinned(program_pin)
    if found is None:
        raise ProgArrayError(f"map {map_pin} slot {key}: no program is pinned at {program_pin}")
    if found.kind != "prog":
        raise ProgArrayError(f"map {map_pin} slot {key}: a {found.kind} is pinned at {program_pin}, "
                             f"not a program")
    return found.id


def apply_prog_array(plan: ProgArrayPlan) -> ProgArrayResult:
    """Overwrite, then empty, the planned slots. Every program is opened before the first write;
    if a write fails, the slots already written get their previous programs back. Holds the lock of
    the map's pin directory (``pins.locked``) meanwhile."""
    if not plan.changed:
        return ProgArrayResult(plan.before, plan.before, False)
    with pins.locked(os.path.dirname(plan.map_pin)):
        return _apply_prog_array(plan)


def _apply_prog_array(plan: ProgArrayPlan) -> ProgArrayResult:
    with Map.from_pin(plan.map_pin) as array:
        if array.info.id != plan.map_id:
            raise ProgArrayError(f"map {plan.map_pin}: a different map was pinned there since the plan")
        programs = {}
        try:
            for key, program_pin in plan.writes.items():
                programs[key] = Program.from_pin(program_pin)
            written = []
            try:
                for key, program in sorted(programs.items()):
                    try:
                        array.set(key, program.fd)
                    except BpfError as exc:
                        exc.op, exc.obj = "set prog-array slot", f"{plan.map_pin} key {key} -> {plan.writes[key]}"
                        raise
                    written.append(key)
            except BaseException:
                _restore(array, written, plan.before)
                raise
            for key in plan.deletes:
                array.delete(key)
        finally:
            for program in programs.values():
                program.close()
        return ProgArrayResult(plan.before, array.entries(), True)


def _restore(array: ProgArray, keys, before: Dict[int, int]) -> None:
    """Put back what ``keys`` held before (best effort: a program that is gone leaves the slot empty)."""
    for key in keys:
        previous = before.get(key)
        try:
            if previous is None:
                array.delete(key)
            else:
                with Program.from_id(previous) as program:
                    array.set(key, program.fd)
        except BpfError:
            continue
