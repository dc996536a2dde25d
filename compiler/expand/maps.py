"""Map forms (reference §2.10, §2.13): Whistler map operations -> core map forms.

In: a map form and the ``BodyExpander`` expanding the program (for its maps, structs, gensyms
and sub-expression expansion). Out: core forms. Checks what the map's definition allows: the
map must exist, prog-arrays only serve ``tail-call``, ring buffers only the ringbuf forms.

Keys and values are passed by value, except where they live in memory and the program holds
a pointer: a map declared ``:key-type STRUCT`` / ``:value-type STRUCT``, keys wider than 8
bytes, and any literal ``(make-NAME ...)`` argument. The raw forms pick the ``-ptr`` core form
by that rule; when only one side is a pointer the other is written to a zeroed stack buffer
first. By value, lowering writes exactly key_size / value_size bytes, zero-extended.

``getmap`` reads 0 for a missing key; on a struct-valued map it is the value's pointer (0 when
missing), on values wider than 8 bytes the first 8 bytes. ``(setf (getmap M K) V)`` inserts or
overwrites (V is a pointer on a struct-valued map). ``incf`` on ``(getmap ...)`` (also spelled
``incf-map``): on array maps an atomic add to the existing slot (nothing happens out of
range); on hash-like maps an atomic add, or an insert of the delta when the key is missing.
``decf`` is a read-modify-write through ``getmap`` and ``setf getmap``.
"""

from __future__ import annotations

from .. import builtins
from ..decls import MapDef
from ..errors import CompileError, Loc
from ..forms import Form, Int, List, Symbol, short
from ..records import dataclass
from .base import L, error
from .memory import chunks, once
from .structs import is_constructor_call


def _nil(loc: Loc) -> Symbol:
    return Symbol("NIL", loc)


def resolve(bx, name: Form, form: List, *, for_tail_call: bool = False) -> MapDef:
    """The map ``name`` refers to, checked against how ``form`` uses it."""
    m = bx.scope.maps.get(name.name) if isinstance(name, Symbol) else None
    if m is None:
        known = ", ".join(d.lisp_name.lower() for d in bx.scope.maps.values()) or "none defined"
        raise error(form, f"unknown map {short(name)}", expected=f"a map defined with defmap ({known})")
    if for_tail_call and m.kind != "prog-array":
        raise error(form, f"tail-call needs a :prog-array map, but {m.lisp_name.lower()} is :{m.kind}")
    if not for_tail_call and m.kind in builtins.NOT_LOOKUPABLE:
        raise error(form, f"{m.lisp_name.lower()} is a :{m.kind} map; {form.items[0]} cannot use it",
                    hint=f"use it with {builtins.NOT_LOOKUPABLE[m.kind]}")
    return m


def _value_type(m: MapDef, form: List) -> str:
    """The type a scalar read or write of ``m``'s values uses (the first 8 bytes of wider ones)."""
    if m.value_struct is not None:
        raise error(form, f"{m.lisp_name.lower()} holds {m.value_struct.lower()} structs; "
                    f"{form.items[0]} cannot treat them as a number",
                    hint=f"(getmap {m.lisp_name.lower()} KEY) is a pointer to the struct: "
                         f"read or update its fields, e.g. (incf ({m.value_struct.lower()}-FIELD P))")
    if m.value_size > 8:
        return "U64"
    vt = builtins.UNSIGNED_BY_SIZE.get(m.value_size)
    if vt is None:
        raise error(form, f"{form.items[0]} needs 1, 2, 4, 8 or more bytes of value, but {m.lisp_name.lower()} "
                    f"has {m.value_size}-byte values", hint="use map-lookup and load the bytes you need")
    return vt


@dataclass
class _Operand:
    """A key or value for a map helper: the expanded form and whether it is a pointer to it."""

    form: Form
    pointer: bool


def _key(bx, m: MapDef, source: Form) -> _Operand:
    return _Operand(bx.expand(source), m.keys_by_pointer or is_constructor_call(bx.scope, source))


def _value(bx, m: MapDef, source: Form) -> _Operand:
    return _Operand(bx.expand(source), m.value_struct is not None or is_constructor_call(bx.scope, source))


STACK_BYTES = 512  # the BPF stack, where a key or value passed by value is written


def _by_value(m: MapDef, operand: _Operand, what: str, loc: Loc) -> _Operand:
    """``operand``, unless it must be written to the stack and cannot fit there."""
    size = m.key_size if what == "key" else m.value_size
    if not operand.pointer and size > STACK_BYTES:
        raise CompileError(loc, f"{m.lisp_name.lower()} has {size}-byte {what}s: too large to pass by value "
                           f"through the {STACK_BYTES}-byte BPF stack",
                           hint=f"pass a pointer to the {what} (map-lookup-ptr / map-update-ptr), "
                                "e.g. into another map's value")
    return operand


def _in_memory(bx, value: Form, size: int, loc: Loc) -> tuple[list, Symbol, list]:
    """(bindings, pointer, stores) putting ``value`` zero-extended into ``size`` zeroed stack bytes."""
    buf = bx.gensym("VALUE", loc)
    bindings = [List((buf, Symbol("U64", loc), L(loc, "STRUCT-ALLOC", Int(size, loc))), loc)]
    if size in (1, 2, 4) or size >= 8:
        return bindings, buf, [L(loc, "STORE", Symbol(builtins.UNSIGNED_BY_SIZE[min(size, 8)], loc), buf,
                                 Int(0, loc), value)]
    value_bindings, v = once(bx, value, "PART", loc)
    stores = [L(loc, "STORE", Symbol(builtins.UNSIGNED_BY_SIZE[w], loc), buf, Int(at, loc),
                L(loc, ">>", v, Int(8 * at, loc)) if at else v) for w, at in chunks(size, 0)]
    return value_bindings + bindings, buf, stores


def _let(loc: Loc, bindings: list, *body: Form) -> Form:
    if not bindings:
        return body[0] if len(body) == 1 else L(loc, "PROGN", *body)
    return L(loc, "LET", List(tuple(bindings), loc), *body)


def _lookup(m: MapDef, key: _Operand, loc: Loc) -> List:
    _by_value(m, key, "key", loc)
    return L(loc, "MAP-LOOKUP-PTR" if key.pointer else "MAP-LOOKUP", Symbol(m.lisp_name, loc), key.form)


def _delete(m: MapDef, key: _Operand, loc: Loc) -> List:
    _by_value(m, key, "key", loc)
    return L(loc, "MAP-DELETE-PTR" if key.pointer else "MAP-DELETE", Symbol(m.lisp_name, loc), key.form)


def _update(bx, m: MapDef, key: _Operand, value: _Operand, flags: Form, loc: Loc) -> Form:
    """Core update; when only one of key and value is a pointer, the other goes to memory."""
    _by_value(m, key, "key", loc)
    _by_value(m, value, "value", loc)
    name = Symbol(m.lisp_name, loc)
    if not key.pointer and not value.pointer:
        return L(loc, "MAP-UPDATE", name, key.form, value.form, flags)
    bindings, stores, args = [], [], []
    for operand, size in ((key, m.key_size), (value, m.value_size)):
        if operand.pointer:
            args.append(operand.form)
        else:
            b, ptr, s = _in_memory(bx, operand.form, size, loc)
            bindings += b
            stores += s
            args.append(ptr)
    return _let(loc, bindings, *stores, L(loc, "MAP-UPDATE-PTR", name, *args, flags))


# -- raw forms -----------------------------------------------------------------------------


def _map_lookup(bx, form):
    name, key = bx.args(form, 2, 2, "(map-lookup MAP KEY)")
    m = resolve(bx, name, form)
    return _lookup(m, _key(bx, m, key), form.loc)


def _map_update(bx, form):
    name, key, value, *flags = bx.args(form, 3, 4, "(map-update MAP KEY VALUE [FLAGS])")
    m = resolve(bx, name, form)
    return _update(bx, m, _key(bx, m, key), _value(bx, m, value),
                   bx.expand(flags[0]) if flags else Int(0, form.loc), form.loc)


def _map_delete(bx, form):
    name, key = bx.args(form, 2, 2, "(map-delete MAP KEY)")
    m = resolve(bx, name, form)
    return _delete(m, _key(bx, m, key), form.loc)


def _pointer_form(arity_min: int, arity_max: int, shape: str, default_flags: bool = False):
    def handler(bx, form):
        name, *rest = bx.args(form, arity_min, arity_max, shape)
        m = resolve(bx, name, form)
        args = list(bx.expand_all(rest))
        if default_flags and len(args) == arity_max - 2:
            args.append(Int(0, form.loc))
        return L(form.loc, form.items[0].name, Symbol(m.lisp_name, form.loc), *args)
    return handler


# -- getmap and friends --------------------------------------------------------------------


def _getmap(bx, form):
    name, key = bx.args(form, 2, 2, "(getmap MAP KEY)")
    m = resolve(bx, name, form)
    loc = form.loc
    lookup = _lookup(m, _key(bx, m, key), loc)
    if m.value_struct is not None:
        return lookup
    vt = _value_type(m, form)
    p = bx.gensym("P", loc)
    return L(loc, "LET", List((List((p, Symbol("U64", loc), lookup), loc),), loc),
             L(loc, "IF", p, L(loc, "LOAD", Symbol(vt, loc), p, Int(0, loc)), Int(0, loc)))


def set_getmap(bx, place: List, value: Form, context: List, flags: Form | None = None) -> Form:
    """``(setf (getmap MAP KEY) VALUE)``: insert or overwrite."""
    name, key = bx.args(place, 2, 2, "(getmap MAP KEY)")
    m = resolve(bx, name, place)
    if m.value_struct is None:
        _value_type(m, place)
    loc = context.loc
    return _update(bx, m, _key(bx, m, key), _value(bx, m, value), flags if flags is not None else Int(0, loc), loc)


def _setmap(bx, form):
    name, key, value, *flags = bx.args(form, 3, 4, "(setmap MAP KEY VALUE [FLAGS])")
    place = List((Symbol("GETMAP", form.loc), name, key), form.loc)
    return set_getmap(bx, place, value, form, bx.expand(flags[0]) if flags else None)


def _remmap(bx, form):
    name, key = bx.args(form, 2, 2, f"({form.items[0]} MAP KEY)")
    m = resolve(bx, name, form)
    return _delete(m, _key(bx, m, key), form.loc)


def update_getmap(bx, place: List, delta: Form, decrement: bool, context: List) -> Form:
    """``(incf (getmap M K) D)`` / ``(decf (getmap M K) D)``."""
    name, key = bx.args(place, 2, 2, "(getmap MAP KEY)")
    m = resolve(bx, name, place)
    loc = context.loc
    vt = Symbol(_value_type(m, context), loc)
    key_op = _key(bx, m, key)
    key_bindings, key_op.form = once(bx, key_op.form, "KEY", loc)
    delta_bindings, d = once(bx, bx.expand(delta), "DELTA", loc)
    bindings = key_bindings + delta_bindings
    p = bx.gensym("P", loc)
    zero = Int(0, loc)
    bind_p = List((List((p, Symbol("U64", loc), _lookup(m, key_op, loc)), loc),), loc)
    if decrement:
        current = L(loc, "IF", p, L(loc, "LOAD", vt, p, zero), zero)
        new_value = _Operand(L(loc, "-", L(loc, "LET", bind_p, current), d), False)
        return _let(loc, bindings, _update(bx, m, key_op, new_value, zero, loc))
    if vt.name in ("U32", "U64"):
        add = L(loc, "ATOMIC-ADD", vt, p, zero, d)
    else:  # BPF has no 1- or 2-byte atomics: a plain read-modify-write of the slot
        add = L(loc, "STORE", vt, p, zero, L(loc, "+", L(loc, "LOAD", vt, p, zero), d))
    missing = zero if m.is_array else _update(bx, m, key_op, _Operand(d, False), zero, loc)
    return _let(loc, bindings, L(loc, "LET", bind_p, L(loc, "IF", p, add, missing)))


def _incf_map(bx, form):
    name, key, *delta = bx.args(form, 2, 3, "(incf-map MAP KEY [DELTA])")
    place = List((Symbol("GETMAP", form.loc), name, key), form.loc)
    return update_getmap(bx, place, delta[0] if delta else Int(1, form.loc), False, form)


def _tail_call(bx, form):
    name, index = bx.args(form, 2, 2, "(tail-call PROG-ARRAY INDEX)")
    m = resolve(bx, name, form, for_tail_call=True)
    return L(form.loc, "TAIL-CALL", Symbol(m.lisp_name, form.loc), bx.expand(index))


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
    "INCF-MAP": _incf_map,
    "TAIL-CALL": _tail_call,
}
