# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Attribute descriptions shared by every whistler.xdp module (private to the collection).

In: nothing. Out: documentation fragments that modules pull in with
``extends_documentation_fragment: [whistler.xdp._attributes, ...]``; each module then only
states ``support:`` (and ``details:`` where support is partial) for each attribute.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
"""

    # Modules that act on the Linux kernel of the managed host (bpf(2), netlink, bpffs).
    PLATFORM = r"""
options: {}
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    details: The module talks to the Linux kernel through C(bpf(2)), bpffs and netlink.
    platforms: linux
"""

    # Read-only modules: they never change anything, so check mode and idempotency are trivial.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
"""

    # Host-side requirements shared by the modules that run the loader.
    REQUIREMENTS = r"""
options: {}
requirements:
  - Linux with XDP support (5.7 or newer for atomic replacement), bpffs mounted at C(/sys/fs/bpf)
  - root, or CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN
  - python >= 3.8
  - pyelftools
  - pyroute2 >= 0.9.1
"""

    # Membership of the collection's action group, for module_defaults.
    ACTIONGROUP_XDP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/whistler.xdp.xdp) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - whistler.xdp.xdp
"""

    # The internal option of the modules whose action plugin plans check mode on earlier tasks' plans.
    CHECK_OVERLAY = r"""
options:
  _check_overlay:
    description:
      - Internal to the collection; do not set it (a task that sets it fails).
      - In check mode the module's action plugin passes here what earlier check-mode tasks of the same run
        planned for this host (files they would write, pins, jump-table slots, XDP hooks), so that the module
        plans on the host as those tasks would leave it. Outside check mode it is not used.
    type: dict
"""
