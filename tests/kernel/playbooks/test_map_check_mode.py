"""Check mode of a playbook that loads an object and then sets the contents of its maps (xdp_map), against
namespaced hosts: ``--check --diff`` changes nothing (pins, files, and the maps' contents as bpftool dumps
them), predicts the real run task by task (``assert_check_predicts``), and a map's diff is the real run's.

Scenarios, in order on the same host: fresh host (xdp_map plans on the maps xdp_load would create: a hash
of structs, empty, and an array, zeros), rerun, changed entries, an incompatible map replaced (its entries
are written again, the array the load keeps is not), teardown with xdp_map before and after the unload,
teardown again. And: a bad entry for a map a load would create fails in check mode naming entry and field,
as the real run then does, and check mode leaves the host as it was.
"""

from __future__ import annotations

import json
import struct
import subprocess

from tests.kernel.modules.test_xdp_map_whistler import SOURCE as PORT_FILTER
from tests.kernel.playbooks.checkreal import (
    assert_check_predicts,
    check_then_real,
    host_state,
    run_playbook,
    write_inventory,
)

# The port filter of test_xdp_map_whistler (a hash of struct rules), with an array of limits beside it.
SOURCE = PORT_FILTER + "\n(defmap limits :type :array :key-size 4 :value-size 8 :max-entries 4)\n"
assert SOURCE.count(":max-entries 64)") == 1


ROLLOUT = """
- name: Load the filter and configure it
  hosts: xdp_hosts
  gather_facts: false
  tasks:
    - name: Compile the filter and deliver the object
      whistler.xdp.xdp_compile:
        src: "{{ xdp_source }}"
        dest: "{{ xdp_file_dir }}/filter.bpf.o"
        mode: "0644"
    - name: Load the filter
      whistler.xdp.xdp_load:
        object: "{{ xdp_file_dir }}/filter.bpf.o"
        pin_path: "{{ xdp_pin_path }}"
        replace_incompatible_maps: true
    - name: Set the rules
      whistler.xdp.xdp_map:
        map: "{{ xdp_pin_path }}/maps/rules"
        entries: "{{ xdp_rules }}"
        exclusive: true
    - name: Set the limits
      whistler.xdp.xdp_map:
        map: "{{ xdp_pin_path }}/maps/limits"
        entries: "{{ xdp_limits }}"
"""

TEARDOWN = """
- name: Tear the filter down
  hosts: xdp_hosts
  gather_facts: false
  tasks:
    - name: Clear the limits
      whistler.xdp.xdp_map:
        map: "{{ xdp_pin_path }}/maps/limits"
        exclusive: true
        state: absent
    - name: Unload the filter
      whistler.xdp.xdp_load:
        object: "{{ xdp_file_dir }}/filter.bpf.o"
        pin_path: "{{ xdp_pin_path }}"
        state: absent
    - name: Remove the rules
      whistler.xdp.xdp_map:
        map: "{{ xdp_pin_path }}/maps/rules"
        entries:
          - key: {port: 22, proto: 6, pad: 0}
        state: absent
"""

COMPILE, LOAD, RULES, LIMITS = ("Compile the filter and deliver the object", "Load the filter", "Set the rules",
                                "Set the limits")
CLEAR, UNLOAD, REMOVE = "Clear the limits", "Unload the filter", "Remove the rules"


def label(text: str) -> list:
    """A ``(array u8 8)`` field as the map's BTF reads it: a list of 8 bytes."""
    return list(text.encode().ljust(8, b"\0"))


SSH = {"key": {"port": 22, "proto": 6, "pad": 0}, "value": {"action": 1, "hits": 0, "label": label("ssh")}}
DNS = {"key": {"port": 53, "proto": 17, "pad": 0}, "value": {"action": 0, "hits": 0, "label": label("dns")}}
HTTP = {"key": {"port": 80, "proto": 6, "pad": 0}, "value": {"action": 1, "hits": 0, "label": label("http")}}


def rule_bytes(rule) -> tuple:
    key, value = rule["key"], rule["value"]
    return (struct.pack("<HBB", key["port"], key["proto"], key["pad"]),
            struct.pack("<II8B", value["action"], value["hits"], *value["label"]))


def dump(path: str) -> dict:
    """{raw key: raw value} of the map pinned at ``path``, as bpftool reads it (None: nothing pinned)."""
    proc = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", path], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return None
    return {bytes(int(b, 16) for b in e["key"]): bytes(int(b, 16) for b in e["value"]) for e in json.loads(proc.stdout)}


class Host:
    """One namespaced host, its inventory, the source versions and playbooks of a test."""

    def __init__(self, xdp_hosts, tmp_path):
        self.host = xdp_hosts(1)[0]
        self.tmp_path = tmp_path
        self.inventory = write_inventory(tmp_path / "inventory.yml", [self.host])
        self.rollout, self.teardown = tmp_path / "rollout.yml", tmp_path / "teardown.yml"
        self.rollout.write_text(ROLLOUT)
        self.teardown.write_text(TEARDOWN)

    def source(self, rules_max: int = 64) -> str:
        path = self.tmp_path / f"filter-{rules_max}.lisp"
        path.write_text(SOURCE.replace(":max-entries 64)", f":max-entries {rules_max})"))
        return str(path)

    def maps(self) -> dict:
        return {name: dump(f"{self.host.pin_path}/maps/{name}") for name in ("rules", "limits")}

    def state(self) -> dict:
        return dict(host_state(self.host), maps=self.maps())

    def check_then_real(self, playbook, extra_vars=None):
        return check_then_real(playbook, self.inventory, self.state, extra_vars)


def changed(run) -> dict:
    return {r.task: r.changed for r in run.results}


def diff_of(run, task) -> dict:
    found = [r.diff for r in run.results if r.task == task]
    assert len(found) == 1 and isinstance(found[0], dict) and "before" in found[0], found
    return found[0]


def config(source, rules, limits) -> dict:
    return {"xdp_source": source, "xdp_rules": rules, "xdp_limits": limits}


def test_maps_set_after_a_load_are_predicted_by_check_mode(xdp_hosts, tmp_path):
    h = Host(xdp_hosts, tmp_path)
    v64, v128 = h.source(64), h.source(128)

    # Fresh host: the maps exist only in xdp_load's plan; xdp_map plans on them as the kernel creates them.
    check, real = h.check_then_real(h.rollout, config(v64, [SSH, DNS], {"0": 100, "2": 7}))
    assert changed(check) == {COMPILE: True, LOAD: True, RULES: True, LIMITS: True}
    for task in (RULES, LIMITS):
        assert diff_of(check, task) == diff_of(real, task), task
    rules = diff_of(check, RULES)
    assert list(rules["before"].values()) == [None, None] and len(rules["after"]) == 2
    assert SSH["value"] in rules["after"].values()
    assert diff_of(check, LIMITS) == {"before": {"0": 0, "2": 0}, "after": {"0": 100, "2": 7}}
    maps = h.maps()
    assert maps["rules"] == dict(rule_bytes(r) for r in (SSH, DNS))
    assert maps["limits"] == {struct.pack("<I", i): struct.pack("<Q", v) for i, v in enumerate((100, 0, 7, 0))}
    loaded = h.state()["pins"]

    # Rerun: nothing to do, and check mode says so.
    check, real = h.check_then_real(h.rollout, config(v64, [SSH, DNS], {"0": 100, "2": 7}))
    assert changed(real) == changed(check) == {COMPILE: False, LOAD: False, RULES: False, LIMITS: False}

    # Changed entries: one rule changed, one replaced (exclusive), one limit changed; the maps are kept.
    dns_drop = {**DNS, "value": {**DNS["value"], "action": 1}}
    check, real = h.check_then_real(h.rollout, config(v64, [dns_drop, HTTP], {"0": 100, "2": 8}))
    assert changed(check) == {COMPILE: False, LOAD: False, RULES: True, LIMITS: True}
    assert diff_of(check, RULES) == diff_of(real, RULES)
    assert diff_of(check, LIMITS) == {"before": {"0": 100, "2": 7}, "after": {"0": 100, "2": 8}}
    assert h.maps()["rules"] == dict(rule_bytes(r) for r in (dns_drop, HTTP))
    assert h.state()["pins"] == loaded

    # An incompatible rules map (max_entries 128): the load replaces it, so its entries are written again
    # into the new, empty map; the limits array is kept with its contents, so that task has nothing to do.
    check, real = h.check_then_real(h.rollout, config(v128, [dns_drop, HTTP], {"0": 100, "2": 8}))
    assert changed(check) == {COMPILE: True, LOAD: True, RULES: True, LIMITS: False}
    assert set(diff_of(check, RULES)["before"].values()) == {None} and diff_of(check, RULES) == diff_of(real, RULES)
    state = h.state()
    assert state["pins"]["maps/rules"][1] != loaded["maps/rules"][1]
    assert state["pins"]["maps/limits"] == loaded["maps/limits"]
    assert state["maps"]["rules"] == dict(rule_bytes(r) for r in (dns_drop, HTTP))

    # Teardown: clear the array, unload, then remove a rule from the map the unload removed: nothing to do.
    check, real = h.check_then_real(h.teardown, {})
    assert changed(check) == {CLEAR: True, UNLOAD: True, REMOVE: False}
    assert diff_of(check, CLEAR) == {"before": {"0": 100, "2": 8}, "after": {"0": 0, "2": 0}}
    state = h.state()
    assert state["pins"] == {} and state["maps"] == {"rules": None, "limits": None}

    # Teardown again: nothing is pinned, so both xdp_map tasks are ok, in check mode and for real.
    check, real = h.check_then_real(h.teardown, {})
    assert changed(real) == changed(check) == {CLEAR: False, UNLOAD: False, REMOVE: False}


def test_a_bad_entry_for_a_map_the_run_would_create_fails_in_check_mode(xdp_hosts, tmp_path):
    h = Host(xdp_hosts, tmp_path)
    bad = [SSH, {**DNS, "value": {**DNS["value"], "action": 1 << 32, "colour": "red"}}]
    extra = config(h.source(), bad, {"0": 1})
    before = h.state()
    check = run_playbook(h.rollout, h.inventory, check=True, diff=True, extra_vars=extra)
    assert check.rc != 0
    assert h.state() == before, "check mode changed the host"
    statuses = [(r.task, r.status) for r in check.results]
    assert statuses == [(COMPILE, "changed"), (LOAD, "changed"), (RULES, "failed")]
    failed = check.results[-1].msg
    assert "entries[1].value.action: 4294967296 is greater than the maximum of 4294967295" in failed, failed
    assert "entries[1].value: Additional properties are not allowed ('colour' was unexpected)" in failed, failed
    assert "entries[0]" not in failed

    real = run_playbook(h.rollout, h.inventory, extra_vars=extra)
    assert_check_predicts(check, real)
    assert real.results[-1].msg == failed
    assert h.maps() == {"rules": {}, "limits": {struct.pack("<I", i): bytes(8) for i in range(4)}}
