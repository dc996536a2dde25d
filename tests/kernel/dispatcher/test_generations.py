"""whistler.xdp.xdp_dispatcher against the kernel: generations made, switched, kept, pruned; check mode
predicts and changes nothing; reruns and added/removed interfaces; state=previous and state=absent.

The host's state is read with bpftool and iproute2 (``checkreal.host_state``), not with the collection."""

from __future__ import annotations

from pathlib import Path

from tests.kernel.dispatcher.conftest import bump_counters, counters, dispatcher_args, pinned_state

PROGRAMS = {"xdp_dispatch", "tcp_handler", "udp_handler"}


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def gen_pins(state, number):
    return {p for p in state["pins"] if p.startswith(f"gen/{number}/")}


def test_fresh_host_check_predicts_then_generation_1_then_rerun_is_ok(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    args = dispatcher_args(host, objects("v1"))
    before = pinned_state(host)
    check = ok(run_module("xdp_dispatcher", args, check=True, diff=True))
    assert pinned_state(host) == before
    assert not Path(host.pin_path).exists()
    assert check["changed"] is True and check["generation"]["live"] == 1 and check["generation"]["new"] is True
    assert all(p["id"] is None for p in check["programs"].values())

    real = ok(run_module("xdp_dispatcher", args, diff=True))
    assert real["changed"] is True
    assert {n: p["tag"] for n, p in check["programs"].items()} == {n: p["tag"] for n, p in real["programs"].items()}
    assert check["diff"]["after"].replace("auto (native where the driver supports XDP)", "generic") \
        == real["diff"]["after"]
    state = pinned_state(host)
    assert {f"gen/1/progs/{n}" for n in PROGRAMS} | {"gen/1/maps/jt", "gen/1/record"} <= gen_pins(state, 1)
    assert state["pins"]["gen/current"] == ("symlink", "1")
    assert "gen/previous" not in state["pins"]
    assert state["pins"]["maps/proto_stats"][0] == "map"
    dispatcher = state["pins"]["gen/1/progs/xdp_dispatch"][1]
    assert state["hooks"]["veth0"] == {"generic": dispatcher}
    handlers = {slot: state["pins"][f"gen/1/progs/{name}"][1] for slot, name in ((6, "tcp_handler"), (17, "udp_handler"))}
    assert state["pins"]["gen/1/maps/jt"][4] == handlers
    assert real["jump_table"]["slots"] == {"6": "tcp_handler", "17": "udp_handler"}
    for line in ("program tcp_handler: tag ", "jump table jt slot 6 -> tcp_handler",
                 f"interface veth0 (netns {host.netns}): xdp_dispatch (generation 1), generic mode"):
        assert line in real["diff"]["after"]

    for check_mode in (True, False):
        again = ok(run_module("xdp_dispatcher", args, check=check_mode, diff=True))
        assert again["changed"] is False, again["actions"]
        assert again["diff"]["before"] == again["diff"]["after"]
        assert pinned_state(host) == state


def test_a_changed_handler_goes_live_in_a_new_generation_and_counters_survive(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"))))
    bump_counters(host, {0: 100, 1: 40, 2: 60})
    gen1 = pinned_state(host)

    check = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v2")), check=True, diff=True))
    assert pinned_state(host) == gen1
    real = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v2")), diff=True))
    assert check["changed"] is real["changed"] is True
    assert real["generation"] == dict(live=2, before=1, new=True, previous=1, pruned=[],
                                      path=f"{host.pin_path}/gen/2")
    tcp = real["programs"]["tcp_handler"]
    assert tcp["tag"] != tcp["previous_tag"] and tcp["tag"] == check["programs"]["tcp_handler"]["tag"]
    assert real["programs"]["udp_handler"]["tag"] == real["programs"]["udp_handler"]["previous_tag"]
    state = pinned_state(host)
    assert gen_pins(state, 1) == gen_pins(gen1, 1), "the previous generation stays pinned as it was"
    assert state["hooks"]["veth0"] == {"generic": state["pins"]["gen/2/progs/xdp_dispatch"][1]}
    assert state["pins"]["gen/previous"] == ("symlink", "1")
    assert state["pins"]["maps/proto_stats"] == gen1["pins"]["maps/proto_stats"]
    assert counters(host) == {0: 100, 1: 40, 2: 60}
    assert f"-program tcp_handler: tag {tcp['previous_tag']}" in _unified(real["diff"])
    assert f"+program tcp_handler: tag {tcp['tag']}" in _unified(real["diff"])

    # A third version: generation 3 goes live, 2 stays as previous, 1 is pruned (keep_generations 2).
    third = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v3"))))
    assert third["generation"]["live"] == 3 and third["generation"]["pruned"] == [1]
    state = pinned_state(host)
    assert not gen_pins(state, 1) and "gen/1/" not in state["pins"]
    assert gen_pins(state, 2) and gen_pins(state, 3)
    assert counters(host) == {0: 100, 1: 40, 2: 60}


def _unified(diff):
    import difflib

    return "\n".join(difflib.unified_diff(diff["before"].splitlines(), diff["after"].splitlines(), lineterm=""))


def test_an_added_interface_only_gets_the_live_dispatcher(xdp_hosts, add_interface, objects, run_module):
    host = xdp_hosts(1)[0]
    ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"))))
    add_interface(host)
    before = pinned_state(host)
    args = dispatcher_args(host, objects("v1"))
    check = ok(run_module("xdp_dispatcher", args, check=True))
    assert pinned_state(host) == before
    real = ok(run_module("xdp_dispatcher", args))
    assert check["changed"] is real["changed"] is True
    assert real["generation"]["new"] is False and real["generation"]["live"] == 1
    assert [i["action"] for i in real["interfaces"]] == ["noop", "attach"]
    state = pinned_state(host)
    dispatcher = state["pins"]["gen/1/progs/xdp_dispatch"][1]
    assert state["hooks"]["veth0"] == state["hooks"]["veth2"] == {"generic": dispatcher}
    assert {p for p in state["pins"] if p.startswith("gen/")} == {p for p in before["pins"] if p.startswith("gen/")}

    # Removed from the list again: detached, its record dropped; the other keeps running.
    fewer = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), interfaces=["veth0"]), diff=True))
    assert fewer["changed"] is True and [d["name"] for d in fewer["detached"]] == ["veth2"]
    state = pinned_state(host)
    assert state["hooks"]["veth2"] == {} and state["hooks"]["veth0"] == {"generic": dispatcher}
    assert len([p for p in state["pins"] if p.startswith("attached/if")]) == 1
    assert ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), interfaces=["veth0"])))["changed"] is False


def test_previous_switches_back_and_a_second_run_is_ok(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"))))
    gen1_dispatcher = pinned_state(host)["pins"]["gen/1/progs/xdp_dispatch"][1]
    ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"))))
    bump_counters(host, {2: 7})
    before = pinned_state(host)
    args = dispatcher_args(host, None, state="previous", dispatcher=None, jump_table=None, handlers=None)
    check = ok(run_module("xdp_dispatcher", args, check=True, diff=True))
    assert pinned_state(host) == before
    back = ok(run_module("xdp_dispatcher", args, diff=True))
    assert check["changed"] is back["changed"] is True
    assert back["generation"]["live"] == 1 and back["generation"]["new"] is False
    state = pinned_state(host)
    assert state["hooks"]["veth0"] == {"generic": gen1_dispatcher}
    assert state["pins"]["gen/current"] == ("symlink", "1")
    assert gen_pins(state, 2) == gen_pins(before, 2), "the generation rolled back from stays pinned"
    assert counters(host)[2] == 7
    assert "generation 2" in back["diff"]["before"] and "generation 1" in back["diff"]["after"]

    again = ok(run_module("xdp_dispatcher", args))
    assert again["changed"] is False and pinned_state(host) == state

    # Rolling forward to the source of generation 2 switches to it again, loading nothing.
    forward = ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"))))
    assert forward["changed"] is True and forward["generation"]["new"] is False and forward["generation"]["live"] == 2
    assert pinned_state(host)["hooks"]["veth0"] == {"generic": before["pins"]["gen/2/progs/xdp_dispatch"][1]}


def test_previous_without_a_previous_generation_fails_clearly(xdp_hosts, objects, run_module):
    host = xdp_hosts(1)[0]
    ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"))))
    before = pinned_state(host)
    failed = run_module("xdp_dispatcher", dispatcher_args(host, None, state="previous"))
    assert failed.get("failed") is True
    assert "no previous generation to roll back to (generations: 1 (live))" in failed["msg"]
    assert pinned_state(host) == before


def test_absent_removes_everything_and_twice_is_ok(xdp_hosts, objects, run_module, tmp_path):
    host = xdp_hosts(1)[0]
    dest = tmp_path / "kept" / "dispatch.bpf.o"
    ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v1"), object_dest=str(dest))))
    ok(run_module("xdp_dispatcher", dispatcher_args(host, objects("v2"), object_dest=str(dest))))
    assert dest.read_bytes() == objects("v2").read_bytes()
    absent = dispatcher_args(host, None, state="absent", object_dest=str(dest))
    before = pinned_state(host)
    check = ok(run_module("xdp_dispatcher", absent, check=True, diff=True))
    assert pinned_state(host) == before and dest.exists()
    gone = ok(run_module("xdp_dispatcher", absent, diff=True))
    assert check["changed"] is gone["changed"] is True
    assert sorted(check["removed"]) == sorted(gone["removed"])
    assert gone["diff"]["after"] == "" and "generation 2" in gone["diff"]["before"]
    assert not Path(host.pin_path).exists() and not dest.exists()
    assert pinned_state(host)["hooks"]["veth0"] == {}
    for check_mode in (True, False):
        assert ok(run_module("xdp_dispatcher", absent, check=check_mode))["changed"] is False
