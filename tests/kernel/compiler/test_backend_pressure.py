"""Back end against the kernel: register pressure, spills, values across helper calls,
non-commutative operands, argument shuffles and shared exits (expected values computed here)."""

from __future__ import annotations

import pytest

from tests.kernel.compiler.conformance.case import MASK64, run_case, value

A = [(0x1111 * (i + 1)) << (4 * i) for i in range(3)]
ARGS = {0: A[0], 1: A[1], 2: A[2]}
GET = ["(getmap args 0)", "(getmap args 1)", "(getmap args 2)"]
BUMP = "(incf (getmap res 1))"


def _many(n: int) -> tuple[str, int]:
    """n values live across two helper calls, then combined with non-commutative operators."""
    names = [f"v{i}" for i in range(n)]
    binds = " ".join(f"({v} (+ {GET[i % 3]} {i}))" for i, v in enumerate(names))
    combine = names[0]
    expected = A[0]
    for i, v in enumerate(names[1:], start=1):
        combine = f"(- (* {combine} 3) {v})"
        expected = (expected * 3 - (A[i % 3] + i)) & MASK64
    return f"(let ({binds}) {BUMP} {BUMP} {combine})", expected


@pytest.mark.parametrize("n", [4, 8, 12, 16])
def test_values_survive_helper_calls_under_pressure(pin_dir, n):
    body, expected = _many(n)
    run_case(value(f"pressure {n}", body, expected, args=ARGS, counts=(2,)), pin_dir)


def test_non_commutative_operands_keep_their_order(pin_dir):
    body = f"(let ((x {GET[0]}) (y {GET[1]})) (+ (- y x) (* (- x y) 2) (/ y 3) (mod y 7) (<< x 3) (>> y 2)))"
    x, y = A[0], A[1]
    expected = ((y - x) + (x - y) * 2 + y // 3 + y % 7 + (x << 3) + (y >> 2)) & MASK64
    run_case(value("non-commutative", body, expected, args=ARGS), pin_dir)


def test_helper_arguments_in_swapped_order(pin_dir):
    # key and value change places between two updates: the argument registers must be shuffled
    body = (f"(let ((k (cast u32 (logand {GET[0]} 3))) (v (logand {GET[1]} 3)))"
            " (setmap res k v) (setmap res v k) (+ (getmap res k) (* 10 (getmap res v))))")
    k, v = A[0] & 3, A[1] & 3
    res = [0, 0, 0, 0]
    res[k] = v
    res[v] = k
    expected = res[k] + 10 * res[v]
    res[0] = expected  # value() stores the result in res[0] last
    case = value("swapped helper args", body, expected, args=ARGS)
    case.maps = {"res": dict(enumerate(res))}
    run_case(case, pin_dir)


@pytest.mark.parametrize("a, expected", [(0, 1), (5, 2), (MASK64, 3), (7, 2)])
def test_many_returns_of_few_values(pin_dir, a, expected):
    body = (f"(let ((a {GET[0]})) (when (= a 0) (return 1)) (when (= a {MASK64}) (return 3))"
            " (when (> a 100) (return 3)) (when (= a 6) (return 1)) 2)")
    case = value(f"returns {a}", body, expected, args={0: a})
    case.maps = {"res": {0: 0, 1: 0, 2: 0, 3: 0}} if expected != 2 else case.maps
    run_case(case, pin_dir)


def test_stack_near_the_limit_is_accepted(pin_dir):
    # 496 bytes of struct + the 4-byte map keys: the frame is 500 of the kernel's 512 bytes
    body = (f"(let ((buf (struct-alloc 496))) (store u64 buf 488 {GET[0]}) (store u8 buf 0 {GET[1]})"
            " (+ (load u64 buf 488) (load u8 buf 0) (load u32 buf 100)))")
    expected = (A[0] + (A[1] & 0xFF)) & MASK64
    run_case(value("stack near 512", body, expected, args=ARGS), pin_dir)


def test_packet_pointer_and_context_survive_spills(pin_dir):
    # more values than r6-r9 live across helper calls, including the packet pointer (loads after
    # the calls) and the context (needed by the final tail call into an empty slot)
    names = [f"v{i}" for i in range(10)]
    binds = " ".join(f"({v} (+ {GET[i % 3]} {i}))" for i, v in enumerate(names))
    body = (f"(let ((data (xdp-data)) (data-end (xdp-data-end)))"
            f" (when (> (+ data 34) data-end) (return 99))"
            f" (let ({binds}) {BUMP} {BUMP}"
            f"  (tail-call jt 0)"
            f"  (+ (ipv4-ttl (+ data 14)) {' '.join(names)})))")
    expected = (61 + sum(A[i % 3] + i for i in range(10))) & MASK64  # DEFAULT_FRAME has ttl 61
    extra = "(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 2)"
    case = value("spilled packet pointer", body, expected, args=ARGS, extra=extra, counts=(2,))
    run_case(case, pin_dir)
