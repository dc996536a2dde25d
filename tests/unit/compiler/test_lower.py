"""Lowering: core forms -> IR. Structure, locations, map spills and located errors."""

from __future__ import annotations

import pytest

from compiler import ir
from compiler.errors import CompileError
from tests.unit.compiler import ir_interp
from tests.unit.compiler.backend_util import FILE, lowered


def insns(fn: ir.Function, op: str) -> list[ir.Insn]:
    return [i for i in fn.all_insns() if i.op == op]


def test_result_is_valid_ir_with_the_context_first():
    fn = lowered("(let ((x nil 1)) (+ x 2))")
    assert ir.validate(fn) is fn
    assert fn.blocks[0].insns[0].op == "arg"


def test_every_instruction_carries_the_location_of_its_form():
    fn = lowered("(progn\n  (ctx-load u32 4)\n  (return 2))")
    load = insns(fn, "load")[0]
    assert (load.loc.file, load.loc.line, load.loc.col) == (FILE, 2, 3)
    assert fn.blocks[0].term.loc.line == 3


def test_comparison_in_test_position_is_a_branch_not_a_boolean():
    fn = lowered("(if (> (ctx-load u32 0) 5) 1 2)")
    branch = fn.blocks[0].term
    assert branch.op == "branch" and branch.cond == "gt"


def test_code_after_return_is_dropped():
    fn = lowered("(return 3) (ctx-load u32 0)")
    assert insns(fn, "load") == [] and insns(fn, "ret")[0].args


@pytest.mark.parametrize("body, value", [
    ("(and 1 2 3)", 3), ("(and 1 0 3)", 0), ("(and)", 1), ("(or 0 0 5)", 5), ("(or)", 0),
    ("(not 0)", 1), ("(not 9)", 0), ("(if 0 1 0)", 0), ("(progn)", 0), ("(cast u8 #x1ff)", 0xFF),
    ("(cast u32 -1)", 0xFFFFFFFF), ("(neg 1)", (1 << 64) - 1), ("(bswap16 #x11223344)", 0x4433),
    ("(+ 1 (return 7))", 7), ("(let ((x nil 1) (y nil 2)) (let ((x nil y) (y nil x)) (- x y)))", 1),
    ("(let ((x nil 1)) (setq x (+ x 10)) x)", 11), ("(load u16 (struct-alloc 4) 2)", 0),
])
def test_lowered_ir_means_what_the_form_means(body, value):
    assert ir_interp.run(lowered(body), b"") == value


def test_map_key_is_written_as_exactly_key_size_bytes():
    fn = lowered("(map-update odd (ctx-load u64 0) 77 0)")  # 6-byte key, 3-byte value
    stores = insns(fn, "store")
    key_slot, value_slot = (s.args[0] for s in (stores[0], stores[-1]))
    assert [(s.size, s.off) for s in stores if s.args[0] == key_slot] == [(4, 0), (2, 4)]
    assert [(s.size, s.off) for s in stores if s.args[0] == value_slot] == [(2, 0), (1, 2)]
    assert key_slot.slot.size == 6 and value_slot.slot.size == 3


def test_map_key_spill_is_zero_extended_to_eight_bytes():
    fn = lowered("(map-lookup wide 5)")
    stores = insns(fn, "store")
    assert [(s.size, s.off) for s in stores] == [(8, 0)]


def test_map_call_passes_map_and_key_address():
    call = insns(lowered("(map-lookup stats 1)"), "call")[0]
    assert call.helper == 1 and call.args[0] == ir.MapRef("stats") and isinstance(call.args[1], ir.SlotRef)


def test_tail_call_passes_ctx_map_index_and_falls_through_with_0():
    fn = lowered("(tail-call jt 3)")
    call = insns(fn, "call")[0]
    assert call.helper == 12 and call.args[0] == fn.blocks[0].insns[0].dst
    assert call.args[1] == ir.MapRef("jt") and call.dst is None


def error_of(body: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        lowered(body)
    return info.value


def test_unbound_variable_is_located_and_lists_the_scope():
    err = error_of("(let ((alpha nil 1)) (let ((beta nil 2))\n   (+ alpha gamma)))")
    assert (err.loc.line, err.loc.col) == (2, 13)
    assert "gamma" in err.what and "alpha, beta" in err.hint


def test_setq_of_an_unbound_variable_is_an_error():
    err = error_of("(let ((x nil 1)) (setq y 2))")
    assert "unbound variable y" in err.what and "x" in err.hint


@pytest.mark.parametrize("body, words", [
    ("(tail-call stats 1)", "prog-array"),
    ("(map-lookup jt 1)", "does not support element"),
    ("(map-lookup nosuch 1)", "unknown map nosuch"),
    ("(atomic-add u64 (struct-alloc 16) 4 1)", "not aligned"),
    ("(atomic-add u16 (struct-alloc 16) 0 1)", "bad type"),
    ("(load u128 (ctx-ptr) 0)", "bad type"),
    ("(frobnicate 1)", "unknown core form"),
    ("(+ 1 2 3)", "takes 2 operand"),
    ("(let (x) x)", "malformed binding"),
    ("(call 7 1 2 3 4 5 6)", "at most 5"),
])
def test_bad_forms_are_located_errors(body, words):
    err = error_of(body)
    assert words in err.what and err.loc.file == FILE and err.loc.line >= 1
