"""Program bodies: Whistler expressions -> core forms (the vocabulary in ``decls``).

In: one body form, a ``Scope`` (the unit's constants, maps, macros and compile-time
interpreter) and the program type. Out: the same expression in core forms only: every macro
(user, protocol, built-in) expanded, every named constant an ``Int``, every arity checked.
Variables stay symbols; whether they are bound is for ``lower`` to say, it knows scopes.

``BodyExpander.expand`` dispatches on the head: a built-in form (one handler per head, kept by
concern in ``bindings``, ``control``, ``places``, ``arith``, ``memory``, ``maps``, ``structs``,
``ringbuf`` and ``asm``), a user macro, a generated accessor (header fields, ``defstruct``),
a helper call. Every node built carries the location of the
form it came from.
"""

from __future__ import annotations

from .. import builtins
from ..budget import FORM_BYTES, OverBudget
from ..errors import Loc
from ..forms import Form, Int, List, Str, Symbol, short
from . import arith, asm, bindings, control, maps, memory, places, ringbuf, structs
from .base import MAX_MACRO_DEPTH, L, Macro, Scope, call_macro, error, is_type

# Common Lisp operators people reach for, with what to do instead.
CL_HINTS = {
    "FORMAT": "format runs only inside macros; programs cannot build strings",
    "LOOP": "there is no loop; use dotimes, with :max for a run-time count",
    "DOLIST": "there are no lists at run time; generate the code with a macro",
    "DEFUN": "defun is only allowed at top level, and only for compile-time helpers",
    "MAPCAR": "mapcar runs only inside macros; generate the code with a macro",
    "FUNCALL": "there are no function values in BPF; use a macro",
    "APPLY": "there are no function values in BPF; use a macro",
    "PRINT": "programs cannot print; use a map or a ring buffer",
    "WHILE": "there is no while; use dotimes with :max and return, or a when in its body",
    "1+": "use (+ x 1)",
    "1-": "use (- x 1)",
}


class BodyExpander:
    def __init__(self, scope: Scope, prog_type: str):
        self.scope = scope
        self.prog_type = prog_type
        self.macro_depth = 0
        self.budget = scope.interp.budget

    # entry ------------------------------------------------------------------------------
    def expand(self, form: Form) -> Form:
        try:  # every form expanded is work and memory the program's size is made of
            self.budget.step()
            self.budget.alloc(FORM_BYTES)
        except OverBudget as e:
            raise error(form, str(e), hint="do macros or dotimes loops multiply the code without end?") from None
        if isinstance(form, Int):
            return form
        if isinstance(form, Str):
            raise error(form, "a string cannot be used inside a program",
                        hint="BPF programs compute with integers only")
        if isinstance(form, Symbol):
            return self.atom(form)
        if not form.items:
            return Int(0, form.loc)
        head = form.items[0]
        if not isinstance(head, Symbol):
            raise error(form, "cannot call a list", expected="a form name, macro or helper in first position")
        name = head.name
        handler = FORMS.get(name)
        if handler is not None:
            return handler(self, form)
        macro = self.scope.macros.get(name)
        if macro is not None:
            return self.expand_macro(macro, form)
        accessor = self.scope.accessors.get(name)
        if accessor is not None:
            return accessor.read(self, form)
        helper = builtins.HELPERS.get(name)
        if helper is not None:
            return self.helper(form, helper)
        if name in self.scope.interp.functions:
            raise error(form, f"{name.lower()} is a compile-time function (defun)",
                        hint="defun helpers can be called from macros only; use defmacro for code")
        raise error(form, f"unknown form {name.lower()}", hint=CL_HINTS.get(name) or self._struct_hint(name))

    def _struct_hint(self, name: str) -> str | None:
        """For ``conn-event-sport``: the fields struct conn-event does have."""
        for struct in sorted(self.scope.structs.values(), key=lambda s: -len(s.lisp_name)):
            if name.startswith(struct.lisp_name + "-") and struct.fields:
                fields = ", ".join(f.lisp_name.lower() for f in struct.fields)
                return f"struct {struct.lisp_name.lower()} has the fields {fields}"
        return None

    def expand_all(self, forms) -> tuple[Form, ...]:
        return tuple(self.expand(f) for f in forms)

    def expand_macro(self, macro: Macro, form: List) -> Form:
        if self.macro_depth >= MAX_MACRO_DEPTH:
            raise error(form, f"macro {macro.name.lower()} nests more than {MAX_MACRO_DEPTH} expansions deep",
                        hint="does the macro expand into a call to itself?")
        self.macro_depth += 1
        try:
            return self.expand(call_macro(self.scope, macro, form))
        finally:
            self.macro_depth -= 1

    def atom(self, s: Symbol) -> Form:
        if s.is_keyword:
            raise error(s, f"keyword {s} cannot be used as a value")
        value = self.scope.constants.get(s.name)
        if value is not None:
            return Int(value, s.loc)
        if s.name in self.scope.maps:
            raise error(s, f"map {s} used as a value",
                        hint="pass maps to map-lookup, getmap, tail-call and the other map forms")
        if s.name in self.scope.interp.variables:
            raise error(s, f"{s} is a compile-time variable (defparameter); a program cannot read it",
                        hint="use defconstant for an integer a program reads, or a macro that inserts the value")
        return s

    def gensym(self, prefix: str, loc: Loc) -> Symbol:
        return Symbol(self.scope.interp.gensym(prefix).name, loc)

    # shared checks ----------------------------------------------------------------------
    def args(self, form: List, n_min: int, n_max: int | None = None, shape: str | None = None) -> tuple:
        args = form.items[1:]
        if len(args) < n_min or (n_max is not None and len(args) > n_max):
            if n_max == n_min:
                want = f"{n_min} argument{'s' if n_min != 1 else ''}"
            elif n_max is None:
                want = f"at least {n_min} arguments"
            else:
                want = f"{n_min} to {n_max} arguments"
            raise error(form, f"wrong number of arguments to {form.items[0]}: got {len(args)}, expected {want}",
                        expected=shape)
        return args

    def type_arg(self, form: Form, context: Form) -> Symbol:
        if not is_type(form):
            raise error(context, f"{form} is not a type", expected="one of u8 u16 u32 u64 i8 i16 i32 i64")
        return Symbol(form.name, form.loc)

    def literal(self, form: Form, context: Form, what: str) -> Int:
        value = self.expand(form)
        if not isinstance(value, Int):
            raise error(context, f"{what} must be a literal integer or constant, not {short(form)}")
        return value

    def variable(self, form: Form, context: Form) -> Symbol:
        if not isinstance(form, Symbol) or form.is_keyword or form.name in ("NIL", "T"):
            raise error(context, f"{short(form)} is not a variable name", expected="a symbol")
        if form.name in self.scope.constants:
            raise error(context, f"{form} is a constant and cannot be bound or assigned")
        return form

    # helpers --------------------------------------------------------------------------
    def helper(self, form: List, helper: builtins.Helper) -> Form:
        self.args(form, helper.min_args, helper.max_args)
        return L(form.loc, "CALL", Int(helper.id, form.loc), *self.expand_all(form.items[1:]))


FORMS = {**bindings.FORMS, **control.FORMS, **places.FORMS, **arith.FORMS, **memory.FORMS, **maps.FORMS,
         **structs.FORMS, **ringbuf.FORMS, **asm.FORMS}

# Names a defmacro, defstruct or defheader cannot take.
BUILTIN_NAMES = frozenset(FORMS) | frozenset(builtins.HELPERS)
