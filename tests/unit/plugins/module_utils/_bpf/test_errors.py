"""Error texts name the operation, the object, the errno and a hint for the kernel's bare errnos."""

from __future__ import annotations

import errno

from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError, VerifierError


def test_bpf_error_names_op_object_and_hint():
    e = BpfError(errno.EPERM, "obj_pin", "/sys/fs/bpf/a.b")
    assert isinstance(e, OSError) and e.errno == errno.EPERM
    assert str(e).startswith("obj_pin /sys/fs/bpf/a.b: Operation not permitted (EPERM)")
    assert "'.'" in str(e)


def test_unknown_combination_has_no_hint():
    assert str(BpfError(errno.ENOMEM, "map_create", "m")) == "map_create m: Cannot allocate memory (ENOMEM)"


def test_verifier_error_keeps_full_log_and_shows_its_end():
    log = "\n".join(f"line {i}" for i in range(10)) + "\n"
    e = VerifierError(errno.EACCES, "prog_load", "p", log)
    assert e.log == log
    assert str(e).endswith("line 7\nline 8\nline 9")
    assert "line 6" not in str(e)
