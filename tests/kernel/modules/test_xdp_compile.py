"""whistler.xdp.xdp_compile through real ``ansible`` runs (action plugin + copy), then loaded for real.

Several inventory hosts (local connection) and forks stand in for a fleet: the source is compiled
once per run, every host gets identical bytes, and the tags the action reports are the tags the
kernel gives the programs once xdp_load has loaded the object (read back with bpftool).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import compiler
from tests.conftest import REPO, seed_source
from tests.kernel.modules.bpftool_view import bpftool

ANSIBLE = Path(sys.executable).parent / "ansible"
HOSTS = ("h1", "h2", "h3")


def run_ansible(tmp_path: Path, args: dict, *extra: str) -> dict:
    """Run xdp_compile on every host; {host: result}, and the run's output under "stdout"."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("".join(f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                                 for h in HOSTS))
    tree = tmp_path / "tree"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "tests" / "output" / ".collection"),
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORKS=str(len(HOSTS)), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(ANSIBLE), "all", "-i", str(inventory), "-m", "whistler.xdp.xdp_compile",
                          "-a", json.dumps(args), "-t", str(tree), *extra],
                         env=env, check=False, capture_output=True, text=True, timeout=300)
    return dict({h: json.loads((tree / h).read_text()) for h in HOSTS}, stdout=run.stdout)


@pytest.fixture
def seed_file(tmp_path):
    path = tmp_path / "seed.lisp"
    path.write_text(seed_source())
    return path


def test_compiles_once_delivers_identical_objects_then_unchanged(tmp_path, seed_file):
    dest = str(tmp_path / "{{ inventory_hostname }}.bpf.o")
    first = run_ansible(tmp_path, {"src": str(seed_file), "dest": dest, "mode": "0640"})
    expected = compiler.compile_source(seed_source(), str(seed_file))
    for host in HOSTS:
        result = first[host]
        assert not result.get("failed"), result
        assert result["changed"] is True
        written = tmp_path / f"{host}.bpf.o"
        assert written.read_bytes() == expected.elf
        assert oct(written.stat().st_mode & 0o777) == "0o640"
        assert [p["name"] for p in result["programs"]] == [p.decl.name for p in expected.programs]
        assert [p["insns"] for p in result["programs"]] == [p.slots for p in expected.programs]
        assert {m["name"]: m["max_entries"] for m in result["maps"]} == \
               {m.name: m.max_entries for m in expected.unit.maps}
    assert sorted(first[h]["cached"] for h in HOSTS) == [False, True, True]

    second = run_ansible(tmp_path, {"src": str(seed_file), "dest": dest, "mode": "0640"})
    assert all(second[h]["changed"] is False for h in HOSTS)
    assert {second[h]["checksum"] for h in HOSTS} == {first["h1"]["checksum"]}


def test_reported_tags_are_the_kernels(tmp_path, seed_file, pin_dir, run_module):
    result = run_ansible(tmp_path, {"src": str(seed_file), "dest": str(tmp_path / "{{ inventory_hostname }}.o")})["h1"]
    loaded = run_module("xdp_load", {"object": str(tmp_path / "h1.o"), "pin_path": str(pin_dir / "seed")})
    assert not loaded.get("failed"), loaded
    for program in result["programs"]:
        shown = bpftool("prog", "show", "pinned", str(pin_dir / "seed" / program["name"]))
        assert program["tag"] == shown["tag"]
        assert shown["tag"] in program["tags"]


def test_check_mode_and_diff(tmp_path, seed_file):
    dest = tmp_path / "{{ inventory_hostname }}.o"
    check = run_ansible(tmp_path, {"src": str(seed_file), "dest": str(dest)}, "--check", "--diff")
    assert all(check[h]["changed"] is True for h in HOSTS)
    assert not any(tmp_path.glob("h*.o"))
    real = run_ansible(tmp_path, {"src": str(seed_file), "dest": str(dest)}, "--diff")
    checksum = real["h1"]["checksum"]
    for run in (check, real):
        # The diff (printed; the result tree leaves it out) shows no object before and the new one after.
        assert run["stdout"].count('-    "checksum": null') == len(HOSTS)
        assert run["stdout"].count(f'+    "checksum": "{checksum}"') == len(HOSTS)


def test_compile_error_names_location_and_changes_nothing(tmp_path):
    bad = "(defprog broken (:type :xdp :section \"xdp\" :license \"GPL\")\n  (no-such-form 1))\n"
    results = run_ansible(tmp_path, {"content": bad, "dest": str(tmp_path / "{{ inventory_hostname }}.o")})
    for host in HOSTS:
        assert f"{host} | FAILED!" in results["stdout"]
        assert "<content>:2:3: error:" in results[host]["msg"]
    assert not any(tmp_path.glob("h*.o"))


def test_missing_source_fails_clearly(tmp_path):
    results = run_ansible(tmp_path, {"src": str(tmp_path / "nope.lisp"), "dest": str(tmp_path / "x.o")})
    for host in HOSTS:
        assert f"{host} | FAILED!" in results["stdout"]
        assert "nope.lisp" in results[host]["msg"]
