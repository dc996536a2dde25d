"""Assignment: ``setf``/``setq`` on every kind of place, and ``incf``/``decf``.

In: the form and the ``BodyExpander``. Out: core ``setq`` (variables), ``ctx-store``, ``store``
or the map update that ``maps`` builds for ``(getmap ...)``. A macro in place position is
expanded first; ``(setf P1 V1 P2 V2 ...)`` is a progn of single assignments, left to right.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..forms import Form, Int, List, Symbol, short
from . import maps, memory
from .base import L, call_macro, error

if TYPE_CHECKING:
    from .body import BodyExpander


def _setf(bx, form):
    args = form.items[1:]
    if len(args) % 2:
        raise error(form, f"{form.items[0]} needs PLACE VALUE pairs, got an odd number of arguments")
    pairs = [set_place(bx, place, value, form) for place, value in zip(args[::2], args[1::2])]
    return pairs[0] if len(pairs) == 1 else L(form.loc, "PROGN", *pairs)


def set_place(bx: BodyExpander, place: Form, value: Form, context: List) -> Form:
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
        macro = bx.scope.macros.get(name)
        if macro is not None:
            return set_place(bx, call_macro(bx.scope, macro, place), value, context)
    raise error(context, f"{short(place)} is not a place setf can assign",
                expected="a variable, (getmap MAP KEY), (ctx FIELD) or (load TYPE PTR OFF)")


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
