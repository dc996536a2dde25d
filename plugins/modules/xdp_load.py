#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_load: a BPF object's programs and maps pinned on bpffs, or their pins removed.

In: the task's options. Out: ``programs`` and ``maps`` keyed by name (id, tag, pin, reused, action),
or ``removed`` for state=absent, and a before/after diff (program tags, map ids). Plans with
``_bpf.load.plan_load`` (read-only: compares offline tags with the pinned programs' tags) and
applies only outside check mode.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_load
short_description: Load a BPF object's programs and maps into the kernel and pin them on bpffs
version_added: 1.0.0
description:
  - Loads the XDP (and tc) programs of the BPF ELF object O(object) on the managed host and pins them at
    C(<pin_path>/<program name>), with their maps at C(<map_pin_path>/<map name>).
  - A pinned program whose kernel tag equals the object's program (computed offline, without loading
    anything) and that uses the same maps is left alone. A changed program is loaded first and then
    re-pinned in one step (pinned under a temporary name, renamed over the old pin), so a reader of the
    pin never finds it missing.
  - Pinned maps are reused when they are compatible (type, key and value size, max_entries, flags, and for
    prog-arrays the owner program type), so a jump table keeps its slots and counters keep counting across
    upgrades. An incompatible pinned map fails the task unless O(replace_incompatible_maps=true).
  - Nothing is half-applied. Every map is opened or created and every program loaded before the first pin
    changes; on failure new objects are released and existing pins are untouched.
  - Tasks on one host that use the same pin directories take turns (an exclusive C(flock) on O(pin_path)
    and O(map_pin_path)), so concurrent Ansible forks do not race.
  - The verifier's log is returned as RV(ignore:verifier_log) when the kernel rejects a program; the
    failure message starts with the source location (C(file:line:col)) and line of the rejected
    instruction, read from the object's line info.
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  object:
    description:
      - Path of the BPF ELF object on the managed host, as delivered by M(whistler.xdp.xdp_compile).
      - Required with O(state=present).
      - It must be a regular file of at most 64 MiB (a FIFO, a device or a directory is refused without
        being read), and its program and map names must be C identifiers; the task fails naming the file
        otherwise.
      - With O(state=absent), only this object's programs and maps are unpinned; without it, every pin
        directly in O(pin_path) and O(map_pin_path).
    type: path
  pin_path:
    description:
      - bpffs directory for the program pins, for example C(/sys/fs/bpf/xdp). Created if missing.
      - Pin names may not contain C(.).
    type: path
    required: true
  map_pin_path:
    description:
      - bpffs directory for the map pins. Default is C(<pin_path>/maps).
    type: path
  replace_incompatible_maps:
    description:
      - Re-create a pinned map that is incompatible with the object's definition, losing its contents,
        instead of failing.
      - Programs that still use the old map keep using it until they are replaced.
      - A jump table (prog-array) that loaded programs still use is never re-created, even with this
        option, because the programs tail-calling through it would lose every slot. Load the new object under
        another O(pin_path) instead.
    type: bool
    default: false
  state:
    description:
      - V(present) loads and pins the object.
      - V(absent) removes the pins (the kernel frees the objects once nothing else uses them), and the
        records M(whistler.xdp.xdp_attach) keeps under C(<pin_path>/attached/) and C(<pin_path>/links/) of
        attachments that are gone, then the pin directories this leaves empty (never a mount point
        such as C(/sys/fs/bpf), never a directory holding anything else). Nothing pinned is not an error.
      - Pins staged by a run that was killed before renaming them (C(<name>_whistler_tmp_<hex>)) are
        removed by the next run with either state.
      - V(absent) fails, naming the interfaces, while a program recorded there is still attached to an
        interface, unless O(force=true). Detach it first with M(whistler.xdp.xdp_attach).
      - V(absent) when nothing is pinned any more changes nothing and succeeds, also when O(object) no longer
        exists (a teardown run again after the object was deleted).
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), remove the pins even though a program recorded under O(pin_path) is still
        attached. The attached program keeps running, and its record stays, so that
        M(whistler.xdp.xdp_attach) still recognises it as this collection's and detaches it without O(force).
    type: bool
    default: false
extends_documentation_fragment:
  - whistler.xdp._attributes
  - whistler.xdp._attributes.CHECK_OVERLAY
  - whistler.xdp._attributes.PLATFORM
  - whistler.xdp._attributes.REQUIREMENTS
  - whistler.xdp._attributes.ACTIONGROUP_XDP
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details:
      - The action plugin gives the module, in check mode, what earlier check-mode tasks of the run planned (see O(_check_overlay)).
  check_mode:
    support: full
    details:
      - In check mode nothing is loaded; RV(programs[].id) and RV(maps[].id) are null for objects that would be new.
      - The plan is made on the host as the earlier check-mode tasks of the same run would leave it. The object an
        earlier M(whistler.xdp.xdp_compile) would deliver to O(object) is shipped to Ansible's remote temp dir and
        read from there, so a playbook that compiles and loads can be checked on a host that has neither; pins,
        slots and attachments planned earlier count as done (an unload after a planned detach is not refused).
  diff_mode:
    support: full
    details:
      - The diff names each pin's program with its tag and id (C(tcp_handler (tag a1b2c3d4e5f6a7b8, id 812))), or
        C(new) for a program or map not loaded yet.
  idempotent:
    support: full
seealso:
  - module: whistler.xdp.xdp_compile
  - module: whistler.xdp.xdp_prog_array
  - module: whistler.xdp.xdp_attach
"""

EXAMPLES = r"""
- name: Load and pin the dispatcher and its handlers
  whistler.xdp.xdp_load:
    object: /var/lib/whistler-xdp/dispatch.bpf.o
    pin_path: /sys/fs/bpf/xdp
  register: loaded

- name: Show the dispatcher's program id
  ansible.builtin.debug:
    msg: "{{ loaded.programs.xdp_dispatch.id }}"

- name: Upgrade to an object whose jump table got bigger (its slots are lost)
  whistler.xdp.xdp_load:
    object: /var/lib/whistler-xdp/dispatch-v2.bpf.o
    pin_path: /sys/fs/bpf/xdp
    replace_incompatible_maps: true

- name: Remove the pins (fails while the dispatcher is still attached somewhere)
  whistler.xdp.xdp_load:
    pin_path: /sys/fs/bpf/xdp
    state: absent
"""

RETURN = r"""
programs:
  description: The object's programs, keyed by program name.
  returned: when O(state=present)
  type: dict
  sample: {"xdp_dispatch": {"id": 812, "tag": "3b185187f1855c4c", "pin": "/sys/fs/bpf/xdp/xdp_dispatch",
                            "reused": true, "action": "unchanged"}}
  contains:
    id:
      description: Program id; null in check mode for a program that would be loaded (by this task or an earlier one of the run).
      type: int
    tag:
      description: Kernel tag of the pinned program (predicted offline in check mode).
      type: str
    pin:
      description: Pin path.
      type: str
    reused:
      description: Whether the pinned program was kept because it is unchanged.
      type: bool
    action:
      description: V(load) (new pin), V(replace) (re-pinned with a changed program) or V(unchanged).
      type: str
maps:
  description: The object's maps, keyed by map name.
  returned: when O(state=present)
  type: dict
  sample: {"proto_stats": {"id": 78, "pin": "/sys/fs/bpf/xdp/maps/proto_stats", "reused": true, "action": "reuse"}}
  contains:
    id:
      description: Map id; null in check mode for a map that would be created (by this task or an earlier one of the run).
      type: int
    pin:
      description: Pin path.
      type: str
    reused:
      description: Whether the pinned map was reused (its contents kept).
      type: bool
    action:
      description: V(create), V(reuse) or V(replace) (re-created because incompatible).
      type: str
removed:
  description: Pins removed (that would be removed, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: [/sys/fs/bpf/xdp/xdp_dispatch, /sys/fs/bpf/xdp/maps/jump_table]
verifier_log:
  description: The kernel verifier's log, line by line, when it rejected a program.
  returned: failure
  type: list
  elements: str
"""

import os  # noqa: E402  (Ansible modules import after the docs)
import platform  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._diff import Diff  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._imports import check_requirements  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._module_base import (  # noqa: E402
    CHECK_OVERLAY_SPEC,
    loader_errors,
    plan_and_apply,
)

try:
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import recorded_attachments
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import ObjectFileError
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.load import (
        apply_load,
        apply_unload,
        pin_dirs,
        plan_load,
        plan_unload,
    )
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import read_object
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.tag import (
        kernel_algorithm as kernel_tag_algorithm,
    )
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.tag import program_tag
    from ansible_collections.whistler.xdp.plugins.module_utils._overlay import (
        Overlay,
        Planned,
        map_words,
        program_words,
        public,
    )
except ImportError:
    LOADER_IMPORT_ERROR = traceback.format_exc()
else:
    LOADER_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    CHECK_OVERLAY_SPEC,
    object=dict(type="path"),
    pin_path=dict(type="path", required=True),
    map_pin_path=dict(type="path"),
    replace_incompatible_maps=dict(type="bool", default=False),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    force=dict(type="bool", default=False),
)


def predicted(plan):
    """``(programs, maps)`` as check mode reports them: what the plan keeps, and the predicted tags of
    programs it loads (their ids are not known before they are loaded)."""
    algorithm = kernel_tag_algorithm(platform.release())
    programs = {}
    for step in plan.programs:
        kept = step.action == "unchanged"
        relocated = [relocation[0] for relocation in step.spec.relocations]
        programs[step.name] = dict(id=step.current_id if kept else None, pin=step.pin, reused=kept, action=step.action,
                                   tag=step.current_tag if kept else program_tag(step.spec.insns, algorithm, relocated))
    maps = {step.name: dict(id=step.current_id if step.action == "reuse" else None, pin=step.pin,
                            reused=step.action == "reuse", action=step.action) for step in plan.maps}
    return programs, maps


def applied(result):
    """``(programs, maps)`` from what ``apply_load`` did."""
    programs = {name: dict(id=p.id, tag=p.tag, pin=p.pin, reused=p.action == "unchanged", action=p.action)
                for name, p in result.programs.items()}
    maps = {name: dict(id=m.id, pin=m.pin, reused=m.reused, action=m.action) for name, m in result.maps.items()}
    return programs, maps


def load_diff(plan, programs, maps):
    """Per pin, in words: the program there (name, tag, id) or the map (name, type, id), before and after."""
    diff = Diff()
    for step in plan.programs:
        after = programs[step.name]
        diff.record(step.pin, program_words(step.current_id, step.name, step.current_tag),
                    program_words(after["id"] or Planned("prog", step.pin, step.name, after["tag"]),
                                  step.name, after["tag"]))
    for step in plan.maps:
        after_id = maps[step.name]["id"] or Planned("map", step.pin, step.name)
        diff.record(step.pin, map_words(step.name, step.spec.type, step.current_id),
                    map_words(step.name, step.spec.type, after_id))
    for path in plan.stale:
        diff.record(path, "staged by an interrupted run", None)
    return diff


def object_spec(path, overlay):
    """The BPF object at ``path`` (option ``object``), or its planned content when an earlier check-mode
    task of this run would have written it; a ValueError naming the option and the file when it cannot
    be read or is not a BPF object this loader supports."""
    try:
        spec = read_object(overlay.file(path))
    except ObjectFileError as exc:
        raise ValueError(f"object {exc}") from exc
    spec.source = path
    return spec


def checked_plan(spec, params, overlay):
    plan = plan_load(spec, params["pin_path"], params["map_pin_path"], params["replace_incompatible_maps"],
                     reader=overlay.reader())
    plan.check()
    return plan


def present(module, overlay):
    params = module.params
    with loader_errors(module):
        spec = object_spec(params["object"], overlay)
        plan, result = plan_and_apply(module, lambda: checked_plan(spec, params, overlay), apply_load,
                                      lambda plan: [plan.pin_path, plan.map_pin_path])
        programs, maps = predicted(plan) if result is None else applied(result)
        overlay.record_load(plan, {name: program["tag"] for name, program in programs.items()})
    return dict(changed=plan.changed, programs=programs, maps=maps), load_diff(plan, programs, maps)


def still_attached(pin_path, live):
    """What of ``pin_path`` still runs: the recorded attachments ``live``, with where they are."""
    where = "; ".join(f"program {program_words(a.prog_id) or a.prog_id} on {a.where} (recorded at {a.record})"
                      for a in live)
    return f"pin_path {pin_path}: still attached: {where}"


def live_attachments(pin_path, overlay):
    """The attachments recorded under ``pin_path`` that still run (as planned tasks would leave them)."""
    return [record for record in overlay.records(pin_path, recorded_attachments(pin_path)) if record.live]


def unload_plan(spec, params, overlay):
    """The unload plan: ``spec``'s pins (or all under the pin paths) and the records of attachments
    that are gone; refused while a recorded attachment is live, unless forced (the records are kept)."""
    pin_path, map_dir = pin_dirs(params["pin_path"], params["map_pin_path"])
    records = overlay.records(pin_path, recorded_attachments(pin_path))
    live = [record for record in records if record.live]
    if live and not params["force"]:
        raise ValueError(still_attached(pin_path, live) + ". Detach first (whistler.xdp.xdp_attach state=absent), "
                                                          "or set force=true to remove the pins anyway")
    stale = [record.record for record in records if not record.live]
    plan = plan_unload(pin_path, params["map_pin_path"], spec, also=stale)
    if spec is not None:
        ours = {os.path.join(pin_path, p.name) for p in spec.programs}
        ours |= {os.path.join(map_dir, m.name) for m in spec.maps}
        return overlay.unload(plan, lambda path: path in ours or path in stale)
    return overlay.unload(plan, lambda path: os.path.dirname(path) in (pin_path, map_dir) or path in stale)


def unload_spec(params, overlay):
    """The object whose pins to remove; None for every pin. A missing object is no error while nothing
    is pinned any more (a teardown that already ran, the object deleted after it)."""
    if not params["object"]:
        return None
    try:
        return object_spec(params["object"], overlay)
    except ValueError:
        if os.path.lexists(overlay.file(params["object"])) or unload_plan(None, params, overlay).pins:
            raise
        return None


def absent(module, overlay):
    params = module.params
    with loader_errors(module):
        spec = unload_spec(params, overlay)
        # Lock only the directories that exist: locking creates a missing one, and the plan made under
        # the lock would then count it among the directories the unload leaves empty.
        plan, removed = plan_and_apply(module, lambda: unload_plan(spec, params, overlay), apply_unload,
                                       lambda plan: [d for d in plan.dirs if os.path.isdir(d)])
        removed = list(plan.pins) if removed is None else removed
        overlay.record_unload(removed)
        pin_path = pin_dirs(params["pin_path"])[0]
        live = live_attachments(pin_path, overlay)
    if live:
        module.warn(still_attached(pin_path, live) + "; the records are kept (force=true)")
    diff = Diff()
    diff.record("pins", sorted(plan.pins), sorted(set(plan.pins) - set(removed)))
    if plan.empty_dirs:
        diff.record("directories", sorted(plan.empty_dirs), [])
    return dict(changed=plan.changed, removed=removed), diff


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["object"])],
        supports_check_mode=True,
    )
    check_requirements(module, LOADER_IMPORT_ERROR)
    overlay = Overlay.from_module(module)
    outcome, diff = (present if module.params["state"] == "present" else absent)(module, overlay)
    if module._diff:
        outcome["diff"] = diff.result()
    module.exit_json(**public(outcome), **overlay.exit_fields())


if __name__ == "__main__":
    main()
