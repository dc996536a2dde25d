"""Scalars: what the verifier knows about a number, and how ALU instructions and branches change it.

In: nothing. Out: ``Scalar`` (unsigned and signed bounds of the 64-bit value and of its low 32
bits, plus a ``Tnum``, and an ``id`` linking copies of one value: the verifier's
``bpf_reg_state`` for a scalar) and its transfer functions. Each one is the kernel's
(``adjust_scalar_min_max_vals``, ``reg_bounds_sync``, ``regs_refine_cond_op``,
``is_scalar_branch_taken`` in kernel/bpf/verifier.c) for 64-bit instructions, step for step: the
checker must know no more and no less than the verifier, or it would accept what the kernel
refuses or refuse what it accepts (tests/kernel/compiler/test_check_domain_kernel.py compares
the two on random programs). Division and modulo give an unknown value, as in the kernel.

``exact`` marks a number the verifier knows exactly on every path it walks, though the checker,
which merges paths, holds a range of them: a join of constants (a loop counter, a variable set
to different constants on different paths) and what tracked arithmetic makes of such numbers.
A pointer moved by an exact number keeps its fixed-offset facts (``alu``, ``packet``), as the
verifier, seeing a constant, keeps them on each path.
"""

from __future__ import annotations

from collections import namedtuple

from . import tnum
from .tnum import MASK64, Tnum

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = MASK64
S32_MIN, S32_MAX, U32_MAX = -(1 << 31), (1 << 31) - 1, (1 << 32) - 1
LOW32 = U32_MAX


def signed(x: int) -> int:
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def s32(x: int) -> int:
    x &= U32_MAX
    return x - (1 << 32) if x >> 31 else x


class Scalar(namedtuple("Scalar", "umin umax smin smax tn id exact u32min u32max s32min s32max",
                        defaults=(0, False, 0, U32_MAX, S32_MIN, S32_MAX))):
    # id: copies of one value share an id: a branch on one refines all (0: none)
    # exact: a constant on every path the verifier walks (see the module docstring)
    __slots__ = ()

    @property
    def is_const(self) -> bool:
        return self.tn.is_const

    @property
    def value(self) -> int:
        """The constant (only meaningful when ``is_const``)."""
        return self.tn.value

    def bounds(self) -> tuple:
        """Everything the verifier tracks (no id, no exactness)."""
        return (self.umin, self.umax, self.smin, self.smax, self.tn, self.u32min, self.u32max, self.s32min,
                self.s32max)

    def contains(self, other: Scalar) -> bool:
        return (self.umin <= other.umin and other.umax <= self.umax and self.smin <= other.smin
                and other.smax <= self.smax and self.u32min <= other.u32min and other.u32max <= self.u32max
                and self.s32min <= other.s32min and other.s32max <= self.s32max
                and self.tn.contains(other.tn) and (other.exact or not self.exact))

    def same_bounds(self, other: Scalar) -> bool:
        return self.bounds() == other.bounds()

    def with_id(self, new_id: int) -> Scalar:
        return self._replace(id=new_id)

    def describe(self) -> str:
        if self.is_const:
            return str(signed(self.value)) if self.smin < 0 else str(self.value)
        if self.umax == U64_MAX and self.smin == S64_MIN:
            return "any value"
        if self.smin >= 0 or self.umax <= S64_MAX:
            return f"{self.umin}..{self.umax}"
        return f"{self.smin}..{self.smax}"


def _make(umin, umax, smin, smax, tn, u32min=0, u32max=U32_MAX, s32min=S32_MIN, s32max=S32_MAX,
          id_=0, exact=False) -> Scalar:
    return Scalar(umin, umax, smin, smax, tn, id_, exact, u32min, u32max, s32min, s32max)


def known(v: int) -> Scalar:
    v &= MASK64
    lo = v & LOW32
    return _make(v, v, signed(v), signed(v), tnum.const(v), lo, lo, s32(lo), s32(lo), 0, True)


UNKNOWN = _make(0, U64_MAX, S64_MIN, S64_MAX, tnum.UNKNOWN)
ZERO = known(0)


def of_width(size: int) -> Scalar:
    """Any value of ``size`` bytes, zero-extended (what a load gives)."""
    if size >= 8:
        return UNKNOWN
    return coerce(UNKNOWN, size)


def from_tnum(t: Tnum) -> Scalar:
    return sync(UNKNOWN._replace(tn=t))


# -- bounds synchronisation (reg_bounds_sync) ------------------------------------------------

def _update_bounds(s: Scalar) -> Scalar:
    t = s.tn
    lo = Tnum(t.value & LOW32, t.mask & LOW32)
    s32min = max(s.s32min, s32(lo.value | (lo.mask & 0x80000000)))
    s32max = min(s.s32max, s32(lo.value | (lo.mask & 0x7FFFFFFF)))
    u32min = max(s.u32min, lo.value)
    u32max = min(s.u32max, lo.value | lo.mask)
    smin = max(s.smin, signed(t.value | (t.mask & (1 << 63))))
    smax = min(s.smax, signed(t.value | (t.mask & S64_MAX)))
    umin = max(s.umin, t.value)
    umax = min(s.umax, t.value | t.mask)
    if t.mask and umin <= umax:  # the bounds and the known bits may leave a single value
        first = tnum.next_member(t, umin)
        if first is not None and first <= umax and first < U64_MAX:
            second = tnum.next_member(t, first + 1)
            if second is None or second > umax:
                return known(first)._replace(id=s.id, exact=s.exact or True)
    return s._replace(umin=umin, umax=umax, smin=smin, smax=smax, u32min=u32min, u32max=u32max, s32min=s32min,
                      s32max=s32max)


def _deduce32(s: Scalar) -> Scalar:
    u32min, u32max, s32min, s32max = s.u32min, s.u32max, s.s32min, s.s32max
    umin, umax, smin, smax = s.umin, s.umax, s.smin, s.smax
    if umin >> 32 == umax >> 32:
        u32min, u32max = max(u32min, umin & LOW32), min(u32max, umax & LOW32)
        if s32(umin) <= s32(umax):
            s32min, s32max = max(s32min, s32(umin)), min(s32max, s32(umax))
    if smin >> 32 == smax >> 32:
        if smin & LOW32 <= smax & LOW32:
            u32min, u32max = max(u32min, smin & LOW32), min(u32max, smax & LOW32)
        if s32(smin) <= s32(smax):
            s32min, s32max = max(s32min, s32(smin)), min(s32max, s32(smax))
    if ((umin >> 32) + 1) & LOW32 == (umax >> 32) & LOW32 and s32(umin) < 0 <= s32(umax):
        s32min, s32max = max(s32min, s32(umin)), min(s32max, s32(umax))
    if ((smin >> 32) + 1) & LOW32 == (smax >> 32) & LOW32 and s32(smin) < 0 <= s32(smax):
        s32min, s32max = max(s32min, s32(smin)), min(s32max, s32(smax))
    if s32(u32min) <= s32(u32max):
        s32min, s32max = max(s32min, s32(u32min)), min(s32max, s32(u32max))
    if s32min & LOW32 <= s32max & LOW32:
        u32min, u32max = max(u32min, s32min & LOW32), min(u32max, s32max & LOW32)
    return s._replace(u32min=u32min, u32max=u32max, s32min=s32min, s32max=s32max)


def _deduce64(s: Scalar) -> Scalar:
    umin, umax, smin, smax = s.umin, s.umax, s.smin, s.smax
    if signed(umin) <= signed(umax):
        smin, smax = max(smin, signed(umin)), min(smax, signed(umax))
    if smin & MASK64 <= smax & MASK64:
        umin, umax = max(umin, smin & MASK64), min(umax, smax & MASK64)
    elif umax < smin & MASK64:
        # the signed range crosses the sign boundary; the unsigned one overlaps only its positive part
        smin = signed(umin)
        umax = min(umax, smax & MASK64)
    elif smax & MASK64 < umin:
        # ... or only its negative part
        smax = signed(umax)
        umin = max(umin, smin & MASK64)
    return s._replace(umin=umin, umax=umax, smin=smin, smax=smax)


def _deduce_mixed(s: Scalar) -> Scalar:
    umin, umax, smin, smax, tn = s.umin, s.umax, s.smin, s.smax, s.tn
    high = ~LOW32 & MASK64
    umin = max(umin, (umin & high) | s.u32min)
    umax = min(umax, (umax & high) | s.u32max)
    smin = max(smin, signed((smin & high) | s.u32min))
    smax = min(smax, signed((smax & high) | s.u32max))
    if s.s32min & LOW32 <= s.s32max & LOW32:
        umin = max(umin, (umin & high) | (s.s32min & LOW32))
        umax = min(umax, (umax & high) | (s.s32max & LOW32))
        smin = max(smin, signed((smin & high) | (s.s32min & LOW32)))
        smax = min(smax, signed((smax & high) | (s.s32max & LOW32)))
    if s.s32min >= 0 and smin >= S32_MIN and smax <= S32_MAX:
        smin, smax = s.s32min, s.s32max
        umin, umax = s.s32min, s.s32max
        tn = tnum.intersect(tn, tnum.from_range(smin & MASK64, smax & MASK64))
    return s._replace(umin=umin, umax=umax, smin=smin, smax=smax, tn=tn)


def _deduce(s: Scalar) -> Scalar:
    return _deduce_mixed(_deduce64(_deduce32(s)))


def _bound_offset(s: Scalar) -> Scalar:
    t64 = tnum.intersect(s.tn, tnum.from_range(s.umin, s.umax))
    t32 = tnum.intersect(Tnum(t64.value & LOW32, t64.mask & LOW32), tnum.from_range(s.u32min, s.u32max))
    high = ~LOW32 & MASK64
    return s._replace(tn=tnum.or_(Tnum(t64.value & high, t64.mask & high), t32))


def sync(s: Scalar) -> Scalar:
    if s.tn.is_const and not s.exact:
        s = s._replace(exact=True)
    s = _update_bounds(s)
    s = _deduce(s)
    s = _deduce(s)
    s = _deduce(s)
    s = _bound_offset(s)
    return _update_bounds(s)


def is_empty(s: Scalar) -> bool:
    """No value satisfies these bounds: the path that led here cannot run."""
    return (s.umin > s.umax or s.smin > s.smax or s.u32min > s.u32max or s.s32min > s.s32max
            or (s.tn.value & s.tn.mask) != 0 or s.tn.value > s.umax or (s.tn.value | s.tn.mask) < s.umin)


# -- ALU -------------------------------------------------------------------------------------

def _fits(lo: int, hi: int, x: int) -> bool:
    return lo <= x <= hi


def _add(a: Scalar, b: Scalar) -> Scalar:
    s32min, s32max = a.s32min + b.s32min, a.s32max + b.s32max
    if not (_fits(S32_MIN, S32_MAX, s32min) and _fits(S32_MIN, S32_MAX, s32max)):
        s32min, s32max = S32_MIN, S32_MAX
    u32min, u32max = a.u32min + b.u32min, a.u32max + b.u32max
    if u32min <= U32_MAX < u32max:  # some sums wrap and some do not: nothing is known
        u32min, u32max = 0, U32_MAX
    u32min, u32max = u32min & U32_MAX, u32max & U32_MAX  # all or none wrap: the range holds
    smin, smax = a.smin + b.smin, a.smax + b.smax
    if not (_fits(S64_MIN, S64_MAX, smin) and _fits(S64_MIN, S64_MAX, smax)):
        smin, smax = S64_MIN, S64_MAX
    umin, umax = a.umin + b.umin, a.umax + b.umax
    if umin <= U64_MAX < umax:
        umin, umax = 0, U64_MAX
    umin, umax = umin & U64_MAX, umax & U64_MAX
    return _make(umin, umax, smin, smax, tnum.add(a.tn, b.tn), u32min, u32max, s32min, s32max)


def _sub(a: Scalar, b: Scalar, tn: Tnum | None = None) -> Scalar:
    s32min, s32max = a.s32min - b.s32max, a.s32max - b.s32min
    if not (_fits(S32_MIN, S32_MAX, s32min) and _fits(S32_MIN, S32_MAX, s32max)):
        s32min, s32max = S32_MIN, S32_MAX
    u32min, u32max = a.u32min - b.u32max, a.u32max - b.u32min
    if u32min < 0 <= u32max:  # some differences wrap and some do not: nothing is known
        u32min, u32max = 0, U32_MAX
    u32min, u32max = u32min & U32_MAX, u32max & U32_MAX
    smin, smax = a.smin - b.smax, a.smax - b.smin
    if not (_fits(S64_MIN, S64_MAX, smin) and _fits(S64_MIN, S64_MAX, smax)):
        smin, smax = S64_MIN, S64_MAX
    umin, umax = a.umin - b.umax, a.umax - b.umin
    if umin < 0 <= umax:
        umin, umax = 0, U64_MAX
    umin, umax = umin & U64_MAX, umax & U64_MAX
    return _make(umin, umax, smin, smax, tn if tn is not None else tnum.sub(a.tn, b.tn), u32min, u32max, s32min,
                 s32max)


def _mul(a: Scalar, b: Scalar) -> Scalar:
    u32min, u32max, s32min, s32max = _mul_bounds((a.u32min, a.u32max), (b.u32min, b.u32max), (a.s32min, a.s32max),
                                                 (b.s32min, b.s32max), U32_MAX, S32_MIN, S32_MAX)
    umin, umax, smin, smax = _mul_bounds((a.umin, a.umax), (b.umin, b.umax), (a.smin, a.smax), (b.smin, b.smax),
                                         U64_MAX, S64_MIN, S64_MAX)
    return _make(umin, umax, smin, smax, tnum.mul(a.tn, b.tn), u32min, u32max, s32min, s32max)


def _mul_bounds(au: tuple, bu: tuple, as_: tuple, bs: tuple, umax_limit: int, smin_limit: int,
                smax_limit: int) -> tuple:
    """(umin, umax, smin, smax) of a product at one width (32 or 64 bits): the unsigned bounds when the
    largest product does not wrap, the signed ones when no corner product overflows, else unknown."""
    umin, umax = au[0] * bu[0], au[1] * bu[1]
    if umax > umax_limit:
        umin, umax = 0, umax_limit
    corners = [x * y for x in as_ for y in bs]
    if all(_fits(smin_limit, smax_limit, c) for c in corners):
        return umin, umax, min(corners), max(corners)
    return umin, umax, smin_limit, smax_limit


def _bitwise(op: str, a: Scalar, b: Scalar) -> Scalar:
    t = {"and": tnum.and_, "or": tnum.or_, "xor": tnum.xor}[op](a.tn, b.tn)
    lo = Tnum(t.value & LOW32, t.mask & LOW32)
    b_lo_const = (b.tn.mask & LOW32) == 0
    if b_lo_const and lo.is_const:
        u32min = u32max = lo.value
        s32min = s32max = s32(lo.value)
    else:
        if op == "and":
            u32min, u32max = lo.value, min(a.u32max, b.u32max)
        elif op == "or":
            u32min, u32max = max(a.u32min, b.u32min), lo.value | lo.mask
        else:
            u32min, u32max = lo.value, lo.value | lo.mask
        s32min, s32max = (s32(u32min), s32(u32max)) if s32(u32min) <= s32(u32max) else (S32_MIN, S32_MAX)
    if b.tn.is_const and t.is_const:
        k = known(t.value)
        return k._replace(u32min=u32min, u32max=u32max, s32min=s32min, s32max=s32max)
    if op == "and":
        umin, umax = t.value, min(a.umax, b.umax)
    elif op == "or":
        umin, umax = max(a.umin, b.umin), t.value | t.mask
    else:
        umin, umax = t.value, t.value | t.mask
    smin, smax = (signed(umin), signed(umax)) if signed(umin) <= signed(umax) else (S64_MIN, S64_MAX)
    return _update_bounds(_make(umin, umax, smin, smax, t, u32min, u32max, s32min, s32max))


def _shift(op: str, a: Scalar, amount: int) -> Scalar:
    if op == "lsh":
        smax = a.s32max << 32 if amount == 32 and a.s32max >= 0 else S64_MAX
        smin = a.s32min << 32 if amount == 32 and a.s32min >= 0 else S64_MIN
        if a.umax > 1 << (63 - amount):
            umin, umax = 0, U64_MAX
        else:
            umin, umax = a.umin << amount, a.umax << amount
        if amount > 31 or a.u32max > 1 << (31 - amount):
            u32min, u32max = 0, U32_MAX
        else:
            u32min, u32max = a.u32min << amount, a.u32max << amount
        return _update_bounds(_make(umin, umax, smin, smax, tnum.lshift(a.tn, amount), u32min, u32max))
    if op == "rsh":
        return _update_bounds(_make(a.umin >> amount, a.umax >> amount, S64_MIN, S64_MAX, tnum.rshift(a.tn, amount)))
    return _update_bounds(_make(0, U64_MAX, a.smin >> amount, a.smax >> amount, tnum.arshift(a.tn, amount)))


def alu(op: str, a: Scalar, b: Scalar) -> Scalar:
    """``a OP b`` for the IR's binary operations (``ir.BINARY_OPS``), 64-bit."""
    result = _alu(op, a, b)
    if a.exact and b.exact and result is not UNKNOWN:
        return result._replace(exact=True)
    return result


def _alu(op: str, a: Scalar, b: Scalar) -> Scalar:
    if op in ("lsh", "rsh", "arsh"):
        if not (b.is_const and b.umin == b.umax and b.smin == b.smax and b.umax < 64):
            return UNKNOWN
        result = _shift(op, a, b.value)
    elif op == "add":
        result = _add(a, b)
    elif op == "sub":
        result = _sub(a, b)
    elif op == "mul":
        result = _mul(a, b)
    elif op in ("and", "or", "xor"):
        result = _bitwise(op, a, b)
    else:  # div, mod: the verifier does not track them
        return UNKNOWN
    return sync(result)


def neg(a: Scalar) -> Scalar:
    return sync(_sub(ZERO, a, tnum.neg(a.tn))._replace(exact=a.exact))


def coerce(a: Scalar, size: int) -> Scalar:
    """The low ``size`` bytes, zero-extended, as a load of ``size`` bytes leaves them
    (coerce_reg_to_size)."""
    if size >= 8:
        return a._replace(id=0)
    mask = (1 << (8 * size)) - 1
    if a.umin & ~mask == a.umax & ~mask:
        umin, umax = a.umin & mask, a.umax & mask
    else:
        umin, umax = 0, mask
    out = a._replace(tn=tnum.cast(a.tn, size), umin=umin, umax=umax, smin=umin, smax=umax, id=0)
    if size < 4:
        out = out._replace(u32min=0, u32max=U32_MAX, s32min=S32_MIN, s32max=S32_MAX)
    return sync(out)


def zext32(a: Scalar) -> Scalar:
    """A 32-bit move: the low 32 bits, zero-extended (zext_32_to_64)."""
    smin, smax = (a.s32min, a.s32max) if 0 <= a.s32min and 0 <= a.s32max else (0, U32_MAX)
    out = a._replace(tn=tnum.cast(a.tn, 4), umin=a.u32min, umax=a.u32max, smin=smin, smax=smax, id=0)
    return sync(out)


def and32(a: Scalar, mask: int) -> Scalar:
    """``a & mask`` as the 32-bit instruction ``emit`` uses for masks below 2**31 and for casts to
    u8/u16 (scalar32_min_max_and, then zext_32_to_64)."""
    lo = tnum.and_(tnum.cast(a.tn, 4), tnum.const(mask))
    if lo.is_const:
        u32min = u32max = lo.value
    else:
        u32min, u32max = lo.value, min(a.u32max, mask)
    s32min, s32max = (s32(u32min), s32(u32max)) if s32(u32min) <= s32(u32max) else (S32_MIN, S32_MAX)
    out = a._replace(tn=lo, u32min=u32min, u32max=u32max, s32min=s32min, s32max=s32max)
    return zext32(out)._replace(exact=a.exact)


def truncate(a: Scalar, size: int) -> Scalar:
    """``(cast uN a)`` as ``emit`` writes it: a 32-bit move for u32, a 32-bit mask below that."""
    if size >= 8:
        return a._replace(id=0)
    if size == 4:
        return zext32(a)._replace(exact=a.exact)
    return and32(a, (1 << (8 * size)) - 1)


def bswap(a: Scalar, size: int) -> Scalar:
    return from_tnum(tnum.bswap(a.tn, size))._replace(exact=a.exact)


# -- joins -----------------------------------------------------------------------------------

def join(a: Scalar, b: Scalar) -> Scalar:
    """The least scalar containing both (the bounds' hull)."""
    if a == b:
        return a
    return Scalar(min(a.umin, b.umin), max(a.umax, b.umax), min(a.smin, b.smin), max(a.smax, b.smax),
                  tnum.union(a.tn, b.tn), a.id if a.id == b.id else 0, a.exact and b.exact,
                  min(a.u32min, b.u32min), max(a.u32max, b.u32max), min(a.s32min, b.s32min), max(a.s32max, b.s32max))


def widen(old: Scalar, new: Scalar, thresholds: tuple = ()) -> Scalar:
    """``join`` that moves every bound still moving to the next of ``thresholds`` (sorted; the
    program's constants) or to its extreme, so loops reach a fixpoint: a counter compared with
    its limit stops at the limit."""
    j = join(old, new)
    if j.same_bounds(old) and j.exact == old.exact:
        return j

    def up(value, limit):
        return next((t for t in thresholds if value <= t <= limit), limit)

    def down(value, limit):
        return next((t for t in reversed(thresholds) if limit <= t <= value), limit)
    umin = j.umin if j.umin >= old.umin else down(j.umin, 0)
    umax = j.umax if j.umax <= old.umax else up(j.umax, U64_MAX)
    smin = j.smin if j.smin >= old.smin else down(j.smin, S64_MIN)
    smax = j.smax if j.smax <= old.smax else up(j.smax, S64_MAX)
    # the known bits widen with the bounds, or they would hold the bounds back one bit a round
    tn = tnum.union(j.tn, tnum.from_range(umin, umax))
    return sync(Scalar(umin, umax, smin, smax, tn, j.id, j.exact))


# -- branches --------------------------------------------------------------------------------

def branch_taken(cond: str, a: Scalar, b: Scalar) -> bool | None:
    """Does ``a COND b`` always hold (True), never (False), or depend on the run (None)?"""
    if cond in ("eq", "ne"):
        if a.is_const and b.is_const:
            same = a.value == b.value
        elif (a.umin > b.umax or a.umax < b.umin or a.smin > b.smax or a.smax < b.smin
              or a.u32min > b.u32max or a.u32max < b.u32min or a.s32min > b.s32max or a.s32max < b.s32min
              or (a.tn.value ^ b.tn.value) & ~(a.tn.mask | b.tn.mask) & MASK64):  # a known bit differs
            same = False
        else:
            return None
        return same if cond == "eq" else not same
    if cond in ("lt", "le", "slt", "sle"):
        return branch_taken({"lt": "gt", "le": "ge", "slt": "sgt", "sle": "sge"}[cond], b, a)
    lo_a, hi_a, lo_b, hi_b = (a.umin, a.umax, b.umin, b.umax) if cond in ("gt", "ge") else \
        (a.smin, a.smax, b.smin, b.smax)
    if cond in ("gt", "sgt"):
        if lo_a > hi_b:
            return True
        if hi_a <= lo_b:
            return False
    else:
        if lo_a >= hi_b:
            return True
        if hi_a < lo_b:
            return False
    return None


def refine(cond: str, a: Scalar, b: Scalar) -> tuple:
    """(a, b) narrowed by knowing that ``a COND b`` holds (regs_refine_cond_op + reg_bounds_sync)."""
    if cond in ("gt", "ge", "sgt", "sge"):
        b2, a2 = refine({"gt": "lt", "ge": "le", "sgt": "slt", "sge": "sle"}[cond], b, a)
        return a2, b2
    if cond == "eq":
        t = tnum.intersect(a.tn, b.tn)
        m = a._replace(umin=max(a.umin, b.umin), umax=min(a.umax, b.umax), smin=max(a.smin, b.smin),
                       smax=min(a.smax, b.smax), tn=t, exact=a.exact or b.exact)
        return _sync_or_empty(m), _sync_or_empty(m._replace(id=b.id))
    if cond == "ne":
        return _exclude(a, other=b), _exclude(b, other=a)
    if cond == "le":
        a = a._replace(umax=min(a.umax, b.umax))
        b = b._replace(umin=max(b.umin, a.umin))
    elif cond == "lt":
        a = a._replace(umax=min(a.umax, b.umax - 1)) if b.umax > 0 else a._replace(umax=-1)
        b = b._replace(umin=max(b.umin, a.umin + 1))
    elif cond == "sle":
        a = a._replace(smax=min(a.smax, b.smax))
        b = b._replace(smin=max(b.smin, a.smin))
    elif cond == "slt":
        a = a._replace(smax=min(a.smax, b.smax - 1))
        b = b._replace(smin=max(b.smin, a.smin + 1))
    return _sync_or_empty(a), _sync_or_empty(b)


def _exclude(a: Scalar, other: Scalar) -> Scalar:
    """``a`` knowing it differs from the constant ``other``: a bound equal to it moves by one."""
    if not other.is_const:
        return a
    v = other.value
    umin, umax, smin, smax = a.umin, a.umax, a.smin, a.smax
    if umin == v:
        umin += 1
    if umax == v:
        umax -= 1
    if smin == signed(v):
        smin += 1
    if smax == signed(v):
        smax -= 1
    return _sync_or_empty(a._replace(umin=umin, umax=umax, smin=smin, smax=smax))


def _sync_or_empty(s: Scalar) -> Scalar:
    if s.umin > s.umax or s.smin > s.smax:
        return s  # an impossible path: is_empty() says so, the caller drops it
    return sync(s)
