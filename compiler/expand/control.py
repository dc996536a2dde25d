"""Control forms: ``progn if when unless cond case and or not return dotimes`` -> core forms.

In: the form and the ``BodyExpander``. Out: core ``progn``, three-armed ``if``, ``and``/``or``/
``not``, ``return``, ``let`` and ``dotimes``. ``cond`` and ``case`` become chains of ``if``
(``case`` binds its key once); a one-armed ``if``/``when``/``unless`` yields 0 when its body
does not run. ``dotimes`` is one handler, ``_dotimes``: it checks the counts, and ``loopplan``
and ``lower`` decide how the loop runs.
"""

from __future__ import annotations

from ..forms import Form, Int, List, Symbol, is_nil, short
from ..ir import to_signed
from .arith import _shown, constant_value
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
    """``(dotimes (VAR COUNT [:max MAX]) BODY...)`` -> core ``(dotimes (VAR COUNT MAX) BODY...)``.

    A constant COUNT runs exactly COUNT times. A run-time COUNT needs ``:max``, a constant: the
    body then runs min(COUNT, MAX) times, COUNT read once, before the loop, as an unsigned 64-bit
    value (so a "negative" count clamps to MAX). VAR is 0, 1, ... bound afresh for each iteration
    (setting it changes that iteration's copy, never the trip count). The value is 0. ``lower``
    decides how the loop runs (unrolled, a real loop, or bpf_loop)."""
    shape = "(dotimes (VAR COUNT [:max MAX]) BODY...)"
    spec, *body = bx.args(form, 1, None, shape)
    items = spec.items if isinstance(spec, List) else ()
    if len(items) not in (2, 4) or (len(items) == 4 and items[2] != Symbol(":MAX")):
        raise error(form, "malformed dotimes", expected=shape,
                    hint="a run-time count needs a constant bound: (dotimes (i n :max 64) ...)"
                    if len(items) == 4 and isinstance(items[2], Symbol) and items[2].is_keyword else None)
    var = bx.variable(items[0], form)
    count = bx.expand(items[1])
    limit = _loop_bound(form, count, items[1], "the dotimes count")
    if len(items) == 4:
        bound = bx.expand(items[3])
        if constant_value(bound) is None:
            raise error(form, f"the :max of dotimes must be a constant, not {short(items[3])}",
                        hint="the verifier needs a bound it can see: use a literal or a defconstant")
        maximum = _loop_bound(form, bound, items[3], "the dotimes :max")
        limit = maximum if limit is None else min(limit, maximum)
    elif limit is None:
        raise error(form, f"the dotimes count {short(items[1])} is not a constant, so the loop needs a bound",
                    expected="(dotimes (VAR COUNT :max MAX) BODY...)",
                    hint="add :max with the most iterations the loop may run; it stops after min(COUNT, MAX)")
    loc = form.loc
    spec_out = List((var, Int(limit, count.loc) if constant_value(count) is not None else count,
                     Int(limit, loc)), spec.loc)
    return L(loc, "DOTIMES", spec_out, *bx.expand_all(body))


MAX_ITERATIONS = 1 << 23  # the most bpf_loop runs (the kernel's BPF_MAX_LOOPS); any loop's bound


def _loop_bound(form: List, value: Form, source: Form, what: str) -> int | None:
    """The constant iteration count ``value`` stands for (checked), or None when it is not constant."""
    n = constant_value(value)
    if n is None:
        return None
    if not 0 <= to_signed(n) <= MAX_ITERATIONS:
        raise error(form, f"{what} {_shown(value, source)} is out of range",
                    expected=f"0 to {MAX_ITERATIONS} (the most iterations bpf_loop runs)")
    return n


FORMS = {
    "PROGN": _progn, "IF": _if, "WHEN": _when, "UNLESS": _when, "COND": _cond, "CASE": _case,
    "AND": _and_or, "OR": _and_or, "NOT": _not, "RETURN": _return, "DOTIMES": _dotimes,
}
