"""Assignment: ``setf``/``setq`` on every kind of place, and ``incf``/``decf``.

In: the form and the ``BodyExpander``. Out: core ``setq`` (variables), ``ctx-store``, ``store``
or the map update that ``maps`` builds for ``(getmap ...)``. A macro in place position is
expanded first; ``(setf P1 V1 P2 V2 ...)`` is a progn of single assignments, left to right.
"""

from __future__ import annotations

from ..forms import Form, Int, List, Symbol, short
from . import maps, memory
from .base import L, SetfExpander, call_macro, error


def _setf(bx, form):
    args = form.items[1:]
    if len(args) % 2:
        raise error(form, f"{form.items[0]} needs PLACE VALUE pairs, got an odd number of arguments")
    pairs = [set_place(bx, place, value, form) for place, value in zip(args[::2], args[1::2])]
    return pairs[0] if len(pairs) == 1 else L(form.loc, "PROGN", *pairs)


def set_place(bx, place: Form, value: Form, context: List) -> Form:
    """``(setf PLACE VALUE)`` for one pair; macros in place position are expanded first."""
    loc = context.loc
    if isinstance(place, Symbol):
        return L(loc, "SETQ", bx.variable(place, context), bx.expand(value))
    if isinstance(place, List) and place.items and isinstance(place.items[0], Symbol):
        name = place.items[0].name
        if name == "GETMAP":
            return maps.set_getmap(bx, place, value, context)
        if name == "CTX":
            typ, off = memory.ctx_place(bx, place, store=True)
            return L(loc, "CTX-STORE", typ, off, bx.expand(value))
        if name == "LOAD":
            load = bx.expand(place)
            return L(loc, "STORE", load.items[1], load.items[2], load.items[3], bx.expand(value))
        if name == "STRUCT-REF":
            return bx.expand(List((Symbol("STRUCT-SET", loc), *place.items[1:], value), loc))
        expander = bx.scope.setf_expanders.get(name)
        if expander is not None:
            return _user_setf(bx, expander, place, value, context)
        accessor = bx.scope.accessors.get(name)
        if accessor is not None:
            return accessor.write(bx, place, value, context)
        macro = bx.scope.macros.get(name)
        if macro is not None:
            return set_place(bx, call_macro(bx.scope, macro, place), value, context)
    raise error(context, f"{short(place)} is not a place setf can assign",
                expected="a variable, (getmap MAP KEY), (ctx FIELD), (load TYPE PTR OFF), a struct or header "
                         "field accessor, or an accessor with a defsetf")


def _user_setf(bx, expander: SetfExpander, place: List, value: Form, context: List) -> Form:
    """A ``defsetf``: the short form calls the updater with the place's arguments and the
    value; the long form evaluates each argument and the value once, into variables, and
    expands its body over them."""
    loc = context.loc
    args = list(place.items[1:])
    if expander.updater is not None:
        return bx.expand(List((expander.updater, *args, value), loc))
    temps = [bx.gensym("ARG", loc) for _arg in args]
    store = bx.gensym("NEW", loc)
    body = call_macro(bx.scope, expander.expander, place, [store, *temps])
    bindings = [List((t, a), loc) for t, a in zip([*temps, store], [*args, value])]
    return bx.expand(L(loc, "LET", List(tuple(bindings), loc), body))


def _incf(bx, form):
    place, *delta = bx.args(form, 1, 2, f"({form.items[0]} PLACE [DELTA])")
    loc = form.loc
    amount = delta[0] if delta else Int(1, loc)
    decrement = form.head_is("DECF")
    if isinstance(place, List) and place.head_is("GETMAP"):
        return maps.update_getmap(bx, place, amount, decrement, form)
    op = "-" if decrement else "+"
    return set_place(bx, place, List((Symbol(op, loc), place, amount), loc), form)


FORMS = {"SETF": _setf, "SETQ": _setf, "INCF": _incf, "DECF": _incf}
