"""Loading an object into bpffs pins: an ObjectSpec and pin paths in, a read-only plan, then a result.

``plan_load`` reads what is pinned (never loads anything) and decides per map create / reuse / replace /
error and per program load / replace / unchanged (a pinned program whose kernel tag is one of the
spec's offline tags and whose maps are the reused ones). An incompatible pinned map is an error unless
the caller asks to replace it, and even then a prog-array that loaded programs use is never replaced:
a dispatcher running on it would lose every slot (its tail calls would silently fall through).

``apply_load`` carries a plan out without ever half-applying it: open or create every map, load every
program (nothing pinned yet), then pin new maps, stage replacements under temporary names and rename
them into place. On failure everything it created is closed and unpinned, existing pins are left
untouched, and the error names the object file. A compatible pinned map (the jump table above all) is
always reused, never re-created, so its entries and counters survive upgrades.

Layout: programs at ``<pin_path>/<program name>``, maps at ``<map_pin_path or pin_path/maps>/<map name>``,
each path built by ``pins.join`` (names from the object are untrusted); ``map_dirs`` places single maps
elsewhere (a dispatcher generation keeps its own jump table beside its programs while sharing the
counters). Programs and maps are known by their full ELF names; the kernel keeps only the first 15
characters of a name, which nothing here identifies anything by. ``load_objects`` is the first half of
``apply_load`` on its own: every map opened or created and every program loaded, nothing pinned (a
private test instance of an object).
A run killed between staging and renaming leaves ``<name>_whistler_tmp_<hex>`` pins: the next plan lists
them as ``stale`` (a change) and applying it removes them, holding the directories' locks.

``plan_unload``/``apply_unload`` remove those pins again (state=absent), with the staged leftovers and the
directories this leaves empty (the pin path, its ``maps``, ``attached`` and ``links``); nothing pinned is
an empty plan, not an error.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from . import pause, pins
from . import syscalls as sc
from .errors import BpfError, VerifierError
from .fd import FdOwner
from .maps import Map, incompatibilities
from .objfile import MapSpec, ObjectSpec, ProgramSpec
from .program import Program, programs_using

MAP_DIR = pins.MAP_DIR


# -- what is pinned now ---------------------------------------------------------------------------

@dataclass
class PinnedMap:
    path: str
    info: sc.MapInfo
    owner_prog_type: Optional[int] = None
    users: List[Tuple[int, str]] = field(default_factory=list)  # prog-array: (id, name) of programs using it


@dataclass
class PinnedProgram:
    path: str
    info: sc.ProgInfo


@dataclass
class PinState:
    """Per name: what is pinned at its path (None: nothing); ``other``: path -> kind of a wrong object;
    ``staged``: leftovers of a killed run in the two directories."""

    maps: Dict[str, Optional[PinnedMap]] = field(default_factory=dict)
    programs: Dict[str, Optional[PinnedProgram]] = field(default_factory=dict)
    other: Dict[str, str] = field(default_factory=dict)
    staged: List[str] = field(default_factory=list)


def program_pin(pin_path: str, name: str) -> str:
    """Where program ``name`` (its full ELF name) is pinned under ``pin_path``."""
    return pins.join(pin_path, name, "program name")


def map_pin(map_dir: str, name: str) -> str:
    """Where map ``name`` (its full ELF name) is pinned under ``map_dir``."""
    return pins.join(map_dir, name, "map name")


def read_pins(spec: ObjectSpec, prog_dir: str, map_dir: str, with_users: bool = False,
              map_dirs: Optional[Dict[str, str]] = None) -> PinState:
    """What is pinned where ``spec``'s programs and maps would go (reads the kernel, changes nothing).
    ``with_users`` also lists the programs using each pinned prog-array (walks every loaded program)."""
    state = PinState(staged=pins.staged_leftovers(prog_dir) + pins.staged_leftovers(map_dir))
    for m in spec.maps:
        path = map_pin((map_dirs or {}).get(m.name, map_dir), m.name)
        state.maps[m.name] = None
        with _open_pin(path, "map", state) as fd:
            if fd is not None:
                owner = sc.fdinfo(fd.fd).get("owner_prog_type")
                pinned = PinnedMap(path, sc.map_info(fd.fd), int(owner) if owner is not None else None)
                if with_users and pinned.info.type == sc.MAP_TYPE_PROG_ARRAY:
                    pinned.users = [(info.id, info.name) for info in programs_using(pinned.info.id)]
                state.maps[m.name] = pinned
    for p in spec.programs:
        path = program_pin(prog_dir, p.name)
        state.programs[p.name] = None
        with _open_pin(path, "program", state) as fd:
            if fd is not None:
                state.programs[p.name] = PinnedProgram(path, sc.prog_info(fd.fd))
    return state


class _open_pin:
    """Context manager: an FdOwner for the pin at ``path`` if it holds a ``kind``, else None."""

    def __init__(self, path: str, kind: str, state: PinState):
        self.path, self.kind, self.state, self.owner = path, kind, state, None

    def __enter__(self) -> Optional[FdOwner]:
        if not pins.exists(self.path):
            return None
        self.owner = FdOwner(sc.obj_get(self.path), self.path)
        fields = sc.fdinfo(self.owner.fd)
        key = "map_type" if self.kind == "map" else "prog_type"
        if key not in fields:
            self.state.other[self.path] = next((name for k, name in (("prog_type", "program"),
                                                                     ("map_type", "map"),
                                                                     ("link_type", "link")) if k in fields),
                                               "object")
            return None
        return self.owner

    def __exit__(self, *exc) -> None:
        if self.owner is not None:
            self.owner.close()


# -- the plan -------------------------------------------------------------------------------------

@dataclass
class MapStep:
    name: str
    action: str            # create | reuse | replace | error
    pin: str
    spec: MapSpec
    reason: str = ""
    current_id: Optional[int] = None


@dataclass
class ProgramStep:
    name: str
    action: str            # load | replace | unchanged | error
    pin: str
    spec: ProgramSpec
    tags: Set[str] = field(default_factory=set)
    current_tag: Optional[str] = None
    current_id: Optional[int] = None
    reason: str = ""


@dataclass
class LoadPlan:
    spec: ObjectSpec
    pin_path: str
    map_pin_path: str
    maps: List[MapStep]
    programs: List[ProgramStep]
    replace_incompatible_maps: bool = False
    stale: List[str] = field(default_factory=list)  # staged pins a killed run left: removed when applied

    @property
    def directories(self) -> List[str]:
        """Every directory the plan pins into (what ``apply_load`` locks)."""
        return sorted({self.pin_path, self.map_pin_path} | {os.path.dirname(s.pin) for s in self.maps})

    @property
    def changed(self) -> bool:
        return bool(self.stale) or any(s.action not in ("reuse", "unchanged") for s in self.maps + self.programs)

    @property
    def errors(self) -> List[str]:
        return [f"{kind} {s.name!r} pinned at {s.pin}: {s.reason}"
                for kind, steps in (("map", self.maps), ("program", self.programs))
                for s in steps if s.action == "error"]

    def check(self) -> None:
        """Raise BpfError if the plan cannot be applied (incompatible pinned maps)."""
        if self.errors:
            hint = "" if self.replace_incompatible_maps else \
                "; replace_incompatible_maps re-creates incompatible maps (their contents are lost)"
            raise BpfError(errno.EEXIST, "load", self.spec.source, "; ".join(self.errors) + hint)


def pin_dirs(pin_path: str, map_pin_path: Optional[str] = None) -> Tuple[str, str]:
    """The checked program and map pin directories (the map one defaults to ``<pin_path>/maps``)."""
    pin_path = pins.check_dir(pin_path, "pin path")
    return pin_path, pins.check_dir(map_pin_path or pins.join(pin_path, MAP_DIR, "map directory"), "map pin path")


def plan_load(spec: ObjectSpec, pin_path: str, map_pin_path: Optional[str] = None,
              replace_incompatible_maps: bool = False, map_dirs: Optional[Dict[str, str]] = None,
              reader=None) -> LoadPlan:
    """What loading ``spec`` under ``pin_path`` would do; reads pins, loads nothing. ``map_dirs``:
    {map name: directory} for maps pinned elsewhere than the map pin path. ``reader.pins`` stands in for
    ``read_pins`` when given (check mode reads the host as earlier planned tasks would leave it)."""
    pin_path, map_dir = pin_dirs(pin_path, map_pin_path)
    map_dirs = {name: pins.check_dir(path, f"pin directory of map {name!r}") for name, path in (map_dirs or {}).items()}
    read = reader.pins if reader is not None else read_pins
    state = read(spec, pin_path, map_dir, with_users=replace_incompatible_maps, map_dirs=map_dirs)
    return decide(spec, state, pin_path, map_dir, replace_incompatible_maps, map_dirs)


def decide(spec: ObjectSpec, state: PinState, pin_path: str, map_dir: str,
           replace_incompatible_maps: bool = False, map_dirs: Optional[Dict[str, str]] = None) -> LoadPlan:
    """The plan for ``spec`` given the pinned ``state`` (pure)."""
    map_steps = [_map_step(spec, m, state, (map_dirs or {}).get(m.name, map_dir), replace_incompatible_maps)
                 for m in spec.maps]
    reused_ids = {s.name: s.current_id for s in map_steps if s.action == "reuse"}
    prog_steps = [_program_step(p, state, pin_path, reused_ids) for p in spec.programs]
    return LoadPlan(spec, pin_path, map_dir, map_steps, prog_steps, replace_incompatible_maps, list(state.staged))


def _map_step(spec: ObjectSpec, m: MapSpec, state: PinState, map_dir: str, replace: bool) -> MapStep:
    path = map_pin(map_dir, m.name)
    if path in state.other:
        return MapStep(m.name, "error", path, m, f"a {state.other[path]} is pinned there, not a map")
    pinned = state.maps.get(m.name)
    if pinned is None:
        return MapStep(m.name, "create", path, m)
    users = [p.prog_type for p in spec.programs if m.name in p.map_names]
    problems = incompatibilities(pinned.info, pinned.owner_prog_type, m, users[0] if users else None)
    if not problems:
        return MapStep(m.name, "reuse", path, m, current_id=pinned.info.id)
    reason = "; ".join(problems)
    if replace and pinned.users:
        users = ", ".join(f"{name or 'program'} (id {prog_id})" for prog_id, name in pinned.users)
        return MapStep(m.name, "error", path, m, f"{reason}; this prog-array is not re-created because "
                       f"programs use it ({users}) and a dispatcher running on it would lose every slot: load "
                       "the new version under another pin_path, move the interfaces over to it, then unload "
                       "this one", pinned.info.id)
    return MapStep(m.name, "replace" if replace else "error", path, m, reason, pinned.info.id)


def _program_step(p: ProgramSpec, state: PinState, pin_path: str, reused_ids: Dict[str, int]) -> ProgramStep:
    path = program_pin(pin_path, p.name)
    tags = p.tags()
    if path in state.other:
        return ProgramStep(p.name, "error", path, p, tags, reason=f"a {state.other[path]} is pinned there, "
                                                                  "not a program")
    pinned = state.programs.get(p.name)
    if pinned is None:
        return ProgramStep(p.name, "load", path, p, tags)
    info = pinned.info
    step = ProgramStep(p.name, "replace", path, p, tags, info.tag, info.id)
    wanted_maps = {reused_ids.get(name) for name in p.map_names}
    if info.type != p.prog_type:
        step.reason = f"pinned program has prog type {info.type}, the object's has {p.prog_type}"
    elif info.tag not in tags:
        step.reason = f"instructions changed (pinned tag {info.tag})"
    elif None in wanted_maps or set(info.map_ids) != wanted_maps:
        step.reason = "its maps are re-created"
    else:
        step.action = "unchanged"
    return step


# -- applying it ----------------------------------------------------------------------------------

@dataclass
class ProgramResult:
    name: str
    id: int
    tag: str
    pin: str
    action: str


@dataclass
class MapResult:
    name: str
    id: int
    pin: str
    action: str

    @property
    def reused(self) -> bool:
        return self.action == "reuse"


@dataclass
class LoadResult:
    changed: bool
    programs: Dict[str, ProgramResult]
    maps: Dict[str, MapResult]
    btf_loaded: bool = False
    swept: List[str] = field(default_factory=list)  # staged pins of a killed run, removed


class Loaded:
    """The maps and programs of a plan as open fds (``maps``/``programs`` by name), nothing pinned;
    closes them all on ``close()`` (a context manager)."""

    def __init__(self, plan: LoadPlan):
        self.maps: Dict[str, Map] = {}
        self.programs: Dict[str, Program] = {}
        self.btf_loaded = False
        self._opened: List[FdOwner] = []
        try:
            btf = _load_btf(plan.spec)
            if btf is not None:
                self._opened.append(btf)
                self.btf_loaded = True
            try:
                self.maps = {step.name: _open_map(step, btf, self._opened) for step in plan.maps}
                map_fds = {name: m.fd for name, m in self.maps.items()}
                self.programs = {step.name: _open_program(step, map_fds, btf, self._opened)
                                 for step in plan.programs}
            except BpfError as exc:
                exc.obj = f"{exc.obj} in {plan.spec.source}"
                raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for owner in reversed(self._opened):
            owner.close()

    def __enter__(self) -> Loaded:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_objects(plan: LoadPlan) -> Loaded:
    """Open or create every map of ``plan`` and load every program; pins nothing (a plan made from an
    empty ``PinState`` gives a private instance: fresh maps, programs loaded against them)."""
    plan.check()
    return Loaded(plan)


def apply_load(plan: LoadPlan) -> LoadResult:
    """Carry out ``plan``; on any failure nothing new stays pinned and existing pins are untouched.
    Holds the pin directories' locks (``pins.locked``) meanwhile."""
    plan.check()
    with pins.locked(*plan.directories):
        return _apply_load(plan)


def _apply_load(plan: LoadPlan) -> LoadResult:
    """Remove what a killed run left staged (we hold the locks: no run is between staging and renaming);
    open or create every map and load every program (nothing pinned yet); then pin new maps and stage
    every replacement beside its pin; then rename the staged pins into place. The directories exist
    (``pins.locked`` creates them, and removes them again if they stay empty). ``pause.point`` is a test
    hook: it stops here only when a test asks it to, so that it can kill the run at that step."""
    swept = [path for directory in (plan.pin_path, plan.map_pin_path)
             for path in pins.staged_leftovers(directory) if pins.unpin(path)]
    new_pins: List[str] = []
    staged: Dict[str, str] = {}
    loaded = Loaded(plan)
    try:
        maps, progs = loaded.maps, loaded.programs
        result = LoadResult(
            plan.changed,
            {s.name: ProgramResult(s.name, *_id_tag(progs[s.name]), s.pin, s.action) for s in plan.programs},
            {s.name: MapResult(s.name, maps[s.name].id, s.pin, s.action) for s in plan.maps},
            loaded.btf_loaded, swept)
        for step in plan.maps:
            if step.action == "create":
                pins.pin(maps[step.name].fd, step.pin)
                new_pins.append(step.pin)
            elif step.action == "replace":
                staged[step.pin] = pins.stage(maps[step.name].fd, step.pin)
                pause.point("xdp_load:stage")
        for step in plan.programs:
            if step.action != "unchanged":
                staged[step.pin] = pins.stage(progs[step.name].fd, step.pin)
                pause.point("xdp_load:stage")
        for path, temporary in list(staged.items()):
            pins.commit(temporary, path)
            del staged[path]
            pause.point("xdp_load:rename")
        return result
    except BaseException:
        for path in list(staged.values()) + new_pins:
            pins.unpin(path)
        raise
    finally:
        loaded.close()


def _id_tag(prog: Program):
    info = prog.info()
    return info.id, info.tag


def _load_btf(spec: ObjectSpec) -> Optional[FdOwner]:
    """The object's BTF in the kernel, or None if it has none or the kernel refuses it (like libbpf,
    maps and programs then load without type information)."""
    if not spec.btf:
        return None
    try:
        return FdOwner(sc.btf_load(spec.btf), f"BTF of {spec.source}")
    except VerifierError:
        return None


def _open_map(step: MapStep, btf: Optional[FdOwner], opened: List[FdOwner]) -> Map:
    if step.action == "reuse":
        m = Map.from_pin(step.pin)
        opened.append(m)
        if m.id != step.current_id:
            raise BpfError(errno.EAGAIN, "load", step.pin, "the pinned map changed since the plan was made")
        return m
    m = Map.create(step.spec, btf.fd if btf is not None else 0)
    opened.append(m)
    return m


def _open_program(step: ProgramStep, map_fds: Dict[str, int], btf: Optional[FdOwner],
                  opened: List[FdOwner]) -> Program:
    if step.action == "unchanged":
        prog = Program.from_pin(step.pin)
        opened.append(prog)
        if prog.id != step.current_id:
            raise BpfError(errno.EAGAIN, "load", step.pin, "the pinned program changed since the plan was made")
        return prog
    prog = Program.load(step.spec, map_fds, btf.fd if btf is not None else 0)
    opened.append(prog)
    return prog


# -- unloading ------------------------------------------------------------------------------------

@dataclass
class UnloadPlan:
    pins: List[str]          # programs first, then maps, records, staged leftovers
    dirs: List[str]          # removed afterwards if empty (and locked meanwhile)
    empty_dirs: List[str] = field(default_factory=list)  # those that will be empty: removed

    @property
    def changed(self) -> bool:
        return bool(self.pins or self.empty_dirs)


def plan_unload(pin_path: str, map_pin_path: Optional[str] = None,
                spec: Optional[ObjectSpec] = None, also: Sequence[str] = ()) -> UnloadPlan:
    """Pins to remove: ``spec``'s programs and maps, or (no spec) every pin in the two directories,
    the pins ``also`` names, and staged pins a killed run left in the pin path, the map directory and
    the record directories; then the directories this leaves empty. Nothing pinned: an empty plan."""
    pin_path, map_dir = pin_dirs(pin_path, map_pin_path)
    if spec is not None:
        paths = [program_pin(pin_path, p.name) for p in spec.programs]
        paths += [map_pin(map_dir, m.name) for m in spec.maps]
    else:
        paths = [pins.join(pin_path, name) for name in pins.list_pins(pin_path)]
        paths += [pins.join(map_dir, name) for name in pins.list_pins(map_dir)]
    record_dirs = [pins.join(pin_path, subdir, "record directory") for subdir in pins.RECORD_DIRS]
    paths += list(also)
    for directory in [pin_path, map_dir] + record_dirs:
        paths += pins.staged_leftovers(directory)
    paths = list(dict.fromkeys(p for p in paths if pins.exists(p)))
    extra_dirs = sorted({os.path.dirname(p) for p in also} - {map_dir, pin_path} - set(record_dirs), reverse=True)
    dirs = extra_dirs + record_dirs + [map_dir, pin_path]
    return UnloadPlan(paths, dirs, pins.emptied_dirs(dirs, paths))


def apply_unload(plan: UnloadPlan) -> List[str]:
    """Unpin everything in ``plan`` and remove the directories left empty (holding the pin directories'
    locks); returns the pins removed."""
    with pins.locked(*plan.dirs):
        removed = [path for path in plan.pins if pins.unpin(path)]
        pins.remove_empty_dirs(plan.dirs)
    return removed
