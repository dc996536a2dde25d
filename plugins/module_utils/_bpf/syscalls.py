"""Thin bpf(2) wrappers through ctypes: plain ints/bytes in, fds, bytes or small dataclasses out.

One function per command, no policy: each fills a zeroed ``union bpf_attr`` with the fields the oldest
supported kernel knows, calls the syscall and raises ``errors.BpfError`` (errno kept) on failure.
``prog_load``/``btf_load`` never request a log on the first try (a small log buffer turns a valid program
into ENOSPC); after a failure they retry with a log buffer grown to the size the kernel reports it needs
(``log_true_size``) and raise ``VerifierError`` with the whole log.
Layouts: /work/shared/reference/kernel-loader-facts.md §1 (offsets from the uapi headers).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .errors import BpfError, VerifierError

# --- uapi constants ------------------------------------------------------------------------------
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY = 0, 1, 2, 3, 4
PROG_LOAD, OBJ_PIN, OBJ_GET, PROG_TEST_RUN = 5, 6, 7, 10
PROG_GET_NEXT_ID, MAP_GET_NEXT_ID, PROG_GET_FD_BY_ID, MAP_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD = 11, 12, 13, 14, 15
BTF_LOAD, BTF_GET_FD_BY_ID, MAP_FREEZE = 18, 19, 22
LINK_CREATE, LINK_UPDATE, LINK_GET_FD_BY_ID, LINK_GET_NEXT_ID, ENABLE_STATS, LINK_DETACH = 28, 29, 30, 31, 32, 34
STATS_RUN_TIME = 0

PROG_TYPE_SCHED_CLS, PROG_TYPE_XDP = 3, 6
MAP_TYPE_HASH, MAP_TYPE_ARRAY, MAP_TYPE_PROG_ARRAY = 1, 2, 3
MAP_TYPE_PERCPU_HASH, MAP_TYPE_PERCPU_ARRAY, MAP_TYPE_LRU_HASH, MAP_TYPE_LRU_PERCPU_HASH = 5, 6, 9, 10
MAP_TYPE_PERF_EVENT_ARRAY, MAP_TYPE_RINGBUF, MAP_TYPE_USER_RINGBUF = 4, 27, 31
ATTACH_XDP = 37
LINK_TYPE_XDP = 6
F_XDP_HAS_FRAGS = 0x20
ANY, NOEXIST, EXIST = 0, 1, 2
F_REPLACE = 4
PSEUDO_MAP_FD = 1
OBJ_NAME_LEN = 16  # the kernel keeps the first 15 characters of a program or map name (and a NUL)

ATTR_SIZE = 168  # sizeof(union bpf_attr) in the 2026 uapi; the kernel accepts zeroed bytes past its own
PROG_INFO_SIZE, MAP_INFO_SIZE, LINK_INFO_SIZE, BTF_INFO_SIZE = 232, 104, 64, 32
LOG_START, LOG_MAX = 1 << 16, 1 << 28
LOAD_RETRIES = 5

_SYSCALL_NR = {"x86_64": 321, "amd64": 321, "i386": 357, "i686": 357, "aarch64": 280, "arm64": 280,
               "armv7l": 386, "armv6l": 386, "riscv64": 280, "loongarch64": 280, "ppc64le": 361,
               "ppc64": 361, "s390x": 351}

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_ulong]


def _nr() -> int:
    machine = platform.machine().lower()
    if machine not in _SYSCALL_NR:
        raise BpfError(errno.ENOSYS, "bpf", machine, f"unsupported architecture {machine!r}")
    return _SYSCALL_NR[machine]


class _Attr:
    """A zeroed attr (or info) buffer; ``put``/``get`` pack little-endian fields at byte offsets."""

    def __init__(self, size: int = ATTR_SIZE):
        self.raw = bytearray(size)
        self._keep: List[object] = []  # ctypes buffers whose addresses sit in the attr

    def put(self, fmt: str, off: int, *values) -> None:
        struct.pack_into("<" + fmt, self.raw, off, *values)

    def get(self, fmt: str, off: int):
        return struct.unpack_from("<" + fmt, self.raw, off)[0]

    def ptr(self, off: int, buf) -> None:
        """Store the address of ctypes buffer ``buf`` (kept alive with this attr) at ``off``."""
        self._keep.append(buf)
        self.put("Q", off, ctypes.addressof(buf))

    def name(self, off: int, text: str) -> None:
        """A program or map name as libbpf sends it: the first 15 bytes (a longer name is truncated)."""
        self.raw[off:off + OBJ_NAME_LEN] = text.encode()[:OBJ_NAME_LEN - 1].ljust(OBJ_NAME_LEN, b"\0")


def _buffer(data: bytes = b"", size: Optional[int] = None):
    buf = ctypes.create_string_buffer(size if size is not None else max(len(data), 1))
    ctypes.memmove(buf, data, len(data))
    return buf


def _call(cmd: int, attr: _Attr, op: str, obj: object = "", retry_eagain: bool = False) -> int:
    """Run one command; returns the syscall's result or raises BpfError (errno kept)."""
    cbuf = (ctypes.c_char * len(attr.raw)).from_buffer(attr.raw)
    attempts = LOAD_RETRIES if retry_eagain else 1
    while True:
        ret = _syscall(_nr(), cmd, ctypes.addressof(cbuf), len(attr.raw))
        if ret >= 0:
            return ret
        err = ctypes.get_errno()
        attempts -= 1
        if err == errno.EINTR or (err == errno.EAGAIN and attempts > 0):
            continue
        raise BpfError(err, op, obj)


def _try(fn, *args, missing: int = errno.ENOENT):
    """``fn(*args)``, or None when it fails with ``missing`` (an absent key, pin or id)."""
    try:
        return fn(*args)
    except BpfError as e:
        if e.errno == missing:
            return None
        raise


# --- maps ----------------------------------------------------------------------------------------

def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0,
               name: str = "", btf_fd: int = 0, btf_key_type_id: int = 0, btf_value_type_id: int = 0,
               numa_node: int = 0) -> int:
    """Create a map; returns its fd. ``numa_node`` counts only with BPF_F_NUMA_NODE in ``flags``."""
    attr = _Attr()
    attr.put("IIIII", 0, map_type, key_size, value_size, max_entries, flags)
    attr.put("I", 24, numa_node)
    attr.name(28, name)
    if btf_fd:
        attr.put("III", 48, btf_fd, btf_key_type_id, btf_value_type_id)
    return _call(MAP_CREATE, attr, "map_create", name)


def _elem_attr(fd: int, key: Optional[bytes], value_buf=None, flags: int = 0) -> _Attr:
    attr = _Attr()
    attr.put("I", 0, fd)
    if key is not None:
        attr.ptr(8, _buffer(key))
    if value_buf is not None:
        attr.ptr(16, value_buf)
    attr.put("Q", 24, flags)
    return attr


def map_lookup_elem(fd: int, key: bytes, value_size: int) -> Optional[bytes]:
    """The value stored under ``key``, or None when the key is absent (an empty prog-array slot)."""
    value = _buffer(size=value_size)
    if _try(_call, MAP_LOOKUP_ELEM, _elem_attr(fd, key, value), "map_lookup_elem", f"fd {fd}") is None:
        return None
    return value.raw[:value_size]


def map_update_elem(fd: int, key: bytes, value: bytes, flags: int = ANY) -> None:
    _call(MAP_UPDATE_ELEM, _elem_attr(fd, key, _buffer(value), flags), "map_update_elem", f"fd {fd}")


def map_delete_elem(fd: int, key: bytes) -> bool:
    """Delete ``key``; False when it was not there."""
    return _try(_call, MAP_DELETE_ELEM, _elem_attr(fd, key), "map_delete_elem", f"fd {fd}") is not None


def map_get_next_key(fd: int, key: Optional[bytes], key_size: int) -> Optional[bytes]:
    """The key after ``key`` (None = the first key), or None at the end."""
    nxt = _buffer(size=key_size)
    if _try(_call, MAP_GET_NEXT_KEY, _elem_attr(fd, key, nxt), "map_get_next_key", f"fd {fd}") is None:
        return None
    return nxt.raw[:key_size]


def map_freeze(fd: int) -> None:
    attr = _Attr()
    attr.put("I", 0, fd)
    _call(MAP_FREEZE, attr, "map_freeze", f"fd {fd}")


# --- programs and BTF ----------------------------------------------------------------------------

def _load_with_log(cmd: int, make_attr, op: str, obj: str, true_size_off: int, retry_eagain: bool = False) -> int:
    """Run a load command built by ``make_attr(log_buf_or_None)`` without a log; on failure rerun it with
    a log, grown until the kernel stops truncating it (to the size it reports in ``log_true_size`` at
    ``true_size_off`` on 6.4+, else 4x per try), and raise VerifierError with the log."""
    try:
        return _call(cmd, make_attr(None), op, obj, retry_eagain)
    except BpfError as first:
        size = LOG_START
        while True:
            log = _buffer(size=size)
            attr = make_attr(log)
            try:
                return _call(cmd, attr, op, obj, retry_eagain)
            except BpfError as again:
                if again.errno == errno.ENOSPC and size < LOG_MAX:
                    size = min(LOG_MAX, max(attr.get("I", true_size_off), size * 4))
                    continue
                raise VerifierError(first.errno, op, obj, log.value.decode(errors="replace")) from None


def prog_load(prog_type: int, insns: bytes, license: str, name: str = "", expected_attach_type: int = 0,
              prog_flags: int = 0, btf_fd: int = 0, func_info: bytes = b"", func_info_cnt: int = 0,
              line_info: bytes = b"", line_info_cnt: int = 0) -> int:
    """Load a program; returns its fd. A rejection raises VerifierError carrying the verifier log."""
    def make_attr(log) -> _Attr:
        attr = _Attr()
        attr.put("II", 0, prog_type, len(insns) // 8)
        attr.ptr(8, _buffer(insns))
        attr.ptr(16, _buffer(license.encode() + b"\0"))
        if log is not None:
            attr.put("II", 24, 1, len(log))
            attr.ptr(32, log)
        attr.put("I", 44, prog_flags)
        attr.name(48, name)
        attr.put("I", 68, expected_attach_type)
        if btf_fd:
            attr.put("I", 72, btf_fd)
            if func_info_cnt:
                attr.put("I", 76, len(func_info) // func_info_cnt)
                attr.ptr(80, _buffer(func_info))
                attr.put("I", 88, func_info_cnt)
            if line_info_cnt:
                attr.put("I", 92, len(line_info) // line_info_cnt)
                attr.ptr(96, _buffer(line_info))
                attr.put("I", 104, line_info_cnt)
        return attr

    return _load_with_log(PROG_LOAD, make_attr, "prog_load", name, 140, retry_eagain=True)


def btf_load(data: bytes) -> int:
    """Load raw BTF (header included); returns its fd. A rejection raises VerifierError with the log."""
    def make_attr(log) -> _Attr:
        attr = _Attr()
        attr.ptr(0, _buffer(data))
        attr.put("I", 16, len(data))
        if log is not None:
            attr.ptr(8, log)
            attr.put("II", 20, len(log), 1)
        return attr

    return _load_with_log(BTF_LOAD, make_attr, "btf_load", "", 28)


# --- pins ----------------------------------------------------------------------------------------

def obj_pin(fd: int, path: str) -> None:
    attr = _Attr()
    attr.ptr(0, _buffer(os.fsencode(path) + b"\0"))
    attr.put("I", 8, fd)
    _call(OBJ_PIN, attr, "obj_pin", path)


def obj_get(path: str, flags: int = 0) -> int:
    attr = _Attr()
    attr.ptr(0, _buffer(os.fsencode(path) + b"\0"))
    attr.put("I", 12, flags)
    return _call(OBJ_GET, attr, "obj_get", path)


# --- ids -----------------------------------------------------------------------------------------

def _fd_by_id(cmd: int, op: str, obj_id: int) -> int:
    attr = _Attr()
    attr.put("I", 0, obj_id)
    return _call(cmd, attr, op, f"id {obj_id}")


def prog_get_fd_by_id(prog_id: int) -> int:
    return _fd_by_id(PROG_GET_FD_BY_ID, "prog_get_fd_by_id", prog_id)


def map_get_fd_by_id(map_id: int) -> int:
    return _fd_by_id(MAP_GET_FD_BY_ID, "map_get_fd_by_id", map_id)


def link_get_fd_by_id(link_id: int) -> int:
    return _fd_by_id(LINK_GET_FD_BY_ID, "link_get_fd_by_id", link_id)


def btf_get_fd_by_id(btf_id: int) -> int:
    return _fd_by_id(BTF_GET_FD_BY_ID, "btf_get_fd_by_id", btf_id)


def _next_id(cmd: int, op: str, start: int) -> Optional[int]:
    attr = _Attr()
    attr.put("I", 0, start)
    if _try(_call, cmd, attr, op, f"after id {start}") is None:
        return None
    return attr.get("I", 4)


def prog_get_next_id(start: int = 0) -> Optional[int]:
    """The next program id after ``start``, or None at the end."""
    return _next_id(PROG_GET_NEXT_ID, "prog_get_next_id", start)


def map_get_next_id(start: int = 0) -> Optional[int]:
    return _next_id(MAP_GET_NEXT_ID, "map_get_next_id", start)


def link_get_next_id(start: int = 0) -> Optional[int]:
    return _next_id(LINK_GET_NEXT_ID, "link_get_next_id", start)


# --- info ----------------------------------------------------------------------------------------

@dataclass
class ProgInfo:
    type: int
    id: int
    tag: str
    name: str
    map_ids: List[int] = field(default_factory=list)
    xlated_prog_len: int = 0
    jited_prog_len: int = 0
    load_time: int = 0
    created_by_uid: int = 0
    ifindex: int = 0
    gpl_compatible: bool = False
    btf_id: int = 0
    run_time_ns: int = 0
    run_cnt: int = 0
    verified_insns: int = 0


@dataclass
class MapInfo:
    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int


@dataclass
class LinkInfo:
    type: int
    id: int
    prog_id: int
    ifindex: int


def _info(fd: int, info: _Attr, what: str) -> _Attr:
    attr = _Attr()
    attr.put("II", 0, fd, len(info.raw))
    attr.ptr(8, (ctypes.c_char * len(info.raw)).from_buffer(info.raw))
    _call(OBJ_GET_INFO_BY_FD, attr, f"{what}_info", f"fd {fd}")
    return info


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def prog_info(fd: int) -> ProgInfo:
    """Kernel's view of a loaded program (tag as 16 hex digits, map ids in first-use order)."""
    capacity = 16
    while True:
        ids = (ctypes.c_uint32 * capacity)()
        info = _Attr(PROG_INFO_SIZE)
        info.put("I", 52, capacity)
        info.ptr(56, ids)
        _info(fd, info, "prog")
        count = info.get("I", 52)
        if count <= capacity:
            break
        capacity = count
    return ProgInfo(
        type=info.get("I", 0), id=info.get("I", 4), tag=bytes(info.raw[8:16]).hex(),
        name=_cstr(bytes(info.raw[64:80])), map_ids=list(ids[:count]),
        jited_prog_len=info.get("I", 16), xlated_prog_len=info.get("I", 20), load_time=info.get("Q", 40),
        created_by_uid=info.get("I", 48), ifindex=info.get("I", 80),
        gpl_compatible=bool(info.get("I", 84) & 1), btf_id=info.get("I", 128),
        run_time_ns=info.get("Q", 192), run_cnt=info.get("Q", 200), verified_insns=info.get("I", 216))


def prog_func_type_ids(fd: int) -> List[int]:
    """The BTF FUNC type id of each function of a loaded program (its func_info, main function first);
    empty when it was loaded without BTF. With ``btf_id`` this gives the program's full name."""
    info = _info(fd, _Attr(PROG_INFO_SIZE), "prog")
    count, rec_size = info.get("I", 144), info.get("I", 132)
    if not count or rec_size < 8:
        return []
    records = _buffer(size=count * rec_size)
    info = _Attr(PROG_INFO_SIZE)
    info.put("I", 132, rec_size)
    info.ptr(136, records)
    info.put("I", 144, count)
    _info(fd, info, "prog")
    return [struct.unpack_from("<I", records.raw, i * rec_size + 4)[0] for i in range(count)]


def map_info(fd: int) -> MapInfo:
    info = _info(fd, _Attr(MAP_INFO_SIZE), "map")
    return MapInfo(
        type=info.get("I", 0), id=info.get("I", 4), key_size=info.get("I", 8), value_size=info.get("I", 12),
        max_entries=info.get("I", 16), flags=info.get("I", 20), name=_cstr(bytes(info.raw[24:40])),
        btf_id=info.get("I", 64), btf_key_type_id=info.get("I", 68), btf_value_type_id=info.get("I", 72))


# Link types whose per-type info starts with the ifindex (XDP, TCX, NETKIT).
_IFINDEX_LINKS = (LINK_TYPE_XDP, 11, 13)


def link_info(fd: int) -> LinkInfo:
    info = _info(fd, _Attr(LINK_INFO_SIZE), "link")
    link_type = info.get("I", 0)
    return LinkInfo(type=link_type, id=info.get("I", 4), prog_id=info.get("I", 8),
                    ifindex=info.get("I", 16) if link_type in _IFINDEX_LINKS else 0)


def btf_data(fd: int) -> bytes:
    """The raw BTF (header included) of a loaded BTF object, e.g. a map's ``btf_id``."""
    info = _info(fd, _Attr(BTF_INFO_SIZE), "btf")
    size = info.get("I", 8)
    data = _buffer(size=size)
    info = _Attr(BTF_INFO_SIZE)
    info.ptr(0, data)
    info.put("I", 8, size)
    _info(fd, info, "btf")
    return data.raw[:size]


def fdinfo(fd: int) -> Dict[str, str]:
    """``/proc/self/fdinfo/<fd>`` as {key: value text}, e.g. a prog-array's ``owner_prog_type``."""
    result = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, sep, value = line.partition(":")
            if sep:
                result[key.strip()] = value.strip()
    return result


# --- test run and links --------------------------------------------------------------------------

@dataclass
class TestRun:
    __test__ = False  # not a pytest class

    retval: int
    data_out: bytes
    duration_ns: int


XDP_HEADROOM = 256  # room for bpf_xdp_adjust_head growing the packet


def prog_test_run(fd: int, data: bytes, repeat: int = 1, data_out_size: Optional[int] = None) -> TestRun:
    """Run a program on ``data`` ``repeat`` times (BPF_PROG_TEST_RUN); duration is per run."""
    out_size = len(data) + XDP_HEADROOM if data_out_size is None else data_out_size
    out = _buffer(size=max(out_size, 1))
    attr = _Attr()
    attr.put("IIII", 0, fd, 0, len(data), out_size)
    attr.ptr(16, _buffer(data))
    attr.ptr(24, out)
    attr.put("I", 32, repeat)
    _call(PROG_TEST_RUN, attr, "prog_test_run", f"fd {fd}")
    return TestRun(retval=attr.get("I", 4), data_out=out.raw[:attr.get("I", 12)],
                   duration_ns=attr.get("I", 36))


def enable_stats(stats_type: int = STATS_RUN_TIME) -> int:
    """BPF_ENABLE_STATS: the kernel keeps programs' run_cnt/run_time_ns while the returned fd is open
    (whatever the sysctl kernel.bpf_stats_enabled says); close it to stop."""
    attr = _Attr()
    attr.put("I", 0, stats_type)
    return _call(ENABLE_STATS, attr, "enable_stats", f"type {stats_type}")


def link_create(prog_fd: int, target_ifindex: int, attach_type: int, flags: int = 0) -> int:
    """Create a bpf_link (XDP: ifindex resolved in the calling thread's netns); returns its fd."""
    attr = _Attr()
    attr.put("IIII", 0, prog_fd, target_ifindex, attach_type, flags)
    return _call(LINK_CREATE, attr, "link_create", f"ifindex {target_ifindex}")


def link_update(link_fd: int, new_prog_fd: int, flags: int = 0, old_prog_fd: int = 0) -> None:
    """Swap a link's program; with flags=F_REPLACE only if it still runs ``old_prog_fd``."""
    attr = _Attr()
    attr.put("IIII", 0, link_fd, new_prog_fd, flags, old_prog_fd)
    _call(LINK_UPDATE, attr, "link_update", f"fd {link_fd}")


def link_detach(link_fd: int) -> None:
    attr = _Attr()
    attr.put("I", 0, link_fd)
    _call(LINK_DETACH, attr, "link_detach", f"fd {link_fd}")
