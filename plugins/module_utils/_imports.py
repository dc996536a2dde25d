# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Third-party libraries the loader needs on the managed host; PRIVATE to whistler.xdp.

In: nothing; the imports are tried once when a module starts. Out: ``check_requirements``,
which fails the module with ``missing_required_lib`` (and the original traceback) when a
library is missing or too old, or with the loader's own import error. Modules import the
loader inside ``try/except ImportError`` and pass the kept traceback here, so the module can
still be imported (documentation, argument spec) on a host without the libraries.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.compat.version import LooseVersion

PYROUTE2_MIN_VERSION = "0.9.1"

_MISSING = []  # (requirement, reason or traceback) for each library that cannot be used

try:
    import pyroute2
except ImportError:
    _MISSING.append(("pyroute2 >= " + PYROUTE2_MIN_VERSION, traceback.format_exc()))
else:
    _version = getattr(pyroute2, "__version__", "0")
    if LooseVersion(_version) < LooseVersion(PYROUTE2_MIN_VERSION):
        _MISSING.append(("pyroute2 >= " + PYROUTE2_MIN_VERSION, f"pyroute2 {_version} is installed"))

try:
    import elftools  # noqa: F401  # pylint: disable=unused-import
except ImportError:
    _MISSING.append(("pyelftools", traceback.format_exc()))

# Needed only by the modules that validate map entries (xdp_map): checked when they ask for it.
_OPTIONAL = {}
try:
    import jsonschema  # noqa: F401  # pylint: disable=unused-import
except ImportError:
    _OPTIONAL["jsonschema"] = traceback.format_exc()


def check_requirements(module, loader_import_error=None, also=()):
    """Fail ``module`` if a required library (or one named in ``also``, e.g. ``"jsonschema"``) is
    missing, or if the loader failed to import."""
    missing = _MISSING + [(name, _OPTIONAL[name]) for name in also if name in _OPTIONAL]
    if missing:
        requirement, reason = missing[0]
        module.fail_json(msg=missing_required_lib(requirement), exception=reason)
    if loader_import_error is not None:
        module.fail_json(msg="cannot import the whistler.xdp loader", exception=loader_import_error)
