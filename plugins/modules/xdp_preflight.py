#!/usr/bin/python
# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""whistler.xdp.xdp_preflight: can this host run an XDP rollout? One call, every answer.

In: the task's options. Out: kernel, features, capabilities, bpffs, python, requirements and
``problems`` (see RETURN), read by ``module_utils._preflight``; fails listing the problems unless
told not to. Changes nothing except mounting bpffs when O(mount_bpffs=true) (predicted in check mode).
Needs nothing beyond the standard library, so it runs where pyroute2/pyelftools are missing or broken.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_preflight
short_description: Check in one call that a host can run an XDP rollout
version_added: 1.0.0
description:
  - Reads, in one module call, what a rollout needs from the managed host, and reports every reason it
    cannot run there in RV(problems).
  - Kernel features are probed with C(bpf(2)), the way C(bpftool feature probe) and cilium/ebpf do (create
    the smallest map or program that needs the feature, call the helper, pass the flag), not by parsing the
    kernel version. A missing feature reads "needs Linux 5.7 (atomic XDP replace ...)". The XDP hook probes
    run on the loopback interface of a throw-away network namespace; no interface of the host is touched.
  - Reports the Python that runs modules and whether the loader's requirements (pyroute2, pyelftools)
    import in it, with the pip requirements that would install working ones (RV(requirements.pip)).
    Missing requirements are not a problem here (O(install_requirements=true) installs them); a Python the
    collection does not support is.
  - Changes nothing unless asked to mount bpffs (O(mount_bpffs)) or to install the requirements
    (O(install_requirements)), and nothing at all on a host with problems; check mode predicts both.
  - Runs with the Python standard library only, so it works before the requirements are installed.
  - The role C(whistler.xdp.tail_call_dispatch) runs it as its first task on the host.
  - For testing, the environment variable C(WHISTLER_XDP_SIMULATE_MISSING) (feature names separated by
    commas, or C(all)) makes those features read as missing.
author:
  - whistler.xdp developers (@whistler-xdp)
options:
  features:
    description:
      - Kernel features the rollout needs. Each missing one is a problem. Every known feature is probed
        and reported in RV(features) either way.
      - V(xdp) (4.8), V(prog_test_run) (4.12, packet tests before going live), V(btf_func_info) (5.0),
        V(btf_maps) (5.2), V(bounded_loops) (5.3), V(xdp_replace) (5.7, atomic upgrades), V(ringbuf) (5.8),
        V(enable_stats) (5.8, health checks on run counts), V(bpf_link_xdp) (5.9), V(bpf_loop) (5.17),
        V(xdp_frags) (5.18), V(log_true_size) (6.4), V(tag_sha256) (6.18, informational; older kernels tag
        programs with SHA-1, which the loader handles).
      - The default is what loading, wiring and atomically swapping a dispatcher needs.
    type: list
    elements: str
    choices: [xdp, prog_test_run, btf_func_info, btf_maps, bounded_loops, xdp_replace, ringbuf, enable_stats,
              bpf_link_xdp, bpf_loop, xdp_frags, log_true_size, tag_sha256]
    default: [xdp, btf_func_info, btf_maps, xdp_replace]
  bpffs:
    description:
      - Where bpffs must be mounted.
    type: path
    default: /sys/fs/bpf
  mount_bpffs:
    description:
      - Mount bpffs at O(bpffs) when it is not mounted there.
    type: bool
    default: false
  interfaces:
    description:
      - Interfaces the rollout will use; each one that does not exist (or whose namespace does not) is a
        problem.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Interface name.
        type: str
        required: true
      netns:
        description: Name (under C(/run/netns)) or path of the network namespace holding the interface.
        type: str
      mode:
        description:
          - Not checked here; accepted so that a role's interface list (name, netns, mode) can be passed
            unchanged.
        type: str
  install_requirements:
    description:
      - Install the loader's requirements that are missing, too old or broken (RV(requirements.pip)) with
        the pip of the Python that runs modules (C(python -m pip install)), and check that they import.
      - Needs only pip on the host, not the C(packaging) or C(setuptools) library that M(ansible.builtin.pip)
        needs (often missing on Python 3.12 and later).
      - Nothing is installed for a Python the collection refuses.
    type: bool
    default: false
  break_system_packages:
    description:
      - With O(install_requirements=true), let pip install into an "externally managed" Python (PEP 668, for
        example Debian 12 and Ubuntu 23.04 or later) outside a venv. Both libraries are pure Python and go to
        C(/usr/local), next to the distribution's packages.
    type: bool
    default: false
  allow_untested_python:
    description:
      - Accept a Python newer than the newest one the collection is tested with (RV(python.newest_tested)).
        A Python older than RV(python.minimum) is always refused.
    type: bool
    default: false
  fail_on_problems:
    description:
      - Fail the task when RV(problems) is not empty, with the problems as the message. V(false) only
        reports them.
    type: bool
    default: true
extends_documentation_fragment:
  - whistler.xdp._attributes
  - whistler.xdp._attributes.PLATFORM
  - whistler.xdp._attributes.ACTIONGROUP_XDP
attributes:
  check_mode:
    support: full
    details:
      - The feature probes load and close tiny programs and maps, and create a network namespace that
        goes away with the probe; nothing of them remains, in check mode or not.
  diff_mode:
    support: full
  idempotent:
    support: full
requirements:
  - Linux; Python 3.9 to 3.13 on the managed host (older ones are reported as a problem)
seealso:
  - module: whistler.xdp.xdp_info
"""

EXAMPLES = r"""
- name: Check that the host can run the rollout, mount bpffs and install the requirements if needed
  whistler.xdp.xdp_preflight:
    mount_bpffs: true
    install_requirements: true
    interfaces:
      - {name: eth1}
      - {name: veth0, netns: blue}
  register: preflight

- name: Also require packet tests and health checks, report without failing
  whistler.xdp.xdp_preflight:
    features: [xdp, btf_func_info, btf_maps, xdp_replace, prog_test_run, enable_stats]
    fail_on_problems: false
  register: preflight

- name: Show what the kernel lacks
  ansible.builtin.debug:
    msg: "{{ preflight.problems }}"
"""

RETURN = r"""
kernel:
  description: The running kernel.
  returned: always
  type: dict
  sample: {"release": "6.18.44", "machine": "x86_64"}
  contains:
    release:
      description: Kernel release (C(uname -r)).
      type: str
    machine:
      description: Machine architecture (C(uname -m)).
      type: str
features:
  description: Every known kernel feature, by name, with the probe's answer.
  returned: always
  type: dict
  sample: {"xdp_replace": {"status": "ok", "kernel": "5.7", "required": true, "detail": "",
                           "description": "atomic XDP replace over netlink, XDP_FLAGS_REPLACE + IFLA_XDP_EXPECTED_FD"}}
  contains:
    status:
      description: V(ok), V(missing), or V(error) when the probe could not tell (see C(detail)).
      type: str
    kernel:
      description: First Linux release that has the feature.
      type: str
    description:
      description: What the feature is.
      type: str
    required:
      description: Whether O(features) lists it.
      type: bool
    detail:
      description: Why the probe could not tell, or that the answer was simulated.
      type: str
capabilities:
  description: Effective capabilities of the module's process.
  returned: always
  type: dict
  sample: {"effective": "0x1ffffffffff", "cap_net_admin": true, "cap_sys_admin": true, "cap_perfmon": true,
           "cap_bpf": true}
bpffs:
  description: The bpffs mount point, after this task (in check mode, as it is now).
  returned: always
  type: dict
  sample: {"path": "/sys/fs/bpf", "exists": true, "mounted": true}
  contains:
    path:
      description: O(bpffs).
      type: str
    exists:
      description: Whether the directory exists.
      type: bool
    mounted:
      description: Whether bpffs is mounted there.
      type: bool
python:
  description: The Python that runs modules on the host.
  returned: always
  type: dict
  sample: {"version": "3.11.7", "executable": "/usr/bin/python3", "supported": true, "minimum": "3.9",
           "newest_tested": "3.13"}
  contains:
    version:
      description: Its version.
      type: str
    executable:
      description: Its path.
      type: str
    supported:
      description: Whether the collection supports it (see O(allow_untested_python)).
      type: bool
    minimum:
      description: The oldest Python the collection supports.
      type: str
    newest_tested:
      description: The newest Python the collection is tested with.
      type: str
requirements:
  description: The loader's Python requirements in that Python.
  returned: always
  type: dict
  sample: {"ready": false, "pip": ["pyroute2>=0.9.1"], "installed": [],
           "packages": {"pyroute2": {"required": ">=0.9.1", "version": "0.9.2", "works": false,
                                     "error": "TypeError: 'type' object is not subscriptable"},
                        "pyelftools": {"required": ">=0.31", "version": "0.32", "works": true, "error": null}}}
  contains:
    ready:
      description: Whether every requirement is installed, recent enough and imports (after this task; in check
        mode, as it is now).
      type: bool
    pip:
      description: Requirements to install (pip syntax) for the ones that are not ready, after this task.
      type: list
      elements: str
    installed:
      description: What O(install_requirements=true) installed (in check mode, would install).
      type: list
      elements: str
    packages:
      description: Per distribution, the version required and installed, whether it works and why not.
      type: dict
problems:
  description: One sentence per reason the host cannot run the rollout; empty when it can.
  returned: always
  type: list
  elements: str
  sample: ["needs Linux 5.7 (atomic XDP replace over netlink, XDP_FLAGS_REPLACE + IFLA_XDP_EXPECTED_FD); this kernel is 5.4.0-216-generic"]
"""

import sys  # noqa: E402  (Ansible modules import after the docs)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import features  # noqa: E402
from ansible_collections.whistler.xdp.plugins.module_utils._preflight import (  # noqa: E402
    bpffs_mounted,
    host_facts,
    interface_problems,
)
from ansible_collections.whistler.xdp.plugins.module_utils._requirements import REQUIREMENTS  # noqa: E402

ARGUMENT_SPEC = dict(
    features=dict(type="list", elements="str", choices=list(features.FEATURES), default=list(features.ROLLOUT)),
    bpffs=dict(type="path", default="/sys/fs/bpf"),
    mount_bpffs=dict(type="bool", default=False),
    interfaces=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        netns=dict(type="str"),
        mode=dict(type="str"),
    )),
    install_requirements=dict(type="bool", default=False),
    break_system_packages=dict(type="bool", default=False),
    allow_untested_python=dict(type="bool", default=False),
    fail_on_problems=dict(type="bool", default=True),
)


def mount(module, facts):
    """Mount bpffs when asked and needed (not in check mode); returns whether that is a change."""
    bpffs = facts["bpffs"]
    if bpffs["mounted"] or not module.params["mount_bpffs"] or not bpffs["exists"]:
        return False
    if not module.check_mode:
        module.run_command(["mount", "-t", "bpf", "bpf", bpffs["path"]], check_rc=True)
        bpffs["mounted"] = bpffs_mounted(bpffs["path"])
    return True


def install(module, facts):
    """Install the requirements that do not work when asked (not in check mode), and check that they import
    in a fresh interpreter; returns what was installed (or would be)."""
    requirements = facts["requirements"]
    if requirements["ready"] or not module.params["install_requirements"] or not facts["python"]["supported"]:
        return []
    wanted = list(requirements["pip"])
    if module.check_mode:
        return wanted
    environ = {"PIP_BREAK_SYSTEM_PACKAGES": "1"} if module.params["break_system_packages"] else {}
    rc, out, err = module.run_command([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                                       "--quiet"] + wanted, environ_update=environ)
    if rc != 0:
        text = (err or out).strip()
        hint = ""
        if "externally-managed-environment" in text:
            hint = " (an externally managed Python: allow it with break_system_packages=true, or use a venv)"
        elif "No module named pip" in text:
            hint = " (this Python has no pip: install it, for example the python3-pip package)"
        module.fail_json(msg=f"pip could not install {' '.join(wanted)} for {sys.executable}{hint}: {text}",
                         **facts)
    imports = "; ".join(f"import {r.module}" for r in REQUIREMENTS)
    rc, out, err = module.run_command([sys.executable, "-c", imports])
    if rc != 0:
        module.fail_json(msg=f"pip installed {' '.join(wanted)} for {sys.executable}, but they do not import: "
                             f"{(err or out).strip()}", **facts)
    requirements.update(ready=True, pip=[])
    return wanted


def run(module):
    params = module.params
    facts = host_facts(params["features"], params["bpffs"], params["allow_untested_python"])
    bpffs, requirements = facts["bpffs"], facts["requirements"]
    before = dict(bpffs_mounted=bpffs["mounted"], requirements_ready=requirements["ready"])
    if not bpffs["exists"]:
        facts["problems"].append(f"{bpffs['path']} does not exist: the kernel has no BPF file system support")
    elif not bpffs["mounted"] and not params["mount_bpffs"]:
        facts["problems"].append(f"bpffs is not mounted at {bpffs['path']} (mount_bpffs=true mounts it)")
    facts["problems"] += interface_problems(params["interfaces"])
    mounted, installed = False, []
    if not facts["problems"]:  # a host that cannot run the rollout is left as it is
        mounted = mount(module, facts)
        installed = install(module, facts)
    requirements["installed"] = installed
    result = dict(changed=mounted or bool(installed), **facts)
    if module._diff:
        result["diff"] = dict(before=before, after=dict(bpffs_mounted=before["bpffs_mounted"] or mounted,
                                                        requirements_ready=before["requirements_ready"] or bool(installed)))
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = run(module)
    if result["problems"] and module.params["fail_on_problems"]:
        module.fail_json(msg="the host cannot run the rollout: " + "; ".join(result["problems"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
