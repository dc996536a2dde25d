#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_info: read-only facts about XDP programs, pins and maps on a host.

In: the task's options. Out: ``interfaces``, ``programs`` and ``maps`` (see RETURN), gathered by
``module_utils._facts``. Changes nothing, so check mode is the same as a normal run.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_info
short_description: Report XDP programs on interfaces, pinned programs and maps, and map contents
version_added: 1.0.0
description:
  - Reports the XDP programs attached to network interfaces (id, name, tag, mode), optionally inside
    a network namespace.
  - With O(pin_path), reports the programs and maps pinned there and in O(map_pin_path), with each
    map's contents decoded through its BTF type information (so an array of C(__u64) counters reads as
    slot number to count) and each prog-array's slots as slot number to program id.
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  netns:
    description:
      - Name (as in C(ip netns list)) or path of the network namespace whose interfaces to report.
      - Default is the network namespace Ansible runs in.
    type: str
  interfaces:
    description:
      - Interfaces to report, each whether or not it has an XDP program.
      - Default is every interface of the namespace that has an XDP program attached.
      - An interface that does not exist fails the task.
    type: list
    elements: str
  pin_path:
    description:
      - bpffs directory whose directly pinned programs and maps to report, as
        M(whistler.xdp.xdp_load) pins them.
      - A directory that does not exist (nothing loaded there yet) reports no programs and maps; a path
        outside bpffs fails the task.
    type: path
  map_pin_path:
    description:
      - bpffs directory of pinned maps to report as well.
      - Default is C(<pin_path>/maps), when that directory exists.
    type: path
  map_contents:
    description:
      - Include every map's entries in RV(maps). Turn off for big maps.
    type: bool
    default: true
extends_documentation_fragment:
  - whistler.xdp._attributes
  - whistler.xdp._attributes.INFO_MODULE
  - whistler.xdp._attributes.PLATFORM
  - whistler.xdp._attributes.REQUIREMENTS
  - whistler.xdp._attributes.ACTIONGROUP_XDP
seealso:
  - module: whistler.xdp.xdp_attach
  - module: whistler.xdp.xdp_load
"""

EXAMPLES = r"""
- name: Read the dispatcher's counters and where it is attached
  whistler.xdp.xdp_info:
    netns: blue
    pin_path: /sys/fs/bpf/xdp
  register: xdp

- name: Show the per-protocol counters
  ansible.builtin.debug:
    msg: "{{ xdp.maps.proto_stats.entries }}"

- name: Report two interfaces, attached or not, without map contents
  whistler.xdp.xdp_info:
    interfaces: [eth0, eth1]
    map_contents: false
"""

RETURN = r"""
interfaces:
  description: XDP hook of each reported interface, keyed by interface name.
  returned: always
  type: dict
  sample: {"veth0": {"ifindex": 4, "mode": "generic", "prog_id": 812, "prog_name": "xdp_dispatch",
                     "tag": "3b185187f1855c4c", "attached": {"generic": 812}}}
  contains:
    ifindex:
      description: Interface index in its namespace.
      type: int
    mode:
      description: V(native), V(generic), V(offload), V(multi) (offload plus another mode), or null when nothing is attached.
      type: str
    prog_id:
      description: Id of the attached program; 0 when none is, or when programs are attached in several modes.
      type: int
    prog_name:
      description: Name of the attached program.
      type: str
      returned: when a program is attached
    tag:
      description: Kernel tag of the attached program.
      type: str
      returned: when a program is attached
    attached:
      description: Program id per mode in use.
      type: dict
programs:
  description: Programs pinned directly in O(pin_path) and O(map_pin_path), keyed by pin name.
  returned: always
  type: dict
  sample: {"xdp_dispatch": {"id": 812, "name": "xdp_dispatch", "tag": "3b185187f1855c4c", "type": "xdp",
                            "map_ids": [77, 78], "insns": 26, "pin": "/sys/fs/bpf/xdp/xdp_dispatch"}}
  contains:
    id:
      description: Program id.
      type: int
    name:
      description: Full name of the program (from its BTF; the kernel itself keeps only 15 characters).
      type: str
    tag:
      description: Kernel tag of the program.
      type: str
    type:
      description: Program type (V(xdp), V(sched_cls), or the type number).
      type: str
    map_ids:
      description: Ids of the maps the program uses.
      type: list
      elements: int
    insns:
      description: Number of instructions after verification (8-byte slots).
      type: int
    pin:
      description: Pin path.
      type: str
maps:
  description: Maps pinned directly in O(pin_path) and O(map_pin_path), keyed by pin name.
  returned: always
  type: dict
  sample: {"proto_stats": {"id": 78, "name": "proto_stats", "type": "array", "key_size": 4, "value_size": 8,
                           "max_entries": 3, "flags": 0, "entries": {"0": 12, "1": 7, "2": 5},
                           "pin": "/sys/fs/bpf/xdp/maps/proto_stats"}}
  contains:
    id:
      description: Map id.
      type: int
    name:
      description: Kernel name of the map.
      type: str
    type:
      description: Map type as C(bpftool) spells it (for example V(array), V(prog_array)).
      type: str
    key_size:
      description: Key size in bytes.
      type: int
    value_size:
      description: Value size in bytes.
      type: int
    max_entries:
      description: Maximum number of entries.
      type: int
    flags:
      description: Map flags.
      type: int
    entries:
      description:
        - Contents, key to value, decoded through the map's BTF the way M(whistler.xdp.xdp_map) reads and
          writes them (numbers, dicts of fields for structs, enumerator names, text for C(char) arrays,
          IP networks for LPM trie keys); a key that is a struct is shown as its compact JSON text. For a
          per-CPU map each value is a list with one value per possible CPU; for a prog-array, slot number
          to program id.
      type: dict
      returned: when O(map_contents=true)
    slots:
      description:
        - For a prog-array, the program in each filled slot, keyed by slot number.
      type: dict
      returned: for a prog-array, when O(map_contents=true)
      sample: {"6": {"id": 813, "name": "tcp_handler", "pins": ["/sys/fs/bpf/xdp/tcp_handler"]}}
      contains:
        id:
          description: Program id.
          type: int
        name:
          description: Full name of the program (empty if it was unloaded meanwhile).
          type: str
        pins:
          description: Where the program is pinned under O(pin_path) and O(map_pin_path).
          type: list
          elements: str
    pin:
      description: Pin path.
      type: str
"""

import os  # noqa: E402  (Ansible modules import after the docs)
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._imports import check_requirements  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._module_base import loader_errors  # noqa: E402

try:
    from ansible_collections.whistler.xdp.plugins.module_utils._facts import interface_facts, pinned_facts
except ImportError:
    LOADER_IMPORT_ERROR = traceback.format_exc()
else:
    LOADER_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    netns=dict(type="str"),
    interfaces=dict(type="list", elements="str"),
    pin_path=dict(type="path"),
    map_pin_path=dict(type="path"),
    map_contents=dict(type="bool", default=True),
)


def pin_directories(pin_path, map_pin_path):
    """The directories to list: ``pin_path``, then the map directory (its default only if it exists)."""
    directories = [pin_path] if pin_path else []
    if map_pin_path:
        directories.append(map_pin_path)
    elif pin_path and os.path.isdir(os.path.join(pin_path, "maps")):
        directories.append(os.path.join(pin_path, "maps"))
    return directories


def run(module):
    params = module.params
    with loader_errors(module):
        interfaces = interface_facts(params["netns"], params["interfaces"])
        programs, maps = pinned_facts(pin_directories(params["pin_path"], params["map_pin_path"]),
                                      params["map_contents"])
    return dict(changed=False, interfaces=interfaces, programs=programs, maps=maps)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    check_requirements(module, LOADER_IMPORT_ERROR)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
