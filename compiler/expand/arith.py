"""Arithmetic, shifts, comparisons, casts and byte order -> binary core forms.

In: the form and the ``BodyExpander``. Out: binary core operations (``+ - * / mod logand
logior logxor << >> >>>``), ``neg``, comparisons, ``cast`` and ``bswap16/32/64``. N-ary
operators fold left; aliases (``bit-and``, ``ash-left`` ...) become the core spelling; ``ash``
needs a constant count. Divisors and shift counts that are constant are checked here.
"""

from __future__ import annotations

from ..decls import BINARY_OPS
from ..forms import Form, Int, List, Symbol, short
from ..ir import MASK64, evaluate, to_signed
from .base import L, error

_FOLDED = {"+": "+", "-": "-", "*": "*", "/": "/", "LOGAND": "LOGAND", "BIT-AND": "LOGAND",
           "LOGIOR": "LOGIOR", "BIT-OR": "LOGIOR", "LOGXOR": "LOGXOR", "BIT-XOR": "LOGXOR"}
_IDENTITY = {"+": 0, "*": 1, "LOGAND": -1, "LOGIOR": 0, "LOGXOR": 0}
_SHIFTS = {"<<": "<<", "ASH-LEFT": "<<", ">>": ">>", "ASH-RIGHT": ">>", ">>>": ">>>", "ASH-RIGHT-SIGNED": ">>>"}
_COMPARISONS = ("=", "/=", "<", "<=", ">", ">=", "S<", "S<=", "S>", "S>=")


def _arith(bx, form):
    op = _FOLDED[form.items[0].name]
    loc = form.loc
    min_args = 1 if op in ("-",) else 2 if op == "/" else 0
    args = list(bx.args(form, min_args, None, f"({form.items[0]} ARG...)"))
    if not args:
        return Int(_IDENTITY[op], loc)
    values = bx.expand_all(args)
    if op == "-" and len(values) == 1:
        return L(loc, "NEG", values[0])
    result = values[0]
    for arg, value in zip(args[1:], values[1:]):
        if op == "/":
            _check_divisor(value, arg, form)
        result = L(loc, op, result, value)
    return result


def constant_value(form: Form) -> int | None:
    """The 64-bit value of an expanded form built from integer literals by arithmetic alone, so
    that a divisor or shift count like ``(- 1 1)`` is checked as the constant it is; None otherwise."""
    if isinstance(form, Int):
        return form.value & MASK64
    if not (isinstance(form, List) and form.items and isinstance(form.items[0], Symbol)):
        return None
    head, operands = form.items[0].name, form.items[1:]
    op = "neg" if head == "NEG" else BINARY_OPS.get(head)
    if op is None or len(operands) != (1 if op == "neg" else 2):
        return None
    values = [constant_value(operand) for operand in operands]
    return None if None in values else evaluate(op, *values)


def _shown(value: Form, source: Form) -> str:
    """How an error names a constant operand: the literal itself, or the expression and its value."""
    return str(value.value) if isinstance(value, Int) else f"{short(source)} = {to_signed(constant_value(value))}"


def _check_divisor(value: Form, source: Form, form: List) -> None:
    if constant_value(value) == 0:
        raise error(form, f"division by zero ({short(source)} is 0)")


def _mod(bx, form):
    a, b = bx.args(form, 2, 2, "(mod A B)")
    divisor = bx.expand(b)
    _check_divisor(divisor, b, form)
    return L(form.loc, "MOD", bx.expand(a), divisor)


def _shift(bx, form):
    a, n = bx.args(form, 2, 2, f"({form.items[0]} VALUE COUNT)")
    count = bx.expand(n)
    value = constant_value(count)
    if value is not None and not 0 <= to_signed(value) < 64:
        raise error(form, f"shift count {_shown(count, n)} is out of range", expected="0 to 63")
    return L(form.loc, _SHIFTS[form.items[0].name], bx.expand(a), count)


def _ash(bx, form):
    a, n = bx.args(form, 2, 2, "(ash VALUE COUNT)")
    count = bx.expand(n)
    value = constant_value(count)
    if value is None:
        raise error(form, "ash needs a constant shift count (its sign picks the direction)",
                    hint="use << or >> for a computed count")
    if not -64 < to_signed(value) < 64:
        raise error(form, f"shift count {_shown(count, n)} is out of range", expected="-63 to 63")
    op = "<<" if to_signed(value) >= 0 else ">>"
    return L(form.loc, op, bx.expand(a), Int(abs(to_signed(value)), count.loc))


def _compare(bx, form):
    a, b = bx.args(form, 2, 2, f"({form.items[0]} A B)")
    return L(form.loc, form.items[0].name, bx.expand(a), bx.expand(b))


def _cast(bx, form):
    typ, value = bx.args(form, 2, 2, "(cast TYPE VALUE)")
    return L(form.loc, "CAST", bx.type_arg(typ, form), bx.expand(value))


_SWAPS = {"NTOHS": "BSWAP16", "HTONS": "BSWAP16", "NTOHL": "BSWAP32", "HTONL": "BSWAP32",
          "NTOHLL": "BSWAP64", "HTONLL": "BSWAP64"}


def _byte_order(bx, form):
    (value,) = bx.args(form, 1, 1)
    return L(form.loc, _SWAPS[form.items[0].name], bx.expand(value))


def _log2(bx, form):
    """floor(log2 X) for any 64-bit X (0 for 0 and 1): a binary search over the bit position."""
    (value,) = bx.args(form, 1, 1, "(log2 X)")
    loc = form.loc
    v, r = bx.gensym("V", loc), bx.gensym("LOG", loc)
    steps = []
    for shift in (32, 16, 8, 4, 2, 1):
        big = L(loc, ">=", v, Int(1 << shift, loc))
        step = L(loc, "PROGN", L(loc, "SETQ", v, L(loc, ">>", v, Int(shift, loc))),
                 L(loc, "SETQ", r, L(loc, "+", r, Int(shift, loc))))
        steps.append(L(loc, "IF", big, step, Int(0, loc)))
    u64 = Symbol("U64", loc)
    bindings = List((List((v, u64, bx.expand(value)), loc), List((r, u64, Int(0, loc)), loc)), loc)
    return L(loc, "LET", bindings, *steps, r)


FORMS = {
    "LOG2": _log2, **{name: _arith for name in _FOLDED}, "MOD": _mod, **{name: _shift for name in _SHIFTS}, "ASH": _ash,
    **{name: _compare for name in _COMPARISONS}, "CAST": _cast, **{name: _byte_order for name in _SWAPS},
}
