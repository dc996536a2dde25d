"""Register allocation, checked by an independent checker: no two simultaneously live values
share a register, nothing a call clobbers is kept across it, frames fit and overlap correctly."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings

from compiler import ir
from compiler.errors import CompileError
from compiler.ir import VReg
from tests.unit.compiler.backend_util import allocated
from tests.unit.compiler.exprgen import expressions, render


def live_values(fn: ir.Function):
    """(insn, vregs live right after it) for every instruction, by plain backward dataflow repeated
    over all blocks until nothing changes (loops carry values around their back edges)."""
    assert fn.blocks
    live_in: dict = {b.label: set() for b in fn.blocks}
    while True:
        result = []
        changed = False
        for block in reversed(fn.blocks):
            live = set().union(*(live_in[t] for t in block.successors))
            for insn in reversed([*block.insns, block.term]):
                result.append((insn, set(live)))
                if insn.dst is not None:
                    live.discard(insn.dst)
                live.update(a for a in insn.args if isinstance(a, VReg))
            if live != live_in[block.label]:
                live_in[block.label], changed = live, True
        if not changed:
            return result


def check(alloc) -> None:
    """Checks ``alloc`` and the allocations of its loop callbacks."""
    for each in (alloc, *alloc.callbacks):
        _check(each)


def _check(alloc) -> None:
    regs = alloc.regs
    assert all(0 <= r <= 9 for r in regs.values())
    for insn, live in live_values(alloc.fn):
        if insn.op == "call":
            for v in live - {insn.dst}:
                assert regs[v] >= 6, f"{v} in r{regs[v]} is live across `{insn}`"
        if insn.dst is None:
            continue
        for v in live - {insn.dst}:
            same_value = insn.op == "mov" and insn.args[0] == v
            assert same_value or regs[v] != regs[insn.dst], f"{insn.dst} and {v} share r{regs[v]} at `{insn}`"
        if insn.op in ("sub", "div", "mod", "lsh", "rsh", "arsh") and isinstance(insn.args[1], VReg):
            assert insn.args[1] == insn.args[0] or regs[insn.args[1]] != regs[insn.dst] \
                or regs[insn.args[0]] == regs[insn.dst]


BUMP = "(let ((p nil (map-lookup stats {k}))) (if p (atomic-add u64 p 0 1) 0))"


def test_context_stays_in_r1_without_calls():
    alloc = allocated("(+ (ctx-load u32 0) (ctx-load u32 4))")
    ctx = alloc.fn.blocks[0].insns[0].dst
    assert alloc.regs[ctx] == 1
    check(alloc)


def test_values_live_across_a_call_use_callee_saved_registers():
    alloc = allocated(f"(let ((d nil (ctx-load u32 0))) {BUMP.format(k=0)} (tail-call jt d) d)")
    ctx = alloc.fn.blocks[0].insns[0].dst
    assert alloc.regs[ctx] >= 6
    check(alloc)


def test_call_result_and_arguments_follow_hints():
    alloc = allocated(BUMP.format(k=1))
    call = next(i for i in alloc.fn.all_insns() if i.op == "call")
    assert alloc.regs[call.dst] == 0
    check(alloc)


def test_many_values_across_a_call_spill_and_stay_correct():
    names = [f"v{i}" for i in range(12)]
    binds = " ".join(f"({n} nil (+ (ctx-load u32 {4 * (i % 4)}) {i}))" for i, n in enumerate(names))
    body = f"(let ({binds}) (call 7) " + "(+ " * 11 + names[0] + " " + ") ".join(names[1:]) + "))"
    alloc = allocated(body)
    assert any(s.kind == "spill" for s in alloc.fn.slots)
    check(alloc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions())
def test_random_programs_allocate_consistently(expr):
    body = "(let ((a nil (ctx-load u64 0)) (b nil (call 7)) (c nil (ctx-load u64 16))) {})"
    check(allocated(body.format(render(expr, "core"))))


def test_scratch_slots_of_different_calls_share_bytes():
    alloc = allocated(f"{BUMP.format(k=0)} {BUMP.format(k=1)} (map-update odd 1 2 0)")
    slots = {s.id: s for s in alloc.fn.slots if s.id in alloc.frame}
    keys = [alloc.frame[s.id] for s in slots.values() if s.size == 4]
    assert len(set(keys)) == 1 and keys[0] == -8  # every slot starts 8-aligned
    odd = sorted((alloc.frame[s.id], s.size) for s in slots.values() if s.size in (6, 3))
    # the 6-byte key and 3-byte value of one call must not overlap each other
    (lo_off, lo_size), (hi_off, _hi_size) = odd
    assert lo_off + lo_size <= hi_off
    assert alloc.stack_size == max(-off for off in alloc.frame.values())


def test_stack_over_512_bytes_is_a_located_error_with_a_breakdown():
    with pytest.raises(CompileError) as info:
        allocated("(let ((p nil (struct-alloc 256)) (q nil\n  (struct-alloc 300))) (+ (load u8 p 0) (load u8 q 0)))")
    err = info.value
    assert "needs 560 bytes" in err.what  # 300 is aligned up to 304
    assert err.loc.line == 2  # the largest allocation
    assert "struct-alloc: 556 bytes" in err.hint


def test_the_operand_of_a_commutative_op_that_dies_there_takes_its_result():
    # s = (s & 0xffff) + (s >> 16): the shift happens in s's register and the add lands there,
    # so the only copy is the one keeping s for the shift
    from tests.unit.compiler.backend_util import compiled, listing

    fold = "(setq s (+ (logand s 65535) (>> s 16)))"
    code = listing(compiled(f"(let ((s nil (ctx-load u64 0))) {fold} {fold} s)"))
    copies = [line for line in code if re.fullmatch(r"r\d = r\d", line)]
    assert len(copies) == 2, code


def test_the_value_spilled_is_the_one_used_least():
    # six values live across a call compete for r6-r9: the two read once each are spilled,
    # the one read in every statement is not
    body = ("(let ((a nil (ctx-load u64 0)) (b nil (ctx-load u64 8)) (c nil (ctx-load u64 16))"
            " (d nil (ctx-load u64 24)) (e nil (ctx-load u64 32)) (f nil (ctx-load u64 40)))"
            " (ktime-get-ns) (+ (* a b) (+ (* a c) (+ (* a d) (+ (* a e) (* a f))))))")
    from compiler import opt, regalloc
    from tests.unit.compiler.backend_util import lowered

    fn = opt.optimize(lowered(body.replace("(ktime-get-ns)", "(call 7)")))
    a = next(i.dst for i in fn.all_insns() if i.op == "load" and i.off == 0)
    alloc = regalloc.allocate(fn)
    check(alloc)
    assert alloc.regs.get(a, 0) >= 6  # a stayed in a callee-saved register


def test_a_commutative_result_takes_the_operand_that_can_live_where_its_use_wants_it():
    # x lives across the second call (r6-r9), y comes back in r0 and the sum leaves in r0:
    # the sum is computed in y's register, so no copy follows it
    from tests.unit.compiler.backend_util import compiled, listing

    code = listing(compiled("(let ((x nil (call 7)) (y nil (call 7))) (+ x y))"))
    assert code[-2:] == ["r0 += r6", "exit"], code
    check(allocated("(let ((x nil (call 7)) (y nil (call 7))) (+ x y))"))


def test_a_commutative_result_takes_the_operand_that_shares_its_hint():
    # the masked x stays in r0 where the call left it, the shifted copy goes elsewhere: the sum,
    # which leaves in r0, is computed in the operand already there
    from tests.unit.compiler.backend_util import compiled, listing

    body = "(let ((x nil (call 7))) (+ (>> x 3) (logand x 255)))"
    code = listing(compiled(body))
    assert code[-2:] == ["r0 += r1", "exit"], code
    check(allocated(body))


def test_a_spill_frees_a_register_the_failed_value_could_use():
    # seven results live across later calls compete for r6-r9, so three are spilled; the last
    # call's result is live across no call and takes a scratch register: spilling it (it
    # interferes with all of them) would free nothing they may use
    names = [f"v{i}" for i in range(8)]
    binds = " ".join(f"({n} nil (call 7))" for n in names)
    body = f"(let ({binds}) " + "(+ " * 7 + names[0] + " " + ") ".join(names[1:]) + "))"
    alloc = allocated(body)
    check(alloc)
    assert sum(s.kind == "spill" for s in alloc.fn.slots) == 3
