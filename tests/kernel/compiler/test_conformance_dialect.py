"""Conformance: the rest of the dialect (reference §1.5-§1.9, §2.8, §2.9, §2.16), in the kernel.

``memset``/``memcpy`` (constant and run-time fill byte, odd offsets and lengths),
``stack-addr``, ``log2`` over the whole 64-bit range, ``incf-map``, ``asm``, user ``defheader``
accessors (read and ``setf``, network order), ``defparameter`` values used by macros and
``defsetf`` (short and long form). Expected values are computed here in Python.
"""

from __future__ import annotations

import struct

import pytest

from tests.kernel import frames as f
from tests.kernel.compiler.conformance.case import Case, program, res, run_case, value
from tests.kernel.harness import loaded

A, B = "(getmap args 0)", "(getmap args 1)"
H = "(defmap h :type :hash :key-size 4 :value-size 8 :max-entries 8)\n"


def word(data: bytes, at: int = 0) -> int:
    return int.from_bytes(data[at:at + 8], "little")


def buffer_case(case_id: str, writes: str, expected: bytes, **kw) -> Case:
    """``writes`` fill a zeroed 24-byte stack buffer ``b``; its three words must read back as
    ``expected`` (the sum of the words weighted 1, 2, 4 so each word counts)."""
    expr = f"(let ((b (struct-alloc 24))) {writes} (+ (load u64 b 0) (* 2 (load u64 b 8)) (* 4 (load u64 b 16))))"
    return value(case_id, expr, word(expected) + 2 * word(expected, 8) + 4 * word(expected, 16), **kw)


def filled(size: int, at: int, count: int, byte: int) -> bytes:
    out = bytearray(size)
    out[at:at + count] = bytes([byte]) * count
    return bytes(out)


def log2(x: int) -> int:
    return max(x.bit_length() - 1, 0)


LOG2_INPUTS = [0, 1, 2, 3, 4, 5, 1023, 1024, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 32, (1 << 40) + 7, (1 << 63) + 1,
               (1 << 64) - 1]

CASES = [
    buffer_case("memset fills with a constant byte", "(memset b 0 #xAB 24)", bytes([0xAB]) * 24),
    buffer_case("memset at an odd offset and length", "(memset b 3 #x5A 13)", filled(24, 3, 13, 0x5A)),
    buffer_case("memset with a run-time byte", f"(memset b 1 {A} 10)", filled(24, 1, 10, 0x7E), args={0: 0x17E}),
    buffer_case("memset of nothing", "(memset b 0 1 0)", bytes(24)),
    buffer_case("memcpy between stack buffers",
                "(let ((src (struct-alloc 16))) (store u64 src 0 #x0807060504030201) (store u64 src 8 #x100F0E0D0C0B0A09)"
                " (memcpy b 5 src 1 14))",
                bytes(5) + bytes(range(2, 16)) + bytes(5)),
    Case("memcpy into a map value", program(f"(let ((s (struct-alloc 8))) (store u64 s 0 {A})"
                                            " (when-let ((p (map-lookup res 1))) (memcpy p 0 s 0 8)))\n  2"),
         2, res(0, 0x1122334455667788), args={0: 0x1122334455667788}),
    Case("stack-addr is a key pointer", program("(let ((k u32 3)) (setf (getmap h 3) 9) (map-lookup-ptr h (stack-addr k))"
                                                " (let ((p (map-lookup-ptr h (stack-addr k)))) (if p (load u64 p 0) 0)))", H),
         9, {**res(), "h": {3: 9}}),
    value("stack-addr holds the value at that point",
          f"(let ((x {A})) (let ((p (stack-addr x))) (setf x 0) (load u64 p 0)))", 0xABCDEF, args={0: 0xABCDEF}),
    value("a struct-alloc whose address is stored keeps the zeroes its pointer reads",
          f"(let ((p (struct-alloc 16)) (h (struct-alloc 8))) (store u64 h 0 p)"
          f" (let ((x (load u64 (load u64 h 0) 0))) (store u64 p 0 {A})"
          f" (+ x (* 2 (load u64 p 0)) (* 4 (load u64 (load u64 h 0) 8)))))", 2 * 0x1234, args={0: 0x1234}),
    value("a struct-alloc whose address is stored reads the values that overwrote its zeroes",
          f"(let ((p (struct-alloc 16)) (h (struct-alloc 8))) (store u64 h 0 p) (store u64 p 0 {A})"
          f" (+ (load u64 (load u64 h 0) 0) (* 2 (load u64 (load u64 h 0) 8))))", 0x1234, args={0: 0x1234}),
    *(value(f"log2 of {x:#x}", f"(log2 {A})", log2(x), args={0: x}) for x in LOG2_INPUTS),
    value("log2 of a constant", "(log2 1024)", 10),
    Case("incf-map on an array map", program("(incf-map res 2) (incf-map res 2 5)\n  2"), 2, res(0, 0, 6)),
    Case("incf-map inserts into a hash map", program("(incf-map h 4 3)\n  2", H), 2, {**res(), "h": {4: 3}}),
    value("asm mov64 imm", "(asm #xb7 0 0 0 42)", 42),
    value("asm mov64 imm sign-extends", "(asm #xb7 0 0 0 -1)", (1 << 64) - 1),
    value("asm mov32 imm zero-extends", "(asm #xb4 0 0 0 -1)", 0xFFFFFFFF),
    value("asm with an unsigned immediate", "(asm #xb4 0 0 0 #xFFFFFFFF)", 0xFFFFFFFF),
    value("asm calls a helper", "(< (asm #x85 0 0 0 7) (<< 1 32))", 1),
    value("values live across asm survive", f"(let ((x {A})) (asm #xb7 1 0 0 5) (asm #xb7 3 0 0 5) (+ x 1))", 8,
          args={0: 7}),
    value("defparameter values feed macros", "(port-in 443)", 1,
          extra="(defparameter *ports* '(22 80 443))\n"
                "(defmacro port-in (x) `(or ,@(mapcar (lambda (p) `(= ,x ,p)) *ports*)))"),
    value("defvar keeps the first value", "+seen+", 1,
          extra="(defvar *n* 1)\n(defvar *n* 2)\n(defmacro n () *n*)\n(defconstant +seen+ 1)"),
    value("defsetf short form", f"(let ((s (struct-alloc 8))) (setf (cell s) {A}) (load u64 s 0))", 0x77, args={0: 0x77},
          extra="(defmacro cell (p) `(load u64 ,p 0))\n(defmacro set-cell (p v) `(store u64 ,p 0 ,v))\n"
                "(defsetf cell set-cell)"),
    value("defsetf long form evaluates its arguments once",
          "(let ((s (struct-alloc 16)) (i 0)) (setf (slot s (progn (setf i (+ i 1)) i)) 5) (+ (* 10 i) (load u64 s 8)))",
          15, extra="(defmacro slot (p i) `(load u64 (+ ,p (* 8 ,i)) 0))\n"
                    "(defsetf slot (p i) (v) `(store u64 (+ ,p (* 8 ,i)) 0 ,v))"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dialect(case, pin_dir):
    run_case(case, pin_dir)


VLAN_HEADER = """(defheader vlan (tci :offset 0 :type u16 :net-order t) (inner :offset 2 :type u16 :net-order t)
  (raw-tci :offset 0 :type u16))
"""


def test_defheader_reads_and_writes_in_network_order(pin_dir):
    body = ("(with-packet (d e :min-len 18)\n"
            "    (let ((v (+ d 14)))\n"
            "      (setf (getmap res 0) (vlan-tci v) (getmap res 1) (vlan-inner v) (getmap res 2) (vlan-raw-tci v))\n"
            "      (setf (vlan-tci v) (+ (vlan-tci v) 1))))\n  XDP_TX")
    frame = f.eth(f.ETH_VLAN, f.vlan(0x123, f.ETH_IPV4, f.ipv4(f.PROTO_UDP, f.udp())))
    source = "(defmap res :type :array :key-size 4 :value-size 8 :max-entries 4)\n" + VLAN_HEADER + \
        f"(defprog conf ()\n  {body})\n"
    with loaded(source, pin_dir) as obj:
        out = obj.run_full("conf", frame)
        assert out.retval == 3
        raw = struct.unpack_from("<H", frame, 14)[0]
        assert obj.map("res") == {0: 0x123, 1: f.ETH_IPV4, 2: raw, 3: 0}
        assert out.data_out == frame[:14] + struct.pack("!H", 0x124) + frame[16:]
