"""Conformance: 64-bit arithmetic, shifts, comparisons, casts, byte order, literals and constants
(reference §2.1, §2.4-§2.7), run in the kernel.

Binary operators are checked twice: on literal operands (what constant folding must get right)
and on operands read from the ``args`` map at run time (what the emitted ALU code must get right).
"""

from __future__ import annotations

import pytest

from tests.kernel.compiler.conformance.case import MASK64, run_case, u64, value


def s64(x: int) -> int:
    x = u64(x)
    return x - (1 << 64) if x >> 63 else x


def bswap(x: int, width: int) -> int:
    """What ntohs/ntohl/ntohll give on a little-endian host: the low ``width`` bytes reversed."""
    return int.from_bytes((x & ((1 << 8 * width) - 1)).to_bytes(width, "little"), "big")


BIG = 0xFFFFFFFFFFFFFFFF
# (operator, a, b, expected) -- expected computed with Python integers, wrapped to 64 bits.
BINARY = [
    ("+", 40, 2, 42),
    ("+", BIG, 2, (BIG + 2) & MASK64),
    ("+", 0x7FFFFFFFFFFFFFFF, 1, 0x8000000000000000),
    ("-", 0, 1, (0 - 1) & MASK64),
    ("-", 100, 58, 42),
    ("*", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF * 0xFFFFFFFF),  # needs all 64 bits
    ("*", 1 << 32, 1 << 32, ((1 << 32) * (1 << 32)) & MASK64),
    ("*", -3, 7, (-21) & MASK64),
    ("/", 100, 7, 100 // 7),
    ("/", -1, 2, MASK64 // 2),  # unsigned division
    ("mod", 100, 7, 100 % 7),
    ("mod", -1, 10, MASK64 % 10),  # unsigned modulo
    ("logand", 0xFF00FF00FF00FF00, 0x0FF00FF00FF00FF0, 0xFF00FF00FF00FF00 & 0x0FF00FF00FF00FF0),
    ("logior", 0x8000000000000000, 1, 0x8000000000000001),
    ("logxor", 0xAAAAAAAAAAAAAAAA, BIG, 0x5555555555555555),
    ("<<", 1, 63, 1 << 63),
    ("<<", 0xFFFFFFFF, 16, 0xFFFFFFFF << 16),
    (">>", 1 << 63, 63, 1),
    (">>", -16, 2, u64(-16) >> 2),  # logical: zero fill
    (">>>", -16, 2, (-4) & MASK64),  # arithmetic: sign fill
    (">>>", 0x80000000, 4, 0x08000000),  # bit 31 is not the sign of a 64-bit value
    # right operands that do not fit a sign-extended 32-bit immediate
    ("+", 5, 0x80000000, 5 + 0x80000000),
    ("-", 1 << 32, 0x80000000, (1 << 32) - 0x80000000),
    ("*", 3, 0xFFFFFFFF, 3 * 0xFFFFFFFF),
    ("/", 1 << 32, 0x80000000, 2),
    ("mod", 0x1FFFFFFFF, 0xFFFFFFFF, 0x1FFFFFFFF % 0xFFFFFFFF),
    ("logand", BIG, 0xFFFFFFFF, 0xFFFFFFFF),
    ("logand", BIG, 0x80000000, 0x80000000),
    ("logior", 0, 0xFFFFFFFF, 0xFFFFFFFF),
    ("logxor", BIG, 0x80000000, BIG ^ 0x80000000),
    ("<<", 0xFFFFFFFF, 32, 0xFFFFFFFF << 32),
    (">>", BIG, 32, 0xFFFFFFFF),
    (">>>", 1 << 63, 32, u64(-(1 << 31))),
]


def literal(x: int) -> str:
    return str(x) if x < 0 else f"#x{x:X}"


def binary_cases():
    """Each operator on two literals, two run-time values, and a run-time value and a literal."""
    for op, a, b, expected in BINARY:
        yield value(f"const {op} {a:#x} {b:#x}", f"({op} {literal(a)} {literal(b)})", expected)
        yield value(f"runtime {op} {a:#x} {b:#x}", f"({op} (getmap args 0) (getmap args 1))", expected,
                    args={0: a, 1: b})
        yield value(f"immediate {op} {a:#x} {b:#x}", f"({op} (getmap args 0) {literal(b)})", expected,
                    args={0: a})


# (id, expression, expected, args)
OTHER = [
    ("runtime / by zero is 0", "(/ (getmap args 0) (getmap args 1))", 0, {0: 1234, 1: 0}),
    ("runtime mod by zero is x", "(mod (getmap args 0) (getmap args 1))", 1234, {0: 1234, 1: 0}),
    ("n-ary +", "(+ 1 2 3 4 (getmap args 0))", 1 + 2 + 3 + 4 + 32, {0: 32}),
    ("n-ary - folds left", "(- 100 (getmap args 0) 7)", 100 - 50 - 7, {0: 50}),
    ("n-ary *", "(* 2 3 (getmap args 0))", 2 * 3 * 7, {0: 7}),
    ("n-ary logior", "(logior 1 2 4 (getmap args 0))", 1 | 2 | 4 | 0x100, {0: 0x100}),
    ("unary - negates", "(- (getmap args 0))", -5, {0: 5}),
    ("unary - of literal", "(- 5)", -5, {}),
    ("logand with the low-32-bit mask first", "(logand #xFFFFFFFF (getmap args 0))", 0x55667788,
     {0: 0x1122334455667788}),
    ("bit-and alias", "(bit-and (getmap args 0) #xF0)", 0xAB & 0xF0, {0: 0xAB}),
    ("bit-or alias", "(bit-or (getmap args 0) #x0F)", 0xA0 | 0x0F, {0: 0xA0}),
    ("bit-xor alias", "(bit-xor (getmap args 0) #xFF)", 0xA5 ^ 0xFF, {0: 0xA5}),
    ("ash left", "(ash (getmap args 0) 4)", 3 << 4, {0: 3}),
    ("ash right is logical", "(ash (getmap args 0) -4)", MASK64 >> 4, {0: MASK64}),
    ("division by a variable bound to 0 is 0", "(let ((y 0)) (/ (getmap args 0) y))", 0, {0: 99}),
    ("mod by a variable bound to 0 keeps the dividend", "(let ((y 0)) (mod (getmap args 0) y))", 99, {0: 99}),
    ("ash by a constant expression", "(ash (getmap args 0) (- 2 6))", 0x50 >> 4, {0: 0x50}),
    ("ash-left alias", "(ash-left (getmap args 0) 8)", 0x12 << 8, {0: 0x12}),
    ("ash-right alias", "(ash-right (getmap args 0) 8)", 0x1234 >> 8, {0: 0x1234}),
    ("ash-right-signed alias", "(ash-right-signed (getmap args 0) 8)", (-0x1234 >> 8) & MASK64, {0: -0x1234}),
    ("runtime shift count", "(<< 1 (getmap args 0))", 1 << 40, {0: 40}),
    ("u32 operands multiply in 64 bits",
     "(let ((x u32 (cast u32 (getmap args 0)))) (* x x))", 0xFFFFFFFF * 0xFFFFFFFF, {0: 0xFFFFFFFF}),
    ("u32 operand shifted left keeps high bits",
     "(let ((x u32 (cast u32 (getmap args 0)))) (<< x 16))", 0xFFFFFFFF << 16, {0: 0xFFFFFFFF}),
    ("u32 operand arithmetic shift is 64-bit",
     "(let ((x u32 (cast u32 (getmap args 0)))) (>>> x 4))", 0x80000000 >> 4, {0: 0x80000000}),
    ("u32 operands add without wrap",
     "(let ((x u32 (cast u32 (getmap args 0)))) (+ x x))", 0xFFFFFFFF * 2, {0: 0xFFFFFFFF}),
    # casts truncate and never sign-extend (§2.6)
    ("cast u8", "(cast u8 (getmap args 0))", 0x1122334455667788 & 0xFF, {0: 0x1122334455667788}),
    ("cast u16", "(cast u16 (getmap args 0))", 0x1122334455667788 & 0xFFFF, {0: 0x1122334455667788}),
    ("cast u32", "(cast u32 (getmap args 0))", 0x1122334455667788 & 0xFFFFFFFF, {0: 0x1122334455667788}),
    ("cast u64", "(cast u64 (getmap args 0))", 0x1122334455667788, {0: 0x1122334455667788}),
    ("cast i8 does not sign-extend", "(cast i8 (getmap args 0))", 0xFF, {0: -1}),
    ("cast i32 does not sign-extend", "(cast i32 (getmap args 0))", 0xFFFFFFFF, {0: -1}),
    ("cast of literal", "(cast u16 #x123456)", 0x3456, {}),
    # byte order (§2.7)
    ("ntohs", "(ntohs (getmap args 0))", bswap(0x1234, 2), {0: 0x1234}),
    ("ntohs takes the low 16 bits", "(ntohs (getmap args 0))", bswap(0x11223344, 2), {0: 0x11223344}),
    ("htons", "(htons (getmap args 0))", bswap(0xABCD, 2), {0: 0xABCD}),
    ("ntohl", "(ntohl (getmap args 0))", bswap(0x12345678, 4), {0: 0x12345678}),
    ("htonl takes the low 32 bits", "(htonl (getmap args 0))", bswap(0x9912345678, 4), {0: 0x9912345678}),
    ("ntohll", "(ntohll (getmap args 0))", bswap(0x0102030405060708, 8), {0: 0x0102030405060708}),
    ("htonll", "(htonll (getmap args 0))", bswap(0x8000000000000001, 8), {0: 0x8000000000000001}),
    ("ntohs of literal", "(ntohs #x0800)", 0x0008, {}),
    ("swapped compare", "(= (ntohs (getmap args 0)) #x1234)", 1, {0: 0x3412}),
    ("swapped compare false", "(= (ntohl (getmap args 0)) #x12345678)", 0, {0: 0x12345678}),
    # literals and constants (§2.1, §3.2)
    ("hex literal", "#x0800", 0x0800, {}),
    ("binary literal", "#b101101", 0b101101, {}),
    ("octal literal", "#o777", 0o777, {}),
    ("negative literal", "-2", -2, {}),
    ("64-bit literal", "#x8000000000000001", 0x8000000000000001, {}),
    ("literal just above s32", "#x80000000", 0x80000000, {}),
    ("large literal in arithmetic", "(+ (getmap args 0) #x100000000)", 5 + 0x100000000, {0: 5}),
    ("nil is 0", "(+ nil 3)", 3, {}),
    ("xdp return constants", "(+ (* 1000 XDP_ABORTED) (* 100 XDP_DROP) (* 10 XDP_PASS) XDP_TX)", 123, {}),
    ("XDP_REDIRECT", "XDP_REDIRECT", 4, {}),
    ("TC constants", "(+ (* 100 TC_ACT_SHOT) (* 10 TC_ACT_STOLEN) TC_ACT_REDIRECT)", 247, {}),
    ("BPF flag constants", "(+ (* 100 BPF_ANY) (* 10 BPF_NOEXIST) BPF_EXIST)", 12, {}),
    ("protocol constants", "(+ +ethertype-ipv6+ +ip-proto-udp+ +tcp-hdr-len+)", 0x86DD + 17 + 20, {}),
    ("more protocol constants",
     "(logior +tcp-fin+ +tcp-syn+ +tcp-rst+ +tcp-psh+ +tcp-ack+ +tcp-urg+)", 0x3F, {}),
    ("header length constants", "(+ +eth-hdr-len+ +ipv4-hdr-len+ +ipv6-hdr-len+ +udp-hdr-len+ +icmp-hdr-len+)",
     14 + 20 + 40 + 8 + 8, {}),
    ("ethertype constants", "(- +ethertype-vlan+ +ethertype-arp+ +ethertype-ipv4+)", 0x8100 - 0x0806 - 0x0800, {}),
]

# (operator, a, b) -- unsigned operators compare u64 values, s-operators the signed view.
COMPARE_FNS = {
    "=": lambda a, b: u64(a) == u64(b), "/=": lambda a, b: u64(a) != u64(b),
    "<": lambda a, b: u64(a) < u64(b), "<=": lambda a, b: u64(a) <= u64(b),
    ">": lambda a, b: u64(a) > u64(b), ">=": lambda a, b: u64(a) >= u64(b),
    "s<": lambda a, b: s64(a) < s64(b), "s<=": lambda a, b: s64(a) <= s64(b),
    "s>": lambda a, b: s64(a) > s64(b), "s>=": lambda a, b: s64(a) >= s64(b),
}
COMPARE_OPERANDS = [(-1, 1), (1, -1), (5, 5), (0x80000000, 0x7FFFFFFF), (-5, -6)]
# (run-time value, literal): literals at and beyond the s32 immediate range
COMPARE_LITERALS = [(0x80000000, 0x80000000), (-1, 0x80000000), (0xFFFFFFFF, 0xFFFFFFFF), (5, -1),
                    (0x7FFFFFFF, 0x80000000)]


def compare_cases():
    for op, fn in COMPARE_FNS.items():
        for a, b in COMPARE_OPERANDS:
            yield value(f"runtime {op} {a} {b}", f"({op} (getmap args 0) (getmap args 1))", int(fn(a, b)),
                        args={0: a, 1: b})
        a, b = COMPARE_OPERANDS[0]
        yield value(f"const {op} {a} {b}", f"({op} {a} {b})", int(fn(a, b)))
        for a, lit in COMPARE_LITERALS:
            yield value(f"immediate {op} {a:#x} {lit:#x}", f"({op} (getmap args 0) {literal(lit)})",
                        int(fn(a, lit)), args={0: a})


CASES = [*binary_cases(), *(value(*row) for row in OTHER), *compare_cases()]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_arith(case, pin_dir):
    run_case(case, pin_dir)
