"""Any input compiles or fails with a located error, within 10 s of CPU and 512 MiB (issue 9.4).

In: pathological sources built here: macro bombs (strings, lists, apply, concatenate, mapcar,
recursion, gensym, shared trees in equal/format/errors/code, one budget across expansions),
deep nesting of every kind, huge literals and files, NUL and control characters anywhere,
invalid UTF-8. Out: each runs in its own ``python -m compiler check`` process under
``setrlimit``: RLIMIT_CPU of 10 s and RLIMIT_AS of 512 MiB (an allocation past it fails, so a
compile that needed more would end in an internal error, exit 3). The process must exit 0, or
1 with ``file:line:col: error:`` first (at the expected place where the test knows it), never
3 and never a traceback; the CPU time and peak memory it used are checked against the bounds
too. A wall clock of 60 s only guards against a hang on a machine loaded with other work: CPU
time is the bound that does not depend on the neighbours.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CPU_SECONDS = 10
MEMORY_BYTES = 512 << 20
WALL_SECONDS = 60

HUGE = 1 << 20  # the reader's MAX_SOURCE
MAPS = "(defmap args :type :array :key-size 4 :value-size 8 :max-entries 4)\n"
DAG = "(defun dbl (x n) (if (= n 0) x (dbl (list x x) (- n 1))))\n"  # (dbl 1 40): 40 nodes, 2^40 leaves
BIG = ("(defun big () (let ((l (list 1 2 3 4 5 6 7 8 9 10))) (dolist (i '(1 2 3 4))"
       " (setq l (append l l l l l l l l l l))) l))\n")  # 100,000 elements


def macro(body: str, extra: str = "") -> str:
    """A program whose one statement is a call of macro ``m`` running ``body``."""
    return f"{MAPS}{DAG}{BIG}{extra}(defmacro m () {body})\n(defprog p ()\n  (m))\n"


def prog(body: str, extra: str = "") -> str:
    return f"{MAPS}{extra}(defprog p ()\n  {body})\n"


@dataclass
class Input:
    id: str
    source: str | bytes
    outcome: str  # "ok", "error" or "either"
    phrase: str = ""  # in the error's first line
    at: tuple[int, int] | None = None  # (line, col) of the error, where the test knows it


def nested(prefix: str, suffix: str, n: int, inner: str = "1") -> str:
    return prefix * n + inner + suffix * n


def fill(line, size: int = HUGE) -> str:
    """``line(0) + line(1) + ...``: as many whole lines as fit in ``size`` characters."""
    out, total, i = [], 0, 0
    while total + len(line(i)) <= size:
        out.append(line(i))
        total += len(out[-1])
        i += 1
    return "".join(out)


def line_col(text: str, snippet: str) -> tuple[int, int]:
    index = text.index(snippet)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def control_inputs() -> list[Input]:
    out = []
    for code in [*range(0x00, 0x09), 0x0E, 0x1B, 0x1F, 0x7F, 0x85]:
        source = prog(f"(+ 1 2{chr(code)})")
        out.append(Input(f"control character U+{code:04X} in a program", source, "error",
                         f"control character U+{code:04X}", line_col(source, chr(code))))
    for where, source in {
        "a section name": prog("1").replace("(defprog p ()", '(defprog p (:section "xdp/a\0b")'),
        "a symbol": prog("(let ((a\0b 1)) a\0b)"),
        "an |escaped| symbol": prog("(let ((|a\0b| 1)) 1)"),
        "a comment": "; comment \0 here\n" + prog("1"),
        "a block comment": "#| \0 |#\n" + prog("1"),
        "a number": prog("(+ 12\x0034 1)"),
        "the first byte": "\0" + prog("1"),
        "the last byte": prog("1") + "\0",
        "a string in a macro": macro('(length "a\0b")'),
    }.items():
        out.append(Input(f"NUL in {where}", source, "error", "control character U+0000", line_col(source, "\0")))
    # Two sections that would be the same name if the NUL were dropped: an error at the NUL, not a clash.
    two = prog("1").replace("(defprog p ()", '(defprog p (:section "xdp/a")') + \
        '(defprog q (:section "xdp/a\0")\n  1)\n'
    out.append(Input("sections equal but for a NUL", two, "error", "control character", line_col(two, "\0")))
    return out


def utf8_inputs() -> list[Input]:
    head = MAPS.encode() + b"(defprog p ()\n  "
    return [
        Input("invalid UTF-8 byte", head + b"(+ 1\xff 2))\n", "error", "not UTF-8", (3, 7)),
        Input("invalid UTF-8 after multi-byte characters", head + "(+ ééé ".encode() + b"\xfe 1))\n", "error",
              "not UTF-8", (3, 10)),
        Input("overlong UTF-8", head + b"(+ \xc0\xaf 1))\n", "error", "not UTF-8", (3, 6)),
        Input("UTF-8 surrogate", head + b"(+ \xed\xa0\x80 1))\n", "error", "not UTF-8", (3, 6)),
        Input("truncated UTF-8 at the end", head + b"1)\n\xe2\x82", "error", "not UTF-8", (4, 1)),
        Input("UTF-8 byte order mark", b"\xef\xbb\xbf" + head + b"1)\n", "ok"),
    ]


INPUTS = [
    # -- macro bombs: each ends in an error at the macro call, line 6 of macro()
    Input("string doubling with concatenate",
          macro("(let ((s \"ab\")) (dolist (i (big)) (setq s (concatenate 'string s s))) s)"),
          "error", "grew past 100000 characters", (6, 3)),
    Input("apply concatenate on 100,000 strings of 100,000 characters",
          macro("(let ((s \"0123456789\")) (dolist (i '(1 2 3 4)) (setq s (concatenate 'string s s s s s s s s s s)))"
                " (length (apply #'concatenate 'string (mapcar (lambda (x) s) (big)))))"),
          "error", "grew past 100000 characters", (6, 3)),
    Input("mapcar building a list per element", macro("(length (mapcar (lambda (x) (append (big) nil)) (big)))"),
          "error", "MiB", (6, 3)),
    Input("list doubling with append", macro("(let ((l '(1))) (dolist (i (big)) (setq l (append l l))) l)"),
          "error", "grew past 100000 elements", (6, 3)),
    Input("list doubling with apply", macro("(let ((l '(1))) (dolist (i (big)) (setq l (apply #'list (append l l)))) l)"),
          "error", "grew past 100000 elements", (6, 3)),
    Input("shared tree returned as code", macro("(dbl 1 60)"), "error", "gave up after", (6, 3)),
    Input("equal on two shared trees", macro("(if (equal (dbl 1 40) (dbl 1 40)) 1 0)"),
          "error", "steps of compile-time work", (6, 3)),
    Input("shared tree in a format string", macro("(error \"~S\" (dbl 1 40))"), "error", "grew past", (6, 3)),
    Input("shared tree in an error message", macro("(+ (dbl 1 40) 1)"), "error", "expected an integer", (6, 3)),
    Input("shared tree passed from macro to macro",
          prog("(m 1 60)", "(defmacro m (x n) (if (= n 0) `(progn ,x) `(m (+ ,x ,x) ,(- n 1))))\n"),
          "error", "", (4, 3)),
    Input("infinite recursion", macro("(f 1)", "(defun f (n) (f (+ n 1)))\n"), "error", "nested more than", (7, 3)),
    Input("exponential recursion", macro("(fib 40)", "(defun fib (n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n"),
          "error", "steps of compile-time work", (7, 3)),
    Input("gensym storm", macro("(dolist (i (big)) (dolist (j (big)) (gensym)))"), "error", "steps of compile-time work",
          (6, 3)),
    Input("one budget across 2,000 expansions of 50,000 steps each",
          prog("(progn " + "(m) " * 2000 + ")",
               "(defmacro m () (let ((l '(1 2 3 4 5 6 7 8 9 10))) (dolist (a l) (dolist (b l) (dolist (c l) "
               "(dolist (d l) (+ 1 1)))))) 1)\n"),
          "error", "steps of compile-time work"),
    Input("macro expanding into itself at top level", "(defmacro m () '(m))\n(m)\n" + prog("1"), "error",
          "nests more than 100 expansions", None),
    Input("macro expanding into itself in a program", prog("(m)", "(defmacro m () '(m))\n"), "error",
          "nests more than 100 expansions"),
    Input("macro doubling its own calls",
          prog("(m 40)", "(defmacro m (n) (if (> n 0) `(progn (m ,(- n 1)) (m ,(- n 1))) 1))\n"), "error", ""),
    Input("integer growth", macro("(ash 1 (ash 1 40))"), "error", "4096 bits", (6, 3)),
    Input("format of a long list", macro("(length (format nil \"~S\" (big)))"), "error", "grew past", (6, 3)),
    # Unrolled today (too large, an error); a real loop once loops are (then it compiles).
    Input("dotimes nested 64 x 64 x 64", prog(nested("(dotimes (i 64) ", ")", 3, "(incf (getmap args 0))")),
          "either"),
    Input("a long let* in compile-time code",
          macro("(let* (" + " ".join(f"(v{i} {i})" for i in range(5000)) + ") (dolist (i (big)) v0) 1)"), "ok"),
    Input("an interned symbol of 100,000 characters as a map name",
          "(defmacro mk () `(defmap ,(intern (format nil \"~A\" (length (big)))) :type :array :key-size 4"
          " :value-size 8 :max-entries 1))\n(defmacro mk2 () `(defmap ,(intern (apply #'concatenate 'string "
          "(mapcar (lambda (x) \"a\") (big)))) :type :array :key-size 4 :value-size 8 :max-entries 1))\n(mk2)\n"
          + prog("1"), "error", "", (3, 1)),
    # -- deep nesting of every kind, in the source and built by macros
    # (defprog is the first level, so the 200th prefix in the body is one too many
    *[Input(f"5,000 nested {name}", prog(nested(open_, close, 5000, "x")), "error", "nest more than 200",
            (3, 3 + 199 * len(open_)))
      for name, open_, close in [("quotes", "'", ""), ("backquotes", "`", ""), ("unquotes", ",", ""),
                                 ("function quotes", "#'", ""), ("lists", "(+ 1 ", ")"),
                                 ("ifs", "(if 1 ", " 0)")]],
    Input("5,000 nested lets", prog(nested("(let ((x 1)) ", ")", 5000)), "error", "nest more than 200"),
    Input("199 nested ifs", prog(nested("(if 1 ", " 0)", 198)), "ok"),
    Input("macro building code 30,000 deep",
          macro("(let ((code 1)) (dolist (i (big)) (setq code (list 'progn code))) code)"), "error", "too deeply", (6, 3)),
    Input("macros nesting 99 results 999 deep each",
          prog("(m 99)", "(defmacro m (n) (let ((code (if (> n 0) (list 'm (- n 1)) 1))) (dolist (i '("
                         + " 0" * 998 + ")) (setq code (list 'progn code))) code))\n"),
          "either", "", (4, 3)),
    # -- huge literals and files
    Input("integer literal of 100,000 digits", prog("(+ 1 " + "9" * 100_000 + ")"), "error", "too large", (3, 8)),
    Input("#x literal of 1,000,000 digits", prog("(+ 1 #x" + "f" * 1_000_000 + ")"), "error", "too large", (3, 8)),
    Input("string literal of 900,000 characters", prog('(+ 1 "' + "s" * 900_000 + '")'), "error",
          "a string cannot be used", (3, 8)),
    Input("section name of 100,000 characters",
          prog("1").replace("(defprog p ()", '(defprog p (:section "xdp/' + "s" * 100_000 + '")'), "error",
          "is not a name", (2, 1)),
    Input("symbol of 900,000 characters", prog("(+ 1 " + "v" * 900_000 + ")"), "error", "", (3, 8)),
    Input("a source one character too long", prog("1") + ";" * (HUGE - len(prog("1")) + 1), "error", "longer than",
          (4, HUGE - len(prog("1")) + 1)),
    Input("a 10 MB file", prog("1") + ";" * 10_000_000, "error", "larger than", (1, 1)),
    Input("1 MiB of programs", fill(lambda i: f'(defprog p{i} (:section "xdp/{i}") {i})\n'), "error",
          "more than 256 programs"),
    Input("1 MiB of maps", fill(lambda i: f"(defmap m{i} :type :array :key-size 4 :value-size 8 :max-entries 1)\n"),
          "error", "more than 1024 maps"),
    Input("1 MiB of statements", prog(fill(lambda i: f"(setf (getmap args {i % 4}) {i}) ", HUGE - 200)),
          "error", "too large"),
    # The shape the back end is slowest on per form, just under the size limit: it must compile in time.
    Input("the largest program of the slowest shape",
          prog("(+ " + " ".join(f"(* (getmap args {i % 4}) {i})" for i in range(650)) + ")"), "ok"),
    Input("1 MiB of comment", ";" + "c" * (HUGE - 100) + "\n" + prog("1"), "ok"),
    Input("an error at the end of a 1 MiB line", prog("(+ 1 2)" + " " * (HUGE - 200) + "(frobnicate)"), "error",
          "unknown form frobnicate"),
    *control_inputs(),
    *utf8_inputs(),
]


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


@pytest.mark.parametrize("case", INPUTS, ids=[i.id for i in INPUTS])
def test_pathological_input_is_compiled_or_a_located_error_within_bounds(case, tmp_path):
    path = tmp_path / "input.lisp"
    path.write_bytes(case.source if isinstance(case.source, bytes) else case.source.encode())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "compiler", "check", str(path)], cwd=REPO, capture_output=True,
                       text=True, errors="replace", timeout=WALL_SECONDS, preexec_fn=_limits, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert r.returncode in (0, 1), f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr and "internal compiler error" not in r.stderr
    assert cpu < CPU_SECONDS
    assert after.ru_maxrss * 1024 < MEMORY_BYTES  # the largest child so far, this one included
    if case.outcome == "ok" or (case.outcome == "either" and r.returncode == 0):
        assert (r.returncode, r.stderr) == (0, "")
        return
    assert r.returncode == 1 and r.stdout == ""
    first = r.stderr.splitlines()[0]
    match = re.match(rf"{re.escape(str(path))}:(\d+):(\d+): error: ", first)
    assert match, first[:300]
    assert int(match[1]) >= 1 and int(match[2]) >= 1
    assert case.phrase in first, first[:300]
    if case.at is not None:
        assert (int(match[1]), int(match[2])) == case.at, first[:300]
    assert len(r.stderr) < 2000, "error messages are bounded"
