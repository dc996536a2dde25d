"""Must show 6 (loader part): a verifier rejection returns the verifier log (grown to its full size, and
never asked for when the load succeeds); a program whose attach type does not match the jump table's owner
gets an explanatory error, not a bare EINVAL; a jump table in use is never re-created; nothing changes."""

from __future__ import annotations

import dataclasses
import errno

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import (
    BpfError,
    OwnerMismatchError,
    VerifierError,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program


def test_verifier_rejection_carries_the_log_and_pins_nothing(build, pin_dir):
    obj = build("loader_reject.c", "V2_BROKEN")
    spec = objfile.read_object(obj)
    assert [p.name for p in spec.programs] == ["first", "second", "unchecked_read"]
    with pytest.raises(VerifierError) as caught:
        load.apply_load(load.plan_load(spec, str(pin_dir / "app")))
    assert caught.value.errno == errno.EACCES
    assert "invalid access to packet" in caught.value.log
    message = str(caught.value)
    assert "unchecked_read" in message and str(obj) in message and "invalid access to packet" in message
    assert list(pin_dir.iterdir()) == [], "the first two programs loaded fine, but nothing may be pinned"


def test_rejected_upgrade_leaves_the_previous_version_running(build, pin_dir, snapshot, frame):
    """Version 2 changes the first two programs and breaks the third: after the rejection every pin
    is still version 1's (same ids) and the counters are untouched."""
    app = pin_dir / "app"
    v1 = load.apply_load(load.plan_load(objfile.read_object(build("loader_reject.c")), str(app)))
    with Program.from_pin(str(app / "first")) as first:
        assert first.test_run(frame(6), repeat=3).retval == 2
    before = snapshot(pin_dir)

    plan = load.plan_load(objfile.read_object(build("loader_reject.c", "V2_BROKEN")), str(app))
    assert {s.name: s.action for s in plan.programs} == \
        {"first": "replace", "second": "replace", "unchecked_read": "replace"}
    with pytest.raises(VerifierError, match="unchecked_read"):
        load.apply_load(plan)

    assert snapshot(pin_dir) == before
    assert {name: entry[1] for name, entry in before.items() if entry[0] == "program"} == \
        {f"app/{name}": p.id for name, p in v1.programs.items()}
    with Map.from_pin(str(app / "maps" / "hits")) as hits:
        assert hits.typed_items() == {0: 3}
    assert not [p for p in app.iterdir() if "tmp" in p.name], "no staged pin left behind"


def test_long_verifier_log_is_returned_whole(build, monkeypatch):
    """The log (about 1 MiB) is far larger than the first log buffer: the buffer is grown to the size the
    kernel says it needs (log_true_size), so one retry returns the whole log, from instruction 0 to the verdict."""
    log_sizes = _spy_log_sizes(monkeypatch)
    spec = objfile.read_object(build("loader_biglog.c"))
    with pytest.raises(VerifierError) as caught:
        Program.load(spec.program("long_walk"), {})
    log = caught.value.log
    assert len(log) > 16 * sc.LOG_START
    assert log.startswith("0: R1=ctx() R10=fp0")
    assert "invalid access to packet" in "\n".join(log.splitlines()[-5:])
    assert log_sizes == [0, sc.LOG_START, len(log) + 1], "no log, a first log, then exactly the size needed"


def _spy_log_sizes(monkeypatch):
    """The log_size of every BPF_PROG_LOAD from now on (0: no log asked for)."""
    log_sizes = []
    real_call = sc._call

    def spy(cmd, attr, *args, **kw):
        if cmd == sc.PROG_LOAD:
            log_sizes.append(attr.get("I", 28) if attr.get("I", 24) else 0)
        return real_call(cmd, attr, *args, **kw)

    monkeypatch.setattr(sc, "_call", spy)
    return log_sizes


def test_no_log_is_requested_when_the_load_succeeds(build, monkeypatch):
    """A log buffer that is too small turns a valid program into ENOSPC: the first load asks for none."""
    log_sizes = _spy_log_sizes(monkeypatch)
    spec = objfile.read_object(build("loader_reject.c"))
    with Map.create(spec.map("hits")) as hits:
        for prog in spec.programs:
            with Program.load(prog, {"hits": hits.fd}):
                pass
    assert log_sizes == [0, 0, 0]

    with pytest.raises(VerifierError):
        Program.load(objfile.read_object(build("loader_reject.c", "V2_BROKEN")).program("unchecked_read"), {})
    assert log_sizes[3:] == [0, sc.LOG_START], "the log is asked for only on the retry after a failure"


def _own_jt_with_attach_type_zero(build, app):
    """Pin a jump table whose owner is a dispatcher loaded with expected_attach_type 0 (not BPF_XDP)."""
    spec = objfile.read_object(build("tail_call_dispatch.c"))
    (app / "maps").mkdir(parents=True)
    jt_fd = {}
    with Map.create(spec.map("jt")) as jt, Map.create(spec.map("proto_stats")) as stats:
        jt_fd = {"jt": jt.fd, "proto_stats": stats.fd}
        odd = dataclasses.replace(spec.program("xdp_dispatch"), expected_attach_type=0)
        with Program.load(odd, jt_fd):
            jt.pin(str(app / "maps" / "jt"))
            stats.pin(str(app / "maps" / "proto_stats"))
    return spec


def test_load_against_jump_table_with_other_owner_is_explained(build, pin_dir, snapshot):
    app = pin_dir / "app"
    spec = _own_jt_with_attach_type_zero(build, app)
    before = snapshot(pin_dir)
    plan = load.plan_load(spec, str(app))
    assert {s.name: s.action for s in plan.maps} == {"jt": "reuse", "proto_stats": "reuse"}

    with pytest.raises(OwnerMismatchError) as caught:
        load.apply_load(plan)
    message = str(caught.value)
    assert caught.value.errno == errno.EINVAL
    assert "xdp_dispatch" in message and "'jt'" in message and "expected_attach_type" in message
    assert snapshot(pin_dir) == before


def test_inserting_mismatched_program_into_jump_table_is_explained(build, pin_dir):
    spec = objfile.read_object(build("tail_call_dispatch.c"))
    with Map.create(spec.map("jt")) as jt, Map.create(spec.map("proto_stats")) as stats:
        fds = {"jt": jt.fd, "proto_stats": stats.fd}
        with Program.load(spec.program("xdp_dispatch"), fds):  # owner: XDP with BPF_XDP
            odd = dataclasses.replace(spec.program("tcp_handler"), expected_attach_type=0)
            with Program.load(odd, fds) as handler:
                with pytest.raises(OwnerMismatchError, match="expected_attach_type or the frags flag"):
                    jt.set(6, handler.fd)
            assert jt.entries() == {}


def test_jump_table_in_use_is_never_recreated(build, pin_dir, snapshot):
    """replace_incompatible_maps re-creates an incompatible map, but not a jump table that loaded programs
    use: the dispatcher running on it would lose every slot. Once nothing uses it, it is re-created."""
    app = pin_dir / "app"
    load.apply_load(load.plan_load(objfile.read_object(build("loader_dispatch.c")), str(app)))
    before = snapshot(pin_dir)
    smaller = objfile.read_object(build("loader_dispatch.c", "JT_ENTRIES=128"))

    plan = load.plan_load(smaller, str(app), replace_incompatible_maps=True)
    assert {s.name: s.action for s in plan.maps} == {"jt": "error", "proto_stats": "reuse"}
    with pytest.raises(BpfError) as caught:
        load.apply_load(plan)
    message = str(caught.value)
    assert "max_entries is 256, the object wants 128" in message and "xdp_dispatch (id " in message
    assert "not re-created because programs use it" in message and "replace_incompatible_maps re-" not in message
    assert snapshot(pin_dir) == before

    for name in ("xdp_dispatch", "tcp_handler", "udp_handler"):
        (app / name).unlink()  # the last reference: the programs are gone, nothing uses the table
    replaced = load.apply_load(load.plan_load(smaller, str(app), replace_incompatible_maps=True))
    assert replaced.maps["jt"].action == "replace"
    with Map.from_pin(str(app / "maps" / "jt")) as jt:
        assert jt.info.max_entries == 128
