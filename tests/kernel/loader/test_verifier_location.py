"""A verifier rejection is located in the source: the last instruction the verifier printed is mapped
through the program's line_info (.BTF.ext) to file:line:col and the source line, which head the error
(the loader's VerifierError and xdp_load's failure message); the whole log stays in ``log`` /
``verifier_log``. Expected lines and columns are found in the source text by the tests, not taken from
the loader: once for a Whistler program our compiler accepts but the verifier rejects (a packet read
past the checked length), once for a clang object (tests/testdata/c/loader_reject.c)."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import VerifierError

from tests.testdata.build import source

SHORT_CHECK = """\
(in-package #:whistler)

(defmap hits :type :array :key-size 4 :value-size 8 :max-entries 1)

;; Checks 14 bytes (the Ethernet header), then reads the IPv4 protocol at byte 23.
(defprog xdp-short-check (:type :xdp :section "xdp" :license "GPL")
  (let ((data     (xdp-data))
        (data-end (xdp-data-end)))
    (when (> (+ data 14) data-end)
      (return XDP_PASS))
    (incf (getmap hits 0))
    (when (= (ipv4-protocol (+ data 14)) 6)
      (return XDP_DROP)))
  XDP_PASS)
"""


def where(text: str, needle: str):
    """(line, column, line text) of the first ``needle`` in ``text``, 1-based like compilers count."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1, line.strip()
    raise AssertionError(f"{needle!r} not in the source")


def compile_short_check(directory):
    """SHORT_CHECK compiled by our compiler without its checking stage (which refuses it as the
    verifier does: this tests what the loader says when a program the compiler let through is
    refused anyway)."""
    import compiler

    obj = directory / "short-check.bpf.o"
    obj.write_bytes(compiler.compile_source(SHORT_CHECK, "short-check.lisp", check_stage=False).elf)
    return obj


@pytest.fixture
def short_check(tmp_path):
    return compile_short_check(tmp_path)


def rejected(obj, app) -> VerifierError:
    with pytest.raises(VerifierError) as caught:
        load.apply_load(load.plan_load(objfile.read_object(obj), str(app)))
    return caught.value


def test_whistler_rejection_names_the_form(short_check, pin_dir):
    line, col, text = where(SHORT_CHECK, "(ipv4-protocol")
    exc = rejected(short_check, pin_dir / "app")
    head, source_line, *rest = str(exc).splitlines()
    assert head.startswith(f"short-check.lisp:{line}:{col}: invalid access to packet, off=23 size=1")
    assert head.endswith("of program 'xdp_short_check')")
    assert source_line.strip() == text
    assert "prog_load xdp_short_check" in rest[0]
    insn = exc.failing_insn()[0]
    assert f"(instruction {insn} of program" in head
    assert any(entry.startswith(f"{insn}: (71)") for entry in exc.log.splitlines()), "the whole log is kept"
    assert list(pin_dir.iterdir()) == []


def test_clang_rejection_names_the_c_line(build, pin_dir):
    path = source("loader_reject.c")
    text = path.read_text()
    line, col, code = where(text, "data[20] == 6")
    exc = rejected(build("loader_reject.c", "V2_BROKEN"), pin_dir / "app")
    head, source_line = str(exc).splitlines()[:2]
    assert head.startswith(f"{path}:{line}:{col}: invalid access to packet, off=20 size=1")
    assert "of program 'unchecked_read'" in head
    assert source_line.strip() == code
