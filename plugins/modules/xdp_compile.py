#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Documentation and argument spec of whistler.xdp.xdp_compile.

The work happens in the action plugin of the same name (plugins/action/xdp_compile.py), on the
controller: it compiles and hands the object to ansible.builtin.copy. This file documents the
task, owns the argument spec the action plugin validates against, and fails clearly when it
is run without its action plugin (for example through a raw module call).
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_compile
short_description: Compile a Whistler XDP program on the controller and deliver the object to the host
version_added: 1.0.0
description:
  - Compiles a program written in the Whistler Lisp dialect into a BPF ELF object on the Ansible
    controller, then copies the object to O(dest) on the managed host the way M(ansible.builtin.template)
    delivers a rendered file. The copy is idempotent by checksum and honours O(mode), O(owner) and O(group).
  - Every host of a run gets byte-identical code, and hosts need no compiler.
  - Each distinct source (by SHA-256 of its text and of the compiler's own code) is compiled once; the other
    hosts and forks, and later runs, reuse the result from a cache on the controller's disk (beside Ansible's
    local temporary directories, C(~/.ansible/tmp/whistler-xdp-compile) by default; entries unused for 30 days
    are removed).
  - A compile error fails the task with the source location (C(file:line:col)) and a hint.
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  src:
    description:
      - Path of the Whistler source file on the controller.
      - A relative path is searched like M(ansible.builtin.template) searches, in the role's or play's
        C(files) directories first.
      - Exactly one of O(src) and O(content) is required.
    type: path
  content:
    description:
      - The Whistler source text itself, instead of O(src).
    type: str
  dest:
    description:
      - Path of the compiled object on the managed host, for example C(/var/lib/xdp/dispatch.bpf.o).
    type: path
    required: true
extends_documentation_fragment:
  - ansible.builtin.files
  - whistler.xdp._attributes
  - whistler.xdp._attributes.ACTIONGROUP_XDP
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    support: full
    details:
      - The source is compiled in check mode too (compiling changes nothing), so compile errors show up.
      - In check mode the object that would be delivered is kept on the controller for the rest of the run, and
        later check-mode tasks of the run that read O(dest) (M(whistler.xdp.xdp_load)) plan with it, as if it had
        been delivered.
  diff_mode:
    support: full
    details:
      - The object is binary; the diff reports its checksum before and after.
  idempotent:
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - python >= 3.11 on the controller (the compiler is pure Python)
seealso:
  - module: whistler.xdp.xdp_load
notes:
  - The compiler runs on the controller; the managed host only receives the object file.
"""

EXAMPLES = r"""
- name: Compile the dispatcher and copy it to the host
  whistler.xdp.xdp_compile:
    src: xdp-tail-call-dispatch.lisp
    dest: /var/lib/whistler-xdp/dispatch.bpf.o
    mode: "0644"
  register: compiled

- name: Show the programs the object holds
  ansible.builtin.debug:
    msg: "{{ compiled.programs | map(attribute='name') | list }}"

- name: Compile inline source
  whistler.xdp.xdp_compile:
    content: |
      (defprog pass-all (:type :xdp :section "xdp" :license "GPL")
        XDP_PASS)
    dest: /var/lib/whistler-xdp/pass.bpf.o
    mode: "0644"
"""

RETURN = r"""
programs:
  description: The programs in the object, in definition order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Kernel name of the program (lower case, C(-) becomes C(_), at most 15 characters).
      type: str
      sample: xdp_dispatch
    section:
      description: ELF section of the program.
      type: str
      sample: xdp
    insns:
      description: Instruction count as the kernel counts it (a 64-bit immediate load counts as 2).
      type: int
      sample: 26
    tag:
      description:
        - The kernel's tag of the program, computed offline (SHA-256 based, Linux 6.18 and newer).
        - M(whistler.xdp.xdp_info) and C(bpftool prog) show the same tag once the program is loaded.
      type: str
      sample: 3b185187f1855c4c
    tags:
      description: Every tag a kernel may report for the program (SHA-256 based and, for kernels before 6.18, SHA-1 based).
      type: list
      elements: str
      sample: [3b185187f1855c4c, 8f2b5ac0c6ab2e7a]
maps:
  description: The maps the object defines, in definition order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Kernel name of the map.
      type: str
      sample: proto_stats
    type:
      description: Map type, spelled as C(bpftool) spells it.
      type: str
      sample: prog_array
    key_size:
      description: Key size in bytes.
      type: int
      sample: 4
    value_size:
      description: Value size in bytes.
      type: int
      sample: 8
    max_entries:
      description: Maximum number of entries.
      type: int
      sample: 3
checksum:
  description: SHA-1 checksum of the compiled object (the checksum M(ansible.builtin.copy) compares).
  returned: success
  type: str
  sample: 6f4a1c0bd43e1b0fa83d6a2a3b8f4d2e1c0a9b8d
sha256:
  description: SHA-256 of the compiled object.
  returned: success
  type: str
  sample: 0c1e5d0f3fbd3e8a3c4e0b7f2d3b0c2c7d1d3a4c5b6a7f8e9d0c1b2a3f4e5d6c
cached:
  description: Whether the object came from the compile cache (another host or fork of this run, or an earlier run,
    compiled the same source with the same compiler).
  returned: success
  type: bool
  sample: false
dest:
  description: Path of the object on the managed host.
  returned: success
  type: str
  sample: /var/lib/whistler-xdp/dispatch.bpf.o
size:
  description: Size of the object on the host, in bytes.
  returned: success, except in check mode when the object does not exist yet
  type: int
  sample: 3472
mode:
  description: Permissions of the object on the host, in octal.
  returned: success, except in check mode when the object does not exist yet
  type: str
  sample: "0644"
owner:
  description: Owner of the object on the host.
  returned: success, except in check mode when the object does not exist yet
  type: str
  sample: root
group:
  description: Group of the object on the host.
  returned: success, except in check mode when the object does not exist yet
  type: str
  sample: root
uid:
  description: User id of the object's owner.
  returned: success, except in check mode when the object does not exist yet
  type: int
  sample: 0
gid:
  description: Group id of the object's group.
  returned: success, except in check mode when the object does not exist yet
  type: int
  sample: 0
state:
  description: V(file), as M(ansible.builtin.copy) reports it.
  returned: success, except in check mode when the object does not exist yet
  type: str
  sample: file
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (Ansible modules import after the docs)

ARGUMENT_SPEC = dict(
    src=dict(type="path"),
    content=dict(type="str"),
    dest=dict(type="path", required=True),
)
MUTUALLY_EXCLUSIVE = [("src", "content")]
REQUIRED_ONE_OF = [("src", "content")]


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_one_of=REQUIRED_ONE_OF,
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.fail_json(msg="whistler.xdp.xdp_compile compiles on the controller and must run through its action plugin; "
                         "call it as a task (whistler.xdp.xdp_compile), not as a raw module")


if __name__ == "__main__":
    main()
