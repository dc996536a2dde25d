"""No input makes the compiler crash: odd but valid programs compile, garbled ones fail with a
located ``CompileError``, never another exception (which the CLI would report as an internal
error, exit 3).

In: sources built here (large and deep valid programs) and sources hypothesis garbles from a
valid program or assembles from Whistler tokens. Out: pass/fail.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import CompileError, compile_source
from compiler.reader import MAX_NESTING

MAPS = """(defmap args :type :array :key-size 4 :value-size 8 :max-entries 4)
(defmap h8 :type :hash :key-size 8 :value-size 8 :max-entries 16)
(defmap jt :type :prog-array :key-size 4 :value-size 4 :max-entries 4)
"""

VALID = MAPS + """(defconstant +limit+ 10)
(defmacro bump (m k) `(incf (getmap ,m ,k)))
(defprog prog (:type :xdp :section "xdp" :license "GPL")
  (let ((data (xdp-data)) (data-end (xdp-data-end)))
    (when (> (+ data 34) data-end) (return XDP_PASS))
    (let* ((proto (ipv4-protocol (+ data +eth-hdr-len+)))
           (x (getmap args 0)))
      (declare (type u32 proto))
      (bump h8 #x1122334455667788)
      (case proto (6 (tail-call jt 1)) ((17 1) (setf (getmap args 1) (+ x 1))) (t (decf (getmap h8 3))))
      (if (and (> x +limit+) (or (s< x 0) (= (ntohs x) 5))) XDP_DROP XDP_PASS))))
"""


def body(text: str) -> str:
    return MAPS + f"(defprog prog ()\n  {text})\n"


def a(k: int) -> str:
    return f"(getmap args {k})"


# Valid programs at sizes and depths no hand-written program reaches.
LARGE = {
    "case with 1000 arms": body(f"(case {a(0)} " + " ".join(f"({i} {3 * i})" for i in range(1000)) + ")"),
    "cond with 500 clauses": body("(cond " + " ".join(f"((= {a(0)} {i}) {i})" for i in range(500)) + ")"),
    "let* with 600 bindings": body("(let* (" + " ".join(f"(v{i} {i})" for i in range(600)) + ") v599)"),
    "when-let with 200 bindings":
        body("(when-let (" + " ".join(f"(v{i} (map-lookup args {i % 4}))" for i in range(200)) + ") 1)"),
    "expression nested to the reader's limit":
        body("(+ 1 " * (MAX_NESTING - 2) + a(0) + ")" * (MAX_NESTING - 2)),
    "when-let nested 150 deep": body("(when-let ((p (map-lookup args 0))) " * 150 + "1" + ")" * 150),
    "64 iterations of a branchy body": body(f"(dotimes (i 64) (when (= {a(0)} i) (incf (getmap args 1))))"),
    "1000 statements": body("(progn " + " ".join(f"(setf (getmap args {i % 4}) {i})" for i in range(1000)) + ")"),
}


@pytest.mark.parametrize("source", LARGE.values(), ids=LARGE.keys())
def test_large_and_deep_valid_programs_compile(source):
    assert compile_source(source, "large.lisp").elf.startswith(b"\x7fELF")


def assert_compiles_or_located_error(source: str) -> None:
    try:
        compile_source(source, "fuzz.lisp")
    except CompileError as err:
        assert err.loc.file in ("fuzz.lisp", "<protocols>"), err.loc
        assert 1 <= err.loc.line <= source.count("\n") + 1 or err.loc.file != "fuzz.lisp", err.loc
        assert str(err).startswith(f"{err.loc}: error: ")
    # any other exception propagates and fails the test


@st.composite
def garbled(draw) -> str:
    """VALID with a few characters or tokens deleted, duplicated, swapped or inserted."""
    text = VALID
    for _edit in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        kind = draw(st.sampled_from(["delete", "duplicate", "insert", "move"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        else:
            k = draw(st.integers(0, len(text)))
            piece, rest = text[i:j], text[:i] + text[j:]
            text = rest[:k] + piece + rest[k:]
    return text


TOKENS = ["(", ")", " ", "'", "`", ",", ",@", "#", "#x", "#:", "|", '"', ";", "\n", ".", ":", "::",
          "0", "-1", "99999999999999999999999", "#xffffffffffffffffff", "nil", "t", "x", "data",
          "(return)", "(let ((q 1)) q)", "(getmap h8 -1)", "(ctx data)", "(setf (ctx data) 1)",
          "(tail-call args 1)", "(ash 1 64)", "(<< 1 63)", "(/ 1 0)", "(load u8 data 0)", "(cast i8 -1)",
          "(struct-alloc 600)", "(bump nothing 1)", "(defmacro m () '(m))", "(m)", "xdp_pass", "+eth-hdr-len+",
          "(if)", "(case)", "(cond (t))", "(when-let (p) p)", "(if-let ((p 1)) p)", "(atomic-add data 3 1)",
          "(ktime-get-ns 1)", "(defprog)", "(defmap)", '(defprog p2 (:section "xdp") 1)', "(in-package)"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbled())
def test_garbled_programs_never_crash(source):
    assert_compiles_or_located_error(source)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_never_crashes(tokens):
    assert_compiles_or_located_error(MAPS + "(defprog prog () " + " ".join(tokens) + ")")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text):
    assert_compiles_or_located_error(text)
