"""plugin_utils._overlay_store: the per-run, per-host store of what check-mode tasks planned."""

from __future__ import annotations

import multiprocessing
import os

from ansible_collections.whistler.xdp.plugins.plugin_utils._overlay_store import (
    OverlayStore,
    empty,
    merge,
    run_dir,
)

JT, TCP = "/sys/fs/bpf/app/maps/jt", "/sys/fs/bpf/app/tcp_handler"
PLANNED_TCP = {"kind": "prog", "id": {"planned": "prog", "pin": TCP, "name": "tcp_handler", "tag": "t2"}}


def test_merge_replaces_pin_by_pin_and_slot_by_slot():
    first = merge(empty(), {"pins": {TCP: PLANNED_TCP}, "slots": {JT: {"6": 812, "17": 813}},
                            "hooks": {"if4_ns9": {"program": 900}}})
    second = merge(first, {"slots": {JT: {"6": PLANNED_TCP["id"]}}, "hooks": {"if4_ns9": None}})
    assert second == {"files": {}, "pins": {TCP: PLANNED_TCP},
                      "slots": {JT: {"6": PLANNED_TCP["id"], "17": 813}}, "hooks": {"if4_ns9": None}}
    assert first["slots"] == {JT: {"6": 812, "17": 813}}  # merge never changes its arguments


def test_a_pin_that_changes_drops_the_slots_planned_for_what_was_there():
    wired = merge(empty(), {"slots": {JT: {"6": 812}}})
    assert merge(wired, {"pins": {JT: None}})["slots"] == {}
    assert merge(wired, {"pins": {JT: {"kind": "map", "id": {"planned": "map", "pin": JT}}}})["slots"] == {}
    # ... but slots planned by the same task that pins the table stay.
    both = merge(wired, {"pins": {JT: {"kind": "map", "id": 5}}, "slots": {JT: {"17": 813}}})
    assert both["slots"] == {JT: {"17": 813}}


def test_record_read_and_clear_per_host(tmp_path):
    store = OverlayStore(run_dir(str(tmp_path)))
    assert store.read("web1") == empty()
    store.record("web1", {"pins": {TCP: PLANNED_TCP}})
    store.record("web2", {"pins": {TCP: None}})
    assert store.read("web1")["pins"] == {TCP: PLANNED_TCP}
    assert store.read("web2")["pins"] == {TCP: None}
    store.clear("web1")
    assert store.read("web1") == empty() and store.read("web2")["pins"] == {TCP: None}
    store.clear("never-seen")


def test_host_names_are_hashed_for_file_names(tmp_path):
    store = OverlayStore(str(tmp_path / "store"))
    for host in ("../../etc/passwd", "a/b", "\x00x", "é"):
        store.record(host, {"hooks": {"if1_ns1": None}})
        assert store.read(host)["hooks"] == {"if1_ns1": None}
    names = os.listdir(tmp_path / "store")
    assert all(len(name.split(".")[0]) == 64 for name in names), names
    assert not (tmp_path / "etc").exists()


def test_kept_files_are_stored_once_by_content(tmp_path):
    store = OverlayStore(str(tmp_path / "store"))
    store.keep_file("web1", "/var/lib/xdp//tcd.bpf.o", b"\x7fELF v2")
    overlay = store.keep_file("web2", "/var/lib/xdp/tcd.bpf.o", b"\x7fELF v2")
    planned = overlay["files"]["/var/lib/xdp/tcd.bpf.o"]
    assert store.read("web1")["files"] == {"/var/lib/xdp/tcd.bpf.o": planned}
    with open(planned["content"], "rb") as f:
        assert f.read() == b"\x7fELF v2"
    assert len([n for n in os.listdir(tmp_path / "store") if n.endswith(".file")]) == 1


def _record_slot(directory, slot):
    OverlayStore(directory).record("web1", {"slots": {JT: {str(slot): slot}}})


def test_concurrent_forks_lose_no_change(tmp_path):
    directory = str(tmp_path / "store")
    processes = [multiprocessing.Process(target=_record_slot, args=(directory, slot)) for slot in range(12)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    assert OverlayStore(directory).read("web1")["slots"] == {JT: {str(slot): slot for slot in range(12)}}
    assert not [n for n in os.listdir(directory) if n.endswith(".tmp")]
