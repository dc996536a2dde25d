"""The managed-host Python and requirement checks, and the preflight's host facts, without a kernel:
which Pythons are refused and how, a library that is installed but fails to import on this Python
(pyroute2 0.9.2 on 3.8), capabilities and the mount table as the kernel writes them."""

from __future__ import annotations

import sys

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils import _imports, _preflight, _requirements


@pytest.mark.parametrize("version, refused", [
    ((3, 8, 18), "Python 3.8.18 is not supported on managed hosts: whistler.xdp needs Python >= 3.9"),
    ((3, 6, 15), "Python 3.6.15 is not supported on managed hosts: whistler.xdp needs Python >= 3.9"),
    ((3, 14, 0), "Python 3.14.0 is newer than the newest Python whistler.xdp is tested with (3.13)"),
    ((3, 9, 0), None),
    ((3, 13, 5), None),
])
def test_python_support(version, refused):
    problems = _requirements.python_problems(version)
    assert len(problems) == (0 if refused is None else 1)
    if refused:
        assert problems[0].startswith(refused)


def test_an_untested_newer_python_can_be_allowed_an_older_one_cannot():
    assert _requirements.python_problems((3, 14, 0), allow_untested=True) == []
    assert _requirements.python_problems((3, 8, 0), allow_untested=True)


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    """``fake_library(module, version, body)``: an installed distribution named ``module`` at ``version``
    whose import runs ``body``."""
    def make(module, version, body):
        (tmp_path / module).mkdir()
        (tmp_path / module / "__init__.py").write_text(body)
        info = tmp_path / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, module, raising=False)
        return _requirements.Requirement(module, module, "0.9.1")
    return make


def test_a_library_that_fails_at_import_counts_as_missing(fake_library):
    broken = fake_library("whistler_fake_broken", "0.9.2", "ns: dict[str, int]\nraise TypeError(\"'type' object is not subscriptable\")\n")
    report = _requirements._check(broken)
    assert report == dict(required=">=0.9.1", version="0.9.2", works=False,
                          error="TypeError: 'type' object is not subscriptable")
    assert _requirements.missing((broken,)) == [("whistler_fake_broken >= 0.9.1",
                                                 "TypeError: 'type' object is not subscriptable")]


def test_a_library_older_than_the_minimum_counts_as_missing(fake_library):
    old = fake_library("whistler_fake_old", "0.8.1", "")
    assert _requirements._check(old)["error"] == "whistler_fake_old 0.8.1 is older than 0.9.1"


def test_an_absent_library_is_not_installed():
    absent = _requirements.Requirement("whistler-not-there", "whistler_not_there", "1.0")
    assert _requirements._check(absent)["error"] == "whistler-not-there is not installed"


def test_inspect_asks_pip_only_for_the_required_ones_that_do_not_work(monkeypatch):
    answers = {"pyroute2": False, "pyelftools": True, "jsonschema": False}
    monkeypatch.setattr(_requirements, "_check", lambda r: dict(works=answers[r.distribution]))
    report = _requirements.inspect()
    assert report["ready"] is False
    assert report["pip"] == ["pyroute2>=0.9.1"]  # jsonschema is optional: reported, not installed
    assert report["packages"]["jsonschema"]["optional"] is True


def test_modules_refuse_an_unsupported_python_first(monkeypatch):
    class Failed(Exception):
        pass

    class Module:
        def fail_json(self, **kwargs):
            self.failure = kwargs
            raise Failed

    module = Module()
    monkeypatch.setattr(_imports, "_PYTHON", ["Python 3.8.18 is not supported on managed hosts: ..."])
    with pytest.raises(Failed):
        _imports.check_requirements(module)
    assert module.failure["msg"].startswith("Python 3.8.18 is not supported")
    monkeypatch.setattr(_imports, "_PYTHON", [])
    monkeypatch.setattr(_imports, "_MISSING", [])
    monkeypatch.setattr(_imports, "missing", lambda wanted: [("jsonschema >= 4.0", "jsonschema is not installed")
                                                             for r in wanted if r.distribution == "jsonschema"])
    _imports.check_requirements(module)  # only the modules that ask for jsonschema need it
    with pytest.raises(Failed):
        _imports.check_requirements(module, also=("jsonschema",))
    assert "jsonschema >= 4.0" in module.failure["msg"]


def test_capabilities_read_the_effective_set(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n")
    caps = _preflight.capabilities(str(status))
    assert caps["effective"] == "0x1000"
    assert caps["cap_net_admin"] is True
    assert caps["cap_sys_admin"] is False and caps["cap_bpf"] is False


def test_bpffs_mounted_reads_the_mount_table(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("sysfs /sys sysfs rw 0 0\nnone /sys/fs/bpf bpf rw,mode=700 0 0\n"
                      "bpf /srv/my\\040bpf bpf rw 0 0\ntmpfs /sys/fs/bpf2 tmpfs rw 0 0\n")
    assert _preflight.bpffs_mounted("/sys/fs/bpf", str(mounts))
    assert _preflight.bpffs_mounted("/sys/fs/bpf/", str(mounts))
    assert _preflight.bpffs_mounted("/srv/my bpf", str(mounts))
    assert not _preflight.bpffs_mounted("/sys/fs/bpf2", str(mounts))
    assert not _preflight.bpffs_mounted("/sys", str(mounts))


def test_missing_interfaces_and_namespaces_are_named():
    problems = _preflight.interface_problems([
        {"name": "lo"}, {"name": "whistler-nosuch"}, {"name": "eth0", "netns": "whistler-no-such-netns"},
        {"name": "bad\0name"}])
    assert problems[0] == "interface 'whistler-nosuch' does not exist"
    assert problems[1].startswith("interface 'eth0': network namespace 'whistler-no-such-netns' does not exist")
    assert problems[2].startswith("interface 'bad\\x00name': ")
    assert len(problems) == 3


class PreflightModule:
    """Just what xdp_preflight.run uses of an AnsibleModule."""

    def __init__(self, check_mode, **params):
        self.params = dict(features=["xdp"], bpffs="/sys/fs/bpf", mount_bpffs=True, interfaces=[],
                           install_requirements=False, break_system_packages=False,
                           allow_untested_python=False, fail_on_problems=True, **params)
        self.check_mode = check_mode
        self._diff = True
        self.commands = []

    def run_command(self, argv, check_rc=False, environ_update=None):
        self.commands.append((argv, environ_update) if environ_update else argv)
        return 0, "", ""

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs["msg"])


def facts(mounted=False, ready=True, problems=()):
    return dict(bpffs=dict(path="/sys/fs/bpf", exists=True, mounted=mounted), problems=list(problems),
                python=dict(supported=True),
                requirements=dict(ready=ready, pip=[] if ready else ["pyroute2>=0.9.1", "pyelftools>=0.31"]))


@pytest.mark.parametrize("check_mode", [True, False])
def test_preflight_mounts_bpffs_only_outside_check_mode_and_predicts_it(monkeypatch, check_mode):
    from ansible_collections.whistler.xdp.plugins.modules import xdp_preflight

    monkeypatch.setattr(xdp_preflight, "host_facts", lambda *args: facts())
    monkeypatch.setattr(xdp_preflight, "bpffs_mounted", lambda path: True)
    module = PreflightModule(check_mode)
    result = xdp_preflight.run(module)
    assert result["changed"] is True
    assert result["diff"] == dict(before=dict(bpffs_mounted=False, requirements_ready=True),
                                  after=dict(bpffs_mounted=True, requirements_ready=True))
    assert result["problems"] == []
    assert module.commands == ([] if check_mode else [["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"]])
    assert result["bpffs"]["mounted"] is (not check_mode)


def test_preflight_without_mounting_reports_the_missing_mount(monkeypatch):
    from ansible_collections.whistler.xdp.plugins.modules import xdp_preflight

    monkeypatch.setattr(xdp_preflight, "host_facts", lambda *args: facts(problems=["needs Linux 5.7 (...)"]))
    module = PreflightModule(False)
    module.params["mount_bpffs"] = False
    result = xdp_preflight.run(module)
    assert result["changed"] is False and module.commands == []
    assert result["problems"] == ["needs Linux 5.7 (...)", "bpffs is not mounted at /sys/fs/bpf (mount_bpffs=true mounts it)"]


@pytest.mark.parametrize("check_mode", [True, False])
def test_preflight_installs_what_does_not_work_with_this_pythons_pip(monkeypatch, check_mode):
    from ansible_collections.whistler.xdp.plugins.modules import xdp_preflight

    monkeypatch.setattr(xdp_preflight, "host_facts", lambda *args: facts(mounted=True, ready=False))
    module = PreflightModule(check_mode)
    module.params.update(install_requirements=True, break_system_packages=True)
    result = xdp_preflight.run(module)
    assert result["changed"] is True
    assert result["requirements"]["installed"] == ["pyroute2>=0.9.1", "pyelftools>=0.31"]
    assert result["requirements"]["ready"] is (not check_mode)
    if check_mode:
        assert module.commands == []
    else:
        pip, imports = module.commands
        assert pip == ([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                        "pyroute2>=0.9.1", "pyelftools>=0.31"], {"PIP_BREAK_SYSTEM_PACKAGES": "1"})
        assert imports == [sys.executable, "-c", "import pyroute2; import elftools"]


def test_preflight_changes_nothing_on_a_host_with_problems(monkeypatch):
    from ansible_collections.whistler.xdp.plugins.modules import xdp_preflight

    monkeypatch.setattr(xdp_preflight, "host_facts", lambda *args: facts(ready=False, problems=["needs Linux 5.7"]))
    module = PreflightModule(False)
    module.params.update(install_requirements=True)
    result = xdp_preflight.run(module)
    assert result["changed"] is False and module.commands == []
    assert result["requirements"]["installed"] == []
