"""Reader: source text -> forms with locations; malformed text -> located errors."""

from __future__ import annotations

import pytest

from compiler.errors import CompileError, Loc
from compiler.forms import Int, List, Str, Symbol
from compiler.reader import MAX_NESTING, read


def S(name):
    return Symbol(name)


def L(*items):
    return List(tuple(items))


@pytest.mark.parametrize("text, expected", [
    ("42", Int(42)),
    ("-7", Int(-7)),
    ("+5", Int(5)),
    ("10.", Int(10)),
    ("#x0800", Int(0x800)),
    ("#XfF", Int(255)),
    ("#b101", Int(5)),
    ("#o17", Int(15)),
    ("0xff", S("0XFF")),  # CL reads 0xff as a symbol, not a number
    ("xdp-dispatch", S("XDP-DISPATCH")),
    ("whistler::incf", S("INCF")),
    ("cl:car", S("CAR")),
    (":type", S(":TYPE")),
    ("#:whistler", S("WHISTLER")),
    ("|Mixed Case|", S("Mixed Case")),
    ("+eth-hdr-len+", S("+ETH-HDR-LEN+")),
    ("<<", S("<<")),
    ('"GPL"', Str("GPL")),
    ('"a\\"b\\\\c"', Str('a"b\\c')),
    ("()", L()),
    ("(a (b 1) \"s\")", L(S("A"), L(S("B"), Int(1)), Str("s"))),
    ("'x", L(S("QUOTE"), S("X"))),
    ("#'car", L(S("FUNCTION"), S("CAR"))),
    ("`(a ,b ,@c)", L(S("QUASIQUOTE"), L(S("A"), L(S("UNQUOTE"), S("B")), L(S("UNQUOTE-SPLICING"), S("C"))))),
    ("; comment\n(a ; more\n b)", L(S("A"), S("B"))),
    ("#| block #| nested |# |# 1", Int(1)),
])
def test_reads_one_form(text, expected):
    assert read(text) == [expected]


def test_every_node_has_its_location():
    (form,) = read("(defmap jt\n  :type :prog-array)", "f.lisp")
    assert form.loc == Loc("f.lisp", 1, 1)
    assert form.items[1].loc == Loc("f.lisp", 1, 9)
    assert form.items[2].loc == Loc("f.lisp", 2, 3)
    assert form.items[3].loc == Loc("f.lisp", 2, 9)


def test_reads_several_top_level_forms():
    assert read("(a) b 3") == [L(S("A")), S("B"), Int(3)]


@pytest.mark.parametrize("text, line, col, message", [
    ("(a\n  (b c)", 1, 1, "never closed"),
    ("(a))", 1, 4, "unexpected ')'"),
    ('(x "abc', 1, 4, "unterminated string"),
    ("#.(foo)", 1, 1, "'#.'"),
    ("1.5", 1, 1, "floating-point"),
    ("#\\a", 1, 1, "character literals"),
    ("(a . b)", 1, 4, "dotted pairs"),
    ("\n  #| open", 2, 3, "unterminated #| comment"),
    ("#xZZ", 1, 1, "bad #x number"),
    ("#p\"x\"", 1, 1, "unsupported reader syntax"),
    ("(a ')", 1, 4, "nothing follows"),
    ("#:", 1, 1, "'#:' must be followed"),
    ("(+ foo: 1)", 1, 4, "package prefix but no symbol name"),
    ("#:pkg:", 1, 1, "package prefix but no symbol name"),
    ("(+ " + "9" * 5000 + " 1)", 1, 4, "5000 digits is too large"),  # int() refuses to parse it
    ("(x\n #x" + "f" * 1025 + ")", 2, 2, "4100 bits is too large"),
])
def test_errors_are_located(text, line, col, message):
    with pytest.raises(CompileError) as info:
        read(text, "bad.lisp")
    err = info.value
    assert (err.loc.file, err.loc.line, err.loc.col) == ("bad.lisp", line, col)
    assert message in err.what
    assert str(err).startswith(f"bad.lisp:{line}:{col}: error:")


def test_nesting_is_bounded_and_the_error_points_at_the_first_list_too_deep():
    depth = MAX_NESTING + 50
    text = "(a " * depth + ")" * depth
    with pytest.raises(CompileError) as info:
        read(text, "deep.lisp")
    # the list that would be the (MAX_NESTING + 1)-th level opens at column 3 * MAX_NESTING + 1
    assert (info.value.loc.line, info.value.loc.col) == (1, 3 * MAX_NESTING + 1)
    assert f"more than {MAX_NESTING} deep" in info.value.what


def test_nesting_up_to_the_limit_reads():
    text = "(a " * MAX_NESTING + ")" * MAX_NESTING
    (form,) = read(text)
    for _level in range(MAX_NESTING - 1):
        form = form.items[1]
    assert form == L(S("A"))
