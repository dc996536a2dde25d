"""whistler.xdp.xdp_prog_array against the kernel: jump-table slots of a bpftool-loaded object.

The expected slot contents come from bpftool (program ids of the pins, ``map dump``), not from
the module's own loader.
"""

from __future__ import annotations

import pytest

from tests.kernel.modules.bpftool_view import bpftool_loadall, pinned_id, prog_array_entries, program_words

TCP, UDP = 6, 17  # the C twin's jump table is indexed by IP protocol number


@pytest.fixture
def loaded(pin_dir, clang_object):
    bpftool_loadall(clang_object, pin_dir / "progs", pin_dir / "maps")
    return pin_dir


def wire(loaded, **extra):
    return dict({"map": str(loaded / "maps" / "jt"),
                 "entries": {str(TCP): str(loaded / "progs" / "tcp_handler"),
                             str(UDP): str(loaded / "progs" / "udp_handler")}}, **extra)


def test_wires_slots_changed_then_unchanged(loaded, run_module):
    jt = loaded / "maps" / "jt"
    expected = {TCP: pinned_id(loaded / "progs" / "tcp_handler"), UDP: pinned_id(loaded / "progs" / "udp_handler")}

    first = run_module("xdp_prog_array", wire(loaded), diff=True)
    assert not first.get("failed"), first
    assert first["changed"] is True
    assert prog_array_entries(jt) == expected
    assert {int(k): v for k, v in first["entries"].items()} == expected
    assert first["max_entries"] == 256
    assert first["diff"] == {"before": {"slots": {}}, "after": {"slots": {
        str(TCP): program_words(loaded / "progs" / "tcp_handler"),
        str(UDP): program_words(loaded / "progs" / "udp_handler")}}}

    second = run_module("xdp_prog_array", wire(loaded), diff=True)
    assert second["changed"] is False
    assert second["diff"]["before"] == second["diff"]["after"]
    assert prog_array_entries(jt) == expected


def test_check_mode_predicts_and_changes_nothing(loaded, run_module):
    jt = loaded / "maps" / "jt"
    check = run_module("xdp_prog_array", wire(loaded), check=True, diff=True)
    assert check["changed"] is True
    assert prog_array_entries(jt) == {}
    real = run_module("xdp_prog_array", wire(loaded), diff=True)
    assert real["diff"] == check["diff"]
    assert real["entries"] == check["entries"]


def test_overwrite_in_place_and_exclusive(loaded, run_module):
    jt = loaded / "maps" / "jt"
    run_module("xdp_prog_array", wire(loaded))
    udp_id = pinned_id(loaded / "progs" / "udp_handler")
    # Point the TCP slot at the UDP handler and drop everything else.
    result = run_module("xdp_prog_array", {"map": str(jt), "entries": {str(TCP): str(loaded / "progs" / "udp_handler")},
                                           "exclusive": True})
    assert result["changed"] is True
    assert prog_array_entries(jt) == {TCP: udp_id}


def test_absent_empties_named_slots(loaded, run_module):
    jt = loaded / "maps" / "jt"
    run_module("xdp_prog_array", wire(loaded))
    tcp_id = pinned_id(loaded / "progs" / "tcp_handler")
    gone = run_module("xdp_prog_array", {"map": str(jt), "entries": {str(UDP): None}, "state": "absent"})
    assert gone["changed"] is True
    assert prog_array_entries(jt) == {TCP: tcp_id}
    again = run_module("xdp_prog_array", {"map": str(jt), "entries": {str(UDP): None}, "state": "absent"})
    assert again["changed"] is False


@pytest.mark.parametrize("args", [
    {"map": "maps/no_such_map", "exclusive": True},
    {"map": "maps/no_such_map", "entries": {str(TCP): "progs/tcp_handler"}},
    {"map": "maps/jt", "entries": {str(TCP): "progs/no_such_program"}},
])
def test_absent_of_what_is_gone_is_ok(loaded, run_module, args):
    run_module("xdp_prog_array", wire(loaded))
    filled = prog_array_entries(loaded / "maps" / "jt")
    args = dict(args, state="absent", map=str(loaded / args["map"]),
                entries={k: str(loaded / v) for k, v in args.get("entries", {}).items()})
    for check in (True, False, False):
        result = run_module("xdp_prog_array", args, check=check, diff=True)
        assert not result.get("failed"), result
        assert result["changed"] is False
        assert result["diff"]["before"] == result["diff"]["after"]
    assert prog_array_entries(loaded / "maps" / "jt") == filled


def test_absent_twice_once_the_table_is_unpinned(loaded, run_module):
    run_module("xdp_prog_array", wire(loaded))
    args = {"map": str(loaded / "maps" / "jt"), "exclusive": True, "state": "absent"}
    assert run_module("xdp_prog_array", args)["changed"] is True
    (loaded / "maps" / "jt").unlink()
    gone = run_module("xdp_prog_array", args)
    assert not gone.get("failed"), gone
    assert (gone["changed"], gone["entries"], gone["map_id"], gone["max_entries"]) == (False, {}, None, None)


@pytest.mark.parametrize("bad, message", [
    ({"entries": {"256": "progs/tcp_handler"}}, "out of range"),
    ({"entries": {"x": "progs/tcp_handler"}}, "not a slot number"),
    ({"map": "maps/proto_stats"}, "not a prog array"),
    ({"entries": {"6": "progs/no_such_program"}}, "no program is pinned"),
    ({"map": "maps/no_such_map"}, "nothing is pinned"),
])
def test_bad_input_fails_clearly_and_changes_nothing(loaded, run_module, bad, message):
    args = wire(loaded)
    args["entries"] = {TCP: str(loaded / "progs" / "tcp_handler")}
    for key, value in bad.items():
        args[key] = ({k: str(loaded / v) for k, v in value.items()} if isinstance(value, dict)
                     else str(loaded / value))
    result = run_module("xdp_prog_array", args)
    assert result.get("failed") is True
    assert message in result["msg"]
    assert prog_array_entries(loaded / "maps" / "jt") == {}


def test_path_outside_bpffs_fails(loaded, run_module, tmp_path):
    outside = tmp_path / "jt"
    outside.write_text("not a pin")
    result = run_module("xdp_prog_array", dict(wire(loaded), map=str(outside)))
    assert result.get("failed") is True
    assert result["msg"].startswith(f"map {outside}: ")
    assert prog_array_entries(loaded / "maps" / "jt") == {}


def test_program_outside_bpffs_names_the_slot(loaded, run_module, tmp_path):
    outside = tmp_path / "udp_handler"
    outside.write_text("not a pin")
    args = wire(loaded)
    args["entries"][str(UDP)] = str(outside)
    result = run_module("xdp_prog_array", args)
    assert result.get("failed") is True
    assert result["msg"].startswith(f"entries: slot {UDP}: program {outside}: ")
    assert "bpffs" in result["msg"]
    assert prog_array_entries(loaded / "maps" / "jt") == {}
