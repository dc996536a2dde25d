"""A rollout killed at any instant leaves nothing the next run (or state=absent) does not clean up, and
the interface never loses its dispatcher on the way.

The killed run is a real module run in a forked child that SIGKILLs itself just before its K-th change to
the kernel, for every K: a "change" is every call that alters bpffs, a map, a link or an XDP hook (pin,
rename, unlink, mkdir, rmdir, symlink, map update/delete/freeze, link create/update/detach, netlink XDP requests),
so killing before change K+1 is killing right after change K, and K = 1..N+1 covers every instant between
two changes: while the new generation is made, wired and recorded, while the hook switches, while the
pointers move and while the oldest generation is pruned. After each kill the hook still runs one of the
rollout's dispatchers with a full jump table; the next normal run converges (the new generation live, no
staged pin or incomplete generation left, counters intact); and state=absent then leaves nothing."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from ansible.module_utils.testing import patch_module_args
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import netlink, syscalls

from tests.kernel.dispatcher.conftest import bump_counters, counters, dispatcher_args, pinned_state

CHANGES = [(syscalls, name) for name in ("obj_pin", "map_update_elem", "map_delete_elem", "map_freeze",
                                         "link_create", "link_update", "link_detach")]
CHANGES += [(os, name) for name in ("rename", "unlink", "mkdir", "rmdir", "symlink")] + [(netlink.XdpHook, "_set")]


def killed_run(args, kill_at):
    """Run the module in a forked child killed before its ``kill_at``-th change (0: never).
    Returns (how it ended: "killed" or "exited", the number of changes it made)."""
    from ansible_collections.whistler.xdp.plugins.modules import xdp_dispatcher

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count changes, die at the chosen one, never return into pytest
        os.close(read_end)
        made = [0]
        for owner, name in CHANGES:
            original = getattr(owner, name)

            def change(*a, _original=original, **kw):
                made[0] += 1
                os.write(write_end, b".")
                if made[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return _original(*a, **kw)

            setattr(owner, name, change)
        try:
            with patch_module_args(args):
                xdp_dispatcher.main()
        except BaseException:
            pass
        os._exit(0)
    os.close(write_end)
    made = b""
    while True:
        chunk = os.read(read_end, 4096)
        if not chunk:
            break
        made += chunk
    os.close(read_end)
    _pid, status = os.waitpid(pid, 0)
    return ("killed" if os.WIFSIGNALED(status) else "exited"), len(made)


def run_ok(run_module, args):
    result = run_module("xdp_dispatcher", args)
    assert not result.get("failed"), result["msg"]
    return result


def dispatchers_with_full_tables(state):
    """Ids of the dispatchers whose generation's jump table holds both handlers."""
    full = set()
    for path, pin in state["pins"].items():
        match = re.fullmatch(r"gen/(\d+)/progs/xdp_dispatch", path)
        table = state["pins"].get(f"gen/{match.group(1)}/maps/jt") if match else None
        if table is not None and set(table[4]) == {6, 17}:
            full.add(pin[1])
    return full


def test_a_rollout_killed_at_any_change_recovers(xdp_hosts, objects, run_module):
    """Each round upgrades to the version that is not kept (v1 -> v2 -> v3 -> v1 ...), so every round is the
    same rollout: a new generation made and switched to, the oldest of the two kept ones pruned."""
    host = xdp_hosts(1)[0]
    run_ok(run_module, dispatcher_args(host, objects("v3")))
    run_ok(run_module, dispatcher_args(host, objects("v1")))
    bump_counters(host, {0: 50, 2: 50})
    rounds = iter(("v2", "v3", "v1") * 100)

    def upgrade():
        return dict(dispatcher_args(host, objects(next(rounds))), _ansible_check_mode=False)

    ended, total = killed_run(upgrade(), 0)
    assert ended == "exited" and total > 10, (ended, total)
    for kill_at in range(1, total + 2):
        args = upgrade()
        was_live = run_module("xdp_dispatcher", args, check=True)["generation"]["before"]
        ended, _made = killed_run(args, kill_at)
        assert ended == ("killed" if kill_at <= total else "exited"), kill_at
        state = pinned_state(host)
        running = state["hooks"]["veth0"].get("generic")
        assert running in dispatchers_with_full_tables(state), f"killed before change {kill_at}: the hook runs {running}"

        recovered = run_ok(run_module, args)
        state = pinned_state(host)
        live = recovered["generation"]["live"]
        assert state["hooks"]["veth0"] == {"generic": state["pins"][f"gen/{live}/progs/xdp_dispatch"][1]}
        assert not [p for p in state["pins"] if "_whistler_tmp_" in p], (kill_at, state["pins"])
        numbers = {int(p.split("/")[1]) for p in state["pins"] if re.match(r"gen/\d+/", p)}
        assert all(f"gen/{n}/record" in state["pins"] for n in numbers), (kill_at, state["pins"])
        assert len(numbers) == 2 and live == max(numbers), (kill_at, numbers, live)
        assert recovered["generation"]["previous"] == was_live, (kill_at, recovered["generation"], was_live)
        assert counters(host) == {0: 50, 1: 0, 2: 50}, kill_at
        assert run_ok(run_module, args)["changed"] is False, kill_at

    run_ok(run_module, dispatcher_args(host, None, state="absent"))
    assert not Path(host.pin_path).exists()
