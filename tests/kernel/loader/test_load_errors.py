"""Must show 6 (loader part): a verifier rejection returns the verifier log; a program whose attach type
does not match the jump table's owner gets an explanatory error, not a bare EINVAL; nothing changes."""

from __future__ import annotations

import dataclasses
import errno

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import (
    OwnerMismatchError,
    VerifierError,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program


def test_verifier_rejection_carries_the_log_and_pins_nothing(build, pin_dir):
    spec = objfile.read_object(build("loader_reject.c"))
    with pytest.raises(VerifierError) as caught:
        load.apply_load(load.plan_load(spec, str(pin_dir / "app")))
    assert caught.value.errno == errno.EACCES
    assert "invalid access to packet" in caught.value.log
    assert "unchecked_read" in str(caught.value)
    assert "invalid access to packet" in str(caught.value)
    assert list(pin_dir.iterdir()) == []


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
