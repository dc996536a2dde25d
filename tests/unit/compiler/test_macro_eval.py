"""The compile-time Lisp: expressions over forms, lambda lists, budgets, sandboxing."""

from __future__ import annotations

import pytest

from compiler.budget import MAX_STEPS
from compiler.forms import Int, Str
from compiler.macro_eval import Interpreter, MacroError
from compiler.reader import read

DEFUNS = """
(defun square (x) (* x x))
(defun fact (n) (if (<= n 1) 1 (* n (fact (- n 1)))))
(defun forever (n) (forever (+ n 1)))
(defun spin (n) (if (> n 0) (spin (- n 1)) 0))
(defun kw (a &optional (b 10 b-p) &key (c 3) d) (list a b b-p c d))
(defun rest-args (a &rest more) (cons a (reverse more)))
(defun pairs ((a b) (c d)) (list d c b a))
"""


@pytest.fixture
def interp():
    it = Interpreter({"+LEN+": 14})
    for form in read(DEFUNS):
        it.functions[form.items[1].name] = it.make_closure(form.items[1].name, form.items[2], form.items[3:])
    return it


def ev(interp, text):
    (form,) = read(text)
    return interp.eval_toplevel(form)


@pytest.mark.parametrize("expr, expected", [
    ("(+ 1 2 3)", "6"),
    ("(- 10)", "-10"),
    ("(- 10 1 2)", "7"),
    ("(* 256 1024)", "262144"),
    ("(/ -7 2)", "-3"),
    ("(floor -7 2)", "-4"),
    ("(mod -7 2)", "1"),
    ("(ash 1 4)", "16"),
    ("(ash 16 -2)", "4"),
    ("(logior 1 (logand 6 3) (logxor 8 0))", "11"),
    ("(+ +len+ 20)", "34"),
    ("(< 1 2 3)", "t"),
    ("(< 1 3 2)", "nil"),
    ("(max 3 9 4)", "9"),
    ("'(a b)", "(a b)"),
    ("(car '(a b c))", "a"),
    ("(cdr '(a b c))", "(b c)"),
    ("(cdr '(a))", "nil"),
    ("(car nil)", "nil"),
    ("(cons 1 '(2))", "(1 2)"),
    ("(cons 1 nil)", "(1)"),
    ("(list 1 'x \"s\")", "(1 x \"s\")"),
    ("(list* 1 2 '(3 4))", "(1 2 3 4)"),
    ("(append '(1) nil '(2 3))", "(1 2 3)"),
    ("(reverse '(1 2 3))", "(3 2 1)"),
    ("(length '(1 2 3))", "3"),
    ("(nth 1 '(a b c))", "b"),
    ("(nth 5 '(a b c))", "nil"),
    ("(first '(a b))", "a"),
    ("(second '(a b))", "b"),
    ("(third '(a b c))", "c"),
    ("(rest '(a b))", "(b)"),
    ("(last '(a b c))", "(c)"),
    ("(mapcar #'square '(1 2 3))", "(1 4 9)"),
    ("(mapcar (lambda (x y) (+ x y)) '(1 2) '(10 20))", "(11 22)"),
    ("(mapcar #'car '((a 1) (b 2)))", "(a b)"),
    ("(member 2 '(1 2 3))", "(2 3)"),
    ("(member 9 '(1 2 3))", "nil"),
    ("(assoc 'b '((a 1) (b 2)))", "(b 2)"),
    ("(assoc '(x) '(((x) 1)) :test #'equal)", "((x) 1)"),
    ("(eq 'a 'a)", "t"),
    ("(eql 3 3)", "t"),
    ("(equal '(a (b)) '(a (b)))", "t"),
    ("(eq '(a) '(a))", "nil"),
    ("(null nil)", "t"),
    ("(null '())", "t"),
    ("(listp nil)", "t"),
    ("(consp nil)", "nil"),
    ("(symbolp 'x)", "t"),
    ("(integerp 3)", "t"),
    ("(stringp \"s\")", "t"),
    ("(if nil 1 2)", "2"),
    ("(if () 1)", "nil"),
    ("(when t 1 2)", "2"),
    ("(unless t 1)", "nil"),
    ("(cond ((= 1 2) 'a) ((= 1 1) 'b) (t 'c))", "b"),
    ("(cond ((+ 1 1)))", "2"),
    ("(case 2 (1 'one) ((2 3) 'two-or-three) (otherwise 'other))", "two-or-three"),
    ("(let ((x 1) (y 2)) (let ((x y) (y x)) (list x y)))", "(2 1)"),
    ("(let* ((x 1) (y (+ x 1))) y)", "2"),
    ("(let ((x 1)) (setq x (+ x 5)) x)", "6"),
    ("(let ((acc nil)) (dolist (i '(1 2 3) acc) (setq acc (cons i acc))))", "(3 2 1)"),
    ("(progn 1 2 3)", "3"),
    ("(and 1 2)", "2"),
    ("(and 1 nil 2)", "nil"),
    ("(or nil 5)", "5"),
    ("(not nil)", "t"),
    ("`(a ,(+ 1 2) ,@(list 4 5) b)", "(a 3 4 5 b)"),
    ("`(a `(b ,(c ,(+ 1 2))))", "(a (quasiquote (b (unquote (c 3)))))"),
    ("(let ((x '(1 2))) `(,@x ,@nil end))", "(1 2 end)"),
    ("(intern (format nil \"~A-~A\" 'tcp 'port))", "tcp-port"),
    ("(format nil \"~D/~S/~A/~X~~\" 12 \"q\" \"a\" 255)", '"12/\\"q\\"/a/FF~"'),
    ("(symbol-name 'foo)", '"FOO"'),
    ("(string-upcase \"ab\")", '"AB"'),
    ("(concatenate 'string \"a\" \"b\" 'c)", '"abC"'),
    ("(fact 10)", "3628800"),
    ("(spin 50)", "0"),
    ("(kw 1)", "(1 10 nil 3 nil)"),
    ("(kw 1 2 :d 4)", "(1 2 t 3 4)"),
    ("(rest-args 1 2 3)", "(1 3 2)"),
    ("(pairs '(1 2) '(3 4))", "(4 3 2 1)"),
    ("(funcall #'square 5)", "25"),
    ("(apply #'+ 1 '(2 3))", "6"),
])
def test_evaluates(interp, expr, expected):
    assert ev(interp, expr) == read(expected)[0]


def test_gensyms_are_fresh_and_unreadable(interp):
    a, b = ev(interp, "(gensym)"), ev(interp, "(gensym \"tmp\")")
    assert a != b
    assert a.name.startswith("#:") and b.name.startswith("#:TMP")
    # No symbol the reader produces can start with "#:", so gensyms never capture user names.
    assert all(not s.name.startswith("#:") for s in read("#:g1 |#:x| g1")[:1])


@pytest.mark.parametrize("expr, message", [
    ("(open \"/etc/passwd\")", "unknown function open"),
    ("(run-program \"sh\")", "unknown function run-program"),
    ("(format t \"x\")", "only (format nil"),
    ("(format nil \"~{~A~}\" 1)", "unsupported directive"),
    ("(undefined-var)", "unknown function undefined-var"),
    ("zork", "unbound variable zork"),
    ("(car 5)", "expected a list"),
    ("(+ 'a 1)", "expected an integer"),
    ("(/ 1 0)", "division by zero"),
    ("(cons 1 2)", "dotted pairs"),
    ("(square)", "too few arguments"),
    ("(square 1 2)", "too many arguments"),
    ("(kw 1 2 :zz 3)", "unknown keyword :zz"),
    ("(kw 1 2 :c)", "odd number of &key"),
    ("(error \"bad ~A\" 'thing)", "bad THING"),
    ("(forever 0)", "nested more than"),
    ("(spin 1000000)", "nested more than"),
    # growth that would exhaust memory long before the step budget runs out
    ("(ash 1 (ash 1 40))", "past 4096 bits"),
    ("(* (ash 1 3000) (ash 1 3000))", "past 4096 bits"),
    ("(+ (ash 1 4095) (ash 1 4095))", "past 4096 bits"),
    ("(let ((s \"ab\")) (dolist (i '(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20)) "
     "(setq s (concatenate 'string s s))) s)", "past 100000 characters"),
])
def test_errors(interp, expr, message):
    with pytest.raises(MacroError) as info:
        ev(interp, expr)
    assert message in str(info.value)


def test_step_budget_stops_a_long_loop(interp):
    # Shallow but long: (dolist over a long list calling a cheap function) exceeds the step budget.
    with pytest.raises(MacroError, match="steps of compile-time work"):
        ev(interp, "(let ((l '(1 2 3 4 5 6 7 8 9 10))) (dolist (a l) (dolist (b l) (dolist (c l) "
                   "(dolist (d l) (dolist (e l) (dolist (f l) (square 1))))))))")


def test_one_budget_spans_every_evaluation(interp):
    # Each evaluation is cheap; together they are not: the budget is per compile, not per call.
    loop = "(let ((l '(1 2 3 4 5 6 7 8 9 10))) (dolist (a l) (dolist (b l) (dolist (c l) (dolist (d l) 1)))))"
    with pytest.raises(MacroError, match="steps of compile-time work"):
        for _call in range(MAX_STEPS // 10_000):
            ev(interp, loop)
    assert interp.budget.steps > MAX_STEPS


def test_values_are_forms(interp):
    assert ev(interp, '"x"') == Str("x")


def test_functions_see_constants_and_later_globals(interp):
    (form,) = read("(defun plus-len (x) (+ x +len+ *extra*))")
    interp.functions["PLUS-LEN"] = interp.make_closure("PLUS-LEN", form.items[2], form.items[3:])
    interp.variables["*EXTRA*"] = Int(100)  # defined after the function, as defparameter does
    assert ev(interp, "(plus-len 1)") == Int(115)
    assert ev(interp, "(let ((f (lambda () (setq *extra* 5)))) (funcall f) *extra*)") == Int(5)
    with pytest.raises(MacroError, match="constant"):
        ev(interp, "((lambda () (setq +len+ 1)))")


def test_sizes_are_charged_before_the_value_is_built(interp):
    # 10,000 strings of 100,000 characters: concatenating them would take 1 GB; the length is
    # checked first, so the attempt costs no more than the strings themselves (about 1 MB: one
    # string shared 10,000 times).
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(MacroError, match="grew past 100000 characters"):
            ev(interp, "(let ((s \"0123456789\")) (dolist (i '(1 2 3 4)) (setq s (concatenate 'string s s s s s"
                       " s s s s s))) (let ((l (list s))) (dolist (i '(1 2 3 4)) (setq l (append l l l l l l l l l l)))"
                       " (apply #'concatenate 'string l)))")
        assert tracemalloc.get_traced_memory()[1] < 20 << 20
    finally:
        tracemalloc.stop()
