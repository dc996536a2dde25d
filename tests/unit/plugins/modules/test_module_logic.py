"""Pure parts of the modules: option normalisation, diff shapes, kernel tag algorithm choice."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.whistler.xdp.plugins.modules import (
    xdp_attach,
    xdp_compile,
    xdp_info,
    xdp_load,
    xdp_prog_array,
)


@pytest.mark.parametrize("entries, expected", [
    ({"0": "/sys/fs/bpf/a", "17": "/sys/fs/bpf/b"}, {0: "/sys/fs/bpf/a", 17: "/sys/fs/bpf/b"}),
    ({6: "/sys/fs/bpf/a"}, {6: "/sys/fs/bpf/a"}),
    ({"1": None}, {1: None}),
    ({"0x11": "/a", "007": "/b"}, {17: "/a", 7: "/b"}),
    ({}, {}),
])
def test_slot_entries_normalises_keys(entries, expected):
    assert xdp_prog_array.slot_entries(entries) == expected


@pytest.mark.parametrize("entries, message", [
    ({"tcp": "/sys/fs/bpf/a"}, "key 'tcp' is not a slot number"),
    ({"1_0": "/a"}, "key '1_0' is not a slot number"),
    ({"\u0663": "/a"}, "is not a slot number"),
    ({"-1": "/a"}, "key '-1' is not a slot number"),
    ({"6": "/a", "0x6": "/b"}, "slot 6 is given twice"),
    ({"1": "/a", 1: "/b"}, "slot 1 is given twice"),
    ({"2": ["/a"]}, "slot 2 must name a pinned program path"),
])
def test_slot_entries_rejects_bad_keys(entries, message):
    with pytest.raises(ValueError, match=message):
        xdp_prog_array.slot_entries(entries)


@pytest.mark.parametrize("release, algorithm", [
    ("6.18.44", "sha256"), ("6.18.0-1-amd64", "sha256"), ("7.0.1", "sha256"), ("6.19-rc2", "sha256"),
    ("6.17.9", "sha1"), ("5.15.0-91-generic", "sha1"), ("4.19.0", "sha1"),
])
def test_kernel_tag_algorithm(release, algorithm):
    assert xdp_load.kernel_tag_algorithm(release) == algorithm


def test_hook_words_name_the_program_and_mode():
    from ansible_collections.whistler.xdp.plugins.module_utils._overlay import Planned

    assert xdp_attach.hook_words(0, "generic") is None
    planned = Planned("prog", "/sys/fs/bpf/x/xdp_dispatch", "xdp_dispatch", "3b185187f1855c4c")
    assert xdp_attach.hook_words(planned, "native") == "xdp_dispatch (tag 3b185187f1855c4c, new) in native mode"
    assert xdp_attach.hook_words(planned, "auto") == ("xdp_dispatch (tag 3b185187f1855c4c, new) "
                                                      "in the mode the kernel chooses")


def test_pin_directories(tmp_path):
    assert xdp_info.pin_directories(None, None) == []
    assert xdp_info.pin_directories([str(tmp_path)], None) == [str(tmp_path)]
    (tmp_path / "maps").mkdir()
    assert xdp_info.pin_directories([str(tmp_path)], None) == [str(tmp_path), str(tmp_path / "maps")]
    assert xdp_info.pin_directories([str(tmp_path)], ["/sys/fs/bpf/m"]) == [str(tmp_path), "/sys/fs/bpf/m"]
    other = tmp_path / "other"
    other.mkdir()
    assert xdp_info.pin_directories([str(tmp_path), str(other)], None) == [
        str(tmp_path), str(tmp_path / "maps"), str(other)]


def test_xdp_compile_module_says_it_needs_its_action_plugin(capsys):
    with patch_module_args({"content": "(defprog x)", "dest": "/tmp/x.o"}):
        with pytest.raises(SystemExit):
            xdp_compile.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert "action plugin" in result["msg"]


class _NetnsError(OSError):
    pass


@pytest.mark.parametrize("exc, message", [
    (FileNotFoundError(2, "No such file or directory", "/tmp/x.bpf.o"), "/tmp/x.bpf.o: No such file or directory"),
    (_NetnsError(2, "network namespace 'blue' does not exist"), "network namespace 'blue' does not exist"),
    (ValueError("entries: slot 6 is given twice"), "entries: slot 6 is given twice"),
])
def test_loader_errors_never_show_python_errno_prefixes(exc, message):
    from ansible_collections.whistler.xdp.plugins.module_utils._module_base import describe

    assert describe(exc) == message


def test_loader_errors_keep_messages_the_loader_formats():
    from ansible_collections.whistler.xdp.plugins.module_utils._module_base import describe

    class Formatted(OSError):
        def __str__(self):
            return "obj_get /sys/fs/bpf/x: No such file or directory (ENOENT): nothing is pinned at this path"

    assert describe(Formatted(2, "No such file or directory")) == str(Formatted(2, "x"))
