"""The IFLA_XDP nest as pyroute2 decodes it (lists recorded from a 6.18 veth) becomes an XdpState
that says which program runs in which mode; bad mode names are rejected before any request."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netlink import XdpHook, XdpState, xdp_state


def test_empty_hook():
    state = xdp_state(18, [("IFLA_XDP_ATTACHED", None)])
    assert state == XdpState(18, None, 0) and state.attached == {}


@pytest.mark.parametrize("attached, id_attr, mode", [
    ("xdp", "IFLA_XDP_DRV_PROG_ID", "native"),
    ("xdpgeneric", "IFLA_XDP_SKB_PROG_ID", "generic"),
    ("xdpoffload", "IFLA_XDP_HW_PROG_ID", "offload"),
])
def test_one_mode(attached, id_attr, mode):
    state = xdp_state(18, [(id_attr, 110), ("IFLA_XDP_ATTACHED", attached), ("IFLA_XDP_PROG_ID", 110)])
    assert (state.mode, state.prog_id, state.attached) == (mode, 110, {mode: 110})
    assert state.prog_in(mode) == 110
    assert [state.prog_in(m) for m in ("native", "generic", "offload") if m != mode] == [0, 0]


def test_several_modes_have_no_single_prog_id():
    state = xdp_state(3, [("IFLA_XDP_DRV_PROG_ID", 7), ("IFLA_XDP_HW_PROG_ID", 9),
                          ("IFLA_XDP_ATTACHED", "xdpmulti")])
    assert (state.mode, state.prog_id, state.attached) == ("multi", 0, {"native": 7, "offload": 9})


@pytest.mark.parametrize("call", [
    lambda hook: hook.attach(3, "fast"),
    lambda hook: hook.replace(3, 4, "auto"),
    lambda hook: hook.detach("auto"),
])
def test_mode_names_are_checked_before_any_request(call):
    hook = XdpHook.__new__(XdpHook)  # no socket: a request would fail with AttributeError
    with pytest.raises(ValueError, match="mode"):
        call(hook)
