"""whistler.xdp.xdp_attach against the kernel: a veth inside a namespace the test creates.

The hook's state is read back with ``ip -j link show`` and program ids with bpftool, not through
the collection's own netlink code.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from ansible_collections.whistler.xdp.plugins.modules import xdp_attach

from tests.kernel.modules.bpftool_view import bpftool, bpftool_loadall, pinned_id, program_words, xdp_hook


@pytest.fixture
def loaded(pin_dir, clang_object):
    bpftool_loadall(clang_object, pin_dir / "progs", pin_dir / "maps")
    return pin_dir


def attach_args(netns_pair, program, **extra):
    return dict({"interface": netns_pair.if_a, "netns": netns_pair.a, "program": str(program), "mode": "generic"},
                **extra)


def test_attach_changed_then_unchanged_then_detach(netns_pair, loaded, run_module):
    dispatcher = loaded / "progs" / "xdp_dispatch"
    dispatcher_id = pinned_id(dispatcher)

    first = run_module("xdp_attach", attach_args(netns_pair, dispatcher), diff=True)
    assert not first.get("failed"), first
    assert first["changed"] is True
    assert (first["prog_id"], first["mode"], first["previous_prog_id"]) == (dispatcher_id, "generic", 0)
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": dispatcher_id}
    assert first["diff"] == {"before": {netns_pair.if_a: None},
                             "after": {netns_pair.if_a: f"{program_words(dispatcher)} in generic mode"}}

    second = run_module("xdp_attach", attach_args(netns_pair, dispatcher, mode="auto"), diff=True)
    assert second["changed"] is False
    assert second["diff"]["before"] == second["diff"]["after"]
    assert (second["prog_id"], second["mode"]) == (dispatcher_id, "generic")

    gone = run_module("xdp_attach", attach_args(netns_pair, dispatcher, state="absent"), diff=True)
    assert gone["changed"] is True
    assert (gone["prog_id"], gone["previous_prog_id"]) == (0, dispatcher_id)
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {}
    assert run_module("xdp_attach", attach_args(netns_pair, dispatcher, state="absent"))["changed"] is False


def test_check_mode_predicts_and_changes_nothing(netns_pair, loaded, run_module):
    dispatcher = loaded / "progs" / "xdp_dispatch"
    check = run_module("xdp_attach", attach_args(netns_pair, dispatcher), check=True, diff=True)
    assert check["changed"] is True
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {}
    real = run_module("xdp_attach", attach_args(netns_pair, dispatcher), diff=True)
    assert (real["diff"], real["prog_id"], real["mode"]) == (check["diff"], check["prog_id"], check["mode"])

    # A replacement predicted in check mode leaves the running program in place.
    handler = loaded / "progs" / "tcp_handler"
    check = run_module("xdp_attach", attach_args(netns_pair, handler), check=True)
    assert check["changed"] is True
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}


def test_replace_is_atomic_in_the_attached_mode(netns_pair, loaded, run_module):
    dispatcher, handler = loaded / "progs" / "xdp_dispatch", loaded / "progs" / "udp_handler"
    run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    result = run_module("xdp_attach", attach_args(netns_pair, handler, mode="auto"))
    assert result["changed"] is True
    assert (result["previous_prog_id"], result["prog_id"]) == (pinned_id(dispatcher), pinned_id(handler))
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(handler)}
    # Still ours: the replaced program stays recognisable, so switching back needs no force.
    back = run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    assert back["changed"] is True
    run_module("xdp_attach", attach_args(netns_pair, dispatcher, state="absent"))


def test_foreign_program_refused_unless_forced(netns_pair, loaded, run_module, clang_object, pin_dir):
    foreign_dir = pin_dir / "foreign"
    foreign_dir.mkdir()
    bpftool_loadall(clang_object, foreign_dir / "progs", foreign_dir / "maps")
    foreign = foreign_dir / "progs" / "xdp_dispatch"
    netns_pair.run(netns_pair.a, "ip", "link", "set", "dev", netns_pair.if_a, "xdpgeneric", "pinned", str(foreign))
    dispatcher = loaded / "progs" / "xdp_dispatch"
    try:
        refused = run_module("xdp_attach", attach_args(netns_pair, dispatcher))
        assert refused.get("failed") is True
        assert "not attached by this collection" in refused["msg"]
        assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(foreign)}

        forced = run_module("xdp_attach", attach_args(netns_pair, dispatcher, force=True))
        assert forced["changed"] is True
        assert forced["previous_prog_id"] == pinned_id(foreign)
        assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}
    finally:
        netns_pair.run(netns_pair.a, "ip", "link", "set", "dev", netns_pair.if_a, "xdpgeneric", "off", check=False)


def test_mode_change_refused_with_explanation(netns_pair, loaded, run_module):
    dispatcher = loaded / "progs" / "xdp_dispatch"
    run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    result = run_module("xdp_attach", attach_args(netns_pair, dispatcher, mode="native"))
    assert result.get("failed") is True
    assert "generic mode" in result["msg"]
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}
    run_module("xdp_attach", attach_args(netns_pair, dispatcher, state="absent"))


@pytest.mark.parametrize("bad, message", [
    ({"interface": "nosuch0"}, "nosuch0"),
    ({"program": "progs/no_such_program"}, "nothing is pinned"),
    ({"program": "maps/proto_stats"}, "not a program"),
    ({"netns": "wxt-no-such-netns"}, "wxt-no-such-netns"),
])
def test_bad_input_fails_clearly_and_changes_nothing(netns_pair, loaded, run_module, bad, message):
    args = attach_args(netns_pair, loaded / "progs" / "xdp_dispatch")
    args.update({k: (str(loaded / v) if k == "program" else v) for k, v in bad.items()})
    result = run_module("xdp_attach", args)
    assert result.get("failed") is True
    assert message in result["msg"]
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {}
    netns_list = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    assert "wxt-no-such-netns" not in netns_list


def test_program_outside_bpffs_names_the_option(netns_pair, loaded, run_module, tmp_path):
    outside = tmp_path / "xdp_dispatch"
    outside.write_text("not a pin")
    result = run_module("xdp_attach", attach_args(netns_pair, outside))
    assert result.get("failed") is True
    assert result["msg"].startswith(f"program {outside}: ")
    assert "bpffs" in result["msg"]
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {}


@pytest.mark.parametrize("gone", ["interface", "netns"])
def test_detach_where_the_interface_is_gone_is_ok(netns_pair, loaded, run_module, gone):
    dispatcher = loaded / "progs" / "xdp_dispatch"
    args = attach_args(netns_pair, dispatcher, state="absent")
    if gone == "interface":
        args["interface"] = "nosuch0"
    else:
        args["netns"] = f"{netns_pair.a}-gone"
    for check in (True, False, False):
        result = run_module("xdp_attach", args, check=check, diff=True)
        assert not result.get("failed"), result
        assert (result["changed"], result["prog_id"], result["previous_prog_id"]) == (False, 0, 0)
        assert result["diff"]["before"] == result["diff"]["after"]
        assert any("nothing to detach" in str(w) for w in result.get("warnings", [])), result
    # Attaching there still fails clearly: only a detach treats "gone" as done.
    attached = run_module("xdp_attach", dict(args, state="present"))
    assert attached.get("failed") is True
    assert ("nosuch0" if gone == "interface" else f"{netns_pair.a}-gone") in attached["msg"]


def test_check_mode_detach_reports_no_mode_like_the_real_run(netns_pair, loaded, run_module):
    dispatcher = loaded / "progs" / "xdp_dispatch"
    run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    detach = attach_args(netns_pair, dispatcher, state="absent")
    check = run_module("xdp_attach", detach, check=True, diff=True)
    assert (check["changed"], check["prog_id"], check["mode"]) == (True, 0, None)
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}
    real = run_module("xdp_attach", detach, diff=True)
    assert (real["diff"], real["prog_id"], real["mode"]) == (check["diff"], 0, None)
    assert real["diff"] == {"before": {netns_pair.if_a: f"{program_words(dispatcher)} in generic mode"},
                            "after": {netns_pair.if_a: None}}


def link_pinned_at(path):
    """bpftool's view of the bpf_link pinned at ``path``."""
    return bpftool("link", "show", "pinned", str(path))


def test_via_link_attaches_through_a_pinned_bpf_link(netns_pair, loaded, run_module):
    dispatcher, handler = loaded / "progs" / "xdp_dispatch", loaded / "progs" / "tcp_handler"
    link_pin = loaded / "progs" / "links" / f"if{netns_pair.ifindex(netns_pair.a, netns_pair.if_a)}_ns" \
        f"{os.stat(f'/run/netns/{netns_pair.a}').st_ino}"
    args = attach_args(netns_pair, dispatcher, via_link=True)

    check = run_module("xdp_attach", args, check=True)
    assert (check["changed"], check["link_id"]) == (True, 0)
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {} and not link_pin.exists()

    first = run_module("xdp_attach", args)
    assert not first.get("failed"), first
    link = link_pinned_at(link_pin)
    assert (link["type"], link["prog_id"]) == ("xdp", pinned_id(dispatcher))
    assert (first["changed"], first["prog_id"], first["mode"], first["link_id"]) == \
        (True, pinned_id(dispatcher), "generic", link["id"])
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}
    # The link owns the hook: netlink users cannot take the program off.
    off = netns_pair.run(netns_pair.a, "ip", "link", "set", "dev", netns_pair.if_a, "xdpgeneric", "off", check=False)
    assert off.returncode != 0 and xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}

    again = run_module("xdp_attach", args)
    assert (again["changed"], again["link_id"]) == (False, link["id"])

    swapped = run_module("xdp_attach", attach_args(netns_pair, handler))  # changed through the link it finds
    assert (swapped["changed"], swapped["prog_id"], swapped["link_id"]) == (True, pinned_id(handler), link["id"])
    assert link_pinned_at(link_pin)["prog_id"] == pinned_id(handler)

    gone = run_module("xdp_attach", attach_args(netns_pair, handler, state="absent"))
    assert (gone["changed"], gone["prog_id"], gone["mode"], gone["link_id"]) == (True, 0, None, 0)
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {} and not link_pin.exists()


def test_via_link_over_a_netlink_attachment_is_refused(netns_pair, loaded, run_module):
    dispatcher = loaded / "progs" / "xdp_dispatch"
    run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    refused = run_module("xdp_attach", attach_args(netns_pair, loaded / "progs" / "udp_handler", via_link=True))
    assert refused.get("failed") is True and "not a bpf_link" in refused["msg"]
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}
    run_module("xdp_attach", attach_args(netns_pair, dispatcher, state="absent"))


@pytest.fixture
def interloper(monkeypatch, netns_pair):
    """After ``interloper.arm(programs)``, another writer puts ``programs[n]`` (unless None) on the hook
    right after xdp_attach's plan number n (0-based), before the module acts on that plan.

    A real run plans once to validate, then again holding the pin directory's lock, and acts on that
    second plan (n=1): the kernel's refusal and the re-plan come after it."""
    class Interloper:
        programs = []
        plans = 0

        @classmethod
        def arm(cls, programs):
            cls.programs, cls.plans = programs, 0

    real_plan = xdp_attach.plan_attach

    def plan_then_interfere(*args, **kwargs):
        number, Interloper.plans = Interloper.plans, Interloper.plans + 1
        plan = real_plan(*args, **kwargs)
        if number < len(Interloper.programs) and Interloper.programs[number] is not None:
            netns_pair.run(netns_pair.a, "ip", "-force", "link", "set", "dev", netns_pair.if_a, "xdpgeneric",
                           "pinned", str(Interloper.programs[number]))
        return plan

    monkeypatch.setattr(xdp_attach, "plan_attach", plan_then_interfere)
    yield Interloper
    netns_pair.run(netns_pair.a, "ip", "link", "set", "dev", netns_pair.if_a, "xdpgeneric", "off", check=False)


def test_a_swap_refused_because_the_hook_changed_is_replanned_once(netns_pair, loaded, run_module, interloper):
    dispatcher, tcp, udp = (loaded / "progs" / name for name in ("xdp_dispatch", "tcp_handler", "udp_handler"))
    run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    interloper.arm([None, tcp])  # one of ours: the re-plan replaces it
    result = run_module("xdp_attach", attach_args(netns_pair, udp))
    assert not result.get("failed"), result
    assert interloper.plans == 3
    assert (result["changed"], result["previous_prog_id"], result["prog_id"]) == \
        (True, pinned_id(tcp), pinned_id(udp))
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(udp)}


def test_a_replan_still_refuses_a_foreign_program(netns_pair, loaded, run_module, interloper, clang_object,
                                                  pin_dir):
    bpftool_loadall(clang_object, pin_dir / "foreign", pin_dir / "foreign_maps")
    foreign = pin_dir / "foreign" / "xdp_dispatch"
    run_module("xdp_attach", attach_args(netns_pair, loaded / "progs" / "xdp_dispatch"))
    interloper.arm([None, foreign])
    refused = run_module("xdp_attach", attach_args(netns_pair, loaded / "progs" / "udp_handler"))
    assert refused.get("failed") is True and "not attached by this collection" in refused["msg"]
    assert interloper.plans == 3
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(foreign)}


def test_a_hook_that_keeps_changing_fails_after_one_replan(netns_pair, loaded, run_module, interloper):
    dispatcher, tcp = loaded / "progs" / "xdp_dispatch", loaded / "progs" / "tcp_handler"
    run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    interloper.arm([None, tcp, dispatcher])  # each plan's expected program is gone when it acts
    result = run_module("xdp_attach", attach_args(netns_pair, loaded / "progs" / "udp_handler"))
    assert result.get("failed") is True, result
    assert "does not match expected" in result["msg"]
    assert interloper.plans == 3
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": pinned_id(dispatcher)}


def test_detach_without_the_program_pin_asks_for_it_or_force(netns_pair, loaded, run_module):
    dispatcher = loaded / "progs" / "xdp_dispatch"
    attached = run_module("xdp_attach", attach_args(netns_pair, dispatcher))
    args = {k: v for k, v in attach_args(netns_pair, dispatcher, state="absent").items() if k != "program"}
    refused = run_module("xdp_attach", args)
    assert refused.get("failed") is True
    assert "without the program pin it was attached from; pass program, or force" in refused["msg"]
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": attached["prog_id"]}
    forced = run_module("xdp_attach", dict(args, force=True))
    assert (forced["changed"], forced["previous_prog_id"]) == (True, attached["prog_id"])
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {}
