"""xdp_load's failure message for a verifier rejection starts with the source location and line of the
rejected instruction; ``verifier_log`` keeps the whole log (tests/kernel/loader/test_verifier_location.py
checks the loader side)."""

from __future__ import annotations

import pytest

from tests.kernel.loader.test_verifier_location import SHORT_CHECK, compile_short_check, where


@pytest.fixture
def short_check(tmp_path):
    return compile_short_check(tmp_path)


def test_xdp_load_failure_message_starts_with_the_location(short_check, pin_dir, run_module):
    line, col, text = where(SHORT_CHECK, "(ipv4-protocol")
    result = run_module("xdp_load", {"object": str(short_check), "pin_path": str(pin_dir / "app")})
    assert result.get("failed") is True
    assert result["msg"].startswith(f"short-check.lisp:{line}:{col}: invalid access to packet")
    assert result["msg"].splitlines()[1].strip() == text
    log = result["verifier_log"]
    assert isinstance(log, list) and any("invalid access to packet" in entry for entry in log)
    assert any(": (71) r1 = *(u8 *)" in entry for entry in log), "the whole log, instruction by instruction"
    assert list(pin_dir.iterdir()) == []
