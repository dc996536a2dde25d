"""The tail-call dispatcher on a veth in a namespace the test creates, wired and attached by our
plans, counts real traffic sent from the peer namespace: the TCP and UDP handlers' counters move
by exactly the packets sent (issue #3, must show 4)."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.attach import apply_attach, plan_attach
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import (
    apply_prog_array,
    plan_prog_array,
)

from tests.kernel import traffic
from tests.kernel.loader.xdp_setup import load_pinned

STAT_DISPATCHED, STAT_TCP, STAT_UDP = 0, 1, 2
IPPROTO_TCP, IPPROTO_UDP = 6, 17
CLOSED_PORT = 9  # nobody listens: a connect() is one SYN, a datagram one packet


@pytest.fixture
def dispatcher(pin_dir, dispatch_object):
    """The seed's dispatcher (clang's build of its C twin, and our compiled seed) loaded and pinned."""
    return load_pinned(dispatch_object, pin_dir / "app")


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_handlers_count_exactly_the_packets_sent(netns_pair, dispatcher, mode):
    app = dispatcher
    wired = apply_prog_array(plan_prog_array(str(app / "maps" / "jt"), {
        IPPROTO_TCP: str(app / "tcp_handler"), IPPROTO_UDP: str(app / "udp_handler")}))
    assert sorted(wired.after) == [IPPROTO_TCP, IPPROTO_UDP]
    attached = apply_attach(plan_attach(netns_pair.if_a, netns_pair.a, str(app / "xdp_dispatch"), mode=mode))
    assert attached.mode == mode

    stats = str(app / "maps" / "proto_stats")
    traffic.warm_up(netns_pair.b, netns_pair.ip_a)
    before = traffic.settle(lambda: traffic.counters(stats), traffic.counters(stats))
    tcp = traffic.send(netns_pair.b, "tcp", netns_pair.ip_a, CLOSED_PORT, 40)
    udp = traffic.send(netns_pair.b, "udp", netns_pair.ip_a, CLOSED_PORT, 300)
    assert (tcp, udp) == (40, 300)

    expected = {STAT_DISPATCHED: before[STAT_DISPATCHED] + tcp + udp,
                STAT_TCP: before[STAT_TCP] + tcp, STAT_UDP: before[STAT_UDP] + udp}
    assert traffic.settle(lambda: traffic.counters(stats), expected) == expected

    apply_attach(plan_attach(netns_pair.if_a, netns_pair.a, str(app / "xdp_dispatch"), state="absent"))
    after_detach = traffic.counters(stats)
    traffic.send(netns_pair.b, "udp", netns_pair.ip_a, CLOSED_PORT, 20)
    assert traffic.settle(lambda: traffic.counters(stats), after_detach) == after_detach
