"""Conformance: every map operation (reference §2.9, §2.10) against real kernel maps.

getmap/setf/incf/decf/setmap/remmap/delmap, the raw map-lookup/map-update/map-delete forms,
load/store/atomic-add through value pointers; missing keys, 1/2/4/8-byte keys (constant and
run-time, the constant written at the full key width) and 1/2/4/8-byte values. Map contents are
read back with bpftool and compared whole.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.kernel.compiler.conformance.case import Case, program, res, run_case, u64, value

A, B = "(getmap args 0)", "(getmap args 1)"
H = "(defmap h :type :hash :key-size 4 :value-size 8 :max-entries 16)"
H8 = "(defmap h8 :type :hash :key-size 8 :value-size 8 :max-entries 16)"
H2 = "(defmap h2 :type :hash :key-size 2 :value-size 4 :max-entries 16)"
H1 = "(defmap h1 :type :hash :key-size 1 :value-size 2 :max-entries 16)"
HV4 = "(defmap hv4 :type :hash :key-size 4 :value-size 4 :max-entries 16)"
LRU = "(defmap lru :type :lru-hash :key-size 4 :value-size 8 :max-entries 16)"
PCA = "(defmap pca :type :percpu-array :key-size 4 :value-size 8 :max-entries 2)"
PCH = "(defmap pch :type :percpu-hash :key-size 4 :value-size 8 :max-entries 16)"
V = {w: f"(defmap v{w} :type :array :key-size 4 :value-size {w} :max-entries 2)" for w in (1, 2, 4, 8)}
PATTERN = 0x1122334455667788


def stmt(case_id: str, body: str, extra: str, maps: dict, retval: int = 2, **kw) -> Case:
    """A program that runs ``body`` for its effects, returns XDP_PASS; ``maps`` = expected contents."""
    return Case(case_id, program(f"{body}\n  XDP_PASS", extra), retval, {**res(), **maps}, **kw)


def with_maps(case: Case, **maps: dict) -> Case:
    return replace(case, maps={**case.maps, **maps})


def with_preset(case: Case, **preset: dict) -> Case:
    return replace(case, preset=preset)


def width_cases():
    for w in (1, 2, 4, 8):
        mask = (1 << 8 * w) - 1
        yield with_maps(value(f"setf getmap reads back {w}-byte value",
                              f"(progn (setf (getmap v{w} 1) #x{PATTERN:X}) (getmap v{w} 1))",
                              PATTERN & mask, extra=V[w]), **{f"v{w}": {0: 0, 1: PATTERN & mask}})
        yield with_maps(value(f"setf getmap stores exactly {w} bytes with a run-time value",
                              f"(progn (setf (getmap v{w} 0) {A}) 0)", 0, args={0: PATTERN}, extra=V[w]),
                        **{f"v{w}": {0: PATTERN & mask, 1: 0}})
        # the neighbouring element proves the read is exactly value-size bytes wide
        yield with_preset(value(f"getmap reads exactly {w} bytes", f"(getmap v{w} 0)", 0xA1A2A3A4A5A6A7A8 & mask,
                                extra=V[w]),
                          **{f"v{w}": {0: 0xA1A2A3A4A5A6A7A8 & mask, 1: mask}})


CASES = [
    # hash maps: missing keys, insert, read back, delete
    with_maps(value("getmap of a missing hash key is 0", "(getmap h 5)", 0, extra=H), h={}),
    with_maps(value("setf getmap then getmap", "(progn (setf (getmap h 5) 77) (getmap h 5))", 77, extra=H),
              h={5: 77}),
    stmt("setf getmap with run-time key and value", f"(setf (getmap h {A}) {B})", H, {"h": {9: u64(-3)}},
         args={0: 9, 1: -3}),
    stmt("incf inserts a missing hash key", "(incf (getmap h 3))", H, {"h": {3: 1}}),
    stmt("incf twice on a hash key", "(incf (getmap h 3))", H, {"h": {3: 2}}, runs=2),
    stmt("incf by a delta inserts the delta", "(incf (getmap h 3) 5)", H, {"h": {3: 5}}),
    stmt("incf by a run-time delta", f"(incf (getmap h {A}) {B})", H, {"h": {4: 1000}}, args={0: 4, 1: 500},
         runs=2),
    with_preset(stmt("incf an existing hash entry", "(incf (getmap h 3) 2)", H, {"h": {3: 12}}), h={3: 10}),
    stmt("decf on a missing hash key stores -1", "(decf (getmap h 4))", H, {"h": {4: u64(-1)}}),
    with_preset(stmt("decf by a delta", "(decf (getmap h 4) 3)", H, {"h": {4: 7}}), h={4: 10}),
    with_preset(with_maps(value("remmap then getmap is 0", "(progn (remmap h 5) (getmap h 5))", 0, extra=H),
                          h={6: 1}), h={5: 9, 6: 1}),
    with_preset(stmt("delmap deletes", "(delmap h 5)", H, {"h": {}}), h={5: 9}),
    stmt("remmap of a missing key is harmless", "(remmap h 5)", H, {"h": {}}),
    stmt("setmap inserts with BPF_NOEXIST once", "(setmap h 1 5 BPF_NOEXIST)\n  (setmap h 1 6 BPF_NOEXIST)",
         H, {"h": {1: 5}}),
    stmt("setmap with BPF_EXIST does not insert", "(setmap h 1 6 BPF_EXIST)", H, {"h": {}}),
    with_preset(stmt("setmap with BPF_EXIST overwrites", "(setmap h 1 6 BPF_EXIST)", H, {"h": {1: 6}}), h={1: 5}),
    stmt("setmap without flags is BPF_ANY", "(setmap h 2 8)\n  (setmap h 2 9)", H, {"h": {2: 9}}),
    # keys of every width; constant keys written at the full key width
    stmt("8-byte constant key", f"(setf (getmap h8 #x{PATTERN:X}) 5)", H8, {"h8": {PATTERN: 5}}),
    stmt("small constant key on an 8-byte-key map", "(setf (getmap h8 1) 5)", H8, {"h8": {1: 5}}),
    stmt("incf with a constant 8-byte key", "(incf (getmap h8 7))", H8, {"h8": {7: 2}}, runs=2),
    with_preset(with_maps(value("getmap with a constant 8-byte key", "(+ (getmap h8 #x100000001) (getmap h8 1))",
                                9, extra=H8), h8={0x100000001: 9}), h8={0x100000001: 9}),
    stmt("run-time 8-byte key", f"(setf (getmap h8 {A}) 3)", H8, {"h8": {0xDEADBEEFCAFE: 3}},
         args={0: 0xDEADBEEFCAFE}),
    stmt("u32 key widened to an 8-byte key", f"(let ((k u32 (cast u32 {A}))) (setf (getmap h8 k) 4))", H8,
         {"h8": {0x12345678: 4}}, args={0: 0xFFFFFFFF12345678}),
    stmt("2-byte constant key", "(setf (getmap h2 #x1234) 5)", H2, {"h2": {0x1234: 5}}),
    stmt("2-byte run-time key", f"(setf (getmap h2 {A}) 6)", H2, {"h2": {0xBEEF: 6}}, args={0: 0xBEEF}),
    stmt("1-byte key, 2-byte value", "(setf (getmap h1 #xAB) #x12345)", H1, {"h1": {0xAB: 0x2345}}),
    stmt("incf on a 4-byte hash value", "(incf (getmap hv4 2) 5)", HV4, {"hv4": {2: 10}}, runs=2),
    # array maps: entries always exist; out-of-range indexes do nothing
    stmt("incf an array entry", "(incf (getmap res 1))", "", res(0, 3), runs=3),
    stmt("incf out of range does nothing", "(incf (getmap res 100))", "", res()),
    value("getmap out of range is 0", "(getmap res 100)", 0),
    stmt("incf by a run-time delta on an array", f"(incf (getmap res 2) {A})", "", res(0, 0, 2 * 40),
         args={0: 40}, runs=2),
    with_preset(stmt("incf a 4-byte array value wraps in 4 bytes", "(incf (getmap v4 0))", V[4],
                     {"v4": {0: 0, 1: 0}}), v4={0: 0xFFFFFFFF, 1: 0}),
    with_preset(stmt("incf an 8-byte array value carries", "(incf (getmap v8 0))", V[8],
                     {"v8": {0: 0x100000000, 1: 0}}), v8={0: 0xFFFFFFFF}),
    with_preset(stmt("decf an array entry", "(decf (getmap res 1) 3)", "", res(0, 7)), res={1: 10}),
    stmt("setf getmap on an array", f"(setf (getmap res 3) {A})", "", res(0, 0, 0, 0xFEED), args={0: 0xFEED}),
    *width_cases(),
    # constants that do not fit a sign-extended 32-bit store immediate
    stmt("setf getmap of #xFFFFFFFF", "(setf (getmap res 1) #xFFFFFFFF)", "", res(0, 0xFFFFFFFF)),
    stmt("setf getmap of #x80000000", "(setf (getmap res 1) #x80000000)", "", res(0, 0x80000000)),
    stmt("setf getmap of -1", "(setf (getmap res 1) -1)", "", res(0, u64(-1))),
    stmt("setf getmap of a 64-bit constant", f"(setf (getmap res 1) #x{PATTERN:X})", "", res(0, PATTERN)),
    stmt("constant key #xFFFFFFFF on an 8-byte-key map", "(setf (getmap h8 #xFFFFFFFF) 1)", H8,
         {"h8": {0xFFFFFFFF: 1}}),
    stmt("constant key #x80000000 on an 8-byte-key map", "(incf (getmap h8 #x80000000))", H8,
         {"h8": {0x80000000: 1}}),
    stmt("incf by #xFFFFFFFF", "(incf (getmap res 1) #xFFFFFFFF)", "", res(0, 0xFFFFFFFF)),
    stmt("incf by -1", "(incf (getmap res 1) -1)", "", res(0, u64(-1))),
    stmt("store u64 of #xFFFFFFFF", "(when-let ((p (map-lookup res 1))) (store u64 p 0 #xFFFFFFFF))", "",
         res(0, 0xFFFFFFFF)),
    stmt("store u32 of #xFFFFFFFF", "(when-let ((p (map-lookup res 1))) (store u32 p 4 #xFFFFFFFF))", "",
         res(0, 0xFFFFFFFF << 32)),
    stmt("store u16 truncates", "(when-let ((p (map-lookup res 1))) (store u16 p 0 #x12345))", "",
         res(0, 0x2345)),
    stmt("store u64 of a run-time value", f"(when-let ((p (map-lookup res 1))) (store u64 p 0 {A}))", "",
         res(0, PATTERN), args={0: PATTERN}),
    # other map types
    stmt("incf inserts into an lru-hash", "(incf (getmap lru 9))", LRU, {"lru": {9: 2}}, runs=2),
    stmt("incf a percpu-array entry", "(incf (getmap pca 1))", PCA, {"pca": {0: 0, 1: 2}}, runs=2),
    stmt("incf inserts into a percpu-hash", "(incf (getmap pch 4) 3)", PCH, {"pch": {4: 3}}),
    with_maps(value("getmap on a percpu-array reads this CPU's value", "(progn (incf (getmap pca 0) 6) (getmap pca 0))",
                    6, extra=PCA), pca={0: 6, 1: 0}),
    # raw forms
    with_maps(value("map-update then map-lookup and load",
                    f"(progn (map-update h {A} 9 BPF_ANY) (let ((p (map-lookup h {A}))) (if p (load u64 p 0) 99)))",
                    9, args={0: 12}, extra=H), h={12: 9}),
    with_maps(value("map-lookup of a missing key is null", "(if (map-lookup h 3) 1 2)", 2, extra=H), h={}),
    with_maps(value("map-update returns the helper's error", "(map-update h 1 5 BPF_EXIST)", -2, extra=H), h={}),
    with_maps(value("map-update without flags", "(map-update h 1 5)", 0, extra=H), h={1: 5}),
    with_preset(with_maps(value("map-delete", "(map-delete h 3)", 0, extra=H), h={}), h={3: 1}),
    with_maps(value("map-delete of a missing key is -ENOENT", "(map-delete h 3)", -2, extra=H), h={}),
    value("atomic-add and store through a value pointer",
          "(when-let ((p (map-lookup res 1))) (atomic-add p 0 5) (store u32 p 4 7) (load u64 p 0))",
          (7 << 32) + 5, counts=((7 << 32) + 5,)),
    value("atomic-add u32 at an offset", "(when-let ((p (map-lookup res 1))) (atomic-add p 4 1 u32) 0)", 0,
          counts=(1 << 32,)),
    with_preset(value("load widths at offsets",
                      "(when-let ((p (map-lookup res 1)))"
                      " (logior (<< (load u8 p 7) 48) (<< (load u16 p 2) 32) (load u32 p 4)))",
                      (0x11 << 48) | (0x5566 << 32) | 0x11223344, counts=(PATTERN,)), res={1: PATTERN}),
    with_preset(stmt("store widths at offsets",
                     "(when-let ((p (map-lookup res 1))) (store u8 p 0 0) (store u16 p 2 #x1234) (store u32 p 4 0))",
                     "", res(0, 0x0000000012340000 | 0xFF00)), res={1: 0xFFFFFFFFFFFFFFFF}),
    with_preset(value("load u64 through a looked-up pointer", "(let ((p (map-lookup res 2))) (if p (load u64 p 0) 0))",
                      0x123456789, counts=(0, 0x123456789)), res={2: 0x123456789}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_maps(case, pin_dir):
    run_case(case, pin_dir)
