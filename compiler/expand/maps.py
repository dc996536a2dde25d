"""Map forms (reference §2.10, §2.13): Whistler map operations -> core map forms.

In: a map form and the ``BodyExpander`` expanding the program (for its maps, gensyms and
sub-expression expansion). Out: core forms. Checks what the map's definition allows: the
map must exist, prog-arrays only serve ``tail-call``, keys wider than 8 bytes are passed
by pointer (the ``-ptr`` forms), and value-level forms need 1/2/4/8-byte values.

``getmap`` reads 0 for a missing key. ``incf`` on ``(getmap ...)``: on array maps an atomic
add to the existing slot (nothing happens out of range); on hash-like maps an atomic add, or
an insert of the delta when the key is missing. ``decf`` is a read-modify-write through
``getmap`` and ``setf getmap``. Keys and values are passed as values; lowering writes exactly
key_size / value_size bytes.
"""

from __future__ import annotations

from .. import builtins
from ..decls import MapDef
from ..errors import CompileError, Loc
from ..forms import Form, Int, List, Symbol, short


def _error(form: Form, what: str, **kw) -> CompileError:
    return CompileError(form.loc, what, form=short(form), **kw)


def _core(loc: Loc, head: str, *items: Form) -> List:
    return List((Symbol(head, loc), *items), loc)


def _nil(loc: Loc) -> Symbol:
    return Symbol("NIL", loc)


def resolve(bx, name: Form, form: List, *, for_tail_call: bool = False) -> MapDef:
    """The map ``name`` refers to, checked against how ``form`` uses it."""
    m = bx.scope.maps.get(name.name) if isinstance(name, Symbol) else None
    if m is None:
        known = ", ".join(d.lisp_name.lower() for d in bx.scope.maps.values()) or "none defined"
        raise _error(form, f"unknown map {short(name)}", expected=f"a map defined with defmap ({known})")
    if for_tail_call and m.kind != "prog-array":
        raise _error(form, f"tail-call needs a :prog-array map, but {m.lisp_name.lower()} is :{m.kind}")
    if not for_tail_call and m.kind in builtins.NOT_LOOKUPABLE:
        raise _error(form, f"{m.lisp_name.lower()} is a :{m.kind} map; {form.items[0]} cannot use it",
                     hint=f"use it with {builtins.NOT_LOOKUPABLE[m.kind]}")
    return m


def _by_value(m: MapDef, form: List, what: str, size: int) -> None:
    if size > 8:
        raise _error(form, f"{m.lisp_name.lower()} has {size}-byte {what}s, too wide to pass as a value",
                     hint=f"pass a pointer with the -ptr form ({form.items[0].name.lower()}-ptr)")


def _value_type(m: MapDef, form: List) -> str:
    vt = builtins.UNSIGNED_BY_SIZE.get(m.value_size)
    if vt is None:
        raise _error(form, f"{form.items[0]} needs 1, 2, 4 or 8-byte values, but {m.lisp_name.lower()} "
                     f"has {m.value_size}-byte values", hint="use map-lookup and load the fields you need")
    return vt


def _lookup(m: MapDef, key: Form, loc: Loc) -> List:
    """Core lookup; wide keys are pointers already."""
    op = "MAP-LOOKUP-PTR" if m.key_size > 8 else "MAP-LOOKUP"
    return _core(loc, op, Symbol(m.lisp_name, loc), key)


def _update(bx, m: MapDef, key: Form, value: Form, flags: Form, loc: Loc) -> Form:
    """Core update of a scalar value; a wide key needs the value in memory too."""
    if m.key_size <= 8:
        return _core(loc, "MAP-UPDATE", Symbol(m.lisp_name, loc), key, value, flags)
    buf = bx.gensym("VALUE", loc)
    vt = Symbol(builtins.UNSIGNED_BY_SIZE[m.value_size], loc)
    return _core(loc, "LET", List((List((buf, Symbol("U64", loc), _core(loc, "STRUCT-ALLOC", Int(m.value_size, loc))),
                                        loc),), loc),
                 _core(loc, "STORE", vt, buf, Int(0, loc), value),
                 _core(loc, "MAP-UPDATE-PTR", Symbol(m.lisp_name, loc), key, buf, flags))


def _once(bx, value: Form, prefix: str, loc: Loc) -> tuple[list, Form]:
    """Bind ``value`` to a fresh variable unless it is a literal or variable (cheap to repeat)."""
    if isinstance(value, (Int, Symbol)):
        return [], value
    var = bx.gensym(prefix, loc)
    return [List((var, _nil(loc), value), loc)], var


def _let(loc: Loc, bindings: list, *body: Form) -> Form:
    if not bindings:
        return body[0] if len(body) == 1 else _core(loc, "PROGN", *body)
    return _core(loc, "LET", List(tuple(bindings), loc), *body)


# -- value-level forms ---------------------------------------------------------------------


def _map_lookup(bx, form):
    name, key = bx.args(form, 2, 2, "(map-lookup MAP KEY)")
    m = resolve(bx, name, form)
    _by_value(m, form, "key", m.key_size)
    return _core(form.loc, "MAP-LOOKUP", Symbol(m.lisp_name, form.loc), bx.expand(key))


def _map_update(bx, form):
    name, key, value, *flags = bx.args(form, 3, 4, "(map-update MAP KEY VALUE [FLAGS])")
    m = resolve(bx, name, form)
    _by_value(m, form, "key", m.key_size)
    _by_value(m, form, "value", m.value_size)
    return _core(form.loc, "MAP-UPDATE", Symbol(m.lisp_name, form.loc), bx.expand(key), bx.expand(value),
                 bx.expand(flags[0]) if flags else Int(0, form.loc))


def _map_delete(bx, form):
    name, key = bx.args(form, 2, 2, "(map-delete MAP KEY)")
    m = resolve(bx, name, form)
    _by_value(m, form, "key", m.key_size)
    return _core(form.loc, "MAP-DELETE", Symbol(m.lisp_name, form.loc), bx.expand(key))


def _pointer_form(arity_min: int, arity_max: int, shape: str, default_flags: bool = False):
    def handler(bx, form):
        name, *rest = bx.args(form, arity_min, arity_max, shape)
        m = resolve(bx, name, form)
        args = list(bx.expand_all(rest))
        if default_flags and len(args) == arity_max - 2:
            args.append(Int(0, form.loc))
        return _core(form.loc, form.items[0].name, Symbol(m.lisp_name, form.loc), *args)
    return handler


def _getmap(bx, form):
    name, key = bx.args(form, 2, 2, "(getmap MAP KEY)")
    m = resolve(bx, name, form)
    vt = _value_type(m, form)
    loc = form.loc
    p = bx.gensym("P", loc)
    return _core(loc, "LET", List((List((p, Symbol("U64", loc), _lookup(m, bx.expand(key), loc)), loc),), loc),
                 _core(loc, "IF", p, _core(loc, "LOAD", Symbol(vt, loc), p, Int(0, loc)), Int(0, loc)))


def set_getmap(bx, place: List, value: Form, context: List, flags: Form | None = None) -> Form:
    """``(setf (getmap MAP KEY) VALUE)``: insert or overwrite."""
    name, key = bx.args(place, 2, 2, "(getmap MAP KEY)")
    m = resolve(bx, name, place)
    _value_type(m, place)
    loc = context.loc
    return _update(bx, m, bx.expand(key), bx.expand(value), flags if flags is not None else Int(0, loc), loc)


def _setmap(bx, form):
    name, key, value, *flags = bx.args(form, 3, 4, "(setmap MAP KEY VALUE [FLAGS])")
    place = List((Symbol("GETMAP", form.loc), name, key), form.loc)
    return set_getmap(bx, place, value, form, bx.expand(flags[0]) if flags else None)


def _remmap(bx, form):
    name, key = bx.args(form, 2, 2, f"({form.items[0]} MAP KEY)")
    m = resolve(bx, name, form)
    op = "MAP-DELETE-PTR" if m.key_size > 8 else "MAP-DELETE"
    return _core(form.loc, op, Symbol(m.lisp_name, form.loc), bx.expand(key))


def update_getmap(bx, place: List, delta: Form, decrement: bool, context: List) -> Form:
    """``(incf (getmap M K) D)`` / ``(decf (getmap M K) D)``."""
    name, key = bx.args(place, 2, 2, "(getmap MAP KEY)")
    m = resolve(bx, name, place)
    vt = Symbol(_value_type(m, place), context.loc)
    loc = context.loc
    key_bindings, k = _once(bx, bx.expand(key), "KEY", loc)
    delta_bindings, d = _once(bx, bx.expand(delta), "DELTA", loc)
    bindings = key_bindings + delta_bindings
    p = bx.gensym("P", loc)
    zero = Int(0, loc)
    if decrement:
        current = _core(loc, "IF", p, _core(loc, "LOAD", vt, p, zero), zero)
        bind_p = List((List((p, Symbol("U64", loc), _lookup(m, k, loc)), loc),), loc)
        new_value = _core(loc, "-", _core(loc, "LET", bind_p, current), d)
        return _let(loc, bindings, _update(bx, m, k, new_value, zero, loc))
    if vt.name in ("U32", "U64"):
        add = _core(loc, "ATOMIC-ADD", vt, p, zero, d)
    else:  # BPF has no 1- or 2-byte atomics: a plain read-modify-write of the slot
        add = _core(loc, "STORE", vt, p, zero, _core(loc, "+", _core(loc, "LOAD", vt, p, zero), d))
    missing = zero if m.is_array else _update(bx, m, k, d, zero, loc)
    found = _core(loc, "LET", List((List((p, Symbol("U64", loc), _lookup(m, k, loc)), loc),), loc),
                  _core(loc, "IF", p, add, missing))
    return _let(loc, bindings, found)


def _tail_call(bx, form):
    name, index = bx.args(form, 2, 2, "(tail-call PROG-ARRAY INDEX)")
    m = resolve(bx, name, form, for_tail_call=True)
    return _core(form.loc, "TAIL-CALL", Symbol(m.lisp_name, form.loc), bx.expand(index))


FORMS = {
    "MAP-LOOKUP": _map_lookup,
    "MAP-UPDATE": _map_update,
    "MAP-DELETE": _map_delete,
    "MAP-LOOKUP-PTR": _pointer_form(2, 2, "(map-lookup-ptr MAP KEY-POINTER)"),
    "MAP-UPDATE-PTR": _pointer_form(3, 4, "(map-update-ptr MAP KEY-POINTER VALUE-POINTER [FLAGS])",
                                    default_flags=True),
    "MAP-DELETE-PTR": _pointer_form(2, 2, "(map-delete-ptr MAP KEY-POINTER)"),
    "GETMAP": _getmap,
    "SETMAP": _setmap,
    "REMMAP": _remmap,
    "DELMAP": _remmap,
    "TAIL-CALL": _tail_call,
}
