"""Binding forms: ``let``, ``let*``, ``when-let``, ``if-let`` and ``declare`` -> core ``let``.

In: the form and the ``BodyExpander``. Out: core ``(let ((VAR TYPE INIT)...) BODY...)``; a
``let*`` becomes nested single-binding lets, ``when-let`` a let + if per binding. Types come
from the binding, else from a leading ``(declare (type T VAR...))``, else NIL (inferred).
"""

from __future__ import annotations

from ..forms import Form, Int, List, Symbol, is_nil, short
from .base import L, error, is_type, progn_of


def _declared_types(bx, body: tuple, names: set[str]) -> tuple[dict[str, Symbol], tuple]:
    """Split leading ``(declare (type T v...))`` forms off ``body``."""
    types: dict[str, Symbol] = {}
    while body and isinstance(body[0], List) and body[0].head_is("DECLARE"):
        for spec in body[0].items[1:]:
            if isinstance(spec, List) and spec.head_is("IGNORE", "IGNORABLE"):
                continue
            if not (isinstance(spec, List) and spec.head_is("TYPE") and len(spec.items) >= 2):
                raise error(spec, "unsupported declaration", expected="(type T VAR...) or (ignore VAR...)")
            typ = bx.type_arg(spec.items[1], spec)
            for var in spec.items[2:]:
                if not isinstance(var, Symbol) or var.name not in names:
                    raise error(spec, f"declares the type of {short(var)}, which this form does not bind")
                types[var.name] = typ
        body = body[1:]
    return types, body


def _binding(bx, b: Form, context: Form) -> tuple[Symbol, Symbol | None, Form]:
    """One binding -> (var, explicit type or None, init form, unexpanded)."""
    shape = "(VAR INIT), (VAR TYPE INIT) or (VAR TYPE)"
    if not isinstance(b, List) or not 2 <= len(b.items) <= 3:
        raise error(b if isinstance(b, List) else context, f"malformed binding {short(b)}", expected=shape)
    var = bx.variable(b.items[0], b)
    if len(b.items) == 3:
        return var, bx.type_arg(b.items[1], b), b.items[2]
    if is_type(b.items[1]):
        return var, bx.type_arg(b.items[1], b), Int(0, b.loc)
    return var, None, b.items[1]


def _bindings(bx, bindings: Form, context: Form) -> list:
    if is_nil(bindings):
        return []
    if not isinstance(bindings, List):
        raise error(context, "the bindings must be a list", expected="((VAR INIT)...)")
    return [_binding(bx, b, context) for b in bindings.items]


def _let_form(bx, form: List, sequential: bool) -> Form:
    bindings_form, *body = bx.args(form, 1, None, f"({form.items[0]} (BINDING...) BODY...)")
    bindings = _bindings(bx, bindings_form, form)
    declared, body = _declared_types(bx, tuple(body), {v.name for v, _typ, _init in bindings})
    triples = [(v, t or declared.get(v.name) or Symbol("NIL", v.loc), bx.expand(init)) for v, t, init in bindings]
    body_forms = bx.expand_all(body)
    loc = form.loc
    if not sequential or len(triples) <= 1:
        return L(loc, "LET", List(tuple(List(t, loc) for t in triples), loc), *body_forms)
    inner: tuple = body_forms
    for triple in reversed(triples):
        inner = (L(loc, "LET", List((List(triple, loc),), loc), *inner),)
    return inner[0]


def _let(bx, form):
    return _let_form(bx, form, sequential=False)


def _let_star(bx, form):
    return _let_form(bx, form, sequential=True)


def _when_let(bx, form):
    bindings_form, *body = bx.args(form, 1, None, "(when-let ((VAR INIT)...) BODY...)")
    single = isinstance(bindings_form, List) and bindings_form.items and isinstance(bindings_form.items[0], Symbol)
    bindings = _bindings(bx, List((bindings_form,), bindings_form.loc) if single else bindings_form, form)
    loc = form.loc
    result = progn_of(bx, loc, body)
    for var, typ, init in reversed(bindings):
        test = L(loc, "IF", var, result, Int(0, loc))
        result = L(loc, "LET", List((List((var, typ or Symbol("NIL", loc), bx.expand(init)), loc),), loc), test)
    return result


def _if_let(bx, form):
    bindings_form, then, *rest = bx.args(form, 2, 3, "(if-let (VAR INIT) THEN [ELSE])")
    single = isinstance(bindings_form, List) and bindings_form.items and isinstance(bindings_form.items[0], Symbol)
    bindings = _bindings(bx, List((bindings_form,), bindings_form.loc) if single else bindings_form, form)
    loc = form.loc
    names = [v for v, _typ, _init in bindings]
    test = names[0] if len(names) == 1 else L(loc, "AND", *names)
    triples = tuple(List((v, t or Symbol("NIL", loc), bx.expand(i)), loc) for v, t, i in bindings)
    other = bx.expand(rest[0]) if rest else Int(0, loc)
    return L(loc, "LET", List(triples, loc), L(loc, "IF", test, bx.expand(then), other))


# -- assignment ----------------------------------------------------------------------------


def _declare(bx, form):
    raise error(form, "declare is only allowed at the start of a let body",
                hint="put (declare (type T VAR)) right after the let bindings")


FORMS = {"LET": _let, "LET*": _let_star, "WHEN-LET": _when_let, "IF-LET": _if_let, "DECLARE": _declare}
