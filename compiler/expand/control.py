"""Control forms: ``progn if when unless cond case and or not return dotimes`` -> core forms.

In: the form and the ``BodyExpander``. Out: core ``progn``, three-armed ``if``, ``and``/``or``/
``not``, ``return`` and ``let``. ``cond`` and ``case`` become chains of ``if`` (``case`` binds its
key once); a one-armed ``if``/``when``/``unless`` yields 0 when its body does not run.
``dotimes`` is one handler, ``_dotimes``.
"""

from __future__ import annotations

from ..forms import Form, Int, List, Symbol, is_nil
from .base import L, error, progn_of


def _progn(bx, form):
    return progn_of(bx, form.loc, form.items[1:])


def _if(bx, form):
    test, then, *rest = bx.args(form, 2, 3, "(if TEST THEN [ELSE])")
    other = bx.expand(rest[0]) if rest else Int(0, form.loc)
    return L(form.loc, "IF", bx.expand(test), bx.expand(then), other)


def _when(bx, form):
    test, *body = bx.args(form, 1, None, f"({form.items[0]} TEST BODY...)")
    branch = progn_of(bx, form.loc, body)
    zero = Int(0, form.loc)
    if form.head_is("WHEN"):
        return L(form.loc, "IF", bx.expand(test), branch, zero)
    return L(form.loc, "IF", bx.expand(test), zero, branch)


def _cond(bx, form):
    loc = form.loc
    result: Form = Int(0, loc)
    for clause in reversed(form.items[1:]):
        if not isinstance(clause, List) or not clause.items:
            raise error(clause if isinstance(clause, List) else form, "malformed cond clause",
                        expected="(TEST BODY...)")
        test, *body = clause.items
        if isinstance(test, Symbol) and test.name in ("T", "OTHERWISE"):
            result = progn_of(bx, clause.loc, body)
        elif not body:
            result = L(clause.loc, "OR", bx.expand(test), result)
        else:
            result = L(clause.loc, "IF", bx.expand(test), progn_of(bx, clause.loc, body), result)
    return result


def _case(bx, form):
    key, *clauses = bx.args(form, 1, None, "(case KEY (VALUE BODY...)... [(otherwise BODY...)])")
    loc = form.loc
    var = bx.gensym("CASE", loc)
    result: Form = Int(0, loc)
    for i, clause in enumerate(reversed(clauses)):
        if not isinstance(clause, List) or not clause.items:
            raise error(clause if isinstance(clause, List) else form, "malformed case clause",
                        expected="(VALUE BODY...) or ((VALUE...) BODY...)")
        keys, *body = clause.items
        if is_nil(keys):  # as in Common Lisp, NIL and () are an empty key list: never matches
            continue
        branch = progn_of(bx, clause.loc, body)
        if isinstance(keys, Symbol) and keys.name in ("T", "OTHERWISE"):
            if i != 0:
                raise error(clause, f"the {keys} clause must be the last one")
            result = branch
            continue
        values = keys.items if isinstance(keys, List) else (keys,)
        tests = [L(clause.loc, "=", var, bx.literal(v, clause, "a case key")) for v in values]
        test = tests[0] if len(tests) == 1 else L(clause.loc, "OR", *tests)
        result = L(clause.loc, "IF", test, branch, result)
    return L(loc, "LET", List((List((var, Symbol("NIL", loc), bx.expand(key)), loc),), loc), result)


def _and_or(bx, form):
    args = bx.expand_all(form.items[1:])
    if not args:
        return Int(1 if form.head_is("AND") else 0, form.loc)
    return args[0] if len(args) == 1 else L(form.loc, form.items[0].name, *args)


def _not(bx, form):
    (arg,) = bx.args(form, 1, 1)
    return L(form.loc, "NOT", bx.expand(arg))


def _return(bx, form):
    args = bx.args(form, 0, 1, "(return [VALUE])")
    return L(form.loc, "RETURN", bx.expand(args[0]) if args else Int(0, form.loc))


def _dotimes(bx, form):
    spec, *body = bx.args(form, 1, None, "(dotimes (VAR COUNT) BODY...)")
    if not isinstance(spec, List) or len(spec.items) != 2:
        raise error(form, "malformed dotimes", expected="(dotimes (VAR COUNT) BODY...)")
    var = bx.variable(spec.items[0], form)
    count = bx.literal(spec.items[1], form, "the dotimes count").value
    if not 0 <= count <= MAX_UNROLL:
        raise error(form, f"dotimes count {count} is out of range",
                    expected=f"0 to {MAX_UNROLL} (the loop is unrolled)")
    # Unrolled: each iteration sees VAR bound to its index, and assignments made by one
    # iteration are visible to the next, as in a loop.
    loc = form.loc
    iterations = [L(loc, "LET", List((List((var, Symbol("U64", loc), Int(i, loc)), loc),), loc),
                    *bx.expand_all(body)) for i in range(count)]
    return L(loc, "PROGN", *iterations, Int(0, loc))


MAX_UNROLL = 64


FORMS = {
    "PROGN": _progn, "IF": _if, "WHEN": _when, "UNLESS": _when, "COND": _cond, "CASE": _case,
    "AND": _and_or, "OR": _and_or, "NOT": _not, "RETURN": _return, "DOTIMES": _dotimes,
}
