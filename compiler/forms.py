"""S-expression data: what the reader produces and macro expansion rewrites.

Every node carries the ``Loc`` where it was read (or, for nodes a macro built, the location of
the macro call), so any later stage can point at the source. Nodes compare by value; the
location is not part of equality. Symbols are upper-cased names with any package prefix
stripped (``whistler::foo`` and ``FOO`` are the same symbol); keywords keep their leading
colon (``:TYPE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .errors import UNKNOWN_LOC, Loc

# Compile-time integers (literals, macro arithmetic) stay below this many bits: programs compute
# in 64 bits, and unbounded arithmetic in a macro must fail as an error, not exhaust memory.
MAX_INT_BITS = 4096


@dataclass(frozen=True)
class Symbol:
    name: str  # upper case, e.g. "XDP-DATA", ":TYPE", "NIL"
    loc: Loc = field(default=UNKNOWN_LOC, compare=False, repr=False)

    @property
    def is_keyword(self) -> bool:
        return self.name.startswith(":")

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Int:
    value: int
    loc: Loc = field(default=UNKNOWN_LOC, compare=False, repr=False)

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Str:
    value: str
    loc: Loc = field(default=UNKNOWN_LOC, compare=False, repr=False)

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'


@dataclass(frozen=True)
class List:
    items: tuple[Form, ...]
    loc: Loc = field(default=UNKNOWN_LOC, compare=False, repr=False)

    def __str__(self) -> str:
        return "(" + " ".join(str(i) for i in self.items) + ")"

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    @property
    def head(self) -> Form | None:
        return self.items[0] if self.items else None

    def head_is(self, *names: str) -> bool:
        h = self.head
        return isinstance(h, Symbol) and h.name in names


Form = Union[Symbol, Int, Str, List]

NIL = Symbol("NIL")
T = Symbol("T")


def sym(name: str, loc: Loc = UNKNOWN_LOC) -> Symbol:
    return Symbol(name.upper(), loc)


def lst(*items: Form, loc: Loc = UNKNOWN_LOC) -> List:
    return List(tuple(items), loc)


def is_nil(form: Form) -> bool:
    """NIL and () are the same false value."""
    return (isinstance(form, Symbol) and form.name == "NIL") or (isinstance(form, List) and not form.items)


def mangle(name: str) -> str:
    """Lisp name -> C/kernel name: lower case, '-' -> '_' (``xdp-dispatch`` -> ``xdp_dispatch``)."""
    return name.lower().replace("-", "_")


def short(form: Form, limit: int = 60) -> str:
    """The form as source text, shortened for error messages."""
    text = str(form)
    return text if len(text) <= limit else text[: limit - 3] + "..."
