"""Kernel features, probed with bpf(2) the way bpftool/libbpf and cilium/ebpf probe them.

In: a feature name from ``FEATURES``. Out: a ``Probe``: ``ok``, ``missing`` (with the first Linux
release that has the feature) or ``error`` (the probe itself could not tell, e.g. without CAP_BPF),
cached for the life of the process. ``require(names)`` raises ``KernelFeatureMissing`` whose message
reads "needs Linux 5.7 (atomic XDP replace ...)".

Each probe creates the smallest thing that needs the feature (a map type, a two-instruction program,
a helper call, a flag, a BTF kind) and closes it again; nothing is pinned or left behind. No version
string is parsed: the kernel release is only what the message names as the minimum. The two probes
of the XDP hook run on the loopback interface of a throw-away network namespace, made by a
short-lived thread, so no interface of the host is ever touched. They talk rtnetlink through the
standard library's socket module because the probes must run where pyroute2 is missing or does not
import (preflight runs before the loader's requirements are installed).

Test hook: ``WHISTLER_XDP_SIMULATE_MISSING=name[,name...]`` (or ``all``) in the environment makes
those probes report ``missing`` without running, so the refusal path is testable on any kernel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, TypeVar

from . import syscalls as sc
from . import tag
from .errors import BpfError, VerifierError

SIMULATE_ENV = "WHISTLER_XDP_SIMULATE_MISSING"
OK, MISSING, ERROR = "ok", "missing", "error"
ENOTSUPP = 524  # the kernel-internal "not supported" some commands leak to user space
T = TypeVar("T")


@dataclass(frozen=True)
class Feature:
    name: str
    kernel: str  # first Linux release that has it
    description: str
    probe: Callable[[], bool]  # True: present, False: missing; raises when it cannot tell


@dataclass(frozen=True)
class Probe:
    feature: Feature
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def problem(self) -> str:
        """What to tell an operator when the feature is required: "" when it is there."""
        if self.status == MISSING:
            return f"needs Linux {self.feature.kernel} ({self.feature.description})"
        if self.status == ERROR:
            return f"cannot tell whether the kernel has {self.feature.description}: {self.detail}"
        return ""

    def as_dict(self) -> dict:
        return dict(status=self.status, kernel=self.feature.kernel, description=self.feature.description,
                    detail=self.detail)


def refusal(probes: Iterable[Probe]) -> str:
    """One sentence for features a host lacks: "needs Linux 5.7 (...); ...; this kernel is 5.4.0"."""
    return "; ".join([p.problem for p in probes] + [f"this kernel is {os.uname().release}"])


class KernelFeatureMissing(OSError):
    """Required kernel features are missing (or could not be probed); the message says which."""

    def __init__(self, probes: List[Probe]):
        super().__init__(errno.EOPNOTSUPP, refusal(probes))
        self.probes = probes

    def __str__(self) -> str:
        return str(self.strerror)


# --- the smallest programs and BTF the probes need -----------------------------------------------

def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


MOV_R0 = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
SUB_R0 = 0x17  # BPF_ALU64 | BPF_SUB | BPF_K
JNE = 0x55  # BPF_JMP | BPF_JNE | BPF_K
CALL, EXIT = 0x85, 0x95
XDP_PASS = 2
RETURN_PASS = _insn(MOV_R0, imm=XDP_PASS) + _insn(EXIT)
COUNT_DOWN = _insn(MOV_R0, imm=4) + _insn(SUB_R0, imm=1) + _insn(JNE, off=-2) + _insn(EXIT)
BPF_FUNC_LOOP = 181
MAP_TYPE_RINGBUF = 27
LOG_TRUE_SIZE_OFFSET = 140

BTF_MAGIC, BTF_INT, BTF_FUNC, BTF_FUNC_PROTO, BTF_VAR, BTF_DATASEC = 0xEB9F, 1, 12, 13, 14, 15


def _btf_type(kind: int, name_off: int, vlen: int, size_or_type: int, tail: bytes = b"") -> bytes:
    return struct.pack("<III", name_off, kind << 24 | vlen, size_or_type) + tail


def _btf(types: bytes, strings: bytes) -> bytes:
    return struct.pack("<HBBIIIII", BTF_MAGIC, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings


INT32 = _btf_type(BTF_INT, 1, 0, 4, struct.pack("<I", 1 << 24 | 32))  # [1] signed 32-bit "int"


def _load(insns: bytes = RETURN_PASS, **kwargs) -> int:
    return sc.prog_load(sc.PROG_TYPE_XDP, insns, "GPL", name="whistler_probe", **kwargs)


def _closing(fd: int) -> bool:
    os.close(fd)
    return True


def _missing_on(fn: Callable[[], bool], *errnos: int) -> bool:
    """``fn()``; False when it fails with one of ``errnos`` (how an older kernel refuses)."""
    try:
        return fn()
    except BpfError as exc:
        if exc.errno in errnos:
            return False
        raise


# --- probes --------------------------------------------------------------------------------------

def _probe_xdp() -> bool:
    return _missing_on(lambda: _closing(_load()), errno.EINVAL)


def _probe_test_run() -> bool:
    fd = _load()
    try:
        run = sc.prog_test_run(fd, bytes(14))
    except BpfError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
            return False
        raise
    finally:
        os.close(fd)
    return run.retval == XDP_PASS


def _probe_btf_maps() -> bool:
    """BTF with VAR and DATASEC (what BTF-defined maps are described with), and a map typed by it."""
    strings = b"\0int\0x\0.data\0"
    types = (INT32 + _btf_type(BTF_VAR, 5, 0, 1, struct.pack("<I", 0))
             + _btf_type(BTF_DATASEC, 7, 1, 4, struct.pack("<III", 2, 0, 4)))

    def create() -> bool:
        btf_fd = sc.btf_load(_btf(types, strings))
        try:
            return _closing(sc.map_create(sc.MAP_TYPE_ARRAY, 4, 4, 1, name="whistler_probe", btf_fd=btf_fd,
                                          btf_key_type_id=1, btf_value_type_id=1))
        finally:
            os.close(btf_fd)
    return _missing_on(create, errno.EINVAL, errno.E2BIG)


def _probe_func_info() -> bool:
    """A program loaded with BTF function and line info (what ``.BTF.ext`` carries)."""
    strings = b"\0int\0probe\0probe.lisp\0(probe)\0"
    types = INT32 + _btf_type(BTF_FUNC_PROTO, 0, 0, 1) + _btf_type(BTF_FUNC, 5, 0, 2)

    def load() -> bool:
        btf_fd = sc.btf_load(_btf(types, strings))
        try:
            return _closing(_load(btf_fd=btf_fd, func_info=struct.pack("<II", 0, 3), func_info_cnt=1,
                                  line_info=struct.pack("<IIII", 0, 11, 22, 1 << 10 | 1), line_info_cnt=1))
        finally:
            os.close(btf_fd)
    return _missing_on(load, errno.EINVAL, errno.E2BIG)


def _probe_frags() -> bool:
    return _missing_on(lambda: _closing(_load(prog_flags=sc.F_XDP_HAS_FRAGS)), errno.EINVAL)


def _probe_bounded_loops() -> bool:
    return _missing_on(lambda: _closing(_load(COUNT_DOWN)), errno.EINVAL)


def _probe_bpf_loop() -> bool:
    """bpftool's helper probe: a call with nonsense arguments is refused for them, an unknown helper by name."""
    try:
        os.close(_load(_insn(CALL, imm=BPF_FUNC_LOOP) + _insn(EXIT)))
    except VerifierError as exc:
        unknown = ("invalid func ", "unknown func ", "cannot call helper", "cannot use helper")
        return not any(text in exc.log for text in unknown)
    return True


def _probe_ringbuf() -> bool:
    page = os.sysconf("SC_PAGE_SIZE")
    return _missing_on(lambda: _closing(sc.map_create(MAP_TYPE_RINGBUF, 0, 0, page, name="whistler_probe")),
                       errno.EINVAL)


def _probe_enable_stats() -> bool:
    """BPF_ENABLE_STATS: statistics are collected while the returned fd is open, so it is closed at once."""
    return _missing_on(lambda: _closing(sc.enable_stats(sc.STATS_RUN_TIME)), errno.EINVAL)


def _probe_tag_sha256() -> bool:
    """The tag of a loaded program is SHA-256's prefix (6.18+) rather than SHA-1's."""
    fd = _load()
    try:
        kernel_tag = sc.prog_info(fd).tag
    finally:
        os.close(fd)
    if kernel_tag == tag.program_tag(RETURN_PASS, "sha256"):
        return True
    if kernel_tag == tag.program_tag(RETURN_PASS, "sha1"):
        return False
    raise BpfError(errno.EPROTO, "prog_info", "probe program", f"tag {kernel_tag} is neither SHA-256 nor SHA-1")


def _probe_log_true_size() -> bool:
    """The kernel reports the log size a load needed (in ``log_true_size``), on success too."""
    attr = sc._Attr()  # pylint: disable=protected-access
    log = ctypes.create_string_buffer(4096)
    insns = ctypes.create_string_buffer(RETURN_PASS, len(RETURN_PASS))
    license_text = ctypes.create_string_buffer(b"GPL")
    attr.put("II", 0, sc.PROG_TYPE_XDP, len(RETURN_PASS) // 8)
    attr.ptr(8, insns)
    attr.ptr(16, license_text)
    attr.put("II", 24, 1, len(log))
    attr.ptr(32, log)
    os.close(sc._call(sc.PROG_LOAD, attr, "prog_load", "log probe"))  # pylint: disable=protected-access
    return attr.get("I", LOG_TRUE_SIZE_OFFSET) > 0


# --- the XDP hook, on the loopback of a throw-away network namespace -------------------------------

CLONE_NEWNET = 0x40000000
LOOPBACK_IFINDEX = 1  # in every network namespace
RTM_SETLINK, NLMSG_ERROR = 19, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
IFLA_XDP, NLA_F_NESTED = 43, 0x8000
IFLA_XDP_FD, IFLA_XDP_FLAGS, IFLA_XDP_EXPECTED_FD = 1, 3, 8
XDP_FLAGS_SKB_MODE, XDP_FLAGS_REPLACE = 2, 16


def in_private_netns(fn: Callable[[], T]) -> T:
    """``fn()`` run by a new thread that first moved into a network namespace of its own; the namespace
    (and anything ``fn`` attached in it) goes away with the thread. Other threads never change namespace."""
    outcome: Dict[str, object] = {}

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise BpfError(err, "unshare", "a private network namespace for the probe")
            outcome["value"] = fn()
        except Exception as exc:  # handed to the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="whistler-xdp-feature-probe")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("<HH", length, kind) + payload + bytes(-length % 4)


def rtnl_setlink_xdp(ifindex: int, attrs: bytes) -> int:
    """Send one RTM_SETLINK with an IFLA_XDP nest holding ``attrs``; returns the kernel's errno (0: done)."""
    body = struct.pack("<BBHiII", socket.AF_UNSPEC, 0, 0, ifindex, 0, 0) + _nla(IFLA_XDP | NLA_F_NESTED, attrs)
    message = struct.pack("<IHHII", 16 + len(body), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as nl:
        nl.settimeout(5)
        nl.send(message)
        reply = nl.recv(65536)
    kind = struct.unpack_from("<IH", reply)[1]
    if kind != NLMSG_ERROR:
        raise BpfError(errno.EPROTO, "rtnetlink", f"ifindex {ifindex}", f"unexpected reply type {kind}")
    return -struct.unpack_from("<i", reply, 16)[0]


def _probe_xdp_replace() -> bool:
    """Detach-if-still-running-X: on 5.7+ the kernel answers EEXIST (X is not attached), older ones EINVAL
    (unknown XDP_FLAGS_REPLACE). Nothing can be attached or detached by the request."""
    fd = _load()
    try:
        attrs = (_nla(IFLA_XDP_FD, struct.pack("<i", -1))
                 + _nla(IFLA_XDP_FLAGS, struct.pack("<I", XDP_FLAGS_SKB_MODE | XDP_FLAGS_REPLACE))
                 + _nla(IFLA_XDP_EXPECTED_FD, struct.pack("<i", fd)))
        err = in_private_netns(lambda: rtnl_setlink_xdp(LOOPBACK_IFINDEX, attrs))
    finally:
        os.close(fd)
    if err == errno.EEXIST:
        return True
    if err == errno.EINVAL:
        return False
    raise BpfError(err, "rtnetlink", "probe of XDP_FLAGS_REPLACE", "unexpected answer")


def _probe_link_xdp() -> bool:
    fd = _load()
    try:
        return _missing_on(lambda: in_private_netns(
            lambda: _closing(sc.link_create(fd, LOOPBACK_IFINDEX, sc.ATTACH_XDP, XDP_FLAGS_SKB_MODE))),
            errno.EINVAL)
    finally:
        os.close(fd)


FEATURES: Dict[str, Feature] = {f.name: f for f in (
    Feature("xdp", "4.8", "XDP programs", _probe_xdp),
    Feature("prog_test_run", "4.12", "BPF_PROG_TEST_RUN for XDP programs", _probe_test_run),
    Feature("btf_func_info", "5.0", "BTF function and line info for programs", _probe_func_info),
    Feature("btf_maps", "5.2", "BTF-defined maps (BTF VAR/DATASEC, typed keys and values)", _probe_btf_maps),
    Feature("bounded_loops", "5.3", "bounded loops in the verifier", _probe_bounded_loops),
    Feature("xdp_replace", "5.7", "atomic XDP replace over netlink, XDP_FLAGS_REPLACE + IFLA_XDP_EXPECTED_FD",
            _probe_xdp_replace),
    Feature("ringbuf", "5.8", "BPF ring buffer maps", _probe_ringbuf),
    Feature("enable_stats", "5.8", "BPF_ENABLE_STATS (program run counts and times)", _probe_enable_stats),
    Feature("bpf_link_xdp", "5.9", "XDP attachments through bpf_link", _probe_link_xdp),
    Feature("bpf_loop", "5.17", "the bpf_loop helper", _probe_bpf_loop),
    Feature("xdp_frags", "5.18", "multi-buffer XDP programs (BPF_F_XDP_HAS_FRAGS)", _probe_frags),
    Feature("log_true_size", "6.4", "verifier log size reporting (log_true_size)", _probe_log_true_size),
    Feature("tag_sha256", "6.18", "SHA-256 program tags (SHA-1 before)", _probe_tag_sha256),
)}

# What loading, wiring and atomically swapping a dispatcher needs on every host.
ROLLOUT = ("xdp", "btf_func_info", "btf_maps", "xdp_replace")

_CACHE: Dict[str, Probe] = {}


def simulated_missing() -> set:
    """Feature names the test hook says to report missing."""
    names = {n.strip() for n in os.environ.get(SIMULATE_ENV, "").split(",") if n.strip()}
    return set(FEATURES) if "all" in names else names


def probe(name: str) -> Probe:
    """The probe result for feature ``name`` (cached per process)."""
    if name not in FEATURES:
        raise ValueError(f"unknown kernel feature {name!r} (known: {', '.join(FEATURES)})")
    if name in simulated_missing():
        return Probe(FEATURES[name], MISSING, f"simulated by {SIMULATE_ENV}")
    if name not in _CACHE:
        feature = FEATURES[name]
        try:
            status, detail = (OK, "") if feature.probe() else (MISSING, "")
        except (OSError, ValueError) as exc:
            status, detail = ERROR, str(exc)
        _CACHE[name] = Probe(feature, status, detail)
    return _CACHE[name]


def probe_all(names: Optional[Iterable[str]] = None) -> Dict[str, Probe]:
    return {name: probe(name) for name in (FEATURES if names is None else names)}


def require(names: Iterable[str]) -> None:
    """Raise ``KernelFeatureMissing`` naming every feature of ``names`` that is not there."""
    failed = [p for p in probe_all(names).values() if not p.ok]
    if failed:
        raise KernelFeatureMissing(failed)
