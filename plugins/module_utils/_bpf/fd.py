"""Ownership of one kernel file descriptor: an int fd in, an object that closes it exactly once out.

Program, Map and Link objects derive from ``FdOwner`` so every fd has one owner that closes it (also as
a context manager), and a use after close fails with a clear error instead of hitting a reused fd number.
"""

from __future__ import annotations

import os


class FdOwner:
    """Owns ``fd`` (an int >= 0); ``close()`` is idempotent."""

    def __init__(self, fd: int, what: str):
        self._fd = fd
        self._what = what

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError(f"{self._what}: file descriptor already closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        # Last resort for fds lost on an error path; explicit close() is the rule.
        try:
            self.close()
        except Exception:
            pass
