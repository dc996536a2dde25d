"""Issue 7 item 3 through the modules: crafted objects, files that are not objects, symlinks in pin
directories and hostile option values get a clear error and change nothing, on the host or in bpffs.

Crafted objects are clang builds of tests/testdata/c/loader_names.c with names rewritten in place
(tests/testdata/elfpatch.py); what is pinned is read back from the filesystem and with bpftool.
"""

from __future__ import annotations

import os

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import objfile

from tests.deadline import deadline
from tests.kernel.modules.bpftool_view import bpftool_loadall, prog_array_entries, xdp_hook
from tests.testdata.build import build_c
from tests.testdata.elfpatch import TEMPLATE_MAP as MAP
from tests.testdata.elfpatch import TEMPLATE_PROGRAM as PROG
from tests.testdata.elfpatch import crafted


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_c("loader_names.c", tmp_path_factory.mktemp("names"))


def files_under(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.fixture
def victim(tmp_path):
    """A file outside bpffs that a crafted name points at; it must survive every test."""
    path = tmp_path / "victim"
    path.write_text("precious")
    yield path
    assert path.read_text() == "precious", "a crafted object reached a file outside bpffs"


@pytest.mark.parametrize("state", ["absent", "present"])
@pytest.mark.parametrize("which", ["program", "map"])
@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_a_crafted_name_never_reaches_a_file_outside(pin_dir, clang_object, run_module, template, tmp_path,
                                                     victim, state, which, style):
    """The issue's report: state=absent with an object whose program symbol is a path removed that
    file. A name with '/' is refused before any path is built, and the loaded pins stay as they were."""
    run_module("xdp_load", {"object": str(clang_object), "pin_path": str(pin_dir / "xdp")})
    before = files_under(pin_dir)
    depth = str(pin_dir / "xdp").count("/")
    name = str(victim) if style == "absolute" else "../" * depth + str(victim).lstrip("/")
    obj = crafted(template, tmp_path / "crafted.o", (PROG if which == "program" else MAP, name.encode()))
    result = run_module("xdp_load", {"object": str(obj), "pin_path": str(pin_dir / "xdp"), "state": state})
    assert result.get("failed") is True
    assert result["msg"] == f"object {obj}: {which} name {name!r}: contains '/' (a name is one path component)"
    assert files_under(pin_dir) == before


def test_a_crafted_dotdot_name_is_refused(pin_dir, run_module, template, tmp_path):
    obj = crafted(template, tmp_path / "crafted.o", (PROG, b".."))
    result = run_module("xdp_load", {"object": str(obj), "pin_path": str(pin_dir / "xdp"), "state": "absent"})
    assert result.get("failed") is True and "program name '..': is '..'" in result["msg"]
    assert list(pin_dir.iterdir()) == []


@pytest.mark.parametrize("state", ["present", "absent"])
@pytest.mark.parametrize("kind, message", [("fifo", "is a FIFO (named pipe), not a regular file"),
                                           ("/dev/zero", "is a character device, not a regular file"),
                                           ("huge", "bytes; object files larger than")])
def test_an_object_that_is_not_a_regular_file_of_sane_size_fails_fast(pin_dir, run_module, tmp_path, state,
                                                                      kind, message):
    if kind == "fifo":
        path = tmp_path / "object.o"
        os.mkfifo(path)
    elif kind == "huge":
        path = tmp_path / "huge.o"
        with open(path, "wb") as f:
            f.truncate(objfile.MAX_OBJECT_BYTES + 1)
    else:
        path = kind
    with deadline(10):
        result = run_module("xdp_load", {"object": str(path), "pin_path": str(pin_dir / "xdp"), "state": state})
    assert result.get("failed") is True
    assert result["msg"].startswith(f"object {path}: ") and message in result["msg"]
    assert "Traceback" not in result["msg"] and "MemoryError" not in result.get("exception", "")
    assert list(pin_dir.iterdir()) == []


def test_a_pin_that_is_a_symlink_out_of_the_directory_is_not_followed(pin_dir, clang_object, run_module, victim):
    app = pin_dir / "xdp"
    run_module("xdp_load", {"object": str(clang_object), "pin_path": str(app)})
    (app / "tcp_handler").unlink()
    (app / "tcp_handler").symlink_to(victim)
    for state in ("present", "absent"):
        refused = run_module("xdp_load", {"object": str(clang_object), "pin_path": str(app), "state": state})
        assert refused.get("failed") is True, refused
        assert f"{app / 'tcp_handler'}: is a symlink" in refused["msg"]
        assert "refusing to follow it out of" in refused["msg"]
    # Without an object, state=absent removes every pin it may and leaves the symlink (and so the directory).
    gone = run_module("xdp_load", {"pin_path": str(app), "state": "absent"})
    assert not gone.get("failed"), gone
    assert str(app / "tcp_handler") not in gone["removed"] and len(gone["removed"]) == 4
    assert files_under(pin_dir) == ["xdp", "xdp/tcp_handler"]
    assert (app / "tcp_handler").is_symlink()


def test_a_map_directory_that_is_a_symlink_is_refused(pin_dir, clang_object, run_module):
    elsewhere = pin_dir / "elsewhere"
    elsewhere.mkdir()
    (pin_dir / "xdp").mkdir()
    (pin_dir / "xdp" / "maps").symlink_to(elsewhere)
    result = run_module("xdp_load", {"object": str(clang_object), "pin_path": str(pin_dir / "xdp")})
    assert result.get("failed") is True
    assert f"map directory {pin_dir / 'xdp' / 'maps'}: is a symlink" in result["msg"]
    assert list(elsewhere.iterdir()) == [] and files_under(pin_dir) == ["elsewhere", "xdp", "xdp/maps"]


def test_a_pin_path_that_is_a_symlink_out_of_bpffs_is_refused(pin_dir, clang_object, run_module, tmp_path):
    (pin_dir / "xdp").symlink_to(tmp_path)
    result = run_module("xdp_load", {"object": str(clang_object), "pin_path": str(pin_dir / "xdp")})
    assert result.get("failed") is True and "is not on a bpffs mount" in result["msg"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("interface, message", [
    ("veth0\u0000x", "interface 'veth0\\x00x': contains a NUL character, which interface names cannot"),
    ("veth0\u0001", "contains the control character U+0001"),
    ("a" * 16, "is longer than 15 bytes (IFNAMSIZ - 1)"),
    ("../veth0", "contains '/' or ':'"),
])
def test_an_interface_name_netlink_would_truncate_is_refused(netns_pair, pin_dir, clang_object, run_module,
                                                             interface, message):
    run_module("xdp_load", {"object": str(clang_object), "pin_path": str(pin_dir / "xdp")})
    for state in ("present", "absent"):
        result = run_module("xdp_attach", {"interface": interface, "netns": netns_pair.a, "mode": "generic",
                                           "program": str(pin_dir / "xdp" / "xdp_dispatch"), "state": state})
        assert result.get("failed") is True
        assert result["msg"] == message or message in result["msg"]
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {}
    assert not (pin_dir / "xdp" / "attached").exists()


@pytest.mark.parametrize("netns, message", [
    ("/proc/self/status", "network namespace path '/proc/self/status': /proc/self/status is a file on procfs, "
                          "not a namespace file (nsfs)"),
    ("/proc/self/ns/mnt", "/proc/self/ns/mnt is a mount namespace, not a network namespace"),
    ("wxt-no-such-netns", "network namespace 'wxt-no-such-netns' does not exist"),
])
def test_a_netns_that_is_not_a_network_namespace_says_which(netns_pair, pin_dir, clang_object, run_module,
                                                            netns, message):
    run_module("xdp_load", {"object": str(clang_object), "pin_path": str(pin_dir / "xdp")})
    result = run_module("xdp_attach", {"interface": netns_pair.if_a, "netns": netns, "mode": "generic",
                                       "program": str(pin_dir / "xdp" / "xdp_dispatch")})
    assert result.get("failed") is True
    assert message in result["msg"]
    assert xdp_hook(netns_pair.a, netns_pair.if_a) == {}


@pytest.mark.parametrize("key", ["1_0", "\u0663", " 6", "+6", "6\n", "0x6_0"])
def test_a_jump_table_key_that_is_not_a_plain_integer_is_refused(pin_dir, clang_object, run_module, key):
    """int() would read "1_0" as slot 10 and "٣" as slot 3."""
    bpftool_loadall(clang_object, pin_dir / "progs", pin_dir / "maps")
    result = run_module("xdp_prog_array", {"map": str(pin_dir / "maps" / "jt"),
                                           "entries": {key: str(pin_dir / "progs" / "tcp_handler")}})
    assert result.get("failed") is True
    assert f"entries: key {key!r} is not a slot number" in result["msg"]
    assert prog_array_entries(pin_dir / "maps" / "jt") == {}


def test_hex_keys_wire_the_slot_they_say(pin_dir, clang_object, run_module):
    bpftool_loadall(clang_object, pin_dir / "progs", pin_dir / "maps")
    result = run_module("xdp_prog_array", {"map": str(pin_dir / "maps" / "jt"),
                                           "entries": {"0x11": str(pin_dir / "progs" / "udp_handler")}})
    assert result["changed"] is True, result
    assert list(prog_array_entries(pin_dir / "maps" / "jt")) == [17]
