"""Atomic upgrades under traffic (issue #3, must show 5): while UDP packets flow from the peer
namespace, the attached dispatcher is swapped between two versions (netlink REPLACE +
EXPECTED_FD, or BPF_LINK_UPDATE for a link attachment) and the jump-table slot between two
handler versions (in-place overwrite), again and again. Each version counts into its own slot of
a shared map, so every packet sent must be counted by exactly one dispatcher version and exactly
one handler version: nothing lost, nothing counted twice."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import apply_attach, plan_attach
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import (
    apply_prog_array,
    plan_prog_array,
)

from tests.kernel import traffic
from tests.kernel.loader.xdp_setup import load_pinned

TEST_PORT = 9999  # the only packets counter_dispatch.c counts
SLOT = 17
PACKETS = 20000


@pytest.fixture
def app(pin_dir, build):
    return load_pinned(build("counter_dispatch.c"), pin_dir / "app")


@pytest.mark.parametrize("mode, via_link", [("native", False), ("generic", False), ("native", True)])
def test_no_packet_lost_while_swapping_versions(netns_pair, app, mode, via_link):
    def attach(version, **kw):
        return apply_attach(plan_attach(netns_pair.if_a, netns_pair.a, str(app / f"dispatch_{version}"), **kw))

    def wire(handler):
        return apply_prog_array(plan_prog_array(str(app / "maps" / "jt"), {SLOT: str(app / handler)}))

    wire("handler_a")
    attach("v1", mode=mode, via_link=via_link)
    traffic.warm_up(netns_pair.b, netns_pair.ip_a)

    sender = traffic.Background(netns_pair.b, "udp", netns_pair.ip_a, TEST_PORT, PACKETS, burst=32)
    swaps = 0
    try:
        while sender.running():
            swaps += 1
            assert attach("v2" if swaps % 2 else "v1").changed
            assert wire("handler_b" if swaps % 2 else "handler_a").changed
        sent = sender.finish()
    finally:
        sender.kill()
    assert sent == PACKETS
    assert swaps >= 10, f"only {swaps} swaps happened while packets flowed"

    def totals():
        dispatched = traffic.counters(str(app / "maps" / "dispatched"))
        handled = traffic.counters(str(app / "maps" / "handled"))
        return dispatched[1] + dispatched[2], handled[1] + handled[2]

    assert traffic.settle(totals, (sent, sent)) == (sent, sent)
    dispatched = traffic.counters(str(app / "maps" / "dispatched"))
    handled = traffic.counters(str(app / "maps" / "handled"))
    assert min(dispatched[1], dispatched[2], handled[1], handled[2]) > 0, (dispatched, handled)
