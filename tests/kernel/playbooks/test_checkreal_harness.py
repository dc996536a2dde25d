"""The check==real harness itself: it sees what a task really did, and it catches a check run that lies.

Uses only ansible.builtin modules on a namespaced host, so a failure here is the harness's, not the
collection's. ``command`` with ``creates`` predicts itself in check mode; ``command`` with
``changed_when: true`` is skipped in check mode and so lies about the real run.
"""

from __future__ import annotations

import pytest

from tests.kernel.playbooks.checkreal import assert_check_predicts, host_state, run_playbook, write_inventory

PLAYBOOK = """
- hosts: xdp_hosts
  gather_facts: false
  tasks:
    - name: Create a marker once
      ansible.builtin.command:
        argv: [touch, "{{ xdp_file_dir }}/marker"]
        creates: "{{ xdp_file_dir }}/marker"
    - name: Pin a directory on bpffs once
      ansible.builtin.file:
        path: "{{ xdp_pin_path }}"
        state: directory
        mode: "0700"
%s
"""

LYING_TASK = """
    - name: Always change, but be skipped in check mode
      ansible.builtin.command:
        argv: ["true"]
      changed_when: true
"""


def test_a_truthful_playbook_is_predicted_and_check_mode_changes_nothing(xdp_hosts, tmp_path):
    hosts = xdp_hosts(2)
    inventory = write_inventory(tmp_path / "inv.yml", hosts)
    playbook = tmp_path / "pb.yml"
    playbook.write_text(PLAYBOOK % "")
    before = {h.name: host_state(h) for h in hosts}
    check = run_playbook(playbook, inventory, check=True, diff=True)
    assert {h.name: host_state(h) for h in hosts} == before
    real = run_playbook(playbook, inventory)
    assert real.rc == 0, real.output
    assert_check_predicts(check, real)
    assert sorted(real.changed_tasks()) == sorted(["Create a marker once", "Pin a directory on bpffs once"] * 2)
    for h in hosts:
        state = host_state(h)
        assert list(state["files"]) == ["marker"]
        assert state["pins"] == {"./": ("dir",)}
        assert state["hooks"] == {"lo": {}, "veth0": {}}
    rerun_check = run_playbook(playbook, inventory, check=True)
    rerun = run_playbook(playbook, inventory)
    assert_check_predicts(rerun_check, rerun)
    assert rerun.changed_tasks() == []


def test_a_check_run_that_lies_is_caught(xdp_hosts, tmp_path):
    hosts = xdp_hosts(1)
    inventory = write_inventory(tmp_path / "inv.yml", hosts)
    playbook = tmp_path / "pb.yml"
    playbook.write_text(PLAYBOOK % LYING_TASK)
    check = run_playbook(playbook, inventory, check=True)
    real = run_playbook(playbook, inventory)
    with pytest.raises(AssertionError, match="Always change, but be skipped in check mode"):
        assert_check_predicts(check, real)
