"""Playbooks against namespaced XDP hosts: run ``--check --diff``, then for real, and compare task by task.

In: a playbook, an inventory of ``XdpHost``s (``write_inventory``), extra vars.
Out:
- ``run_playbook(...) -> PlaybookRun``: every task result in order (recorded by the test-only callback
  ``callback_plugins/whistler_record.py``), the exit status and the output;
- ``host_state(host)``: what the host holds, as bpftool and iproute2 see it (independent of the
  collection's loader): every pin under its pin directory (kind, id, kernel tag, map type; a symlink
  as its target),
  every prog-array slot (-> program id), the XDP hook of each of its interfaces and the sha256
  of every file under its file directory;
- ``assert_check_predicts(check, real)``: fails, with a table of the tasks that disagree, when the
  check run reported another ``changed`` (or failed where the real run did not) for any task;
- ``check_then_real(playbook, inventory, state)``: the scenario below in one call.

A scenario then reads::

    before = host_state(host)
    check = run_playbook(pb, inv, check=True, diff=True)
    assert host_state(host) == before            # check mode changed nothing
    real = run_playbook(pb, inv)
    assert_check_predicts(check, real)            # and predicted every task's outcome

An ``XdpHost`` is one managed "host" on this machine: a network namespace holding its XDP
interfaces (veth0, veth2, ...), a peer namespace holding their other ends (veth1, veth3, ...) to send
traffic from, its own bpffs pin directory and its own file directory; connection local.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import yaml

REPO = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO / "tests" / "output" / ".collection"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
_IP_XDP_MODES = {1: "native", 2: "generic", 3: "offload"}


@dataclass
class XdpHost:
    name: str
    netns: str                      # holds the XDP interfaces
    peer_netns: str                 # holds their peers (traffic source)
    interfaces: List[str]           # in netns: veth0, veth2, ...
    peers: List[str]                # in peer_netns: veth1, veth3, ... (same order)
    addresses: List[str]            # address of each interface (its peer has .2 instead of .1)
    pin_path: str                   # this host's bpffs directory (absent until something creates it)
    file_dir: Path                  # this host's directory for delivered files
    vars: Dict[str, object] = field(default_factory=dict)   # extra host vars for the inventory

    def peer_address(self, i: int) -> str:
        return self.addresses[i].rsplit(".", 1)[0] + ".2"


def write_inventory(path: Path, hosts: List[XdpHost], **group_vars) -> Path:
    """An inventory with every host under group ``xdp_hosts``, connection local, this Python."""
    inventory = {"all": {
        "vars": dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                     **group_vars),
        "children": {"xdp_hosts": {"hosts": {
            h.name: dict({"xdp_netns": h.netns, "xdp_peer_netns": h.peer_netns,
                          "xdp_pin_path": h.pin_path, "xdp_file_dir": str(h.file_dir)}, **h.vars)
            for h in hosts}}},
    }}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


# -- running playbooks ---------------------------------------------------------------------------

@dataclass
class TaskResult:
    play: str
    task: str
    path: str
    host: str
    status: str                      # ok, changed, failed, ignored, skipped, unreachable
    changed: bool
    items: List[bool]
    diff: object
    msg: Optional[str]

    @property
    def key(self):
        return (self.host, self.play, self.path, self.task)


@dataclass
class PlaybookRun:
    results: List[TaskResult]
    rc: int
    output: str

    def changed_tasks(self, host: Optional[str] = None) -> List[str]:
        return [r.task for r in self.results if r.changed and (host is None or r.host == host)]

    def recap(self) -> str:
        return "\n".join(f"  {r.host:10} {r.status:9} {r.task}" for r in self.results)


def run_playbook(playbook: Path, inventory: Path, *, check: bool = False, diff: bool = False,
                 extra_vars: Optional[dict] = None, limit: Optional[str] = None, forks: int = 5,
                 env: Optional[dict] = None, timeout: int = 900) -> PlaybookRun:
    """``ansible-playbook`` with this repository as collection whistler.xdp; results recorded per task."""
    record = inventory.with_name(f"{inventory.stem}-{os.getpid()}-{len(_RUNS)}.record.jsonl")
    _RUNS.append(record)
    record.unlink(missing_ok=True)
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(playbook),
            "--forks", str(forks)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if limit:
        argv += ["--limit", limit]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    run_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
                   ANSIBLE_CALLBACKS_ENABLED="whistler_record", WHISTLER_RECORD_FILE=str(record),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", **(env or {}))
    proc = subprocess.run(argv, capture_output=True, text=True, env=run_env, timeout=timeout,
                          cwd=str(playbook.parent), check=False)
    results = []
    if record.exists():
        results = [TaskResult(**json.loads(line)) for line in record.read_text().splitlines() if line.strip()]
    return PlaybookRun(results, proc.returncode, proc.stdout + proc.stderr)


_RUNS: List[Path] = []


def assert_check_predicts(check: PlaybookRun, real: PlaybookRun) -> None:
    """The check run reported, task by task and host by host, what the real run then did."""
    assert real.results, f"the real run ran no task at all (rc {real.rc}):\n{real.output[-3000:]}"
    assert check.results, f"the check run ran no task at all (rc {check.rc}):\n{check.output[-3000:]}"
    problems = []
    real_by_key = {}
    for r in real.results:
        real_by_key.setdefault(r.key, []).append(r)
    check_by_key = {}
    for c in check.results:
        check_by_key.setdefault(c.key, []).append(c)
    for key in list(dict.fromkeys([*check_by_key, *real_by_key])):
        cs, rs = check_by_key.get(key, []), real_by_key.get(key, [])
        if len(cs) != len(rs):
            problems.append(f"{key[0]} {key[3]!r} ({key[2]}): ran {len(cs)}x in check mode, {len(rs)}x for real")
            continue
        for c, r in zip(cs, rs):
            if r.status in ("failed", "unreachable") and c.status not in ("failed", "unreachable"):
                problems.append(f"{key[0]} {key[3]!r}: the real run failed ({r.msg}) where check mode predicted "
                                f"{c.status}")
            elif c.status in ("failed", "unreachable") and r.status not in ("failed", "unreachable"):
                problems.append(f"{key[0]} {key[3]!r}: check mode failed ({c.msg}) where the real run was {r.status}")
            elif c.changed != r.changed or (c.items and r.items and c.items != r.items):
                problems.append(f"{key[0]} {key[3]!r} ({key[2]}): check mode said changed={c.changed} "
                                f"{c.items or ''}, the real run changed={r.changed} {r.items or ''}")
    assert not problems, ("check mode did not predict the real run:\n  " + "\n  ".join(problems)
                          + f"\ncheck run:\n{check.recap()}\nreal run:\n{real.recap()}")


def check_then_real(playbook: Path, inventory: Path, state, extra_vars: Optional[dict] = None):
    """``(check, real)``: ``--check --diff``, which must succeed and leave ``state()`` as it was, then the
    real run (with ``--diff``), which must succeed and be what the check run predicted, task by task."""
    before = state()
    check = run_playbook(playbook, inventory, check=True, diff=True, extra_vars=extra_vars)
    assert check.rc == 0, check.output[-6000:]
    assert state() == before, "check mode changed a host"
    real = run_playbook(playbook, inventory, diff=True, extra_vars=extra_vars)
    assert real.rc == 0, real.output[-6000:]
    assert_check_predicts(check, real)
    assert len(check.results) == len(real.results) > 0
    return check, real


# -- the host's state, as bpftool and iproute2 see it -----------------------------------------

def _bpftool(*argv: str):
    out = subprocess.run(["bpftool", "-j", *argv], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else None


def _slots(path: str) -> Dict[int, int]:
    return {int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"):
            int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
            for e in _bpftool("map", "dump", "pinned", path) or []}


def _pin(path: str):
    for kind in ("prog", "map", "link"):
        proc = subprocess.run(["bpftool", "-j", kind, "show", "pinned", path], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            info = json.loads(proc.stdout)
            if kind == "prog":
                return ("prog", info["id"], info.get("tag"), info.get("name"))
            if kind == "map":
                slots = _slots(path) if info.get("type") == "prog_array" else None
                return ("map", info["id"], info.get("type"), info.get("name"), slots)
            return ("link", info["id"], info.get("prog_id"))
    return ("unknown",)


def _hooks(netns: str) -> Dict[str, Dict[str, int]]:
    out = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "ip", "-j", "link", "show"], check=True,
                         capture_output=True, text=True).stdout
    hooks = {}
    for link in json.loads(out):
        xdp = link.get("xdp", {})
        hooks[link["ifname"]] = {_IP_XDP_MODES.get(a["mode"], str(a["mode"])): a["prog"]["id"]
                                 for a in xdp.get("attached", [])}
    return hooks


def host_state(host: XdpHost) -> dict:
    """Pins (relative path -> kind, id, tag/type, name, slots), hooks and file digests of ``host``."""
    pins = {}
    if os.path.isdir(host.pin_path):
        for root, dirs, files in os.walk(host.pin_path):
            rel = os.path.relpath(root, host.pin_path)
            pins[rel + "/"] = ("dir",)
            for name in files:
                pins[os.path.normpath(os.path.join(rel, name))] = _pin(os.path.join(root, name))
            for name in dirs:  # a symlink to a directory (not followed): where it points
                if os.path.islink(os.path.join(root, name)):
                    pins[os.path.normpath(os.path.join(rel, name))] = ("symlink", os.readlink(os.path.join(root, name)))
    files = {}
    if host.file_dir.is_dir():
        for p in sorted(host.file_dir.rglob("*")):
            if p.is_file():
                files[str(p.relative_to(host.file_dir))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return {"pins": pins, "hooks": _hooks(host.netns), "files": files}
