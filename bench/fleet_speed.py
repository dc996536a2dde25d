"""Rollout speed, side by side with a one-task ``ping`` play on the same hosts, in one run.

In: how many hosts, forks and repetitions. Out: a markdown table on stdout, each figure next to the ping
play's, with the ratio and the load average seen while it ran.

    sudo .venv/bin/python bench/fleet_speed.py                   # both parts below
    sudo .venv/bin/python bench/fleet_speed.py --single --runs 7 # one host only
    sudo .venv/bin/python bench/fleet_speed.py --fleet --hosts 50 --forks 10

- ``--single``: one namespaced host. The role's rerun with nothing to change (a play with the role
  whistler.xdp.tail_call_dispatch, after a first rollout) and a one-task ``ansible.builtin.ping`` play, run
  alternately (A B A B ...) so that both
  see the same machine; the median of each and the median of the pairwise ratios.
- ``--fleet``: ``--hosts`` namespaced hosts, ``--forks`` forks: the ping play, the first rollout (a fresh
  fleet) and the rerun (nothing to change), each next to a ping play run just before it.
A role run that does not change every host (first rollout) or changes any (rerun) stops the benchmark.

Every host is a network namespace with a veth pair (generic XDP on veth0), its own bpffs pin directory and
object path, as in examples/playbooks/inventory/fleet.yml; connection local, this Python. Names start with
``--prefix`` (netns ``<prefix>-<rand>-<n>``, pins ``/sys/fs/bpf/<prefix>-<rand>-<n>``); everything is
removed afterwards, also on failure. Needs root. Times are whole ``ansible-playbook`` processes
(``time.perf_counter`` around each), start-up included, as an operator sees them; CPU seconds are the
user + system time of each run's whole process tree (``getrusage(RUSAGE_CHILDREN)``), which other load on
the machine does not inflate.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PLAYBOOK_BIN = str(Path(PYTHON).with_name("ansible-playbook"))

ROLE = """
- name: Roll the dispatcher out
  hosts: fleet
  gather_facts: false
  roles:
    - role: whistler.xdp.tail_call_dispatch
"""
PING = """
- name: One task
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


class Fleet:
    """``count`` namespaced hosts and an inventory for them; ``remove()`` takes everything away."""

    def __init__(self, count: int, prefix: str, work: Path):
        self.tag = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.work = work
        self.names = [f"{self.tag}-{i}" for i in range(count)]
        self.pins = [f"/sys/fs/bpf/{name}" for name in self.names]
        self.made = []
        try:
            for i, name in enumerate(self.names):
                self._host(i, name)
        except BaseException:
            self.remove()
            raise
        self.inventory = work / "inventory.yml"
        hosts = "\n".join(f"        h{i}: {{fleet_netns: {name}, fleet_pins: {self.pins[i]}}}"
                          for i, name in enumerate(self.names))
        self.inventory.write_text(f"""all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: {PYTHON}
    tail_call_dispatch_pin_path: "{{{{ fleet_pins }}}}"
    tail_call_dispatch_object_dest: "{work}/objects/{{{{ inventory_hostname }}}}/dispatch.bpf.o"
    tail_call_dispatch_interfaces: [{{name: veth0, netns: "{{{{ fleet_netns }}}}", mode: generic}}]
  children:
    fleet:
      hosts:
{hosts}
""")
        (work / "ping.yml").write_text(PING)
        (work / "role.yml").write_text(ROLE)

    def _host(self, i: int, name: str) -> None:
        for ns in (name, f"{name}-p"):
            _ip("netns", "add", ns)
            self.made.append(ns)
        _ip("-n", name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", f"{name}-p")
        _ip("-n", name, "addr", "add", f"10.{230 + i // 250}.{i % 250 + 1}.1/24", "dev", "veth0")
        _ip("-n", name, "link", "set", "veth0", "up")
        _ip("-n", f"{name}-p", "link", "set", "veth1", "up")

    def remove(self) -> None:
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        for pin in self.pins:
            shutil.rmtree(pin, ignore_errors=True)


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


class Took:
    """Wall-clock seconds of one ansible-playbook run and the CPU seconds (user + system) of the whole
    process tree it waited for: the CPU figure does not grow when other work shares the machine."""

    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def play(fleet: Fleet, what: str, forks: int, changes: bool = False) -> Took:
    """One ansible-playbook run of ``what`` ("ping" or "role"); a role run must change every host
    (``changes``) or none."""
    argv = [PLAYBOOK_BIN, "-i", str(fleet.inventory), str(fleet.work / f"{what}.yml"), "--forks", str(forks)]
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=str(fleet.work), check=False,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(fleet.work / "collections"),
                                   ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
                                   ANSIBLE_REMOTE_TMP=str(fleet.work / "remote-tmp")))
    took = Took(time.perf_counter() - start, _children_cpu() - cpu)
    recap = [line for line in proc.stdout.splitlines() if " : ok=" in line]
    unchanged = sum(" changed=0 " in line for line in recap)
    if proc.returncode != 0 or len(recap) != len(fleet.names) or (what == "role" and unchanged != (0 if changes else len(recap))):
        raise SystemExit(f"{what} did not do what was measured (rc {proc.returncode}, {unchanged} of {len(recap)} "
                         f"hosts unchanged):\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    return took


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def single(args, work: Path) -> list:
    fleet = Fleet(1, args.prefix, work)
    try:
        play(fleet, "role", 1, changes=True)  # the first rollout; what follows are reruns
        role, ping = [], []
        for _warmup in range(args.warmup):
            play(fleet, "role", 1), play(fleet, "ping", 1)
        loads = [load()]
        for _pair in range(args.runs):
            role.append(play(fleet, "role", 1))
            ping.append(play(fleet, "ping", 1))
        loads.append(load())
    finally:
        fleet.remove()
    return [row("one host: role rerun, nothing to change", role, ping, f"median of {args.runs} pairs", loads)]


def row(name: str, runs: list, pings: list, measured: str, loads: list) -> tuple:
    """A table row: medians, and the medians of the pairwise ratios (wall and CPU)."""
    def median(values):
        return statistics.median(values)
    return (name, median([r.wall for r in runs]), median([p.wall for p in pings]),
            median([r.wall / p.wall for r, p in zip(runs, pings)]), median([r.cpu for r in runs]),
            median([p.cpu for p in pings]), median([r.cpu / p.cpu for r, p in zip(runs, pings)]), measured,
            " / ".join(loads))


def fleet_rows(args, work: Path) -> list:
    fleet = Fleet(args.hosts, args.prefix, work)
    try:
        loads = [load()]
        ping = play(fleet, "ping", args.forks)
        first = play(fleet, "role", args.forks, changes=True)
        ping_again = play(fleet, "ping", args.forks)
        rerun = play(fleet, "role", args.forks)
        loads.append(load())
    finally:
        fleet.remove()
    what = f"{args.hosts} hosts, forks {args.forks}"
    return [row(f"{what}: first rollout", [first], [ping], "1 run, ping before it", loads),
            row(f"{what}: rerun, nothing to change", [rerun], [ping_again], "1 run, ping before it", loads)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--single", action="store_true", help="one host: role rerun vs ping, alternately")
    parser.add_argument("--fleet", action="store_true", help="a fleet: first rollout and rerun vs ping")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="pairs in --single")
    parser.add_argument("--warmup", type=int, default=1, help="pairs not counted in --single")
    parser.add_argument("--prefix", default="wxb", help="start of every netns and pin name")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, bpffs, XDP)")
    both = not (args.single or args.fleet)
    work = Path(tempfile.mkdtemp(prefix="whistler-bench-"))
    rows = []
    try:
        collection = work / "collections" / "ansible_collections" / "whistler"
        collection.mkdir(parents=True)
        (collection / "xdp").symlink_to(REPO, target_is_directory=True)
        if args.single or both:
            rows += single(args, work)
        if args.fleet or both:
            rows += fleet_rows(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, ansible-playbook {PLAYBOOK_BIN}")
    print("| run | role s | ping play s | ratio | role CPU s | ping CPU s | CPU ratio | measured | load average "
          "(before / after) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, wall, ping, ratio, cpu, ping_cpu, cpu_ratio, measured, loads in rows:
        print(f"| {name} | {wall:.2f} | {ping:.2f} | {ratio:.2f} | {cpu:.2f} | {ping_cpu:.2f} | {cpu_ratio:.2f} | "
              f"{measured} | {loads} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
