"""One plan per dispatcher: the desired state and what the host holds in, a read-only ``Plan`` out.

In: ``Desired`` (the object, dispatcher, jump table, {slot: handler}, interfaces, state) and the host as
``read_host`` sees it (generations, pointers, attachment records; a fake in unit tests).
Out: ``make_plan`` -> ``Plan``: which generation goes live (an existing one whose programs, slots and maps
are exactly the desired ones, or a new one to load), how each interface gets there (``attach``
plans), which recorded interfaces are left (``detach``), the pointers afterwards, what is pruned and
swept, and for state=absent everything to remove. ``Plan.changed`` is False only when nothing at all
would change, so check mode and the real run agree.

A generation matches when it holds exactly the object's programs, each with one of the program's offline
tags and the program's type, attach type and flags (from its record), using the shared maps pinned now
and its own prog-arrays, and its jump table holds exactly the handlers in the desired slots. The live
generation is preferred, then the newest matching one (rolling forward to a kept generation loads
nothing); otherwise a new generation is planned with ``load.plan_load`` (the shared maps reused when
compatible, an incompatible one an error unless ``replace_incompatible_maps``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .. import pins
from .. import syscalls as sc
from ..attach import AttachPlan, AttachRefused, RecordedAttachment, plan_attach, recorded_attachments
from ..load import LoadPlan, PinState, decide, read_pins
from ..netlink import check_interface
from ..objfile import ObjectSpec
from .generations import Generation, files_under, read_generations, read_legacy, read_pointer, stray_pins
from .layout import RECORD, Layout, name

STATES = ("present", "absent", "previous")
MODES = ("auto", "native", "generic")


class PlanError(ValueError):
    """The desired state cannot be planned (bad names, nothing to roll back to, foreign pins)."""


@dataclass(frozen=True)
class Interface:
    name: str
    netns: Optional[str] = None
    mode: str = "auto"

    @property
    def label(self) -> str:
        return self.name + (f" (netns {self.netns})" if self.netns else "")


@dataclass
class Desired:
    state: str
    pin_path: str
    dispatcher: Optional[str] = None
    jump_table: Optional[str] = None
    handlers: Dict[int, str] = field(default_factory=dict)
    interfaces: List[Interface] = field(default_factory=list)
    spec: Optional[ObjectSpec] = None
    object_sha256: Optional[str] = None
    keep_generations: int = 2
    replace_incompatible_maps: bool = False
    object_dest: Optional[str] = None

    def check(self) -> None:
        """Every name and value is one a path or a kernel call can be built from (raises PlanError)."""
        if self.state not in STATES:
            raise PlanError(f"state {self.state!r}: expected one of {', '.join(STATES)}")
        if self.keep_generations < 1:
            raise PlanError(f"keep_generations {self.keep_generations}: at least 1 (the live generation)")
        for what, value in (("dispatcher", self.dispatcher), ("jump_table", self.jump_table)):
            if value is not None:
                name(value, what)
        for slot, handler in self.handlers.items():
            name(handler, f"handlers[{slot}]")
        seen = set()
        for i, iface in enumerate(self.interfaces):
            try:
                check_interface(iface.name)
            except ValueError as exc:
                raise PlanError(f"interfaces[{i}]: {exc}") from None
            if iface.mode not in MODES:
                raise PlanError(f"interfaces[{i}].mode {iface.mode!r}: expected one of {', '.join(MODES)}")
            if (iface.name, iface.netns) in seen:
                raise PlanError(f"interfaces[{i}]: {iface.label} is listed twice")
            seen.add((iface.name, iface.netns))
        if self.state == "present":
            self._check_object()

    def _check_object(self) -> None:
        if self.spec is None or not self.dispatcher or not self.jump_table:
            raise PlanError("state=present needs the object (src or object), dispatcher and jump_table")
        spec = self.spec
        for p in spec.programs:
            name(p.name, f"program name in {spec.source}")
        for m in spec.maps:
            name(m.name, f"map name in {spec.source}")
        programs = [p.name for p in spec.programs]
        for what, program in [("dispatcher", self.dispatcher)] + [(f"handlers[{s}]", h) for s, h in self.handlers.items()]:
            if program not in programs:
                raise PlanError(f"{what}: {spec.source} has no program {program!r} (it has {', '.join(programs)})")
        try:
            table = spec.map(self.jump_table)
        except KeyError as exc:
            raise PlanError(f"jump_table: {exc.args[0]}") from None
        if table.type != sc.MAP_TYPE_PROG_ARRAY:
            raise PlanError(f"jump_table: map {self.jump_table!r} of {spec.source} is not a prog-array")
        for slot in self.handlers:
            if not 0 <= slot < table.max_entries:
                raise PlanError(f"handlers[{slot}]: slot out of range: jump table {self.jump_table!r} has "
                                f"{table.max_entries} slots (0..{table.max_entries - 1})")

    @property
    def arrays(self) -> List[str]:
        """The object's prog-arrays: each generation has its own."""
        return [m.name for m in self.spec.maps if m.type == sc.MAP_TYPE_PROG_ARRAY] if self.spec else []


# -- the host -------------------------------------------------------------------------------------

@dataclass
class HostState:
    layout: Layout
    generations: Dict[int, Generation]
    legacy: Optional[Generation]
    current_pointer: Optional[int]   # the generation gen/current names (None: no pointer)
    previous_pointer: Optional[int]
    strays: List[str]
    records: List[RecordedAttachment]
    shared: PinState = field(default_factory=PinState)   # the object's maps as pinned in maps/

    def _complete(self, number: Optional[int]) -> Optional[int]:
        return number if number in self.generations and self.generations[number].complete else None

    @property
    def current(self) -> Optional[int]:
        return self._complete(self.current_pointer)

    @property
    def previous(self) -> Optional[int]:
        return self._complete(self.previous_pointer)

    def generation(self, number: Optional[int]) -> Optional[Generation]:
        if number == 0 and 0 not in self.generations:
            return self.legacy
        return self.generations.get(number)


def read_host(layout: Layout, desired: Optional[Desired] = None) -> HostState:
    """What the rollout under ``layout`` holds now, and for ``desired``'s object the shared maps pinned
    (reads the kernel and bpffs, changes nothing)."""
    shared = PinState()
    if desired is not None and desired.spec is not None:
        # Only the shared maps: programs and prog-arrays always go into a new generation's own directory.
        maps = [m for m in desired.spec.maps if m.name not in desired.arrays]
        shared = read_pins(dataclasses.replace(desired.spec, maps=maps, programs=[]), layout.root, layout.shared_maps,
                           desired.replace_incompatible_maps)
    return HostState(layout, read_generations(layout), read_legacy(layout), read_pointer(layout.current),
                     read_pointer(layout.previous), stray_pins(layout), recorded_attachments(layout.root), shared)


# -- the plan -------------------------------------------------------------------------------------

@dataclass
class Plan:
    desired: Desired
    host: HostState
    target: Optional[int] = None          # generation live afterwards (None: state=absent)
    new_generation: bool = False
    adopt: bool = False                   # make the version 1 layout generation 0 first
    load: Optional[LoadPlan] = None
    attach: List[AttachPlan] = field(default_factory=list)
    detach: List[AttachPlan] = field(default_factory=list)
    drop_records: List[str] = field(default_factory=list)
    current_after: Optional[int] = None
    previous_after: Optional[int] = None
    prune: List[int] = field(default_factory=list)
    sweep: List[int] = field(default_factory=list)
    strays: List[str] = field(default_factory=list)
    remove: List[str] = field(default_factory=list)
    object_file: str = ""                 # "write" or "remove" object_dest, "" to leave it
    warnings: List[str] = field(default_factory=list)

    @property
    def layout(self) -> Layout:
        return self.host.layout

    @property
    def pointers_change(self) -> bool:
        if self.desired.state == "absent":
            return False
        return (self.current_after, self.previous_after) != (self.host.current, self.host.previous)

    @property
    def changed(self) -> bool:
        return bool(self.new_generation or self.adopt or any(p.changed for p in self.attach) or self.detach
                    or self.drop_records or self.pointers_change or self.prune or self.sweep or self.strays
                    or self.remove or self.object_file)

    @property
    def target_generation(self) -> Optional[Generation]:
        return None if self.new_generation else self.host.generation(self.target)

    def dispatcher_pin(self) -> str:
        """Where the dispatcher that goes live is pinned (or will be, for a new generation)."""
        gen = self.target_generation
        if gen is None:
            return self.layout.program(self.target, self.dispatcher)
        return gen.programs[self.dispatcher].path

    @property
    def dispatcher(self) -> str:
        gen = self.target_generation
        if self.desired.dispatcher:
            return self.desired.dispatcher
        return (gen.record or {}).get("dispatcher", "") if gen is not None else ""


def make_plan(desired: Desired, host: HostState, attach_reader=None) -> Plan:
    """The plan for ``desired`` on ``host``; reads hooks through ``attach_reader`` (the kernel by default)."""
    desired.check()
    plan = Plan(desired, host, object_file=_object_file(desired))
    if desired.state == "absent":
        _plan_absent(plan, attach_reader)
        return plan
    plan.strays = list(host.strays) + _legacy_leftovers(host) + _dangling_pointers(host)
    plan.sweep = sorted(n for n, g in host.generations.items() if not g.complete)
    if desired.state == "present":
        _choose_present(plan)
    else:
        _choose_previous(plan)
    if plan.target_generation is not None and plan.dispatcher not in plan.target_generation.programs:
        raise PlanError(f"generation {plan.target} has no program {plan.dispatcher!r} to attach")
    _plan_interfaces(plan, attach_reader)
    _plan_pointers_and_prune(plan)
    return plan


def _object_file(desired: Desired) -> str:
    dest = desired.object_dest
    if not dest:
        return ""
    if desired.state == "absent":
        return "remove" if os.path.lexists(dest) else ""
    if desired.state == "previous" or desired.object_sha256 is None:
        return ""
    return "" if _sha256(dest) == desired.object_sha256 else "write"


def _sha256(path: str) -> Optional[str]:
    if not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _legacy_leftovers(host: HostState) -> List[str]:
    """Version 1 pins that a kill during adoption left beside the generations (the same objects as a
    generation's: unpinned); anything else pinned there is not this rollout's, and fails the plan."""
    if host.legacy is None or not host.generations:
        return []
    ours = set().union(*(g.prog_ids | {a.id for a in g.arrays.values()} for g in host.generations.values()))
    foreign = [f"{p.path} (program {p.id})" for p in host.legacy.programs.values() if p.id not in ours]
    foreign += [f"{a.path} (prog-array {a.id})" for a in host.legacy.arrays.values() if a.id not in ours]
    if foreign:
        raise PlanError(f"pin_path {host.layout.root} holds pins that belong to no generation of this rollout: "
                        f"{', '.join(foreign)}; remove them or give the rollout another pin_path")
    return list(host.legacy.all_pins)


def _dangling_pointers(host: HostState) -> List[str]:
    """Pointers naming a generation that is gone or incomplete (removed; set again when needed)."""
    return [path for path, pointer, valid in ((host.layout.current, host.current_pointer, host.current),
                                              (host.layout.previous, host.previous_pointer, host.previous))
            if pointer is not None and valid is None]


def _choose_present(plan: Plan) -> None:
    desired, host, layout = plan.desired, plan.host, plan.layout
    candidates = {n: g for n, g in host.generations.items() if g.complete}
    if not host.generations and host.legacy is not None and host.legacy.programs:
        candidates[0] = host.legacy
        plan.adopt = True
    numbers = list(host.generations) + ([0] if plan.adopt else [])
    number = max(numbers) + 1 if numbers else 1
    load = decide(desired.spec, host.shared, layout.programs(number), layout.shared_maps,
                  desired.replace_incompatible_maps, {a: layout.arrays(number) for a in desired.arrays})
    shared = {s.name: s.current_id for s in load.maps if s.action == "reuse" and s.name not in desired.arrays}
    matching = [n for n, g in candidates.items() if _matches(g, desired, shared)]
    if host.current in matching:
        plan.target = host.current
    elif matching:
        plan.target = max(matching)
    else:
        load.check()
        plan.target, plan.new_generation, plan.load = number, True, load


def _matches(gen: Generation, desired: Desired, shared: Dict[str, int]) -> bool:
    spec = desired.spec
    if set(gen.programs) != {p.name for p in spec.programs} or set(desired.arrays) - set(gen.arrays):
        return False
    recorded = (gen.record or {}).get("programs", {})
    for p in spec.programs:
        pinned = gen.programs[p.name]
        if pinned.tag not in p.tags() or pinned.prog_type != p.prog_type:
            return False
        flags = recorded.get(p.name, {})
        if "attach_type" in flags and (flags["attach_type"], flags.get("flags")) != (p.expected_attach_type, p.prog_flags):
            return False  # an adopted version 1 generation recorded neither (xdp_load used the same sections)
        expected = set()
        for map_name in p.map_names:
            if map_name in desired.arrays:
                array = gen.arrays[map_name]
                if array.max_entries != spec.map(map_name).max_entries:
                    return False
                expected.add(array.id)
            elif map_name in shared:
                expected.add(shared[map_name])
            else:
                return False
        if set(pinned.map_ids) != expected:
            return False
    wanted = {slot: gen.programs[handler].id for slot, handler in desired.handlers.items()}
    return gen.arrays[desired.jump_table].entries == wanted


def _choose_previous(plan: Plan) -> None:
    host = plan.host
    target = host.previous
    if target is None or not host.generations[target].complete:
        have = ", ".join(f"{n}{' (live)' if n == host.current else ''}" for n in sorted(host.generations)) or "none"
        raise PlanError(f"pin_path {host.layout.root}: no previous generation to roll back to (generations: {have})")
    plan.target = target


def _plan_interfaces(plan: Plan, reader) -> None:
    desired, root = plan.desired, plan.layout.root
    pin = plan.dispatcher_pin()
    keys = set()
    for iface in desired.interfaces:
        planned = plan_attach(iface.name, iface.netns, pin, iface.mode, state="present", reader=reader,
                              pin_dir=root, pending=plan.new_generation)
        key = os.path.basename(planned.record_pin)
        if key in keys:
            raise PlanError(f"interface {iface.label} is listed twice (under two names)")
        keys.add(key)
        plan.attach.append(planned)
    _plan_left_behind(plan, keys, reader)


def _plan_left_behind(plan: Plan, keep: set, reader) -> None:
    """Recorded hooks not in ``keep``: detached where they still run ours, their records dropped."""
    for record in plan.host.records:
        if os.path.basename(record.record) in keep:
            continue
        if not (record.live and record.present):
            plan.drop_records.append(record.record)
            continue
        try:
            planned = plan_attach(record.ifindex, record.netns, None, "auto", state="absent", reader=reader,
                                  pin_dir=plan.layout.root)
        except AttachRefused as exc:
            plan.warnings.append(f"{record.where}: left as it is: {exc.detail}")
            plan.drop_records.append(record.record)
            continue
        if planned.changed:
            plan.detach.append(planned)
        else:
            plan.drop_records.append(record.record)


def _plan_pointers_and_prune(plan: Plan) -> None:
    host, desired = plan.host, plan.desired
    before = host.current if host.current is not None else (0 if plan.adopt else None)
    plan.current_after = plan.target
    if desired.state == "previous":
        plan.previous_after = host.previous
    elif before is not None and before != plan.target:
        plan.previous_after = before
    else:
        plan.previous_after = host.previous
    complete = sorted(set(n for n, g in host.generations.items() if g.complete)
                      | {plan.target} | ({0} if plan.adopt else set()), reverse=True)
    keep = [plan.target]
    if plan.previous_after not in (None, plan.target) and desired.keep_generations >= 2:
        keep.append(plan.previous_after)
    keep += [n for n in complete if n not in keep][:max(0, desired.keep_generations - len(keep))]
    plan.prune = sorted(n for n in complete if n not in keep)
    if plan.previous_after in plan.prune:
        plan.previous_after = None


# -- state=absent ---------------------------------------------------------------------------------

def _plan_absent(plan: Plan, reader) -> None:
    root = plan.layout.root
    keys = set()
    for iface in plan.desired.interfaces:
        try:
            # Any mode: whatever of ours runs there goes, or the pins removed below would leave it
            # running on an emptied jump table. A hook that is gone plans a noop without a record.
            planned = plan_attach(iface.name, iface.netns, None, "auto", state="absent", reader=reader, pin_dir=root)
        except AttachRefused as exc:
            plan.warnings.append(f"interface {iface.label}: left as it is: {exc.detail}")
            continue
        if planned.record_pin:
            keys.add(os.path.basename(planned.record_pin))
        if planned.changed:
            plan.detach.append(planned)
    _plan_left_behind(plan, keys, reader)
    plan.drop_records = []
    plan.remove, unknown = rollout_pins(plan.layout)
    for path in unknown:
        plan.warnings.append(f"{path} is not part of the rollout's layout and is left in place")


def rollout_pins(layout: Layout):
    """``(pins, unknown)``: every pin of the rollout's layout under the pin path (records of generations
    first, so a kill while removing leaves incomplete generations), and what else is there."""
    ours, unknown = [], []
    if not os.path.isdir(layout.root):
        return ours, unknown
    for entry in sorted(os.listdir(layout.root)):
        path = os.path.join(layout.root, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            if entry in ("gen", "maps", "attached", "links"):
                ours += files_under(path)
            else:
                unknown.append(path)
        elif pins.TMP_MARK in entry or pins.kind(path) == "program":
            ours.append(path)
        else:
            unknown.append(path)
    ours.sort(key=lambda p: (os.path.basename(p) != RECORD, p))
    return ours, unknown
