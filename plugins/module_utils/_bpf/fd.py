"""Ownership of one kernel file descriptor: an int fd in, an object that closes it exactly once out.

Program, Map and Link objects derive from ``FdOwner`` so every fd has one owner that closes it (also as
a context manager), and a use after close fails with a clear error instead of hitting a reused fd number.
``each_loaded`` walks every loaded object of one kind (programs, links) by id and yields its info.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Iterator, TypeVar

from .errors import BpfError

Info = TypeVar("Info")


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


def each_loaded(kind: str, next_id: Callable[[int], int | None], fd_by_id: Callable[[int], int],
                read_info: Callable[[int], Info]) -> Iterator[Info]:
    """The info of every loaded ``kind`` (e.g. "program") in id order, read through a short-lived fd;
    one unloaded while we walk (ENOENT), or one still being set up by another process (a bpf_link has no
    id yet: EAGAIN), is simply skipped. Reads only."""
    object_id = next_id(0)
    while object_id is not None:
        try:
            with FdOwner(fd_by_id(object_id), f"{kind} {object_id}") as owner:
                info = read_info(owner.fd)
        except BpfError as exc:
            if exc.errno not in (errno.ENOENT, errno.EAGAIN):
                raise
        else:
            yield info
        object_id = next_id(object_id)
