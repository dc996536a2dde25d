"""Offline kernel tags: expected digests are computed here from hand-written, already-normalised bytes."""

from __future__ import annotations

import hashlib
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import tag


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


MOV_R0_2, EXIT = insn(0xB7, imm=2), insn(0x95)


def test_plain_program_tags_are_digest_prefixes():
    code = MOV_R0_2 + EXIT
    assert tag.program_tag(code, "sha256") == hashlib.sha256(code).hexdigest()[:16]
    assert tag.program_tag(code, "sha1") == hashlib.sha1(code).hexdigest()[:16]
    assert tag.tags(code) == {hashlib.sha256(code).hexdigest()[:16], hashlib.sha1(code).hexdigest()[:16]}


def test_map_fd_immediates_do_not_change_the_tag():
    loaded = insn(0x18, dst=1, src=1, imm=7) + insn(0, imm=0x1234) + MOV_R0_2 + EXIT
    zeroed = insn(0x18, dst=1, src=1, imm=0) + insn(0, imm=0) + MOV_R0_2 + EXIT
    assert tag.program_tag(loaded) == hashlib.sha256(zeroed).hexdigest()[:16]


def test_map_loads_marks_relocated_instructions():
    unrelocated = MOV_R0_2 + insn(0x18, dst=1, imm=0) + insn(0) + EXIT
    as_loaded = MOV_R0_2 + insn(0x18, dst=1, src=1, imm=0) + insn(0) + EXIT
    assert tag.tags(unrelocated, map_loads=[1]) == tag.tags(as_loaded)
    assert tag.tags(unrelocated) != tag.tags(as_loaded)


def test_plain_64bit_constants_are_hashed_as_they_are():
    const = insn(0x18, dst=1, imm=5) + insn(0, imm=9) + EXIT
    assert tag.program_tag(const) == hashlib.sha256(const).hexdigest()[:16]


@pytest.mark.parametrize("bad, message", [
    (dict(insns=EXIT[:5]), "multiple of 8"),
    (dict(insns=MOV_R0_2 + EXIT, map_loads=[0]), "not ld_imm64"),
])
def test_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        tag.tags(**bad)


def test_unknown_algorithm():
    with pytest.raises(ValueError, match="md5"):
        tag.program_tag(EXIT, "md5")
