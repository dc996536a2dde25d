"""S-expression data: what the reader produces and macro expansion rewrites.

Every node carries the ``Loc`` where it was read (or, for nodes a macro built, the location of
the macro call), so any later stage can point at the source. Nodes compare by value; the
location is not part of equality. Symbols are upper-cased names with any package prefix
stripped (``whistler::foo`` and ``FOO`` are the same symbol); keywords keep their leading
colon (``:TYPE``).

Text: ``show`` (and ``str()`` of a list) is for messages and is bounded: a form a macro built
can be huge, or share one sublist many times over (40 levels of ``(list x x)`` print as 2^40
atoms), so it stops after a few hundred characters and below a few levels with ``...``.
``write`` is the whole text, up to a length the caller gives. Both walk without recursion.
"""

from __future__ import annotations

from .errors import UNKNOWN_LOC, Loc

# Compile-time integers (literals, macro arithmetic) stay below this many bits: programs compute
# in 64 bits, and unbounded arithmetic in a macro must fail as an error, not exhaust memory.
MAX_INT_BITS = 4096


# The node classes are written out rather than made by @dataclass: the reader and expansion
# create tens of thousands of nodes, and a slotted class is several times cheaper to create.
# They are immutable by convention; equality and hashing ignore the location.


class Symbol:
    __slots__ = ("name", "loc")

    def __init__(self, name: str, loc: Loc = UNKNOWN_LOC):
        self.name = name  # upper case, e.g. "XDP-DATA", ":TYPE", "NIL"
        self.loc = loc

    @property
    def is_keyword(self) -> bool:
        return self.name.startswith(":")

    def __eq__(self, other):
        return self.name == other.name if other.__class__ is Symbol else NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Symbol({self.name!r})"

    def __str__(self) -> str:
        return self.name.lower()


class Int:
    __slots__ = ("value", "loc")

    def __init__(self, value: int, loc: Loc = UNKNOWN_LOC):
        self.value = value
        self.loc = loc

    def __eq__(self, other):
        return self.value == other.value if other.__class__ is Int else NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Int({self.value!r})"

    def __str__(self) -> str:
        return str(self.value)


class Str:
    __slots__ = ("value", "loc")

    def __init__(self, value: str, loc: Loc = UNKNOWN_LOC):
        self.value = value
        self.loc = loc

    def __eq__(self, other):
        return self.value == other.value if other.__class__ is Str else NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Str({self.value!r})"

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'


class List:
    __slots__ = ("items", "loc")

    def __init__(self, items: tuple[Form, ...], loc: Loc = UNKNOWN_LOC):
        self.items = items
        self.loc = loc

    def __eq__(self, other):
        return self.items == other.items if other.__class__ is List else NotImplemented

    def __hash__(self) -> int:
        return hash(self.items)

    def __repr__(self) -> str:
        return f"List({show(self, 1000)})"

    def __str__(self) -> str:
        return show(self)

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


Form = Symbol | Int | Str | List

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


# How much of a form a message shows.
SHOWN_CHARS = 200
SHOWN_DEPTH = 8
_END = object()


def _pieces(form: Form, max_depth: int | None):
    """The source text of ``form`` in pieces, depth first; a list nested deeper than
    ``max_depth`` (None: no limit) is one piece, ``(...)``."""
    stack = [iter((form,))]
    first = [True]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            first.pop()
            if stack:
                yield ")"
            continue
        if not first[-1]:
            yield " "
        first[-1] = False
        if isinstance(item, List) and item.items:
            if max_depth is not None and len(stack) > max_depth:
                yield "(...)"
                continue
            yield "("
            stack.append(iter(item.items))
            first.append(True)
        else:
            yield "()" if isinstance(item, List) else str(item)


def show(form: Form, limit: int = SHOWN_CHARS, depth: int = SHOWN_DEPTH) -> str:
    """The form as source text for a message: at most ``limit`` characters (then ``...``),
    lists below ``depth`` levels as ``(...)``. Costs O(limit + depth), whatever the form."""
    out, size = [], 0
    for piece in _pieces(form, depth):
        if size + len(piece) > limit:
            out.append(piece[: max(limit - 3 - size, 0)] + "...")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def write(form: Form, limit: int) -> str | None:
    """The whole source text of ``form``, or None when it is longer than ``limit`` characters
    (found after at most ``limit`` characters of work)."""
    out, size = [], 0
    for piece in _pieces(form, None):
        size += len(piece)
        if size > limit:
            return None
        out.append(piece)
    return "".join(out)


def short(form: Form, limit: int = 60) -> str:
    """The form as source text, shortened for error messages."""
    return show(form, limit)
