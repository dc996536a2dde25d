"""The loader's teardown primitives: nothing pinned is an empty plan (state=absent twice is ok twice),
removing pins also removes the directories this leaves empty (never a mount point, never a directory
holding something else), and staged pins a killed run left are swept by the next run (only names of
the staged form, only in our directories)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile, pins
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import MapSpec
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program

from tests.kernel.modules.bpftool_view import bpftool


def everything(directory: Path):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def pin_scratch_map(path: Path) -> None:
    """Pin a small map at ``path`` (a stand-in for anything pinned there)."""
    with Map.create(MapSpec("scratch", 2, 4, 4, 1)) as m:
        pins.pin(m.fd, str(path))


def test_nothing_pinned_is_an_empty_plan_and_creates_nothing(pin_dir, build):
    spec = objfile.read_object(build("loader_dispatch.c"))
    for with_spec in (spec, None):
        plan = load.plan_unload(str(pin_dir / "never" / "loaded"), spec=with_spec)
        assert (plan.pins, plan.empty_dirs, plan.changed) == ([], [], False)
        assert load.apply_unload(plan) == []
    assert list(pin_dir.iterdir()) == []


def test_unload_removes_pins_records_and_the_emptied_directories(pin_dir, build):
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_dispatch.c"))
    load.apply_load(load.plan_load(spec, str(app)))
    (app / "attached").mkdir()
    with Program.from_pin(str(app / "xdp_dispatch")) as dispatch:
        pins.pin(dispatch.fd, str(app / "attached" / "if9_ns4026531840"))
    (app / "links").mkdir()  # an empty record directory, as a detach leaves it

    plan = load.plan_unload(str(app), spec=spec, also=[str(app / "attached" / "if9_ns4026531840")])
    assert sorted(plan.empty_dirs) == sorted([str(app), str(app / "maps"), str(app / "attached"), str(app / "links")])
    removed = load.apply_unload(plan)
    assert len(removed) == 3 + 2 + 1
    assert list(pin_dir.iterdir()) == []
    again = load.plan_unload(str(app), spec=spec)
    assert not again.changed


def test_a_directory_holding_something_else_stays(pin_dir, build):
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_dispatch.c"))
    load.apply_load(load.plan_load(spec, str(app)))
    pin_scratch_map(app / "maps" / "someone_elses")
    load.apply_unload(load.plan_unload(str(app), spec=spec))
    assert everything(pin_dir) == ["app", "app/maps", "app/maps/someone_elses"]


@pytest.fixture
def bpffs_mount(tmp_path):
    """A private bpffs mount: its root is a mount point, like /sys/fs/bpf."""
    root = tmp_path / f"wa-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(root)], check=True, capture_output=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False, capture_output=True)
        root.rmdir()


def test_the_bpffs_root_is_never_removed(bpffs_mount, build):
    """A fresh bpffs root may hold the kernel's own entries (maps.debug, progs.debug): they stay too."""
    preloaded = sorted(bpffs_mount.iterdir())
    spec = objfile.read_object(build("loader_dispatch.c"))
    load.apply_load(load.plan_load(spec, str(bpffs_mount)))
    plan = load.plan_unload(str(bpffs_mount), spec=spec)
    assert plan.empty_dirs == [str(bpffs_mount / "maps")], "the mount point is not predicted as removed"
    load.apply_unload(plan)
    assert bpffs_mount.is_dir() and sorted(bpffs_mount.iterdir()) == preloaded
    assert pins.fs_magic(str(bpffs_mount)) == pins.BPF_FS_MAGIC


def test_an_empty_mount_point_is_never_predicted_or_removed(tmp_path):
    mount = tmp_path / f"wa-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "none", str(mount)], check=True, capture_output=True)
    try:
        assert list(mount.iterdir()) == []
        assert pins.emptied_dirs([str(mount)], []) == []
        assert not pins.remove_dir_if_empty(str(mount)) and mount.is_dir()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
        mount.rmdir()


def test_staged_leftovers_are_planned_and_swept_and_nothing_else(pin_dir, build):
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_dispatch.c"))
    load.apply_load(load.plan_load(spec, str(app)))
    ours = [app / "tcp_handler_whistler_tmp_0123abcd", app / "maps" / "jt_whistler_tmp_deadbeef"]
    not_ours = [app / "tcp_handler_whistler_tmp_notahex0", app / "maps" / "whistler_tmp_deadbeef",
                pin_dir / "other" / "x_whistler_tmp_0123abcd"]
    (pin_dir / "other").mkdir()
    for path in ours + not_ours:
        pin_scratch_map(path)

    plan = load.plan_load(spec, str(app))
    assert plan.changed and sorted(plan.stale) == sorted(map(str, ours))
    assert all(s.action in ("reuse", "unchanged") for s in plan.maps + plan.programs)
    result = load.apply_load(plan)
    assert sorted(result.swept) == sorted(map(str, ours))
    assert not any(p.exists() for p in ours) and all(p.exists() for p in not_ours)
    assert not load.plan_load(spec, str(app)).changed


def test_unload_sweeps_staged_leftovers_in_record_directories(pin_dir, build):
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_dispatch.c"))
    load.apply_load(load.plan_load(spec, str(app)))
    (app / "attached").mkdir()
    pin_scratch_map(app / "attached" / "if3_ns4026531840_whistler_tmp_0123abcd")
    plan = load.plan_unload(str(app), spec=spec)
    assert str(app / "attached" / "if3_ns4026531840_whistler_tmp_0123abcd") in plan.pins
    load.apply_unload(plan)
    assert list(pin_dir.iterdir()) == []


def test_bpftool_sees_the_same_pins(pin_dir, build):
    """Independent check of the layout the plans rely on: bpftool finds every pin by its path."""
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_dispatch.c"))
    result = load.apply_load(load.plan_load(spec, str(app)))
    for name, prog in result.programs.items():
        assert bpftool("prog", "show", "pinned", str(app / name))["id"] == prog.id
