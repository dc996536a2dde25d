"""The generations of a dispatcher rollout in bpffs: a ``Layout`` in, what is pinned there out; records,
pointers, adoption of the version 1 layout and removal.

In: a ``Layout`` (and, to write, a record's content and kernel objects' fds).
Out: ``read_generations`` -> {number: ``Generation``} (programs with id/tag/maps, prog-arrays with their
slots, the record or None when the generation is incomplete); ``read_pointer``/``set_pointer`` for
``gen/current`` and ``gen/previous``; ``read_legacy`` (a version 1 rollout, seen as generation 0 to adopt);
``write_record``; ``adopt``; ``remove_generation``; ``stray_pins`` (staged pins a killed run left).

A generation's record is a frozen one-entry ARRAY map holding JSON (object sha256, program tags and
flags, slots, created), pinned after everything else of the generation: a generation without one was
cut short (killed) or is being removed, and is swept. The pointers are symlinks to a generation's
directory (``gen/current -> 2``), swapped by an atomic rename, so ``<pin_path>/gen/current/maps/<jump
table>`` is always the live jump table for bpftool and xdp_info. Reading changes nothing.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from .. import pins
from .. import syscalls as sc
from ..errors import BpfError
from ..maps import Map, ProgArray
from ..objfile import MapSpec
from ..pinnames import STAGED_NAME
from ..program import Program
from .layout import Layout, generation_number

RECORD_MAP_NAME = "whistler_gen"
SCHEMA = 1
MAX_RECORD = 65536


@dataclass(frozen=True)
class GenProgram:
    name: str
    path: str
    id: int
    tag: str
    prog_type: int
    map_ids: Tuple[int, ...]


@dataclass(frozen=True)
class GenArray:
    name: str
    path: str
    id: int
    max_entries: int
    entries: Dict[int, int]


@dataclass
class Generation:
    """One generation as pinned. ``record`` is None while it is incomplete; ``legacy`` marks the version 1
    layout (programs directly in the pin path), which has no record and is adopted as generation 0."""

    number: int
    directory: str
    programs: Dict[str, GenProgram] = field(default_factory=dict)
    arrays: Dict[str, GenArray] = field(default_factory=dict)
    record: Optional[dict] = None
    record_id: int = 0
    all_pins: List[str] = field(default_factory=list)
    legacy: bool = False

    @property
    def complete(self) -> bool:
        return self.record is not None or self.legacy

    def program_name(self, prog_id: int) -> Optional[str]:
        return next((p.name for p in self.programs.values() if p.id == prog_id), None)

    def slots(self, jump_table: str) -> Dict[int, str]:
        """{slot: program name} of the jump table (a program of another generation shows as its id)."""
        array = self.arrays.get(jump_table)
        if array is None:
            return {}
        return {slot: self.program_name(prog_id) or f"program {prog_id}" for slot, prog_id in sorted(array.entries.items())}

    @property
    def prog_ids(self) -> set:
        return {p.id for p in self.programs.values()}


# -- reading --------------------------------------------------------------------------------------

def read_generations(layout: Layout) -> Dict[int, Generation]:
    """Every generation directory under ``gen/``, complete or not, by number."""
    found = {}
    if os.path.isdir(layout.generations):
        for entry in sorted(os.listdir(layout.generations)):
            number = generation_number(entry)
            if number is not None and os.path.isdir(layout.generation(number)):
                found[number] = _read_generation(layout, number)
    return found


def _read_generation(layout: Layout, number: int) -> Generation:
    gen = Generation(number, layout.generation(number), all_pins=files_under(layout.generation(number)))
    for name, kind in pins.list_pins(layout.programs(number)).items():
        if kind == "program":
            gen.programs[name] = read_program(name, pins.join(layout.programs(number), name, "program name"))
    for name, kind in pins.list_pins(layout.arrays(number)).items():
        if kind == "map":
            array = read_array(name, pins.join(layout.arrays(number), name, "map name"))
            if array is not None:
                gen.arrays[name] = array
    if pins.exists(layout.record(number)):
        gen.record_id, gen.record = read_record(layout.record(number))
    return gen


def read_program(name: str, path: str) -> GenProgram:
    with Program.from_pin(path) as prog:
        info = prog.info()
    return GenProgram(name, path, info.id, info.tag, info.type, tuple(info.map_ids))


def read_array(name: str, path: str) -> Optional[GenArray]:
    """The prog-array pinned at ``path`` with its slots; None for another kind of map."""
    with Map.from_pin(path) as array:
        if not isinstance(array, ProgArray):
            return None
        return GenArray(name, path, array.id, array.info.max_entries, array.entries())


def files_under(directory: str) -> List[str]:
    """Every pin and symlink under ``directory`` (symlinks to directories are listed, not followed)."""
    found = []
    for root, dirs, files in os.walk(directory):
        links = [name for name in dirs if os.path.islink(os.path.join(root, name))]
        found += [os.path.join(root, name) for name in sorted(files + links)]
    return found


def read_record(path: str) -> Tuple[int, dict]:
    """(map id, content) of the generation record pinned at ``path``."""
    with Map.from_pin(path) as record:
        info = record.info
        raw = record.lookup(0) if (info.type, info.key_size, info.max_entries) == (sc.MAP_TYPE_ARRAY, 4, 1) else None
    try:
        content = json.loads(raw.rstrip(b"\0").decode()) if raw else None
    except ValueError:
        content = None
    if not isinstance(content, dict) or content.get("schema") != SCHEMA:
        raise BpfError(errno.EINVAL, "generation record", path, f"map {info.id} ({info.name!r}) is not a "
                       "generation record of this collection; remove it or use another pin_path")
    return info.id, content


def read_pointer(path: str) -> Optional[int]:
    """The generation the pointer symlink at ``path`` names (None: no pointer, or not one of ours)."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    return generation_number(target)


def read_legacy(layout: Layout) -> Optional[Generation]:
    """A version 1 rollout (programs directly in the pin path, its jump table among the shared maps) as
    generation 0, or None when the pin path holds no program directly."""
    gen = Generation(0, layout.root, legacy=True)
    for name, kind in pins.list_pins(layout.root).items():
        if kind == "program":
            gen.programs[name] = read_program(name, pins.join(layout.root, name, "program name"))
    if not gen.programs:
        return None
    for name, kind in pins.list_pins(layout.shared_maps).items():
        if kind == "map":
            array = read_array(name, pins.join(layout.shared_maps, name, "map name"))
            if array is not None:
                gen.arrays[name] = array
    gen.all_pins = [p.path for p in gen.programs.values()] + [a.path for a in gen.arrays.values()]
    return gen


def stray_pins(layout: Layout) -> List[str]:
    """Pins staged under a temporary name (``pins.stage``) that a killed run never renamed into place."""
    return [path for path in files_under(layout.root) if STAGED_NAME.fullmatch(os.path.basename(path))]


# -- writing --------------------------------------------------------------------------------------

def record_content(number: int, object_sha256: Optional[str], dispatcher: str, jump_table: str,
                   programs: Dict[str, dict], slots: Dict[int, str], adopted: bool = False) -> dict:
    """What a generation's record holds; ``programs``: {name: {tag, prog_type, attach_type, flags}}."""
    return {"schema": SCHEMA, "generation": number, "object_sha256": object_sha256, "dispatcher": dispatcher,
            "jump_table": jump_table, "programs": programs, "slots": {str(k): v for k, v in sorted(slots.items())},
            "adopted": adopted,
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def write_record(path: str, content: dict) -> int:
    """Pin ``content`` at ``path`` as a frozen one-entry ARRAY map; returns the map's id."""
    data = json.dumps(content, sort_keys=True).encode()
    if len(data) > MAX_RECORD:
        raise BpfError(errno.E2BIG, "generation record", path, f"{len(data)} bytes of JSON (at most {MAX_RECORD})")
    size = (len(data) + 7) // 8 * 8
    with Map.create(MapSpec(RECORD_MAP_NAME, sc.MAP_TYPE_ARRAY, 4, size, 1)) as record:
        record.update(0, data.ljust(size, b"\0"))
        sc.map_freeze(record.fd)
        pins.pin(record.fd, path)
        return record.id


def set_pointer(path: str, number: Optional[int]) -> None:
    """Point ``path`` (gen/current or gen/previous) at generation ``number``: a symlink made under a
    temporary name and renamed over the old one (readers see the old or the new target, never none);
    None removes the pointer."""
    if number is None:
        pins.unpin(path)
        return
    temporary = f"{path}{pins.TMP_MARK}{uuid.uuid4().hex[:8]}"
    os.symlink(str(int(number)), temporary)
    try:
        os.rename(temporary, path)
    except BaseException:
        pins.unpin(temporary)
        raise


def adopt(layout: Layout, legacy: Generation, content: dict) -> Generation:
    """Generation 0 made of the version 1 pins: each program and prog-array pinned once more under
    ``gen/0``, then the record. The version 1 pins stay (``unpin_all`` them once gen/0 is current), so a
    kill at any point leaves the running rollout as it was, and at worst an incomplete gen/0 to sweep."""
    made: List[str] = []
    try:
        for prog in legacy.programs.values():
            made.append(_pin_again(prog.path, layout.program(0, prog.name)))
        for array in legacy.arrays.values():
            made.append(_pin_again(array.path, layout.array(0, array.name)))
        write_record(layout.record(0), content)
    except BaseException:
        unpin_all(made)
        for directory in (layout.programs(0), layout.arrays(0), layout.generation(0)):
            pins.remove_dir_if_empty(directory)
        raise
    return _read_generation(layout, 0)


def _pin_again(source: str, path: str) -> str:
    pins.makedirs(os.path.dirname(path))
    fd = sc.obj_get(source)
    try:
        pins.pin(fd, path)
    finally:
        os.close(fd)
    return path


def unpin_all(paths: Iterable[str]) -> List[str]:
    """Unpin each path; the ones that were pinned."""
    return [path for path in paths if pins.unpin(path)]


def remove_generation(layout: Layout, gen: Generation) -> List[str]:
    """Unpin a generation: its record first (from then on it reads as incomplete, so a kill midway leaves
    something the next run sweeps), then everything else, then its directories. Returns the pins removed."""
    if gen.legacy:
        return unpin_all(gen.all_pins)
    record = layout.record(gen.number)
    removed = unpin_all([record])
    removed += unpin_all(p for p in files_under(gen.directory) if p != record)
    for directory in (layout.programs(gen.number), layout.arrays(gen.number), gen.directory):
        pins.remove_dir_if_empty(directory)
    return removed
