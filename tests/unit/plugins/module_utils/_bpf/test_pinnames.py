"""Names from outside become pin path components only through ``pinnames`` and ``pins.join``: every
unsafe name is refused with the reason, and no name whatsoever (arbitrary Unicode, arbitrary bytes as
pyelftools decodes them) yields a path outside the directory."""

from __future__ import annotations

import os

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import pinnames, pins
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError, UnsafeNameError
from hypothesis import example, given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("name, reason", [
    ("", "is empty"),
    ("/tmp/some/file", "contains '/'"),
    ("../../..", "contains '/'"),
    ("..", "is '..', a relative directory"),
    (".", "is '.', a relative directory"),
    ("a.b", "contains '.'"),
    ("veth0\0x", "contains a NUL character"),
    ("a\x01b", "contains the control character U+0001"),
    ("a\nb", "contains the control character U+000A"),
    ("a\x7fb", "contains the control character U+007F"),
    ("a\u200eb", "contains the non-printable character U+200E"),
    ("x" * 234, "is 234 bytes long; at most 233 bytes"),
    ("é" * 117, "is 234 bytes long"),
    ("\udcff", "contains the non-printable character U+DCFF"),
    (b"bytes", "is a bytes, not a string"),
])
def test_unsafe_pin_names_are_refused_with_the_reason(name, reason):
    with pytest.raises(UnsafeNameError, match="^program name ") as caught:
        pinnames.check_pin_name(name, "program name")
    assert reason in str(caught.value)
    assert "\0" not in str(caught.value) and "\x01" not in str(caught.value), "control characters are escaped"


@pytest.mark.parametrize("name", ["xdp_dispatch", "x" * 233, "if4_ns4026531840", "a-b", "ünïcode"])
def test_safe_pin_names_pass(name):
    assert pinnames.check_pin_name(name) == name


@pytest.mark.parametrize("name, reason", [
    ("xdp-dispatch", "is not a C identifier"),
    ("9lives", "is not a C identifier"),
    ("ünïcode", "is not a C identifier"),
    ("a b", "is not a C identifier"),
    ("/etc/passwd", "contains '/'"),
])
def test_object_names_must_be_kernel_names(name, reason):
    with pytest.raises(UnsafeNameError, match=reason):
        pinnames.check_object_name(name, "map name")


def test_long_object_names_are_fine():
    """The kernel keeps 15 characters of a program name; the pin keeps the whole ELF name."""
    name = "handler_with_a_name_longer_than_fifteen"
    assert pinnames.check_object_name(name, "program name") == name


def test_printable_escapes_control_characters():
    assert pinnames.printable("a\x1b[31mb\0") == "a\\x1b[31mb\\x00"


def test_staged_name_pattern():
    assert pinnames.STAGED_NAME.fullmatch("xdp_dispatch_whistler_tmp_0123abcd")
    for other in ("xdp_dispatch_whistler_tmp_0123abc", "xdp_dispatch_whistler_tmp_0123abcz",
                  "_whistler_tmp_0123abcd", "a/b_whistler_tmp_0123abcd", "xdp_dispatch"):
        assert not pinnames.STAGED_NAME.fullmatch(other)


@pytest.fixture(scope="module")
def pin_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("pins"))


def _inside(directory: str, path: str) -> bool:
    return os.path.dirname(path) == directory and os.path.realpath(path).startswith(os.path.realpath(directory) + "/")


@settings(max_examples=400, deadline=None)
@given(name=st.text())
@example(name="../../../etc/passwd")
@example(name="/tmp/some/file")
@example(name="..")
@example(name="a/../../b")
@example(name="a\0b")
def test_no_unicode_name_escapes_the_directory(pin_dir, name):
    directory = pin_dir
    try:
        path = pins.join(directory, name)
    except UnsafeNameError:
        return
    assert _inside(directory, path)
    assert os.path.basename(path) == name


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=300))
@example(raw=b"../../..")
@example(raw=b"\xc0\xaf\xc0\xae")  # overlong UTF-8 '/' and '.'
def test_no_elf_name_escapes_the_directory(pin_dir, raw):
    """pyelftools decodes ELF names as latin-1: every byte string is some name."""
    directory = pin_dir
    for name in (raw.decode("latin-1"), raw.decode("utf-8", "surrogateescape")):
        try:
            path = pins.join(directory, name)
        except UnsafeNameError:
            continue
        assert _inside(directory, path)


def test_join_refuses_a_symlink_out_of_the_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("precious")
    pin_dir = tmp_path / "pins"
    pin_dir.mkdir()
    (pin_dir / "xdp_dispatch").symlink_to(outside)
    with pytest.raises(BpfError, match="is a symlink .* not a pin: refusing to follow it out of"):
        pins.join(str(pin_dir), "xdp_dispatch")
    assert outside.read_text() == "precious"


def test_listings_skip_symlinks_and_names_never_made_here(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to("/etc")
    (tmp_path / "bad\x01name").mkdir()
    (tmp_path / "dotted.name").mkdir()
    assert pins.entries(str(tmp_path)) == [str(tmp_path / "sub")]


def test_emptied_dirs_predicts_what_remove_empty_dirs_removes(tmp_path):
    app = tmp_path / "app"
    (app / "maps").mkdir(parents=True)
    (app / "attached").mkdir()
    (app / "prog").write_text("")
    (app / "maps" / "m").write_text("")
    (app / "attached" / "foreign").write_text("")
    dirs = [str(app / "attached"), str(app / "maps"), str(app)]
    removed = [str(app / "prog"), str(app / "maps" / "m")]
    assert pins.emptied_dirs(dirs, removed) == [str(app / "maps")], "attached/ holds something else"
    removed.append(str(app / "attached" / "foreign"))
    predicted = pins.emptied_dirs(dirs, removed)
    assert predicted == [str(app / "attached"), str(app / "maps"), str(app)]
    for path in removed:
        os.unlink(path)
    assert pins.remove_empty_dirs(dirs) == predicted
    assert not app.exists()


def test_a_mount_point_is_never_removed(monkeypatch, tmp_path):
    empty = tmp_path / "mnt"
    empty.mkdir()
    monkeypatch.setattr(os.path, "ismount", lambda path: path == str(empty))
    assert pins.emptied_dirs([str(empty)], []) == []
    assert not pins.remove_dir_if_empty(str(empty))
    assert empty.is_dir()
