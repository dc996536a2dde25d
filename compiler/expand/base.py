"""What every body handler shares: the ``Scope`` a body sees, errors, core-form building and
running a user macro.

In: nothing (a library for ``body`` and the handler modules). Out: ``Scope``, ``Macro``,
``error`` (a located ``CompileError``), ``L`` (build a located core form), ``is_type``,
``progn_of`` and ``call_macro`` (run a macro; nodes it built get the call's location).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import builtins
from ..errors import CompileError, Loc
from ..forms import Form, Int, List, Str, Symbol, short
from ..macro_eval import Closure, Interpreter, MacroError

MAX_MACRO_DEPTH = 100
MAX_EXPANSIONS = 20_000
MAX_MACRO_NODES = 200_000  # forms one macro call may produce


@dataclass
class Macro:
    name: str
    expander: Closure
    loc: Loc


class Accessor:
    """A form that top-level definitions generate (header and struct field accessors,
    ``make-NAME``, ``NAME-FIELD-PTR``): ``read`` expands ``(NAME ARG...)``; ``write`` expands
    ``(setf (NAME ARG...) VALUE)`` where the form is a place."""

    what = "form"  # for errors, e.g. "struct field accessor"

    def read(self, bx, form: List) -> Form:
        raise NotImplementedError

    def write(self, bx, place: List, value: Form, context: List) -> Form:
        raise error(context, f"({short(place)}) is not a place setf can assign: {place.items[0]} is a {self.what}")


@dataclass
class SetfExpander:
    """``(defsetf ACCESSOR UPDATER)`` (``updater`` set) or the long form (``expander``, a macro
    taking the new value's variable and then the accessor's arguments' variables)."""

    name: str
    loc: Loc
    updater: Symbol | None = None
    expander: Macro | None = None


@dataclass
class Scope:
    """Everything a body can refer to besides its own variables."""

    constants: dict[str, int]
    interp: Interpreter
    macros: dict[str, Macro] = field(default_factory=dict)
    maps: dict = field(default_factory=dict)  # lisp name -> decls.MapDef
    structs: dict = field(default_factory=dict)  # lisp name -> decls.StructDef
    accessors: dict[str, Accessor] = field(default_factory=dict)  # generated form name -> Accessor
    setf_expanders: dict[str, SetfExpander] = field(default_factory=dict)
    expansions: int = 0


def error(form: Form, what: str, *, expected: str | None = None, hint: str | None = None) -> CompileError:
    return CompileError(form.loc, what, form=short(form), expected=expected, hint=hint)


def L(loc: Loc, head: str, *items: Form) -> List:
    """A core form ``(HEAD ITEMS...)`` located at ``loc``."""
    return List((Symbol(head, loc), *items), loc)


def is_type(form: Form) -> bool:
    return isinstance(form, Symbol) and form.name in builtins.TYPES


def call_macro(scope: Scope, macro: Macro, form: List, args: list | None = None) -> Form:
    """Run ``macro`` on ``form`` (or on ``args`` instead of the form's own arguments); nodes
    the macro built get the call's location."""
    scope.expansions += 1
    if scope.expansions > MAX_EXPANSIONS:
        raise error(form, f"more than {MAX_EXPANSIONS} macro expansions in one unit",
                    hint="a macro that keeps generating calls to itself?")
    try:
        args = list(form.items[1:]) if args is None else args
        result = scope.interp.call(macro.expander, args)
    except MacroError as e:
        raise error(form, f"in macro {macro.name.lower()}: {e}",
                    hint=f"the macro is defined at {macro.loc}") from None
    if isinstance(result, Closure):
        raise error(form, f"macro {macro.name.lower()} returned a function, not code")
    passed = set()
    for arg in args:
        _collect_ids(arg, passed)
    budget = [MAX_MACRO_NODES]
    try:
        relocated = _relocate(result, form.loc, passed, budget)
    except RecursionError:
        raise error(form, f"macro {macro.name.lower()} produced code nested too deeply") from None
    if budget[0] < 0:
        raise error(form, f"macro {macro.name.lower()} produced more than {MAX_MACRO_NODES} forms")
    return relocated


def _collect_ids(form: Form, out: set) -> None:
    out.add(id(form))
    if isinstance(form, List):
        for item in form.items:
            _collect_ids(item, out)


def _relocate(form: Form, loc: Loc, keep: set, budget: list) -> Form:
    """Copy ``form`` with ``loc`` on every node the macro made; stops early once ``budget``
    (a shared node count: shared substructure could otherwise make the walk exponential) runs out."""
    budget[0] -= 1
    if id(form) in keep or budget[0] < 0:
        return form
    if isinstance(form, List):
        return List(tuple(_relocate(i, loc, keep, budget) for i in form.items), loc)
    return type(form)(form.value if isinstance(form, (Int, Str)) else form.name, loc)


def progn_of(bx, loc: Loc, body) -> Form:
    """``body`` expanded, as one form: 0 when empty, the form itself when alone, else a progn."""
    forms = bx.expand_all(body)
    if not forms:
        return Int(0, loc)
    return forms[0] if len(forms) == 1 else L(loc, "PROGN", *forms)
