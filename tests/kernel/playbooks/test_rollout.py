"""The collection's canary rollout playbook (``whistler.xdp.rollout``) on a fleet of 20 namespaced hosts
with traffic flowing to every host.

Each host is a network namespace whose veth0 runs the dispatcher (generic XDP); its peer namespace sends
it a steady UDP stream (one process for the whole fleet, ``traffic.Stream``) and a receiver counts what
each host's stack got (``traffic.Receiver``). Generation 1 is rolled out first. Then:

- a v2 whose UDP handler returns XDP_DROP: the packet tests (a UDP frame expecting XDP_PASS) fail on the
  canary before anything goes live there; the rollout stops; the canary keeps serving v1 and every other
  host is exactly as it was (pins, program and map ids, slots, hooks, files: bpftool/iproute2's view);
- a good v2 (with health checks: the dispatcher must run while traffic flows): it reaches every host,
  canary first, then batches of 25%.

In both runs no packet is lost, per host: what the UDP handler counted (the shared counter, which survives
the switch) and what the host's stack received both equal what was sent to it.

With two canaries and a tolerance of 50 %, one failing canary still stops the rollout (ansible alone would
go on), and a host pattern that matches nothing, or a batch size of 0, fails before any host is touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernel import traffic
from tests.kernel.dispatcher.conftest import counters, objects  # noqa: F401  # pylint: disable=unused-import
from tests.kernel.playbooks.checkreal import host_state, run_playbook, write_inventory

HOSTS = 20
PORT = 9999
UDP = 2
RATE = 40  # datagrams a second to each host
ROLLOUT = "whistler.xdp.tail_call_dispatch : Roll the dispatcher out"
UDP_PASSES = [{"name": "UDP passes its handler",
               "frame": {"ipv4": {"src": "10.9.0.1", "dst": "10.9.0.2"}, "udp": {"sport": 4000, "dport": 53}},
               "expect": "XDP_PASS", "counters": [{"map": "proto_stats", "key": UDP, "delta": 1}]}]


def fleet_inventory(path, hosts, **group_vars):
    """Every host's rollout in its own pin path, object path and namespace; packet tests on UDP."""
    return write_inventory(
        path, hosts,
        tail_call_dispatch_pin_path="{{ xdp_pin_path }}",
        tail_call_dispatch_object_dest="{{ xdp_file_dir }}/dispatch.bpf.o",
        tail_call_dispatch_interfaces=[{"name": "veth0", "netns": "{{ xdp_netns }}", "mode": "generic"}],
        tail_call_dispatch_tests=UDP_PASSES, **group_vars)


@pytest.fixture
def fleet(xdp_hosts, tmp_path):
    hosts = xdp_hosts(HOSTS)
    return hosts, fleet_inventory(tmp_path / "fleet.yml", hosts)


def rollout(inventory, **extra_vars):
    return run_playbook(Path("whistler.xdp.rollout"), inventory, forks=10,
                        extra_vars=dict({"rollout_hosts": "xdp_hosts"}, **extra_vars))


class Traffic:
    """UDP to every host while a playbook runs; ``stop()`` -> {host: (sent, counted, received)}."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.before = {h.name: counters(h).get(UDP, 0) for h in hosts}
        self.receiver = traffic.Receiver([(h.netns, h.addresses[0], PORT) for h in hosts])
        try:
            self.stream = traffic.Stream([(h.peer_netns, h.addresses[0], PORT) for h in hosts], rate=RATE)
        except BaseException:
            self.receiver.kill()
            raise

    def stop(self):
        try:
            sent = self.stream.finish()
        finally:
            self.stream.kill()
        try:
            received = self.receiver.finish()
        finally:
            self.receiver.kill()
        seen = {}
        for h, s, r in zip(self.hosts, sent, received):
            counted = traffic.settle(lambda h=h: counters(h)[UDP] - self.before[h.name], s)
            seen[h.name] = (s, counted, r)
        return seen

    def kill(self):
        self.stream.kill()
        self.receiver.kill()


def under_traffic(hosts, inventory, **extra_vars):
    flow = Traffic(hosts)
    try:
        run = rollout(inventory, **extra_vars)
    except BaseException:
        flow.kill()
        raise
    seen = flow.stop()
    lost = {name: counts for name, counts in seen.items() if not counts[0] == counts[1] == counts[2]}
    assert all(counts[0] > 0 for counts in seen.values()), seen
    assert not lost, f"packets lost (sent, counted by the UDP handler, received): {lost}"
    return run


def test_a_canary_rollout_stops_at_a_bad_canary_and_reaches_every_host_when_good(fleet, objects):  # noqa: F811
    hosts, inventory = fleet
    first = rollout(inventory, tail_call_dispatch_source=str(objects("v1")), rollout_batch="100%")
    assert first.rc == 0, first.output[-3000:]
    assert sorted(r.host for r in first.results if r.task == ROLLOUT and r.changed) == sorted(h.name for h in hosts)
    for h in hosts:
        traffic.warm_up(h.peer_netns, h.addresses[0])
    v1 = {h.name: host_state(h) for h in hosts}
    canary, others = hosts[0], hosts[1:]
    assert v1[canary.name]["pins"]["gen/current"] == ("symlink", "1")

    # A v2 that drops UDP: caught by the packet tests on the canary, nothing else touched.
    bad = under_traffic(hosts, inventory, tail_call_dispatch_source=str(objects("drop_udp")))
    assert bad.rc != 0
    failed = [r for r in bad.results if r.status == "failed"]
    assert [(r.host, r.task) for r in failed] == [(canary.name, ROLLOUT)], bad.recap()
    assert "packet tests failed, nothing went live" in failed[0].msg
    assert "verdict XDP_DROP, expected XDP_PASS" in failed[0].msg
    assert {r.host for r in bad.results} <= {canary.name, "localhost"}, "a host beyond the canary was touched"
    assert {h.name: host_state(h) for h in hosts} == v1

    # A good v2, watched by health checks after each switch: canary, then batches of 25%.
    good = under_traffic(hosts, inventory, tail_call_dispatch_source=str(objects("v2")),
                         tail_call_dispatch_health={"window": 1, "min_runs": RATE // 4})
    assert good.rc == 0, good.output[-3000:]
    switched = [r.host for r in good.results if r.task == ROLLOUT and r.changed]
    assert sorted(switched) == sorted(h.name for h in hosts) and switched[0] == canary.name
    for h in hosts:
        state = host_state(h)
        assert state["pins"]["gen/current"] == ("symlink", "2") and state["pins"]["gen/previous"] == ("symlink", "1")
        dispatcher = state["pins"]["gen/2/progs/xdp_dispatch"][1]
        assert state["hooks"]["veth0"] == {"generic": dispatcher} != v1[h.name]["hooks"]["veth0"]
    assert all(r.status != "failed" for r in good.results)
    assert len(others) == HOSTS - 1


def test_one_failed_canary_of_two_stops_the_rollout_whatever_the_tolerance(xdp_hosts, tmp_path, objects):  # noqa: F811
    hosts = xdp_hosts(4)
    hosts[0].vars["tail_call_dispatch_source"] = str(objects("drop_udp"))
    inventory = fleet_inventory(tmp_path / "fleet.yml", hosts, tail_call_dispatch_source=str(objects("v1")))
    untouched = {h.name: host_state(h) for h in hosts[2:]}

    run = rollout(inventory, rollout_canary=2, rollout_max_fail_percentage=50)
    assert run.rc != 0
    assert [(r.host, r.task) for r in run.results if r.status == "failed"] == [(hosts[0].name, ROLLOUT)]
    assert [r.host for r in run.results if r.task == ROLLOUT and r.changed] == [hosts[1].name]
    assert {r.host for r in run.results} == {hosts[0].name, hosts[1].name, "localhost"}, run.recap()
    assert "Stop the rollout when a canary failed" in run.output
    assert {h.name: host_state(h) for h in hosts[2:]} == untouched
    assert not untouched[hosts[2].name]["pins"]


def test_a_pattern_that_matches_no_host_fails_the_rollout(tmp_path, xdp_hosts):
    inventory = write_inventory(tmp_path / "fleet.yml", xdp_hosts(1))
    for extra in ({"rollout_hosts": "no_such_group"}, {"rollout_hosts": "xdp_hosts", "rollout_batch": "0"}):
        run = run_playbook(Path("whistler.xdp.rollout"), inventory, extra_vars=extra)
        assert run.rc != 0 and "Give the hosts to roll out to with -e rollout_hosts=GROUP" in run.output
        assert [r.task for r in run.results if r.status == "failed"] == [
            "Check that rollout_hosts names hosts and the batch sizes are numbers or percentages"]
