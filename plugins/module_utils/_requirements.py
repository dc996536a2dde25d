# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the loader needs from the managed host's Python, and whether this Python has it; PRIVATE.

In: the running interpreter (``sys.version_info``) and what is installed in it.
Out: ``python_problems`` (a Python the collection refuses, naming the supported range), and
``inspect`` (each requirement: installed version, whether it imports *on this Python*, the error if
not, and the pip requirement that installs a working one). A library that is installed but fails to
import counts as missing: pyroute2 0.9.1 and 0.9.2 install on Python 3.8 and then fail at import with
"'type' object is not subscriptable", which is why 3.8 is refused (no pyroute2 >= 0.9.1 imports there).

The supported range is what CI runs the lifecycle scenario with (scripts/compat.sh, docs/support.md).
Standard library and ansible.module_utils only: this runs where the requirements are missing.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ansible.module_utils.compat.version import LooseVersion

try:
    from importlib import metadata as _metadata
except ImportError:  # Python < 3.8: refused below anyway
    _metadata = None  # type: ignore[assignment]

PYTHON_MIN = (3, 9)
PYTHON_NEWEST_TESTED = (3, 13)


@dataclass(frozen=True)
class Requirement:
    distribution: str  # the name pip installs
    module: str  # the name Python imports
    minimum: str

    @property
    def pip(self) -> str:
        return f"{self.distribution}>={self.minimum}"


# pyroute2 >= 0.9.1 creates netns sockets in the caller's process (fds we pass stay valid).
REQUIREMENTS = (
    Requirement("pyroute2", "pyroute2", "0.9.1"),
    Requirement("pyelftools", "elftools", "0.31"),
)
# Needed only by the modules that validate map entries against a JSON Schema (they ask by name).
OPTIONAL = (
    Requirement("jsonschema", "jsonschema", "4.0"),
)


def _release(version: Tuple[int, ...]) -> str:
    return ".".join(str(n) for n in version)


def python_problems(version: Tuple[int, ...] = tuple(sys.version_info[:3]), allow_untested: bool = False) -> List[str]:
    """Why the collection refuses this Python ([] when it does not)."""
    running = _release(version[:3])
    if tuple(version[:2]) < PYTHON_MIN:
        return [f"Python {running} is not supported on managed hosts: whistler.xdp needs Python >= "
                f"{_release(PYTHON_MIN)} (pyroute2 >= 0.9.1 does not import on older Pythons); point "
                f"ansible_python_interpreter at a newer Python"]
    if tuple(version[:2]) > PYTHON_NEWEST_TESTED and not allow_untested:
        return [f"Python {running} is newer than the newest Python whistler.xdp is tested with "
                f"({_release(PYTHON_NEWEST_TESTED)}); allow it explicitly to try it anyway"]
    return []


def _version(distribution: str) -> Optional[str]:
    if _metadata is None:
        return None
    try:
        return _metadata.version(distribution)
    except _metadata.PackageNotFoundError:
        return None


def _check(requirement: Requirement) -> Dict[str, object]:
    version = _version(requirement.distribution)
    error = None
    try:
        module = importlib.import_module(requirement.module)
    except Exception as exc:  # any failure at import (a TypeError on an unsupported Python, too)
        error = f"{type(exc).__name__}: {exc}" if version else f"{requirement.distribution} is not installed"
    else:
        version = version or getattr(module, "__version__", None)
        if version and LooseVersion(version) < LooseVersion(requirement.minimum):
            error = f"{requirement.distribution} {version} is older than {requirement.minimum}"
    return dict(required=f">={requirement.minimum}", version=version, works=error is None, error=error)


def inspect() -> Dict[str, object]:
    """``{ready, pip, packages: {distribution: {required, version, works, error, optional}}}`` for this
    Python; ``ready`` and ``pip`` (what to install) cover the requirements every module needs."""
    packages = {r.distribution: dict(_check(r), optional=r in OPTIONAL) for r in REQUIREMENTS + OPTIONAL}
    pip = [r.pip for r in REQUIREMENTS if not packages[r.distribution]["works"]]
    return dict(ready=not pip, pip=pip, packages=packages)


def missing(requirements: Tuple[Requirement, ...] = REQUIREMENTS) -> List[Tuple[str, str]]:
    """``(requirement, why)`` for each of ``requirements`` that does not work on this Python."""
    checked = [(r, _check(r)) for r in requirements]
    return [(f"{r.distribution} >= {r.minimum}", str(c["error"])) for r, c in checked if not c["works"]]
