"""Network namespaces by name or path: find them, identify them, run code inside one.

In: a namespace given as a name (what ``ip netns add NAME`` creates under /run/netns), as a
path to a namespace file (``/run/netns/NAME``, ``/proc/PID/ns/net``), or None for the caller's
own namespace.
Out: ``netns_path`` (the checked path, or None), ``netns_inode`` (the namespace's identity while
it lives), ``netns_named`` (an inode back to a name) and ``entered``, a context manager that moves the current thread into the namespace and
back. ``bpf(BPF_LINK_CREATE)`` needs that: it resolves its ifindex in the calling task's namespace.
Netlink does not: pyroute2 opens its socket inside the namespace and we keep sending from here,
so program fds stay valid. Nothing here runs ``ip netns exec``, which remounts /sys and hides bpffs.
"""

from __future__ import annotations

import ctypes
import errno
import os
from contextlib import contextmanager

NETNS_RUN_DIR = "/run/netns"
OWN_NETNS = "/proc/thread-self/ns/net"
CLONE_NEWNET = 0x40000000
NSFS_MAGIC = 0x6E736673
PROC_MAGIC = 0x9FA0

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(OSError):
    """A namespace that does not exist, is not a network namespace, or cannot be entered."""


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 120)]


def _fs_magic(path: str) -> int:
    buf = _StatFs()
    if _libc.statfs(path.encode(), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"network namespace {path}: {os.strerror(err)}")
    return buf.f_type & 0xFFFFFFFF


def netns_path(netns: str | None) -> str | None:
    """The namespace file for ``netns`` (a name or a path); None means our own namespace.

    Raises NetnsError naming the namespace when it does not exist or is not a namespace file,
    so that nothing downstream (pyroute2 creates missing namespaces by default) acts on a typo.
    """
    if not netns:
        return None
    path = netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns)
    if not os.path.exists(path):
        raise NetnsError(errno.ENOENT, f"network namespace {netns!r} does not exist ({path} is missing)")
    # /run/netns/X is a bind mount of nsfs; /proc/PID/ns/net is a magic link on procfs.
    if _fs_magic(path) not in (NSFS_MAGIC, PROC_MAGIC):
        raise NetnsError(errno.EINVAL, f"network namespace {netns!r}: {path} is not a namespace file")
    return path


def netns_inode(netns: str | None) -> int:
    """The inode number that identifies the namespace (our own for None) while it exists."""
    return os.stat(netns_path(netns) or OWN_NETNS).st_ino


def netns_named(inode: int) -> str | None:
    """The ``netns`` argument for the namespace whose inode is ``inode``: None for our own, else its
    name under /run/netns. Raises LookupError when it is neither (gone, or never named)."""
    if os.stat(OWN_NETNS).st_ino == inode:
        return None
    names = sorted(os.listdir(NETNS_RUN_DIR)) if os.path.isdir(NETNS_RUN_DIR) else []
    for name in names:
        try:
            if os.stat(os.path.join(NETNS_RUN_DIR, name)).st_ino == inode:
                return name
        except OSError:
            continue  # deleted while we look
    raise LookupError(f"no network namespace with inode {inode} in this one or under {NETNS_RUN_DIR}")


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"cannot enter network namespace {what}: {os.strerror(err)}")


@contextmanager
def entered(netns: str | None):
    """Run the body with the current thread inside ``netns`` (no-op for None), then come back."""
    path = netns_path(netns)
    if path is None:
        yield
        return
    home = os.open(OWN_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target, repr(netns))
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home, "of this process (returning)")
    finally:
        os.close(home)
