"""``deadline(seconds)``: a ``with`` block that fails instead of hanging (SIGALRM), for tests whose bug
under test is a call that blocks forever (an object path that is a FIFO, for example)."""

from __future__ import annotations

import signal
from contextlib import contextmanager


@contextmanager
def deadline(seconds: int):
    def expired(*_):
        raise AssertionError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
