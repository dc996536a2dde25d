#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_attach: a pinned XDP program on an interface's hook, or none.

In: the task's options. Out: ``prog_id``, ``mode``, ``previous_prog_id``, ``ifindex`` and a
before/after diff. Reads the hook and plans (``_bpf.attach.plan_attach``, read-only); acts only
outside check mode (``apply_attach``), so check mode predicts exactly what a real run does.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_attach
short_description: Attach a pinned XDP program to a network interface
version_added: 1.0.0
description:
  - Puts the program pinned at O(program) on the XDP hook of O(interface), optionally inside the
    network namespace O(netns), or takes it off with O(state=absent).
  - A program that is already attached is replaced atomically (netlink C(XDP_FLAGS_REPLACE) with the
    expected old program, in the mode it is attached in), so the hook is never empty and no packet
    passes unfiltered during an upgrade. The module never detaches and re-attaches.
  - The attached program counts as this collection's when it is pinned anywhere under the directory
    holding O(program). Every attach records the attached program under C(<that directory>/attached/),
    so a program replaced later by a new version is still recognised. Replacing or detaching any other
    program fails unless O(force=true).
  - Compares by program id, so running it again with the same pinned program changes nothing.
  - If the kernel refuses the change because another writer changed the hook between reading and acting
    (the expected old program is gone, or the empty hook is taken), the module reads the hook again, plans
    again and acts once more; the new plan follows the same rules (a foreign program is still refused).
  - Tasks on one host that use the same pin directory take turns (an exclusive C(flock) on the directory
    holding O(program)), so concurrent Ansible forks do not race.
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  interface:
    description:
      - Name of the network interface.
    type: str
    required: true
  netns:
    description:
      - Name (as in C(ip netns list)) or path of the network namespace that holds O(interface).
      - The module never moves itself into the namespace for netlink; it talks to it through a socket
        opened there, so bpffs stays visible.
      - Default is the network namespace Ansible runs in.
    type: str
  program:
    description:
      - Path of the pinned program on bpffs, for example C(/sys/fs/bpf/xdp/xdp_dispatch) as pinned by
        M(whistler.xdp.xdp_load).
      - Required with O(state=present). With O(state=absent) it identifies the pin directory that marks
        programs as this collection's; without it O(state=absent) detaches only with O(force=true).
    type: path
  mode:
    description:
      - XDP mode. V(native) runs in the driver, V(generic) in the kernel's network stack (works on every
        interface), V(offload) on the NIC. V(auto) lets the kernel choose (native when the driver has XDP
        support) for a new attachment, and keeps whatever mode an existing attachment has.
      - Changing the mode of an existing attachment is refused, because it would need a detach first;
        detach with O(state=absent) and attach again.
      - With O(state=absent), the mode to detach from; V(auto) means the mode the program is attached in.
    type: str
    choices: [auto, native, generic, offload]
    default: auto
  force:
    description:
      - Replace or detach a program this collection did not attach (one not pinned under the directory
        of O(program)).
    type: bool
    default: false
  via_link:
    description:
      - Make a new attachment through a bpf_link pinned at C(<directory of O(program)>/links/), instead of
        through netlink. Only the link can change or remove the program then; C(ip link set ... xdp off) and
        other netlink users get C(EBUSY), which protects the attachment from other tools.
      - An existing attachment is always changed through whatever owns it (the module finds the link that
        owns a hook by itself). Switching an existing netlink attachment to a link is refused, because it
        needs a detach first.
    type: bool
    default: false
  state:
    description:
      - V(present) attaches O(program) (or replaces the attached program with it).
      - V(absent) detaches the attached program. When O(interface) or O(netns) does not exist, its hook is gone
        with it, so the task changes nothing, succeeds and warns.
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
      - The hook is planned on the host as the earlier check-mode tasks of the same run would leave it, so a
        dispatcher that an earlier M(whistler.xdp.xdp_load) would re-pin replaces the attached one, and a detach
        planned earlier counts as done.
  diff_mode:
    support: full
    details:
      - The diff names the program on the interface's hook with its tag and id, and the mode
        (C(veth0 -> xdp_dispatch (tag 3b185187f1855c4c, id 812) in generic mode)), or C(new) for a program not
        loaded yet.
  idempotent:
    support: partial
    details:
      - With O(force=true) over a foreign program, the first run replaces it; later runs change nothing.
seealso:
  - module: whistler.xdp.xdp_load
  - module: whistler.xdp.xdp_info
"""

EXAMPLES = r"""
- name: Attach the dispatcher in generic mode inside a namespace
  whistler.xdp.xdp_attach:
    interface: veth0
    netns: blue
    program: /sys/fs/bpf/xdp/xdp_dispatch
    mode: generic
  register: attached

- name: Attach natively on a physical interface, replacing whatever program is there
  whistler.xdp.xdp_attach:
    interface: eth1
    program: /sys/fs/bpf/xdp/xdp_dispatch
    mode: native
    force: true

- name: Attach through a pinned bpf_link, so other tools cannot replace or remove it
  whistler.xdp.xdp_attach:
    interface: veth0
    netns: blue
    program: /sys/fs/bpf/xdp/xdp_dispatch
    mode: generic
    via_link: true

- name: Detach the dispatcher
  whistler.xdp.xdp_attach:
    interface: veth0
    netns: blue
    program: /sys/fs/bpf/xdp/xdp_dispatch
    state: absent
"""

RETURN = r"""
prog_id:
  description:
    - Id of the program attached after the task (predicted in check mode); 0 when none is.
    - In check mode, null for a program not loaded yet (that an earlier task of the run would load).
  returned: success
  type: int
  sample: 812
mode:
  description:
    - XDP mode of the attachment after the task (V(native), V(generic) or V(offload)); null when nothing
      is attached after the task (after a detach, for example; RV(previous_prog_id) and the diff say what
      was detached).
    - V(auto) only in check mode, for a first attachment where the kernel has not chosen yet.
  returned: success
  type: str
  sample: generic
previous_prog_id:
  description: Id of the program attached before the task; 0 when the hook was empty.
  returned: success
  type: int
  sample: 797
ifindex:
  description: Index of the interface in its network namespace.
  returned: success
  type: int
  sample: 4
link_id:
  description:
    - Id of the bpf_link that owns the hook after the task; 0 when netlink attached the program, or nothing is
      attached.
    - In check mode, 0 for a link the task would create.
  returned: success
  type: int
  sample: 31
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
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import (
        apply_attach_replanning,
        plan_attach,
    )
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netns import netns_inode
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pins import check_path
    from ansible_collections.whistler.xdp.plugins.module_utils._overlay import Overlay, program_words, public
except ImportError:
    LOADER_IMPORT_ERROR = traceback.format_exc()
else:
    LOADER_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    CHECK_OVERLAY_SPEC,
    interface=dict(type="str", required=True),
    netns=dict(type="str"),
    program=dict(type="path"),
    mode=dict(type="str", default="auto", choices=["auto", "native", "generic", "offload"]),
    force=dict(type="bool", default=False),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    via_link=dict(type="bool", default=False),
)


def hook_words(prog_id, mode):
    """The hook as the diff shows it: which program, in which mode (None: nothing attached)."""
    if not prog_id:
        return None
    mode_words = "the mode the kernel chooses" if mode == "auto" else f"{mode} mode"
    return f"{program_words(prog_id)} in {mode_words}"


def pin_dir(plan):
    """The directory to lock: the one holding the program, which holds the attachment records too."""
    return [os.path.dirname(plan.program_pin)] if plan.program_pin else []


def run(module, overlay):
    params = module.params
    reader = overlay.reader()

    def planned():
        return plan_attach(params["interface"], params["netns"], params["program"], mode=params["mode"],
                           force=params["force"], state=params["state"], via_link=params["via_link"],
                           reader=reader)

    with loader_errors(module):
        if params["program"] is not None:
            check_path(params["program"], "program")
        plan, applied = plan_and_apply(module, planned, lambda plan: apply_attach_replanning(plan, planned),
                                       pin_dir)
        if applied is None:
            prog_id, mode, link_id = (0, None, 0) if plan.action == "detach" else (plan.prog_id, plan.mode,
                                                                                   plan.link_id)
            if plan.changed:
                overlay.record_attach(plan, netns_inode(plan.netns))
        else:
            plan, result = applied
            prog_id, mode, link_id = result.prog_id, result.mode, result.link_id
        if not prog_id:
            mode, link_id = None, 0
        diff = Diff()
        diff.record(plan.interface, hook_words(plan.previous_prog_id, plan.current.mode), hook_words(prog_id, mode))
    outcome = dict(changed=plan.changed, prog_id=prog_id, mode=mode, previous_prog_id=plan.previous_prog_id,
                   ifindex=plan.ifindex, link_id=link_id)
    if plan.reason:
        module.warn(f"{plan.interface}: {plan.reason}")
    if module._diff:
        outcome["diff"] = diff.result()
    return outcome


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["program"])],
        supports_check_mode=True,
    )
    check_requirements(module, LOADER_IMPORT_ERROR)
    overlay = Overlay.from_module(module)
    module.exit_json(**public(run(module, overlay)), **overlay.exit_fields())


if __name__ == "__main__":
    main()
