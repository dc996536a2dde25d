"""The tail_call_dispatch role in check mode predicts the real run, task by task, and changes nothing.

For each scenario on namespaced hosts: a fresh host, a rerun, a changed source (one handler), an added
interface, ``tail_call_dispatch_state: previous`` and teardown (twice), the play runs with ``--check
--diff`` first: the hosts must be exactly as before (pins, ids, slots, hooks, files), its diff must name
programs with their tags, slots with their handlers, interfaces with program and mode, and the generation
switch; then the real run must change exactly the tasks check mode said it would. After teardown nothing
of the rollout is left in bpffs (checked with bpftool/iproute2 through ``checkreal.host_state``)."""

from __future__ import annotations

import re

from tests.kernel.playbooks.checkreal import (
    REPO,
    assert_check_predicts,
    host_state,
    run_playbook,
    write_inventory,
)

SOURCE = REPO / "roles" / "tail_call_dispatch" / "files" / "tail-call-dispatch.lisp"

PLAYBOOK = """
- name: Roll the dispatcher out
  hosts: xdp_hosts
  gather_facts: false
  roles:
    - role: whistler.xdp.tail_call_dispatch
      vars:
        tail_call_dispatch_pin_path: "{{ xdp_pin_path }}"
        tail_call_dispatch_object_dest: "{{ xdp_file_dir }}/dispatch.bpf.o"
        tail_call_dispatch_interfaces: "{{ xdp_interfaces }}"
        tail_call_dispatch_source: "{{ xdp_source | default('tail-call-dispatch.lisp') }}"
        tail_call_dispatch_state: "{{ xdp_state | default('present') }}"
        tail_call_dispatch_tests:
          - name: UDP passes and is counted
            frame: {ipv4: {src: 10.9.0.1, dst: 10.9.0.2}, udp: {sport: 4000, dport: 53}, payload: 8}
            expect: XDP_PASS
            counters: [{map: proto_stats, key: 2, delta: 1}]
"""
ROLLOUT = "whistler.xdp.tail_call_dispatch : Roll the dispatcher out"
TCP_COUNT = "(incf (getmap proto-stats +stat-tcp+))"


def scenario(hosts, tmp_path, **extra_vars):
    """Check run, the hosts unchanged, real run, check predicted it; returns (check, real)."""
    for host in hosts:
        host.vars["xdp_interfaces"] = [{"name": i, "netns": host.netns, "mode": "generic"} for i in host.interfaces]
    inventory = write_inventory(tmp_path / "inventory.yml", hosts)
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    before = {h.name: host_state(h) for h in hosts}
    check = run_playbook(playbook, inventory, check=True, diff=True, extra_vars=extra_vars)
    assert check.rc == 0, check.output[-3000:]
    assert {h.name: host_state(h) for h in hosts} == before, "check mode changed the host"
    real = run_playbook(playbook, inventory, diff=True, extra_vars=extra_vars)
    assert real.rc == 0, real.output[-3000:]
    assert_check_predicts(check, real)
    return check, real


def rollout_diffs(run):
    """{host: diff} of the rollout task."""
    found = {r.host: r.diff for r in run.results if r.task == ROLLOUT and r.status != "skipped"}
    assert found, run.recap()
    return found


def test_the_role_check_mode_predicts_every_scenario(xdp_hosts, add_interface, tmp_path):
    hosts = xdp_hosts(2)
    names = [h.name for h in hosts]

    # A fresh host: the whole rollout is one changed task, predicted with program tags, slots, interfaces.
    check, real = scenario(hosts, tmp_path)
    assert sorted(real.changed_tasks()) == sorted([ROLLOUT] * 2)
    for diff in rollout_diffs(check).values():
        after = diff["after"]
        assert diff["before"].startswith("no generation\n") and after.startswith("generation 1\n")
        assert re.search(r"^interface veth0 \(netns wxt-\w+-h\): nothing$", diff["before"], re.M)
        assert re.search(r"^program tcp_handler: tag [0-9a-f]{16}$", after, re.M)
        assert "jump table jt slot 6 -> tcp_handler" in after and "jump table jt slot 17 -> udp_handler" in after
        assert "interface veth0 (netns wxt-" in after and "xdp_dispatch (generation 1), generic mode" in after
    assert rollout_diffs(check) == rollout_diffs(real)
    live = {h.name: host_state(h) for h in hosts}
    for h in hosts:
        assert live[h.name]["hooks"]["veth0"] == {"generic": live[h.name]["pins"]["gen/1/progs/xdp_dispatch"][1]}
        assert list(live[h.name]["files"]) == ["dispatch.bpf.o"]

    # A rerun: nothing to change, on any host.
    check, real = scenario(hosts, tmp_path)
    assert real.changed_tasks() == [] and check.changed_tasks() == []
    assert {h.name: host_state(h) for h in hosts} == live

    # A changed source (one handler): generation 2 on both hosts, the handler's tag changes in the diff.
    source = tmp_path / "v2.lisp"
    source.write_text(SOURCE.read_text().replace(TCP_COUNT, TCP_COUNT + " " + TCP_COUNT))
    check, real = scenario(hosts, tmp_path, xdp_source=str(source))
    assert sorted(real.changed_tasks()) == sorted([ROLLOUT] * 2)
    for diff in rollout_diffs(real).values():
        before_tag = re.search(r"^program tcp_handler: tag (\w+)$", diff["before"], re.M).group(1)
        after_tag = re.search(r"^program tcp_handler: tag (\w+)$", diff["after"], re.M).group(1)
        assert before_tag != after_tag
        assert diff["before"].startswith("generation 1\n") and diff["after"].startswith("generation 2\n")
        assert "generations kept: 1, 2" in diff["after"]
        assert re.search(r"^program udp_handler: tag (\w+)$", diff["before"], re.M).group(1) == \
            re.search(r"^program udp_handler: tag (\w+)$", diff["after"], re.M).group(1)
    assert rollout_diffs(check) == rollout_diffs(real)

    # An added interface on the first host: only attached there, no new generation.
    add_interface(hosts[0])
    check, real = scenario(hosts, tmp_path, xdp_source=str(source))
    assert real.changed_tasks(names[0]) == [ROLLOUT] and real.changed_tasks(names[1]) == []
    diff = rollout_diffs(real)[names[0]]
    assert f"interface veth2 (netns {hosts[0].netns}): nothing" in diff["before"]
    assert f"interface veth2 (netns {hosts[0].netns}): xdp_dispatch (generation 2), generic mode" in diff["after"]
    assert diff["after"].startswith("generation 2\n")
    state = host_state(hosts[0])
    assert state["hooks"]["veth2"] == state["hooks"]["veth0"] == {"generic": state["pins"]["gen/2/progs/xdp_dispatch"][1]}

    # previous: back to generation 1 everywhere; the rerun of previous is ok.
    check, real = scenario(hosts, tmp_path, xdp_state="previous")
    assert sorted(real.changed_tasks()) == sorted([ROLLOUT] * 2)
    for diff in rollout_diffs(real).values():
        assert diff["before"].startswith("generation 2\n") and diff["after"].startswith("generation 1\n")
    for h in hosts:
        state = host_state(h)
        assert state["pins"]["gen/current"] == ("symlink", "1")
        assert all(hook == {"generic": state["pins"]["gen/1/progs/xdp_dispatch"][1]}
                   for name, hook in state["hooks"].items() if name != "lo")
    check, real = scenario(hosts, tmp_path, xdp_state="previous")
    assert real.changed_tasks() == []

    # Teardown, twice: the second run changes nothing; nothing of the rollout is left in bpffs.
    check, real = scenario(hosts, tmp_path, xdp_state="absent")
    assert sorted(real.changed_tasks()) == sorted([ROLLOUT] * 2)
    for diff in rollout_diffs(check).values():
        assert diff["after"] == "" and "jump table jt slot 6 -> tcp_handler" in diff["before"]
    for h in hosts:
        state = host_state(h)
        assert state["pins"] == {}, state["pins"]
        assert all(hook == {} for hook in state["hooks"].values()) and state["files"] == {}
    check, real = scenario(hosts, tmp_path, xdp_state="absent")
    assert real.changed_tasks() == [] and check.changed_tasks() == []
