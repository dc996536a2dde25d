"""Carry a dispatcher plan out: a ``Plan`` (made holding the pin path's lock) in, an ``Outcome`` out, or a
``RolloutError`` after the host was put back.

Order, all under ``pins.locked(pin path)`` so that forks on one host take turns:

1. sweep what killed runs left (staged pins, incomplete generations, version 1 pins already adopted);
2. adopt a version 1 rollout as generation 0 (new pins of the same objects, so nothing live changes);
3. build the new generation beside the live one: ``load.apply_load`` with the jump table placed in the
   generation (shared maps reused), ``progarray`` wires the handlers, the record is pinned last;
4. go live, one step at a time, each pushing its undo: every interface swapped atomically to the new
   dispatcher (``attach``: netlink REPLACE + EXPECTED_FD, BPF_LINK_UPDATE for link-owned hooks, a plain
   attach only onto an empty hook), the pointers, the recorded interfaces no longer wanted detached, then
   the post-switch checks (``PostSwitchCheck``: health checks plug in here);
5. only then prune old generations, drop stale records and write the object copy.

If anything in 3 or 4 fails, the undos run in reverse (each interface swapped back atomically to the
program it ran, pointers restored), the new generation and the shared maps it created are removed, a
replaced shared map is pinned back, an adoption is undone, and ``RolloutError`` says what failed and
what was rolled back. Counters live in the shared maps, which no step re-creates, so they survive.
``apply_absent`` detaches the rollout's interfaces and removes every pin of its layout.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .. import pins
from ..attach import AttachPlan, AttachRefused, AttachResult, apply_attach, plan_attach
from ..load import LoadResult, apply_load
from ..maps import Map
from ..pinned import pins_by_prog_id
from ..progarray import apply_prog_array, plan_prog_array
from .generations import (
    Generation,
    adopt,
    read_generations,
    record_content,
    remove_generation,
    set_pointer,
    unpin_all,
    write_record,
)
from .layout import Layout
from .plan import Plan, rollout_pins


@dataclass(frozen=True)
class Live:
    """What a post-switch check sees: the generation now live and the hooks now running its dispatcher."""

    layout: Layout
    generation: int
    dispatcher_pin: str
    hooks: Tuple[AttachPlan, ...]


# A check after going live (issue: health checks). It raises, saying what it saw, to roll the host back.
PostSwitchCheck = Callable[[Live], None]


class RolloutError(Exception):
    """A step after the first change failed; the host was put back (``undone``), except ``undo_errors``."""

    def __init__(self, cause: BaseException, undone: List[str], undo_errors: List[str]):
        self.cause, self.undone, self.undo_errors = cause, undone, undo_errors
        text = str(cause)
        if undone:
            text += "; rolled back: " + "; ".join(undone)
        if undo_errors:
            text += "; COULD NOT roll back: " + "; ".join(undo_errors)
        super().__init__(text)

    @property
    def log(self) -> str:
        return getattr(self.cause, "log", "")


@dataclass
class Outcome:
    generation: Optional[Generation] = None        # the live generation, read back
    attached: List[Tuple[AttachPlan, AttachResult]] = field(default_factory=list)
    detached: List[Tuple[AttachPlan, AttachResult]] = field(default_factory=list)
    pruned: List[int] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


class _Undo:
    """Undo actions of the live steps taken so far, run newest first."""

    def __init__(self):
        self._steps: List[Tuple[str, Callable[[], object]]] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        self._steps.append((what, action))

    def run(self) -> Tuple[List[str], List[str]]:
        done, failed = [], []
        for what, action in reversed(self._steps):
            try:
                action()
                done.append(what)
            except Exception as exc:  # keep undoing the rest; report every failure
                failed.append(f"{what}: {exc}")
        return done, failed


def apply_plan(plan: Plan, checks: Sequence[PostSwitchCheck] = ()) -> Outcome:
    """Carry ``plan`` out (``state`` present or previous; ``apply_absent`` for absent)."""
    layout = plan.layout
    outcome = Outcome(warnings=list(plan.warnings))
    with pins.locked(layout.root):
        _sweep(plan)
        existed = [d for d in _layout_dirs(layout) if os.path.isdir(d)]
        adopted = _adopt(plan) if plan.adopt else None
        built = None
        try:
            if plan.new_generation:
                built = _build(plan)
            _go_live(plan, checks, outcome)
        except BaseException:
            if built is not None:
                built.discard()
            if adopted is not None:
                remove_generation(layout, adopted)
            for directory in _layout_dirs(layout):
                if directory not in existed:
                    pins.remove_dir_if_empty(directory)
            raise
        finally:
            if built is not None:
                built.close()
        if adopted is not None:
            unpin_all(plan.host.legacy.all_pins)
        generations = read_generations(layout)
        for number in plan.prune:
            if number in generations:
                remove_generation(layout, generations[number])
                outcome.pruned.append(number)
        unpin_all(plan.drop_records)
        if plan.object_file == "write":
            _write_object(plan.desired.spec.source, plan.desired.object_dest)
        outcome.generation = read_generations(layout).get(plan.target)
    return outcome


def _layout_dirs(layout: Layout) -> List[str]:
    """The directories of the layout that hold generations, shared maps and records."""
    return [layout.generations, layout.shared_maps] + [os.path.join(layout.root, d) for d in ("attached", "links")]


def _sweep(plan: Plan) -> None:
    unpin_all(plan.strays)
    generations = read_generations(plan.layout)
    for number in plan.sweep:
        if number in generations and not generations[number].complete:
            remove_generation(plan.layout, generations[number])


def _adopt(plan: Plan) -> Generation:
    legacy, desired = plan.host.legacy, plan.desired
    programs = {p.name: {"tag": p.tag, "prog_type": p.prog_type} for p in legacy.programs.values()}
    content = record_content(0, None, plan.dispatcher, desired.jump_table or "", programs,
                             legacy.slots(desired.jump_table or ""), adopted=True)
    return adopt(plan.layout, legacy, content)


class _Built:
    """A generation this run made, and how to take it away again."""

    def __init__(self, layout: Layout, number: int, result: LoadResult, replaced: Dict[str, Map], arrays: List[str]):
        self.layout, self.number, self.result, self.replaced, self.arrays = layout, number, result, replaced, arrays

    def discard(self) -> None:
        generation = read_generations(self.layout).get(self.number)
        if generation is not None:
            remove_generation(self.layout, generation)
        unpin_all(m.pin for m in self.result.maps.values() if m.action == "create" and m.name not in self.arrays)
        for path, old in self.replaced.items():
            pins.replace(old.fd, path)

    def close(self) -> None:
        for old in self.replaced.values():
            old.close()


def _build(plan: Plan) -> _Built:
    desired, layout, number = plan.desired, plan.layout, plan.target
    replaced = {s.pin: Map.from_pin(s.pin) for s in plan.load.maps if s.action == "replace"}
    try:
        result = apply_load(plan.load)
    except BaseException:
        for old in replaced.values():
            old.close()
        raise
    built = _Built(layout, number, result, replaced, desired.arrays)
    try:
        slots = {slot: layout.program(number, handler) for slot, handler in desired.handlers.items()}
        apply_prog_array(plan_prog_array(layout.array(number, desired.jump_table), slots, exclusive=True))
        programs = {p.name: {"tag": result.programs[p.name].tag, "prog_type": p.prog_type,
                             "attach_type": p.expected_attach_type, "flags": p.prog_flags}
                    for p in desired.spec.programs}
        write_record(layout.record(number), record_content(number, desired.object_sha256, desired.dispatcher,
                                                           desired.jump_table, programs, desired.handlers))
    except BaseException:
        built.discard()
        built.close()
        raise
    return built


def _go_live(plan: Plan, checks: Sequence[PostSwitchCheck], outcome: Outcome) -> None:
    layout, undo = plan.layout, _Undo()
    root = layout.root
    pin = layout.program(plan.target, plan.dispatcher)
    hooks = []
    try:
        for iface in plan.desired.interfaces:
            step = plan_attach(iface.name, iface.netns, pin, iface.mode, pin_dir=root)
            hooks.append(step)
            if step.changed:
                result = apply_attach(step)
                outcome.attached.append((step, result))
                undo.push(f"{_where(step)} back to {_was(step)}", lambda s=step, r=result: _restore_hook(layout, s, r))
        saved = (plan.host.current, plan.host.previous)
        undo.push("the generation pointers", lambda: _set_pointers(layout, *saved))
        _set_pointers(layout, plan.target, plan.previous_after)
        for planned in plan.detach:
            step = plan_attach(planned.ifindex, planned.netns, None, "auto", state="absent", pin_dir=root)
            if step.changed:
                result = apply_attach(step)
                outcome.detached.append((step, result))
                undo.push(f"{_where(step)} re-attached", lambda s=step: _reattach(layout, s))
        live = Live(layout, plan.target, pin, tuple(hooks))
        for check in checks:
            check(live)
    except BaseException as exc:
        done, failed = undo.run()
        outcome.attached.clear()
        outcome.detached.clear()
        raise RolloutError(exc, done, failed) from exc


def _where(step: AttachPlan) -> str:
    return f"{step.interface}" + (f" (netns {step.netns})" if step.netns else "")


def _was(step: AttachPlan) -> str:
    return f"program {step.previous_prog_id}" if step.previous_prog_id else "no program (detached)"


def _set_pointers(layout: Layout, current: Optional[int], previous: Optional[int]) -> None:
    # previous first: killed in between, gen/current still names the generation that was live, and the
    # next run (which finds the new one complete and switched to) moves it to previous again.
    set_pointer(layout.previous, previous)
    set_pointer(layout.current, current)


def _pin_of(layout: Layout, prog_id: int) -> str:
    """A pin of program ``prog_id`` in the rollout's generations (or its version 1 pins)."""
    records = (os.path.join(layout.root, "attached") + "/", os.path.join(layout.root, "links") + "/")
    paths = [p for p in pins_by_prog_id(layout.root).get(prog_id, []) if not p.startswith(records)]
    if not paths:
        raise LookupError(f"program {prog_id} is no longer pinned under {layout.root}")
    return paths[0]


def _restore_hook(layout: Layout, step: AttachPlan, result: AttachResult) -> None:
    """Put the hook ``step`` changed back: swap the old program in atomically, or detach from a hook
    that was empty."""
    if not step.previous_prog_id:
        back = plan_attach(step.ifindex, step.netns, None, "auto", state="absent", pin_dir=layout.root)
    else:
        back = plan_attach(step.ifindex, step.netns, _pin_of(layout, step.previous_prog_id),
                           result.mode or step.mode, pin_dir=layout.root)
    apply_attach(back)


def _reattach(layout: Layout, step: AttachPlan) -> None:
    apply_attach(plan_attach(step.ifindex, step.netns, _pin_of(layout, step.previous_prog_id), step.mode,
                             pin_dir=layout.root))


def _write_object(source: str, dest: str) -> None:
    """Copy the object to ``dest`` atomically (a temporary file beside it, renamed over it)."""
    directory = os.path.dirname(dest) or "."
    os.makedirs(directory, exist_ok=True)
    with open(source, "rb") as f:
        data = f.read()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".whistler-object-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- state=absent ---------------------------------------------------------------------------------

def apply_absent(plan: Plan) -> Outcome:
    """Detach the rollout's dispatcher where it runs, then remove every pin of its layout (generation
    records first) and its directories, and the object copy."""
    layout = plan.layout
    outcome = Outcome(warnings=list(plan.warnings))
    with pins.locked(layout.root):
        for planned in plan.detach:
            try:
                step = plan_attach(planned.ifindex, planned.netns, None, "auto", state="absent", pin_dir=layout.root)
            except AttachRefused as exc:
                outcome.warnings.append(f"{_where(planned)}: left as it is: {exc.detail}")
                continue
            if step.changed:
                outcome.detached.append((step, apply_attach(step)))
        for generation in read_generations(layout).values():
            outcome.removed += remove_generation(layout, generation)
        ours, _unknown = rollout_pins(layout)
        outcome.removed += unpin_all(ours)
        for directory, _dirs, _files in sorted(os.walk(layout.root), reverse=True):
            pins.remove_dir_if_empty(directory)
    if plan.object_file == "remove" and os.path.lexists(plan.desired.object_dest):
        os.unlink(plan.desired.object_dest)
    return outcome
