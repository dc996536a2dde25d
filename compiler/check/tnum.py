"""Tracked numbers: the verifier's bit-level knowledge of a 64-bit value (kernel/bpf/tnum.c).

In: nothing. Out: ``Tnum(value, mask)``: bits set in ``mask`` are unknown, the others are those of
``value`` (``value & mask == 0``), and the operations the verifier applies to them, bit for bit
as the kernel computes them, so the checker knows exactly the bits the verifier knows.
"""

from __future__ import annotations

from collections import namedtuple

MASK64 = (1 << 64) - 1


class Tnum(namedtuple("Tnum", "value mask")):
    __slots__ = ()

    @property
    def is_const(self) -> bool:
        return self.mask == 0

    def contains(self, other: Tnum) -> bool:
        """Is every value ``other`` allows also allowed here (tnum_in)?"""
        if other.mask & ~self.mask:
            return False
        return self.value == other.value & ~self.mask

    def is_aligned(self, size: int) -> bool:
        return not ((self.value | self.mask) & (size - 1))

    def __repr__(self) -> str:
        return f"({self.value:#x}; {self.mask:#x})"


UNKNOWN = Tnum(0, MASK64)


def const(v: int) -> Tnum:
    return Tnum(v & MASK64, 0)


def from_range(umin: int, umax: int) -> Tnum:
    chi = umin ^ umax
    bits = chi.bit_length()
    if bits > 63:
        return UNKNOWN
    delta = (1 << bits) - 1
    return Tnum(umin & ~delta & MASK64, delta)


def add(a: Tnum, b: Tnum) -> Tnum:
    sm = (a.mask + b.mask) & MASK64
    sv = (a.value + b.value) & MASK64
    sigma = (sm + sv) & MASK64
    chi = sigma ^ sv
    mu = chi | a.mask | b.mask
    return Tnum(sv & ~mu & MASK64, mu)


def sub(a: Tnum, b: Tnum) -> Tnum:
    dv = (a.value - b.value) & MASK64
    alpha = (dv + a.mask) & MASK64
    beta = (dv - b.mask) & MASK64
    chi = alpha ^ beta
    mu = chi | a.mask | b.mask
    return Tnum(dv & ~mu & MASK64, mu)


def neg(a: Tnum) -> Tnum:
    return sub(Tnum(0, 0), a)


def and_(a: Tnum, b: Tnum) -> Tnum:
    alpha = a.value | a.mask
    beta = b.value | b.mask
    v = a.value & b.value
    return Tnum(v, alpha & beta & ~v & MASK64)


def or_(a: Tnum, b: Tnum) -> Tnum:
    v = a.value | b.value
    mu = a.mask | b.mask
    return Tnum(v, mu & ~v & MASK64)


def xor(a: Tnum, b: Tnum) -> Tnum:
    v = a.value ^ b.value
    mu = a.mask | b.mask
    return Tnum(v & ~mu & MASK64, mu)


def lshift(a: Tnum, shift: int) -> Tnum:
    return Tnum((a.value << shift) & MASK64, (a.mask << shift) & MASK64)


def rshift(a: Tnum, shift: int) -> Tnum:
    return Tnum(a.value >> shift, a.mask >> shift)


def arshift(a: Tnum, shift: int) -> Tnum:
    def sar(x: int) -> int:
        signed = x - (1 << 64) if x >> 63 else x
        return (signed >> shift) & MASK64
    return Tnum(sar(a.value), sar(a.mask))


def mul(a: Tnum, b: Tnum) -> Tnum:
    acc = Tnum(0, 0)
    while a.value or a.mask:
        if a.value & 1:  # a certain 1: add b
            acc = add(acc, b)
        elif a.mask & 1:  # an unknown bit: either acc or acc + b
            acc = union(acc, add(acc, b))
        a = rshift(a, 1)
        b = lshift(b, 1)
    return acc


def intersect(a: Tnum, b: Tnum) -> Tnum:
    v = a.value | b.value
    mu = a.mask & b.mask
    return Tnum(v & ~mu & MASK64, mu)


def union(a: Tnum, b: Tnum) -> Tnum:
    v = a.value & b.value
    mu = (a.value ^ b.value) | a.mask | b.mask
    return Tnum(v & ~mu & MASK64, mu)


def cast(a: Tnum, size: int) -> Tnum:
    keep = (1 << (8 * size)) - 1
    return Tnum(a.value & keep, a.mask & keep)


def bswap(a: Tnum, size: int) -> Tnum:
    """The low ``size`` bytes in reverse order, zero-extended (BPF_END to big endian on a
    little-endian host)."""
    a = cast(a, size)

    def swap(x: int) -> int:
        return int.from_bytes(x.to_bytes(size, "little"), "big")
    return Tnum(swap(a.value), swap(a.mask))


def next_member(a: Tnum, x: int) -> int | None:
    """The smallest value ``a`` allows that is at least ``x``, or None."""
    v, m = a.value, a.mask
    if x > (v | m):
        return None
    for i in range(63, -1, -1):
        b = 1 << i
        if m & b or (v & b) == (x & b):
            continue
        if v & b:  # a known 1 where x has 0: x's free bits above, then the least below
            return (x & ~((b << 1) - 1) & m) | v
        for j in range(i + 1, 64):  # a known 0 where x has 1: carry into a free 0 bit above
            c = 1 << j
            if m & c and not x & c:
                return (x & ~((c << 1) - 1) & m) | c | v
        return None
    return x
