"""A kill at any instant of xdp_load leaves nothing that the next run or state=absent does not clean.

A real ``xdp_load`` process (the module file run as Ansible runs it) is stopped at a named step by the
loader's test hook (``WHISTLER_XDP_PAUSE_AT``: it writes its pid to a marker file and sleeps), killed
there with SIGKILL, and then the leftovers are checked, predicted by check mode, and cleaned by a rerun
or by state=absent. Objects: clang builds of tests/testdata/c/loader_dispatch.c (3 programs, 2 maps;
HANDLER_VERDICT changes the two handlers only).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import pause
from ansible_collections.whistler.xdp.plugins.modules import xdp_load

from tests.testdata.build import build_c

MODULE = Path(xdp_load.__file__)
COLLECTIONS_ROOT = MODULE.parents[5]  # .../ansible_collections/whistler/xdp/plugins/modules/xdp_load.py
PROGRAMS = {"xdp_dispatch", "tcp_handler", "udp_handler"}
MAPS = {"jt", "proto_stats"}


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    out = tmp_path_factory.mktemp("kill")
    return {"v1": build_c("loader_dispatch.c", out), "v2": build_c("loader_dispatch.c", out, "HANDLER_VERDICT=XDP_DROP")}


class Run:
    """``xdp_load`` as a separate process, optionally stopped at a pause point."""

    def __init__(self, tmp_path: Path, args: dict, pause_at: str = ""):
        self.marker = tmp_path / f"paused-{os.urandom(4).hex()}"
        argsfile = tmp_path / f"args-{os.urandom(4).hex()}.json"
        argsfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        env = dict(os.environ, PYTHONPATH=str(COLLECTIONS_ROOT))
        env.pop(pause.ENV, None)
        if pause_at:
            env[pause.ENV] = f"{pause_at}@{self.marker}"
        self.proc = subprocess.Popen([sys.executable, str(MODULE), str(argsfile)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_paused(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while not self.marker.exists():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise AssertionError(f"xdp_load ended (exit {self.proc.returncode}) before pausing:\n{out}\n{err}")
            if time.monotonic() > end:
                self.kill()
                raise AssertionError("xdp_load did not reach its pause point")
            time.sleep(0.02)
        assert int(self.marker.read_text()) == self.proc.pid

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc.communicate()

    def result(self, timeout: float = 60) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}:\n{out}\n{err}"
        return json.loads(out)


@pytest.fixture
def runs():
    """Every process a test starts is killed when it ends, on failure too."""
    started = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            run.kill()


def staged(directory: Path):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*_whistler_tmp_*"))


def everything(directory: Path):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def load(run_module, obj, app, **extra):
    result = run_module("xdp_load", dict({"object": str(obj), "pin_path": str(app)}, **extra), diff=True)
    assert not result.get("failed"), result
    return result


def converged(run_module, obj, app, expected_tags):
    """A rerun changes what the kill left undone and cleans its leftovers; the run after it changes nothing."""
    rerun = load(run_module, obj, app)
    assert rerun["changed"] is True
    assert staged(app) == []
    assert {name: p["tag"] for name, p in rerun["programs"].items()} == expected_tags
    again = load(run_module, obj, app)
    assert again["changed"] is False and staged(app) == []


def cleaned_by_absent(run_module, obj, pin_dir, app):
    for check in (True, False):
        gone = run_module("xdp_load", {"object": str(obj), "pin_path": str(app), "state": "absent"}, check=check)
        assert not gone.get("failed") and gone["changed"] is True, gone
    assert list(pin_dir.iterdir()) == [], "nothing of the run is left in bpffs"
    again = run_module("xdp_load", {"object": str(obj), "pin_path": str(app), "state": "absent"})
    assert not again.get("failed") and again["changed"] is False


def check_mode_sees_the_leftovers(run_module, obj, app, leftovers):
    check = run_module("xdp_load", {"object": str(obj), "pin_path": str(app)}, check=True, diff=True)
    assert check["changed"] is True
    for path in leftovers:
        assert check["diff"]["before"][str(app / path)] == "staged by an interrupted run"
        assert check["diff"]["after"][str(app / path)] is None
    assert staged(app) == leftovers, "check mode changes nothing"


@pytest.mark.parametrize("then", ["rerun", "absent"])
def test_killed_while_staging_a_first_load(pin_dir, objects, run_module, runs, tmp_path, then):
    app = pin_dir / "app"
    predicted = run_module("xdp_load", {"object": str(objects["v1"]), "pin_path": str(app)}, check=True)
    run = Run(tmp_path, {"object": str(objects["v1"]), "pin_path": str(app)}, "xdp_load:stage")
    runs.append(run)
    run.wait_paused()
    leftovers = staged(app)
    assert len(leftovers) == 1 and leftovers[0].split("_whistler_tmp_")[0] in PROGRAMS
    run.kill()
    assert staged(app) == leftovers, "the killed run cleaned nothing"
    assert {p.name for p in app.iterdir() if p.is_file()} == set(leftovers), "no program is pinned by name yet"

    check_mode_sees_the_leftovers(run_module, objects["v1"], app, leftovers)
    if then == "rerun":
        converged(run_module, objects["v1"], app, {n: p["tag"] for n, p in predicted["programs"].items()})
    cleaned_by_absent(run_module, objects["v1"], pin_dir, app)


@pytest.mark.parametrize("then", ["rerun", "absent"])
def test_killed_while_renaming_an_upgrade(pin_dir, objects, run_module, runs, tmp_path, then):
    app = pin_dir / "app"
    v1 = load(run_module, objects["v1"], app)
    v2_tags = {n: p["tag"] for n, p in run_module("xdp_load", {"object": str(objects["v2"]), "pin_path": str(app)},
                                                  check=True)["programs"].items()}
    changed = {n for n in PROGRAMS if v2_tags[n] != v1["programs"][n]["tag"]}
    assert changed == {"tcp_handler", "udp_handler"}

    run = Run(tmp_path, {"object": str(objects["v2"]), "pin_path": str(app)}, "xdp_load:rename")
    runs.append(run)
    run.wait_paused()
    leftovers = staged(app)
    assert len(leftovers) == 1, "one handler renamed into place, the other still staged"
    run.kill()
    assert staged(app) == leftovers

    check_mode_sees_the_leftovers(run_module, objects["v2"], app, leftovers)
    if then == "rerun":
        converged(run_module, objects["v2"], app, v2_tags)
    cleaned_by_absent(run_module, objects["v2"], pin_dir, app)


def test_absent_without_the_object_cleans_a_killed_run(pin_dir, objects, run_module, runs, tmp_path):
    app = pin_dir / "app"
    run = Run(tmp_path, {"object": str(objects["v1"]), "pin_path": str(app)}, "xdp_load:stage")
    runs.append(run)
    run.wait_paused()
    run.kill()
    assert staged(app)
    gone = run_module("xdp_load", {"pin_path": str(app), "state": "absent"})
    assert gone["changed"] is True and list(pin_dir.iterdir()) == []


def test_a_run_holding_the_lock_is_never_swept(pin_dir, objects, run_module, runs, tmp_path):
    """A second run waits for the lock of the first (paused between staging and renaming) and does not
    touch its staged pin; once the first is killed, the second takes the lock, sweeps and converges."""
    app = pin_dir / "app"
    first = Run(tmp_path, {"object": str(objects["v1"]), "pin_path": str(app)}, "xdp_load:stage")
    runs.append(first)
    first.wait_paused()
    leftovers = staged(app)
    second = Run(tmp_path, {"object": str(objects["v1"]), "pin_path": str(app)})
    runs.append(second)
    time.sleep(2)
    assert second.proc.poll() is None, "the second run waits for the lock"
    assert staged(app) == leftovers, "and has not swept the first run's staged pin"
    first.kill()
    result = second.result()
    assert result["changed"] is True and set(result["programs"]) == PROGRAMS
    assert staged(app) == []
    assert load(run_module, objects["v1"], app)["changed"] is False
    cleaned_by_absent(run_module, objects["v1"], pin_dir, app)
