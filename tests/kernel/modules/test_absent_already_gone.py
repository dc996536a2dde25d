"""state=absent on what is already gone is ok, not a failure, and a detach takes its now-empty record
directory with it. (What the modules report beyond ok/changed is their own business; these tests hold
the loader primitives to "nothing there: empty plan, no error".)"""

from __future__ import annotations

import uuid

import pytest

from tests.kernel.modules.bpftool_view import bpftool_loadall, prog_array_entries, xdp_hook


@pytest.fixture
def loaded(pin_dir, clang_object):
    bpftool_loadall(clang_object, pin_dir / "progs", pin_dir / "maps")
    return pin_dir


@pytest.mark.parametrize("via_link, record_dir", [(False, "attached"), (True, "links")])
def test_a_detach_removes_the_emptied_record_directory(netns_pair, loaded, run_module, via_link, record_dir):
    args = {"interface": netns_pair.if_a, "netns": netns_pair.a, "mode": "generic",
            "program": str(loaded / "progs" / "xdp_dispatch"), "via_link": via_link}
    assert run_module("xdp_attach", args)["changed"] is True
    assert len(list((loaded / "progs" / record_dir).iterdir())) == 1
    gone = run_module("xdp_attach", dict(args, state="absent"))
    assert gone["changed"] is True and xdp_hook(netns_pair.a, netns_pair.if_a) == {}
    assert not (loaded / "progs" / record_dir).exists()
    assert run_module("xdp_attach", dict(args, state="absent"))["changed"] is False


@pytest.mark.parametrize("where", ["interface", "netns"])
def test_detach_from_an_interface_or_netns_that_is_gone_is_ok(netns_pair, loaded, run_module, where):
    args = {"interface": netns_pair.if_a, "netns": netns_pair.a, "mode": "generic",
            "program": str(loaded / "progs" / "xdp_dispatch"), "state": "absent"}
    args[where] = "wa0gone" if where == "interface" else f"wxt-gone-{uuid.uuid4().hex[:8]}"
    for check in (True, False):
        result = run_module("xdp_attach", args, check=check)
        assert not result.get("failed"), result
        assert result["changed"] is False
        assert any("nothing to detach" in str(w) for w in result.get("warnings", [])), result
    present = run_module("xdp_attach", dict(args, state="present"))
    assert present.get("failed") is True, "state=present on what does not exist still fails"


def test_emptying_slots_of_a_jump_table_that_is_gone_is_ok(loaded, run_module):
    args = {"map": str(loaded / "maps" / "gone_table"), "entries": {"6": str(loaded / "progs" / "tcp_handler")},
            "state": "absent"}
    for check in (True, False):
        result = run_module("xdp_prog_array", args, check=check)
        assert not result.get("failed") and result["changed"] is False, result
    assert run_module("xdp_prog_array", dict(args, state="present")).get("failed") is True


def test_emptying_the_slot_of_a_program_that_is_gone_changes_nothing(loaded, run_module):
    jt = loaded / "maps" / "jt"
    wired = run_module("xdp_prog_array", {"map": str(jt), "entries": {"6": str(loaded / "progs" / "tcp_handler")}})
    assert wired["changed"] is True
    before = prog_array_entries(jt)
    result = run_module("xdp_prog_array", {"map": str(jt), "entries": {"6": str(loaded / "progs" / "gone")},
                                           "state": "absent"})
    assert not result.get("failed") and result["changed"] is False, result
    assert prog_array_entries(jt) == before
