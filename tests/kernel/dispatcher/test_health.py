"""Health checks after going live, against the kernel with real traffic.

A host runs generation 1; the upgrade to generation 2 asks for health checks. With UDP flowing from the
peer namespace the dispatcher's run count (kernel program statistics, enabled for the window only) grows
and the check passes. Without traffic it does not grow: the host goes back to generation 1 by itself and
the task fails saying how often the dispatcher ran. A counter condition that traffic breaks (the UDP counter
may grow by at most 5) fails too, and the rollback leaves the counters intact: every datagram sent across
the switch and the switch back was counted exactly once, in the same map. Check mode says the checks cannot
run before the switch, a rerun that switches nothing does not run them, and neither does a run whose packet
tests kept the new generation off the host.
"""

from __future__ import annotations

import subprocess

from tests.kernel import traffic
from tests.kernel.dispatcher.conftest import counters, dispatcher_args, pinned_state

PORT = 9
UDP = 2


def sysctl_stats_enabled() -> str:
    return subprocess.run(["sysctl", "-n", "kernel.bpf_stats_enabled"], capture_output=True, text=True,
                          check=True).stdout.strip()


def live_v1(host, objects, run_module):
    first = run_module("xdp_dispatcher", dispatcher_args(host, objects("v1")))
    assert not first.get("failed"), first.get("msg")
    traffic.warm_up(host.peer_netns, host.addresses[0])
    return pinned_state(host)


def stream(host, rate=200):
    return traffic.Stream([(host.peer_netns, host.addresses[0], PORT)], rate=rate)


def test_a_check_passes_while_traffic_flows(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    live_v1(host, objects, run_module)
    stats_sysctl = sysctl_stats_enabled()
    health = {"window": 1.5, "min_runs": 50, "counters": [{"map": "proto_stats", "key": UDP, "min_delta": 50}]}

    check = run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"), health=health), check=True)
    assert check["changed"] is True
    assert check["health"]["ran"] is False and "cannot run before" in check["health"]["reason"]

    sender = stream(host)
    try:
        up = run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"), health=health))
    finally:
        sent = sender.finish()[0]
    assert not up.get("failed"), up.get("msg")
    seen = up["health"]
    assert seen["ran"] is True and seen["passed"] is True, seen
    assert seen["generation"] == 2 and up["generation"]["live"] == 2
    assert seen["dispatcher"]["name"] == "xdp_dispatch" and seen["dispatcher"]["runs"] >= 50
    assert seen["dispatcher"]["id"] == up["interfaces"][0]["prog_id"]
    assert seen["counters"][0]["delta"] >= 50 and seen["counters"][0]["passed"]
    assert 1.5 <= seen["elapsed"] < 5
    assert sent >= seen["dispatcher"]["runs"] / 2
    assert sysctl_stats_enabled() == stats_sysctl  # the window's own statistics, the sysctl untouched

    rerun = run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"), health=health))
    assert rerun["changed"] is False
    assert rerun["health"] == {"ran": False, "passed": None, "reason": rerun["health"]["reason"]}
    assert "nothing went live" in rerun["health"]["reason"]


def test_a_check_fails_without_traffic_and_the_host_goes_back(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    before = live_v1(host, objects, run_module)
    v1_dispatcher = before["pins"]["gen/1/progs/xdp_dispatch"][1]

    failed = run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"), health={"window": 1, "min_runs": 100}))
    assert failed.get("failed") is True
    assert "the rollout failed and the host was rolled back: health check failed after" in failed["msg"]
    seen = failed["health"]
    assert seen["ran"] is True and seen["passed"] is False and seen["generation"] == 2
    assert seen["dispatcher"]["runs"] < 100
    assert f"ran {seen['dispatcher']['runs']} times, expected at least 100" in failed["msg"]
    assert failed["rolled_back"] == ["the generation pointers", f"veth0 (netns {host.netns}) back to program {v1_dispatcher}"]
    assert pinned_state(host) == before


def test_a_counter_condition_fails_and_the_rollback_keeps_the_counters(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    before = live_v1(host, objects, run_module)
    udp_before = counters(host)[UDP]
    health = {"window": 1, "min_runs": 1, "counters": [{"map": "proto_stats", "key": UDP, "max_delta": 5}]}

    sender = stream(host)
    try:
        failed = run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"), health=health))
    finally:
        sent = sender.finish()[0]
    assert failed.get("failed") is True, failed.get("msg")
    seen = failed["health"]
    condition = seen["counters"][0]
    assert condition["passed"] is False and condition["delta"] > 5 and condition["max_delta"] == 5
    assert f"proto_stats[2] grew by {condition['delta']}, expected at most 5" in failed["msg"]
    assert seen["dispatcher"]["runs"] >= condition["delta"]

    # Back on generation 1: the same pins, ids, slots and hooks; the counters are the same map, and every
    # datagram sent before, during and after the switch and the switch back was counted exactly once.
    after = pinned_state(host)
    assert {k: v for k, v in after.items() if k != "counters"} == {k: v for k, v in before.items() if k != "counters"}
    assert traffic.settle(lambda: counters(host)[UDP], udp_before + sent) == udp_before + sent


def test_no_check_runs_when_the_packet_tests_keep_the_new_generation_off_the_host(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    before = live_v1(host, objects, run_module)
    udp = {"name": "udp passes", "frame": {"ipv4": {}, "udp": {"dport": 53}}, "expect": "XDP_PASS"}
    failed = run_module("xdp_dispatcher", dispatcher_args(host, objects("drop_udp"), tests=[udp],
                                                          health={"window": 1, "min_runs": 1}))
    assert failed.get("failed") is True and "packet tests failed, nothing went live" in failed["msg"]
    assert failed["health"] == {"ran": False, "passed": None, "reason": "the packet tests failed, so nothing went live"}
    assert pinned_state(host) == before
