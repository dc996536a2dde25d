# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Third-party libraries the loader needs on the managed host; PRIVATE to whistler.xdp.

In: nothing; the requirements (``_requirements``) are tried once when a module starts. Out:
``check_requirements``, which fails the module with ``missing_required_lib`` when a library is missing,
too old or does not import on this Python (with why), when this Python is not supported, or with the
loader's own import error. Modules import the loader inside ``try/except ImportError`` and pass the
kept traceback here, so the module can still be imported (documentation, argument spec) on a host
without the libraries.
"""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ._requirements import OPTIONAL, REQUIREMENTS, missing, python_problems

_PYTHON = python_problems(allow_untested=True)
_MISSING = missing(REQUIREMENTS)  # [(requirement, why)]


def _optional_missing(names) -> list:
    """``[(requirement, why)]`` for the optional libraries named in ``names`` that do not work. Tried only
    when a module asks: importing jsonschema would cost every other module's run about 50 ms."""
    return missing(tuple(r for r in OPTIONAL if r.distribution in names))


def check_requirements(module, loader_import_error=None, also=()):
    """Fail ``module`` if this Python is refused, a required library (or an optional one named in
    ``also``, e.g. ``"jsonschema"``) is missing or unusable, or the loader failed to import."""
    if _PYTHON:
        module.fail_json(msg=_PYTHON[0])
    wanted = _MISSING + (_optional_missing(also) if also else [])
    if wanted:
        requirement, reason = wanted[0]
        module.fail_json(msg=missing_required_lib(requirement) + f" ({reason})", exception=reason)
    if loader_import_error is not None:
        module.fail_json(msg="cannot import the whistler.xdp loader", exception=loader_import_error)
