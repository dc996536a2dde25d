"""A dispatcher plan (and, after a real run, its outcome) as the module reports it.

In: a ``Plan``, the ``Outcome`` of applying it (None in check mode or when nothing changed), test results.
Out: ``result(plan, outcome, tests)``: the module's documented return values (generation, programs with
old and new tags, slots by program name, interfaces with program and mode, actions in words);
``diff(plan, outcome)``: before/after text an operator reads (``--diff``): one line per generation,
program (with its tag), jump-table slot and interface. Check mode predicts the tags offline (the kernel's
hash is known from its release), so both modes print the same lines for the same change.
"""

from __future__ import annotations

import platform
from typing import Dict, List, Optional

from ..netlink import describe
from ..tag import kernel_algorithm, program_tag
from .generations import Generation
from .plan import Plan


def _live(plan: Plan) -> Optional[Generation]:
    """The generation live before the run (the version 1 layout when it is still to be adopted)."""
    host = plan.host
    if host.current is not None:
        return host.generations[host.current]
    return host.legacy if plan.adopt else None


def _label(iface_name: str, netns: Optional[str]) -> str:
    return iface_name + (f" (netns {netns})" if netns else "")


def _program_at(plan: Plan, prog_id: int) -> str:
    """What runs as ``prog_id``: a program of a generation ("xdp_dispatch of generation 2"), or its id."""
    if not prog_id:
        return "nothing"
    generations = list(plan.host.generations.values()) + ([plan.host.legacy] if plan.host.legacy else [])
    for gen in generations:
        name = gen.program_name(prog_id)
        if name:
            where = "version 1 layout" if gen.legacy else f"generation {gen.number}"
            return f"{name} ({where})"
    return f"program {prog_id} (not this rollout's)"


def predicted_programs(plan: Plan, outcome=None) -> Dict[str, dict]:
    """{name: {tag, id, pin, previous_tag}} of the generation that goes live."""
    gen = outcome.generation if outcome is not None and outcome.generation is not None else plan.target_generation
    before = _live(plan)
    programs = {}
    if gen is not None:
        for p in gen.programs.values():
            programs[p.name] = dict(tag=p.tag, id=p.id, pin=p.path)
    elif plan.desired.spec is not None:
        algorithm = kernel_algorithm(platform.release())
        for p in plan.desired.spec.programs:
            programs[p.name] = dict(tag=program_tag(p.insns, algorithm, [i for i, _m in p.relocations]), id=None,
                                    pin=plan.layout.program(plan.target, p.name))
    for name, entry in programs.items():
        old = before.programs.get(name) if before is not None else None
        entry["previous_tag"] = old.tag if old is not None else None
    return programs


def _slots(plan: Plan, gen: Optional[Generation], jump_table: str) -> Dict[int, str]:
    if gen is not None:
        return gen.slots(jump_table)
    return dict(sorted(plan.desired.handlers.items()))


def _state_lines(generation: Optional[int], programs: Dict[str, str], jump_table: str, slots: Dict[int, str],
                 interfaces: List[str], kept: List[int]) -> str:
    if generation is None and not programs and not interfaces:
        return ""
    lines = [f"generation {generation}" if generation is not None else "no generation"]
    lines += [f"program {name}: tag {tag}" for name, tag in sorted(programs.items())]
    lines += [f"jump table {jump_table} slot {slot} -> {handler}" for slot, handler in sorted(slots.items())]
    lines += interfaces
    if kept:
        lines.append("generations kept: " + ", ".join(str(n) for n in sorted(kept)))
    return "\n".join(lines) + "\n"


def diff(plan: Plan, outcome=None) -> dict:
    """``{before, after, before_header, after_header}`` as text, one line per thing an operator checks."""
    host, desired = plan.host, plan.desired
    before_gen = _live(plan)
    jump_table = desired.jump_table or ((before_gen.record or {}).get("jump_table", "") if before_gen else "")
    before_number = None if before_gen is None else before_gen.number
    kept_before = sorted(n for n, g in host.generations.items() if g.complete)
    before_ifaces = [f"interface {_label(p.interface, p.netns)}: {_program_at(plan, p.previous_prog_id)}"
                     + (f", {p.current.mode} mode" if p.previous_prog_id else "") for p in plan.attach + plan.detach]
    before = _state_lines(before_number, {n: p.tag for n, p in before_gen.programs.items()} if before_gen else {},
                          jump_table, before_gen.slots(jump_table) if before_gen else {}, before_ifaces, kept_before)
    if desired.state == "absent":
        after = ""
    else:
        programs = predicted_programs(plan, outcome)
        gen = outcome.generation if outcome is not None and outcome.generation is not None else plan.target_generation
        after_ifaces = [f"interface {_label(p.interface, p.netns)}: {plan.dispatcher} (generation {plan.target}), "
                        f"{_mode(p, outcome)} mode" for p in plan.attach]
        after_ifaces += [f"interface {_label(p.interface, p.netns)}: nothing" for p in plan.detach]
        kept = sorted((set(kept_before) | {plan.target} | ({0} if plan.adopt else set())) - set(plan.prune))
        after = _state_lines(plan.target, {n: p["tag"] for n, p in programs.items()}, jump_table,
                             _slots(plan, gen, jump_table), after_ifaces, kept)
    return dict(before=before, after=after, before_header=f"{plan.layout.root} (before)",
                after_header=f"{plan.layout.root} (after)")


def _mode(step, outcome) -> str:
    if outcome is not None:
        for applied, result in outcome.attached:
            if applied.record_pin == step.record_pin and result.mode:
                return result.mode
    if step.previous_prog_id:
        return step.mode
    return step.mode if step.mode != "auto" else "auto (native where the driver supports XDP)"


def actions(plan: Plan) -> List[str]:
    """What the run does (did), in words."""
    done = []
    if plan.strays or plan.sweep:
        what = [f"incomplete generation {n}" for n in plan.sweep] + [f"{len(plan.strays)} leftover pin(s)"] * bool(plan.strays)
        done.append("sweep " + ", ".join(what))
    if plan.adopt:
        done.append("adopt the version 1 layout as generation 0")
    if plan.new_generation:
        done.append(f"load generation {plan.target} beside the live one, wire its jump table, record it")
    for p in plan.attach:
        if p.changed:
            verb = {"attach": "attach", "replace": "switch atomically"}.get(p.action, p.action)
            done.append(f"{verb} {_label(p.interface, p.netns)}: {_program_at(plan, p.previous_prog_id)} -> "
                        f"{plan.dispatcher} (generation {plan.target})")
    for p in plan.detach:
        done.append(f"detach {_label(p.interface, p.netns)} ({_program_at(plan, p.previous_prog_id)})")
    if plan.pointers_change:
        previous = f", {plan.previous_after} previous" if plan.previous_after is not None else ""
        done.append(f"mark generation {plan.target} live{previous}")
    if plan.prune:
        done.append("prune generation(s) " + ", ".join(str(n) for n in plan.prune))
    if plan.drop_records:
        done.append(f"drop {len(plan.drop_records)} record(s) of attachments that are gone")
    if plan.remove:
        done.append(f"remove {len(plan.remove)} pin(s) under {plan.layout.root}")
    if plan.object_file:
        done.append(f"{plan.object_file} {plan.desired.object_dest}")
    return done


def result(plan: Plan, outcome=None, tests=None) -> dict:
    """The module's return values (see the module's RETURN)."""
    desired = plan.desired
    out = dict(changed=plan.changed, pin_path=plan.layout.root, actions=actions(plan),
               tests=[t.as_dict() for t in tests or []])
    if desired.state == "absent":
        out["removed"] = list(plan.remove)
        out["detached"] = [_iface(p, None, plan) for p in plan.detach]
        return out
    before = _live(plan)
    jump_table = desired.jump_table or ((plan.target_generation.record or {}).get("jump_table", "")
                                        if plan.target_generation else "")
    gen = outcome.generation if outcome is not None and outcome.generation is not None else plan.target_generation
    out["generation"] = dict(live=plan.target, before=None if before is None else before.number,
                             new=plan.new_generation, previous=plan.previous_after, pruned=list(plan.prune),
                             path=plan.layout.generation(plan.target))
    out["programs"] = predicted_programs(plan, outcome)
    out["jump_table"] = dict(name=jump_table, pin=plan.layout.array(plan.target, jump_table) if jump_table else None,
                             slots={str(k): v for k, v in _slots(plan, gen, jump_table).items()})
    out["interfaces"] = [_iface(p, outcome, plan) for p in plan.attach]
    out["detached"] = [_iface(p, None, plan) for p in plan.detach]
    return out


def _iface(step, outcome, plan: Plan) -> dict:
    prog_id = step.prog_id or None
    if outcome is not None:
        for applied, res in outcome.attached:
            if applied.record_pin == step.record_pin:
                prog_id = res.prog_id
    return dict(name=step.interface, netns=step.netns, where=describe(step.interface, step.netns),
                action=step.action, mode=_mode(step, outcome), prog_id=prog_id,
                previous=_program_at(plan, step.previous_prog_id))
