"""plan_attach decides noop / attach / replace / detach from a fake kernel view, and refuses
foreign programs, mode changes and netlink<->link switches with a message that says why."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import (
    AttachRefused,
    HookView,
    plan_attach,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netlink import XdpState
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.pinned import Pinned
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.syscalls import LinkInfo

PIN_DIR = "/sys/fs/bpf/app"
PROG_PIN = f"{PIN_DIR}/xdp_dispatch"
IFINDEX, NETNS_INO = 7, 4026532000
RECORD = f"{PIN_DIR}/attached/if{IFINDEX}_ns{NETNS_INO}"
LINK_PIN = f"{PIN_DIR}/links/if{IFINDEX}_ns{NETNS_INO}"


@dataclass
class FakeKernel:
    """A hook plus pins: ``pins`` maps path -> Pinned; ``links`` are the XDP links that exist."""

    hook_state: XdpState
    pins: dict = field(default_factory=dict)
    links: list = field(default_factory=list)

    def hook(self, interface, netns):
        return HookView(IFINDEX, interface, self.hook_state)

    def netns_id(self, netns):
        return NETNS_INO

    def pinned(self, path):
        return self.pins.get(path)

    def owned_prog_ids(self, directory):
        return {p.prog_id for path, p in self.pins.items() if path.startswith(directory + "/")}

    def xdp_link(self, ifindex, prog_id):
        return next((li for li in self.links if li.ifindex == ifindex and li.prog_id == prog_id), None)


def empty():
    return XdpState(IFINDEX, None, 0)


def generic(prog_id):
    return XdpState(IFINDEX, "generic", prog_id, skb_id=prog_id)


def native(prog_id):
    return XdpState(IFINDEX, "native", prog_id, drv_id=prog_id)


def kernel(state, desired=20, **extra_pins):
    pins = {PROG_PIN: Pinned(PROG_PIN, "prog", desired, desired)}
    for path, prog_id in extra_pins.items():
        pins[f"{PIN_DIR}/{path}"] = Pinned(f"{PIN_DIR}/{path}", "prog", prog_id, prog_id)
    return FakeKernel(state, pins)


def plan(k, **kw):
    args = dict(interface="veth0", netns="ns1", program_pin=PROG_PIN, mode="auto", force=False, state="present")
    args.update(kw)
    return plan_attach(reader=k, **args)


def test_empty_hook_plans_attach_in_requested_mode():
    p = plan(kernel(empty()), mode="generic")
    assert (p.action, p.mode, p.prog_id, p.previous_prog_id) == ("attach", "generic", 20, 0)
    assert p.record_pin == RECORD and p.link_pin is None and p.changed


def test_same_program_attached_is_noop():
    p = plan(kernel(native(20)))
    assert (p.action, p.mode, p.changed) == ("noop", "native", False)


def test_our_older_program_is_replaced_in_its_current_mode():
    # The old dispatcher is kept recognisable by the attachment record pin.
    p = plan(kernel(generic(11), **{f"attached/if{IFINDEX}_ns{NETNS_INO}": 11}), mode="auto")
    assert (p.action, p.mode, p.prog_id, p.previous_prog_id) == ("replace", "generic", 20, 11)


def test_foreign_program_is_refused_with_its_id_and_mode():
    with pytest.raises(AttachRefused) as err:
        plan(kernel(native(99)))
    text = str(err.value)
    assert "program 99" in text and "native mode" in text and "unless forced" in text
    assert "'veth0'" in text and "'ns1'" in text


def test_foreign_program_is_replaced_when_forced():
    p = plan(kernel(native(99)), force=True)
    assert (p.action, p.previous_prog_id, p.mode) == ("replace", 99, "native")
    assert "forced" in p.reason


def test_mode_change_is_refused_even_for_our_program():
    with pytest.raises(AttachRefused, match="native mode, not generic"):
        plan(kernel(native(20)), mode="generic")


def test_absent_detaches_ours_in_its_mode_and_ignores_other_modes():
    k = kernel(generic(20))
    p = plan(k, state="absent")
    assert (p.action, p.mode, p.previous_prog_id) == ("detach", "generic", 20)
    assert plan(k, state="absent", mode="native").action == "noop"
    assert plan(kernel(empty()), state="absent").action == "noop"
    assert plan(kernel(empty()), state="absent", mode="native").reason == ""


def test_absent_in_the_wrong_mode_says_what_stays_attached():
    """The kernel acknowledges a wrong-mode detach and does nothing; the plan says so instead of a silent ok."""
    p = plan(kernel(generic(20)), state="absent", mode="native")
    assert (p.action, p.changed) == ("noop", False)
    assert p.reason == ("nothing is attached in native mode, so there is nothing to detach; program 20 in "
                        "generic mode stays attached (detach it in its own mode, or with mode=auto)")


def test_absent_refuses_foreign_and_without_pin_dir_needs_force():
    with pytest.raises(AttachRefused):
        plan(kernel(generic(99)), state="absent")
    with pytest.raises(AttachRefused):
        plan(kernel(generic(20)), state="absent", program_pin=None)
    assert plan(kernel(generic(99)), state="absent", program_pin=None, force=True).action == "detach"


def test_multi_mode_needs_an_explicit_mode():
    state = XdpState(IFINDEX, "multi", 0, drv_id=20, hw_id=30)
    with pytest.raises(AttachRefused, match="several modes"):
        plan(kernel(state))
    p = plan(kernel(state), mode="offload", force=True)
    assert (p.action, p.previous_prog_id, p.mode) == ("replace", 30, "offload")


def test_our_link_owned_hook_is_changed_through_the_link():
    k = kernel(native(11))
    k.pins[LINK_PIN] = Pinned(LINK_PIN, "link", 5, 11)
    k.links.append(LinkInfo(type=6, id=5, prog_id=11, ifindex=IFINDEX))
    p = plan(k)
    assert (p.action, p.link_pin, p.link_id, p.via_link) == ("replace", LINK_PIN, 5, True)


def test_foreign_link_is_reported_and_refused():
    k = kernel(native(11))
    k.links.append(LinkInfo(type=6, id=8, prog_id=11, ifindex=IFINDEX))
    with pytest.raises(AttachRefused, match="bpf_link 8"):
        plan(k)
    p = plan(k, force=True)
    assert (p.link_id, p.link_pin, p.action) == (8, None, "replace")


def test_via_link_attaches_through_a_new_pinned_link_but_never_converts_netlink():
    p = plan(kernel(empty()), via_link=True, mode="native")
    assert (p.action, p.link_pin) == ("attach", LINK_PIN)
    with pytest.raises(AttachRefused, match="through netlink, not a bpf_link"):
        plan(kernel(native(11), **{"attached/x": 11}), via_link=True)


@pytest.mark.parametrize("kw, message", [
    (dict(mode="fast"), "mode 'fast'"),
    (dict(state="gone"), "state 'gone'"),
    (dict(program_pin=None), "needs program_pin"),
    (dict(program_pin=f"{PIN_DIR}/missing"), "nothing is pinned"),
])
def test_bad_arguments_are_named(kw, message):
    with pytest.raises(ValueError, match=message):
        plan(kernel(empty()), **kw)


def test_a_map_pin_is_not_a_program():
    k = kernel(empty())
    k.pins[PROG_PIN] = Pinned(PROG_PIN, "map", 3)
    with pytest.raises(ValueError, match="a map is pinned there"):
        plan(k)


class GoneKernel(FakeKernel):
    def __init__(self, error):
        super().__init__(empty())
        self.error = error

    def hook(self, interface, netns):
        raise self.error


def test_absent_on_an_interface_or_netns_that_is_gone_is_a_noop():
    import errno

    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netlink import XdpHookError
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netns import NetnsError

    no_device = XdpHookError(errno.ENODEV, "xdp_query", "interface 'veth9'", "no such interface")
    no_netns = NetnsError(errno.ENOENT, "network namespace 'blue' does not exist")
    for error in (no_device, no_netns):
        p = plan_attach("veth9", "blue", PROG_PIN, state="absent", reader=GoneKernel(error))
        assert (p.action, p.changed, p.previous_prog_id) == ("noop", False, 0)
        assert "nothing to detach" in p.reason
        with pytest.raises(type(error)):
            plan_attach("veth9", "blue", PROG_PIN, reader=GoneKernel(error))
    bad = NetnsError(errno.EINVAL, "network namespace path '/proc/self/status': not a namespace file")
    with pytest.raises(NetnsError):
        plan_attach("veth9", "/proc/self/status", PROG_PIN, state="absent", reader=GoneKernel(bad))
