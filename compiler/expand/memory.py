"""Memory and context forms: ``load store atomic-add struct-alloc memset memcpy stack-addr``,
``ctx`` and the packet bounds.

In: the form and the ``BodyExpander``. Out: core ``load``/``store``/``atomic-add`` (a computed
offset is folded into the pointer), ``ctx-load``/``ctx-store`` checked against the program
type's context layout and the verifier's access rules, ``ctx-ptr`` and ``struct-alloc``.
``memset``/``memcpy`` (constant offsets and length) unroll into the widest aligned stores
(pointers are assumed 8-byte aligned, as stack and map memory are); a run-time fill byte is
replicated with one multiply. ``(stack-addr X)`` is the address of a fresh 8-byte stack slot
holding X's current value (zero-extended), for helpers that want a pointer.
"""

from __future__ import annotations

from .. import builtins
from ..errors import Loc
from ..forms import Form, Int, List, Symbol, short
from .base import L, error, is_type


def _pointer_and_offset(bx, ptr: Form, off: Form, loc: Loc) -> tuple[Form, Int]:
    """A literal offset that fits the instruction's signed 16-bit field stays an offset; any
    other offset is added to the pointer."""
    pointer, offset = bx.expand(ptr), bx.expand(off)
    if isinstance(offset, Int) and -0x8000 <= offset.value <= 0x7FFF:
        return pointer, offset
    return L(loc, "+", pointer, offset), Int(0, loc)


def _load(bx, form):
    typ, ptr, *off = bx.args(form, 2, 3, "(load TYPE PTR [OFFSET])")
    pointer, offset = _pointer_and_offset(bx, ptr, off[0] if off else Int(0, form.loc), form.loc)
    return L(form.loc, "LOAD", bx.type_arg(typ, form), pointer, offset)


def _store(bx, form):
    typ, ptr, off, value = bx.args(form, 4, 4, "(store TYPE PTR OFFSET VALUE)")
    pointer, offset = _pointer_and_offset(bx, ptr, off, form.loc)
    return L(form.loc, "STORE", bx.type_arg(typ, form), pointer, offset, bx.expand(value))


def _atomic_add(bx, form):
    ptr, off, value, *typ = bx.args(form, 3, 4, "(atomic-add PTR OFFSET VALUE [u32|u64])")
    t = bx.type_arg(typ[0], form) if typ else Symbol("U64", form.loc)
    size = builtins.TYPES[t.name]
    if size not in (4, 8):
        raise error(form, f"atomic-add works on 4- or 8-byte values, not {t}", expected="u32 or u64")
    pointer, offset = _pointer_and_offset(bx, ptr, off, form.loc)
    if offset.value % size:
        raise error(form, f"atomic-add offset {offset.value} is not aligned to {size} bytes")
    unsigned = Symbol(builtins.UNSIGNED_BY_SIZE[size], t.loc)
    return L(form.loc, "ATOMIC-ADD", unsigned, pointer, offset, bx.expand(value))


def ctx_place(bx, form: List, store: bool = False) -> tuple[Symbol, Int]:
    """``(ctx FIELD [INDEX])`` or ``(ctx TYPE OFFSET)`` -> (access type, byte offset), checked
    for a read, or for a ``store``."""
    args = bx.args(form, 1, 2, "(ctx FIELD [INDEX]) or (ctx TYPE OFFSET)")
    struct = builtins.CTX_STRUCT_NAMES[bx.prog_type]
    if is_type(args[0]):
        if len(args) != 2:
            raise error(form, "raw context access needs an offset", expected="(ctx TYPE OFFSET)")
        return _checked_raw_ctx(bx, form, bx.type_arg(args[0], form), bx.literal(args[1], form, "the ctx offset"),
                                store)
    name = args[0].name if isinstance(args[0], Symbol) else None
    layout = builtins.CTX_LAYOUTS[bx.prog_type]
    field_ = layout.get(name)
    if field_ is None:
        raise error(form, f"{short(args[0])} is not a field of {struct}",
                    expected=", ".join(n.lower() for n in layout))
    _check_access(bx, form, name, field_, store)
    index = 0
    if field_.count > 1:
        if len(args) != 2:
            raise error(form, f"{struct} field {name.lower()} is an array and needs an index",
                        expected=f"an index from 0 to {field_.count - 1}")
        index = bx.literal(args[1], form, "the ctx index").value
        if not 0 <= index < field_.count:
            raise error(form, f"index {index} is out of range for {name.lower()}",
                        expected=f"0 to {field_.count - 1}")
    elif len(args) == 2:
        raise error(form, f"{struct} field {name.lower()} is not an array and takes no index")
    size = builtins.TYPES[field_.type]
    return Symbol(field_.type, form.loc), Int(field_.offset + index * size, form.loc)


def _check_access(bx, form: List, name: str, f: builtins.CtxField, store: bool) -> None:
    """Refuse at compile time the context accesses the verifier refuses at load time."""
    struct = builtins.CTX_STRUCT_NAMES[bx.prog_type]
    layout = builtins.CTX_LAYOUTS[bx.prog_type]
    if not f.readable:
        raise error(form, f"{struct}.{name.lower()} is not accessible to :{bx.prog_type} programs: "
                    "the verifier rejects the access",
                    expected="one of " + ", ".join(n.lower() for n, g in layout.items() if g.readable))
    if store and not f.writable:
        writable = [n.lower() for n, g in layout.items() if g.writable]
        raise error(form, f"{struct}.{name.lower()} is read-only: the verifier rejects stores to it",
                    expected="a writable field: " + (", ".join(writable) or f"none in {struct}"))


def _checked_raw_ctx(bx, form: List, typ: Symbol, off: Int,
                     store: bool = False) -> tuple[Symbol, Int]:
    struct = builtins.CTX_STRUCT_NAMES[bx.prog_type]
    found = builtins.ctx_field_at(bx.prog_type, off.value)
    if found is None:
        raise error(form, f"offset {off.value} is outside {struct}")
    name, f = found
    _check_access(bx, form, name, f, store)
    size = builtins.TYPES[f.type]
    if builtins.TYPES[typ.name] != size or (off.value - f.offset) % size:
        raise error(form, f"{struct}.{name.lower()} is a {size}-byte field at offset {f.offset}; "
                    f"this reads {builtins.TYPES[typ.name]} bytes at {off.value}",
                    expected=f"({f.type.lower()} at a multiple of {size} from {f.offset})")
    return typ, off


def _ctx(bx, form):
    typ, off = ctx_place(bx, form)
    return L(form.loc, "CTX-LOAD", typ, off)


def _ctx_load(bx, form):
    typ, off = bx.args(form, 2, 2, "(ctx-load TYPE OFFSET)")
    t, o = _checked_raw_ctx(bx, form, bx.type_arg(typ, form), bx.literal(off, form, "the ctx offset"))
    return L(form.loc, "CTX-LOAD", t, o)


def _ctx_store(bx, form):
    typ, off, value = bx.args(form, 3, 3, "(ctx-store TYPE OFFSET VALUE)")
    t, o = _checked_raw_ctx(bx, form, bx.type_arg(typ, form), bx.literal(off, form, "the ctx offset"), store=True)
    return L(form.loc, "CTX-STORE", t, o, bx.expand(value))


def _ctx_ptr(bx, form):
    bx.args(form, 0, 0, "(ctx-ptr)")
    return L(form.loc, "CTX-PTR")


_PACKET_BOUNDS = {"XDP-DATA": ("xdp", "DATA"), "XDP-DATA-END": ("xdp", "DATA-END"),
                  "TC-DATA": ("tc", "DATA"), "TC-DATA-END": ("tc", "DATA-END")}


def _packet_bound(bx, form):
    bx.args(form, 0, 0)
    prog_type, field_name = _PACKET_BOUNDS[form.items[0].name]
    if bx.prog_type != prog_type:
        other = "tc" if prog_type == "xdp" else "xdp"
        raise error(form, f"{form.items[0]} reads the {prog_type} context, but this is a :{bx.prog_type} program",
                    hint=f"use the {other}- forms ({other}-data, with-{'tc-' if other == 'tc' else ''}packet...)")
    f = builtins.CTX_LAYOUTS[prog_type][field_name]
    return L(form.loc, "CTX-LOAD", Symbol(f.type, form.loc), Int(f.offset, form.loc))


def _struct_alloc(bx, form):
    (size,) = bx.args(form, 1, 1, "(struct-alloc BYTES)")
    n = bx.literal(size, form, "the struct-alloc size")
    if not 0 < n.value <= 512:
        raise error(form, f"struct-alloc of {n.value} bytes", expected="1 to 512 bytes (the BPF stack)")
    return L(form.loc, "STRUCT-ALLOC", n)


def _struct_alloc_of(loc: Loc, size: int) -> List:
    return L(loc, "STRUCT-ALLOC", Int(size, loc))


def once(bx, value: Form, prefix: str, loc: Loc) -> tuple[list, Form]:
    """Bind ``value`` to a fresh variable unless it is a literal or a variable."""
    if isinstance(value, (Int, Symbol)):
        return [], value
    var = bx.gensym(prefix, loc)
    return [List((var, Symbol("NIL", loc), value), loc)], var


def _with(loc: Loc, bindings: list, body: list) -> Form:
    body = [*body, Int(0, loc)]
    if not bindings:
        return L(loc, "PROGN", *body)
    return L(loc, "LET", List(tuple(bindings), loc), *body)


def chunks(n: int, *starts: int):
    """(width, offset from the start) covering ``n`` bytes with the widest accesses that stay
    aligned at every start offset (the verifier refuses misaligned stack access)."""
    done = 0
    while done < n:
        width = max(w for w in (1, 2, 4, 8) if w <= n - done and all((s + done) % w == 0 for s in starts))
        yield width, done
        done += width


def _span(bx, form: List, off: Form, n: Form, what: str) -> tuple[int, int]:
    offset = bx.literal(off, form, f"the {what} offset").value
    count = bx.literal(n, form, f"the {what} length").value
    if count < 0 or not -0x8000 <= offset <= offset + count <= MAX_SPAN:
        raise error(form, f"{what} of {count} bytes at offset {offset} is out of range",
                    expected=f"0 to {MAX_SPAN} bytes from the pointer")
    return offset, count


MAX_SPAN = 0x7FFF  # load/store offsets are signed 16-bit


def _memset(bx, form):
    ptr, off, byte, n = bx.args(form, 4, 4, "(memset PTR OFFSET BYTE LENGTH)")
    loc = form.loc
    offset, count = _span(bx, form, off, n, "memset")
    bindings, p = once(bx, bx.expand(ptr), "DST", loc)
    value = bx.expand(byte)
    if isinstance(value, Int):
        fill = Int((value.value & 0xFF) * 0x0101010101010101, loc)
    else:  # the byte, replicated into all eight at run time
        fill_var = bx.gensym("FILL", loc)
        bindings.append(List((fill_var, Symbol("U64", loc),
                              L(loc, "*", L(loc, "LOGAND", value, Int(0xFF, loc)), Int(0x0101010101010101, loc))),
                             loc))
        fill = fill_var
    stores = [L(loc, "STORE", Symbol(f"U{8 * w}", loc), p, Int(offset + at, loc),
                fill if w == 8 or not isinstance(fill, Int) else Int(fill.value & ((1 << 8 * w) - 1), loc))
              for w, at in chunks(count, offset)]
    return _with(loc, bindings, stores)


def _memcpy(bx, form):
    dst, doff, src, soff, n = bx.args(form, 5, 5, "(memcpy DST DST-OFFSET SRC SRC-OFFSET LENGTH)")
    loc = form.loc
    d_off, count = _span(bx, form, doff, n, "memcpy destination")
    s_off, _count = _span(bx, form, soff, n, "memcpy source")
    d_bind, d = once(bx, bx.expand(dst), "DST", loc)
    s_bind, s = once(bx, bx.expand(src), "SRC", loc)
    moves = [L(loc, "STORE", Symbol(f"U{8 * w}", loc), d, Int(d_off + at, loc),
               L(loc, "LOAD", Symbol(f"U{8 * w}", loc), s, Int(s_off + at, loc)))
             for w, at in chunks(count, d_off, s_off)]
    return _with(loc, d_bind + s_bind, moves)


def _stack_addr(bx, form):
    (value,) = bx.args(form, 1, 1, "(stack-addr VAR)")
    loc = form.loc
    p = bx.gensym("SLOT", loc)
    return L(loc, "LET", List((List((p, Symbol("U64", loc), _struct_alloc_of(loc, 8)), loc),), loc),
             L(loc, "STORE", Symbol("U64", loc), p, Int(0, loc), bx.expand(value)), p)


FORMS = {
    "MEMSET": _memset, "MEMCPY": _memcpy, "STACK-ADDR": _stack_addr,
    "LOAD": _load, "STORE": _store, "ATOMIC-ADD": _atomic_add,
    "CTX": _ctx, "CTX-LOAD": _ctx_load, "CTX-STORE": _ctx_store, "CTX-PTR": _ctx_ptr,
    **{name: _packet_bound for name in _PACKET_BOUNDS}, "STRUCT-ALLOC": _struct_alloc,
}
