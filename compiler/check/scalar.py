"""Scalars: what the verifier knows about a number, and how ALU instructions and branches change it.

In: nothing. Out: ``Scalar`` (unsigned and signed 64-bit bounds plus a ``Tnum``, and an ``id``
linking copies of one value, as the verifier's ``bpf_reg_state`` has them) and its transfer
functions. Each one follows the kernel's (``adjust_scalar_min_max_vals``, ``reg_bounds_sync``,
``regs_refine_cond_op``, ``is_scalar_branch_taken`` in kernel/bpf/verifier.c) for 64-bit
instructions: the checker must know no more and no less than the verifier, or it would accept
what the kernel refuses or refuse what it accepts. The 32-bit sub-register bounds the kernel
also keeps are not tracked (the IR has no 32-bit arithmetic; a 32-bit move is ``cast``).
Division and modulo give an unknown value, as in the kernel.

``exact`` marks a number the verifier knows exactly on every path it walks, though the checker,
which merges paths, holds a range of them: a join of constants (a loop counter, a variable set
to different constants on different paths) and what tracked arithmetic makes of such numbers.
A pointer moved by an exact number keeps its fixed-offset facts (``alu``, ``packet``), as the
verifier, seeing a constant, keeps them on each path.
"""

from __future__ import annotations

from typing import NamedTuple

from . import tnum
from .tnum import MASK64, Tnum

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = MASK64


def signed(x: int) -> int:
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


class Scalar(NamedTuple):
    umin: int
    umax: int
    smin: int
    smax: int
    tn: Tnum
    id: int = 0  # copies of one value share an id: a branch on one refines all (0: none)
    exact: bool = False  # a constant on every path the verifier walks (see the module docstring)

    @property
    def is_const(self) -> bool:
        return self.tn.is_const

    @property
    def value(self) -> int:
        """The constant (only meaningful when ``is_const``)."""
        return self.tn.value

    def contains(self, other: Scalar) -> bool:
        return (self.umin <= other.umin and other.umax <= self.umax and self.smin <= other.smin
                and other.smax <= self.smax and self.tn.contains(other.tn) and (other.exact or not self.exact))

    def same_bounds(self, other: Scalar) -> bool:
        return self[:5] == other[:5]

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


def known(v: int) -> Scalar:
    v &= MASK64
    return Scalar(v, v, signed(v), signed(v), tnum.const(v), 0, True)


UNKNOWN = Scalar(0, U64_MAX, S64_MIN, S64_MAX, tnum.UNKNOWN)
ZERO = known(0)


def of_width(size: int) -> Scalar:
    """Any value of ``size`` bytes, zero-extended (what a load gives)."""
    top = (1 << (8 * size)) - 1
    return Scalar(0, top, 0, top, Tnum(0, top)) if size < 8 else UNKNOWN


def from_tnum(t: Tnum) -> Scalar:
    return sync(Scalar(0, U64_MAX, S64_MIN, S64_MAX, t))


# -- bounds synchronisation (reg_bounds_sync) ------------------------------------------------

def _update_bounds(s: Scalar) -> Scalar:
    t = s.tn
    smin = max(s.smin, signed(t.value | (t.mask & (1 << 63))))
    smax = min(s.smax, signed(t.value | (t.mask & S64_MAX)))
    umin = max(s.umin, t.value)
    umax = min(s.umax, t.value | t.mask)
    return Scalar(umin, umax, smin, smax, t, s.id, s.exact)


def _deduce_bounds(s: Scalar) -> Scalar:
    umin, umax, smin, smax = s.umin, s.umax, s.smin, s.smax
    if smin & MASK64 <= smax & MASK64:  # the signed range does not cross the sign boundary
        umin = max(umin, smin & MASK64)
        umax = min(umax, smax & MASK64)
    if signed(umin) <= signed(umax):  # the unsigned range does not either
        smin = max(smin, signed(umin))
        smax = min(smax, signed(umax))
    return Scalar(umin, umax, smin, smax, s.tn, s.id, s.exact)


def sync(s: Scalar) -> Scalar:
    if s.tn.is_const and not s.exact:
        s = s._replace(exact=True)
    s = _update_bounds(s)
    s = _deduce_bounds(s)
    s = _deduce_bounds(s)
    s = s._replace(tn=tnum.intersect(s.tn, tnum.from_range(s.umin, s.umax)))
    return _update_bounds(s)


def is_empty(s: Scalar) -> bool:
    """No value satisfies these bounds: the path that led here cannot run."""
    return s.umin > s.umax or s.smin > s.smax or (s.tn.value & s.tn.mask) != 0 \
        or s.tn.value > s.umax or (s.tn.value | s.tn.mask) < s.umin


# -- ALU -------------------------------------------------------------------------------------

def _add(a: Scalar, b: Scalar) -> Scalar:
    smin, smax = a.smin + b.smin, a.smax + b.smax
    if not (S64_MIN <= smin <= S64_MAX and S64_MIN <= smax <= S64_MAX):
        smin, smax = S64_MIN, S64_MAX
    umin, umax = a.umin + b.umin, a.umax + b.umax
    if umin > U64_MAX or umax > U64_MAX:
        umin, umax = 0, U64_MAX
    return Scalar(umin, umax, smin, smax, tnum.add(a.tn, b.tn))


def _sub(a: Scalar, b: Scalar) -> Scalar:
    smin, smax = a.smin - b.smax, a.smax - b.smin
    if not (S64_MIN <= smin <= S64_MAX and S64_MIN <= smax <= S64_MAX):
        smin, smax = S64_MIN, S64_MAX
    if a.umin < b.umax:
        umin, umax = 0, U64_MAX
    else:
        umin, umax = a.umin - b.umax, a.umax - b.umin
    return Scalar(umin, umax, smin, smax, tnum.sub(a.tn, b.tn))


def _mul(a: Scalar, b: Scalar) -> Scalar:
    umin, umax = a.umin * b.umin, a.umax * b.umax
    if umax > U64_MAX:
        umin, umax = 0, U64_MAX
    corners = [x * y for x in (a.smin, a.smax) for y in (b.smin, b.smax)]
    if all(S64_MIN <= c <= S64_MAX for c in corners):
        smin, smax = min(corners), max(corners)
    else:
        smin, smax = S64_MIN, S64_MAX
    return Scalar(umin, umax, smin, smax, tnum.mul(a.tn, b.tn))


def _signed_from_unsigned(umin: int, umax: int) -> tuple:
    if signed(umin) <= signed(umax):
        return signed(umin), signed(umax)
    return S64_MIN, S64_MAX


def _bitwise(op: str, a: Scalar, b: Scalar) -> Scalar:
    t = {"and": tnum.and_, "or": tnum.or_, "xor": tnum.xor}[op](a.tn, b.tn)
    if a.is_const and b.is_const:
        return known(t.value)
    if op == "and":
        umin, umax = t.value, min(a.umax, b.umax)
    elif op == "or":
        umin, umax = max(a.umin, b.umin), t.value | t.mask
    else:
        umin, umax = t.value, t.value | t.mask
    smin, smax = _signed_from_unsigned(umin, umax)
    return _update_bounds(Scalar(umin, umax, smin, smax, t))


def _shift(op: str, a: Scalar, amount: int) -> Scalar:
    if op == "lsh":
        if a.umax > 1 << (63 - amount):
            umin, umax = 0, U64_MAX
        else:
            umin, umax = a.umin << amount, a.umax << amount
        return _update_bounds(Scalar(umin, umax, S64_MIN, S64_MAX, tnum.lshift(a.tn, amount)))
    if op == "rsh":
        return _update_bounds(Scalar(a.umin >> amount, a.umax >> amount, S64_MIN, S64_MAX,
                                     tnum.rshift(a.tn, amount)))
    return _update_bounds(Scalar(0, U64_MAX, a.smin >> amount, a.smax >> amount, tnum.arshift(a.tn, amount)))


def alu(op: str, a: Scalar, b: Scalar) -> Scalar:
    """``a OP b`` for the IR's binary operations (``ir.BINARY_OPS``), 64-bit."""
    result = _alu(op, a, b)
    if a.exact and b.exact and result is not UNKNOWN:
        return result._replace(exact=True)
    return result


def _alu(op: str, a: Scalar, b: Scalar) -> Scalar:
    if op in ("lsh", "rsh", "arsh"):
        if not (b.is_const and b.umax < 64):
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
    r = _sub(ZERO, a)
    return sync(r._replace(tn=tnum.neg(a.tn), exact=a.exact))


def truncate(a: Scalar, size: int) -> Scalar:
    """The low ``size`` bytes, zero-extended (coerce_reg_to_size)."""
    if size >= 8:
        return a._replace(id=0)
    top = (1 << (8 * size)) - 1
    t = tnum.cast(a.tn, size)
    if a.umax <= top and a.umin <= a.umax:
        umin, umax = a.umin, a.umax
    else:
        umin, umax = 0, top
    return sync(Scalar(umin, umax, umin, umax, t, 0, a.exact))


def bswap(a: Scalar, size: int) -> Scalar:
    return from_tnum(tnum.bswap(a.tn, size))._replace(exact=a.exact)


# -- joins -----------------------------------------------------------------------------------

def join(a: Scalar, b: Scalar) -> Scalar:
    """The least scalar containing both (the bounds' hull)."""
    if a == b:
        return a
    return Scalar(min(a.umin, b.umin), max(a.umax, b.umax), min(a.smin, b.smin), max(a.smax, b.smax),
                  tnum.union(a.tn, b.tn), a.id if a.id == b.id else 0, a.exact and b.exact)


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
    return sync(Scalar(j.umin if j.umin >= old.umin else down(j.umin, 0),
                       j.umax if j.umax <= old.umax else up(j.umax, U64_MAX),
                       j.smin if j.smin >= old.smin else down(j.smin, S64_MIN),
                       j.smax if j.smax <= old.smax else up(j.smax, S64_MAX), j.tn, j.id, j.exact))


# -- branches --------------------------------------------------------------------------------

def branch_taken(cond: str, a: Scalar, b: Scalar) -> bool | None:
    """Does ``a COND b`` always hold (True), never (False), or depend on the run (None)?"""
    if cond in ("eq", "ne"):
        if a.is_const and b.is_const:
            same = a.value == b.value
        elif (a.umin > b.umax or a.umax < b.umin or a.smin > b.smax or a.smax < b.smin
              or tnum.xor(a.tn, b.tn).value):
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
        m = Scalar(max(a.umin, b.umin), min(a.umax, b.umax), max(a.smin, b.smin), min(a.smax, b.smax), t, 0,
                   a.exact or b.exact)
        return sync(m._replace(id=a.id)), sync(m._replace(id=b.id))
    if cond == "ne":
        return _exclude(a, b), _exclude(b, a)
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


def _exclude(a: Scalar, b: Scalar) -> Scalar:
    """``a`` knowing it differs from the constant ``b``: a bound equal to it moves by one."""
    if not b.is_const:
        return a
    v = b.value
    umin, umax, smin, smax = a.umin, a.umax, a.smin, a.smax
    if umin == v:
        umin += 1
    elif umax == v:
        umax -= 1
    if smin == signed(v):
        smin += 1
    elif smax == signed(v):
        smax -= 1
    return _sync_or_empty(Scalar(umin, umax, smin, smax, a.tn, a.id, a.exact))


def _sync_or_empty(s: Scalar) -> Scalar:
    if s.umin > s.umax or s.smin > s.smax:
        return s  # an impossible path: is_empty() says so, the caller drops it
    return sync(s)
