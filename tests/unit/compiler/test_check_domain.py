"""The checking stage's abstract domain: tracked numbers, scalar bounds, values and states.

In: random and hand-picked values. Out: pass/fail. Every operation must be sound: for concrete
numbers the abstract inputs contain, the concrete result lies in the abstract result (checked by
sampling); joins contain both sides, widening reaches a fixpoint, refinement keeps every number
that satisfies the comparison. Agreement with the kernel's own bounds is
``tests/kernel/compiler/test_check_domain_kernel.py``.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import ir
from compiler.check import scalar, tnum, values
from compiler.check.scalar import Scalar
from compiler.check.state import MISC, SPILL, ZERO, State
from compiler.errors import Loc

M = (1 << 64) - 1
LOC = Loc("t.lisp", 1, 1)


def members(s: Scalar, rng: random.Random, n: int = 24) -> list[int]:
    """Concrete numbers ``s`` allows (its bounds and some inside them)."""
    out = {v for v in (s.umin, s.umax, s.smin & M, s.smax & M, s.tn.value, s.tn.value | s.tn.mask)
           if contains(s, v)}
    for _try in range(n * 4):
        if len(out) >= n:
            break
        v = (s.tn.value | (rng.getrandbits(64) & s.tn.mask)) & M
        if contains(s, v):
            out.add(v)
    return sorted(out)


def contains(s: Scalar, v: int) -> bool:
    v &= M
    return (s.umin <= v <= s.umax and s.smin <= scalar.signed(v) <= s.smax
            and (v & ~s.tn.mask & M) == s.tn.value)


@st.composite
def scalars(draw):
    """Scalars as programs make them: constants, loaded widths, masks, sums, joins."""
    kind = draw(st.sampled_from(["const", "width", "mask", "range", "unknown", "neg"]))
    if kind == "const":
        return scalar.known(draw(st.integers(0, M)))
    if kind == "width":
        return scalar.of_width(draw(st.sampled_from([1, 2, 4, 8])))
    if kind == "mask":
        return scalar.alu("and", scalar.UNKNOWN, scalar.known(draw(st.integers(0, 0xFFFF))))
    if kind == "range":
        lo = draw(st.integers(0, 1000))
        return scalar.join(scalar.known(lo), scalar.known(lo + draw(st.integers(0, 1000))))
    if kind == "neg":
        return scalar.alu("sub", scalar.of_width(1), scalar.known(draw(st.integers(0, 300))))
    return scalar.UNKNOWN


OPS = list(ir.BINARY_OPS)


@settings(max_examples=400, deadline=None)
@given(scalars(), scalars(), st.sampled_from(OPS), st.randoms(use_true_random=False))
def test_alu_is_sound(a, b, op, rng):
    r = scalar.alu(op, a, b)
    for x in members(a, rng, 8):
        for y in members(b, rng, 8):
            z = ir.evaluate(op, x, y)
            if z is None:  # a shift by 64 or more: undefined, the verifier gives an unknown
                continue
            assert contains(r, z), (op, a, b, x, y, z, r)


@settings(max_examples=200, deadline=None)
@given(scalars(), st.sampled_from([1, 2, 4, 8]), st.randoms(use_true_random=False))
def test_unary_is_sound(a, size, rng):
    for x in members(a, rng):
        assert contains(scalar.neg(a), -x & M)
        assert contains(scalar.truncate(a, size), x & ((1 << (8 * size)) - 1))
        if size > 1:
            assert contains(scalar.bswap(a, size), ir.evaluate("bswap", x, size=size))


@settings(max_examples=400, deadline=None)
@given(scalars(), scalars(), st.sampled_from(ir.CONDS), st.randoms(use_true_random=False))
def test_branches_keep_every_number_that_takes_them(a, b, cond, rng):
    from compiler.opt.constfold import compare

    taken = scalar.branch_taken(cond, a, b)
    ra, rb = scalar.refine(cond, a, b)
    na, nb = scalar.refine(ir.NEGATED[cond], a, b)
    for x in members(a, rng, 10):
        for y in members(b, rng, 10):
            holds = compare(cond, x, y)
            if taken is not None:
                assert holds == taken, (cond, a, b, x, y)
            pair = (ra, rb) if holds else (na, nb)
            assert not scalar.is_empty(pair[0]) and contains(pair[0], x), (cond, holds, a, b, x, y, pair)
            assert contains(pair[1], y), (cond, holds, a, b, x, y, pair)


@settings(max_examples=300, deadline=None)
@given(scalars(), scalars(), st.randoms(use_true_random=False))
def test_join_contains_both_and_widening_stops(a, b, rng):
    j = scalar.join(a, b)
    assert j.contains(a._replace(exact=j.exact and a.exact)) and all(contains(j, x) for x in members(b, rng))
    w = scalar.widen(a, b, (0, 10, 100))
    assert all(contains(w, x) for x in members(a, rng) + members(b, rng))
    assert scalar.widen(w, scalar.join(w, b), (0, 10, 100)).same_bounds(w)  # a fixpoint


def test_widening_stops_at_the_programs_constants():
    counter = scalar.join(scalar.known(0), scalar.known(1))
    w = scalar.widen(counter, scalar.join(counter, scalar.known(2)), (0, 63, 64, 65))
    assert (w.umin, w.umax) == (0, 63) and w.exact


def test_tnum_operations_match_concrete_bits():
    rng = random.Random(7)
    for _round in range(500):
        a = tnum.Tnum(rng.getrandbits(8), 0)
        m = rng.getrandbits(8)
        a = tnum.Tnum(a.value & ~m & M, m)
        b = tnum.Tnum(rng.getrandbits(8), 0)
        n = rng.getrandbits(8)
        b = tnum.Tnum(b.value & ~n & M, n)
        xs = [a.value | (rng.getrandbits(8) & a.mask) for _k in range(4)]
        ys = [b.value | (rng.getrandbits(8) & b.mask) for _k in range(4)]
        for x in xs:
            for y in ys:
                for fn, op in ((tnum.add, lambda p, q: p + q), (tnum.sub, lambda p, q: p - q),
                               (tnum.and_, lambda p, q: p & q), (tnum.or_, lambda p, q: p | q),
                               (tnum.xor, lambda p, q: p ^ q), (tnum.mul, lambda p, q: p * q)):
                    r = fn(a, b)
                    assert (op(x, y) & M & ~r.mask) == r.value, (fn.__name__, a, b, x, y)
        assert tnum.union(a, b).contains(a) and tnum.union(a, b).contains(b)


def test_exact_numbers_stay_exact_through_tracked_arithmetic_only():
    i = scalar.join(scalar.known(0), scalar.known(7))
    assert i.exact and scalar.alu("and", i, scalar.known(3)).exact and scalar.alu("add", i, i).exact
    assert not scalar.alu("div", i, scalar.known(2)).exact  # the verifier does not track division
    assert not scalar.alu("add", i, scalar.of_width(1)).exact
    assert not scalar.of_width(1).contains(i) or not i.contains(scalar.of_width(1))


# -- values and states -------------------------------------------------------------------------

SLOT = ir.StackSlot(1, 16, "alloc", 0, LOC)


def test_pointer_containment_and_joins():
    data = values.Pointer(values.PACKET, range=14)
    assert values.contains(data._replace(range=0), data)  # more proven bytes is more precise
    assert not values.contains(data, data._replace(range=0))
    moved = values.join(data._replace(off=2), data._replace(off=6))
    assert moved.off == 2 and moved.var.exact and (moved.var.umin, moved.var.umax) == (0, 4)
    assert moved.range == 14 and moved.id == data.id  # each path keeps its fixed offset's facts
    assert values.join(data, scalar.known(0)) is None  # a pointer and a number never merge
    assert values.join(data, data._replace(kind=values.PACKET_META)) is None
    maybe = values.Pointer(values.MAP_VALUE, maybe_null=True, id=4)
    assert values.join(maybe, maybe._replace(maybe_null=False)) is None


def test_states_merge_stack_bytes_and_spills():
    a = State(stack={1: ZERO * 8 + MISC * 8}, spills={})
    b = State(stack={1: SPILL * 8 + MISC * 8}, spills={(1, 0): (scalar.known(5), 8)})
    c = State(stack={1: SPILL * 8 + MISC * 8}, spills={(1, 0): (scalar.known(9), 8)})
    j = b.join(c)
    assert j.spills[(1, 0)][0].contains(scalar.known(5)) and j.spills[(1, 0)][0].contains(scalar.known(9))
    assert j.contains(b) and j.contains(c) and not b.contains(c)
    assert a.join(b).stack[1][:8] == MISC * 8
    held = State(refs={4: (LOC, "record")})
    assert held.join(State()) is None and not held.contains(State())


@pytest.mark.parametrize("size, offset, aligned", [(2, 1, False), (4, 4, True), (8, 4, False), (1, 3, True)])
def test_stack_alignment_is_within_the_slot(size, offset, aligned):
    from compiler.check import stack
    from compiler.errors import CompileError

    class Insn:
        loc = LOC
    if aligned:
        stack.check_access(Insn, SLOT, offset, scalar.ZERO, size, "reads")
    else:
        with pytest.raises(CompileError, match="not a multiple"):
            stack.check_access(Insn, SLOT, offset, scalar.ZERO, size, "reads")
