"""Automatic rollback: when anything fails after the first live change, the host goes back by itself.

The failure is a real one: native XDP on a veth whose peer has MTU 9000 is refused by the driver
(ERANGE, "Peer MTU is too large to set XDP") after the first interface already switched. Every interface
then runs what it ran before (swapped back atomically), the new generation is gone, the pins, slots and
counters are exactly as they were, and the task says what failed and what was rolled back."""

from __future__ import annotations

import subprocess

from tests.kernel.dispatcher.conftest import bump_counters, dispatcher_args, pinned_state


def big_mtu_peer(host, index=1):
    subprocess.run(["ip", "-n", host.peer_netns, "link", "set", "dev", host.peers[index], "mtu", "9000"],
                   check=True, capture_output=True)


def interfaces(host):
    return [{"name": host.interfaces[0], "netns": host.netns, "mode": "generic"},
            {"name": host.interfaces[1], "netns": host.netns, "mode": "native"}]


def test_a_failed_second_attach_rolls_the_first_interface_back(xdp_hosts, objects, run_module):
    host = xdp_hosts(1, interfaces=2)[0]
    big_mtu_peer(host)
    first = run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), interfaces=[host.interfaces[0]]))
    assert not first.get("failed"), first["msg"]
    bump_counters(host, {0: 21, 1: 9, 2: 12})
    before = pinned_state(host)
    v1_dispatcher = before["pins"]["gen/1/progs/xdp_dispatch"][1]

    failed = run_module("xdp_dispatcher", dict(dispatcher_args(host, objects("v2")), interfaces=interfaces(host)))
    assert failed.get("failed") is True
    assert "the rollout failed and the host was rolled back" in failed["msg"]
    assert "Peer MTU is too large" in failed["msg"] and "veth2" in failed["msg"]
    assert failed["rolled_back"] == [f"veth0 (netns {host.netns}) back to program {v1_dispatcher}"]
    assert failed["rollback_errors"] == []
    assert pinned_state(host) == before


def test_a_failed_rollout_on_a_fresh_host_leaves_nothing(xdp_hosts, objects, run_module):
    host = xdp_hosts(1, interfaces=2)[0]
    big_mtu_peer(host)
    before = pinned_state(host)
    failed = run_module("xdp_dispatcher", dict(dispatcher_args(host, objects("v1")), interfaces=interfaces(host)))
    assert failed.get("failed") is True and "Peer MTU is too large" in failed["msg"]
    assert failed["rolled_back"] == [f"veth0 (netns {host.netns}) back to no program (detached)"]
    assert pinned_state(host) == before
