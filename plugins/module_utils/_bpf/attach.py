"""Put a pinned XDP program on an interface's hook, or take it off: plan (read-only), then apply.

In: ``plan_attach(interface, netns, program_pin, mode, force, state)``; a reader (the kernel by
default, a fake in unit tests) supplies the hook's state and what is pinned.
Out: an ``AttachPlan`` (noop / attach / replace / detach, with the state it was computed from), and
from ``apply_attach(plan)`` an ``AttachResult(prog_id, mode, previous_prog_id, ...)``;
``recorded_attachments(pin_dir)`` lists the hooks this collection recorded under a pin directory and
whether they still run the recorded program.

Rules:
- A change never leaves the hook empty in between: a new program replaces the old one atomically
  (netlink REPLACE + EXPECTED_FD in the mode it is attached in, or BPF_LINK_UPDATE with
  BPF_F_REPLACE); a first attach only succeeds onto an empty hook. Changing the mode would need a
  detach followed by an attach, so it is refused with an explanation (run state=absent first).
- "Ours": the attached program is ours when its id is the id of a program pinned anywhere under the
  pin directory (``pin_dir``; by default the directory holding ``program_pin``), directly or through a
  pinned bpf_link. ``pending`` plans for a program that is not pinned yet (a dispatcher generation
  planned before it is loaded): it is new, so never already attached. So
  that an upgrade that re-pins the program keeps the old one recognisable, every attach and replace
  pins the attached program at ``<pin dir>/attached/if<ifindex>_ns<netns inode>`` (a bpf_link
  attachment is pinned at ``<pin dir>/links/...`` instead), and a detach removes that pin (and the
  record directory once empty). Replacing or detaching anything else is refused unless ``force``.
- state=absent on an interface or network namespace that no longer exists plans a noop (already gone),
  with the reason; any other error, and state=present, still fails.
- A hook owned by a bpf_link can only be changed through that link; netlink would get EBUSY.
  ``via_link`` asks for new attachments to be made through a pinned bpf_link; an attachment that
  already exists is changed through whatever owns it, and switching between netlink and a link is
  refused like a mode change.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Set, Tuple

from . import link as links
from . import pins
from .errors import BpfError
from .netlink import MODE_FLAGS, XdpHook, XdpHookError, XdpState, describe
from .netns import NetnsError, netns_inode, netns_named
from .pinned import pinned, pinned_prog_ids
from .program import Program

STATES = ("present", "absent")
RECORD_DIRS = pins.RECORD_DIRS
_RECORD_NAME = re.compile(r"^if(\d+)_ns(\d+)$")


class AttachRefused(XdpHookError):
    """The plan would need something this collection does not do without being told to."""

    def __init__(self, where: str, reason: str):
        super().__init__(0, "xdp_attach", where, reason)


@dataclass(frozen=True)
class HookView:
    ifindex: int
    ifname: str
    state: XdpState


class KernelReader:
    """Read-only view of the kernel for planning (tests substitute a fake with the same methods)."""

    def hook(self, interface, netns: Optional[str]) -> HookView:
        with XdpHook(interface, netns) as hook:
            return HookView(hook.ifindex, hook.ifname, hook.state())

    def netns_id(self, netns: Optional[str]) -> int:
        return netns_inode(netns)

    def pinned(self, path: str):
        return pinned(path)

    def owned_prog_ids(self, directory: str) -> Set[int]:
        return pinned_prog_ids(directory) if os.path.isdir(directory) else set()

    def xdp_link(self, ifindex: int, prog_id: int):
        return links.find_xdp_link(ifindex, prog_id)


@dataclass(frozen=True)
class AttachPlan:
    """What ``apply_attach`` will do, and the state it was planned against.

    ``mode`` is the mode to act in: the requested one for a first attach, the attached one for a
    replace or detach. ``link_id`` is non-zero when a bpf_link owns the hook; ``link_pin`` is the
    pin of our link (existing, or to create when ``via_link``), None for a foreign link.
    """

    action: str
    interface: str
    netns: Optional[str]
    ifindex: int
    mode: str
    program_pin: Optional[str]
    prog_id: int
    previous_prog_id: int
    current: XdpState
    record_pin: Optional[str]
    link_pin: Optional[str] = None
    link_id: int = 0
    reason: str = ""
    pin_dir: Optional[str] = None

    @property
    def changed(self) -> bool:
        return self.action != "noop"

    @property
    def via_link(self) -> bool:
        return self.link_pin is not None or self.link_id != 0


@dataclass(frozen=True)
class AttachResult:
    prog_id: int
    mode: Optional[str]
    previous_prog_id: int
    changed: bool
    link_id: int = 0


def plan_attach(interface, netns: Optional[str], program_pin: Optional[str], mode: str = "auto",
                force: bool = False, state: str = "present", via_link: bool = False,
                reader=None, pin_dir: Optional[str] = None, pending: bool = False) -> AttachPlan:
    """Compare the hook with the desired state and decide; reads only, changes nothing."""
    if mode not in MODE_FLAGS:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODE_FLAGS)}")
    if state not in STATES:
        raise ValueError(f"state {state!r}: expected one of {', '.join(STATES)}")
    if state == "present" and not program_pin:
        raise ValueError("state=present needs program_pin (the pinned program to attach)")
    reader = reader or KernelReader()
    try:
        hook = reader.hook(interface, netns)
    except (XdpHookError, NetnsError) as exc:
        if state != "absent" or exc.errno not in (errno.ENODEV, errno.ENOENT):
            raise
        # Already gone: a hook that no longer exists holds nothing to detach.
        return AttachPlan(action="noop", interface=str(interface), netns=netns, ifindex=0, mode=mode,
                          program_pin=program_pin, prog_id=0, previous_prog_id=0,
                          current=XdpState(0, None, 0), record_pin=None,
                          reason=f"{exc if isinstance(exc, XdpHookError) else exc.strerror}; nothing to detach")
    where = describe(hook.ifname, netns)
    key = f"if{hook.ifindex}_ns{reader.netns_id(netns)}"
    pin_dir = pin_dir or (os.path.dirname(program_pin) if program_pin else None)
    record_pin = record_path(pin_dir, RECORD_DIRS[0], key) if pin_dir else None
    our_link_pin = record_path(pin_dir, RECORD_DIRS[1], key) if pin_dir else None

    current_mode, current_id = _attached(hook.state, mode, state, where)
    desired_id = _pinned_program(reader, program_pin) if state == "present" and not pending else 0
    base = dict(interface=hook.ifname, netns=netns, ifindex=hook.ifindex, program_pin=program_pin,
                prog_id=desired_id, previous_prog_id=current_id, current=hook.state, record_pin=record_pin,
                pin_dir=pin_dir)

    if not current_id:
        if state == "absent":
            return AttachPlan(action="noop", mode=mode, reason=_left_in_other_modes(hook.state, mode), **base)
        return AttachPlan(action="attach", mode=mode, link_pin=our_link_pin if via_link else None, **base)

    owner = reader.xdp_link(hook.ifindex, current_id)
    link_pin = None
    if owner is not None and our_link_pin:
        ours = reader.pinned(our_link_pin)
        link_pin = our_link_pin if ours is not None and ours.id == owner.id else None
    link_id = owner.id if owner is not None else 0
    if state == "present":
        if mode != "auto" and mode != current_mode:
            raise AttachRefused(where, f"program {current_id} is attached in {current_mode} mode, not {mode}: "
                                       f"changing the mode needs a detach first (state=absent), which this "
                                       f"module never does on its own because packets would pass unfiltered")
        if via_link and owner is None:
            raise AttachRefused(where, f"program {current_id} is attached through netlink, not a bpf_link: "
                                       f"switching needs a detach first (state=absent)")
        if current_id == desired_id:
            return AttachPlan(action="noop", mode=current_mode, link_pin=link_pin, link_id=link_id, **base)
    owned = current_id in (reader.owned_prog_ids(pin_dir) if pin_dir else set()) or link_pin is not None
    if not owned and not force:
        raise AttachRefused(where, _foreign(current_id, current_mode, owner, pin_dir))
    action = "replace" if state == "present" else "detach"
    return AttachPlan(action=action, mode=current_mode, link_pin=link_pin, link_id=link_id,
                      reason="" if owned else "forced over a program this collection did not attach", **base)


def record_path(pin_dir: str, subdir: str, name: str) -> str:
    """``<pin_dir>/<subdir>/<name>``, each step through ``pins.join``."""
    return pins.join(pins.join(pin_dir, subdir, "record directory"), name, "attachment record")


def _attached(state: XdpState, mode: str, desired: str, where: str):
    """(mode, prog id) of the program the plan is about; (mode, 0) when there is none."""
    if state.mode == "multi":
        if mode == "auto":
            found = ", ".join(f"{prog_id} in {m} mode" for m, prog_id in state.attached.items())
            raise AttachRefused(where, f"programs are attached in several modes ({found}): name the mode")
        return mode, state.prog_in(mode)
    if state.mode is None or (desired == "absent" and mode not in ("auto", state.mode)):
        return mode, 0
    return state.mode, state.prog_id


def _left_in_other_modes(state: XdpState, mode: str) -> str:
    """Why a detach in ``mode`` does nothing although programs are attached in other modes ("" if none are)."""
    others = {m: prog_id for m, prog_id in state.attached.items() if m != mode}
    if not others:
        return ""
    found = ", ".join(f"program {prog_id} in {m} mode" for m, prog_id in others.items())
    return (f"nothing is attached in {mode} mode, so there is nothing to detach; {found} stays attached "
            f"(detach it in its own mode, or with mode=auto)")


def _pinned_program(reader, program_pin: str) -> int:
    found = reader.pinned(program_pin)
    if found is None:
        raise ValueError(f"program_pin {program_pin}: nothing is pinned there (load the program first)")
    if found.kind != "prog":
        raise ValueError(f"program_pin {program_pin}: a {found.kind} is pinned there, not a program")
    return found.id


def _foreign(prog_id: int, mode: str, owner, pin_dir: Optional[str]) -> str:
    via = f"through bpf_link {owner.id}" if owner is not None else "through netlink"
    if pin_dir is None:
        # Only a program pin names the directory whose records say what this collection attached.
        return (f"program {prog_id} ({mode} mode, {via}) cannot be recognised as attached by this collection "
                f"without the program pin it was attached from; pass program, or force, to detach it")
    return (f"program {prog_id} ({mode} mode, {via}) was not attached by this collection (it is not pinned "
            f"under {pin_dir}); refusing to replace or detach it unless forced")


def apply_attach(plan: AttachPlan) -> AttachResult:
    """Carry out ``plan``, holding the pin directory's lock (``pins.locked``). A hook changed since
    planning makes the kernel refuse (see ``hook_changed``), and the hook is then left as it was."""
    if plan.action == "noop":
        mode = plan.mode if plan.previous_prog_id else None
        return AttachResult(plan.previous_prog_id, mode, plan.previous_prog_id, False, plan.link_id)
    with pins.locked(plan.pin_dir):
        return _apply_changed(plan)


# (operation, errno) of the kernel's refusals that mean the hook is no longer what the plan saw.
_HOOK_CHANGED = {("xdp_attach", errno.EBUSY), ("xdp_replace", errno.EEXIST), ("xdp_detach", errno.EEXIST),
                 ("link_create", errno.EBUSY), ("link_update", errno.EPERM)}


def hook_changed(exc: BaseException) -> bool:
    """Whether ``exc`` is the kernel refusing a change because someone changed the hook since planning
    (netlink's EXPECTED_FD and UPDATE_IF_NOEXIST checks, BPF_LINK_UPDATE's BPF_F_REPLACE check)."""
    return isinstance(exc, BpfError) and (exc.op, exc.errno) in _HOOK_CHANGED


def apply_attach_replanning(plan: AttachPlan, replan: Callable[[], AttachPlan]) -> Tuple[AttachPlan, AttachResult]:
    """``apply_attach(plan)``; when the hook changed since planning, re-read it with ``replan()`` and
    apply that plan instead, once (a second refusal is raised). Returns the plan applied and its result."""
    try:
        return plan, apply_attach(plan)
    except BpfError as exc:
        if not hook_changed(exc):
            raise
    plan = replan()
    return plan, apply_attach(plan)


def _apply_changed(plan: AttachPlan) -> AttachResult:
    new = old = None
    try:
        new = Program.from_pin(plan.program_pin) if plan.action != "detach" else None
        old = Program.from_id(plan.previous_prog_id) if plan.previous_prog_id else None
        if plan.via_link:
            return _apply_link(plan, new, old)
        return _apply_netlink(plan, new, old)
    finally:
        for owner in (new, old):
            if owner is not None:
                owner.close()


def _apply_netlink(plan: AttachPlan, new: Optional[Program], old: Optional[Program]) -> AttachResult:
    with XdpHook(plan.ifindex, plan.netns) as hook:
        if plan.action == "attach":
            after = hook.attach(new.fd, plan.mode)
            try:
                _record(new, plan.record_pin)
            except BaseException:
                hook.detach(after.mode, expected_fd=new.fd)  # leave the hook as we found it
                raise
        elif plan.action == "replace":
            after = hook.replace(new.fd, old.fd, plan.mode)
            _record(new, plan.record_pin)
        else:
            after = hook.detach(plan.mode, expected_fd=old.fd)
            if plan.record_pin:
                pins.unpin_with_dir(plan.record_pin)
    mode = after.mode if plan.action == "attach" else plan.mode
    return AttachResult(after.prog_in(mode) if mode else 0, mode, plan.previous_prog_id, True)


def _record(program: Program, record_pin: str) -> None:
    """Pin the attached program as the hook's attachment record, replacing the previous one."""
    pins.makedirs(os.path.dirname(record_pin))
    pins.replace(program.fd, record_pin)


def _apply_link(plan: AttachPlan, new: Optional[Program], old: Optional[Program]) -> AttachResult:
    if plan.action == "attach":
        info = links.create_xdp_link(new.fd, plan.ifindex, plan.mode, plan.netns, plan.link_pin)
        with XdpHook(plan.ifindex, plan.netns) as hook:
            mode = hook.state().mode
        return AttachResult(info.prog_id, mode, 0, True, info.id)
    with links.open_link(plan.link_pin, plan.link_id) as link:
        if plan.action == "replace":
            info = links.update_xdp_link(link, new.fd, old.fd)
            return AttachResult(info.prog_id, plan.mode, plan.previous_prog_id, True, info.id)
        info = links.detach_xdp_link(link, plan.link_pin)
        return AttachResult(0, plan.mode, plan.previous_prog_id, True, info.id)


@dataclass(frozen=True)
class RecordedAttachment:
    """A hook recorded under a pin directory; ``live`` while it still runs the recorded program.

    ``where`` names the interface and namespace (by ifindex and namespace inode once they are gone);
    ``ifindex`` and ``netns`` (None: this process's namespace) reach the hook while ``present``."""

    record: str
    prog_id: int
    where: str
    live: bool
    ifindex: int = 0
    netns: Optional[str] = None
    present: bool = False


def recorded_attachments(pin_dir: str) -> List[RecordedAttachment]:
    """Every attachment recorded under ``pin_dir`` (``attached/`` and ``links/``), checked against its hook."""
    found = []
    for subdir in RECORD_DIRS:
        directory = pins.join(pin_dir, subdir, "record directory")
        for name in sorted(pins.list_pins(directory)):
            match = _RECORD_NAME.match(name)
            recorded = pinned(pins.join(directory, name, "attachment record")) if match else None
            if recorded is None:
                continue
            ifindex, inode = int(match.group(1)), int(match.group(2))
            where, attached, netns = _hook_now(ifindex, inode)
            found.append(RecordedAttachment(recorded.path, recorded.prog_id, where,
                                            recorded.prog_id in (attached or {}).values(), ifindex, netns, attached is not None))
    return found


def _hook_now(ifindex: int, inode: int):
    """``(where, {mode: prog id} or None, netns)`` of the hook of ``ifindex`` in the namespace with
    ``inode``; None instead of the dict when the namespace or the interface is gone."""
    gone = f"interface {ifindex} in network namespace {inode}"
    try:
        netns = netns_named(inode)
    except LookupError:
        return gone + " (no longer found)", None, None
    try:
        with XdpHook(ifindex, netns) as hook:
            return hook.where, hook.state().attached, netns
    except XdpHookError as exc:
        if exc.errno != errno.ENODEV:
            raise
        return gone + " (no longer found)", None, netns
