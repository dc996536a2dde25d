"""The modules' shared helpers: Diff, requirement checks, loader error reporting."""

from __future__ import annotations

import errno

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils import _imports
from ansible_collections.whistler.xdp.plugins.module_utils._diff import Diff
from ansible_collections.whistler.xdp.plugins.module_utils._module_base import loader_errors


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self):
        self.failure = None

    def fail_json(self, **kwargs):
        self.failure = kwargs
        raise Failed


def test_diff_changed_follows_records():
    diff = Diff()
    diff.record("veth0", {"prog_id": 1}, {"prog_id": 1})
    assert not diff.changed
    diff.record("veth1", None, {"prog_id": 2})
    assert diff.changed
    assert diff.result() == {"before": {"veth0": {"prog_id": 1}, "veth1": None},
                             "after": {"veth0": {"prog_id": 1}, "veth1": {"prog_id": 2}}}


def test_check_requirements_reports_missing_library(monkeypatch):
    monkeypatch.setattr(_imports, "_MISSING", [("pyroute2 >= 0.9.1", "Traceback: no module named pyroute2")])
    module = FakeModule()
    with pytest.raises(Failed):
        _imports.check_requirements(module)
    assert "pyroute2 >= 0.9.1" in module.failure["msg"]
    assert module.failure["exception"] == "Traceback: no module named pyroute2"


def test_check_requirements_reports_loader_import_error(monkeypatch):
    monkeypatch.setattr(_imports, "_MISSING", [])
    module = FakeModule()
    _imports.check_requirements(module)  # nothing missing, loader imported: passes
    with pytest.raises(Failed):
        _imports.check_requirements(module, "Traceback: ImportError: cannot import name 'x'")
    assert "loader" in module.failure["msg"]


def test_loader_errors_carries_message_and_verifier_log():
    class Rejected(OSError):
        log = "0: R1=ctx\ninvalid access to packet\n"

    module = FakeModule()
    with pytest.raises(Failed):
        with loader_errors(module):
            raise Rejected(errno.EACCES, "prog_load xdp_dispatch: Permission denied")
    assert "prog_load xdp_dispatch" in module.failure["msg"]
    assert module.failure["verifier_log"] == ["0: R1=ctx", "invalid access to packet"]
    assert "Traceback" in module.failure["exception"]


def test_loader_errors_lets_bugs_through():
    with pytest.raises(KeyError):
        with loader_errors(FakeModule()):
            raise KeyError("a bug, not bad input")
