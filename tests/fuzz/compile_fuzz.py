"""Grammar-based compiler fuzzer: every program compiles or fails with a located error.

In: a seed and a count (and optionally where to start). Out: counts by outcome, and every
failure with the program that caused it. Program number ``i`` of seed ``S`` depends on nothing
but ``S`` and ``i`` (its own ``random.Random(f"{S}:{i}")``), so any run can be split into chunks
(``--start``) or across processes (``--jobs``) and any failure replayed alone (``--start i
--count 1 --show``).

A program is one of the seed programs below, or a random expression program built from the
vocabulary of ``tests/unit/compiler/exprgen.py``, changed by one to four mutations on its
forms (swap in a subform from another program, drop or repeat arguments, replace a number by a
boundary value (16-bit offsets, 32/64-bit edges, huge), replace a subform by a value of the
wrong type, rename a head to another form or an unknown name, nest a subform tens to hundreds
deep, wrap a subform in a user macro) or on its text (delete, repeat or insert characters).
Seeds: the kernel conformance programs (``tests/kernel/compiler/test_conformance_*.py``), the bad
programs of ``tests/unit/compiler/test_errors.py``, the bench and example programs, and the
macro library below.

Outcomes: ``ok`` (an object), ``error`` (a ``CompileError`` at file:line:col, line and column
>= 1, in the program or in the protocol library), ``unlocated`` (a ``CompileError`` without a
usable location), ``ice`` (any other exception: an internal compiler error, named by stage).
Only ``ok`` and ``error`` are acceptable.

    .venv/bin/python -m tests.fuzz.compile_fuzz --count 10000 --seed 1 [--start 0] [--jobs 1]
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import random
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import compiler.ir  # noqa: E402
from compiler import CompileError, compile_source  # noqa: E402
from compiler.expand.body import BUILTIN_NAMES  # noqa: E402
from compiler.forms import Int, List, Symbol  # noqa: E402
from compiler.pipeline import InternalError  # noqa: E402
from compiler.reader import read  # noqa: E402
from tests.unit.compiler import exprgen  # noqa: E402

compiler.ir.VERIFY_EACH_STAGE = True  # a stage or pass that breaks the IR is named in the internal error

FILENAME = "fuzz.lisp"
ARGS = "(defmap args :type :array :key-size 4 :value-size 8 :max-entries 4)\n"

# Compile-time code: macros and helpers using most of the compile-time Lisp, to be mutated too.
MACRO_LIBRARY = ARGS + r"""
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 8)
(defconstant +n+ (* 2 (+ 1 3)))
(defun sq (x) (* x x))
(defun iota (n &optional (start 0)) (if (<= n 0) nil (cons start (iota (- n 1) (+ start 1)))))
(defun pairs (l) (mapcar (lambda (x) (list x (sq x))) l))
(defmacro sum-of (&rest xs) `(+ ,@xs))
(defmacro bump (m k &key (by 1)) `(incf (getmap ,m ,k) ,by))
(defmacro table (k) `(case ,k ,@(mapcar (lambda (p) `(,(first p) ,(second p))) (pairs (iota 6))) (t 0)))
(defmacro named (name) (intern (format nil "~A-~D" name +n+)))
(defmacro with-tmp ((v init) &body body) (let ((g (gensym "T"))) `(let ((,g ,init)) (let ((,v ,g)) ,@body))))
(defmacro pick (n &rest forms) (nth n forms))
(defmacro unroll (n form) `(progn ,@(mapcar (lambda (i) (declare (ignore i)) form) (iota n))))
(defmacro chk (x) (if (and (integerp x) (> x 3)) `(+ ,x 1) `(- ,x)))
(defmacro strs (a b) (length (concatenate 'string (string a) (symbol-name b))))
(defmacro lst (&body b) (let ((acc nil)) (dolist (x b (reverse acc)) (setq acc (cons x acc)))))
(defmacro nested (x) `(list ,x `(a ,,x)))
(defmacro ap (&rest xs) (apply #'+ (mapcar #'sq (remove-if-not #'integerp xs))))
(defmacro eqtest (a b) (if (equal a b) 1 (if (eql (length (list a)) 1) 2 3)))
(defmacro asc (k) (second (assoc k '((a 1) (b 2)))))
(defprog fuzz (:type :xdp :section "xdp" :license "GPL")
  (let* ((data (xdp-data)) (data-end (xdp-data-end)) (x (getmap args 0)))
    (when (> (+ data 34) data-end) (return XDP_PASS))
    (with-tmp (y (+ x 1)) (bump args 1 :by y))
    (setf (getmap args 2) (+ (table x) (sum-of 1 2 x) (chk 7) (pick 1 4 5 6) (strs "ab" cd) (asc b)))
    (unroll 3 (bump args 3))
    (if (> (load u8 data 12) 8) (tail-call jt 1) 0)
    (lst 1 2 x)))
"""

SOURCE_FILES = ("bench/whistler/*.lisp", "examples/**/*.lisp")

BOUNDARY_INTS = (0, 1, -1, 2, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 511, 512, 513,
                 4095, 4096, 32767, 32768, -32768, -32769, 65535, 65536, (1 << 31) - 1, 1 << 31,
                 -(1 << 31), -(1 << 31) - 1, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63,
                 -(1 << 63), -(1 << 63) - 1, (1 << 64) - 1, 1 << 64, 1 << 100, (1 << 4095), -(1 << 4095))
WRONG_TYPES = ('"str"', '""', ":kw", "nil", "t", "()", "(1 2)", "'x", "#'car", "xdp_pass", "+eth-hdr-len+",
               "args", "jt", "u32", "&rest", "(lambda (x) x)", "#:g", "data")
EXTRA_HEADS = ("progn", "let", "let*", "if", "when", "unless", "cond", "case", "and", "or", "not", "setf",
               "setq", "incf", "decf", "return", "dotimes", "declare", "lambda", "quote", "function",
               "defun", "defmacro", "defconstant", "defmap", "defprog", "eval-when", "in-package",
               "funcall", "apply", "mapcar", "format", "loop", "while", "length", "car", "cdr", "cons",
               "list", "append", "equal", "gensym", "intern", "concatenate", "nth", "error", "ash",
               "quasiquote", "unquote", "unquote-splicing", "frobnicate", "make-thing", "%with-packet",
               "with-packet", "with-tcp", "with-udp", "with-tc-ipv4", "parse-tcp", "sq", "iota", "bump",
               "table", "unroll", "pick")
WRAPPERS = ("(progn {})", "(let ((v 1)) {})", "(if 1 {} 0)", "'{}", "`{}", "(when 1 {})", "(+ 0 {})",
            "(not {})", "(list {})", "(let* ((w {})) w)", "(and 1 {})", "(cast u32 {})")
NEST_DEPTHS = (2, 3, 5, 10, 20, 60, 120, 190, 199, 201, 260)
TOKENS = ("(", ")", " ", "'", "`", ",", ",@", "#", "#x", "#:", "|", '"', ";", "\n", ".", ":", "::", "#|",
          "|#", "0", "-1", "65536", "99999999999999999999999", "#xffffffffffffffffff", "nil", "x", "data",
          "(return)", "\\", "#'", "#.", "#\\a", "1.5", "&rest", "\t", "\u00e9", "\u2028", "\ufeff")


def _conformance_sources() -> list[str]:
    """The programs of every kernel conformance table (a module's ``CASES``), in file order."""
    sources = []
    importlib.import_module("tests.conftest")  # puts the collection on the path, as pytest does
    case = importlib.import_module("tests.kernel.compiler.conformance.case")
    for path in sorted((REPO / "tests" / "kernel" / "compiler").glob("test_conformance_*.py")):
        module = importlib.import_module(f"tests.kernel.compiler.{path.stem}")
        sources += [case.PRELUDE + c.source for c in getattr(module, "CASES", [])]
    return sources


def seed_programs() -> list[str]:
    """The programs mutations start from (the same list, in the same order, on every run)."""
    sources = [MACRO_LIBRARY]
    for pattern in SOURCE_FILES:
        sources += [Path(p).read_text() for p in sorted(glob.glob(str(REPO / pattern), recursive=True))]
    sources += _conformance_sources()
    errors = importlib.import_module("tests.unit.compiler.test_errors")
    sources += [bad.source for bad in errors.BAD if len(bad.source) < 20_000]
    robustness = importlib.import_module("tests.unit.compiler.test_robustness")
    sources.append(robustness.VALID)
    return sources


# -- programs from exprgen's vocabulary --------------------------------------------------------

def random_expr(rng: random.Random, depth: int, names: tuple = exprgen.VARS) -> exprgen.Expr:
    """What ``exprgen.expressions`` draws, drawn from ``rng`` instead of hypothesis."""
    Expr = exprgen.Expr
    if depth == 0 or rng.randrange(4) == 0:
        if rng.random() < 0.5:
            return Expr("var", (rng.choice(names),))
        return Expr("int", (rng.choice(BOUNDARY_INTS if rng.random() < 0.3 else (0, 1, 2, 3, 0xFF, 0xFFFF)),))

    def sub():
        return random_expr(rng, depth - 1, names)

    kind = rng.choice(("binary", "shift", "compare", "if", "andor", "not", "cast", "swap", "let"))
    if kind == "binary":
        return Expr(rng.choice(exprgen.BINARY), (sub(), sub()))
    if kind == "shift":
        return Expr(rng.choice(exprgen.SHIFTS), (sub(), Expr("int", (rng.choice((0, 1, 31, 63, 64, -1)),))))
    if kind == "compare":
        return Expr(rng.choice(exprgen.COMPARES), (sub(), sub()))
    if kind == "if":
        return Expr("if", (sub(), sub(), sub())[: rng.choice((2, 3))])
    if kind == "andor":
        return Expr(rng.choice(("and", "or")), tuple(sub() for _n in range(rng.randint(1, 3))))
    if kind == "not":
        return Expr("not", (sub(),))
    if kind == "cast":
        return Expr("cast", (rng.choice(sorted(exprgen.CASTS)), sub()))
    if kind == "swap":
        return Expr("swap", (rng.choice(sorted(exprgen.SWAPS)), sub()))
    name = rng.choice(("x", "y"))
    return Expr("let", (name, sub(), random_expr(rng, depth - 1, (*names, name))))


def expr_program(rng: random.Random) -> str:
    body = exprgen.render(random_expr(rng, rng.randint(1, 6)), "source")
    return (ARGS + "(defprog fuzz ()\n  (let ((a (getmap args 0)) (b (getmap args 1)) (c (getmap args 2)))\n"
            f"    {body}))\n")


# -- mutations ---------------------------------------------------------------------------------

_DEFINERS = ("DEFPROG", "DEFMACRO", "DEFUN")


def _nodes(forms: list) -> list:
    """(parent list, index, inside a body) for every node of the top-level forms, in a fixed
    order; "inside a body" is true below the body of a defprog, defmacro or defun."""
    out, pending = [], [(forms, i, False) for i in range(len(forms))]
    while pending:
        parent, i, in_body = pending.pop()
        out.append((parent, i, in_body))
        node = parent[i]
        if isinstance(node, List):
            node = parent[i] = list(node.items)  # mutable while mutating; turned back into text by _text
        if isinstance(node, list):
            body_from = 3 if parent is forms and node and isinstance(node[0], Symbol) \
                and node[0].name in _DEFINERS else len(node)
            pending += [(node, j, in_body or j >= body_from) for j in range(len(node))]
    return out


def _text(node) -> str:
    if isinstance(node, list):
        return "(" + " ".join(_text(n) for n in node) + ")"
    if isinstance(node, str):
        return node  # raw text put in by a mutation
    if isinstance(node, Symbol):
        return _symbol_text(node.name)
    return str(node)  # an Int or a Str (whose str() is the quoted, escaped literal)


def _symbol_text(name: str) -> str:
    if name.startswith("#:"):
        return name
    plain = all(c not in "()'`,\";|# \t\n" for c in name) and not name.lstrip("+-").isdigit()
    return name.lower() if plain and name == name.upper() else "|" + name.replace("|", "") + "|"


def _random_subtree(rng: random.Random, corpus: list[str]) -> str:
    forms = _parse(rng.choice(corpus))
    nodes = _nodes(forms)
    calls = [(p, i) for p, i, _b in nodes if not isinstance(p[i], list) or (p[i] and isinstance(p[i][0], Symbol))]
    parent, i = rng.choice(calls if calls and rng.random() < 0.8 else [(p, i) for p, i, _b in nodes])
    return _text(parent[i])


def _parse(source: str) -> list:
    try:
        return list(read(source, FILENAME))
    except CompileError:
        return list(read(MACRO_LIBRARY, FILENAME))


def mutate_forms(rng: random.Random, source: str, corpus: list[str]) -> str:
    forms = _parse(source)
    for _mutation in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        nodes = _nodes(forms)
        inside = [(parent, i) for parent, i, in_body in nodes if in_body]
        parent, i = rng.choice(inside if inside and rng.random() < 0.85 else [(p, j) for p, j, _b in nodes])
        node = parent[i]
        kind = rng.randrange(9)
        if kind == 0:  # swap in a subform of another program
            parent[i] = _random_subtree(rng, corpus)
        elif kind == 1 and isinstance(node, list) and len(node) > 1:  # arity: drop an argument
            del node[rng.randrange(1, len(node))]
        elif kind == 2 and isinstance(node, list) and node:  # arity: repeat or add arguments
            extra = node[rng.randrange(len(node))] if rng.random() < 0.5 else _random_subtree(rng, corpus)
            node.extend([extra] * rng.choice((1, 1, 2, 6)))
        elif kind == 3:  # a number at a boundary
            parent[i] = Int(rng.choice(BOUNDARY_INTS))
        elif kind == 4:  # a value of the wrong type
            parent[i] = rng.choice(WRONG_TYPES)
        elif kind == 5 and isinstance(node, list) and node:  # another form, or an unknown name
            heads = EXTRA_HEADS if rng.random() < 0.6 else sorted(BUILTIN_NAMES)
            node[0] = Symbol(rng.choice(heads).upper())
        elif kind == 6:  # nested deep
            text = _text(node)
            for _level in range(rng.choice(NEST_DEPTHS)):
                text = rng.choice(WRAPPERS).format(text)
            parent[i] = text
        elif kind == 7:  # handed to a user macro, which splices, quotes or repeats it
            name = f"fz{rng.randrange(1000)}"
            body = rng.choice(("`(progn ,x)", "`(+ ,x ,x)", "x", "`',x", "`(list ,@(list x x))",
                               "(list 'progn x)", "`(let ((q ,x)) q)", "(if (consp x) (car x) x)",
                               "(list (car x) (length x))", "(reverse x)", "(append x x)"))
            forms.insert(0, read(f"(defmacro {name} (x) {body})", FILENAME)[0])
            parent[i] = [Symbol(name.upper()), node]
        elif isinstance(node, Int):  # a nearby number
            parent[i] = Int(node.value + rng.choice((-1, 1, 1 << 16, 1 << 32)))
        else:
            parent[i] = rng.choice(("0", "x", "(getmap args 0)", "()"))
    return "\n".join(_text(f) for f in forms) + "\n"


def mutate_text(rng: random.Random, text: str) -> str:
    for _edit in range(rng.randint(1, 4)):
        i = rng.randrange(len(text) + 1)
        j = min(len(text), i + rng.randint(0, 12))
        kind = rng.randrange(3)
        if kind == 0:
            text = text[:i] + text[j:]
        elif kind == 1:
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + rng.choice(TOKENS) + text[i:]
    return text


def program(seed: int, index: int, corpus: list[str]) -> str:
    """Program number ``index`` of the run with ``seed``."""
    rng = random.Random(f"{seed}:{index}")
    source = expr_program(rng) if rng.random() < 0.25 else rng.choice(corpus)
    if rng.random() < 0.85:
        source = mutate_forms(rng, source, corpus)
    if rng.random() < 0.15:
        source = mutate_text(rng, source)
    return source


# -- running -----------------------------------------------------------------------------------

def outcome(source: str) -> tuple[str, str]:
    """("ok" | "error" | "unlocated" | "ice:STAGE", detail)."""
    try:
        compile_source(source, FILENAME)
    except CompileError as err:
        loc = err.loc
        located = loc.file in (FILENAME, "<protocols>") and loc.line >= 1 and loc.col >= 1 \
            and str(err).startswith(f"{loc}: error: ")
        return ("error" if located else "unlocated"), str(err).splitlines()[0]
    except InternalError as err:
        return f"ice:{err.stage}", str(err)
    except Exception as err:  # noqa: BLE001 - anything else is a crash outside the pipeline's stages
        return "ice:outside", "".join(traceback.format_exception_only(type(err), err)).strip()
    return "ok", ""


def run(seed: int, start: int, count: int, corpus: list[str] | None = None, slow: float = 2.0) -> dict:
    corpus = seed_programs() if corpus is None else corpus
    counts: dict[str, int] = {}
    failures, slowest = [], (0.0, -1)
    for index in range(start, start + count):
        source = program(seed, index, corpus)
        began = time.perf_counter()
        kind, detail = outcome(source)
        took = time.perf_counter() - began
        slowest = max(slowest, (took, index))
        counts[kind] = counts.get(kind, 0) + 1
        if kind not in ("ok", "error") or took > slow:
            failures.append({"index": index, "kind": kind if kind not in ("ok", "error") else f"slow:{kind}",
                             "seconds": round(took, 2), "detail": detail[:500], "source": source})
    return {"seed": seed, "start": start, "count": count, "counts": counts, "failures": failures,
            "slowest": {"seconds": round(slowest[0], 3), "index": slowest[1]}}


def _run_chunk(args):
    return run(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="index of the first program")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1, help="processes (each runs a contiguous slice)")
    parser.add_argument("--show", action="store_true", help="print each program before compiling it")
    parser.add_argument("--json", metavar="FILE", help="write the summary and failures as JSON")
    args = parser.parse_args(argv)
    corpus = seed_programs()
    if args.show:
        for index in range(args.start, args.start + args.count):
            source = program(args.seed, index, corpus)
            print(f";;; program {index}\n{source}\n;;; -> {outcome(source)}")
        return 0
    began = time.time()
    if args.jobs > 1:
        import multiprocessing

        step = -(-args.count // args.jobs)
        chunks = [(args.seed, s, min(step, args.start + args.count - s), corpus)
                  for s in range(args.start, args.start + args.count, step)]
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            parts = pool.map(_run_chunk, chunks)
    else:
        parts = [run(args.seed, args.start, args.count, corpus)]
    counts: dict[str, int] = {}
    for part in parts:
        for kind, n in part["counts"].items():
            counts[kind] = counts.get(kind, 0) + n
    failures = [f for part in parts for f in part["failures"]]
    slowest = max((part["slowest"] for part in parts), key=lambda s: s["seconds"])
    summary = {"seed": args.seed, "start": args.start, "count": args.count, "seconds": round(time.time() - began, 1),
               "counts": dict(sorted(counts.items())), "slowest": slowest, "failures": failures}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}))
    for f in failures:
        print(f"{f['kind']} #{f['index']} ({f['seconds']} s): {f['detail'].splitlines()[0] if f['detail'] else ''}")
    bad = [f for f in failures if not f["kind"].startswith("slow:")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
