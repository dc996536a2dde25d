"""Emission: instruction selection, layout, jump resolution, helper-call argument moves, and
code size on the seed program against clang -O2 (26 / 11 / 12 slots)."""

from __future__ import annotations

from compiler import emit, ir, isa
from compiler.errors import Loc
from compiler.regalloc import Allocation
from tests.unit.compiler.backend_util import compiled, listing, prog

DISPATCH = """
(let ((data nil (ctx-load u32 0)) (data-end nil (ctx-load u32 4)))
  (if (> (+ data 34) data-end) (return 2) 0)
  (if (/= (bswap16 (load u16 data 12)) 2048) (return 2) 0)
  (let ((proto u32 (load u8 (+ data 14) 9)))
    (let ((k u32 0)) (let ((p u64 (map-lookup stats k))) (if p (atomic-add u64 p 0 1) 0)))
    (tail-call jt proto)))
2
"""
HANDLER = "(let ((k u32 1)) (let ((p u64 (map-lookup stats k))) (if p (atomic-add u64 p 0 1) 0))) 2"


def test_seed_dispatcher_is_no_larger_than_clang():
    code = compiled(DISPATCH)
    text = listing(code)
    assert code.slots <= 26
    assert any(t.endswith("!= 8 goto +15") for t in text)  # bswap folded away
    assert any(t.endswith("= *(u8 *)(r1 +23)") for t in text)  # (+ data 14) folded into the offset
    bounds = next(t for t in text if "goto" in t)
    assert bounds.startswith("if r") and " > r" in bounds  # 64-bit compare against data_end's register
    assert "r6 = r1" in text  # ctx survives the lookup for the tail call


def test_seed_handler_is_no_larger_than_clang():
    code = compiled(HANDLER)
    text = listing(code)
    assert code.slots <= 11
    assert text[0] == "*(u32 *)(r10 -8) = 1"  # constant key as an st immediate, at an 8-aligned slot
    assert text[-2:] == ["r0 = 2", "exit"]


def test_jumps_are_forward_and_land_on_instructions():
    code = compiled(DISPATCH)
    starts, slot = set(), 0
    for insn in code.insns:
        starts.add(slot)
        slot += insn.slots
    slot = 0
    for insn in code.insns:
        slot += insn.slots
        if insn.is_jump:
            assert insn.off >= 0 and insn.target is None and slot + insn.off in starts
    assert code.insns[-1].is_exit


def test_every_instruction_has_a_source_location():
    assert all(i.loc is not None and i.loc.line >= 1 for i in compiled(DISPATCH).insns)


def test_instruction_selection():
    text = listing(compiled("(let ((a nil (ctx-load u64 0))) (+ (cast u32 a) 4294967296))"))
    assert any(t.startswith("w") and "= w" in t for t in text)  # cast u32 is a 32-bit mov
    assert any(t.endswith(" ll") for t in text)  # a constant beyond s32 needs ld_imm64
    cmp = listing(compiled("(if (s< (ctx-load u64 0) 4294967295) 1 2)"))
    assert any(t.startswith("if r") and " s>" in t for t in cmp)  # signed, 64-bit JMP (not JMP32)


def test_constant_arm_needs_no_jump_around_it():
    text = listing(compiled("(if (> (ctx-load u64 0) 5) 10 20)"))
    assert text == ["r1 = *(u64 *)(r1 +0)", "r0 = 20", "if r1 <= 5 goto +1", "r0 = 10", "exit"]


def _simulate_moves(code, regs_in: dict) -> dict:
    regs = dict(regs_in)
    for insn in code:
        if insn.opcode == isa.ALU64 | isa.MOV | isa.X:
            regs[insn.dst] = regs[insn.src]
        elif insn.is_call:
            return regs
    raise AssertionError("no call")


def test_helper_arguments_are_a_correct_parallel_move():
    loc = Loc("t", 1, 1)
    fn = ir.Function("t", loc, [])
    v = [fn.new_vreg() for _slot in range(3)]
    # a three-cycle: the values for r1, r2, r3 sit in r2, r3, r1
    block = ir.Block("entry", [ir.Insn("mov", x, [i], loc) for i, x in enumerate(v)],
                     ir.Insn("ret", None, [0], loc))
    block.insns.append(ir.Insn("call", None, list(v), loc, helper=99))
    fn.blocks.append(block)
    alloc = Allocation(ir.validate(fn), {v[0]: 2, v[1]: 3, v[2]: 1}, {}, 0)
    code = emit.emit_program(alloc, prog("0")).insns
    moves_only = [i for i in code if i.opcode != (isa.ALU64 | isa.MOV | isa.K)]
    out = _simulate_moves(moves_only, {0: "junk", 1: "c", 2: "a", 3: "b"})
    assert (out[1], out[2], out[3]) == ("a", "b", "c")
