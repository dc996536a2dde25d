"""XDP attach plans applied to a veth inside a namespace the test creates: attach, noop, atomic
replace, detach, in native and generic mode; foreign programs refused unless forced; wrong-mode
detach, mode changes and the kernel's extack text reported; the same through a pinned bpf_link."""

from __future__ import annotations

import os

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import (
    AttachRefused,
    apply_attach,
    plan_attach,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.link import create_xdp_link, find_xdp_link
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netlink import XdpHook, XdpHookError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netns import NetnsError, netns_inode
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pinned import pinned

from tests.kernel.loader.xdp_setup import load_pinned


@pytest.fixture
def pins(pin_dir, build):
    """Our programs under <pin_dir>/ours, an identical foreign copy under <pin_dir>/foreign."""
    obj = build("counter_dispatch.c")
    return load_pinned(obj, pin_dir / "ours"), load_pinned(obj, pin_dir / "foreign")


class ProgFd:
    """An fd of the program pinned at ``path`` for the ``with`` block."""

    def __init__(self, path):
        self.fd = syscalls.obj_get(str(path))

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc):
        os.close(self.fd)


def prog_id(path) -> int:
    return pinned(str(path)).id


def hook_state(pair):
    with XdpHook(pair.if_a, pair.a) as hook:
        return hook.state()


def record(ours, pair):
    return ours / "attached" / f"if{pair.ifindex(pair.a, pair.if_a)}_ns{netns_inode(pair.a)}"


def plan(pair, program_pin, **kw):
    return plan_attach(pair.if_a, pair.a, str(program_pin) if program_pin else None, **kw)


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_attach_noop_replace_detach(netns_pair, pins, mode):
    ours, _foreign = pins
    v1, v2 = prog_id(ours / "dispatch_v1"), prog_id(ours / "dispatch_v2")

    first = plan(netns_pair, ours / "dispatch_v1", mode=mode)
    assert (first.action, first.prog_id) == ("attach", v1)
    assert hook_state(netns_pair).mode is None, "planning must not change the hook"
    result = apply_attach(first)
    assert (result.prog_id, result.mode, result.previous_prog_id, result.changed) == (v1, mode, 0, True)
    assert hook_state(netns_pair).prog_in(mode) == v1
    assert prog_id(record(ours, netns_pair)) == v1

    again = plan(netns_pair, ours / "dispatch_v1", mode=mode)
    assert again.action == "noop" and not apply_attach(again).changed

    swap = plan(netns_pair, ours / "dispatch_v2")  # auto: stays in the attached mode
    assert (swap.action, swap.mode, swap.previous_prog_id) == ("replace", mode, v1)
    result = apply_attach(swap)
    assert (result.prog_id, result.mode, result.previous_prog_id) == (v2, mode, v1)
    assert hook_state(netns_pair).prog_in(mode) == v2
    assert prog_id(record(ours, netns_pair)) == v2

    gone = plan(netns_pair, ours / "dispatch_v2", state="absent")
    assert (gone.action, gone.mode) == ("detach", mode)
    apply_attach(gone)
    assert hook_state(netns_pair).attached == {}
    assert not record(ours, netns_pair).exists()


def test_wrong_mode_detach_is_detected_and_reported(netns_pair, pins):
    ours, _foreign = pins
    apply_attach(plan(netns_pair, ours / "dispatch_v1", mode="generic"))
    v1 = prog_id(ours / "dispatch_v1")
    with XdpHook(netns_pair.if_a, netns_pair.a) as hook:
        with pytest.raises(XdpHookError) as err:
            hook.detach("native")
        assert hook.state().prog_in("generic") == v1, "the program must still be attached"
    text = str(err.value)
    assert "nothing was attached in native mode" in text and f"program {v1} in generic mode" in text
    assert netns_pair.if_a in text and netns_pair.a in text


def test_kernel_extack_text_is_surfaced(netns_pair, pins):
    ours, _foreign = pins
    apply_attach(plan(netns_pair, ours / "dispatch_v1", mode="generic"))
    with XdpHook(netns_pair.if_a, netns_pair.a) as hook, ProgFd(ours / "dispatch_v2") as v2:
        with pytest.raises(XdpHookError, match="Native and generic XDP can't be active at the same time"):
            hook.attach(v2, "native")
        with pytest.raises(XdpHookError, match="XDP program already attached") as err:
            hook.attach(v2, "generic")
        assert err.value.errno == 16
        with pytest.raises(XdpHookError, match="Active program does not match expected"):
            hook.replace(v2, v2, "generic")
    with pytest.raises(AttachRefused, match="generic mode, not native"):
        plan(netns_pair, ours / "dispatch_v2", mode="native")


def test_foreign_program_is_refused_unless_forced(netns_pair, pins):
    ours, foreign = pins
    netns_pair.run(netns_pair.a, "ip", "link", "set", "dev", netns_pair.if_a, "xdpgeneric",
                   "pinned", str(foreign / "dispatch_v1"))
    stranger = prog_id(foreign / "dispatch_v1")
    assert hook_state(netns_pair).skb_id == stranger

    with pytest.raises(AttachRefused, match=f"program {stranger} .*not attached by this collection"):
        plan(netns_pair, ours / "dispatch_v1")
    with pytest.raises(AttachRefused):
        plan(netns_pair, ours / "dispatch_v1", state="absent")
    assert hook_state(netns_pair).skb_id == stranger

    forced = plan(netns_pair, ours / "dispatch_v1", force=True)
    result = apply_attach(forced)
    assert (result.previous_prog_id, result.prog_id) == (stranger, prog_id(ours / "dispatch_v1"))
    # Now it is ours: no force needed to take it off.
    apply_attach(plan(netns_pair, ours / "dispatch_v1", state="absent"))
    assert hook_state(netns_pair).attached == {}


def test_namespace_by_name_or_path_and_missing_ones_named(netns_pair, pins):
    ours, _foreign = pins
    by_path = plan_attach(netns_pair.if_a, netns_pair.path_a, str(ours / "dispatch_v1"), mode="generic")
    assert apply_attach(by_path).prog_id == prog_id(ours / "dispatch_v1")
    assert plan(netns_pair, ours / "dispatch_v1").action == "noop", "a path and a name: the same hook"

    with pytest.raises(XdpHookError, match=f"interface 'nope0' in network namespace '{netns_pair.a}'"):
        plan_attach("nope0", netns_pair.a, str(ours / "dispatch_v1"))
    with pytest.raises(NetnsError, match="'wxt-no-such-ns' does not exist"):
        plan_attach(netns_pair.if_a, "wxt-no-such-ns", str(ours / "dispatch_v1"))
    assert not os.path.exists("/run/netns/wxt-no-such-ns"), "a missing namespace must not be created"


def test_attach_through_a_pinned_bpf_link(netns_pair, pins):
    ours, _foreign = pins
    v1, v2 = prog_id(ours / "dispatch_v1"), prog_id(ours / "dispatch_v2")
    ifindex = netns_pair.ifindex(netns_pair.a, netns_pair.if_a)

    first = plan(netns_pair, ours / "dispatch_v1", mode="native", via_link=True)
    result = apply_attach(first)
    link_pin = ours / "links" / f"if{ifindex}_ns{netns_inode(netns_pair.a)}"
    assert pinned(str(link_pin)).kind == "link" and pinned(str(link_pin)).prog_id == v1
    assert hook_state(netns_pair).drv_id == v1 and result.link_id == pinned(str(link_pin)).id
    assert find_xdp_link(ifindex, v1).id == result.link_id

    # Other tools cannot take the hook away from the link.
    r = netns_pair.run(netns_pair.a, "ip", "link", "set", "dev", netns_pair.if_a, "xdp", "off", check=False)
    assert r.returncode != 0 and hook_state(netns_pair).drv_id == v1

    swap = plan(netns_pair, ours / "dispatch_v2")
    assert (swap.action, swap.link_id) == ("replace", result.link_id)
    assert apply_attach(swap).prog_id == v2 and hook_state(netns_pair).drv_id == v2

    apply_attach(plan(netns_pair, ours / "dispatch_v2", state="absent"))
    assert hook_state(netns_pair).attached == {} and not link_pin.exists()


def test_hook_owned_by_a_foreign_link_is_reported(netns_pair, pins):
    ours, foreign = pins
    ifindex = netns_pair.ifindex(netns_pair.a, netns_pair.if_a)
    stranger = prog_id(foreign / "dispatch_v1")
    with ProgFd(foreign / "dispatch_v1") as fd:
        link = create_xdp_link(fd, ifindex, "native", netns_pair.a, str(foreign / "links" / "theirs"))
    assert hook_state(netns_pair).drv_id == stranger, "the link must sit on the namespace's veth"
    assert find_xdp_link(ifindex, stranger).id == link.id

    with pytest.raises(AttachRefused, match=f"through bpf_link {link.id}"):
        plan(netns_pair, ours / "dispatch_v1")
    with XdpHook(netns_pair.if_a, netns_pair.a) as hook, ProgFd(ours / "dispatch_v1") as new, \
            ProgFd(foreign / "dispatch_v1") as old:
        with pytest.raises(XdpHookError, match="Can't replace active BPF XDP link"):
            hook.replace(new, old, "native")
    assert hook_state(netns_pair).drv_id == stranger


def test_a_hook_changed_after_planning_is_left_alone(netns_pair, pins):
    ours, foreign = pins
    apply_attach(plan(netns_pair, ours / "dispatch_v1", mode="generic"))
    swap = plan(netns_pair, ours / "dispatch_v2")
    # Someone else swaps the program between our plan and our apply.
    netns_pair.run(netns_pair.a, "ip", "-force", "link", "set", "dev", netns_pair.if_a, "xdpgeneric",
                   "pinned", str(foreign / "dispatch_v1"))
    with pytest.raises(XdpHookError, match="Active program does not match expected"):
        apply_attach(swap)
    assert hook_state(netns_pair).skb_id == prog_id(foreign / "dispatch_v1")
    assert prog_id(record(ours, netns_pair)) == prog_id(ours / "dispatch_v1"), "record untouched"
