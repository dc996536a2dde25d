"""Network namespaces by name or path: find them, identify them, run code inside one.

In: a namespace given as a name (what ``ip netns add NAME`` creates under /run/netns), as a
path to a namespace file (``/run/netns/NAME``, ``/proc/PID/ns/net``), or None for the caller's
own namespace. Both are untrusted: a name must be one plain path component, and whatever the file is
must prove to be a network namespace (a regular file on nsfs, and the NS_GET_NSTYPE ioctl on the
opened fd says CLONE_NEWNET) before anything uses it; the error says which check failed.
Out: ``netns_path`` (the checked path, or None), ``netns_inode`` (the namespace's identity while
it lives), ``netns_named`` (an inode back to a name) and ``entered``, a context manager that moves the current thread into the namespace and
back. ``bpf(BPF_LINK_CREATE)`` needs that: it resolves its ifindex in the calling task's namespace.
Netlink does not: pyroute2 opens its socket inside the namespace and we keep sending from here,
so program fds stay valid. Nothing here runs ``ip netns exec``, which remounts /sys and hides bpffs.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
from contextlib import contextmanager

from .pinnames import NAME_MAX, describe_char

NETNS_RUN_DIR = "/run/netns"
OWN_NETNS = "/proc/thread-self/ns/net"
CLONE_NEWNET = 0x40000000
NSFS_MAGIC = 0x6E736673
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
NAMESPACE_TYPES = {0x00020000: "mount", 0x02000000: "cgroup", 0x04000000: "UTS", 0x08000000: "IPC",
                   0x10000000: "user", 0x20000000: "PID", 0x00000080: "time", CLONE_NEWNET: "network"}
FILESYSTEMS = {0x9FA0: "procfs", 0x62656572: "sysfs", 0x01021994: "tmpfs", 0xEF53: "ext4", 0x9123683E: "btrfs",
               0x58465342: "xfs", 0x794C7630: "overlayfs", 0xCAFE4A11: "bpffs", 0x1CD1: "devpts"}

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(OSError):
    """A namespace that does not exist, is not a network namespace, or cannot be entered."""


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 120)]


def _fs_magic(call, target) -> int:
    buf = _StatFs()
    if call(target, ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return buf.f_type & 0xFFFFFFFF


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a name under /run/netns (None if it can)."""
    bad = next((c for c in name if not c.isprintable()), None)
    if bad is not None:
        return f"contains {describe_char(bad)}"
    if name in (".", ".."):
        return "is not a namespace name"
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX:
        return f"is longer than {NAME_MAX} bytes"
    return None


def netns_path(netns: str | None) -> str | None:
    """The namespace file for ``netns``; None means our own namespace.

    ``netns`` is a name (no ``/``: the file /run/netns/NAME) or a path (with ``/``). Raises NetnsError
    saying which it was taken for and why it is refused: a bad name, nothing there, or a file that is
    not a network namespace (not on nsfs, another namespace type). Nothing downstream (pyroute2 creates
    missing namespaces by default) ever acts on a typo or on an arbitrary file.
    """
    if not netns:
        return None
    if not isinstance(netns, str):
        raise NetnsError(errno.EINVAL, f"network namespace {netns!r}: expected a name or a path")
    if "/" in netns:
        what, path = f"network namespace path {netns!r}", netns
        bad = next((c for c in netns if not c.isprintable()), None)
        if bad is not None:
            raise NetnsError(errno.EINVAL, f"{what}: contains {describe_char(bad)}")
    else:
        what, path = f"network namespace {netns!r}", os.path.join(NETNS_RUN_DIR, netns)
        problem = _name_problem(netns)
        if problem:
            raise NetnsError(errno.EINVAL, f"{what}: the name {problem}")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENOENT and path != netns:
            raise NetnsError(errno.ENOENT, f"{what} does not exist (there is no {path}; ip netns list shows "
                                           "the names)") from None
        raise NetnsError(exc.errno, f"{what}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise NetnsError(errno.EINVAL, f"{what}: {path} is {kind}, not a namespace file")
    _check_netns_file(what, path)
    return path


def _check_netns_file(what: str, path: str) -> None:
    """Open ``path`` (never blocking) and prove on the fd that it is a network namespace."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise NetnsError(exc.errno, f"{what}: cannot open {path}: {exc.strerror}") from None
    try:
        magic = _fs_magic(_libc.fstatfs, fd)
        if magic != NSFS_MAGIC or not stat.S_ISREG(os.fstat(fd).st_mode):
            fs = FILESYSTEMS.get(magic, f"a filesystem with magic {magic:#x}")
            raise NetnsError(errno.EINVAL, f"{what}: {path} is a file on {fs}, not a namespace file (nsfs): "
                                           "give a name from /run/netns or a path like /run/netns/NAME or "
                                           "/proc/PID/ns/net")
        ns_type = fcntl.ioctl(fd, NS_GET_NSTYPE)
        if ns_type != CLONE_NEWNET:
            kind = NAMESPACE_TYPES.get(ns_type, f"type {ns_type:#x}")
            raise NetnsError(errno.EINVAL, f"{what}: {path} is a {kind} namespace, not a network namespace")
    except OSError as exc:
        if isinstance(exc, NetnsError):
            raise
        raise NetnsError(exc.errno, f"{what}: {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


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
