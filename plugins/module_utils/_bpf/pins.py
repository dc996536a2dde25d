"""bpffs pin paths: paths and fds in; checks, directories, atomic pin replacement and listings out.

A pin path must be absolute, sit on a bpffs mount (statfs magic, as cilium/ebpf checks) and have no
'.' in any name (bpffs refuses them with EPERM). Every path built from a name (a program or map name
from an object, an entry found in a directory) goes through ``join``, which checks the name
(``pinnames``) and proves the result is an entry directly inside the directory, never a symlink out
of it. A pinned object is replaced atomically by pinning the new one under a temporary name beside it
(``<name>_whistler_tmp_<hex>``) and renaming that over the old pin; ``staged_leftovers`` finds such
names that a killed run left behind, for the next run (holding the lock) to remove. ``locked`` holds
an exclusive ``flock`` on pin directories, so that concurrent Ansible forks on one host take turns.
``remove_empty_dirs`` removes directories a teardown emptied, never a mount point such as /sys/fs/bpf.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import uuid
from contextlib import contextmanager
from typing import Dict, List, Optional

from . import syscalls as sc
from .errors import BpfError
from .fd import FdOwner
from .pinnames import STAGED_NAME, TMP_MARK, check_pin_name, describe_char, pin_name_problem

BPF_FS_MAGIC = 0xCAFE4A11
# Subdirectories this collection creates under a pin path: the maps, and attach's records of attachments.
MAP_DIR = "maps"
RECORD_DIRS = ("attached", "links")


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 120)]


_libc = ctypes.CDLL(None, use_errno=True)


def fs_magic(path: str) -> Optional[int]:
    """The filesystem magic of ``path`` (None if it does not exist)."""
    buf = _StatFs()
    if _libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        return None
    return buf.f_type & 0xFFFFFFFF


def _existing_ancestor(path: str) -> str:
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def check_path(path: str, what: str = "pin path") -> str:
    """``path`` normalised, or BpfError saying why it cannot be a pin (or pin directory) path."""
    bad = next((c for c in path if not c.isprintable()), None)
    if bad is not None:
        raise BpfError(errno.EINVAL, what, repr(path), f"contains {describe_char(bad)}")
    if not os.path.isabs(path):
        raise BpfError(errno.EINVAL, what, path, "must be an absolute path on bpffs (e.g. /sys/fs/bpf/...)")
    path = os.path.normpath(path)
    dotted = [part for part in path.split("/")[1:] if "." in part]
    if dotted:
        raise BpfError(errno.EINVAL, what, path, f"bpffs names may not contain '.': {dotted[0]!r}")
    anchor = _existing_ancestor(path)
    if fs_magic(anchor) != BPF_FS_MAGIC:
        raise BpfError(errno.EINVAL, what, path, f"{anchor} is not on a bpffs mount (mount -t bpf bpf "
                       "/sys/fs/bpf)")
    return path


def check_dir(path: str, what: str = "pin directory") -> str:
    """``path`` normalised, or BpfError saying why it cannot be a pin directory: everything ``check_path``
    checks, and the path (or its deepest existing part) is a directory, not a pinned object."""
    path = check_path(path, what)
    anchor = _existing_ancestor(path)
    if not os.path.isdir(anchor):
        pinned = kind(anchor) or "file"
        where = "there" if anchor == path else f"at {anchor}"
        raise BpfError(errno.ENOTDIR, what, path, f"a {pinned} is pinned {where}, not a directory")
    return path


def join(directory: str, name: str, what: str = "pin name") -> str:
    """``directory/name`` for a ``name`` that is one safe path component (``pinnames.check_pin_name``;
    UnsafeNameError naming ``what`` otherwise), proven to be an entry directly inside ``directory``.

    An entry that is a symlink is refused (BpfError): the kernel follows symlinks when it opens a pin,
    so one would lead out of the directory.
    """
    check_pin_name(name, what)
    base = os.path.normpath(directory)
    path = os.path.join(base, name)
    if os.path.dirname(path) != base or os.path.basename(path) != name:
        raise BpfError(0, what, path, f"does not stay directly inside {base}")
    if os.path.islink(path):
        raise BpfError(0, what, path, f"is a symlink (to {os.readlink(path)!r}), not a pin: refusing to "
                                      f"follow it out of {base}")
    return path


def makedirs(path: str) -> None:
    """Create pin directory ``path`` and its parents on bpffs."""
    path = check_dir(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise BpfError(exc.errno, "pin directory", path, f"cannot create it: {exc.strerror}") from None


def exists(path: str) -> bool:
    return os.path.lexists(path)


def pin(fd: int, path: str) -> None:
    """Pin ``fd`` at ``path``; fails with EEXIST if something is pinned there already."""
    sc.obj_pin(fd, check_path(path))


def replace(fd: int, path: str) -> None:
    """Pin ``fd`` at ``path``, atomically replacing whatever is pinned there (or nothing)."""
    temporary = stage(fd, path)
    commit(temporary, path)


def stage(fd: int, path: str) -> str:
    """Pin ``fd`` under a temporary name beside ``path``; ``commit`` or ``unpin`` it afterwards."""
    path = check_path(path)
    directory, name = os.path.split(path)
    temporary = join(directory, name) + f"{TMP_MARK}{uuid.uuid4().hex[:8]}"
    sc.obj_pin(fd, temporary)
    return temporary


def commit(temporary: str, path: str) -> None:
    """Atomically move a staged pin over ``path``."""
    try:
        os.rename(temporary, path)
    except OSError as exc:
        unpin(temporary)
        raise BpfError(exc.errno, "rename_pin", path, f"could not move {temporary} into place") from None


def unpin(path: str) -> bool:
    """Remove the pin at ``path``; False if there was none."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def unpin_with_dir(path: str) -> bool:
    """``unpin(path)``, then remove its directory if that leaves it empty (a record directory such as
    ``attached/``); False if nothing was pinned there."""
    removed = unpin(path)
    remove_dir_if_empty(os.path.dirname(path))
    return removed


def remove_dir_if_empty(path: str) -> bool:
    """Remove pin directory ``path`` if nothing is left in it and it is not a mount point (the bpffs
    root); True if it was removed."""
    if os.path.ismount(path) or os.path.islink(path):
        return False
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def remove_empty_dirs(directories) -> List[str]:
    """``remove_dir_if_empty`` on each directory, deepest first; returns those removed."""
    return [d for d in sorted(set(directories), key=lambda d: (-d.count("/"), d)) if remove_dir_if_empty(d)]


def emptied_dirs(directories, removed_pins) -> List[str]:
    """Which of ``directories`` ``remove_empty_dirs`` would remove once ``removed_pins`` are gone
    (directories emptied by removing deeper ones count too); reads only."""
    gone = {os.path.normpath(p) for p in removed_pins}
    result = []
    for directory in sorted(set(directories), key=lambda d: (-d.count("/"), d)):
        if not os.path.isdir(directory) or os.path.islink(directory) or os.path.ismount(directory):
            continue
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        if all(os.path.join(directory, name) in gone for name in entries):
            result.append(directory)
            gone.add(os.path.normpath(directory))
    return result


def kind(path: str) -> Optional[str]:
    """What is pinned at ``path``: 'program', 'map', 'link', 'object' (other), or None (nothing)."""
    try:
        fd = sc.obj_get(path)
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    with FdOwner(fd, path):
        fields = sc.fdinfo(fd)
    for key, name in (("prog_type", "program"), ("map_type", "map"), ("link_type", "link")):
        if key in fields:
            return name
    return "object"


def entries(directory: str) -> List[str]:
    """Paths of the entries directly under ``directory`` that can be pins (``join`` accepts their names:
    no symlinks, no names this collection would never create), subdirectories included."""
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory))
            if pin_name_problem(name) is None and not os.path.islink(os.path.join(directory, name))]


def list_pins(directory: str) -> Dict[str, str]:
    """{name: kind} of the pins directly under ``directory`` (subdirectories, staged pins, symlinks and
    names that ``join`` refuses skipped)."""
    result = {}
    for path in entries(directory):
        name = os.path.basename(path)
        if TMP_MARK in name or os.path.isdir(path):
            continue
        pinned = kind(path)
        if pinned is not None:
            result[name] = pinned
    return result


def staged_leftovers(directory: str) -> List[str]:
    """Staged pins (``<name>_whistler_tmp_<8 hex>``) directly under ``directory``: left by a run killed
    between staging and renaming, once no run holds the directory's lock. Reads only."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if STAGED_NAME.fullmatch(name) and not os.path.islink(path) and os.path.isfile(path) \
                and kind(path) is not None:
            found.append(path)
    return found


# Pin directory -> the fd holding its flock in this process: taking a lock already held is a no-op,
# because a second flock on another fd of the same directory would wait for ourselves.
_held: Dict[str, int] = {}


@contextmanager
def locked(*directories: Optional[str]):
    """Hold an exclusive flock on each pin directory for the ``with`` block.

    Locks are taken in sorted order, so two holders of overlapping sets never deadlock. Missing
    directories (and missing parents) are created, and removed again at the end if still empty
    (while still locked), so a failed task leaves no trace.
    """
    paths = sorted({check_dir(d) for d in directories if d} - set(_held))
    created: List[str] = []
    try:
        for path in paths:
            _held[path] = _flock(path, created)
        yield
    finally:
        for path in sorted(set(created), reverse=True):  # children before their parents
            remove_dir_if_empty(path)
        for path in reversed(paths):
            if path in _held:
                os.close(_held.pop(path))  # closing the fd releases the lock


def _missing(path: str) -> List[str]:
    """``path`` and its ancestors that do not exist yet."""
    missing = []
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def _flock(path: str, created: List[str]) -> int:
    """An fd of directory ``path`` holding an exclusive flock on it (waits for other holders).

    Creates ``path`` and its missing ancestors first (again, if the holder we waited for removed
    them) and appends what it created to ``created``.
    """
    while True:
        created += _missing(path)
        makedirs(path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked_dir = os.fstat(fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (locked_dir.st_dev, locked_dir.st_ino):
            return fd
        # The holder we waited for removed the directory: lock the one now at ``path`` instead.
        os.close(fd)
