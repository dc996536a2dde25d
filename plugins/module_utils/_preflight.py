# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Everything a rollout needs from a host, read in one go; PRIVATE to the collection.

In: the kernel features a rollout requires, the bpffs mount point, interfaces (name, netns).
Out: ``host_facts`` (kernel release, every feature probe, effective capabilities, bpffs mount state,
the Python running modules, the loader's requirements) and ``problems`` (one sentence per reason the
host cannot run the rollout: "needs Linux 5.7 (...)", a refused Python, a missing capability ...).
Reads only: mounting bpffs is the module's decision. Standard library only (plus the collection's
stdlib-only ``_bpf.features``/``_bpf.netns``): it runs before pyroute2 and pyelftools are installed.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Dict, Iterable, List, Optional

from . import _requirements
from ._bpf import features
from ._bpf.netns import NetnsError, entered

# linux/capability.h
CAPABILITIES = {"cap_net_admin": 12, "cap_sys_admin": 21, "cap_perfmon": 38, "cap_bpf": 39}
# Loading and pinning needs CAP_BPF (or CAP_SYS_ADMIN before 5.8); reading programs by id, which every
# module does to compare what runs, needs CAP_SYS_ADMIN; netlink changes need CAP_NET_ADMIN.
REQUIRED_CAPABILITIES = ("cap_net_admin", "cap_sys_admin")


def capabilities(status_path: str = "/proc/self/status") -> Dict[str, object]:
    """The effective capability set of this process, as a hex mask and one flag per capability used."""
    with open(status_path) as status:
        mask = next((int(line.split()[1], 16) for line in status if line.startswith("CapEff:")), 0)
    return dict(effective=f"{mask:#x}", **{name: bool(mask >> bit & 1) for name, bit in CAPABILITIES.items()})


def bpffs_mounted(path: str, mounts_path: str = "/proc/self/mounts") -> bool:
    """Whether a bpf filesystem is mounted at ``path`` (as the kernel's mount table says)."""
    wanted = os.path.normpath(path)
    with open(mounts_path) as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "bpf" and fields[1].replace("\\040", " ") == wanted:
                return True
    return False


def interface_problems(interfaces: Iterable[Dict[str, Optional[str]]]) -> List[str]:
    """One sentence per interface that does not exist (in its network namespace, which must exist)."""
    problems = []
    for item in interfaces:
        name, netns = item["name"], item.get("netns")
        where = f" in network namespace {netns!r}" if netns else ""
        try:
            with entered(netns):
                try:
                    socket.if_nametoindex(name)
                except OSError:
                    problems.append(f"interface {name!r}{where} does not exist")
        except NetnsError as exc:
            problems.append(f"interface {name!r}: {exc.strerror}")
        except ValueError as exc:  # a NUL in the name
            problems.append(f"interface {name!r}: {exc}")
    return problems


def host_facts(required: Iterable[str], bpffs: str, allow_untested_python: bool = False) -> Dict[str, object]:
    """What the host offers; the ``problems`` key lists why it cannot run a rollout needing ``required``."""
    required = list(required)
    probes = features.probe_all()
    for name in required:
        probes.setdefault(name, features.probe(name))
    caps = capabilities()
    version = tuple(sys.version_info[:3])
    python = dict(version=".".join(str(n) for n in version), executable=sys.executable,
                  minimum=".".join(str(n) for n in _requirements.PYTHON_MIN),
                  newest_tested=".".join(str(n) for n in _requirements.PYTHON_NEWEST_TESTED))
    python_problems = _requirements.python_problems(version, allow_untested_python)
    python["supported"] = not python_problems
    problems = list(python_problems)
    problems += [f"the module runs without {name.upper()} (effective capabilities {caps['effective']}); "
                 f"run it as root (become: true)" for name in REQUIRED_CAPABILITIES if not caps[name]]
    problems += [features.refusal([probes[name]]) for name in required if not probes[name].ok]
    return dict(
        kernel=dict(release=os.uname().release, machine=os.uname().machine),
        features={name: dict(probe.as_dict(), required=name in required) for name, probe in probes.items()},
        capabilities=caps,
        bpffs=dict(path=bpffs, exists=os.path.isdir(bpffs), mounted=bpffs_mounted(bpffs)),
        python=python,
        requirements=_requirements.inspect(),
        problems=problems,
    )
