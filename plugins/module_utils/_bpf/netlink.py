"""The XDP hook of one network interface, over rtnetlink (pyroute2 >= 0.9.1).

In: an interface (name or ifindex), optionally a network namespace (name or path), program fds.
Out: ``XdpState`` (which program id is attached in which mode) and the state after each change;
``list_interfaces`` names every interface of a namespace.
``XdpHook`` attaches (only onto an empty hook), replaces atomically (REPLACE + EXPECTED_FD, in the
mode that is attached now) and detaches (with the attached mode's flag, then re-reads the hook:
a detach with the wrong mode flag is a silent no-op in the kernel, and is reported here as an error).
Errors are ``XdpHookError`` naming the interface and namespace and carrying the kernel's extack text.
``check_interface`` refuses, before anything is sent, an interface name the kernel would not create
(empty, longer than IFNAMSIZ-1 bytes, NUL, control characters, whitespace, ``/`` or ``:``, ``.`` or ``..``):
netlink's IFLA_IFNAME would otherwise silently stop at a NUL ("veth0\0x" would act on veth0).

The netlink socket is created inside the namespace but requests are sent from this process, so the
program fds we pass are looked up in our own fd table (pyroute2 < 0.9.1 proxied requests through a
child process, where they would not be). The socket is made while this thread is inside the namespace
(``netns.entered``): pyroute2's own ``netns=`` forks a helper process to make it, about 8 times the time.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from .errors import BpfError, UnsafeNameError
from .netns import entered
from .pinnames import describe_char

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
except Exception as exc:  # reported by the module that needs netlink (also a pyroute2 that fails to
    # import on this Python, as 0.9.1/0.9.2 do on 3.8 with a TypeError)
    IPRoute = None
    NetlinkError = OSError
    PYROUTE2_IMPORT_ERROR: str | None = str(exc)
else:
    PYROUTE2_IMPORT_ERROR = None

IFNAMSIZ = 16
XDP_FLAGS_UPDATE_IF_NOEXIST = 1
XDP_FLAGS_SKB_MODE = 2
XDP_FLAGS_DRV_MODE = 4
XDP_FLAGS_HW_MODE = 8
XDP_FLAGS_REPLACE = 16

# "auto" lets the kernel choose: native when the driver supports XDP, generic otherwise.
MODE_FLAGS = {"auto": 0, "native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE,
              "offload": XDP_FLAGS_HW_MODE}
_ATTACHED = {"xdp": "native", "xdpgeneric": "generic", "xdpoffload": "offload", "xdpmulti": "multi"}


@dataclass(frozen=True)
class XdpState:
    """Programs on one interface's XDP hook. Ids are 0 where nothing is attached.

    ``mode`` is native / generic / offload, "multi" when offload and another mode are both in use,
    or None when the hook is empty; ``prog_id`` is the attached program unless ``mode`` is "multi".
    """

    ifindex: int
    mode: str | None
    prog_id: int
    drv_id: int = 0
    skb_id: int = 0
    hw_id: int = 0

    def prog_in(self, mode: str) -> int:
        """The program attached in ``mode`` (native/generic/offload), 0 if none."""
        return {"native": self.drv_id, "generic": self.skb_id, "offload": self.hw_id}.get(mode, 0)

    @property
    def attached(self) -> dict:
        """{mode: prog_id} for every mode in use."""
        ids = {"native": self.drv_id, "generic": self.skb_id, "offload": self.hw_id}
        return {mode: prog_id for mode, prog_id in ids.items() if prog_id}


def xdp_state(ifindex: int, attrs) -> XdpState:
    """Decode the IFLA_XDP nest (pyroute2's [(name, value)] list) of an RTM_GETLINK answer."""
    xdp = dict(attrs)
    mode = _ATTACHED.get(xdp.get("IFLA_XDP_ATTACHED"))
    return XdpState(ifindex=ifindex, mode=mode, prog_id=xdp.get("IFLA_XDP_PROG_ID") or 0,
                    drv_id=xdp.get("IFLA_XDP_DRV_PROG_ID") or 0, skb_id=xdp.get("IFLA_XDP_SKB_PROG_ID") or 0,
                    hw_id=xdp.get("IFLA_XDP_HW_PROG_ID") or 0)


def check_interface(interface: object) -> object:
    """``interface`` if it is an ifindex (int > 0) or a name the kernel accepts (``dev_valid_name``,
    checked before netlink truncates anything); UnsafeNameError saying why otherwise."""
    if isinstance(interface, int) and not isinstance(interface, bool):
        if interface <= 0:
            raise UnsafeNameError("interface", interface, "an interface index is a positive number")
        return interface
    if not isinstance(interface, str):
        raise UnsafeNameError("interface", interface, "is not a name or an index")
    bad = next((c for c in interface if not c.isprintable() or c.isspace()), None)
    if not interface:
        problem = "is empty"
    elif bad is not None:
        problem = f"contains {describe_char(bad)}, which interface names cannot"
    elif "/" in interface or ":" in interface:
        problem = "contains '/' or ':', which interface names cannot"
    elif interface in (".", ".."):
        problem = "is not an interface name"
    elif len(interface.encode("utf-8", "surrogatepass")) > IFNAMSIZ - 1:
        problem = f"is longer than {IFNAMSIZ - 1} bytes (IFNAMSIZ - 1), the longest interface name"
    else:
        return interface
    raise UnsafeNameError("interface", interface, problem)


class XdpHookError(BpfError):
    """A netlink request on an interface's XDP hook failed, or did not do what it should have."""


def describe(interface: object, netns: str | None) -> str:
    where = f"interface {interface!r}"
    return where + (f" in network namespace {netns!r}" if netns else " in this host's network namespace")


def list_interfaces(netns: str | None = None) -> list:
    """Names of every interface in ``netns`` (None: this process's namespace), in ifindex order."""
    if IPRoute is None:
        raise XdpHookError(errno.ENOSYS, "list_interfaces", describe("*", netns),
                           f"pyroute2 >= 0.9.1 is required: {PYROUTE2_IMPORT_ERROR}")
    with _iproute(netns) as ipr:
        links = sorted(ipr.get_links(), key=lambda msg: msg["index"])
    return [msg.get_attr("IFLA_IFNAME") for msg in links]


def _iproute(netns: str | None, **options):
    """An IPRoute whose socket lives in ``netns`` (checked by ``netns_path``: a typo is an error, never a new
    namespace), made while this thread is in there."""
    with entered(netns):
        return IPRoute(**options)


class XdpHook:
    """One interface's XDP hook, reached from this process over a netlink socket in ``netns``."""

    def __init__(self, interface: str | int, netns: str | None = None):
        check_interface(interface)
        if IPRoute is None:
            raise XdpHookError(errno.ENOSYS, "xdp_query", describe(interface, netns),
                               f"pyroute2 >= 0.9.1 is required: {PYROUTE2_IMPORT_ERROR}")
        self.netns = netns
        self._ipr = _iproute(netns, ext_ack=True, strict_check=True)
        try:
            self.ifindex, self.ifname = self._resolve(interface)
        except BaseException:
            self._ipr.close()
            raise

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> XdpHook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def where(self) -> str:
        return describe(self.ifname, self.netns)

    def _resolve(self, interface: str | int):
        try:
            if isinstance(interface, int):
                msg = self._ipr.link("get", index=interface)[0]
            else:
                msg = self._ipr.link("get", ifname=interface)[0]
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                raise XdpHookError(errno.ENODEV, "xdp_query", describe(interface, self.netns),
                                   "no such interface") from None
            raise self._error("xdp_query", exc, describe(interface, self.netns)) from None
        return msg["index"], msg.get_attr("IFLA_IFNAME")

    def _error(self, op: str, exc: NetlinkError, where: str | None = None) -> XdpHookError:
        text = exc.args[1] if len(exc.args) > 1 else ""
        return XdpHookError(exc.code, op, where or self.where, text)

    def state(self) -> XdpState:
        try:
            msg = self._ipr.link("get", index=self.ifindex)[0]
        except NetlinkError as exc:
            raise self._error("xdp_query", exc) from None
        return xdp_state(self.ifindex, (msg.get_attr("IFLA_XDP") or {}).get("attrs", []))

    def _set(self, op: str, fd: int, flags: int, expected_fd: int | None = None) -> XdpState:
        attrs = [("IFLA_XDP_FD", fd), ("IFLA_XDP_FLAGS", flags)]
        if expected_fd is not None:
            attrs.append(("IFLA_XDP_EXPECTED_FD", expected_fd))
        try:
            self._ipr.link("set", index=self.ifindex, xdp={"attrs": attrs})
        except NetlinkError as exc:
            raise self._error(op, exc) from None
        return self.state()

    def attach(self, prog_fd: int, mode: str) -> XdpState:
        """Attach onto an empty hook in ``mode`` ("auto": the kernel's choice); fails if occupied."""
        return self._set("xdp_attach", prog_fd, _mode_flag(mode) | XDP_FLAGS_UPDATE_IF_NOEXIST)

    def replace(self, prog_fd: int, expected_fd: int, mode: str) -> XdpState:
        """Swap the program attached in ``mode`` for ``prog_fd`` in one step, only if it is still
        the program behind ``expected_fd`` (EEXIST otherwise: someone changed the hook)."""
        _require_concrete("replace", mode)
        return self._set("xdp_replace", prog_fd, _mode_flag(mode) | XDP_FLAGS_REPLACE, expected_fd)

    def detach(self, mode: str, expected_fd: int | None = None) -> XdpState:
        """Remove the program attached in ``mode`` (only if it is ``expected_fd``'s, when given).

        Re-reads the hook afterwards: the kernel acknowledges a detach in a mode that has no
        program as a success without touching the program attached in another mode.
        """
        _require_concrete("detach", mode)
        flags = _mode_flag(mode)
        if expected_fd is not None:
            flags |= XDP_FLAGS_REPLACE
        before = self.state()
        after = self._set("xdp_detach", -1, flags, expected_fd)
        if after.prog_in(mode):
            raise XdpHookError(0, "xdp_detach", self.where,
                               f"program {after.prog_in(mode)} is still attached in {mode} mode after detach")
        if not before.prog_in(mode) and after.attached:
            found = ", ".join(f"program {i} in {m} mode" for m, i in after.attached.items())
            raise XdpHookError(0, "xdp_detach", self.where,
                               f"nothing was attached in {mode} mode, so the detach did nothing; {found} "
                               f"is still attached (detach it in its own mode)")
        return after


def _mode_flag(mode: str) -> int:
    try:
        return MODE_FLAGS[mode]
    except KeyError:
        raise ValueError(f"XDP mode {mode!r}: expected one of {', '.join(MODE_FLAGS)}") from None


def _require_concrete(what: str, mode: str) -> None:
    if _mode_flag(mode) == 0:
        raise ValueError(f"XDP {what} needs the mode the program is attached in, not 'auto'")
