# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every whistler.xdp module does the same way; PRIVATE to the collection.

In: an AnsibleModule. Out: ``loader_errors(module)``, a context manager that turns the loader's
exceptions (``BpfError`` and the other ``OSError``s, ``ValueError`` for bad input) into
``fail_json`` with the loader's message (which names the object, file or interface and carries
the kernel's extack text; a plain ``OSError`` reads "path: reason", never "[Errno 2] ..."), the verifier log as ``verifier_log`` when the kernel rejected a
program, and the traceback for ``-vvv``; ``plan_and_apply(module, plan, apply, locks)``, which plans,
and outside check mode plans again and applies holding the pin directories' locks, so that
concurrent forks on one host take turns and each plans on the state the previous one left;
``CHECK_OVERLAY_SPEC``, the internal option of the modules that take a check-mode overlay (``_overlay``).
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager

from ._bpf.pins import locked

# The internal option through which the action plugin gives a module, in check mode, what earlier
# check-mode tasks of the run planned for the host (``_overlay``; documented by the ``_check_overlay``
# doc fragment). Here rather than in ``_overlay`` so that the argument spec never depends on the loader.
CHECK_OVERLAY_OPTION = "_check_overlay"
CHECK_OVERLAY_SPEC = {CHECK_OVERLAY_OPTION: dict(type="dict")}


def describe(exc):
    """The message of a loader exception for a user: ``str(exc)``, except that an ``OSError`` that
    has no message of its own reads ``"<file>: <reason>"`` (or just the reason), not ``"[Errno 2] ..."``."""
    if isinstance(exc, OSError) and type(exc).__str__ is OSError.__str__ and exc.strerror:
        return exc.strerror if exc.filename is None else f"{exc.filename}: {exc.strerror}"
    return str(exc)


@contextmanager
def loader_errors(module, **partial_result):
    try:
        yield
    except (OSError, ValueError) as exc:
        extra = dict(partial_result)
        log = getattr(exc, "log", None)
        if log:
            extra["verifier_log"] = log.splitlines()
        module.fail_json(msg=describe(exc), exception=traceback.format_exc(), **extra)


def plan_and_apply(module, plan, apply, locks):
    """``(plan, result)``: ``plan()``, and outside check mode, when it would change something, a fresh
    ``plan()`` made holding ``_bpf.pins.locked(*locks(plan))`` and ``apply(plan)`` under the same lock.

    ``result`` is None when nothing was applied. Planning first (and without the lock in check mode)
    lets bad input fail with the plan's own error before any lock directory is touched.
    """
    planned = plan()
    if module.check_mode or not planned.changed:
        return planned, None
    with locked(*locks(planned)):
        planned = plan()
        return planned, (apply(planned) if planned.changed else None)
