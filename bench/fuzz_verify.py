"""Verifier fuzzer: mutated programs the compiler accepts must load into the kernel.

In: a seed, a count and where to start. Out: counts (generated, accepted by the compiler, loaded
by the kernel, refused by it), the pass rate (loaded / accepted), the kernel's refusals grouped
by the verifier's reason (numbers blanked) with one example program each, and optionally all of
it as JSON. Program ``i`` of seed ``S`` depends only on ``S`` and ``i`` (``random.Random("S:i")``),
so a run can be split (``--start``) and any program replayed alone (``--start i --count 1 --show``).

A program is a seed (``VERIFIER_SEEDS`` below, the examples, the bench programs, the kernel
conformance programs) changed by one to three mutations aimed at what the verifier checks:
packet offsets, lengths and ``:min-len``; constant offsets made computed numbers, pointers
moved; load/store widths; pointer and number arguments swapped, pointers where numbers go
and numbers where pointers go; null checks dropped; map key/value sizes and types changed;
comparisons flipped; statements deleted, repeated or swapped; a subform of another seed swapped
in; a helper that moves packet data inserted. Each program the compiler accepts is loaded with
the compiler's own trial load (``compiler.verify``: every program, throwaway maps, nothing kept)
and the verifier decides. The compiler's checking stage (``compiler/check``) should refuse,
with a located error, every program the verifier would refuse: at least 99.5% of the accepted
programs must load.

    sudo .venv/bin/python bench/fuzz_verify.py --seed 1 --count 20000 [--json out.json]
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from compiler import (  # noqa: E402
    CompileError,
    compile_source,
    verify,  # noqa: E402
)
from compiler.forms import Int, List, Str, Symbol  # noqa: E402
from compiler.reader import read  # noqa: E402

FILENAME = "fuzz.lisp"
THRESHOLD = 0.995
SOURCE_FILES = ("examples/**/*.lisp", "bench/whistler/*.lisp")
CONFORMANCE = ("arith", "control", "maps", "packet", "helpers", "structs", "dialect")

VERIFIER_HEADER = """(defmap counts :type :percpu-array :key-size 4 :value-size 8 :max-entries 64)
(defmap flows :type :hash :key-size 16 :value-size 16 :max-entries 1024)
(defmap events :type :ringbuf :max-entries 4096)
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 4)
(defstruct ev (src u32) (dst u32) (sport u16) (dport u16) (len u32))
"""
# Programs rich in what the verifier checks (variable packet offsets, lookups, ring buffer records,
# loops, tail calls, structs, a classifier); each compiles and loads as it is.
VERIFIER_SEEDS = [
    """(defprog parse-l4 ()
  (with-packet (data data-end :min-len 34)
    (when (= (eth-type data) +ethertype-ipv4+)
      (let* ((ip (+ data 14))
             (ihl (* 4 (logand (ipv4-ver-ihl ip) 15)))
             (l4 (+ ip ihl)))
        (when (<= (+ l4 8) data-end)
          (let ((key (struct-alloc 16)))
            (store u32 key 0 (ipv4-src-addr ip))
            (store u32 key 4 (ipv4-dst-addr ip))
            (store u16 key 8 (load u16 l4 0))
            (store u16 key 10 (load u16 l4 2))
            (store u8 key 12 (ipv4-protocol ip))
            (let ((v (map-lookup-ptr flows key)))
              (if v
                  (progn (atomic-add v 0 1) (atomic-add v 8 (- data-end data)))
                  (let ((init (struct-alloc 16)))
                    (store u64 init 0 1)
                    (store u64 init 8 (- data-end data))
                    (map-update-ptr flows key init 0)))))))))
  XDP_PASS)
""",
    """(defprog report ()
  (with-packet (data data-end :min-len 38)
    (let ((r (ringbuf-reserve events 16)))
      (when r
        (store u32 r 0 (load u32 data 26))
        (store u32 r 4 (load u32 data 30))
        (store u16 r 8 (load u16 data 34))
        (store u16 r 10 (load u16 data 36))
        (store u32 r 12 (- data-end data))
        (ringbuf-submit r 0))))
  XDP_PASS)
""",
    """(defprog bytes-loop ()
  (let ((s 0))
    (with-packet (data data-end :min-len 64)
      (dotimes (i 64)
        (incf s (load u8 data i))))
    (setf (getmap counts 0) s))
  XDP_PASS)
""",
    """(defprog indexed ()
  (with-packet (data data-end :min-len 16)
    (let* ((n (logand (load u8 data 0) 15))
           (p (+ data n)))
      (when (<= (+ p 4) data-end)
        (incf (getmap counts (logand (load u8 p 0) 63))))))
  XDP_PASS)
""",
    """(defprog dispatch ()
  (with-packet (data data-end :min-len 14)
    (let ((k (logand (load u8 data 13) 3)))
      (tail-call jt k)))
  XDP_PASS)
""",
    """(defprog struct-record ()
  (let ((e (make-ev :src 1 :dst 2 :len 64)))
    (setf (ev-sport e) 80)
    (ringbuf-output events e (sizeof ev) 0))
  XDP_PASS)
""",
    """(defprog scratch ()
  (let ((buf (struct-alloc 32)) (sum 0))
    (memset buf 0 7 32)
    (dotimes (i 4)
      (incf sum (load u64 buf (* i 8))))
    (setf (getmap counts 1) sum))
  XDP_PASS)
""",
    """(defprog tc-mark (:type :tc)
  (with-tc-packet (data data-end :min-len 14)
    (when (= (eth-type data) +ethertype-ipv4+)
      (setf (ctx mark) (+ (ctx mark) 1))))
  TC_ACT_OK)
""",
]

TYPES = ("U8", "U16", "U32", "U64")
COMPARES = (">", ">=", "<", "<=", "=", "/=")
OFFSET_DELTAS = (-8, -4, -2, -1, 1, 2, 3, 4, 8, 16, 64, 512)
SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 20, 40, 64)
MAP_KINDS = (":hash", ":array", ":percpu-array", ":lru-hash", ":percpu-hash")
POINTERS = ("(xdp-data)", "(xdp-data-end)", "(ctx-ptr)", "(struct-alloc 8)", "(map-lookup {map} 0)", "data",
            "data-end")
NUMBERS = ("0", "1", "14", "(ktime-get-ns)", "(get-prandom-u32)", "4096")
INSERTS = ("(xdp-adjust-head (ctx-ptr) 4)", "(ktime-get-ns)", "(xdp-adjust-tail (ctx-ptr) 0)")
MEMORY_HEADS = {"LOAD", "STORE", "MEMSET", "MEMCPY", "ATOMIC-ADD", "STRUCT-ALLOC", "PROBE-READ-KERNEL",
                "RINGBUF-RESERVE", "RINGBUF-OUTPUT"}
BODY_HEADS = {"PROGN", "WHEN", "UNLESS", "LET", "LET*", "DEFPROG", "WITH-PACKET", "WITH-ETH", "WITH-IPV4",
              "WITH-TCP", "WITH-UDP", "WITH-TC-PACKET", "WITH-RINGBUF", "DOTIMES"}


# -- seeds ---------------------------------------------------------------------------------------

def _conformance_sources() -> list[str]:
    case = importlib.import_module("tests.kernel.compiler.conformance.case")
    sources = []
    for name in CONFORMANCE:
        try:
            module = importlib.import_module(f"tests.kernel.compiler.test_conformance_{name}")
        except ImportError:
            continue
        sources += [case.PRELUDE + c.source for c in getattr(module, "CASES", [])]
    return sources


def seed_programs() -> list[str]:
    """The programs mutations start from, in a fixed order; each one compiles."""
    sources = [VERIFIER_HEADER + body for body in VERIFIER_SEEDS]
    for pattern in SOURCE_FILES:
        sources += [Path(p).read_text() for p in sorted(glob.glob(str(REPO / pattern), recursive=True))]
    sources += _conformance_sources()
    return sources


# -- the form tree ---------------------------------------------------------------------------------

def parse(source: str) -> list:
    """Top-level forms as nested Python lists (mutable), atoms as forms."""
    def thaw(f):
        return [thaw(x) for x in f.items] if isinstance(f, List) else f
    return [thaw(f) for f in read(source, FILENAME)]


def text(node) -> str:
    if isinstance(node, list):
        return "(" + " ".join(text(n) for n in node) + ")"
    if isinstance(node, str):
        return node  # raw text a mutation put in
    if isinstance(node, Symbol):
        return node.name.lower() if node.name.upper() == node.name else node.name
    return str(node)


def _head(node) -> str:
    return node[0].name if isinstance(node, list) and node and isinstance(node[0], Symbol) else ""


def nodes(forms: list) -> list:
    """(parent, index, head of the enclosing top-level form) for every node, in a fixed order."""
    out, pending = [], [(forms, i, _head(forms[i])) for i in range(len(forms))]
    while pending:
        parent, i, top = pending.pop()
        out.append((parent, i, top))
        if isinstance(parent[i], list):
            pending += [(parent[i], j, top) for j in range(len(parent[i]))]
    return out


# -- mutations -------------------------------------------------------------------------------------

def _pick(rng, candidates):
    return rng.choice(candidates) if candidates else None


def _in_program(all_nodes):
    return [(p, i) for p, i, top in all_nodes if top == "DEFPROG" and p is not None]


def m_offset(rng, forms, all_nodes, corpus):
    """An integer in a memory form (offset, size, length) moves a little or a lot."""
    def memory_int(p, i):
        return isinstance(p[i], Int) and (_head(p) in MEMORY_HEADS or (
            i > 0 and isinstance(p[i - 1], Symbol) and p[i - 1].name == ":MIN-LEN"))
    ints = [(p, i) for p, i in _in_program(all_nodes) if memory_int(p, i)]
    ints = ints or [(p, i) for p, i in _in_program(all_nodes) if isinstance(p[i], Int)]
    hit = _pick(rng, ints)
    if hit:
        p, i = hit
        p[i] = Int(max(0, p[i].value + rng.choice(OFFSET_DELTAS)) if rng.random() < 0.8 else rng.choice(
            (0, 1, 255, 4095)))


def m_min_len(rng, forms, all_nodes, corpus):
    """``:min-len N`` changes, or a with-* form checks another header's length."""
    hits = [(p, i) for p, i, _t in all_nodes if isinstance(p[i], Symbol) and p[i].name == ":MIN-LEN"
            and i + 1 < len(p)]
    if hits and rng.random() < 0.7:
        p, i = rng.choice(hits)
        if isinstance(p[i + 1], Int):
            p[i + 1] = Int(max(0, p[i + 1].value + rng.choice((-20, -8, -4, -1, 1, 4, 20))))
        return
    withs = [(p, i) for p, i, _t in all_nodes if isinstance(p[i], list) and _head(p[i]) in (
        "WITH-ETH", "WITH-IPV4", "WITH-TCP", "WITH-UDP")]
    hit = _pick(rng, withs)
    if hit:
        p, i = hit
        p[i][0] = Symbol(rng.choice(("WITH-ETH", "WITH-IPV4", "WITH-TCP", "WITH-UDP")))


def m_type(rng, forms, all_nodes, corpus):
    """A load, store or cast width changes."""
    hits = [(p, i) for p, i in _in_program(all_nodes) if isinstance(p[i], Symbol) and p[i].name in TYPES]
    hit = _pick(rng, hits)
    if hit:
        p, i = hit
        p[i] = Symbol(rng.choice(TYPES))


def m_swap_args(rng, forms, all_nodes, corpus):
    """Two arguments of a call change places (a pointer where a number goes, and back)."""
    calls = [p[i] for p, i in _in_program(all_nodes) if isinstance(p[i], list) and len(p[i]) >= 3]
    node = _pick(rng, calls)
    if node:
        a, b = rng.sample(range(1, len(node)), 2)
        node[a], node[b] = node[b], node[a]


def m_kind(rng, forms, all_nodes, corpus):
    """A pointer where a number goes, or a number where a pointer goes."""
    args = [(p, i) for p, i in _in_program(all_nodes) if i > 0 and not isinstance(p[i], (list, Str))
            and _head(p) not in ("LET", "LET*", "DEFPROG")]
    hit = _pick(rng, args)
    if hit:
        p, i = hit
        maps = [f[1].name.lower() for f in forms if _head(f) == "DEFMAP" and len(f) > 1]
        pool = POINTERS if rng.random() < 0.6 else NUMBERS
        p[i] = rng.choice(pool).format(map=rng.choice(maps) if maps else "nomap")


def m_null_check(rng, forms, all_nodes, corpus):
    """A test guarding a body goes: ``(when P ...)`` runs always, ``(if P A B)`` is ``A``."""
    hits = [(p, i) for p, i in _in_program(all_nodes) if isinstance(p[i], list) and _head(p[i]) in (
        "WHEN", "IF", "AND", "UNLESS") and len(p[i]) >= 3]
    hit = _pick(rng, hits)
    if hit:
        p, i = hit
        node = p[i]
        p[i] = node[2] if _head(node) in ("IF", "AND") else [Symbol("PROGN"), *node[2:]]


def m_map(rng, forms, all_nodes, corpus):
    """A map's key or value size, or its type, changes."""
    maps = [f for f in forms if _head(f) == "DEFMAP"]
    m = _pick(rng, maps)
    if not m:
        return
    keys = [i for i in range(2, len(m) - 1) if isinstance(m[i], Symbol) and m[i].name in (
        ":KEY-SIZE", ":VALUE-SIZE", ":TYPE")]
    i = _pick(rng, keys)
    if i is None:
        return
    m[i + 1] = Symbol(rng.choice(MAP_KINDS).upper()) if m[i].name == ":TYPE" else Int(rng.choice(SIZES))


def m_compare(rng, forms, all_nodes, corpus):
    """A comparison flips or swaps its operands."""
    hits = [p[i] for p, i in _in_program(all_nodes) if isinstance(p[i], list) and _head(p[i]) in COMPARES
            and len(p[i]) == 3]
    node = _pick(rng, hits)
    if node:
        if rng.random() < 0.5:
            node[1], node[2] = node[2], node[1]
        else:
            node[0] = Symbol(rng.choice(COMPARES))


def _bodies(all_nodes):
    return [p[i] for p, i in _in_program(all_nodes) if isinstance(p[i], list) and _head(p[i]) in BODY_HEADS
            and len(p[i]) >= 3]


def m_statements(rng, forms, all_nodes, corpus):
    """A statement of a body is deleted, repeated or swapped with its neighbour."""
    body = _pick(rng, _bodies(all_nodes))
    if not body:
        return
    start = 3 if _head(body) in ("DEFPROG", "DOTIMES") else 2
    if len(body) <= start:
        return
    j = rng.randrange(start, len(body))
    kind = rng.randrange(3)
    if kind == 0 and len(body) > start + 1:
        del body[j]
    elif kind == 1:
        body.insert(j, body[j])
    elif j + 1 < len(body):
        body[j], body[j + 1] = body[j + 1], body[j]


def m_subtree(rng, forms, all_nodes, corpus):
    """A subform of another seed program replaces one here."""
    inside = _in_program(all_nodes)
    hit = _pick(rng, inside)
    other = _in_program(nodes(parse(rng.choice(corpus))))
    donor = _pick(rng, [p[i] for p, i in other if isinstance(p[i], list)])
    if hit and donor is not None:
        p, i = hit
        p[i] = donor


def m_insert(rng, forms, all_nodes, corpus):
    """A helper that moves packet data (or just another call) runs in the middle of a body."""
    body = _pick(rng, _bodies(all_nodes))
    if body:
        start = 3 if _head(body) in ("DEFPROG", "DOTIMES") else 2
        body.insert(rng.randrange(start, len(body) + 1) if len(body) >= start else len(body), rng.choice(INSERTS))


VARIABLES = ("(logand (load u8 data 0) 15)", "(get-prandom-u32)", "(logand (ktime-get-ns) 63)",
             "(load u8 data 1)", "(logand (getmap counts 0) 7)", "(- (load u8 data 2) 8)", "(* (load u8 data 3) 4)")


def m_index(rng, forms, all_nodes, corpus):
    """A constant offset or index becomes a number the program computes."""
    hits = [(p, i) for p, i in _in_program(all_nodes) if isinstance(p[i], Int) and i > 0
            and _head(p) in MEMORY_HEADS | {"+", "GETMAP", "INCF", "MAP-LOOKUP"}]
    hit = _pick(rng, hits)
    if hit:
        p, i = hit
        p[i] = rng.choice(VARIABLES)


def m_move_pointer(rng, forms, all_nodes, corpus):
    """The pointer of a load or store moves by a constant or by a computed number."""
    hits = [p[i] for p, i in _in_program(all_nodes) if isinstance(p[i], list) and _head(p[i]) in ("LOAD", "STORE")
            and len(p[i]) >= 4]
    node = _pick(rng, hits)
    if node:
        delta = rng.choice(("4", "14", "-2", "(logand (load u8 data 0) 7)", "(get-prandom-u32)", "64"))
        node[2] = [Symbol("+"), node[2], delta]


MUTATIONS = (m_index, m_move_pointer, m_offset, m_offset, m_min_len, m_type, m_swap_args, m_kind, m_kind, m_null_check, m_map, m_compare,
             m_statements, m_statements, m_subtree, m_insert)


def program(seed: int, index: int, corpus: list[str]) -> str:
    """Program number ``index`` of the run with ``seed``."""
    rng = random.Random(f"{seed}:{index}")
    forms = parse(rng.choice(corpus[:len(VERIFIER_SEEDS)] if rng.random() < 0.4 else corpus))
    for _round in range(rng.choice((1, 1, 2, 2, 3))):
        rng.choice(MUTATIONS)(rng, forms, nodes(forms), corpus)
    return "\n".join(text(f) for f in forms) + "\n"


# -- running ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![A-Za-z_])-?(0x[0-9a-f]+|\d+)")


def reason_class(reason: str) -> str:
    """The verifier's reason with numbers blanked, so one rule is one class."""
    return _NUMBER.sub("N", reason)[:120]


def outcome(source: str, maps, second_opinion: bool = True, check_stage: bool = True) -> tuple[str, str]:
    """(outcome, detail): "refused" (by a stage before the checking stage), "refused:check" (by
    the checking stage, for one of the verifier's rules), "refused:language" (by the checking
    stage, for one of its own stricter rules), "loaded" (by the kernel), "rejected" (accepted by the
    compiler and refused by the kernel; the detail is the verifier's reason), "ice" (a compiler
    bug), or "false-refusal": refused by the checking stage for a verifier rule although the kernel loads it
    (checked when ``second_opinion``: the program is compiled again without the stage and loaded;
    the stage's own stricter rules, ``check.diag.LANGUAGE_RULES``, are not the verifier's)."""
    try:
        obj = compile_source(source, FILENAME, check_stage)
    except CompileError as err:
        first = str(err).splitlines()[0]
        rule = getattr(err, "rule", None)
        if rule is not None and rule != "verifier":
            return "refused:language", first
        if second_opinion and rule == "verifier":
            try:
                unchecked = compile_source(source, FILENAME, check_stage=False)
            except Exception:  # noqa: BLE001 - refused by an earlier stage: not the checker's call
                return "refused", first
            if not verify.trial_load(unchecked, maps):
                return "false-refusal", first
        return ("refused:check" if rule == "verifier" else "refused"), first
    except Exception as err:  # noqa: BLE001 - an internal compiler error is the compile fuzzer's finding
        return "ice", f"{type(err).__name__}: {err}"
    rejections = verify.trial_load(obj, maps)
    if not rejections:
        return "loaded", ""
    return "rejected", rejections[0].what.split(": ", 1)[-1]


def run(seed: int, start: int, count: int, corpus: list[str] | None = None, check_stage: bool = True) -> dict:
    corpus = seed_programs() if corpus is None else corpus
    sc, _errors = verify.loader()
    maps = verify.MapCache(sc)
    counts = {"generated": 0, "refused": 0, "refused:check": 0, "refused:language": 0, "ice": 0, "loaded": 0,
              "rejected": 0, "false-refusal": 0}
    classes: dict[str, dict] = {}
    false_refusals: list = []
    try:
        for index in range(start, start + count):
            source = program(seed, index, corpus)
            kind, detail = outcome(source, maps, check_stage=check_stage)
            counts["generated"] += 1
            counts[kind] += 1
            if kind == "rejected":
                entry = classes.setdefault(reason_class(detail), {"count": 0, "example": index, "source": source,
                                                                  "reason": detail})
                entry["count"] += 1
            if kind == "false-refusal":
                false_refusals.append({"index": index, "error": detail, "source": source})
            if len(maps.fds) > 256:
                maps.close()
    finally:
        maps.close()
    accepted = counts["loaded"] + counts["rejected"]
    return {"seed": seed, "start": start, "count": count, "counts": counts, "accepted": accepted,
            "pass_rate": counts["loaded"] / accepted if accepted else 1.0,
            "rejections": dict(sorted(classes.items(), key=lambda kv: -kv[1]["count"])),
            "false_refusals": false_refusals}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="index of the first program")
    parser.add_argument("--count", type=int, default=1000, help="programs to generate")
    parser.add_argument("--show", action="store_true", help="print each program and its outcome")
    parser.add_argument("--json", metavar="FILE", help="write the summary, with one program per refusal class")
    parser.add_argument("--without-check", action="store_true",
                        help="skip the compiler's checking stage (to measure what it catches)")
    args = parser.parse_args(argv)
    corpus = seed_programs()
    if args.show:
        sc, _errors = verify.loader()
        maps = verify.MapCache(sc)
        try:
            for index in range(args.start, args.start + args.count):
                source = program(args.seed, index, corpus)
                print(f";;; program {index}\n{source};;; -> {outcome(source, maps, check_stage=not args.without_check)}\n")
        finally:
            maps.close()
        return 0
    began = time.time()
    summary = run(args.seed, args.start, args.count, corpus, check_stage=not args.without_check)
    summary["seconds"] = round(time.time() - began, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    c = summary["counts"]
    refused = c["refused"] + c["refused:check"] + c["refused:language"] + c["false-refusal"]
    print(f"seed {args.seed}, programs {args.start}..{args.start + args.count - 1}: generated {c['generated']}, "
          f"refused by the compiler {refused} (by the checking stage: {c['refused:check']} for the verifier's "
          f"rules, {c['refused:language']} for its own), internal errors {c['ice']}, accepted {summary['accepted']}, "
          f"loaded {c['loaded']}, refused by the kernel {c['rejected']}: "
          f"{100 * summary['pass_rate']:.2f}% of accepted programs load ({summary['seconds']} s)")
    for reason, entry in summary["rejections"].items():
        print(f"  {entry['count']:5d}  {reason}   (e.g. program {entry['example']})")
    print(f"refused by the checking stage although the kernel loads them: {c['false-refusal']}")
    for entry in summary["false_refusals"][:20]:
        print(f"  program {entry['index']}: {entry['error']}")
    return 0 if summary["pass_rate"] >= THRESHOLD and not c["false-refusal"] else 1


if __name__ == "__main__":
    sys.exit(main())
