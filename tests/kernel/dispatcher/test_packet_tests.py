"""Packet tests before anything goes live: BPF_PROG_TEST_RUN on a private instance of the new generation.

A failing test fails the task naming the frame, the verdict got and the one expected, and leaves the host
exactly as it was (pins and their ids, slots, hooks, counter values), in check mode and for real. Passing
tests leave the live counters untouched although the code under test counts into maps of the same names."""

from __future__ import annotations

import pytest

from tests.kernel.dispatcher.conftest import bump_counters, counters, dispatcher_args, pinned_state

UDP = {"name": "udp passes and is counted", "frame": {"ipv4": {"src": "10.1.0.1", "dst": "10.1.0.2"},
                                                      "udp": {"sport": 5000, "dport": 53}, "payload": 16},
       "expect": "XDP_PASS", "counters": [{"map": "proto_stats", "key": 2, "delta": 1},
                                          {"map": "proto_stats", "key": 0, "delta": 1}]}
TCP = {"name": "tcp syn passes", "frame": {"eth": {"vlan": None}, "ipv4": {}, "tcp": {"dport": 443}},
       "expect": "XDP_PASS", "counters": [{"map": "proto_stats", "key": "0x1", "delta": 1}]}
ARP_HEX = {"name": "a runt non-IP frame passes uncounted", "frame": "ffffffffffff 020000000001 0806 0001",
           "expect": "xdp_pass", "counters": [{"map": "proto_stats", "key": 0, "delta": 0}]}
IPV6 = {"name": "ipv6 passes uncounted", "frame": {"ipv6": {}, "udp": {}},
        "expect": "XDP_PASS", "counters": [{"map": "proto_stats", "key": 0, "delta": 0}]}
TESTS = [UDP, TCP, ARP_HEX, IPV6]


def test_passing_tests_report_and_leave_live_counters_alone(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    first = run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), tests=TESTS))
    assert not first.get("failed"), first["msg"]
    assert [t["passed"] for t in first["tests"]] == [True] * 4
    assert first["tests"][0]["counters"] == [dict(map="proto_stats", key=2, delta=1, expected=1),
                                             dict(map="proto_stats", key=0, delta=1, expected=1)]
    assert counters(host) == {0: 0, 1: 0, 2: 0}, "the tests ran on the live counters"
    bump_counters(host, {0: 5, 2: 5})
    before = pinned_state(host)
    for check in (True, False):
        again = run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), tests=TESTS), check=check)
        assert again["changed"] is False and all(t["passed"] for t in again["tests"])
        assert pinned_state(host) == before
    # The scratch maps start from the live values: a delta is measured there, never on the live map.
    assert counters(host) == {0: 5, 1: 0, 2: 5}


@pytest.mark.parametrize("check", [True, False])
def test_a_failing_test_fails_the_host_and_leaves_it_exactly_as_it_was(xdp_hosts, objects, run_module, check):
    host = xdp_hosts(1)[0]
    run_module("xdp_dispatcher", dispatcher_args(host, objects("v1")))
    bump_counters(host, {0: 11, 1: 3, 2: 8})
    before = pinned_state(host)
    failed = run_module("xdp_dispatcher", dispatcher_args(host, objects("drop_udp"), tests=TESTS), check=check)
    assert failed.get("failed") is True
    frame = [t for t in failed["tests"] if t["name"] == UDP["name"]][0]["frame"]
    assert "nothing went live" in failed["msg"]
    assert f"test {UDP['name']!r}: frame {frame}: verdict XDP_DROP, expected XDP_PASS" in failed["msg"]
    assert [t["passed"] for t in failed["tests"]] == [False, True, True, True]
    assert pinned_state(host) == before


def test_a_failing_test_on_a_fresh_host_leaves_nothing(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    before = pinned_state(host)
    failed = run_module("xdp_dispatcher", dispatcher_args(host, objects("drop_udp"), tests=[UDP]))
    assert failed.get("failed") is True and "verdict XDP_DROP, expected XDP_PASS" in failed["msg"]
    assert pinned_state(host) == before


def test_a_counter_expectation_that_fails_names_the_counter(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    wrong = dict(UDP, counters=[{"map": "proto_stats", "key": 1, "delta": 1}])
    failed = run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), tests=[wrong]))
    assert failed.get("failed") is True
    assert "proto_stats[1] changed by 0, expected 1" in failed["msg"]


@pytest.mark.parametrize("test, message", [
    ({"name": "x", "frame": "zz", "expect": "XDP_PASS"}, "tests[0] (x).frame: not hex bytes"),
    ({"name": "x", "frame": "00" * 10, "expect": "XDP_PASS"}, "shorter than an Ethernet header"),
    ({"name": "x", "frame": {"ipv4": {"src": "300.1.1.1"}}, "expect": "XDP_PASS"}, "ipv4.src: '300.1.1.1' is not an IPv4"),
    ({"name": "x", "frame": {"udp": {}}, "expect": "XDP_PASS"}, "udp: needs an IP layer"),
    ({"name": "x", "frame": {"ipv4": {}}, "expect": "XDP_MAYBE"}, "'XDP_MAYBE' is not a verdict"),
    ({"name": "x", "frame": {"ipv4": {}}, "expect": "XDP_PASS", "counters": [{"map": "jt", "key": 0}]},
     "'jt' does not hold counters"),
    ({"name": "x", "frame": {"ipv4": {}}, "expect": "XDP_PASS", "counters": [{"map": "proto_stats", "key": "1_0"}]},
     "'1_0' is not a plain integer"),
])
def test_bad_tests_fail_clearly_before_anything(xdp_hosts, objects, run_module, test, message):
    host = xdp_hosts(1)[0]
    failed = run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), tests=[test]))
    assert failed.get("failed") is True and message in failed["msg"], failed["msg"]
    assert pinned_state(host)["pins"] == {}
