# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Check mode's view of a host: its real state as the earlier check-mode tasks of the run would leave it.

PRIVATE to the whistler.xdp collection. The controller side is ``plugin_utils._overlay_store`` (the
per-run store) and ``plugin_utils._overlay_action`` (the action plugins that ship it to modules).

Why: check mode applies nothing, so a task that plans after another (load after compile, wire after
load, unload after detach) would plan against a host the earlier task did not really change. The
action plugin passes every module what earlier check-mode tasks of the same run planned for this host,
as the internal option ``_check_overlay``; the module reads the kernel through this overlay and
returns what it plans itself, which the action plugin adds to the store for the tasks after it.

In: the option's value (JSON; None outside check mode)::

    {"files": {host path: where the file's planned content was shipped (Ansible's remote temp dir)},
     "pins":  {bpffs path: planned pin, or null when the pin will be gone},
     "slots": {prog-array pin: {slot: program, or null when the slot will be empty}},
     "hooks": {"if<ifindex>_ns<netns inode>": planned hook, or null when nothing will be attached}}

A *program* (or map, or link) is a kernel id (an int) or, for one a planned task would create and
that has no id yet, ``{"planned": kind, "pin", "name", "tag"}`` (``Planned``). A planned pin is a
``PlannedPin`` (kind prog / map / link, with what later plans compare: tag, map shape, program), a
planned hook a ``PlannedHook`` (interface, mode, program, link).

Out: ``Overlay``: ``file(path)`` (where to read a host file's planned content), ``reader()`` (an
``OverlayReader``: the reader ``plan_load``, ``plan_prog_array``, ``plan_attach`` and ``plan_map_entries``
take, reading the kernel (``KernelView``) with the overlay applied; a map a planned load would create
opens as created, empty and typed by the object's BTF: ``planned_map``), ``records`` / ``unload`` (the
same for xdp_load state=absent), the ``record_*`` methods collecting what this task plans, and
``exit_fields()``, the planned changes to return to the action plugin (under ``PLANNED_KEY``). ``public`` turns planned ids
into null for a module's documented return values; ``program_words`` says which program an id is,
for diffs. The plans themselves know nothing of check mode: a ``Planned`` id compares like a kernel id.
"""

from __future__ import annotations

import errno
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, Optional, Tuple

from ._bpf import attach as _attach
from ._bpf import progarray as _progarray
from ._bpf import syscalls as sc
from ._bpf.btf import Btf
from ._bpf.errors import BpfError
from ._bpf.load import PinnedMap, PinnedProgram, read_pins
from ._bpf.mapentries import KernelReader as _MapReader
from ._bpf.mapentries import MapEntriesError
from ._bpf.maps import NewMap
from ._bpf.names import map_type_name
from ._bpf.netlink import XdpState, describe
from ._bpf.objfile import read_object
from ._bpf.pinned import Pinned, pins_by_prog_id
from ._bpf.pins import emptied_dirs
from ._bpf.program import Program
from ._diff import map_text, program_text
from ._module_base import CHECK_OVERLAY_OPTION as OPTION

PLANNED_KEY = "_check_overlay_planned"
KINDS = ("prog", "map", "link")
_KIND_WORDS = {"prog": "program", "map": "map", "link": "link"}


# -- identities -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    """A program, map or link a check-mode task of this run would create: it has no kernel id yet.
    It stands where an id would (equal only to itself), so plans compare it like one."""

    kind: str
    pin: str
    name: str = ""
    tag: str = ""


def encode_id(identity):
    """An id for JSON: ints (and None) as they are, ``Planned`` as a dict."""
    if isinstance(identity, Planned):
        return dict(planned=identity.kind, pin=identity.pin, name=identity.name, tag=identity.tag)
    return identity


def decode_id(value, what="id"):
    """``encode_id`` reversed; a ValueError naming ``what`` for anything else."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, dict) and value.get("planned") in KINDS and isinstance(value.get("pin"), str):
        return Planned(value["planned"], os.path.normpath(value["pin"]), str(value.get("name") or ""),
                       str(value.get("tag") or ""))
    raise ValueError(f"{OPTION}: {what}: {value!r} is neither an id nor a planned object")


def public(value):
    """``value`` (a module's result) with every planned id replaced by None: it has no id yet."""
    if isinstance(value, Planned):
        return None
    if isinstance(value, dict):
        return {key: public(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [public(item) for item in value]
    return value


def program_words(identity, name: str = "", tag: str = "") -> Optional[str]:
    """Which program ``identity`` is, as an operator reads it: ``"tcp_handler (tag a1b2c3d4e5f6a7b8, id 812)"``,
    ``"... (tag ..., new)"`` for a program this run would load; None for no program (0 or None).
    ``name`` and ``tag`` save a kernel lookup when the caller knows them."""
    if not identity:
        return None
    if isinstance(identity, Planned):
        return program_text(identity.name or name, identity.tag or tag)
    if not (name and tag):
        try:
            with Program.from_id(identity) as program:
                info = program.info()
        except BpfError as exc:
            if exc.errno != errno.ENOENT:
                raise
            return f"program {identity} (unloaded meanwhile)"
        name, tag = info.name, info.tag
    return program_text(name, tag, identity)


# -- planned pins and hooks -----------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedPin:
    """What a planned task leaves pinned at a path: a program (``id``, ``name``, ``tag``, ``prog_type``,
    ``map_ids``), a map (``id``, ``name``, ``map_type`` and shape, prog-array ``owner_prog_type``, and the
    ``object`` file (host path, ``object_sha256`` of the content planned) whose spec and BTF it is created
    from) or a link (``id``, and ``prog``, the program it runs)."""

    kind: str
    id: object
    name: str = ""
    tag: str = ""
    prog_type: int = 0
    map_ids: Tuple[object, ...] = ()
    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    owner_prog_type: Optional[int] = None
    prog: object = 0
    object: str = ""
    object_sha256: str = ""

    def encode(self) -> dict:
        data = asdict(self)
        data.update(id=encode_id(self.id), prog=encode_id(self.prog), map_ids=[encode_id(i) for i in self.map_ids])
        return data

    @classmethod
    def decode(cls, path: str, data) -> PlannedPin:
        if not isinstance(data, dict) or data.get("kind") not in KINDS:
            raise ValueError(f"{OPTION}: pin {path}: {data!r} is not a planned pin")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known.update(id=decode_id(data.get("id"), f"pin {path}"), prog=decode_id(data.get("prog"), f"pin {path}"),
                     map_ids=tuple(decode_id(i, f"pin {path}") for i in data.get("map_ids") or ()))
        return cls(**known)

    @property
    def prog_id(self):
        """The program this pin stands for (a program's own id, a link's program), 0 for a map."""
        return self.id if self.kind == "prog" else self.prog if self.kind == "link" else 0

    def pinned(self, path: str) -> Pinned:
        return Pinned(path, self.kind, self.id, self.prog_id)


@dataclass(frozen=True)
class PlannedHook:
    """What a planned task leaves on an interface's XDP hook: ``program`` in ``mode`` (``link``: the
    bpf_link that owns the hook, 0 for netlink)."""

    interface: str
    netns: Optional[str]
    ifindex: int
    mode: str
    program: object
    link: object = 0

    def encode(self) -> dict:
        return dict(asdict(self), program=encode_id(self.program), link=encode_id(self.link))

    @classmethod
    def decode(cls, key: str, data) -> PlannedHook:
        if not isinstance(data, dict):
            raise ValueError(f"{OPTION}: hook {key}: {data!r} is not a planned hook")
        try:
            return cls(str(data["interface"]), data.get("netns"), int(data["ifindex"]), str(data["mode"]),
                       decode_id(data["program"], f"hook {key}"), decode_id(data.get("link") or 0, f"hook {key}"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{OPTION}: hook {key}: {data!r} is not a planned hook ({exc})") from None

    def state(self) -> XdpState:
        by_mode = {"native": "drv_id", "generic": "skb_id", "offload": "hw_id"}
        ids = {by_mode[self.mode]: self.program} if self.mode in by_mode else {}
        return XdpState(self.ifindex, self.mode, self.program, **ids)


def hook_key(ifindex: int, netns_inode: int) -> str:
    """How hooks are keyed, here and in attachment record names: ``if<ifindex>_ns<netns inode>``."""
    return f"if{ifindex}_ns{netns_inode}"


# -- the overlay ----------------------------------------------------------------------------------

@dataclass
class Overlay:
    """The planned state this task reads through (``files``, ``pins``, ``slots``, ``hooks``) and the
    changes it plans itself (``planned``). Inactive (no option: a real run, or a module run without its
    action plugin) it changes nothing: reads are the kernel's and nothing is recorded."""

    active: bool = False
    files: Dict[str, str] = field(default_factory=dict)
    pins: Dict[str, Optional[PlannedPin]] = field(default_factory=dict)
    slots: Dict[str, Dict[int, object]] = field(default_factory=dict)
    hooks: Dict[str, Optional[PlannedHook]] = field(default_factory=dict)
    planned: dict = field(default_factory=lambda: {"pins": {}, "slots": {}, "hooks": {}})
    kernel: object = field(default=None, repr=False, compare=False)  # what is overlaid: KernelView()

    def __post_init__(self):
        if self.kernel is None:
            self.kernel = KernelView()

    @classmethod
    def from_module(cls, module) -> Overlay:
        """The overlay the action plugin passed; inactive outside check mode (a real run reads the host)."""
        data = module.params.get(OPTION)
        if data is None or not module.check_mode:
            return cls()
        try:
            return cls.decode(data)
        except ValueError as exc:
            module.fail_json(msg=str(exc))

    @classmethod
    def decode(cls, data) -> Overlay:
        if not isinstance(data, dict):
            raise ValueError(f"{OPTION}: expected a dict, got {data!r}")
        slots = {}
        for map_pin, entries in (data.get("slots") or {}).items():
            try:
                slots[os.path.normpath(map_pin)] = {int(k): decode_id(v, f"slot {k} of {map_pin}")
                                                    for k, v in entries.items()}
            except (AttributeError, TypeError, ValueError) as exc:
                raise ValueError(f"{OPTION}: slots of {map_pin}: {exc}") from None
        return cls(
            active=True,
            files={_host_path(path): str(shipped) for path, shipped in (data.get("files") or {}).items()},
            pins={os.path.normpath(path): None if pin is None else PlannedPin.decode(path, pin)
                  for path, pin in (data.get("pins") or {}).items()},
            slots=slots,
            hooks={key: None if hook is None else PlannedHook.decode(key, hook)
                   for key, hook in (data.get("hooks") or {}).items()})

    # -- reading ---------------------------------------------------------------------------------

    def file(self, path: str) -> str:
        """Where to read the host file ``path`` from: the planned content, when an earlier check-mode task
        would have written it (shipped by the action plugin), else the file itself."""
        return self.files.get(_host_path(path), path)

    def reader(self):
        """The kernel as the loader's plans read it, overlaid; None (the plans' own reader) when inactive."""
        return OverlayReader(self) if self.active else None

    def pinned(self, path: str) -> Optional[Pinned]:
        path = os.path.normpath(path)
        if path in self.pins:
            pin = self.pins[path]
            return None if pin is None else pin.pinned(path)
        return self.kernel.pinned(path)

    def records(self, pin_dir: str, records):
        """``_bpf.attach.recorded_attachments(pin_dir)`` as the planned tasks would leave them: records
        they remove are gone, records they pin are there, and each is live if its planned hook runs it."""
        if not self.active:
            return records
        found = []
        for record in records:
            if os.path.normpath(record.record) in self.pins:
                continue  # replaced or removed by a planned task: seen below
            hook = self.hooks.get(os.path.basename(record.record), record)
            if hook is not record:
                record = replace(record, live=hook is not None and hook.program == record.prog_id)
            found.append(record)
        for path, pin in sorted(self.pins.items()):
            parent = os.path.dirname(path)
            if pin is None or os.path.dirname(parent) != os.path.normpath(pin_dir) \
                    or os.path.basename(parent) not in _attach.RECORD_DIRS:
                continue
            hook = self.hooks.get(os.path.basename(path))
            where = describe(hook.interface, hook.netns) if hook else os.path.basename(path)
            found.append(_attach.RecordedAttachment(path, pin.prog_id, where,
                                                    hook is not None and hook.program == pin.prog_id))
        return found

    def unload(self, plan, in_scope):
        """``_bpf.load.plan_unload``'s plan with the pins planned tasks add or remove: real pins they
        remove are not removed again, planned pins ``in_scope(path)`` would be removed too, and the
        directories it leaves empty are those emptied once both are gone, but not those the planned tasks
        emptied already (a detach removes its empty record directory, an unload the directories it empties)."""
        if not self.active:
            return plan
        paths = [path for path in plan.pins if os.path.normpath(path) not in self.pins]
        paths += [path for path, pin in sorted(self.pins.items()) if pin is not None and in_scope(path)]
        gone_before = [path for path, pin in self.pins.items() if pin is None]
        already = set(emptied_dirs(plan.dirs, gone_before))
        emptied = [directory for directory in emptied_dirs(plan.dirs, paths + gone_before) if directory not in already]
        return replace(plan, pins=paths, empty_dirs=emptied)

    # -- recording what this task plans ----------------------------------------------------------
    # What a task records it also reads from then on, so a module that plans several steps (load, then
    # wire, then attach) plans each on the ones before. The rules are the store's (``_overlay_store.merge``).

    def record_pin(self, path: str, pin: Optional[PlannedPin]) -> None:
        if self.active:
            path = os.path.normpath(path)
            self.planned["pins"][path] = None if pin is None else pin.encode()
            self.pins[path] = pin
            self.slots.pop(path, None)  # slots planned for what was pinned there before
            self.planned["slots"].pop(path, None)

    def record_slots(self, map_pin: str, slots: Dict[int, object]) -> None:
        if self.active and slots:
            map_pin = os.path.normpath(map_pin)
            self.planned["slots"].setdefault(map_pin, {}).update(
                {str(key): encode_id(value) for key, value in slots.items()})
            self.slots.setdefault(map_pin, {}).update(slots)

    def record_hook(self, key: str, hook: Optional[PlannedHook]) -> None:
        if self.active:
            self.planned["hooks"][key] = None if hook is None else hook.encode()
            self.hooks[key] = hook

    def record_load(self, plan, tags: Dict[str, str]) -> None:
        """What an xdp_load plan (``_bpf.load.LoadPlan``) leaves pinned; ``tags``: the tag each program
        will have (program name -> tag, as the running kernel computes it). The maps it creates name the
        object (``plan.spec.source``, a host path) they come from, for xdp_map to plan on."""
        obj = _host_path(plan.spec.source)
        maps = {}
        for step in plan.maps:
            if step.action == "reuse":
                maps[step.name] = step.current_id
                continue
            maps[step.name] = Planned("map", step.pin, step.name)
            owners = [p.prog_type for p in plan.spec.programs if step.name in p.map_names]
            m = step.spec
            self.record_pin(step.pin, PlannedPin("map", maps[step.name], m.name, map_type=m.type,
                                                 key_size=m.key_size, value_size=m.value_size,
                                                 max_entries=m.max_entries, flags=m.flags,
                                                 owner_prog_type=owners[0] if owners else None,
                                                 object=obj, object_sha256=plan.spec.sha256))
        for path in plan.stale:
            self.record_pin(path, None)  # staged by an interrupted run: applying the plan sweeps them
        for step in plan.programs:
            if step.action in ("load", "replace"):
                identity = Planned("prog", step.pin, step.name, tags[step.name])
                self.record_pin(step.pin, PlannedPin("prog", identity, step.name, tags[step.name],
                                                     step.spec.prog_type,
                                                     tuple(maps[name] for name in step.spec.map_names)))

    def record_unload(self, removed) -> None:
        for path in removed:
            self.record_pin(path, None)

    def record_prog_array(self, plan) -> None:
        """What an xdp_prog_array plan (``_bpf.progarray.ProgArrayPlan``) leaves in the array's slots."""
        self.record_slots(plan.map_pin, {key: plan.after.get(key) for key in list(plan.writes) + list(plan.deletes)})

    def record_attach(self, plan, netns_inode: int) -> None:
        """What an xdp_attach plan (``_bpf.attach.AttachPlan``) leaves on the hook, and its records."""
        if plan.action == "noop":
            return
        key = hook_key(plan.ifindex, netns_inode)
        if plan.action == "detach":
            self.record_hook(key, None)
            for pin in (plan.record_pin, plan.link_pin):
                if pin:
                    self.record_pin(pin, None)
            return
        link = plan.link_id
        if plan.action == "attach" and plan.link_pin:
            link = Planned("link", plan.link_pin)
            self.record_pin(plan.link_pin, PlannedPin("link", link, prog=plan.prog_id))
        elif not plan.via_link and plan.record_pin:
            self.record_pin(plan.record_pin, PlannedPin("prog", plan.prog_id))  # the attached program, pinned again
        self.record_hook(key, PlannedHook(plan.interface, plan.netns, plan.ifindex, plan.mode, plan.prog_id, link))

    def exit_fields(self) -> dict:
        """What to add to the module's result: the planned changes, for the action plugin (when active)."""
        return {PLANNED_KEY: self.planned} if self.active else {}


def _host_path(path: str) -> str:
    return os.path.normpath(os.path.expanduser(path))


class _LinkView:
    def __init__(self, link_id):
        self.id = link_id


class KernelView:
    """The kernel as the plans read it (``_bpf.load.read_pins``, ``progarray.KernelReader``,
    ``attach.KernelReader``), read-only: what the overlay is laid over (unit tests substitute a fake)."""

    def __init__(self):
        self._attach = _attach.KernelReader()
        self._progarray = _progarray.KernelReader()
        self._maps = _MapReader()

    def pins(self, spec, prog_dir: str, map_dir: str, with_users: bool = False, map_dirs=None):
        return read_pins(spec, prog_dir, map_dir, with_users, map_dirs)

    def pinned(self, path: str):
        return self._attach.pinned(path)

    def prog_array(self, map_pin: str):
        return self._progarray.prog_array(map_pin)

    def open(self, map_pin: str):
        return self._maps.open(map_pin)

    def hook(self, interface, netns):
        return self._attach.hook(interface, netns)

    def netns_id(self, netns):
        return self._attach.netns_id(netns)

    def xdp_link(self, ifindex: int, prog_id: int):
        return self._attach.xdp_link(ifindex, prog_id)

    def pinned_programs(self, directory: str) -> Dict[str, int]:
        """{pin path: program id} of every program pinned under ``directory`` (directly or behind a link)."""
        found = {}
        if os.path.isdir(directory):
            for prog_id, paths in pins_by_prog_id(directory).items():
                found.update({os.path.normpath(path): prog_id for path in paths})
        return found


class OverlayReader:
    """The readers the loader's plans take (``plan_load``'s, ``plan_prog_array``'s, ``plan_attach``'s,
    ``plan_map_entries``'s), reading the kernel with the overlay applied: one reader, since every plan
    reads pins, slots, maps and hooks the same way."""

    def __init__(self, overlay: Overlay):
        self.overlay = overlay
        self.kernel = overlay.kernel

    # load: what is pinned where an object's programs and maps go
    def pins(self, spec, prog_dir: str, map_dir: str, with_users: bool = False, map_dirs=None):
        state = self.kernel.pins(spec, prog_dir, map_dir, with_users, map_dirs)
        map_dirs = map_dirs or {}
        for kind, names, directory, found in (("map", [m.name for m in spec.maps], map_dir, state.maps),
                                              ("prog", [p.name for p in spec.programs], prog_dir, state.programs)):
            for name in names:
                path = os.path.normpath(os.path.join(map_dirs.get(name, directory) if kind == "map" else directory,
                                                     name))
                if path not in self.overlay.pins:
                    continue
                pin = self.overlay.pins[path]
                state.other.pop(path, None)
                found[name] = None
                if pin is not None and pin.kind != kind:
                    state.other[path] = _KIND_WORDS[pin.kind]
                elif pin is not None and kind == "map":
                    found[name] = PinnedMap(path, sc.MapInfo(pin.map_type, pin.id, pin.key_size, pin.value_size,
                                                             pin.max_entries, pin.flags, pin.name, 0, 0, 0),
                                            pin.owner_prog_type)
                elif pin is not None:
                    found[name] = PinnedProgram(path, sc.ProgInfo(pin.prog_type, pin.id, pin.tag, pin.name,
                                                                  list(pin.map_ids)))
        return state

    # progarray and attach
    def pinned(self, path: str):
        return self.overlay.pinned(path)

    def prog_array(self, map_pin: str):
        path = os.path.normpath(map_pin)
        if path in self.overlay.pins:
            pin = self.overlay.pins[path]
            if pin is None:
                return None
            if pin.kind != "map":
                raise _progarray.ProgArrayError(f"map {map_pin}: a {_KIND_WORDS[pin.kind]} is pinned there, not a map")
            view = _progarray.ProgArrayView(pin.id, pin.map_type, pin.max_entries, {})
        else:
            view = self.kernel.prog_array(map_pin)
            if view is None:
                return None
        entries = dict(view.entries)
        for key, program in self.overlay.slots.get(path, {}).items():
            if program:
                entries[key] = program
            else:
                entries.pop(key, None)
        return replace(view, entries=entries)

    # map contents (xdp_map): the map pinned there, or the one a planned task would create there
    def open(self, map_pin: str):
        path = os.path.normpath(map_pin)
        if path not in self.overlay.pins:
            return self.kernel.open(map_pin)
        pin = self.overlay.pins[path]
        if pin is None:
            return None
        if pin.kind != "map":  # what opening the pin would find
            raise BpfError(errno.EINVAL, "open_map", map_pin, "not a BPF map")
        return planned_map(self.overlay, map_pin, pin)

    def hook(self, interface, netns):
        view = self.kernel.hook(interface, netns)
        key = hook_key(view.ifindex, self.netns_id(netns))
        if key not in self.overlay.hooks:
            return view
        hook = self.overlay.hooks[key]
        return replace(view, state=XdpState(view.ifindex, None, 0) if hook is None else hook.state())

    def netns_id(self, netns):
        return self.kernel.netns_id(netns)

    def owned_prog_ids(self, directory: str):
        directory = os.path.normpath(directory)
        at = self.kernel.pinned_programs(directory)
        for path, pin in self.overlay.pins.items():
            if path.startswith(directory + os.sep):
                at[path] = pin.prog_id if pin is not None else 0
        return {prog_id for prog_id in at.values() if prog_id}

    def xdp_link(self, ifindex: int, prog_id):
        for hook in self.overlay.hooks.values():
            if hook is not None and hook.ifindex == ifindex and hook.program == prog_id:
                return _LinkView(hook.link) if hook.link else None
        return self.kernel.xdp_link(ifindex, prog_id) if isinstance(prog_id, int) else None


def planned_map(overlay: Overlay, map_pin: str, pin: PlannedPin) -> NewMap:
    """The map a planned task would create at ``map_pin`` (``pin``, kind map), empty, with the spec and BTF
    of the object the task read; a MapEntriesError when that object is not known, or has changed since
    (another task of the run would overwrite it), rather than a plan on the wrong types."""
    if not pin.object:
        raise MapEntriesError(f"map {map_pin}: an earlier task of this run would create it, but check mode does "
                              "not know its object, so its types cannot be read")
    spec = read_object(overlay.file(pin.object))
    if spec.sha256 != pin.object_sha256:
        raise MapEntriesError(f"map {map_pin}: check mode cannot read its types: {pin.object} changes after the "
                              "task that would create the map (another task of this run would overwrite it)")
    shape = (pin.name, pin.map_type, pin.key_size, pin.value_size, pin.max_entries, pin.flags)
    for m in spec.maps:
        if (m.name, m.type, m.key_size, m.value_size, m.max_entries, m.flags) == shape:
            return NewMap(m, Btf.parse(spec.btf) if spec.btf else None, pin.id)
    raise MapEntriesError(f"map {map_pin}: {pin.object} has no map {pin.name!r} of the shape planned")


def map_words(name: str, map_type: int, identity) -> Optional[str]:
    """Which map ``identity`` is: ``"jt (prog_array, id 77)"``, ``"jt (prog_array, new)"``; None for none."""
    if not identity:
        return None
    return map_text(name, map_type_name(map_type), None if isinstance(identity, Planned) else identity)
