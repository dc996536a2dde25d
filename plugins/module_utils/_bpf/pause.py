"""A test hook: stop a run at a named step, so that a test can kill it exactly there.

In: ``point(name)`` calls at the steps worth killing (``xdp_load:stage``, ``xdp_load:rename``), and the
environment variable ``WHISTLER_XDP_PAUSE_AT=<name>@<file>``. Out: nothing, unless the variable names
this point: then the first time the run reaches it, it writes its pid to ``<file>`` and sleeps until it
is killed. Without the variable (every real run) ``point`` returns at once.
"""

from __future__ import annotations

import os
import time

ENV = "WHISTLER_XDP_PAUSE_AT"


def point(name: str) -> None:
    wanted, _sep, marker = os.environ.get(ENV, "").partition("@")
    if not marker or wanted != name:
        return
    os.environ.pop(ENV)  # only the first time: a test kills the run here
    tmp = f"{marker}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, marker)  # the test sees the whole pid, never half of it
    while True:
        time.sleep(3600)
