"""A host rolled out by version 1 (xdp_load, xdp_prog_array, xdp_attach: programs at <pin_path>/<name>,
maps at <pin_path>/maps/<name>, attachment records under <pin_path>/attached/) is adopted as generation 0
without touching what runs, upgraded like any other host, and can roll back to what version 1 ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel.dispatcher.conftest import (
    bump_counters,
    counters,
    dispatcher_args,
    pinned_state,
    version_1_rollout,
)

V1_PINS = {"xdp_dispatch", "tcp_handler", "udp_handler", "maps/jt"}


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


@pytest.mark.parametrize("via_link", [False, True])
def test_the_same_object_is_adopted_as_generation_0_without_a_switch(xdp_hosts, objects, run_module, via_link):
    host = xdp_hosts(1)[0]
    version_1_rollout(run_module, host, objects("v1"), via_link=via_link)
    bump_counters(host, {0: 30, 1: 10, 2: 20})
    before = pinned_state(host)
    running = before["hooks"]["veth0"]

    check = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1")), check=True))
    assert pinned_state(host) == before
    adopted = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"))))
    assert check["changed"] is adopted["changed"] is True
    assert "adopt the version 1 layout as generation 0" in adopted["actions"]
    assert adopted["generation"]["live"] == 0 and adopted["generation"]["new"] is False
    state = pinned_state(host)
    assert state["hooks"]["veth0"] == running, "adoption must not touch what runs"
    assert not V1_PINS & set(state["pins"])
    for name in ("xdp_dispatch", "tcp_handler", "udp_handler"):
        assert state["pins"][f"gen/0/progs/{name}"][1] == before["pins"][name][1]
    assert state["pins"]["gen/0/maps/jt"][1:] == before["pins"]["maps/jt"][1:]
    assert state["pins"]["gen/current"] == ("symlink", "0")
    assert counters(host) == {0: 30, 1: 10, 2: 20}
    assert ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"))))["changed"] is False


def test_an_upgrade_from_version_1_keeps_it_as_the_previous_generation(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    version_1_rollout(run_module, host, objects("v1"))
    bump_counters(host, {1: 4})
    v1 = pinned_state(host)
    upgraded = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v2")), diff=True))
    assert upgraded["generation"] == dict(live=1, before=0, new=True, previous=0, pruned=[],
                                          path=f"{host.pin_path}/gen/1")
    assert "tcp_handler (version 1 layout)" not in upgraded["diff"]["after"]
    state = pinned_state(host)
    assert state["hooks"]["veth0"] == {"generic": state["pins"]["gen/1/progs/xdp_dispatch"][1]}
    assert state["pins"]["gen/0/progs/xdp_dispatch"][1] == v1["pins"]["xdp_dispatch"][1]
    assert not V1_PINS & set(state["pins"]) and counters(host)[1] == 4

    back = ok(run_module("xdp_dispatcher", dispatcher_args(host, None, state="previous")))
    assert back["generation"]["live"] == 0
    assert pinned_state(host)["hooks"]["veth0"] == v1["hooks"]["veth0"]


def test_absent_removes_a_version_1_rollout_too(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    version_1_rollout(run_module, host, objects("v1"))
    gone = ok(run_module("xdp_dispatcher", dispatcher_args(host, None, state="absent")))
    assert gone["changed"] is True and not Path(host.pin_path).exists()
    assert pinned_state(host)["hooks"]["veth0"] == {}
