"""Errors raised by the loader: a failed bpf(2) call in, a readable exception out.

``BpfError`` is an ``OSError`` (``.errno`` kept) that also names the operation (``.op``) and the
object it acted on (``.obj``: a path, a map or program name, an id), and adds a hint for the kernel's
well-known bare errnos. ``VerifierError`` also carries the kernel's log (verifier or BTF checker).
``ObjectFileError`` reports a malformed or unsupported BPF ELF object, ``UnsafeNameError`` a name (from an
object, an option or a directory) that cannot be used as given.
"""

from __future__ import annotations

import errno as _errno
import os
import re

# (operation, errno) -> why the kernel most likely said so; the kernel gives no text for these.
_HINTS = {
    ("map_create", _errno.EINVAL): "map names allow only [A-Za-z0-9_.] (at most 15 chars); BTF key/value "
                                   "types must match key_size/value_size and be passed together",
    ("map_update_elem", _errno.EINVAL): "for a prog-array: the program must match the array's owner (same prog "
                                        "type, expected_attach_type, frags flag) and only BPF_ANY is allowed",
    ("map_update_elem", _errno.E2BIG): "key is out of range (>= max_entries) or the map is full",
    ("map_update_elem", _errno.EBADF): "the value must be an open program fd",
    ("map_lookup_elem", _errno.E2BIG): "key is out of range (>= max_entries)",
    ("prog_load", _errno.EINVAL): "if the verifier log shows success, the program does not match the owner "
                                  "of a prog-array it uses (prog type, expected_attach_type, frags flag)",
    ("prog_load", _errno.EPERM): "loading needs CAP_BPF and CAP_NET_ADMIN (run as root)",
    ("prog_load", _errno.E2BIG): "program too large",
    ("obj_pin", _errno.EEXIST): "a pin already exists at this path; unpin it or replace it atomically",
    ("obj_pin", _errno.EPERM): "pins must be on a bpffs mount and their names must not contain '.'",
    ("obj_pin", _errno.ENOENT): "the pin's parent directory does not exist",
    ("obj_get", _errno.ENOENT): "nothing is pinned at this path",
    ("obj_get", _errno.EACCES): "the path is not a pin on a bpffs mount",
    ("prog_test_run", _errno.EINVAL): "test input must hold at least an Ethernet header (14 bytes)",
    ("prog_test_run", _errno.ENOSPC): "the output buffer is smaller than the packet the program produced",
    ("link_create", _errno.EBUSY): "a program is already attached to this hook",
    ("link_create", _errno.EEXIST): "a program is attached in another XDP mode",
    ("link_create", _errno.EINVAL): "XDP links take exactly one mode flag (SKB, DRV or HW) or none",
    ("link_update", _errno.EPERM): "the link's current program is not the expected old program",
    ("link_update", _errno.ENOLINK): "the link's network device is gone",
    ("btf_load", _errno.EINVAL): "malformed BTF (see the log)",
}
_HINTS.update({(op, _errno.ENOENT): "no object with this id" for op in
               ("prog_get_fd_by_id", "map_get_fd_by_id", "link_get_fd_by_id", "btf_get_fd_by_id")})
_HINTS.update({(op, _errno.EPERM): "needs CAP_SYS_ADMIN (run as root)" for op in
               ("prog_get_fd_by_id", "map_get_fd_by_id", "link_get_fd_by_id", "btf_get_fd_by_id")})


def _errno_name(err) -> str:
    """``'ENOENT'`` for 2; ``''`` for 0, which marks a failure the loader found, not the kernel."""
    if not err:
        return ""
    return _errno.errorcode.get(err, str(err))


class BpfError(OSError):
    """A bpf(2) call or loader step failed: ``op`` on ``obj`` with ``errno``; ``hint`` says why."""

    def __init__(self, err: int, op: str, obj: object = "", detail: str = ""):
        super().__init__(err, os.strerror(err) if err else detail)
        self.op = op
        self.obj = str(obj) if obj is not None else ""
        self.detail = detail or _HINTS.get((op, err), "")

    @property
    def hint(self) -> str:
        return self.detail

    def __str__(self) -> str:
        where = f"{self.op} {self.obj}".strip()
        code = _errno_name(self.errno)
        text = f"{where}: {self.strerror}" + (f" ({code})" if code else "")
        return text + (f": {self.detail}" if self.detail and self.detail != self.strerror else "")


# A verifier log line showing an instruction: "12: (61) r1 = *(u32 *)(r2 +0)".
_INSN_LINE = re.compile(r"^(\d+): \([0-9a-f]{2}\)")


class VerifierError(BpfError):
    """The kernel rejected a program or BTF; ``log`` is its full log, ``str()`` shows the last lines.

    ``source`` ("file:line:col: reason" and the source line, set by the loader from the program's
    line_info, see ``failing_insn``) comes first in ``str()`` when known."""

    TAIL_LINES = 3

    def __init__(self, err: int, op: str, obj: object, log: str, detail: str = ""):
        super().__init__(err, op, obj, detail)
        self.log = log
        self.source = ""

    def failing_insn(self):
        """``(index, reason)`` of the instruction the verifier stopped at: the last instruction it printed
        and the first message after it; None when the log shows no instruction (e.g. a BTF rejection)."""
        lines = self.log.splitlines()
        last = max((i for i, line in enumerate(lines) if _INSN_LINE.match(line)), default=None)
        if last is None:
            return None
        reason = next((line.strip() for line in lines[last + 1:]
                       if line.strip() and not line.startswith((";", "processed ")) and not _INSN_LINE.match(line)),
                      "")
        return int(_INSN_LINE.match(lines[last]).group(1)), reason

    def __str__(self) -> str:
        tail = [line for line in self.log.strip().splitlines() if line.strip()][-self.TAIL_LINES:]
        head = self.source + "\n" if self.source else ""
        return head + super().__str__() + ("\nverifier log (end):\n" + "\n".join(tail) if tail else "")


class OwnerMismatchError(BpfError):
    """A program does not match the owner of a prog-array it uses or is inserted into.

    The kernel says only EINVAL (from PROG_LOAD even with a clean verifier log, kept in ``log``)."""

    def __init__(self, err: int, op: str, obj: object, detail: str, log: str = ""):
        super().__init__(err, op, obj, detail)
        self.log = log


class ObjectFileError(ValueError):
    """A BPF ELF object is malformed or uses something this loader does not support."""

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source


class UnsafeNameError(ValueError):
    """A name from an object, an option or a directory listing that cannot be used as given; ``what`` names
    the field, ``reason`` says why (the name is quoted with control characters escaped)."""

    def __init__(self, what: str, name: object, reason: str):
        super().__init__(f"{what} {name!r}: {reason}")
        self.what, self.name, self.reason = what, name, reason
