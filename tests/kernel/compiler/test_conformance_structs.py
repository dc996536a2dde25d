"""Conformance: ``defstruct``, ``defunion`` and struct-typed maps (reference §1.5, §2.10), in the kernel.

Layouts are checked against ``ctypes`` (the C layout of the same fields on this machine, the
ABI BPF shares), not against the compiler: a program writes fields into a map value, and the
map's bytes must equal the ``ctypes`` struct's bytes. Values wider than 8 bytes, struct keys,
``make-NAME`` (zeroed, with initialisers), array fields with constant and run-time indexes,
``-ptr``, ``struct-ref``/``struct-set`` and unions are covered the same way, and the map dumps
show the fields by name through the BTF we emit, exactly as clang's BTF for the C twin does.
"""

from __future__ import annotations

import ctypes
import subprocess
from dataclasses import replace

import pytest

from tests.kernel.compiler.conformance.case import Case, program, res, run_case, value
from tests.kernel.harness import XDP_PASS, bpftool_json, compile_text, loaded

A = "(getmap args 0)"
u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64

STRUCTS = """(defstruct ev (a u8) (b u32) (c u16) (d u64) (tag (array u8 3)) (w (array u16 2)))
(defstruct fk (src u32) (dst u32) (port u16) (proto u8) (pad u8))
(defstruct small (x u8) (y u8))
(defunion either ev small)
(defmap vals :type :array :key-type u32 :value-type ev :max-entries 2)
(defmap hv :type :hash :key-size 4 :value-type ev :max-entries 8)
(defmap flows :type :hash :key-type fk :value-size 8 :max-entries 8)
(defmap w16 :type :hash :key-size 4 :value-size 16 :max-entries 8)
"""


class Ev(ctypes.Structure):
    _fields_ = [("a", u8), ("b", u32), ("c", u16), ("d", u64), ("tag", u8 * 3), ("w", u16 * 2)]


class Fk(ctypes.Structure):
    _fields_ = [("src", u32), ("dst", u32), ("port", u16), ("proto", u8), ("pad", u8)]


def as_int(s: ctypes.Structure) -> int:
    """The struct's bytes as the harness reads map keys and values: one little-endian integer."""
    return int.from_bytes(bytes(s), "little")


def ev(**fields) -> int:
    e = Ev()
    for name, v in fields.items():
        if isinstance(v, tuple):
            getattr(e, name)[:] = v
        else:
            setattr(e, name, v)
    return as_int(e)


def stmt(case_id: str, body: str, maps: dict, retval: int = XDP_PASS, **kw) -> Case:
    return Case(case_id, program(f"{body}\n  XDP_PASS", STRUCTS), retval, {**res(), **maps}, **kw)


def val(case_id: str, expr: str, expected: int, maps: dict | None = None, **kw) -> Case:
    """``expr`` evaluates to ``expected``; ``maps``: other maps' exact contents afterwards."""
    case = value(case_id, expr, expected, extra=STRUCTS, **kw)
    return replace(case, maps={**case.maps, **(maps or {})})


def preset(case: Case, **maps) -> Case:
    return replace(case, preset=maps)


SET_ALL = ("(setf (ev-a p) 1 (ev-b p) #x22222222 (ev-c p) #x3333 (ev-d p) #x4444444444444444)"
           " (setf (ev-tag p 0) 5 (ev-tag p 2) 7 (ev-w p 1) #x8888)")
FULL = ev(a=0xA1, b=0xB2B2B2B2, c=0xC3C3, d=0xD4D4D4D4D4D4D4D4, tag=(1, 2, 3), w=(0x1111, 0x2222))

CASES = [
    val("sizeof is the C size", "(sizeof ev)", ctypes.sizeof(Ev)),
    val("sizeof a key struct", "(sizeof fk)", ctypes.sizeof(Fk)),
    val("sizeof a union is its largest member", "(sizeof either)", max(ctypes.sizeof(Ev), 2)),
    val("sizeof a type", "(+ (sizeof u16) (sizeof u64))", 10),
    # writes: the map value's bytes are the C struct's
    stmt("setf fields through a map value pointer", f"(let ((p (getmap vals 0))) (when p {SET_ALL}))",
         {"vals": {0: ev(a=1, b=0x22222222, c=0x3333, d=0x4444444444444444, tag=(5, 0, 7), w=(0, 0x8888)), 1: 0}}),
    stmt("stores truncate to the field width", "(let ((p (getmap vals 1))) (when p (setf (ev-a p) #x1FF (ev-c p) -1)))",
         {"vals": {0: 0, 1: ev(a=0xFF, c=0xFFFF)}}),
    stmt("make-NAME is zeroed and setf getmap copies it in",
         "(let ((e (make-ev))) (setf (ev-b e) 9 (ev-w e 0) 3) (setf (getmap vals 1) e))",
         {"vals": {0: 0, 1: ev(b=9, w=(3, 0))}}),
    stmt("make-NAME with initialisers", "(setf (getmap hv 4) (make-ev :a 7 :d 8 :c 9))", {"hv": {4: ev(a=7, d=8, c=9)}}),
    stmt("map-update with a struct value pointer", "(map-update hv 3 (make-ev :b 5) BPF_ANY)", {"hv": {3: ev(b=5)}}),
    stmt("struct-set", "(let ((p (getmap vals 0))) (when p (struct-set ev p d 77) (struct-set ev p tag 1 4)))",
         {"vals": {0: ev(d=77, tag=(0, 4, 0)), 1: 0}}),
    stmt("setf struct-ref", "(let ((p (getmap vals 0))) (when p (setf (struct-ref ev p c) 12)))",
         {"vals": {0: ev(c=12), 1: 0}}),
    stmt("array element by a run-time index",
         f"(let ((p (getmap vals 0)) (i (logand {A} 1))) (when p (setf (ev-w p i) #xBEEF (ev-tag p i) 1)))",
         {"vals": {0: ev(w=(0, 0xBEEF), tag=(0, 1, 0)), 1: 0}}, args={0: 1}),
    # reads
    preset(val("read every field", "(let ((p (getmap vals 0))) (if p (+ (ev-a p) (ev-b p) (ev-c p) (ev-d p)) 0))",
               0xA1 + 0xB2B2B2B2 + 0xC3C3 + 0xD4D4D4D4D4D4D4D4, maps={"vals": {0: FULL, 1: 0}}), vals={0: FULL}),
    preset(val("read array elements, constant and run-time index",
               f"(let ((p (getmap vals 0))) (if p (+ (ev-tag p 2) (ev-w p (logand {A} 1)) (struct-ref ev p tag 0)) 0))",
               3 + 0x2222 + 1, args={0: 1}, maps={"vals": {0: FULL, 1: 0}}), vals={0: FULL}),
    val("getmap of a struct-valued map is 0 for a missing key", "(if (getmap hv 5) 1 2)", 2),
    preset(val("getmap of a struct-valued map is the value's pointer", "(let ((p (getmap hv 5))) (if p (ev-d p) 0))", 0xD4D4D4D4D4D4D4D4,
               maps={"hv": {5: FULL}}), hv={5: FULL}),
    val("-ptr is the array field's address", "(let ((e (make-ev))) (- (ev-w-ptr e) e))", Ev.w.offset),
    val("make-NAME reads back zeros and its initialisers", "(let ((e (make-ev :b 3))) (+ (ev-a e) (ev-b e) (ev-d e)))", 3),
    val("a union overlays its members", "(let ((u (make-either))) (setf (ev-a u) 5) (small-x u))", 5),
    # struct keys
    stmt("incf with a struct key", "(let ((k (make-fk :src 1 :dst 2 :port 80 :proto 6))) (incf (getmap flows k)))",
         {"flows": {as_int(Fk(1, 2, 80, 6, 0)): 1}}),
    stmt("setf getmap with a struct key and a scalar value", "(setf (getmap flows (make-fk :src 9)) 5)",
         {"flows": {as_int(Fk(9, 0, 0, 0, 0)): 5}}),
    preset(val("getmap with a struct key", "(getmap flows (make-fk :src 1 :port 443))", 42,
               maps={"flows": {as_int(Fk(1, 0, 443, 0, 0)): 42}}), flows={as_int(Fk(1, 0, 443, 0, 0)): 42}),
    preset(stmt("remmap with a struct key", "(remmap flows (make-fk :src 1))", {"flows": {}}),
           flows={as_int(Fk(1, 0, 0, 0, 0)): 3}),
    # values wider than 8 bytes, no struct: the first 8 bytes, zero-extended
    stmt("setf getmap writes all 16 bytes", "(setf (getmap w16 1) #x1122334455667788)",
         {"w16": {1: 0x1122334455667788}}),
    preset(val("getmap reads the first 8 bytes of a wide value", "(getmap w16 1)", 5,
               maps={"w16": {1: (0xAA << 64) | 5}}), w16={1: (0xAA << 64) | 5}),
    preset(stmt("incf a wide value adds to its first 8 bytes", "(incf (getmap w16 1))", {"w16": {1: (0xAA << 64) | 6}}),
           w16={1: (0xAA << 64) | 5}),
    stmt("incf inserts a missing wide value", "(incf (getmap w16 2) 3)", {"w16": {2: 3}}),
    stmt("map-update by value on a wide map", "(map-update w16 7 -1)", {"w16": {7: (1 << 64) - 1}}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_structs(case, pin_dir):
    run_case(case, pin_dir)


# -- BTF: the same types clang emits for the C twin ------------------------------------------

C_TWIN = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct ev { __u8 a; __u32 b; __u16 c; __u64 d; __u8 tag[3]; __u16 w[2]; };
struct fk { __u32 src; __u32 dst; __u16 port; __u8 proto; __u8 pad; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, struct ev); __uint(max_entries, 2); } vals SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, struct fk); __type(value, __u64); __uint(max_entries, 8); } flows SEC(".maps");
SEC("xdp") int conf(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""
WHISTLER_TWIN = """(defstruct ev (a u8) (b u32) (c u16) (d u64) (tag (array u8 3)) (w (array u16 2)))
(defstruct fk (src u32) (dst u32) (port u16) (proto u8) (pad u8))
(defmap vals :type :array :key-type u32 :value-type ev :max-entries 2)
(defmap flows :type :hash :key-type fk :value-size 8 :max-entries 8)
(defprog conf () XDP_PASS)
"""


def _types(obj_path) -> dict[str, str]:
    """Each map variable and named struct of the object's BTF, rendered whole (type ids aside)."""
    types = {t["id"]: t for t in bpftool_json("btf", "dump", "file", str(obj_path))["types"]}

    def render(type_id: int) -> str:
        t = types[type_id]
        inner = ""
        if "members" in t:
            inner = "{" + "; ".join(f"{m['name']}@{m['bits_offset']}: {render(m['type_id'])}" for m in t["members"]) + "}"
        elif "type_id" in t:
            inner = render(t["type_id"])
        extra = "".join(f" {k}={t[k]}" for k in ("size", "nr_elems", "encoding", "nr_bits") if k in t)
        return f"{t['kind']} {t['name']}{extra} {inner}".rstrip()

    return {t["name"]: render(t["id"]) for t in types.values() if t["kind"] in ("VAR", "STRUCT") and t["name"] != "(anon)"}


def test_btf_types_are_what_clang_emits(tmp_path):
    c_file, c_obj, ours = tmp_path / "twin.c", tmp_path / "twin.o", tmp_path / "ours.o"
    c_file.write_text(C_TWIN)
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", str(c_file),
                    "-o", str(c_obj)], check=True, capture_output=True)
    ours.write_bytes(compile_text(WHISTLER_TWIN))
    theirs, mine = _types(c_obj), _types(ours)
    for name in ("ev", "fk", "vals", "flows"):
        assert mine[name] == theirs[name], name


def test_map_dumps_show_fields_by_name(pin_dir):
    body = ("(let ((p (getmap vals 1))) (when p (setf (ev-a p) 1 (ev-d p) 2 (ev-tag p 1) 3 (ev-w p 0) 4)))\n"
            "  (incf (getmap flows (make-fk :src 10 :dst 20 :port 53 :proto 17)))\n  XDP_PASS")
    with loaded(STRUCTS + f"(defprog conf () {body})", pin_dir) as obj:
        assert obj.run("conf", bytes(64)) == XDP_PASS
        values = obj.typed_dump("vals")
        assert values[1] == {"a": 1, "b": 0, "c": 0, "d": 2, "tag": [0, 3, 0], "w": [4, 0]}
        assert values[0] == {"a": 0, "b": 0, "c": 0, "d": 0, "tag": [0, 0, 0], "w": [0, 0]}
        (entry,) = obj.dump("flows")
        assert entry["formatted"] == {"key": {"src": 10, "dst": 20, "port": 53, "proto": 17, "pad": 0}, "value": 1}
