#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_prog_array: the slots of a pinned tail-call jump table.

In: the task's options (``entries`` keys arrive as strings from YAML/JSON and are normalised to
slot numbers here). Out: ``entries`` after the task, ``map_id``, ``max_entries`` and a
before/after diff by program id. Plans with ``_bpf.progarray.plan_prog_array`` (read-only) and
acts only outside check mode.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_prog_array
short_description: Manage the slots of a pinned BPF prog-array (tail-call jump table)
version_added: 1.0.0
description:
  - Points slots of the prog-array pinned at O(map) at pinned programs, so that a dispatcher's
    C(bpf_tail_call) reaches them.
  - Slots are compared by program id. A slot that must change is overwritten in place in one step,
    so a tail call never finds it empty; slots are deleted only when they must end up empty.
  - If writing one slot fails, the slots already written get their previous programs back.
  - Tasks on one host that change prog-arrays pinned in the same directory take turns (an exclusive
    C(flock) on the directory holding O(map)), so concurrent Ansible forks do not race.
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  map:
    description:
      - Path of the pinned prog-array on bpffs, for example C(/sys/fs/bpf/xdp/maps/jump_table).
    type: path
    required: true
  entries:
    description:
      - Slots to manage, as slot number (C(0) up to the array's C(max_entries) - 1) to the path of a
        pinned program.
      - A slot number is plain decimal (C(6)) or hexadecimal with C(0x) (C(0x6)); anything else
        (C(1_0), signs, spaces, non-ASCII digits) is refused.
      - With O(state=absent), the slots to empty; a slot is emptied only if it holds the named program,
        or whatever it holds when the value is C(null).
    type: dict
    default: {}
  exclusive:
    description:
      - Empty every slot not named in O(entries).
      - With O(state=absent), empty every slot.
    type: bool
    default: false
  state:
    description:
      - V(present) makes the slots in O(entries) hold the given programs.
      - V(absent) empties them. With nothing pinned at O(map), or nothing pinned at a program path named in
        O(entries), there is nothing to empty, so the task changes nothing and succeeds.
    type: str
    choices: [present, absent]
    default: present
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
      - The slots are planned on the host as the earlier check-mode tasks of the same run would leave it, so a
        handler that an earlier M(whistler.xdp.xdp_load) would re-pin changes its slot, and a jump table it would
        create is wired from empty.
  diff_mode:
    support: full
    details:
      - The diff names the program in each slot with its tag and id (C(6 -> tcp_handler (tag a1b2c3d4e5f6a7b8, id 812))),
        or C(new) for a program not loaded yet.
  idempotent:
    support: full
seealso:
  - module: whistler.xdp.xdp_load
  - module: whistler.xdp.xdp_info
"""

EXAMPLES = r"""
- name: Wire the handlers into the dispatcher's jump table
  whistler.xdp.xdp_prog_array:
    map: /sys/fs/bpf/xdp/maps/jump_table
    entries:
      0: /sys/fs/bpf/xdp/tcp_handler
      1: /sys/fs/bpf/xdp/udp_handler
    exclusive: true
  register: wired

- name: Stop dispatching UDP
  whistler.xdp.xdp_prog_array:
    map: /sys/fs/bpf/xdp/maps/jump_table
    entries:
      1: null
    state: absent
"""

RETURN = r"""
entries:
  description:
    - The filled slots after the task (predicted in check mode), as slot number to program id.
    - In check mode, null for a program not loaded yet (that an earlier task of the run would load).
  returned: success
  type: dict
  sample: {"0": 812, "1": 813}
map_id:
  description:
    - Id of the prog-array map; null with O(state=absent) when nothing is pinned at O(map), and in check mode for
      a map not created yet.
  returned: success
  type: int
  sample: 77
max_entries:
  description: Number of slots of the prog-array; null with O(state=absent) when nothing is pinned at O(map).
  returned: success
  type: int
  sample: 3
"""

import os  # noqa: E402  (Ansible modules import after the docs)
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
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pins import check_path
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import (
        apply_prog_array,
        parse_slot,
        plan_prog_array,
    )
    from ansible_collections.whistler.xdp.plugins.module_utils._overlay import Overlay, program_words, public
except ImportError:
    LOADER_IMPORT_ERROR = traceback.format_exc()
else:
    LOADER_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    CHECK_OVERLAY_SPEC,
    map=dict(type="path", required=True),
    entries=dict(type="dict", default={}),
    exclusive=dict(type="bool", default=False),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)


def slot_entries(entries):
    """``entries`` with slot numbers as ints; raises ValueError naming a key that is not a slot number."""
    slots = {}
    for key, program in entries.items():
        slot = parse_slot(key, "entries")
        if slot in slots:
            raise ValueError(f"entries: slot {slot} is given twice")
        if program is not None and not isinstance(program, str):
            raise ValueError(f"entries: slot {slot} must name a pinned program path, not {program!r}")
        slots[slot] = program
    return slots


def check_paths(map_pin, entries):
    """Fail, naming the option (and the slot), on a path that cannot be a pin on bpffs."""
    check_path(map_pin, "map")
    for slot, program in sorted(entries.items()):
        if program is not None:
            check_path(program, f"entries: slot {slot}: program")


def slot_words(entries):
    """{slot: the program in it, in words} for the diff (``"6": "tcp_handler (tag ..., id 812)"``)."""
    return {str(slot): program_words(program) for slot, program in sorted(entries.items())}


def run(module, overlay):
    params = module.params
    with loader_errors(module):
        entries = slot_entries(params["entries"])
        check_paths(params["map"], entries)
        plan, result = plan_and_apply(
            module, lambda: plan_prog_array(params["map"], entries, exclusive=params["exclusive"],
                                            state=params["state"], reader=overlay.reader()),
            apply_prog_array, lambda plan: [os.path.dirname(plan.map_pin)])
        after = plan.after if result is None else result.after
        overlay.record_prog_array(plan)
        diff = Diff()
        diff.record("slots", slot_words(plan.before), slot_words(after))
    pinned = bool(plan.map_id)  # an absent plan on a table that is gone has no map
    outcome = dict(changed=plan.changed, entries=after, map_id=plan.map_id if pinned else None,
                   max_entries=plan.max_entries if pinned else None)
    if module._diff:
        outcome["diff"] = diff.result()
    return outcome


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    check_requirements(module, LOADER_IMPORT_ERROR)
    overlay = Overlay.from_module(module)
    module.exit_json(**public(run(module, overlay)), **overlay.exit_fields())


if __name__ == "__main__":
    main()
