"""Linking .text subprograms into programs (``subprogs``), on a clang object with a bpf_loop callback,
static and global helpers and a helper calling a helper (tests/testdata/c/loader_subprogs.c). The
expected layout is libbpf's: subprograms appended in order of first reference, depth first."""

from __future__ import annotations

import io
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import ObjectFileError
from elftools.elf.elffile import ELFFile

from tests.testdata.build import build_c

LD_IMM64, CALL = 0x18, 0x85


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return build_c("loader_subprogs.c", tmp_path_factory.mktemp("objs"))


def insn(prog, index):
    """(opcode, src_reg, imm) of slot ``index``."""
    opcode, regs, _off, imm = struct.unpack_from("<BBhi", prog.insns, index * 8)
    return opcode, regs >> 4, imm


def targets(prog):
    """Slot index -> the slot each call or function address in ``prog`` points at."""
    out = {}
    for i in range(prog.slots):
        opcode, src, imm = insn(prog, i)
        if (opcode, src) in ((CALL, 1), (LD_IMM64, 4)):
            out[i] = i + imm + 1
    return out


def func_starts(prog):
    return [struct.unpack_from("<I", prog.func_info.data, 8 * k)[0] for k in range(prog.func_info.count)]


def test_callback_and_helper_are_appended_in_first_use_order(path):
    prog = objfile.read_object(path).program("sum_loop")
    # sum_loop (16 slots), then add_index (5: its address is loaded first), then bump (10)
    assert prog.slots == 16 + 5 + 10
    assert func_starts(prog) == [0, 16, 21]
    assert targets(prog) == {5: 16, 10: 21}
    assert insn(prog, 5)[:2] == (LD_IMM64, 4)  # the callback's address: src_reg BPF_PSEUDO_FUNC
    assert prog.relocations == [(21 + 3, "hits")]  # bump's map load, shifted with it
    lines = [struct.unpack_from("<I", prog.line_info.data, 16 * k)[0] for k in range(prog.line_info.count)]
    assert lines == sorted(lines) and {0, 16, 21} <= set(lines) and max(lines) < prog.slots


def test_shared_helpers_and_nested_calls(path):
    prog = objfile.read_object(path).program("calls")
    # calls (11), then bump (10, called first), then twice (6), whose call to bump reuses the copy
    assert prog.slots == 11 + 10 + 6
    assert func_starts(prog) == [0, 11, 21]
    assert targets(prog) == {1: 11, 3: 21, 21 + 2: 11}
    assert prog.relocations == [(11 + 3, "hits")]


def test_reference_into_the_middle_of_a_function(path):
    data = bytearray(path.read_bytes())
    code = ELFFile(io.BytesIO(bytes(data))).get_section_by_name("xdp")["sh_offset"]
    assert struct.unpack_from("<i", data, code + 5 * 8 + 4)[0] == 0x80  # add_index's offset in .text
    struct.pack_into("<i", data, code + 5 * 8 + 4, 0x88)
    with pytest.raises(ObjectFileError, match=r"program 'sum_loop' \(instruction 5\) refers to offset 0x88 of "
                                              r"'.text', where no function starts"):
        objfile.read_object(bytes(data))
