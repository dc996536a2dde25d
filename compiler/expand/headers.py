"""Header accessors (reference §3): the protocol library's and the user's ``defheader``.

In: a top-level ``(defheader NAME (FIELD :offset N :type T [:net-order BOOL])...)`` form
(``define``), or a body form ``(NAME-FIELD PTR)`` / ``(setf (NAME-FIELD PTR) V)``. Out: the
accessors ``define`` generates, and core ``load``/``store`` at PTR + N. A ``:net-order`` field
of 2, 4 or 8 bytes is byte-swapped on the way in and out (``ntohs``/``ntohl``/``ntohll``), so
programs see host order. The built-in headers (eth, ipv4, ipv6, icmp, tcp, udp) are the same
kind of accessor, made from ``protocols.ACCESSORS``.
"""

from __future__ import annotations

from .. import builtins, protocols
from ..forms import Form, Int, List, Symbol, short
from ..records import dataclass
from .base import Accessor, L, error
from .structs import MAX_OFFSET, constant

_SWAP = {2: "BSWAP16", 4: "BSWAP32", 8: "BSWAP64"}


@dataclass
class HeaderField(Accessor):
    name: str  # the accessor, e.g. "ETH-TYPE"
    offset: int
    type: str  # "U8" .. "U64" (or a signed name: only the width matters)
    net_order: bool
    what = "header field accessor"

    def _swap(self, value: Form) -> Form:
        size = builtins.TYPES[self.type]
        return L(value.loc, _SWAP[size], value) if self.net_order and size > 1 else value

    def _pointer(self, bx, place: List) -> Form:
        (ptr,) = bx.args(place, 1, 1, f"({place.items[0]} HEADER-POINTER)")
        return bx.expand(ptr)

    def read(self, bx, form: List) -> Form:
        loc = form.loc
        return self._swap(L(loc, "LOAD", Symbol(self.type, loc), self._pointer(bx, form), Int(self.offset, loc)))

    def write(self, bx, place: List, value: Form, context: List) -> Form:
        loc = context.loc
        return L(loc, "STORE", Symbol(self.type, loc), self._pointer(bx, place), Int(self.offset, loc),
                 self._swap(bx.expand(value)))


def builtin_accessors() -> dict[str, HeaderField]:
    return {name: HeaderField(name, a.offset, a.type, a.net_order) for name, a in protocols.ACCESSORS.items()}


_FIELD_SHAPE = "(FIELD :offset N :type u8|u16|u32|u64 [:net-order t])"


def define(scope, form: List) -> dict[str, HeaderField]:
    """The accessors a ``defheader`` form defines (the caller registers them)."""
    if len(form.items) < 3 or not isinstance(form.items[1], Symbol) or form.items[1].is_keyword:
        raise error(form, "malformed defheader", expected=f"(defheader NAME {_FIELD_SHAPE}...)")
    header = form.items[1].name
    out: dict[str, HeaderField] = {}
    for spec in form.items[2:]:
        if not (isinstance(spec, List) and spec.items and isinstance(spec.items[0], Symbol)
                and not spec.items[0].is_keyword):
            raise error(spec, f"malformed defheader field {short(spec)}", expected=_FIELD_SHAPE)
        name = f"{header}-{spec.items[0].name}"
        if name in out:
            raise error(spec, f"field {spec.items[0]} appears twice in defheader {header.lower()}")
        options = _options(spec)
        typ = options.get(":TYPE")
        if not (isinstance(typ, Symbol) and typ.name in builtins.TYPES):
            raise error(spec, f"bad :type {short(typ) if typ is not None else '(none given)'} for header field "
                        f"{spec.items[0]}", expected="u8, u16, u32 or u64")
        if ":OFFSET" not in options:
            raise error(spec, f"header field {spec.items[0]} needs an :offset", expected=_FIELD_SHAPE)
        offset = constant(scope, options[":OFFSET"], spec, "the :offset")
        if not 0 <= offset <= MAX_OFFSET:
            raise error(spec, f":offset {offset} is out of range", expected=f"0 to {MAX_OFFSET}")
        net = options.get(":NET-ORDER", Symbol("NIL"))
        if not (isinstance(net, Symbol) and net.name in ("T", "NIL")):
            raise error(spec, f":net-order must be t or nil, not {short(net)}")
        out[name] = HeaderField(name, offset, typ.name, net.name == "T")
    return out


def _options(spec: List) -> dict[str, Form]:
    items = spec.items[1:]
    if len(items) % 2:
        raise error(spec, "header field options must be keyword/value pairs", expected=_FIELD_SHAPE)
    found: dict[str, Form] = {}
    for key, value in zip(items[::2], items[1::2]):
        if not (isinstance(key, Symbol) and key.name in (":OFFSET", ":TYPE", ":NET-ORDER")):
            raise error(spec, f"unknown header field option {short(key)}", expected=":offset, :type or :net-order")
        if key.name in found:
            raise error(spec, f"option {key} given twice")
        found[key.name] = value
    return found
