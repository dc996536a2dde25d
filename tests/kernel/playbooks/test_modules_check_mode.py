"""Check mode of a rollout written with the modules one by one (compile, load, wire, attach) and of its
teardown, against namespaced hosts: for every scenario ``--check --diff`` changes nothing on the host,
predicts the real run task by task (``assert_check_predicts``), and its diff names what will change
(programs with their old and new tags, slots with their programs, interfaces with program and mode).

Scenarios, in order on the same two hosts: fresh host, rerun, one handler changed, an interface added,
teardown, teardown again; and a teardown of a host that never had the rollout.
"""

from __future__ import annotations

import json
import re

from ansible_collections.whistler.xdp.plugins.plugin_utils._compile import compile_to_json

from tests.conftest import seed_source
from tests.kernel.playbooks.checkreal import check_then_real, host_state, write_inventory

ROLLOUT = """
- name: Roll out the tail-call dispatcher with the modules
  hosts: xdp_hosts
  gather_facts: false
  tasks:
    - name: Compile the dispatcher and deliver the object
      whistler.xdp.xdp_compile:
        src: "{{ xdp_source }}"
        dest: "{{ xdp_file_dir }}/tcd.bpf.o"
        mode: "0644"
    - name: Load the programs and pin them
      whistler.xdp.xdp_load:
        object: "{{ xdp_file_dir }}/tcd.bpf.o"
        pin_path: "{{ xdp_pin_path }}"
    - name: Wire the jump table
      whistler.xdp.xdp_prog_array:
        map: "{{ xdp_pin_path }}/maps/jt"
        entries:
          6: "{{ xdp_pin_path }}/tcp_handler"
          17: "{{ xdp_pin_path }}/udp_handler"
        exclusive: true
    - name: Attach the dispatcher
      whistler.xdp.xdp_attach:
        interface: "{{ item }}"
        netns: "{{ xdp_netns }}"
        program: "{{ xdp_pin_path }}/xdp_dispatch"
        mode: generic
      loop: "{{ xdp_interfaces }}"
"""

TEARDOWN = """
- name: Tear the dispatcher down with the modules
  hosts: xdp_hosts
  gather_facts: false
  tasks:
    - name: Detach the dispatcher
      whistler.xdp.xdp_attach:
        interface: "{{ item }}"
        netns: "{{ xdp_netns }}"
        program: "{{ xdp_pin_path }}/xdp_dispatch"
        state: absent
      loop: "{{ xdp_interfaces }}"
    - name: Empty the jump table
      whistler.xdp.xdp_prog_array:
        map: "{{ xdp_pin_path }}/maps/jt"
        exclusive: true
        state: absent
    - name: Unload the programs and maps
      whistler.xdp.xdp_load:
        object: "{{ xdp_file_dir }}/tcd.bpf.o"
        pin_path: "{{ xdp_pin_path }}"
        state: absent
    - name: Remove the object
      ansible.builtin.file:
        path: "{{ xdp_file_dir }}/tcd.bpf.o"
        state: absent
"""

COMPILE, LOAD, WIRE, ATTACH = ("Compile the dispatcher and deliver the object", "Load the programs and pin them",
                               "Wire the jump table", "Attach the dispatcher")
DETACH, EMPTY, UNLOAD, REMOVE = ("Detach the dispatcher", "Empty the jump table", "Unload the programs and maps",
                                 "Remove the object")


def changed_handler(source: str) -> str:
    """The seed with one handler changed: the TCP handler counts every packet twice."""
    old = "(incf (getmap proto-stats +stat-tcp+))"
    assert source.count(old) == 1
    return source.replace(old, old + "\n  " + old)


def tags(source: str) -> dict:
    """Program name -> the kernel tag the compiler predicts for it."""
    compiled = compile_to_json(source, "seed.lisp")
    return {p["name"]: p["tag"] for p in compiled["programs"]}


class Fleet:
    """The hosts, their inventory and the playbooks of one test."""

    def __init__(self, hosts, tmp_path):
        self.hosts, self.tmp_path = hosts, tmp_path
        self.rollout = tmp_path / "rollout.yml"
        self.rollout.write_text(ROLLOUT)
        self.teardown = tmp_path / "teardown.yml"
        self.teardown.write_text(TEARDOWN)
        self.inventory = tmp_path / "inventory.yml"
        self.write_inventory()

    def write_inventory(self):
        for host in self.hosts:
            host.vars["xdp_interfaces"] = list(host.interfaces)
        write_inventory(self.inventory, self.hosts)

    def source(self, text: str, name: str):
        path = self.tmp_path / name
        path.write_text(text)
        return {"xdp_source": str(path)}

    def states(self):
        return {host.name: host_state(host) for host in self.hosts}

    def check_then_real(self, playbook, extra_vars=None):
        return check_then_real(playbook, self.inventory, self.states, extra_vars)


def changed(run, host) -> dict:
    """Task name -> changed (with per-item flags for loops) for one host."""
    return {r.task: (r.changed, r.items) for r in run.results if r.host == host.name}


def diff_of(run, host, task):
    """The diffs a task reported for a host, as one list (a loop gives one per item)."""
    found = [r.diff for r in run.results if r.host == host.name and r.task == task]
    assert len(found) == 1, f"{task} ran {len(found)} times on {host.name}"
    diffs = found[0] if isinstance(found[0], list) else [found[0]]
    assert diffs and all(isinstance(d, dict) and "before" in d for d in diffs), found
    return diffs


def words(diff, side):
    """One side of a diff as the text an operator reads."""
    return json.dumps(diff[side], sort_keys=True)


def test_rollout_and_teardown_are_predicted_by_check_mode(xdp_hosts, add_interface, tmp_path):
    hosts = xdp_hosts(2)
    fleet = Fleet(hosts, tmp_path)
    v1_text, v2_text = seed_source(), changed_handler(seed_source())
    v1, v2 = fleet.source(v1_text, "v1.lisp"), fleet.source(v2_text, "v2.lisp")
    t1, t2 = tags(v1_text), tags(v2_text)
    assert t1["tcp_handler"] != t2["tcp_handler"] and t1["udp_handler"] == t2["udp_handler"]
    assert t1["xdp_dispatch"] == t2["xdp_dispatch"]

    # Fresh host: every step changes; check mode plans load, wire and attach on what compile would deliver.
    check, real = fleet.check_then_real(fleet.rollout, v1)
    for host in hosts:
        assert changed(check, host) == {COMPILE: (True, []), LOAD: (True, []), WIRE: (True, []),
                                        ATTACH: (True, [True])}
        load = diff_of(check, host, LOAD)[0]
        assert load["before"][f"{host.pin_path}/tcp_handler"] is None
        assert load["after"][f"{host.pin_path}/tcp_handler"] == f"tcp_handler (tag {t1['tcp_handler']}, new)"
        assert load["after"][f"{host.pin_path}/maps/jt"] == "jt (prog_array, new)"
        wire = diff_of(check, host, WIRE)[0]
        assert wire == {"before": {"slots": {}},
                        "after": {"slots": {"6": f"tcp_handler (tag {t1['tcp_handler']}, new)",
                                            "17": f"udp_handler (tag {t1['udp_handler']}, new)"}}}
        attach = diff_of(check, host, ATTACH)[0]
        assert attach == {"before": {"veth0": None},
                          "after": {"veth0": f"xdp_dispatch (tag {t1['xdp_dispatch']}, new) in generic mode"}}
        state = host_state(host)
        assert set(state["hooks"]["veth0"]) == {"generic"}
        assert sorted(state["pins"]["maps/jt"][4]) == [6, 17]

    # Rerun: nothing to do, and check mode says so.
    check, real = fleet.check_then_real(fleet.rollout, v1)
    assert real.changed_tasks() == [] and check.changed_tasks() == []

    # One handler changed: compile, load and wire change; the dispatcher's tag is the same, so attach does not.
    v1_state = fleet.states()
    check, real = fleet.check_then_real(fleet.rollout, v2)
    for host in hosts:
        assert changed(check, host) == {COMPILE: (True, []), LOAD: (True, []), WIRE: (True, []),
                                        ATTACH: (False, [False])}
        old_tcp = v1_state[host.name]["pins"]["tcp_handler"]
        assert old_tcp[2] == t1["tcp_handler"]
        load = diff_of(check, host, LOAD)[0]
        tcp_pin = f"{host.pin_path}/tcp_handler"
        assert load["before"][tcp_pin] == f"tcp_handler (tag {t1['tcp_handler']}, id {old_tcp[1]})"
        assert load["after"][tcp_pin] == f"tcp_handler (tag {t2['tcp_handler']}, new)"
        udp_pin = f"{host.pin_path}/udp_handler"
        assert load["before"][udp_pin] == load["after"][udp_pin]
        wire = diff_of(check, host, WIRE)[0]
        assert wire["before"]["slots"]["6"] == f"tcp_handler (tag {t1['tcp_handler']}, id {old_tcp[1]})"
        assert wire["after"]["slots"]["6"] == f"tcp_handler (tag {t2['tcp_handler']}, new)"
        assert wire["before"]["slots"]["17"] == wire["after"]["slots"]["17"]
        real_wire = diff_of(real, host, WIRE)[0]
        new_tcp = host_state(host)["pins"]["tcp_handler"]
        assert real_wire["after"]["slots"]["6"] == f"tcp_handler (tag {t2['tcp_handler']}, id {new_tcp[1]})"

    # An interface added: only its attachment changes.
    for host in hosts:
        add_interface(host)
    fleet.write_inventory()
    check, real = fleet.check_then_real(fleet.rollout, v2)
    for host in hosts:
        assert changed(check, host) == {COMPILE: (False, []), LOAD: (False, []), WIRE: (False, []),
                                        ATTACH: (True, [False, True])}
        dispatcher = host_state(host)["pins"]["xdp_dispatch"]
        attach = diff_of(check, host, ATTACH)
        assert attach[1] == {"before": {"veth2": None}, "after": {
            "veth2": f"xdp_dispatch (tag {t2['xdp_dispatch']}, id {dispatcher[1]}) in generic mode"}}
        assert host_state(host)["hooks"]["veth2"] == {"generic": dispatcher[1]}

    # Teardown: detach, empty, unload, remove; check mode sees the detach before the unload.
    rolled_out = fleet.states()
    check, real = fleet.check_then_real(fleet.teardown)
    for host in hosts:
        assert changed(check, host) == {DETACH: (True, [True, True]), EMPTY: (True, []), UNLOAD: (True, []),
                                        REMOVE: (True, [])}
        dispatcher = rolled_out[host.name]["pins"]["xdp_dispatch"]
        detach = diff_of(check, host, DETACH)
        assert [d["before"] for d in detach] == [
            {ifname: f"xdp_dispatch (tag {t2['xdp_dispatch']}, id {dispatcher[1]}) in generic mode"}
            for ifname in ("veth0", "veth2")]
        assert [d["after"] for d in detach] == [{"veth0": None}, {"veth2": None}]
        # The unload's diff (pins, and the directories it leaves empty) is the real run's.
        unload = diff_of(check, host, UNLOAD)[0]
        assert unload == diff_of(real, host, UNLOAD)[0]
        assert f"{host.pin_path}/xdp_dispatch" in unload["before"]["pins"] and unload["after"]["pins"] == []
        assert unload["before"]["directories"] == sorted([host.pin_path, f"{host.pin_path}/maps"])
        empty = diff_of(check, host, EMPTY)[0]
        assert empty["after"] == {"slots": {}}
        assert re.fullmatch(r"tcp_handler \(tag [0-9a-f]{16}, id \d+\)", empty["before"]["slots"]["6"])
        state = host_state(host)
        assert state["pins"] == {} and state["files"] == {}
        assert all(hook == {} for hook in state["hooks"].values())

    # Teardown again: nothing left to do.
    check, real = fleet.check_then_real(fleet.teardown)
    assert real.changed_tasks() == [] and check.changed_tasks() == []


def test_teardown_of_a_host_that_never_had_the_rollout(xdp_hosts, tmp_path):
    hosts = xdp_hosts(1)
    fleet = Fleet(hosts, tmp_path)
    check, real = fleet.check_then_real(fleet.teardown)
    assert real.changed_tasks() == [] and check.changed_tasks() == []
    assert fleet.states()[hosts[0].name]["pins"] == {}
