"""bench/original's own machinery, without a kernel: the tolerant Common Lisp reader
and the interpreter of the tests' Lisp (the parts backed by our compiler and bpftool are
exercised by running the script, see docs/original-programs.md).

In: small Lisp snippets written here. Out: pass/fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from original import lisp, testlisp  # noqa: E402


def test_reader_takes_what_test_files_contain():
    (form,) = lisp.read_all("(is (equalp #(1 2) (f #'g 'x `(a ,b ,@c) #x1F #\\E \"s\\\"q\" cl:incf :k)))  ; c\n")
    assert form[0] == "IS"
    _equalp, vector, call = form[1]
    assert vector == ["VECTOR", 1, 2]
    assert call[1] == ["FUNCTION", "G"] and call[2] == ["QUOTE", "X"]
    assert call[3] == ["QUASIQUOTE", ["A", ["UNQUOTE", "B"], ["UNQUOTE-SPLICING", "C"]]]
    assert call[4:7] == [31, 69, 's"q'] and isinstance(call[6], lisp.Text)
    assert call[7].base == "INCF" and call[8] == ":K"
    assert lisp.read_all("#| block |# (a . b)") == [["A", "&DOT", "B"]]


def test_reader_reports_unbalanced_input():
    with pytest.raises(lisp.ReadError):
        lisp.read_all("(a (b)")


def test_show_prints_maps_back_as_source():
    (maps,) = lisp.read_all("((m :type :array :key-size 4))")
    assert lisp.show(maps[0]) == "(m :type :array :key-size 4)"


def evaluate(text: str, constants: dict | None = None):
    interp = testlisp.Interp(kernel=None, root=Path("."), constants=constants or {}, workdir=Path("."))
    interp.run = testlisp.TestRun("t")
    (form,) = lisp.read_all(text)
    return interp.eval(form, {"scopes": [{}]}), interp.run


@pytest.mark.parametrize("text, expected", [
    ("(let* ((n 4) (m (1- n))) (+ n m (* 2 3)))", 13),
    ("(loop for i below 5 when (> i 2) return i)", 3),
    ("(loop for i from 3 downto 0 collect i)", [3, 2, 1, 0]),
    ("(loop for i below 4 for sq = (* i i) thereis (and (> sq 5) sq))", 9),
    ("(loop for x in (list 1 2 3) count (> x 1))", 2),
    ("(let ((c 0)) (loop for i below 3 do (cl:incf c i)) c)", 3),
    ("(if (and (not nil) (null nil) (search \"ab\" \"xxab\")) (nth-insn-imm +code+ 1) 0)", -512),
    ("(has-opcode-p +code+ #x95)", True),
    ("(count-opcode +code+ #xb7)", 1),
])
def test_interpreter_evaluates_the_tests_lisp(text, expected):
    code = bytes.fromhex("b700000001000000" + "0700000000feffff" + "9500000000000000")  # r0 = 1; r0 += -512; exit
    assert evaluate(text, {"+CODE+": testlisp.Code(code, None)})[0] == expected


def test_assertions_are_recorded_not_raised():
    _value, run = evaluate('(progn (is (= 1 2) "one is not two") (is (= 2 2)) (assert-eq 3 4))')
    assert run.failures == ["(= 1 2) -- one is not two", "(equal 3 4)"]


def test_unknown_functions_make_the_test_not_evaluable():
    with pytest.raises(testlisp.NotEvaluable, match="whistler/ir:optimize-ir"):
        evaluate("(whistler/ir:optimize-ir 1)")
