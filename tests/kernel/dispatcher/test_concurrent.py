"""Concurrent runs on one host take turns (``pins.locked`` on the pin path): two module processes rolling
different versions out at the same instant both succeed, one after the other, and leave one consistent
rollout (the later run's version live, the earlier one's as the previous generation, nothing half made)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.kernel.dispatcher.conftest import dispatcher_args, pinned_state

REPO = Path(__file__).resolve().parents[3]
MODULE = REPO / "plugins" / "modules" / "xdp_dispatcher.py"


def start(args, tmp_path, name):
    """The module as Ansible runs it: a separate Python process reading its arguments from a file."""
    args_file = tmp_path / f"{name}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests" / "output" / ".collection"))
    return subprocess.Popen([sys.executable, str(MODULE), str(args_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_two_runs_at_once_take_turns(xdp_hosts, objects, run_module, tmp_path):
    host = xdp_hosts(1, interfaces=2)[0]
    runs = [start(dispatcher_args(host, objects(v)), tmp_path, v) for v in ("v1", "v2")]
    results = []
    for proc in runs:
        out, err = proc.communicate(timeout=120)
        results.append(json.loads(out or "{}") or {"failed": True, "msg": err})
    assert not any(r.get("failed") for r in results), results
    assert sorted(r["generation"]["live"] for r in results) == [1, 2]
    first, second = sorted(results, key=lambda r: r["generation"]["live"])
    assert first["generation"]["before"] is None and second["generation"]["before"] == 1
    state = pinned_state(host)
    live = second["programs"]["xdp_dispatch"]["id"]
    assert state["hooks"]["veth0"] == state["hooks"]["veth2"] == {"generic": live}
    assert state["pins"]["gen/current"] == ("symlink", "2") and state["pins"]["gen/previous"] == ("symlink", "1")
    assert not [p for p in state["pins"] if "_whistler_tmp_" in p]
    later = ("v1", "v2")[results.index(second)]
    earlier = ("v1", "v2")[results.index(first)]
    assert run_module("xdp_dispatcher", dispatcher_args(host, objects(later)), check=True)["changed"] is False
    back = run_module("xdp_dispatcher", dispatcher_args(host, objects(earlier)), check=True)
    assert back["changed"] is True and back["generation"]["new"] is False and back["generation"]["live"] == 1
    assert pinned_state(host) == state
