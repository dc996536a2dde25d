"""An object file is untrusted input: only a regular file is read, without blocking and with a size
cap; every program, map and section name is checked before anything is built from it. Crafted objects
are clang builds of tests/testdata/c/loader_names.c with names rewritten in place (tests/testdata/elfpatch.py)."""

from __future__ import annotations

import os
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import ObjectFileError, VerifierError

from tests.deadline import deadline
from tests.testdata.build import build_c
from tests.testdata.elfpatch import TEMPLATE_MAP as MAP
from tests.testdata.elfpatch import TEMPLATE_PROGRAM as PROG
from tests.testdata.elfpatch import TEMPLATE_SECTION as SECTION
from tests.testdata.elfpatch import crafted


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_c("loader_names.c", tmp_path_factory.mktemp("names"))


def test_template_reads_as_is(template):
    spec = objfile.read_object(template)
    assert [(p.name, p.section) for p in spec.programs] == [(PROG, SECTION)]
    assert [m.name for m in spec.maps] == [MAP]


@pytest.mark.parametrize("old, new, section, message", [
    (PROG, b"/tmp/some/file", ".strtab", "program name '/tmp/some/file': contains '/'"),
    (PROG, b"../../..", ".strtab", "program name '../../..': contains '/'"),
    (PROG, b"..", ".strtab", "program name '..': is '..', a relative directory"),
    (PROG, b"x.y", ".strtab", "program name 'x.y': contains '.'"),
    (PROG, b"bad\x01name", ".strtab", "program name 'bad\\x01name': contains the control character U+0001"),
    (PROG, b"esc\x1b[2J", ".strtab", "contains the control character U+001B"),
    (PROG, b"xdp-dispatch", ".strtab", "program name 'xdp-dispatch': is not a C identifier"),
    (PROG, "ünï".encode(), ".strtab", "is not a C identifier"),
    (MAP, b"../../../etc/passwd", ".strtab", "map name '../../../etc/passwd': contains '/'"),
    (MAP, b"m\x7f", ".strtab", "map name 'm\\x7f': contains the control character U+007F"),
    (MAP, b"/tmp/x", ".BTF", "map name (BTF) '/tmp/x': contains '/'"),
    (SECTION, b"xdp/\x01", ".strtab", "section name 'xdp/\\x01': contains the control character U+0001"),
])
def test_crafted_names_are_refused_naming_the_file(template, tmp_path, old, new, section, message):
    obj = crafted(template, tmp_path / "crafted.o", (old, new, section))
    with pytest.raises(ObjectFileError) as caught:
        objfile.read_object(obj)
    assert str(caught.value).startswith(f"{obj}: ") and message in str(caught.value)


def test_a_name_too_long_to_pin_is_refused(tmp_path):
    obj = build_c("loader_names.c", tmp_path, "HUGE_NAMES")
    with pytest.raises(ObjectFileError, match=r"program name 'prog_x+': is 261 bytes long; at most 233 bytes"):
        objfile.read_object(obj)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "object.o"
    os.mkfifo(fifo)
    with deadline(5), pytest.raises(ObjectFileError, match="is a FIFO \\(named pipe\\), not a regular file"):
        objfile.read_object(fifo)


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    """The path looked regular when checked, but a FIFO is what gets opened: O_NONBLOCK and fstat on the
    open fd catch it."""
    fifo = tmp_path / "object.o"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **kw: real_stat(__file__) if str(path) == str(fifo)
                        else real_stat(path, *a, **kw))
    with deadline(5), pytest.raises(ObjectFileError, match="is a FIFO"):
        objfile.read_object(fifo)


@pytest.mark.parametrize("path, kind", [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_devices_are_refused(path, kind):
    with deadline(5), pytest.raises(ObjectFileError, match=f"{path}: is {kind}, not a regular file"):
        objfile.read_object(path)


def test_an_oversized_file_is_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.o"
    with open(huge, "wb") as f:
        f.truncate(objfile.MAX_OBJECT_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ObjectFileError, match=f"is {objfile.MAX_OBJECT_BYTES + 1} bytes; object files larger "
                                              f"than {objfile.MAX_OBJECT_BYTES} bytes are refused"):
        objfile.read_object(huge)
    with pytest.raises(ObjectFileError, match="objects larger than"):
        objfile.read_object(b"\0" * (objfile.MAX_OBJECT_BYTES + 1))


def test_a_file_growing_while_read_is_cut_off(tmp_path, monkeypatch):
    """fstat said 10 bytes (under the limit), but the file holds 100 when read: reading stops past the limit."""
    grown = tmp_path / "grown.o"
    grown.write_bytes(b"\0" * 100)
    real_fstat = os.fstat

    def fstat_before_growth(fd):
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10,
                               st.st_atime, st.st_mtime, st.st_ctime))

    monkeypatch.setattr(os, "fstat", fstat_before_growth)
    with pytest.raises(ObjectFileError, match="grew past 64 bytes while being read"):
        objfile.read_file(str(grown), limit=64)


def test_a_symlink_to_an_object_is_read(template, tmp_path):
    link = tmp_path / "link.o"
    link.symlink_to(template)
    assert [p.name for p in objfile.read_object(link).programs] == [PROG]


# -- source locations of verifier rejections ------------------------------------------------------

def _line_info(*records):
    return objfile.ExtInfo(16, b"".join(struct.pack("<IIII", *r) for r in records))


def test_source_at_maps_an_instruction_to_its_line():
    strings = b"\0prog.lisp\0(when (> x 1)\0  (return 2)\0evil\x1b[2J.lisp\0"
    file, when, ret, evil = (strings.index(text) for text in (b"prog", b"(when", b"  (ret", b"evil"))
    spec = objfile.ProgramSpec("p", "xdp", b"\0" * 80, 6, 37, 0,
                               line_info=_line_info((0, file, when, 3 << 10 | 5), (4, file, ret, 4 << 10 | 3),
                                                    (7, evil, ret, 9 << 10)),
                               btf_strings=strings)
    assert spec.source_at(0) == objfile.SourceLine(0, "prog.lisp", 3, 5, "(when (> x 1)")
    assert spec.source_at(3).location == "prog.lisp:3:5"
    assert spec.source_at(5).location == "prog.lisp:4:3" and spec.source_at(5).text == "(return 2)"
    assert spec.source_at(9).location == "evil\\x1b[2J.lisp:9", "no column; control characters escaped"
    assert objfile.ProgramSpec("q", "xdp", b"", 6, 37, 0).source_at(0) is None


LOG = """0: R1=ctx() R10=fp0
; (let ((data (xdp-data))) @ bad.lisp:6
0: (61) r6 = *(u32 *)(r1 +0)          ; R1=ctx() R6=pkt(r=0)
4: (2d) if r2 > r1 goto pc+13         ; R1=pkt_end() R2=pkt(off=14,r=14)
; (when (= (ipv4-protocol (+ data 14)) 6) @ bad.lisp:11
14: (71) r1 = *(u8 *)(r6 +23)
invalid access to packet, off=23 size=1, R6(id=0,off=23,r=14)
R6 offset is outside of the packet
processed 14 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
"""


def test_the_failing_instruction_is_the_last_one_the_log_shows():
    exc = VerifierError(13, "prog_load", "p", LOG)
    assert exc.failing_insn() == (14, "invalid access to packet, off=23 size=1, R6(id=0,off=23,r=14)")
    assert VerifierError(22, "btf_load", "", "[1] STRUCT x size=0\nInvalid size\n").failing_insn() is None
    exc.source = "bad.lisp:11:14: invalid access to packet"
    assert str(exc).startswith("bad.lisp:11:14: invalid access to packet\nprog_load p: Permission denied")


def test_an_object_path_with_a_nul_is_refused():
    with pytest.raises(ObjectFileError, match="'/tmp/x\\\\x00y': the path contains a NUL character"):
        objfile.read_object("/tmp/x\0y")
