"""Zero packets lost while generations switch under traffic.

UDP datagrams flow from the peer namespace into the dispatcher while the module rolls out one version
after another (each a new generation: v1 -> v2 -> v3 -> v1 ..., older ones pruned), the first switch
starting from a version 1 layout (xdp_load/xdp_prog_array/xdp_attach). Every version's dispatcher counts
the datagram in the shared proto_stats[0] and its UDP handler in proto_stats[2], so every datagram sent
must be counted exactly once by a dispatcher and once by a handler: nothing lost, nothing counted twice."""

from __future__ import annotations

import pytest

from tests.kernel import traffic
from tests.kernel.dispatcher.conftest import counters, dispatcher_args, version_1_rollout

PACKETS = 40000
PORT = 9999


@pytest.mark.parametrize("mode", ["generic", "native"])
def test_no_packet_lost_while_generations_switch(xdp_hosts, objects, run_module, mode):
    host = xdp_hosts(1)[0]
    version_1_rollout(run_module, host, objects("v1"))
    if mode == "native":  # version 1 attached generically; start over with the module, natively
        assert not run_module("xdp_dispatcher", dispatcher_args(host, None, state="absent")).get("failed")
        args = dispatcher_args(host, objects("v1"))
        args["interfaces"][0]["mode"] = mode
        assert not run_module("xdp_dispatcher", args).get("failed")
    traffic.warm_up(host.peer_netns, host.addresses[0])
    start = counters(host)

    sender = traffic.Background(host.peer_netns, "udp", host.addresses[0], PORT, PACKETS, burst=32)
    switches = []
    try:
        while sender.running():
            variant = ("v2", "v3", "v1")[len(switches) % 3]  # never the live one: a new generation each time
            args = dispatcher_args(host, objects(variant))
            args["interfaces"][0]["mode"] = mode
            result = run_module("xdp_dispatcher", args)
            assert not result.get("failed"), result["msg"]
            switches.append(result["generation"]["live"])
        sent = sender.finish()
    finally:
        sender.kill()
    assert sent == PACKETS
    assert len(switches) >= 5, f"only {len(switches)} switches happened while packets flowed"
    assert len(set(switches)) == len(switches), f"every run must switch to a new generation: {switches}"

    def totals():
        now = counters(host)
        return now[0] - start[0], now[2] - start[2]

    assert traffic.settle(totals, (sent, sent)) == (sent, sent)
