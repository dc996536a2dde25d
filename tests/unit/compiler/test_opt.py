"""Optimisation passes: each transformation where it applies, none where it would be unsound,
and a differential check that optimised IR means what the expression means."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from compiler import ir, opt
from tests.unit.compiler import ir_interp
from tests.unit.compiler.backend_util import lowered, optimized
from tests.unit.compiler.exprgen import OPERANDS, evaluate, expressions, render

ARGS = "(let ((a nil (ctx-load u64 0)) (b nil (ctx-load u64 8)) (c nil (ctx-load u64 16))) {})"


def ctx_of(a: int, b: int, c: int) -> bytes:
    return b"".join(x.to_bytes(8, "little") for x in (a, b, c))


def ops(fn: ir.Function) -> list[str]:
    return [i.op for i in fn.all_insns()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), OPERANDS, OPERANDS, OPERANDS)
def test_optimised_ir_computes_the_expression(expr, a, b, c):
    fn = optimized(ARGS.format(render(expr, "core")))
    assert ir_interp.run(fn, ctx_of(a, b, c)) == evaluate(expr, {"a": a, "b": b, "c": c})


def test_constants_fold_to_a_single_return():
    fn = optimized("(+ (* 6 7) (- 0 0))")
    assert ops(fn) == ["ret"] and fn.blocks[0].term.args == [42]


def test_folding_uses_runtime_division_semantics():
    assert optimized("(/ 7 0)").blocks[0].term.args == [0]
    assert optimized("(mod 7 0)").blocks[0].term.args == [7]
    assert optimized("(>>> 18446744073709551600 2)").blocks[0].term.args == [(1 << 64) - 4]


def test_a_mask_of_the_low_32_bits_is_a_truncation():
    # 0xFFFFFFFF fits no (sign-extended) immediate; a 32-bit mov clears the high half alike
    fn = optimized("(let ((a nil (ctx-load u64 0))) (logand #xFFFFFFFF (+ a 1)))")
    assert [(i.op, i.size) for i in fn.all_insns() if i.op in ("and", "trunc")] == [("trunc", 4)]
    assert ir_interp.run(fn, ctx_of(0x1122334455667788, 0, 0)) == 0x55667789


def branch_conds(fn: ir.Function) -> list:
    return [(b.term.cond, b.term.args[1]) for b in fn.blocks if b.term.op == "branch"]


def test_a_compare_the_width_of_a_value_decides_becomes_a_jump():
    # get_prandom_u32's result is below 2**32, a u16 load's below 2**16
    fn = optimized("(let ((x nil (call 7))) (if (>= x #x100000000) 1 2))")
    assert ops(fn) == ["call", "ret"] and fn.blocks[0].term.args == [2]
    fn = optimized("(let ((x nil (load u16 (ctx-ptr) 0))) (if (> x 65535) 1 2))")
    assert ops(fn) == ["ret"] and fn.blocks[0].term.args == [2]
    # the value its variable holds where the branch is: the last assignment before it
    fn = optimized("(let ((x nil (ctx-load u64 0))) (setq x (call 7)) (if (< x #x100000000) 1 2))")
    assert branch_conds(fn) == [] and [b.term.args for b in fn.blocks if b.term.op == "ret"] == [[1]]


def test_a_compare_the_width_of_a_value_leaves_open_stays():
    assert branch_conds(optimized("(let ((x nil (call 7))) (if (>= x #xFFFFFFFF) 1 2))")) != []
    assert branch_conds(optimized("(let ((x nil (call 5))) (if (>= x #x100000000) 1 2))")) != []
    # assigned again on one path: the width of the helper result says nothing at the join
    fn = optimized("(let ((x nil (call 7))) (if (= (ctx-load u32 0) 1) (setq x (ctx-load u64 8)) 0)"
                   " (if (>= x #x100000000) 1 2))")
    assert len(branch_conds(fn)) == 2


def test_shift_by_64_is_not_folded():
    fn = optimized("(let ((a nil (ctx-load u64 0))) (<< a 64))")
    assert "lsh" in ops(fn)


def test_constant_branch_picks_its_arm_and_drops_the_other():
    fn = optimized("(if (s< 18446744073709551615 1) 10 20)")
    assert len(fn.blocks) == 1 and fn.blocks[0].term.args == [10]


def test_bswap_compare_compares_against_the_swapped_constant():
    fn = optimized("(if (= (bswap16 (load u16 (ctx-ptr) 12)) 2048) 1 2)")
    branch = fn.blocks[0].term
    assert "bswap" not in ops(fn)
    assert branch.op == "branch" and branch.args[1] == 8 and branch.cond in ("eq", "ne")


def test_bswap_compare_needs_the_value_to_fit_the_swap():
    fn = optimized("(if (= (bswap16 (load u32 (ctx-ptr) 12)) 2048) 1 2)")
    assert "bswap" in ops(fn)


def test_bswap_compare_with_a_too_wide_constant_is_never_equal():
    fn = optimized("(if (= (bswap16 (load u16 (ctx-ptr) 12)) 65536) 1 2)")
    assert ops(fn) == ["ret"] and fn.blocks[0].term.args == [2]


def test_bswap32_swapped_constant_beyond_s32_goes_into_a_register():
    fn = optimized("(if (= (bswap32 (load u32 (ctx-ptr) 0)) 128) 1 2)")  # swap(128) = 0x80000000
    branch = next(b.term for b in fn.blocks if b.term.op == "branch")
    assert isinstance(branch.args[1], ir.VReg)
    assert ir_interp.run(fn, (0x80000000).to_bytes(4, "little")) == 1


def test_constant_offsets_fold_into_the_load():
    fn = optimized("(let ((d nil (ctx-load u32 0))) (load u8 (+ (+ d 14) 20) 9))")
    load = next(i for i in fn.all_insns() if i.op == "load" and i.off != 0)
    assert load.off == 43 and "add" not in ops(fn)


def test_unused_values_are_removed():
    fn = optimized("(let ((x nil (ctx-load u32 0)) (y nil (* 3 4))) 5)")
    assert ops(fn) == ["ret"]


def test_returns_of_the_same_value_share_one_exit():
    fn = optimized("(let ((a nil (ctx-load u32 0))) (if (> a 3) (return 2) 0) (if (> a 9) (return 2) 0) 2)")
    assert sum(1 for b in fn.blocks if b.term.op == "ret") == 1


def test_wide_constant_key_is_two_word_stores():
    fn = optimized("(map-lookup wide 4294967298)")  # 0x1_0000_0002
    stores = [i for i in fn.all_insns() if i.op == "store"]
    assert [(s.size, s.off, s.args[1]) for s in stores] == [(4, 0, 2), (4, 4, 1)]


def test_a_value_that_is_reassigned_is_not_propagated():
    body = "(let ((x nil 1)) (if (= (ctx-load u32 0) 0) (setq x 5) 0) x)"
    fn = optimized(body)
    assert ir_interp.run(fn, (0).to_bytes(4, "little")) == 5
    assert ir_interp.run(fn, (1).to_bytes(4, "little")) == 1


def test_return_value_on_every_path_after_folding():
    # the original Whistler lost r0 on one path here (return folding across a jump target)
    fn = optimized("(let ((a nil (ctx-load u64 0))) (if (s< a 18446744073709551615) 1 2))")
    assert ir_interp.run(fn, (2**64 - 5).to_bytes(8, "little")) == 1
    assert ir_interp.run(fn, (3).to_bytes(8, "little")) == 2


def test_constant_arm_is_hoisted_before_the_branch():
    fn = optimized("(let ((p nil (map-lookup stats 0))) (if p (load u64 p 0) 0))")
    entry = fn.blocks[0]
    assert entry.insns[-1].op == "mov" and entry.insns[-1].args == [0]
    assert len(fn.blocks) == 3  # entry, the load arm, the join


def test_constant_arm_is_not_hoisted_over_a_read_of_its_variable():
    body = "(let ((x nil (ctx-load u64 0))) (if (> x 5) (setq x (+ x 1)) (setq x 0)) x)"
    fn = optimized(body)
    assert ir_interp.run(fn, (9).to_bytes(8, "little")) == 10
    assert ir_interp.run(fn, (2).to_bytes(8, "little")) == 0


def test_a_repeated_test_is_decided_on_the_path_that_already_made_it():
    # (when (= x 6) ...) twice: each path through the first test knows the second's outcome,
    # so x is tested once (the verifier cannot remember x != 6 and would walk both arms).
    fn = optimized("(let ((x nil (ctx-load u64 0)) (r nil 0))"
                   " (if (= x 6) (setq r (ctx-load u64 8)) 0) (if (= x 6) (+ r 1) 7))")
    assert [b.term.op for b in fn.blocks].count("branch") == 1
    for x in (6, 5):
        assert ir_interp.run(fn, ctx_of(x, 40, 0)) == (41 if x == 6 else 7)


def test_branch_threading_implications():
    from compiler.opt.branchthread import implied

    assert implied("eq", "ne") is False and implied("ne", "ne") is True and implied("ne", "eq") is False
    assert implied("gt", "ge") is True and implied("gt", "le") is False and implied("ge", "gt") is None
    assert implied("slt", "sle") is True and implied("slt", "lt") is None and implied("eq", "sge") is True


def test_an_and_of_tests_branches_without_materialising_each_test():
    fn = optimized("(let ((a nil (ctx-load u64 0)) (b nil (ctx-load u64 8)))"
                   " (let ((s nil (and (= a 1) (or (= b 2) (= b 3))))) (if s 7 9)))")
    movs = [i for i in fn.all_insns() if i.op == "mov" and i.args[0] in (0, 1)]
    assert len(movs) <= 2  # the value 1 once and 0 once, not one pair per comparison
    for a, b, want in ((1, 2, 7), (1, 3, 7), (1, 4, 9), (0, 2, 9)):
        assert ir_interp.run(fn, ctx_of(a, b, 0)) == want


def test_a_select_of_1_and_0_on_a_0_or_1_value_is_a_copy():
    fn = optimized("(let ((a nil (ctx-load u64 0)) (b nil (ctx-load u64 8)))"
                   " (let ((s nil (and (= a 1) (= b 2)))) (+ (if s 1 0) (if s 0 1))))")
    assert [b.term.op for b in fn.blocks].count("branch") == 2  # the tests of the and, no more
    for a, b in ((1, 2), (1, 3), (0, 2)):
        assert ir_interp.run(fn, ctx_of(a, b, 0)) == 1


def test_a_select_on_a_value_that_may_be_2_stays_a_branch():
    fn = optimized("(let ((a nil (ctx-load u64 0))) (let ((s nil (if (= a 5) 2 0))) (if s 1 0)))")
    assert ir_interp.run(fn, ctx_of(5, 0, 0)) == 1 and ir_interp.run(fn, ctx_of(4, 0, 0)) == 0


def stores(fn: ir.Function) -> list:
    return [(i.size, i.off, i.args[1]) for i in fn.all_insns() if i.op == "store"]


def test_stack_stores_overwritten_before_any_read_are_dropped():
    # struct-alloc zeroes 8 bytes; both halves are written before the 8-byte load
    fn = optimized("(let ((a nil (ctx-load u64 0)) (p nil (struct-alloc 8)))"
                   " (store u32 p 0 a) (store u32 p 4 7) (load u64 p 0))")
    assert len(stores(fn)) == 2
    assert ir_interp.run(fn, ctx_of(5, 0, 0)) == 5 | 7 << 32


def test_stack_stores_that_are_read_stay():
    # the high half is never overwritten: its zeroes are read
    fn = optimized("(let ((a nil (ctx-load u64 0)) (p nil (struct-alloc 8))) (store u32 p 0 a) (load u64 p 0))")
    assert ir_interp.run(fn, ctx_of(2**40 + 5, 0, 0)) == 5
    # a helper reads its key: the store before the call stays
    fn = optimized("(map-lookup stats 3)")
    assert stores(fn) == [(4, 0, 3)]


ESCAPED = "(let ((a nil (ctx-load u64 0)) (p nil (struct-alloc 16)) (h nil (struct-alloc 8))) (store u64 h 0 p) {})"


def test_stores_to_a_slot_whose_address_escapes_are_dropped_when_overwritten_before_any_read():
    # p's address is stored in h; nothing reads memory between the zeroing of p's first word
    # and its overwrite, so that zero store goes; the second word's zeroes are read through h
    fn = optimized(ESCAPED.format("(store u64 p 0 a) (+ (load u64 (load u64 h 0) 0) (load u64 (load u64 h 0) 8))"))
    assert (8, 0, 0) not in stores(fn) and (8, 8, 0) in stores(fn)
    assert ir_interp.run(fn, ctx_of(5, 0, 0)) == 5


def test_stores_to_a_slot_whose_address_escapes_stay_when_a_pointer_may_read_them():
    # the load through h may read p's zeroes before a overwrites them
    fn = optimized(ESCAPED.format("(let ((x nil (load u64 (load u64 h 0) 0))) (store u64 p 0 a)"
                                  " (+ x (* 2 (load u64 p 0))))"))
    assert (8, 0, 0) in stores(fn)
    assert ir_interp.run(fn, ctx_of(5, 0, 0)) == 10
    # so may any helper call (which ones follow pointers is not modelled)
    fn = optimized(ESCAPED.format("(call 7) (store u64 p 0 a) (load u64 (load u64 h 0) 8)"))
    assert (8, 0, 0) in stores(fn)


def test_stack_stores_in_a_loop_that_a_later_iteration_reads_stay():
    fn = optimized("(let ((p nil (struct-alloc 8)) (s nil 0))"
                   " (dotimes (i 3 3) (setq s (+ s (load u64 p 0))) (store u64 p 0 (+ i 10))) s)",
                   strategy="open")
    assert ir_interp.run(fn, ctx_of(0, 0, 0)) == 10 + 11


def test_alike_code_at_the_ends_of_two_arms_is_shared():
    # both arms store a different value at the same place and go on alike: one store remains,
    # its value in a register each arm sets
    body = ("(let ((a nil (ctx-load u64 0)) (p nil (struct-alloc 16)))"
            " (if (= a 1) (progn (store u64 p 0 (ctx-load u64 8)) (store u64 p 8 a))"
            "             (progn (store u64 p 0 (ctx-load u64 16)) (store u64 p 8 a)))"
            " (+ (load u64 p 0) (load u64 p 8)))")
    fn = optimized(body)
    assert len(stores(fn)) == 2
    assert ir_interp.run(fn, ctx_of(1, 20, 30)) == 21 and ir_interp.run(fn, ctx_of(2, 20, 30)) == 32


def test_map_bumps_in_two_arms_are_one_lookup():
    body = ("(let ((a nil (ctx-load u64 0)))"
            " (if (= a 1) (let ((p nil (map-lookup stats 0))) (if p (atomic-add u64 p 0 1) 0))"
            "             (let ((p nil (map-lookup stats 2))) (if p (atomic-add u64 p 0 1) 0)))"
            " 0)")
    fn = optimized(body)
    assert [i.helper for i in fn.all_insns() if i.op == "call"] == [1]
    assert sum(i.op == "atomic_add" for i in fn.all_insns()) == 1


def test_tails_that_assign_a_value_used_later_are_not_shared():
    from compiler.opt import crossjump

    fn = lowered("(let ((a nil (ctx-load u64 0)) (x nil 0))"
                 " (if (= a 1) (setq x (+ a 5)) (setq x (+ a 6))) x)")
    opt.optimize(fn)
    crossjump.run(fn)
    for a in (1, 2):
        assert ir_interp.run(fn, ctx_of(a, 0, 0)) == a + (5 if a == 1 else 6)


def test_the_most_common_return_value_is_set_once_before_the_tests():
    # three early exits return 2, one path returns 1: 2 is set at the top, every return is one exit
    fn = optimized("(let ((a nil (ctx-load u64 0)))"
                   " (if (> a 9) (return 2) 0) (if (= a 3) (return 2) 0) (if (= a 5) (return 1) 0) 2)")
    rets = [b.term for b in fn.blocks if b.term.op == "ret"]
    assert len(rets) == 1 and isinstance(rets[0].args[0], ir.VReg)
    for a, want in ((10, 2), (3, 2), (5, 1), (4, 2)):
        assert ir_interp.run(fn, ctx_of(a, 0, 0)) == want


def test_the_return_value_is_not_preset_across_a_helper_call():
    fn = optimized("(let ((a nil (ctx-load u64 0)))"
                   " (if (> a 9) (return 2) 0) (map-update stats 0 1 0) (if (= a 5) (return 1) 0) 2)")
    assert all(isinstance(b.term.args[0], int) for b in fn.blocks if b.term.op == "ret")


def test_a_test_of_a_value_an_arm_just_set_is_decided_on_that_arm():
    # (if p (load p) 0) tested again: the arm that yields 0 goes straight to the else side
    fn = optimized("(let ((a nil (ctx-load u64 0)))"
                   " (let ((v nil (if (= a 0) 0 (load u8 (ctx-ptr) 8)))) (if v 7 9)))")
    assert [b.term.op for b in fn.blocks].count("branch") == 2
    for a, byte, want in ((0, 5, 9), (1, 5, 7), (1, 0, 9)):
        assert ir_interp.run(fn, ctx_of(a, byte, 0)) == want


def test_a_map_lookup_nobody_reads_is_removed_with_its_key():
    fn = optimized("(let ((v nil (map-lookup stats 2))) 42)")
    assert ops(fn) == ["ret"]


def test_a_lookup_in_an_lru_map_stays_it_marks_the_entry_used():
    from tests.unit.compiler.backend_util import DEFAULT_MAPS, mapdef

    fn = optimized("(let ((v nil (map-lookup recent 2))) 42)", maps=(*DEFAULT_MAPS, mapdef("recent", "lru-hash")))
    assert [i.helper for i in fn.all_insns() if i.op == "call"] == [1]


def test_two_loads_of_one_context_field_are_one():
    fn = optimized("(let ((a nil (ctx-load u32 0)) (b nil (ctx-load u32 0))) (+ a b))")
    assert ops(fn).count("load") == 1


def test_a_load_after_a_store_that_may_change_it_stays():
    fn = optimized("(let ((a nil (ctx-load u32 0))) (ctx-store u32 0 5) (+ a (ctx-load u32 0)))")
    assert ops(fn).count("load") == 2
    fn = optimized("(let ((p nil (struct-alloc 8)) (a nil (ctx-load u64 0)))"
                   " (store u64 p 0 a) (let ((x nil (load u64 p 0))) (store u32 p 0 7) (+ x (load u64 p 0))))")
    assert ops(fn).count("load") == 3  # a, and both loads of p: the u32 store changed it
    assert ir_interp.run(fn, ctx_of(2**33 + 1, 0, 0)) == (2**33 + 1) + (2**33 + 7)


def test_a_load_kept_around_a_loop_is_reloaded_after_the_loop_writes_it():
    fn = optimized("(let ((p nil (struct-alloc 8)) (s nil 0)) (store u64 p 0 1)"
                   " (let ((x nil (load u64 p 0))) (dotimes (i 3 3) (setq s (+ s (load u64 p 0))) (store u64 p 0 (+ i 5)))"
                   " (+ s x)))", strategy="open")
    assert ir_interp.run(fn, ctx_of(0, 0, 0)) == 1 + 5 + 6 + 1


def test_a_zero_test_guarding_an_add_of_that_value_goes():
    fn = optimized("(let ((a nil (ctx-load u64 0)) (t nil (ctx-load u64 8)))"
                   " (let ((v nil (load u64 (ctx-ptr) 16))) (if v (setq t (+ t v)) 0)) t)")
    assert [b.term.op for b in fn.blocks] == ["ret"]
    assert ir_interp.run(fn, ctx_of(0, 5, 0)) == 5 and ir_interp.run(fn, ctx_of(0, 5, 7)) == 12


def test_a_zero_test_guarding_a_multiply_stays():
    fn = optimized("(let ((t nil (ctx-load u64 8)))"
                   " (let ((v nil (load u64 (ctx-ptr) 16))) (if v (setq t (* t v)) 0)) t)")
    assert "branch" in ops(fn)
    assert ir_interp.run(fn, ctx_of(0, 5, 0)) == 5 and ir_interp.run(fn, ctx_of(0, 5, 7)) == 35


def test_a_setq_computes_into_the_variable():
    fn = optimized("(let ((s nil (ctx-load u64 0)) (x nil (ctx-load u64 8)))"
                   " (if (= x 3) (setq s (+ s x)) (setq s (- s x))) s)")
    assert not [i for i in fn.all_insns() if i.op == "mov" and isinstance(i.args[0], ir.VReg)]
    assert ir_interp.run(fn, ctx_of(10, 3, 0)) == 13 and ir_interp.run(fn, ctx_of(10, 4, 0)) == 6


def test_constants_held_by_a_reassigned_variable_fold():
    # s is assigned three times: 0, then 0 + x, then that + 1
    fn = optimized("(let ((x nil (ctx-load u64 0)) (s nil 0)) (setq s (+ s 4)) (setq s (+ s x)) s)")
    assert ops(fn).count("add") == 1 and ir_interp.run(fn, ctx_of(5, 0, 0)) == 9


def test_a_constant_assigned_again_on_a_path_that_holds_it_goes():
    fn = optimized("(let ((x nil (ctx-load u64 0)) (r nil 7)) (if (= x 1) (setq r 7) (setq r (+ x 2))) r)")
    assert sum(1 for i in fn.all_insns() if i.op == "mov" and i.args == [7]) == 1
    assert ir_interp.run(fn, ctx_of(1, 0, 0)) == 7 and ir_interp.run(fn, ctx_of(4, 0, 0)) == 6


def test_a_constant_in_a_loop_variable_is_not_assumed_past_the_back_edge():
    fn = optimized("(let ((s nil 0)) (dotimes (i 4 4) (setq s (+ s 3))) s)", strategy="open")
    assert ir_interp.run(fn, ctx_of(0, 0, 0)) == 12
