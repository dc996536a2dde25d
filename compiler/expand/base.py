"""What every body handler shares: the ``Scope`` a body sees, errors, core-form building and
running a user macro.

In: nothing (a library for ``body`` and the handler modules). Out: ``Scope``, ``Macro``,
``error`` (a located ``CompileError``), ``L`` (build a located core form), ``is_type``,
``progn_of`` and ``call_macro`` (run a macro; nodes it built get the call's location).
"""

from __future__ import annotations

from .. import builtins
from ..budget import FORM_BYTES, Budget, OverBudget
from ..errors import CompileError, Loc
from ..forms import Form, Int, List, Str, Symbol, short
from ..macro_eval import Closure, Interpreter, MacroError
from ..records import dataclass, field

MAX_MACRO_DEPTH = 100  # macro calls expanding inside each other's results
# A macro's result nests at most this deep; the stages after expansion walk forms recursively.
MAX_RESULT_DEPTH = 1000


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


def error(form: Form, what: str, *, expected: str | None = None, hint: str | None = None) -> CompileError:
    return CompileError(form.loc, what, form=short(form), expected=expected, hint=hint)


def L(loc: Loc, head: str, *items: Form) -> List:
    """A core form ``(HEAD ITEMS...)`` located at ``loc``."""
    return List((Symbol(head, loc), *items), loc)


def is_type(form: Form) -> bool:
    return isinstance(form, Symbol) and form.name in builtins.TYPES


def call_macro(scope: Scope, macro: Macro, form: List, args: list | None = None) -> Form:
    """Run ``macro`` on ``form`` (or on ``args`` instead of the form's own arguments); nodes
    the macro built get the call's location. The work (evaluation, and copying the result) is
    charged to the compile's budget."""
    args = list(form.items[1:]) if args is None else args
    try:
        result = scope.interp.call(macro.expander, args)
    except MacroError as e:
        raise error(form, f"in macro {macro.name.lower()}: {e}",
                    hint=f"the macro is defined at {macro.loc}") from None
    budget = scope.interp.budget
    try:
        return _relocate(result, form.loc, _ids(args, budget), budget)
    except OverBudget as e:
        raise error(form, f"in macro {macro.name.lower()}: {e}",
                    hint="does the macro build ever larger code?") from None
    except _BadResult as e:
        raise error(form, f"macro {macro.name.lower()} {e}",
                    hint=f"the macro is defined at {macro.loc}") from None


class _BadResult(Exception):
    """A macro's result that is not code; ``str()`` says why."""


def _ids(forms, budget: Budget) -> set:
    """ids of every node in ``forms`` (shared nodes once)."""
    seen: set = set()
    pending = list(forms)
    while pending:
        form = pending.pop()
        if id(form) not in seen:
            budget.step()
            seen.add(id(form))
            if isinstance(form, List):
                pending.extend(form.items)
    return seen


_END = object()


def _relocate(form: Form, loc: Loc, keep: set, budget: Budget) -> Form:
    """Copy ``form`` with ``loc`` on every node the macro made; nodes in ``keep`` (the call's own
    arguments) stay as they are. One step and one form's size per node copied, so a result that
    shares a sublist many times over ends in ``OverBudget``, not in an exponential copy."""
    if id(form) in keep:
        return form
    if not isinstance(form, List):
        return _atom_at(form, loc)
    stack = [(iter(form.items), [])]
    while True:
        pending, built = stack[-1]
        item = next(pending, _END)
        if item is _END:
            stack.pop()
            copy = List(tuple(built), loc)
            if not stack:
                return copy
            stack[-1][1].append(copy)
            continue
        budget.step()
        budget.alloc(FORM_BYTES)
        if id(item) in keep:
            built.append(item)
        elif isinstance(item, List):
            if len(stack) >= MAX_RESULT_DEPTH:
                raise _BadResult(f"produced code nested too deeply (more than {MAX_RESULT_DEPTH} levels)")
            stack.append((iter(item.items), []))
        else:
            built.append(_atom_at(item, loc))


def _atom_at(form: Form, loc: Loc) -> Form:
    if isinstance(form, (Int, Str)):
        return type(form)(form.value, loc)
    if isinstance(form, Symbol):
        return Symbol(form.name, loc)
    raise _BadResult(f"returned {form}, a function, where code belongs")


def progn_of(bx, loc: Loc, body) -> Form:
    """``body`` expanded, as one form: 0 when empty, the form itself when alone, else a progn."""
    forms = bx.expand_all(body)
    if not forms:
        return Int(0, loc)
    return forms[0] if len(forms) == 1 else L(loc, "PROGN", *forms)
