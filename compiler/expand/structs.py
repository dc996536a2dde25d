"""Structs and unions (reference §1.5): ``defstruct``/``defunion`` layouts and the forms they generate.

In: a top-level ``defstruct`` or ``defunion`` form (``define_struct``/``define_union`` return
the ``decls.StructDef`` and the accessors it generates), or a body form that uses a struct.
Out: core forms.

Layout: fields in order, each aligned to its element size (1, 2, 4, 8; an array to its
element's), the size padded to the largest alignment, as C lays the struct out. Field types
are u8 u16 u32 u64 and ``(array TYPE COUNT)``. Generated forms, for ``(defstruct NAME ...)``:

  (make-NAME [:FIELD VALUE]...)   zeroed stack memory of sizeof(NAME); the value is its pointer
  (NAME-FIELD P)                  scalar field: (load T P OFF); setf-able (store)
  (NAME-FIELD P INDEX)            array element; a constant INDEX is range-checked
  (NAME-FIELD-PTR P)              array field's address, (+ P OFF)
  (sizeof NAME)                   the size, an integer (also u8..u64)
  (struct-ref NAME P FIELD [INDEX]) / (struct-set NAME P FIELD [INDEX] VALUE)

A union ``(defunion NAME S1 S2...)`` is as large as its largest member; ``make-NAME`` allocates
it and the members' accessors work on its pointer.
"""

from __future__ import annotations

from .. import builtins
from ..decls import FieldDef, StructDef
from ..forms import Form, Int, List, Symbol, mangle, short
from ..macro_eval import MacroError
from ..records import dataclass
from .base import Accessor, L, error

# load/store offsets are signed 16-bit, so no field may start beyond this.
MAX_OFFSET = 0x7FFF
_FIELD_TYPES = ("U8", "U16", "U32", "U64")
# Field types people write from C or other dialects, with what Whistler calls them.
_TYPE_HINTS = {
    "CHAR": "u8", "UNSIGNED-CHAR": "u8", "UINT8_T": "u8", "__U8": "u8", "BYTE": "u8", "BOOL": "u8",
    "SHORT": "u16", "UINT16_T": "u16", "__U16": "u16", "INT": "u32", "UNSIGNED": "u32",
    "UINT32_T": "u32", "__U32": "u32", "UINT": "u32", "LONG": "u64", "UINT64_T": "u64", "__U64": "u64",
    "SIZE_T": "u64", "POINTER": "u64", "PTR": "u64",
}


def constant(scope, expr: Form, context: Form, what: str) -> int:
    """A compile-time integer: a literal, a constant or an expression of them; ``(sizeof S)``
    may appear in it."""
    try:
        value = scope.interp.eval_toplevel(fold_sizeof(scope, expr))
    except MacroError as e:
        raise error(context, f"cannot compute {what}: {e}") from None
    if not isinstance(value, Int):
        raise error(context, f"{what} must be an integer, not {short(value)}")
    return value.value


def fold_sizeof(scope, expr: Form) -> Form:
    """``expr`` with every ``(sizeof NAME)`` replaced by the size, for compile-time evaluation."""
    if isinstance(expr, List) and expr.head_is("SIZEOF") and len(expr.items) == 2:
        return Int(sizeof(scope, expr.items[1], expr), expr.loc)
    if isinstance(expr, List) and not expr.head_is("QUOTE"):
        return List(tuple(fold_sizeof(scope, i) for i in expr.items), expr.loc)
    return expr


def sizeof(scope, name: Form, context: Form) -> int:
    if isinstance(name, Symbol) and name.name in builtins.TYPES:
        return builtins.TYPES[name.name]
    return struct_named(scope, name, context).size


def struct_named(scope, name: Form, context: Form) -> StructDef:
    s = scope.structs.get(name.name) if isinstance(name, Symbol) else None
    if s is None:
        known = ", ".join(k.lower() for k in scope.structs) or "none defined"
        raise error(context, f"unknown struct {short(name)}",
                    expected=f"a struct defined with defstruct or defunion before this form ({known})")
    return s


def field_named(struct: StructDef, name: Form, context: Form) -> FieldDef:
    f = struct.field_named(name.name) if isinstance(name, Symbol) else None
    if f is None:
        what = f"union {struct.lisp_name.lower()} has no fields of its own" if struct.is_union else \
            f"struct {struct.lisp_name.lower()} has no field {short(name)}"
        fields = ", ".join(x.lisp_name.lower() for x in struct.fields) or "its members' accessors"
        raise error(context, what, expected="one of " + fields)
    return f


# -- definitions ---------------------------------------------------------------------------


def _field_type(scope, spec: Form, field: List) -> tuple[str, int]:
    """(element type, count): count 0 for a scalar."""
    if isinstance(spec, Symbol) and spec.name in _FIELD_TYPES:
        return spec.name, 0
    if isinstance(spec, List) and spec.head_is("ARRAY"):
        if len(spec.items) != 3 or not (isinstance(spec.items[1], Symbol) and spec.items[1].name in _FIELD_TYPES):
            raise error(field, f"bad array field type {short(spec)}", expected="(array u8|u16|u32|u64 COUNT)")
        count = constant(scope, spec.items[2], field, "the array length")
        if count < 1:
            raise error(field, f"array length {count} must be at least 1")
        return spec.items[1].name, count
    raise error(field, f"bad field type {short(spec)}", expected="u8, u16, u32, u64 or (array TYPE COUNT)",
                hint=_type_hint(scope, spec))


def _type_hint(scope, spec: Form) -> str | None:
    name = spec.name if isinstance(spec, Symbol) else None
    if name is None:
        return None
    if name in _TYPE_HINTS:
        return f"Whistler calls this type {_TYPE_HINTS[name]}"
    if name in builtins.TYPES:
        return f"fields are unsigned; declare it u{name[1:]} and compare with s< s> when it holds a signed value"
    if name in scope.structs:
        return (f"structs do not nest; inline the fields of {name.lower()}, or reserve its bytes with "
                f"(array u8 {scope.structs[name].size}) and address them with NAME-FIELD-PTR")
    return None


def define_struct(scope, form: List) -> StructDef:
    if len(form.items) < 2 or not isinstance(form.items[1], Symbol) or form.items[1].is_keyword:
        raise error(form, "malformed defstruct", expected="(defstruct NAME (FIELD TYPE)...)")
    name = form.items[1].name
    if len(form.items) == 2:
        raise error(form, f"struct {name.lower()} has no fields", expected="(defstruct NAME (FIELD TYPE)...)")
    fields: list[FieldDef] = []
    offset, align = 0, 1
    for spec in form.items[2:]:
        if not (isinstance(spec, List) and len(spec.items) == 2 and isinstance(spec.items[0], Symbol)
                and not spec.items[0].is_keyword):
            raise error(spec if isinstance(spec, List) else form, f"malformed struct field {short(spec)}",
                        expected="(FIELD TYPE) with TYPE u8 u16 u32 u64 or (array TYPE COUNT)")
        fname = spec.items[0].name
        if any(f.lisp_name == fname for f in fields):
            raise error(spec, f"field {fname.lower()} appears twice in struct {name.lower()}")
        elem, count = _field_type(scope, spec.items[1], spec)
        size = builtins.TYPES[elem]
        offset = -(-offset // size) * size
        f = FieldDef(mangle(fname), fname, elem, count, offset)
        if offset + f.size > MAX_OFFSET:
            raise error(spec, f"struct {name.lower()} is too large: field {fname.lower()} ends at byte "
                        f"{offset + f.size}", expected=f"at most {MAX_OFFSET} bytes")
        fields.append(f)
        offset += f.size
        align = max(align, size)
    return StructDef(mangle(name), name, -(-offset // align) * align, tuple(fields), form.loc)


def define_union(scope, form: List) -> StructDef:
    if len(form.items) < 3 or not isinstance(form.items[1], Symbol) or form.items[1].is_keyword:
        raise error(form, "malformed defunion", expected="(defunion NAME STRUCT...)")
    members = [struct_named(scope, m, form) for m in form.items[2:]]
    if len({m.lisp_name for m in members}) != len(members):
        raise error(form, "a struct appears twice in the union")
    return StructDef(mangle(form.items[1].name), form.items[1].name, max(m.size for m in members), (), form.loc,
                     tuple(m.lisp_name for m in members))


def accessors(struct: StructDef) -> dict[str, Accessor]:
    """The forms ``struct`` generates, by name."""
    out: dict[str, Accessor] = {f"MAKE-{struct.lisp_name}": Constructor(struct)}
    for f in struct.fields:
        out[f"{struct.lisp_name}-{f.lisp_name}"] = FieldAccess(struct, f)
    for f in struct.fields:
        ptr = f"{struct.lisp_name}-{f.lisp_name}-PTR"
        if ptr in out:
            raise error(Symbol(ptr, struct.loc), f"struct {struct.lisp_name.lower()} has fields named both "
                        f"{f.lisp_name.lower()}-ptr and {f.lisp_name.lower()}: {ptr.lower()} would mean both",
                        hint="rename one of them")
        out[ptr] = FieldPointer(struct, f)
    return out


# -- generated forms -----------------------------------------------------------------------


def _element(bx, struct: StructDef, f: FieldDef, ptr: Form, index: Form | None, context: List) -> tuple[Form, Int]:
    """(pointer, offset) of a scalar field or of one element of an array field."""
    loc = context.loc
    pointer = bx.expand(ptr)
    if not f.count:
        if index is not None:
            raise error(context, f"{struct.lisp_name.lower()}.{f.lisp_name.lower()} is not an array and takes no index")
        return pointer, Int(f.offset, loc)
    if index is None:
        raise error(context, f"{struct.lisp_name.lower()}.{f.lisp_name.lower()} is an array of {f.count}: "
                    "give an index", expected=f"an index from 0 to {f.count - 1}",
                    hint=f"its address is ({struct.lisp_name.lower()}-{f.lisp_name.lower()}-ptr P)")
    i = bx.expand(index)
    if isinstance(i, Int):
        if not 0 <= i.value < f.count:
            raise error(context, f"index {i.value} is out of range for "
                        f"{struct.lisp_name.lower()}.{f.lisp_name.lower()}", expected=f"0 to {f.count - 1}")
        return pointer, Int(f.offset + i.value * f.elem_size, loc)
    scaled = i if f.elem_size == 1 else L(loc, "<<", i, Int(f.elem_size.bit_length() - 1, loc))
    # (p + i*size) + OFF: the constant ends up in the instruction's offset
    return L(loc, "+", L(loc, "+", pointer, scaled), Int(f.offset, loc)), Int(0, loc)


@dataclass
class FieldAccess(Accessor):
    struct: StructDef
    field: FieldDef
    what = "struct field accessor"

    def _place(self, bx, place: List) -> tuple[Form, Int]:
        n = 2 if self.field.count else 1
        shape = f"({place.items[0]} POINTER{' INDEX' if n == 2 else ''})"
        args = bx.args(place, n, n, shape)
        return _element(bx, self.struct, self.field, args[0], args[1] if n == 2 else None, place)

    def read(self, bx, form: List) -> Form:
        pointer, offset = self._place(bx, form)
        return L(form.loc, "LOAD", Symbol(self.field.type, form.loc), pointer, offset)

    def write(self, bx, place: List, value: Form, context: List) -> Form:
        pointer, offset = self._place(bx, place)
        return L(context.loc, "STORE", Symbol(self.field.type, context.loc), pointer, offset, bx.expand(value))


@dataclass
class FieldPointer(Accessor):
    struct: StructDef
    field: FieldDef
    what = "field address"

    def read(self, bx, form: List) -> Form:
        (ptr,) = bx.args(form, 1, 1, f"({form.items[0]} POINTER)")
        s, f = self.struct.lisp_name.lower(), self.field.lisp_name.lower()
        if not self.field.count:
            raise error(form, f"{form.items[0]} does not exist: {s}.{f} is a scalar field, -ptr is for array fields",
                        hint=f"read it with ({s}-{f} P); its address is (+ P {self.field.offset})")
        return L(form.loc, "+", bx.expand(ptr), Int(self.field.offset, form.loc))


@dataclass
class Constructor(Accessor):
    struct: StructDef
    what = "struct constructor"

    def read(self, bx, form: List) -> Form:
        loc = form.loc
        alloc = L(loc, "STRUCT-ALLOC", Int(self.struct.size, loc))
        inits = form.items[1:]
        if not inits:
            return alloc
        if len(inits) % 2 or not all(isinstance(k, Symbol) and k.is_keyword for k in inits[::2]):
            raise error(form, f"{form.items[0]} takes :FIELD VALUE pairs",
                        expected=f"({form.items[0]} [:FIELD VALUE]...)")
        p = bx.gensym("STRUCT", loc)
        stores = []
        for key, value in zip(inits[::2], inits[1::2]):
            f = field_named(self.struct, Symbol(key.name[1:], key.loc), form)
            if f.count:
                raise error(form, f"array field {f.lisp_name.lower()} cannot be set by {form.items[0]}",
                            hint="set its elements with (setf (NAME-FIELD P INDEX) VALUE)")
            stores.append(L(loc, "STORE", Symbol(f.type, loc), p, Int(f.offset, loc), bx.expand(value)))
        return L(loc, "LET", List((List((p, Symbol("U64", loc), alloc), loc),), loc), *stores, p)


def is_constructor_call(scope, form: Form) -> bool:
    """Is ``form`` literally ``(make-NAME ...)``: a pointer to a struct, whatever the map says."""
    return (isinstance(form, List) and bool(form.items) and isinstance(form.items[0], Symbol)
            and isinstance(scope.accessors.get(form.items[0].name), Constructor))


def _sizeof(bx, form):
    (name,) = bx.args(form, 1, 1, "(sizeof STRUCT)")
    return Int(sizeof(bx.scope, name, form), form.loc)


def _struct_ref(bx, form):
    args = bx.args(form, 3, 4, "(struct-ref STRUCT POINTER FIELD [INDEX])")
    struct = struct_named(bx.scope, args[0], form)
    f = field_named(struct, args[2], form)
    pointer, offset = _element(bx, struct, f, args[1], args[3] if len(args) == 4 else None, form)
    return L(form.loc, "LOAD", Symbol(f.type, form.loc), pointer, offset)


def _struct_set(bx, form):
    args = bx.args(form, 4, 5, "(struct-set STRUCT POINTER FIELD [INDEX] VALUE)")
    struct = struct_named(bx.scope, args[0], form)
    f = field_named(struct, args[2], form)
    pointer, offset = _element(bx, struct, f, args[1], args[3] if len(args) == 5 else None, form)
    return L(form.loc, "STORE", Symbol(f.type, form.loc), pointer, offset, bx.expand(args[-1]))


FORMS = {"SIZEOF": _sizeof, "STRUCT-REF": _struct_ref, "STRUCT-SET": _struct_set}
