"""Macro expansion: Whistler source -> decls.Unit whose bodies hold only core forms.

Expected core forms are written as source text and read with the reader; gensyms, which
the reader cannot produce, are written as escaped symbols (``|#:P1|``). Counters start at 1
in each unit.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from compiler import builtins, protocols
from compiler.errors import CompileError, Loc
from compiler.expand import expand_unit
from compiler.expand.unit import _library
from compiler.forms import Int, List, Symbol
from compiler.reader import read
from tests.conftest import seed_source

MAPS = """(defmap arr :type :array :key-size 4 :value-size 8 :max-entries 4)
(defmap arr32 :type :array :key-size 4 :value-size 4 :max-entries 4)
(defmap h :type :hash :key-size 4 :value-size 8 :max-entries 16)
(defmap h16 :type :lru-hash :key-size 2 :value-size 2 :max-entries 16)
(defmap big :type :hash :key-size 16 :value-size 4 :max-entries 16)
(defmap wide :type :hash :key-size 4 :value-size 24 :max-entries 16)
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 8)
(defmap rb :type :ringbuf :max-entries (* 64 1024))
(defstruct ev (a u8) (b u32) (tag (array u16 4)))
(defstruct fk (src u32) (dst u32) (port u16) (proto u8))
(defunion either ev fk)
(defheader vl (tci :offset 0 :type u16 :net-order t) (raw :offset 2 :type u16) (hi :offset 4 :type u64 :net-order t))
(defmap sv :type :hash :key-size 4 :value-type ev :max-entries 4)
(defmap sk :type :hash :key-type fk :value-size 8 :max-entries 4)
(defmap pea :type :perf-event-array :key-size 4 :value-size 4 :max-entries 2)
(defparameter *ports* '(22 80))
(defconstant +k+ 7)
(defconstant +zero+ (- +k+ 7))
"""
BODY_LINE = MAPS.count("\n") + 2  # the program body starts on this line, column 3

# The core vocabulary (decls.py): head -> allowed operand counts (None = any).
CORE_ARITY = {
    "PROGN": None, "LET": None, "SETQ": (2,), "IF": (3,), "AND": None, "OR": None, "NOT": (1,),
    "RETURN": (1,), "NEG": (1,), "CAST": (2,), "BSWAP16": (1,), "BSWAP32": (1,), "BSWAP64": (1,),
    "LOAD": (3,), "STORE": (4,), "ATOMIC-ADD": (4,), "CTX-LOAD": (2,), "CTX-STORE": (3,),
    "MAP-LOOKUP": (2,), "MAP-UPDATE": (4,), "MAP-DELETE": (2,), "MAP-LOOKUP-PTR": (2,),
    "MAP-UPDATE-PTR": (4,), "MAP-DELETE-PTR": (2,), "CALL": None, "CTX-PTR": (0,), "TAIL-CALL": (2,),
    "STRUCT-ALLOC": (1,), "ASM": (5,), "DOTIMES": None,
    **{op: (2,) for op in ("+", "-", "*", "/", "MOD", "LOGAND", "LOGIOR", "LOGXOR", "<<", ">>", ">>>",
                           "=", "/=", "<", "<=", ">", ">=", "S<", "S<=", "S>", "S>=")},
}
TYPE_NAMES = {"U8", "U16", "U32", "U64", "I8", "I16", "I32", "I64"}


def assert_core(form, maps) -> None:
    """Every node is an Int, a variable symbol or a core form with the right operand count."""
    if isinstance(form, Int):
        return
    if isinstance(form, Symbol):
        assert not form.is_keyword and form.name not in maps, form
        return
    assert isinstance(form, List) and form.items, form
    head, *args = form.items
    assert isinstance(head, Symbol) and head.name in CORE_ARITY, f"not a core form: {form}"
    arity = CORE_ARITY[head.name]
    assert arity is None or len(args) in arity, f"wrong operand count: {form}"
    if head.name == "LET":
        for var, typ, init in (b.items for b in args[0].items):
            assert isinstance(var, Symbol) and typ.name in TYPE_NAMES | {"NIL"}, form
            assert_core(init, maps)
        args = args[1:]
    elif head.name in ("LOAD", "STORE", "ATOMIC-ADD", "CTX-LOAD", "CTX-STORE", "CAST"):
        assert args[0].name in TYPE_NAMES, form
        args = args[1:]
    elif head.name.startswith("MAP-") or head.name == "TAIL-CALL":
        assert args[0].name in maps, form
        args = args[1:]
    elif head.name == "SETQ":
        assert isinstance(args[0], Symbol), form
        args = args[1:]
    elif head.name == "DOTIMES":
        var, count, bound = args[0].items
        assert isinstance(var, Symbol) and isinstance(bound, Int) and 0 <= bound.value <= 1 << 23, form
        assert not isinstance(count, Int) or count.value == bound.value, form
        assert_core(count, maps)
        args = args[1:]
    elif head.name == "CALL":
        assert isinstance(args[0], Int) and len(args) <= 6, form
        fds = [a for a in args if isinstance(a, List) and a.head_is("MAP-FD")]
        assert all(len(a.items) == 2 and a.items[1].name in maps for a in fds), form
        args = [a for a in args[1:] if a not in fds]
    elif head.name == "ASM":
        assert all(isinstance(a, Int) for a in args), form
    if head.name in ("LOAD", "STORE", "ATOMIC-ADD"):
        assert isinstance(args[1], Int), form
    if head.name in ("CTX-LOAD", "CTX-STORE"):
        assert isinstance(args[0], Int), form
    for a in args:
        assert_core(a, maps)


def unit_of(text: str, name: str = "t.lisp"):
    unit = expand_unit(read(text, name), name)
    names = {m.lisp_name for m in unit.maps}
    for prog in unit.programs:
        for form in prog.body:
            assert_core(form, names)
    return unit


def expr(source: str, prog_type: str = "xdp"):
    """The core form of one expression, expanded inside a program of ``prog_type``."""
    unit = unit_of(f"{MAPS}(defprog p (:type :{prog_type})\n  (return {source}))")
    (ret,) = unit.programs[0].body
    assert ret.head_is("RETURN")
    return ret.items[1]


def core(text: str):
    (form,) = read(text)
    return form


@pytest.mark.parametrize("source, expected", [
    # constants and literals
    ("5", "5"), ("-1", "-1"), ("xdp_pass", "2"), ("xdp_drop", "1"), ("xdp_tx", "3"), ("xdp_redirect", "4"),
    ("xdp_aborted", "0"), ("tc_act_shot", "2"), ("tc_act_redirect", "7"), ("bpf_exist", "2"),
    ("bpf_noexist", "1"), ("sk_pass", "1"), ("null", "0"), ("nil", "0"), ("t", "1"), ("+eth-hdr-len+", "14"),
    ("+ethertype-ipv6+", "34525"), ("+tcp-syn+", "2"), ("+k+", "7"), ("+zero+", "0"), ("x", "x"),
    # arithmetic and bit operations
    ("(+ a b c)", "(+ (+ a b) c)"), ("(+)", "0"), ("(+ a)", "a"), ("(- a)", "(neg a)"),
    ("(- a b c)", "(- (- a b) c)"), ("(* a 2 +k+)", "(* (* a 2) 7)"), ("(/ a b)", "(/ a b)"),
    ("(mod a 3)", "(mod a 3)"), ("(logand a b c)", "(logand (logand a b) c)"), ("(bit-and a 1)", "(logand a 1)"),
    ("(bit-or a b)", "(logior a b)"), ("(logior a b)", "(logior a b)"), ("(bit-xor a b)", "(logxor a b)"),
    ("(<< a 3)", "(<< a 3)"), ("(ash-left a 3)", "(<< a 3)"), ("(ash-right a 3)", "(>> a 3)"),
    ("(>>> a 63)", "(>>> a 63)"), ("(ash-right-signed a 1)", "(>>> a 1)"), ("(ash a 3)", "(<< a 3)"),
    ("(ash a -3)", "(>> a 3)"), ("(<< a n)", "(<< a n)"),
    # comparisons, casts, byte order
    ("(= a +k+)", "(= a 7)"), ("(/= a b)", "(/= a b)"), ("(s< a b)", "(s< a b)"), ("(s>= a -1)", "(s>= a -1)"),
    ("(<= a b)", "(<= a b)"), ("(cast u16 a)", "(cast u16 a)"), ("(ntohs a)", "(bswap16 a)"),
    ("(htons a)", "(bswap16 a)"), ("(ntohl a)", "(bswap32 a)"), ("(htonl a)", "(bswap32 a)"),
    ("(ntohll a)", "(bswap64 a)"), ("(htonll a)", "(bswap64 a)"),
    # control
    ("(if a 1)", "(if a 1 0)"), ("(if a 1 2)", "(if a 1 2)"), ("(when a 1 2)", "(if a (progn 1 2) 0)"),
    ("(when a)", "(if a 0 0)"), ("(unless a 1)", "(if a 0 1)"),
    ("(cond ((= a 1) 10) ((= a 2)) (t 30))", "(if (= a 1) 10 (or (= a 2) 30))"), ("(cond)", "0"),
    ("(cond (a 1 2))", "(if a (progn 1 2) 0)"),
    ("(and)", "1"), ("(or)", "0"), ("(and a b c)", "(and a b c)"), ("(or a)", "a"),
    ("(not a)", "(not a)"), ("(progn)", "0"), ("(progn a b)", "(progn a b)"), ("(progn a)", "a"),
    ("(case a (1 10) ((2 +k+) 20) (otherwise 30))",
     "(let ((|#:CASE1| nil a)) (if (= |#:CASE1| 1) 10 (if (or (= |#:CASE1| 2) (= |#:CASE1| 7)) 20 30)))"),
    ("(case a (1 10))", "(let ((|#:CASE1| nil a)) (if (= |#:CASE1| 1) 10 0))"),
    ("(return)", "(return 0)"),
    # structs, unions, headers
    ("(sizeof ev)", "16"), ("(sizeof fk)", "12"), ("(sizeof either)", "16"), ("(sizeof u16)", "2"),
    ("(make-ev)", "(struct-alloc 16)"),
    ("(make-ev :b x)", "(let ((|#:STRUCT1| u64 (struct-alloc 16))) (store u32 |#:STRUCT1| 4 x) |#:STRUCT1|)"),
    ("(make-either)", "(struct-alloc 16)"),
    ("(ev-b p)", "(load u32 p 4)"), ("(ev-tag p 3)", "(load u16 p 14)"),
    ("(ev-tag p i)", "(load u16 (+ (+ p (<< i 1)) 8) 0)"), ("(ev-tag-ptr p)", "(+ p 8)"),
    ("(setf (ev-a p) 1)", "(store u8 p 0 1)"), ("(setf (ev-tag p 1) v)", "(store u16 p 10 v)"),
    ("(struct-ref ev p b)", "(load u32 p 4)"), ("(struct-ref ev p tag 2)", "(load u16 p 12)"),
    ("(struct-set ev p a 5)", "(store u8 p 0 5)"), ("(setf (struct-ref ev p b) 5)", "(store u32 p 4 5)"),
    ("(vl-tci p)", "(bswap16 (load u16 p 0))"), ("(vl-raw p)", "(load u16 p 2)"),
    ("(vl-hi p)", "(bswap64 (load u64 p 4))"), ("(setf (vl-tci p) v)", "(store u16 p 0 (bswap16 v))"),
    ("(setf (eth-type p) v)", "(store u16 p 12 (bswap16 v))"),
    # maps with struct keys and values, values wider than 8 bytes
    ("(getmap sv k)", "(map-lookup sv k)"),
    ("(getmap sk kp)", "(let ((|#:P1| u64 (map-lookup-ptr sk kp))) (if |#:P1| (load u64 |#:P1| 0) 0))"),
    ("(map-lookup sk kp)", "(map-lookup-ptr sk kp)"),
    ("(setf (getmap sv 1) e)",
     "(let ((|#:VALUE1| u64 (struct-alloc 4))) (store u32 |#:VALUE1| 0 1) (map-update-ptr sv |#:VALUE1| e 0))"),
    ("(map-lookup h (make-fk))", "(map-lookup-ptr h (struct-alloc 12))"),
    ("(setf (getmap wide 1) v)", "(map-update wide 1 v 0)"),
    # memory
    ("(memset p 0 #xff 12)", "(progn (store u64 p 0 #xffffffffffffffff) (store u32 p 8 #xffffffff) 0)"),
    ("(memset p 1 0 3)", "(progn (store u8 p 1 0) (store u16 p 2 0) 0)"),
    ("(memcpy d 0 s 4 8)", "(progn (store u32 d 0 (load u32 s 4)) (store u32 d 4 (load u32 s 8)) 0)"),
    ("(stack-addr x)", "(let ((|#:SLOT1| u64 (struct-alloc 8))) (store u64 |#:SLOT1| 0 x) |#:SLOT1|)"),
    # ring buffers, perf events, asm
    ("(ringbuf-reserve rb (sizeof ev))", "(call 131 (map-fd rb) 16 0)"),
    ("(ringbuf-submit p)", "(progn (call 132 p 0) 0)"), ("(ringbuf-discard p 1)", "(progn (call 133 p 1) 0)"),
    ("(ringbuf-output rb p 8 0)", "(call 130 (map-fd rb) p 8 0)"),
    ("(perf-event-output (ctx-ptr) pea 0 p 8)", "(call 25 (ctx-ptr) (map-fd pea) 0 p 8)"),
    ("(asm #x85 0 0 0 5)", "(asm 133 0 0 0 5)"), ("(asm #xb4 1 0 0 #xffffffff)", "(asm 180 1 0 0 -1)"),
    ("(incf-map arr 1)",
     "(let ((|#:P1| u64 (map-lookup arr 1))) (if |#:P1| (atomic-add u64 |#:P1| 0 1) 0))"),
    # binding
    ("(let ((x 1) (y u32 2) (z u8)) (declare (type u16 x)) x)", "(let ((x u16 1) (y u32 2) (z u8 0)) x)"),
    ("(let ((x 1)) (declare (ignore x)) 0)", "(let ((x nil 1)) 0)"),
    ("(let () 1)", "(let () 1)"), ("(let* () 1)", "(let () 1)"),
    ("(let* ((x 1) (y i32 x)) (declare (type u8 x)) y)", "(let ((x u8 1)) (let ((y i32 x)) y))"),
    ("(let ((x 1)) (setf x 2))", "(let ((x nil 1)) (setq x 2))"),
    ("(setf x 1 y (+ x 1))", "(progn (setq x 1) (setq y (+ x 1)))"), ("(setq x 1)", "(setq x 1)"),
    ("(incf x)", "(setq x (+ x 1))"), ("(decf x 2)", "(setq x (- x 2))"),
    ("(when-let ((p (map-lookup h 1)) (q u64 (load u64 p 0))) q)",
     "(let ((p nil (map-lookup h 1))) (if p (let ((q u64 (load u64 p 0))) (if q q 0)) 0))"),
    ("(when-let (p u64 (ktime-get-ns)) p 1)", "(let ((p u64 (call 5))) (if p (progn p 1) 0))"),
    ("(if-let (p (get-prandom-u32)) p 9)", "(let ((p nil (call 7))) (if p p 9))"),
    ("(if-let ((p 1) (q 2)) p)", "(let ((p nil 1) (q nil 2)) (if (and p q) p 0))"),
    ("(dotimes (i 2) (incf x i))", "(dotimes (i 2 2) (setq x (+ x i)))"),
    ("(dotimes (i (* +k+ 2)) 1)", "(dotimes (i 14 14) 1)"),
    ("(dotimes (i n :max 8) (incf x i))", "(dotimes (i n 8) (setq x (+ x i)))"),
    ("(dotimes (i (+ n 1) :max +k+) 1)", "(dotimes (i (+ n 1) 7) 1)"),
    ("(dotimes (i 100 :max 10) 1)", "(dotimes (i 10 10) 1)"),
    ("(dotimes (i 8388608) 1)", "(dotimes (i 8388608 8388608) 1)"),
    # memory
    ("(load u8 p)", "(load u8 p 0)"), ("(load u16 p +k+)", "(load u16 p 7)"),
    ("(load u32 p off)", "(load u32 (+ p off) 0)"), ("(store u32 p 4 v)", "(store u32 p 4 v)"),
    ("(store u8 p off v)", "(store u8 (+ p off) 0 v)"), ("(setf (load u32 p 4) v)", "(store u32 p 4 v)"),
    ("(atomic-add p 8 1)", "(atomic-add u64 p 8 1)"), ("(atomic-add p 4 1 u32)", "(atomic-add u32 p 4 1)"),
    ("(struct-alloc 16)", "(struct-alloc 16)"),
    # context (xdp)
    ("(xdp-data)", "(ctx-load u32 0)"), ("(xdp-data-end)", "(ctx-load u32 4)"), ("(ctx data)", "(ctx-load u32 0)"),
    ("(ctx data-end)", "(ctx-load u32 4)"), ("(ctx data-meta)", "(ctx-load u32 8)"),
    ("(ctx ingress-ifindex)", "(ctx-load u32 12)"), ("(ctx rx-queue-index)", "(ctx-load u32 16)"),
    ("(ctx u32 16)", "(ctx-load u32 16)"),
    ("(ctx-load u32 12)", "(ctx-load u32 12)"), ("(ctx-ptr)", "(ctx-ptr)"),
    # maps
    ("(map-lookup h k)", "(map-lookup h k)"), ("(map-update h k v)", "(map-update h k v 0)"),
    ("(map-update h k v bpf_noexist)", "(map-update h k v 1)"), ("(map-delete h k)", "(map-delete h k)"),
    ("(map-lookup-ptr big kp)", "(map-lookup-ptr big kp)"),
    ("(map-lookup big kp)", "(map-lookup-ptr big kp)"),  # keys wider than 8 bytes are in memory
    ("(getmap wide 1)", "(let ((|#:P1| u64 (map-lookup wide 1))) (if |#:P1| (load u64 |#:P1| 0) 0))"),
    ("(map-update-ptr big kp vp)", "(map-update-ptr big kp vp 0)"),
    ("(map-delete-ptr big kp)", "(map-delete-ptr big kp)"),
    ("(getmap h k)", "(let ((|#:P1| u64 (map-lookup h k))) (if |#:P1| (load u64 |#:P1| 0) 0))"),
    ("(getmap h16 k)", "(let ((|#:P1| u64 (map-lookup h16 k))) (if |#:P1| (load u16 |#:P1| 0) 0))"),
    ("(getmap big kp)", "(let ((|#:P1| u64 (map-lookup-ptr big kp))) (if |#:P1| (load u32 |#:P1| 0) 0))"),
    ("(setf (getmap h k) v)", "(map-update h k v 0)"),
    ("(setf (getmap big kp) 3)",
     "(let ((|#:VALUE1| u64 (struct-alloc 4))) (store u32 |#:VALUE1| 0 3) (map-update-ptr big kp |#:VALUE1| 0))"),
    ("(setmap h k v bpf_noexist)", "(map-update h k v 1)"), ("(setmap h k v)", "(map-update h k v 0)"),
    ("(remmap h k)", "(map-delete h k)"), ("(delmap big kp)", "(map-delete-ptr big kp)"),
    ("(incf (getmap arr 1))", "(let ((|#:P1| u64 (map-lookup arr 1))) (if |#:P1| (atomic-add u64 |#:P1| 0 1) 0))"),
    ("(incf (getmap arr32 k) 3)",
     "(let ((|#:P1| u64 (map-lookup arr32 k))) (if |#:P1| (atomic-add u32 |#:P1| 0 3) 0))"),
    ("(incf (getmap h k) 5)",
     "(let ((|#:P1| u64 (map-lookup h k))) (if |#:P1| (atomic-add u64 |#:P1| 0 5) (map-update h k 5 0)))"),
    ("(incf (getmap h (+ a 1)) (* d 2))",
     "(let ((|#:KEY1| nil (+ a 1)) (|#:DELTA2| nil (* d 2))) (let ((|#:P3| u64 (map-lookup h |#:KEY1|)))"
     " (if |#:P3| (atomic-add u64 |#:P3| 0 |#:DELTA2|) (map-update h |#:KEY1| |#:DELTA2| 0))))"),
    ("(incf (getmap h16 k))",
     "(let ((|#:P1| u64 (map-lookup h16 k))) (if |#:P1| (store u16 |#:P1| 0 (+ (load u16 |#:P1| 0) 1))"
     " (map-update h16 k 1 0)))"),
    ("(decf (getmap h k))",
     "(map-update h k (- (let ((|#:P1| u64 (map-lookup h k))) (if |#:P1| (load u64 |#:P1| 0) 0)) 1) 0)"),
    ("(tail-call jt a)", "(tail-call jt a)"),
    # helpers
    ("(ktime-get-ns)", "(call 5)"), ("(redirect a 0)", "(call 23 a 0)"), ("(get-prandom-u32)", "(call 7)"),
    ("(xdp-adjust-head (ctx-ptr) -14)", "(call 44 (ctx-ptr) -14)"), ("(get-smp-processor-id)", "(call 8)"),
    ("(csum-diff 0 0 p 4 0)", "(call 28 0 0 p 4 0)"),
    # protocol accessors
    ("(eth-type p)", "(bswap16 (load u16 p 12))"), ("(eth-dst-mac-hi p)", "(load u32 p 0)"),
    ("(eth-src-mac-lo p)", "(load u16 p 10)"), ("(ipv4-protocol p)", "(load u8 p 9)"),
    ("(ipv4-src-addr p)", "(load u32 p 12)"), ("(ipv4-total-len p)", "(bswap16 (load u16 p 2))"),
    ("(ipv4-checksum p)", "(load u16 p 10)"), ("(ipv6-ver-tc-flow p)", "(bswap32 (load u32 p 0))"),
    ("(ipv6-nexthdr p)", "(load u8 p 6)"), ("(ipv6-dst-addr-lo p)", "(load u64 p 32)"),
    ("(icmp-rest p)", "(load u32 p 4)"), ("(tcp-seq p)", "(bswap32 (load u32 p 4))"),
    ("(tcp-flags p)", "(load u8 p 13)"), ("(tcp-dst-port (+ p 34))", "(bswap16 (load u16 (+ p 34) 2))"),
    ("(tcp-checksum p)", "(load u16 p 16)"), ("(udp-length p)", "(bswap16 (load u16 p 4))"),
    ("(udp-checksum p)", "(load u16 p 6)"),
])
def test_expression(source, expected):
    assert expr(source) == core(expected)


def test_or_keeps_each_operand_once():
    # (or a b) stays a core `or`; the lowering evaluates each operand once (no (if a a ...)).
    assert expr("(or a (get-prandom-u32))") == core("(or a (call 7))")


@pytest.mark.parametrize("source, expected", [
    ("(ctx len)", "(ctx-load u32 0)"), ("(ctx mark)", "(ctx-load u32 8)"), ("(ctx protocol)", "(ctx-load u32 16)"),
    ("(ctx cb 0)", "(ctx-load u32 48)"), ("(ctx cb 4)", "(ctx-load u32 64)"), ("(ctx hash)", "(ctx-load u32 68)"),
    ("(ctx data)", "(ctx-load u32 76)"), ("(ctx data-end)", "(ctx-load u32 80)"),
    ("(ctx ifindex)", "(ctx-load u32 40)"), ("(ctx tc-classid)", "(ctx-load u32 72)"),
    ("(ctx napi-id)", "(ctx-load u32 84)"), ("(ctx data-meta)", "(ctx-load u32 140)"),
    ("(tc-data)", "(ctx-load u32 76)"), ("(tc-data-end)", "(ctx-load u32 80)"),
    ("(setf (ctx mark) 5)", "(ctx-store u32 8 5)"), ("(setf (ctx u32 72) 1)", "(ctx-store u32 72 1)"),
    ("(ctx-store u32 48 v)", "(ctx-store u32 48 v)"), ("(incf (ctx mark))", "(ctx-store u32 8 (+ (ctx-load u32 8) 1))"),
])
def test_tc_context(source, expected):
    assert expr(source, "tc") == core(expected)


# -- programs and declarations --------------------------------------------------------------


def test_implicit_return():
    unit = unit_of("(defprog a ()) (defprog b (:section \"xdp/b\") 1 xdp_pass)"
                   "(defprog c (:section \"xdp/c\") (return 3))")
    assert [p.body for p in unit.programs] == [
        (core("(return 0)"),), (Int(1), core("(return 2)")), (core("(return 3)"),)]


def test_program_and_map_declarations():
    unit = unit_of("""(in-package #:whistler)
(defconstant +size+ 256)
(defconstant +double+ (* 2 +size+))
(defmap Proto-Stats :type :percpu-array :key-size 4 :value-size 8 :max-entries +double+)
(defmap trie :type :lpm-trie :key-size 8 :value-size 4 :max-entries (* 256 1024) :map-flags 1)
(defmap events :type :ringbuf :max-entries (* 256 1024))
(defprog xdp-main (:license "Dual MIT/GPL") 0)
(defprog cls (:type :tc :license "Dual MIT/GPL") 0)
(defprog cls2 (:type :tc :section "classifier/ingress" :license "Dual MIT/GPL") 0)
(compile-to-elf "out.bpf.o")""")
    stats, trie, events = unit.maps
    assert (stats.name, stats.lisp_name, stats.kind, stats.map_type, stats.max_entries) == (
        "proto_stats", "PROTO-STATS", "percpu-array", 6, 512)
    assert (trie.map_type, trie.max_entries, trie.flags, trie.key_size) == (11, 262144, 1, 8)
    assert (events.map_type, events.key_size, events.value_size) == (27, 0, 0)
    assert stats.loc == Loc("t.lisp", 4, 1)
    progs = [(p.name, p.prog_type, p.section, p.license) for p in unit.programs]
    assert progs == [("xdp_main", "xdp", "xdp", "Dual MIT/GPL"), ("cls", "tc", "tc", "Dual MIT/GPL"),
                     ("cls2", "tc", "classifier/ingress", "Dual MIT/GPL")]
    assert unit.source_file == "t.lisp"
    assert unit.map_named("proto_stats") is stats and unit.map_named("EVENTS") is events


def test_user_macros_defuns_and_eval_when():
    unit = unit_of("""
(defmap counters :type :hash :key-size 4 :value-size 8 :max-entries 64)
(eval-when (:compile-toplevel :load-toplevel :execute)
  (defconstant +base+ 100)
  (defun port-const (name) (intern (format nil "+PORT-~A+" name))))
(defconstant +port-dns+ 53)
(defmacro bump (key &key (by 1))
  "Count KEY."
  `(incf (getmap counters ,key) ,by))
(defmacro port-is (var &rest names)
  `(or ,@(mapcar (lambda (n) `(= ,var ,(port-const n))) names)))
(defmacro define-counter-prog (name section key)
  `(defprog ,name (:section ,section) (bump ,key) xdp_pass))
(defprog main ()
  (when (port-is port dns) (bump +base+ :by 2))
  (later-macro))
(define-counter-prog gen "xdp/gen" 7)
(defmacro later-macro () 'xdp_drop)
""")
    main, gen = unit.programs
    assert main.body == (
        core("(if (= port 53) (let ((|#:P1| u64 (map-lookup counters 100))) (if |#:P1| (atomic-add u64 |#:P1| 0 2)"
             " (map-update counters 100 2 0))) 0)"),
        core("(return 1)"))
    assert (gen.name, gen.section) == ("gen", "xdp/gen")
    assert gen.body[1] == core("(return 2)")


def test_macro_output_is_located_at_the_call_and_arguments_keep_theirs():
    unit = unit_of("(defmacro twice (x) `(+ ,x ,x))\n(defprog p ()\n  (twice\n     y))")
    ret = unit.programs[0].body[0]
    plus = ret.items[1]
    assert plus.loc == Loc("t.lisp", 3, 3) and plus.items[0].loc == Loc("t.lisp", 3, 3)
    assert plus.items[1].loc == Loc("t.lisp", 4, 6)


def test_protocol_macros_expand_at_the_call_site():
    unit = unit_of("(defprog p ()\n  (with-udp (d de udp) (udp-dst-port udp)))")
    assert all(n.loc.file == "t.lisp" for n in _nodes(unit.programs[0].body[0]))


def _nodes(form):
    yield form
    if isinstance(form, List):
        for item in form.items:
            yield from _nodes(item)


@pytest.mark.parametrize("source, expected", [
    ("(with-packet (d de :min-len 20) 1)",
     "(let ((d u64 (ctx-load u32 0)) (de u64 (ctx-load u32 4))) (if (> (+ d 20) de) (return 2) 1))"),
    ("(with-eth (d de) 1 2)",
     "(let ((d u64 (ctx-load u32 0)) (de u64 (ctx-load u32 4))) (if (> (+ d 14) de) (return 2) (progn 1 2)))"),
    ("(with-ipv4 (d de ip) (ipv4-ttl ip))",
     "(let ((d u64 (ctx-load u32 0)) (de u64 (ctx-load u32 4))) (if (> (+ d 34) de) (return 2)"
     " (if (= (bswap16 (load u16 d 12)) 2048) (let ((ip u64 (+ d 14))) (load u8 ip 8)) 0)))"),
    ("(with-tcp (d de tcp) (tcp-dst-port tcp))",
     "(let ((d u64 (ctx-load u32 0)) (de u64 (ctx-load u32 4))) (if (> (+ d 54) de) (return 2)"
     " (if (= (bswap16 (load u16 d 12)) 2048) (let ((|#:IP1| u64 (+ d 14)))"
     " (if (= (load u8 |#:IP1| 9) 6) (let ((tcp u64 (+ |#:IP1| 20))) (bswap16 (load u16 tcp 2))) 0)) 0)))"),
    ("(with-udp (d de udp) 1)",
     "(let ((d u64 (ctx-load u32 0)) (de u64 (ctx-load u32 4))) (if (> (+ d 42) de) (return 2)"
     " (if (= (bswap16 (load u16 d 12)) 2048) (let ((|#:IP1| u64 (+ d 14)))"
     " (if (= (load u8 |#:IP1| 9) 17) (let ((udp u64 (+ |#:IP1| 20))) 1) 0)) 0)))"),
    ("(parse-eth a b)", "(let ((|#:D1| u64 a)) (if (> (+ |#:D1| 14) b) 0 |#:D1|))"),
    ("(parse-ipv4 a b)",
     "(let ((|#:D1| u64 a) (|#:DE2| u64 b)) (if (> (+ |#:D1| 34) |#:DE2|) 0"
     " (if (= (bswap16 (load u16 |#:D1| 12)) 2048) (+ |#:D1| 14) 0)))"),
    ("(parse-tcp a b)",
     "(let ((|#:D1| u64 a) (|#:DE2| u64 b)) (if (> (+ |#:D1| 54) |#:DE2|) 0"
     " (if (and (= (bswap16 (load u16 |#:D1| 12)) 2048) (= (load u8 (+ |#:D1| 14) 9) 6)) (+ |#:D1| 34) 0)))"),
    ("(parse-udp a b)",
     "(let ((|#:D1| u64 a) (|#:DE2| u64 b)) (if (> (+ |#:D1| 42) |#:DE2|) 0"
     " (if (and (= (bswap16 (load u16 |#:D1| 12)) 2048) (= (load u8 (+ |#:D1| 14) 9) 17)) (+ |#:D1| 34) 0)))"),
])
def test_xdp_packet_macros(source, expected):
    assert expr(source) == core(expected)


@pytest.mark.parametrize("source, expected", [
    ("(with-tc-packet (d de) 1)",
     "(let ((d u64 (ctx-load u32 76)) (de u64 (ctx-load u32 80))) (if (> (+ d 0) de) (return 0) 1))"),
    ("(with-tc-eth (d de) 1)",
     "(let ((d u64 (ctx-load u32 76)) (de u64 (ctx-load u32 80))) (if (> (+ d 14) de) (return 0) 1))"),
    ("(with-tc-ipv4 (d de ip) 1)",
     "(let ((d u64 (ctx-load u32 76)) (de u64 (ctx-load u32 80))) (if (> (+ d 34) de) (return 0)"
     " (if (= (bswap16 (load u16 d 12)) 2048) (let ((ip u64 (+ d 14))) 1) 0)))"),
    ("(with-tc-tcp (d de tcp) 1)",
     "(let ((d u64 (ctx-load u32 76)) (de u64 (ctx-load u32 80))) (if (> (+ d 54) de) (return 0)"
     " (if (= (bswap16 (load u16 d 12)) 2048) (let ((|#:IP1| u64 (+ d 14)))"
     " (if (= (load u8 |#:IP1| 9) 6) (let ((tcp u64 (+ |#:IP1| 20))) 1) 0)) 0)))"),
    ("(with-tc-udp (d de udp) 1)",
     "(let ((d u64 (ctx-load u32 76)) (de u64 (ctx-load u32 80))) (if (> (+ d 42) de) (return 0)"
     " (if (= (bswap16 (load u16 d 12)) 2048) (let ((|#:IP1| u64 (+ d 14)))"
     " (if (= (load u8 |#:IP1| 9) 17) (let ((udp u64 (+ |#:IP1| 20))) 1) 0)) 0)))"),
])
def test_tc_packet_macros(source, expected):
    assert expr(source, "tc") == core(expected)


def test_seed_program_expands():
    unit = unit_of(seed_source(), "seed.lisp")
    assert [(m.name, m.map_type, m.key_size, m.value_size, m.max_entries) for m in unit.maps] == [
        ("jt", 3, 4, 4, 256), ("proto_stats", 2, 4, 8, 3)]
    assert [(p.name, p.section, p.license) for p in unit.programs] == [
        ("xdp_dispatch", "xdp", "GPL"), ("tcp_handler", "xdp/tcp", "GPL"), ("udp_handler", "xdp/udp", "GPL")]
    dispatch, tcp, udp = unit.programs
    assert dispatch.body == tuple(read("""
      (let ((data nil (ctx-load u32 0)) (data-end nil (ctx-load u32 4)))
        (if (> (+ data 34) data-end) (return 2) 0)
        (if (/= (bswap16 (load u16 data 12)) 2048) (return 2) 0)
        (let ((proto u32 (load u8 (+ data 14) 9)))
          (let ((|#:P1| u64 (map-lookup proto-stats 0))) (if |#:P1| (atomic-add u64 |#:P1| 0 1) 0))
          (tail-call jt proto)))
      (return 2)"""))
    for prog, key, n in ((tcp, 1, 2), (udp, 2, 3)):
        assert prog.body == tuple(read(f"""
          (let ((|#:P{n}| u64 (map-lookup proto-stats {key}))) (if |#:P{n}| (atomic-add u64 |#:P{n}| 0 1) 0))
          (return 2)"""))


# Programs in the style of the reference's packet examples (§7).
EXAMPLES = {
    "count-xdp": """
(defmap pkt-count :type :array :key-size 4 :value-size 8 :max-entries 1)
(defprog count-packets (:type :xdp :license "GPL")
  (incf (getmap pkt-count 0))
  XDP_PASS)""",
    "drop-port": """
(defconstant +blocked-port+ 9999)
(defmap drop-count :type :array :key-size 4 :value-size 8 :max-entries 1)
(defprog drop-port (:type :xdp)
  (with-tcp (data data-end tcp)
    (when (= (tcp-dst-port tcp) +blocked-port+)
      (incf (getmap drop-count 0))
      (return XDP_DROP)))
  XDP_PASS)""",
    "synflood": """
(defmap syn-count :type :hash :key-size 4 :value-size 8 :max-entries 1024)
(defmap stats :type :array :key-size 4 :value-size 8 :max-entries 2)
(defconstant +syn-threshold+ 100)
(defmacro bump-stat (idx)
  `(let ((p (map-lookup stats ,idx)))
     (declare (type u64 p))
     (when p (atomic-add p 0 1))))
(defprog synflood (:type :xdp)
  (with-tcp (data data-end tcp)
    (let ((flags (tcp-flags tcp))
          (src (ipv4-src-addr (+ data +eth-hdr-len+))))
      (when (= (logand flags #x12) +tcp-syn+)
        (bump-stat 0)
        (when-let ((cnt (map-lookup syn-count src)))
          (when (> (load u64 cnt 0) +syn-threshold+)
            (return XDP_DROP))
          (atomic-add cnt 0 1)
          (return XDP_PASS))
        (setf (getmap syn-count src) 1))))
  XDP_PASS)""",
    "ratelimit": """
(defmap counts :type :lru-hash :key-size 4 :value-size 8 :max-entries 4096)
(defprog ratelimit (:type :xdp)
  (let ((data (xdp-data)) (data-end (xdp-data-end)))
    (when-let ((ip (parse-ipv4 data data-end)))
      (let ((src u32 (ipv4-src-addr ip)))
        (incf (getmap counts src))
        (if (> (getmap counts src) 1000) XDP_DROP XDP_PASS)))))""",
    "tc-classifier": """
(defmap ports :type :hash :key-size 2 :value-size 1 :max-entries 64)
(defprog tc-filter (:type :tc :section "classifier")
  (let ((data (ctx data)) (data-end (ctx data-end)))
    (when (> (+ data 38) data-end) (return TC_ACT_OK))
    (let ((port u16 (ntohs (load u16 data 36))))
      (cond ((and (/= (eth-type data) +ethertype-ipv4+) (/= port 0)) TC_ACT_OK)
            ((or (map-lookup ports port) (= port 22)) TC_ACT_SHOT)
            (t TC_ACT_OK)))))""",
    "multi-prog": """
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 4)
(defprog xdp-main (:type :xdp :section "xdp")
  (tail-call jt 0)
  XDP_PASS)
(defprog ipv4-handler (:type :xdp :section "xdp/ipv4")
  (case (ctx rx-queue-index) (0 XDP_PASS) ((1 2) XDP_DROP) (t XDP_TX)))""",
    "tc-with-udp": """
(defprog tc-dns (:type :tc)
  (with-tc-udp (data data-end udp)
    (when (= (udp-dst-port udp) 53) (setf (ctx mark) 53) (return TC_ACT_OK)))
  TC_ACT_OK)""",
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_reference_style_examples_expand(name):
    unit = unit_of(EXAMPLES[name], f"{name}.lisp")
    assert unit.programs and all(p.body[-1].head_is("RETURN") for p in unit.programs)


# -- errors -------------------------------------------------------------------------------

def body_error(body: str, prog_opts: str = "") -> CompileError:
    with pytest.raises(CompileError) as info:
        expand_unit(read(f"{MAPS}(defprog p ({prog_opts})\n  {body})", "t.lisp"), "t.lisp")
    return info.value


def top_error(text: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        expand_unit(read(text, "t.lisp"), "t.lisp")
    return info.value


@pytest.mark.parametrize("body, message", [  # message, or (message, text the error points at)
    ("(frobnicate 1)", "unknown form frobnicate"),
    ("(ktime-get-nanos)", "unknown form ktime-get-nanos"),
    ("(redirect 1)", "wrong number of arguments to redirect: got 1, expected 2 arguments"),
    ("(ktime-get-ns 1)", "wrong number of arguments to ktime-get-ns"),
    ("(if 1)", "wrong number of arguments to if"),
    ("(cast u8)", "wrong number of arguments to cast"),
    ("(= 1 2 3)", "wrong number of arguments to ="),
    ("(not)", "wrong number of arguments to not"),
    ("(eth-type)", "wrong number of arguments to eth-type"),
    ("(getmap h)", "wrong number of arguments to getmap"),
    ("(tail-call arr 0)", "tail-call needs a :prog-array map, but arr is :array"),
    ("(map-lookup jt 0)", "jt is a :prog-array map"),
    ("(getmap rb 0)", "rb is a :ringbuf map"),
    ("(getmap nope 1)", "unknown map nope"),
    ("(tail-call nope 1)", "unknown map nope"),
    ("(/ a 0)", "division by zero"),
    ("(mod a +zero+)", "division by zero"),
    ("(<< a 64)", "shift count 64 is out of range"),
    ("(>> a -1)", "shift count -1 is out of range"),
    ("(ash a 70)", "shift count 70 is out of range"),
    ("(ash a n)", "ash needs a constant shift count"),
    ("(/ a (- 1 1))", "division by zero ((- 1 1) is 0)"),
    ("(mod a (logand 6 (* 8 +zero+)))", "division by zero"),
    ("(<< a (+ 60 10))", "shift count (+ 60 10) = 70 is out of range"),
    ("(>> a (- 3 4))", "shift count (- 3 4) = -1 is out of range"),
    ("(ash a (* 10 7))", "shift count (* 10 7) = 70 is out of range"),
    ("(let (x 1) x)", "malformed binding"),
    ("(let ((x 1 2 3)) x)", ("malformed binding", "(x 1 2 3)")),
    ("(let x x)", "the bindings must be a list"),
    ("(let ((1 2)) 0)", ("1 is not a variable name", "(1 2)")),
    ("(let ((:k 2)) 0)", (":k is not a variable name", "(:k 2)")),
    ("(let ((x u128 1)) x)", ("u128 is not a type", "(x u128 1)")),
    ("(let ((xdp_pass 1)) 0)", ("xdp_pass is a constant", "(xdp_pass 1)")),
    ("(let ((x 1)) (declare (type u8 y)) x)", ("declares the type of y", "(type u8 y)")),
    ("(let ((x 1)) (declare (special x)) x)", ("unsupported declaration", "(special x)")),
    ("(setf x 1 y)", "odd number of arguments"),
    ("(setf (+ a 1) 2)", "is not a place setf can assign"),
    ("(setf +k+ 2)", "+k+ is a constant"),
    ("(ctx bogus)", "bogus is not a field of xdp_md"),
    ("(sizeof nope)", "unknown struct nope"),
    ("(struct-ref nope p x)", "unknown struct nope"),
    ("(struct-ref ev p zz)", "struct ev has no field zz"),
    ("(struct-set ev p tag 9 1)", "index 9 is out of range for ev.tag"),
    ("(ev-b)", "wrong number of arguments to ev-b: got 0, expected 1 argument"),
    ("(ev-b p 1)", "wrong number of arguments to ev-b"),
    ("(ev-tag p)", "wrong number of arguments to ev-tag"),
    ("(ev-tag p 4)", "index 4 is out of range for ev.tag"),
    ("(ev-b-ptr p)", "ev-b-ptr does not exist: ev.b is a scalar field"),
    ("(ev-nope p)", "unknown form ev-nope"),
    ("(make-ev :nope 1)", "struct ev has no field nope"),
    ("(make-ev :tag 1)", "array field tag cannot be set by make-ev"),
    ("(make-ev 1)", "make-ev takes :FIELD VALUE pairs"),
    ("(setf (ev-tag-ptr p) 1)", "is not a place setf can assign"),
    ("(setf (make-ev) 1)", "is not a place setf can assign"),
    ("(incf (getmap sv 1))", "sv holds ev structs"),
    ("(ringbuf-reserve h 8)", "ringbuf-reserve needs a :ringbuf map, but h is :hash"),
    ("(ringbuf-output arr p 8)", "ringbuf-output needs a :ringbuf map, but arr is :array"),
    ("(ringbuf-reserve rb n)", "the ringbuf-reserve size (the verifier wants a constant) must be a literal"),
    ("(ringbuf-reserve rb 0)", "ringbuf-reserve of 0 bytes"),
    ("(perf-event-output (ctx-ptr) rb 0 p 8)", "perf-event-output needs a :perf-event-array map"),
    ("(ringbuf-submit)", "wrong number of arguments to ringbuf-submit"),
    ("(getmap pea 1)", "pea is a :perf-event-array map; getmap cannot use it"),
    ("(memset p 0 1 n)", "the memset length must be a literal"),
    ("(memset p 0 1 40000)", "memset of 40000 bytes at offset 0 is out of range"),
    ("(memcpy d 0 s x 4)", "the memcpy source offset must be a literal"),
    ("(log2)", "wrong number of arguments to log2"),
    ("(asm #x95 0 0 0 0)", "is a jump or exit"),
    ("(asm #x05 0 0 2 0)", "is a jump or exit"),
    ("(asm #x18 1 0 0 5)", "class LD"),
    ("(asm #xb7 6 0 0 1)", "asm dst register r6 is not available"),
    ("(asm #xbf 0 10 0 0)", "asm src register r10 is not available"),
    ("(asm #x85 0 1 0 5)", "an asm call takes dst 0, src 0 and off 0"),
    ("(asm #x07 0 0 0 (<< 1 33))", "must be a literal"),
    ("(asm #x07 0 0 0 #x100000000)", "asm immediate 4294967296 does not fit 32 bits"),
    ("(asm 256 0 0 0 0)", "asm opcode 256 does not fit 8 bits"),
    ("(asm #xb7 0 0 0)", "wrong number of arguments to asm"),
    ("(vl-tci)", "wrong number of arguments to vl-tci"),
    ("*ports*", "*ports* is a compile-time variable (defparameter)"),
    ("(ctx u16 0)", "xdp_md.data is a 4-byte field"),
    ("(ctx u32 2)", "xdp_md.data is a 4-byte field"),
    ("(ctx u32 400)", "offset 400 is outside xdp_md"),
    ("(ctx data 1)", "not an array and takes no index"),
    ("(tc-data)", "reads the tc context, but this is a :xdp program"),
    ("(with-tc-eth (d de) 1)", "reads the tc context"),
    ("(atomic-add p 3 1)", "not aligned to 8 bytes"),
    ("(atomic-add p 0 1 u16)", "atomic-add works on 4- or 8-byte values"),
    ("(load u12 p 0)", "u12 is not a type"),
    ("(declare (type u8 x))", "declare is only allowed at the start of a let body"),
    ("(cond 1)", "malformed cond clause"),
    ("(case a (t 1) (2 3))", ("must be the last one", "(t 1)")),
    ("(case a (x 1))", ("a case key must be a literal integer or constant", "(x 1)")),
    ("(dotimes (i n) 1)", "the dotimes count n is not a constant, so the loop needs a bound"),
    ("(dotimes (i -1) 1)", "the dotimes count -1 is out of range"),
    ("(dotimes (i (- 0 3)) 1)", "the dotimes count (- 0 3) = -3 is out of range"),
    ("(dotimes (i 8388609) 1)", "the dotimes count 8388609 is out of range"),
    ("(dotimes (i n :max m) 1)", "the :max of dotimes must be a constant, not m"),
    ("(dotimes (i n :max -2) 1)", "the dotimes :max -2 is out of range"),
    ("(dotimes (i n :limit 3) 1)", "malformed dotimes"),
    ("(dotimes (i) 1)", "malformed dotimes"),
    ("(dotimes (3 4) 1)", "3 is not a variable name"),
    ("\"hello\"", "a string cannot be used inside a program"),
    ("(+ jt 1)", ("map jt used as a value", "jt")),
    ("(+ :k 1)", ("keyword :k cannot be used as a value", ":k")),
    ("((lambda (x) x) 1)", "cannot call a list"),
    ("(struct-alloc 1000)", "struct-alloc of 1000 bytes"),
    ("(with-tcp (d de) 1)", "in macro with-tcp: with-tcp: too few arguments"),
    ("(with-packet (d de :max-len 3) 1)", "unknown keyword :max-len"),
])
def test_body_errors_are_located(body, message):
    message, points_at = message if isinstance(message, tuple) else (message, body)
    err = body_error(body)
    assert message in err.what
    assert (err.loc.file, err.loc.line, err.loc.col) == ("t.lisp", BODY_LINE, 3 + body.index(points_at))
    assert err.form  # the offending form is shown


def test_unknown_cl_function_gets_a_hint():
    assert "macros" in body_error('(format nil "x")').hint
    assert "dotimes" in body_error("(loop for i below 3)").hint


def test_compile_time_function_called_from_a_program():
    err = top_error("(defun helper (x) x)\n(defprog p ()\n  (helper 1))")
    assert "compile-time function" in err.what and err.loc == Loc("t.lisp", 3, 3)


def test_macro_errors_point_at_the_call():
    err = top_error('(defmacro checked (x)\n  (if (integerp x) x (error "need an integer, got ~S" x)))\n'
                    "(defprog p ()\n  (checked \"s\"))")
    assert err.what == 'in macro checked: need an integer, got "s"'
    assert err.loc == Loc("t.lisp", 4, 3)
    assert "t.lisp:1:1" in err.hint


@pytest.mark.parametrize("macros, message", [
    ("(defmacro loopy () '(loopy))", "nests more than"),
    ("(defmacro loopy () '(progn (loopy) (loopy)))", "nests more than"),
    ("(defun f (n) (f (+ n 1))) (defmacro loopy () (f 0))", "in macro loopy: calls nested more than"),
    ("(defun f (n) (if (> n 0) (f (- n 1)) 0)) (defmacro loopy () (f 100000))", "in macro loopy: calls nested"),
    ("(defmacro loopy () (let ((x nil) (l '(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16))) (dolist (a l) (dolist (b l)"
     " (dolist (c l) (dolist (d l) (dolist (e l) (setq x a)))))) x))", "steps of compile-time work"),
    ("(defmacro loopy () (open \"/etc/passwd\"))", "unknown function open"),
    ("(defun dbl (x n) (if (= n 0) x (dbl (list '+ x x) (- n 1)))) (defmacro loopy () (dbl 1 60))",
     "gave up after"),
    ("(defun dbl (x n) (if (= n 0) x (dbl (append x x) (- n 1)))) (defmacro loopy () (dbl '(1) 40))",
     "grew past"),
])
def test_runaway_or_forbidden_macros_are_compile_errors(macros, message):
    err = top_error(f"{macros}\n(defprog p ()\n  (loopy))")
    assert message in err.what
    assert err.loc == Loc("t.lisp", 3, 3)


@pytest.mark.parametrize("text, line, col, message", [
    ("(defmap m :type :hashy :key-size 4 :value-size 4 :max-entries 1)", 1, 1, "unknown map type :hashy"),
    ("(defmap m :key-size 4 :value-size 4 :max-entries 1)", 1, 1, "unknown map type (none given)"),
    ("(defmap m :type :hash :key-size 0 :value-size 4 :max-entries 1)", 1, 1, "sizes must be non-zero"),
    ("(defmap m :type :hash :key-size 4 :value-size 4)", 1, 1, "missing :max-entries"),
    ("(defmap m :type :hash :key-size 4 :value-size 4 :max-entries 0)", 1, 1, "at least 1"),
    ("(defmap m :type :hash :size 4)", 1, 1, "unknown option :size"),
    ("(defmap m :type :hash :key-size)", 1, 1, "odd number"),
    ("(defmap m :type :hash :type :array)", 1, 1, "given twice"),
    ("(defmap m :type :array :key-size 8 :value-size 4 :max-entries 1)", 1, 1, "4-byte key"),
    ("(defmap m :type :prog-array :key-size 4 :value-size 8 :max-entries 1)", 1, 1, "4-byte program fds"),
    ("(defmap m :type :lpm-trie :key-size 8 :value-size 4 :max-entries 1)", 1, 1, "BPF_F_NO_PREALLOC"),
    ("(defmap m :type :ringbuf :max-entries 1000)", 1, 1, "power of two"),
    ("(defmap m :type :ringbuf :key-size 4 :max-entries 4096)", 1, 1, "no keys or values"),
    ("(defmap m :type :hash :key-size -1 :value-size 4 :max-entries 1)", 1, 1, ":key-size must be an integer"),
    ("(defmap m :type :hash :key-size (car 1) :value-size 4 :max-entries 1)", 1, 1, "cannot compute :key-size"),
    ("(defmap)", 1, 1, "malformed defmap"),
    ("(defprog p (:attach :ingress) 0)", 1, 1, "unknown option :attach"),
    ("(defprog p (:type :kprobe) 0)", 1, 1, "unsupported program type :kprobe"),
    ("(defprog p (:type :xdp :section \"tc\") 0)", 1, 1, "does not make a :xdp program"),
    ("(defprog p (:type :tc :section \"xdp/x\") 0)", 1, 1, "does not make a :tc program"),
    ("(defprog p (:license gpl) 0)", 1, 1, ":license must be a non-empty string"),
    ("(defprog p (:type) 0)", 1, 1, "odd number"),
    ("(defprog p)", 1, 1, "malformed defprog"),
    (f"(defprog {'p' * 128} () 0)", 1, 1, "is 128 characters; BTF allows at most 127"),
    (f"(defmap {'m' * 200} :type :hash :key-size 4 :value-size 4 :max-entries 1)", 1, 1,
     f"map name {'m' * 200} is 200 characters"),
    ("(defmap m :type :hash :key-size 4 :value-size 4 :max-entries 1)\n"
     "(defmap m :type :hash :key-size 4 :value-size 4 :max-entries 1)", 2, 1, "map m is already defined"),
    ("(defprog p () 0)\n(defprog p (:section \"xdp/2\") 0)", 2, 1, "the name p is already used (at t.lisp:1:1)"),
    ("(defmap p :type :hash :key-size 4 :value-size 4 :max-entries 1)\n(defprog p () 0)", 2, 1,
     "the name p is already used"),
    ("(defprog a-b () 0)\n(defprog a_b (:section \"xdp/2\") 0)", 2, 1, "the name a_b is already used"),
    ("(defprog p () 0)\n(defprog q (:section \"xdp/q\" :license \"MIT\") 0)", 2, 1,
     "license \"MIT\" conflicts with \"GPL\""),
    ("(defmap m :type :hash :key-size 4 :value-size 4 :max-entries 1)", 1, 1, "no program in this file"),
    ("(in-package #:whistler)\n(setq x 1)", 2, 1, "unknown top-level form setq"),
    ("(defprog p () 0)\n42", 2, 1, "cannot appear at top level"),
    ("(defconstant +x+ (car 5))", 1, 1, "cannot compute the value of +x+"),
    ("(defconstant +x+ \"s\")", 1, 1, "must be an integer"),
    ("(defconstant xdp_pass 5)", 1, 1, "xdp_pass is a built-in constant with value 2"),
    ("(defconstant +x+ 1)\n(defconstant +x+ 2)", 2, 1, "+x+ is already defined with value 1"),
    ("(defconstant)", 1, 1, "malformed defconstant"),
    ("(defmacro when (x) x)", 1, 1, "when is built in"),
    ("(defmacro getmap (x) x)", 1, 1, "getmap is built in"),
    ("(defmacro m (&rest) 1)", 1, 1, "bad parameter list for macro m"),
    ("(defmacro m)", 1, 1, "malformed defmacro"),
    ("(defun f)", 1, 1, "malformed defun"),
    ("(eval-when)", 1, 1, "eval-when needs a situation list"),
    ("(defstruct s\n  (a int))", 2, 3, "bad field type int"),
    ("(defstruct s (a i32))", 1, 14, "bad field type i32"),
    ("(defstruct s)", 1, 1, "struct s has no fields"),
    ("(defstruct s (a u8) (a u16))", 1, 21, "field a appears twice"),
    ("(defstruct s (a (array u8 0)))", 1, 14, "array length 0 must be at least 1"),
    ("(defstruct s (a (array int 2)))", 1, 14, "bad array field type"),
    ("(defstruct s (a))", 1, 14, "malformed struct field"),
    ("(defstruct s (a (array u8 40000)))", 1, 14, "struct s is too large"),
    ("(defstruct t1 (x u8))\n(defstruct s (a t1))", 2, 14, "bad field type t1"),
    ("(defstruct map (lookup u32))", 1, 1, "map-lookup is built in"),
    ("(defstruct eth (type u16))", 1, 1, "eth-type is already a built-in header accessor"),
    ("(defstruct s (a u8))\n(defstruct s (b u8))", 2, 1, "struct s is already defined"),
    ("(defstruct s (a u8))\n(defmacro s-a (p) p)", 2, 1, "s-a is already generated by defstruct s"),
    ("(defstruct s (data u8) (data-ptr u8))", 1, 1, "fields named both data-ptr and data"),
    ("(defunion u nope)", 1, 1, "unknown struct nope"),
    ("(defunion u)", 1, 1, "malformed defunion"),
    ("(defmap m :type :hash :key-size 4 :value-type nope :max-entries 1)", 1, 1, "unknown struct nope"),
    ("(defstruct s (a u32))\n(defmap m :type :array :key-type s :value-size 4 :max-entries 1)", 2, 1,
     "a :array map cannot have a struct key"),
    ("(defstruct s (a u32) (b u32))\n(defmap m :type :hash :key-size 4 :value-type s :value-size 4 :max-entries 1)",
     2, 1, ":value-size 4 disagrees with :value-type s (8 bytes)"),
    ("(defstruct s (a u32))\n(defmap m :type :prog-array :key-size 4 :value-type s :max-entries 1)", 2, 1,
     "a :prog-array map cannot have a struct value"),
    ("(defheader h (f :offset 0))", 1, 14, "bad :type (none given) for header field f"),
    ("(defheader h (f :type u8))", 1, 14, "header field f needs an :offset"),
    ("(defheader h (f :offset 0 :type u8 :endian big))", 1, 14, "unknown header field option :endian"),
    ("(defheader h (f :offset 0 :type u8 :net-order yes))", 1, 14, ":net-order must be t or nil"),
    ("(defheader h (f :offset -1 :type u8))", 1, 14, ":offset -1 is out of range"),
    ("(defheader ipv4 (ttl :offset 8 :type u8))", 1, 1, "ipv4-ttl is already a built-in header accessor"),
    ("(defheader h)", 1, 1, "malformed defheader"),
    ("(defsetf)", 1, 1, "malformed defsetf"),
    ("(defsetf when set-when)", 1, 1, "when is built in"),
    ("(defsetf f (p) (a b) p)", 1, 1, "malformed defsetf"),
    ("(defparameter)", 1, 1, "malformed defparameter"),
    ("(defparameter xdp_pass 1)", 1, 1, "xdp_pass is a constant"),
    ("(defparameter *x* (car 1))", 1, 1, "cannot compute the value of *x*"),
])
def test_top_level_errors_are_located(text, line, col, message):
    err = top_error(text)
    assert message in err.what, err.what
    assert err.loc == Loc("t.lisp", line, col)


def test_a_duplicate_section_is_an_error():
    err = top_error('(defprog p () 0)\n(defprog q (:section "xdp") 1)')
    assert 'section "xdp" is already used by p' in err.what
    assert err.loc == Loc("t.lisp", 2, 1)


def test_no_program_in_an_empty_file():
    with pytest.raises(CompileError, match="no program"):
        expand_unit([], "empty.lisp")


def test_same_source_same_expansion():
    a = unit_of(seed_source(), "seed.lisp")
    b = unit_of(seed_source(), "seed.lisp")
    assert a == b and [str(f) for p in a.programs for f in p.body] == [str(f) for p in b.programs for f in p.body]


# -- tables checked against the kernel's and libc's own headers -------------------------------

BPF_H = Path("/usr/include/linux/bpf.h")


def _helper_ids_from_uapi() -> dict[str, int]:
    """BPF_FUNC_* numbers: the position of each FN(name) in __BPF_FUNC_MAPPER."""
    text = BPF_H.read_text()
    mapper = text[text.index("#define __BPF_FUNC_MAPPER"):]
    mapper = mapper[:mapper.index("\n\n")]
    return {name: i for i, name in enumerate(re.findall(r"FN\((\w+)", mapper))}


def test_helper_ids_match_linux_bpf_h():
    ids = _helper_ids_from_uapi()
    for name, helper in builtins.HELPERS.items():
        c_name = name.lower().replace("-", "_")
        assert ids.get(c_name) == helper.id, name


def _offsets_from_gcc(includes: list[str], fields: list[tuple[str, str]], tmp_path) -> list[int]:
    """offsetof(struct, member) for each (struct, member), computed by gcc from the system headers."""
    src = tmp_path / "off.c"
    lines = [f"#include <{h}>" for h in includes] + ["#include <stdio.h>", "#include <stddef.h>", "int main(void) {"]
    lines += [f'printf("%zu\\n", offsetof({s}, {m}));' for s, m in fields] + ["return 0; }"]
    src.write_text("\n".join(lines))
    exe = tmp_path / "off"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True, capture_output=True)
    return [int(x) for x in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()]


@pytest.mark.parametrize("prog_type", ["xdp", "tc"])
def test_ctx_layouts_match_linux_bpf_h(prog_type, tmp_path):
    struct = "struct " + builtins.CTX_STRUCT_NAMES[prog_type]
    layout = builtins.CTX_LAYOUTS[prog_type]
    fields = [(struct, name.lower().replace("-", "_")) for name in layout]
    offsets = _offsets_from_gcc(["linux/bpf.h"], fields, tmp_path)
    assert offsets == [f.offset for f in layout.values()]


C_HEADER_FIELDS = {  # accessor -> (C struct, member) in glibc/kernel headers
    "ETH-TYPE": ("struct ethhdr", "h_proto"), "ETH-SRC-MAC-HI": ("struct ethhdr", "h_source"),
    "IPV4-TOS": ("struct iphdr", "tos"), "IPV4-TOTAL-LEN": ("struct iphdr", "tot_len"),
    "IPV4-ID": ("struct iphdr", "id"), "IPV4-FRAG-OFF": ("struct iphdr", "frag_off"),
    "IPV4-TTL": ("struct iphdr", "ttl"), "IPV4-PROTOCOL": ("struct iphdr", "protocol"),
    "IPV4-CHECKSUM": ("struct iphdr", "check"), "IPV4-SRC-ADDR": ("struct iphdr", "saddr"),
    "IPV4-DST-ADDR": ("struct iphdr", "daddr"), "IPV6-PAYLOAD-LEN": ("struct ipv6hdr", "payload_len"),
    "IPV6-NEXTHDR": ("struct ipv6hdr", "nexthdr"), "IPV6-HOP-LIMIT": ("struct ipv6hdr", "hop_limit"),
    "IPV6-SRC-ADDR-HI": ("struct ipv6hdr", "saddr"), "IPV6-DST-ADDR-HI": ("struct ipv6hdr", "daddr"),
    "ICMP-TYPE": ("struct icmphdr", "type"), "ICMP-CODE": ("struct icmphdr", "code"),
    "ICMP-CHECKSUM": ("struct icmphdr", "checksum"), "ICMP-REST": ("struct icmphdr", "un"),
    "TCP-SRC-PORT": ("struct tcphdr", "source"), "TCP-DST-PORT": ("struct tcphdr", "dest"),
    "TCP-SEQ": ("struct tcphdr", "seq"), "TCP-ACK-SEQ": ("struct tcphdr", "ack_seq"),
    "TCP-WINDOW": ("struct tcphdr", "window"), "TCP-CHECKSUM": ("struct tcphdr", "check"),
    "TCP-URGENT": ("struct tcphdr", "urg_ptr"), "UDP-SRC-PORT": ("struct udphdr", "source"),
    "UDP-DST-PORT": ("struct udphdr", "dest"), "UDP-LENGTH": ("struct udphdr", "len"),
    "UDP-CHECKSUM": ("struct udphdr", "check"),
}


def test_protocol_accessor_offsets_match_c_headers(tmp_path):
    names = sorted(C_HEADER_FIELDS)
    offsets = _offsets_from_gcc(["linux/if_ether.h", "linux/ip.h", "linux/ipv6.h", "linux/icmp.h", "linux/tcp.h",
                                 "linux/udp.h"], [C_HEADER_FIELDS[n] for n in names], tmp_path)
    assert offsets == [protocols.ACCESSORS[n].offset for n in names]


def test_the_protocol_library_is_cut_into_one_definition_per_macro():
    # Each macro is read on first use from its own piece of PRELUDE; together the pieces are
    # every definition of PRELUDE, each at the line where it starts there.
    whole = read(protocols.PRELUDE, protocols.PRELUDE_FILE)
    assert all(f.head_is("DEFMACRO") for f in whole)
    pieces = _library()
    assert list(pieces) == [f.items[1].name for f in whole]
    for form, (text, line) in zip(whole, pieces.values()):
        (alone,) = read(text, protocols.PRELUDE_FILE, line)
        assert alone == form and alone.loc == form.loc
