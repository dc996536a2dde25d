#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_info: read-only facts about XDP programs, pins and maps on a host.

In: the task's options. Out: ``interfaces``, ``programs``, ``maps`` and ``summary`` (see RETURN), gathered
by ``module_utils._facts``, and with ``facts`` the same as the fact ``whistler_xdp``. Changes nothing, so
check mode is the same as a normal run.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_info
short_description: Report XDP programs on interfaces, pinned programs and maps, and map contents
version_added: 1.0.0
description:
  - Reports the XDP programs attached to network interfaces (id, name, tag, mode), in the network namespaces
    O(netns) (several in one call).
  - With O(pin_path), reports the programs and maps pinned there and in O(map_pin_path), with each
    map's contents decoded through its BTF type information (so an array of C(__u64) counters reads as
    slot number to count) and each prog-array's slots as slot number to program, by id and by name.
  - Every program shown by id is also named, and RV(summary) says in one line per object what is where.
  - With O(facts=true), the same report is also returned as the fact C(whistler_xdp).
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  netns:
    description:
      - Names (as in C(ip netns list)) or paths of the network namespaces whose interfaces to report. A single
        name is a list of one.
      - With one namespace (or none), RV(interfaces) is keyed by interface name; with several, by
        C(<netns>/<interface>).
      - Default is the network namespace Ansible runs in.
    type: list
    elements: str
  interfaces:
    description:
      - Interfaces to report, each whether or not it has an XDP program.
      - Default is every interface of each namespace that has an XDP program attached.
      - An interface that does not exist (in any of the namespaces, when there are several) fails the task.
    type: list
    elements: str
  pin_path:
    description:
      - bpffs directories whose directly pinned programs and maps to report, as
        M(whistler.xdp.xdp_load) pins them. A single path is a list of one.
      - With one directory, RV(programs) and RV(maps) are keyed by pin name; with several, by pin path.
      - A directory that does not exist (nothing loaded there yet) reports no programs and maps; a path
        outside bpffs fails the task.
    type: list
    elements: path
  map_pin_path:
    description:
      - bpffs directories of pinned maps to report as well.
      - Default is C(<pin_path>/maps) of each O(pin_path), when that directory exists.
    type: list
    elements: path
  map_contents:
    description:
      - Include every map's entries in RV(maps). Turn off for big maps.
    type: bool
    default: true
  facts:
    description:
      - Also return the report (RV(interfaces), RV(programs), RV(maps), RV(summary)) as the host fact
        C(whistler_xdp), so later plays and tasks read it as C(ansible_facts.whistler_xdp).
    type: bool
    default: false
extends_documentation_fragment:
  - whistler.xdp._attributes
  - whistler.xdp._attributes.INFO_MODULE
  - whistler.xdp._attributes.PLATFORM
  - whistler.xdp._attributes.REQUIREMENTS
  - whistler.xdp._attributes.ACTIONGROUP_XDP
notes:
  - The module reports the host as it is, also in check mode; it does not show what earlier check-mode tasks
    would have changed.
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

- name: Show everything, one line per object
  ansible.builtin.debug:
    msg: "{{ xdp.summary }}"

- name: Report two interfaces, attached or not, without map contents
  whistler.xdp.xdp_info:
    interfaces: [eth0, eth1]
    map_contents: false

- name: Report two namespaces and two rollouts at once, as host facts
  whistler.xdp.xdp_info:
    netns: [blue, red]
    pin_path: [/sys/fs/bpf/xdp, /sys/fs/bpf/xdp-canary]
    facts: true

- name: Use the facts
  ansible.builtin.debug:
    msg: "{{ ansible_facts.whistler_xdp.interfaces['blue/veth0'].prog_name }}"
"""

RETURN = r"""
interfaces:
  description:
    - XDP hook of each reported interface, keyed by interface name (by C(<netns>/<interface>) when O(netns)
      names several namespaces).
  returned: always
  type: dict
  sample: {"veth0": {"ifindex": 4, "netns": "blue", "mode": "generic", "prog_id": 812, "prog_name": "xdp_dispatch",
                     "tag": "3b185187f1855c4c", "attached": {"generic": 812},
                     "attached_names": {"generic": "xdp_dispatch"}}}
  contains:
    ifindex:
      description: Interface index in its namespace.
      type: int
    netns:
      description: The network namespace as given in O(netns); null for the one Ansible runs in.
      type: str
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
    attached_names:
      description: Program name per mode in use (empty if the program was unloaded meanwhile).
      type: dict
programs:
  description:
    - Programs pinned directly in O(pin_path) and O(map_pin_path), keyed by pin name (by pin path when
      O(pin_path) names several directories).
  returned: always
  type: dict
  sample: {"xdp_dispatch": {"id": 812, "name": "xdp_dispatch", "tag": "3b185187f1855c4c", "type": "xdp",
                            "map_ids": [77, 78], "map_names": ["jt", "proto_stats"], "insns": {"translated": 27},
                            "pin": "/sys/fs/bpf/xdp/xdp_dispatch"}}
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
    map_names:
      description: Names of the maps the program uses, in the order of RV(programs.map_ids).
      type: list
      elements: str
    insns:
      description:
        - Instruction counts, each named for what it counts.
        - C(translated) is the number of instructions (8-byte slots) of the program as the kernel holds it,
          after the verifier rewrote some of them (C(bpftool prog)'s C(xlated) size / 8). It can differ from
          the compiled count that M(whistler.xdp.xdp_compile) and C(python -m compiler check) report.
      type: dict
      contains:
        translated:
          description: Instructions after the kernel's rewriting.
          type: int
    pin:
      description: Pin path.
      type: str
maps:
  description:
    - Maps pinned directly in O(pin_path) and O(map_pin_path), keyed by pin name (by pin path when O(pin_path)
      names several directories).
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
summary:
  description:
    - One line per object, in words, for an operator to read; interfaces first (program and mode), then
      programs, then maps (a map's entries, at most 16 of them; a prog-array's slots one line each, with the
      program in it).
  returned: always
  type: list
  elements: str
  sample:
    - "veth0: xdp_dispatch (tag 3b185187f1855c4c, id 812) in generic mode"
    - "program tcp_handler (tag 8f2b5ac0c6ab2e7a, id 813): xdp, 12 instructions as translated by the kernel,
      uses proto_stats, pinned at /sys/fs/bpf/xdp/tcp_handler"
    - "map jt (prog_array, id 77): 2 of 256 slots filled"
    - "jt slot 6: tcp_handler (id 813), pinned at /sys/fs/bpf/xdp/tcp_handler"
    - "map proto_stats (array, id 78): 0=12, 1=7, 2=5"
ansible_facts:
  description: With O(facts=true), the report as host facts.
  returned: when O(facts=true)
  type: dict
  contains:
    whistler_xdp:
      description: RV(interfaces), RV(programs), RV(maps) and RV(summary), under those keys.
      type: dict
"""

import os  # noqa: E402  (Ansible modules import after the docs)
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._imports import check_requirements  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._module_base import loader_errors  # noqa: E402

try:
    from ansible_collections.whistler.xdp.plugins.module_utils._facts import (
        pinned_facts,
        several_interface_facts,
        summary,
    )
except ImportError:
    LOADER_IMPORT_ERROR = traceback.format_exc()
else:
    LOADER_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    netns=dict(type="list", elements="str"),
    interfaces=dict(type="list", elements="str"),
    pin_path=dict(type="list", elements="path"),
    map_pin_path=dict(type="list", elements="path"),
    map_contents=dict(type="bool", default=True),
    facts=dict(type="bool", default=False),
)


def pin_directories(pin_paths, map_pin_paths):
    """The directories to list: each pin path, and its ``maps`` directory when that exists, then the
    map directories given."""
    directories = []
    for pin_path in pin_paths or ():
        directories.append(pin_path)
        if not map_pin_paths and os.path.isdir(os.path.join(pin_path, "maps")):
            directories.append(os.path.join(pin_path, "maps"))
    return directories + list(map_pin_paths or ())


def run(module):
    params = module.params
    with loader_errors(module):
        interfaces = several_interface_facts(params["netns"] or [None], params["interfaces"])
        programs, maps = pinned_facts(pin_directories(params["pin_path"], params["map_pin_path"]),
                                      params["map_contents"], by_path=len(params["pin_path"] or ()) > 1)
    report = dict(interfaces=interfaces, programs=programs, maps=maps, summary=summary(interfaces, programs, maps))
    return dict(report, changed=False, **(dict(ansible_facts=dict(whistler_xdp=report)) if params["facts"] else {}))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    check_requirements(module, LOADER_IMPORT_ERROR)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
