"""Program bodies: Whistler expressions -> core forms (the vocabulary in ``decls``).

In: one body form, a ``Scope`` (the unit's constants, maps, macros and compile-time
interpreter) and the program type. Out: the same expression in core forms only: every macro
(user, protocol, built-in) expanded, every named constant an ``Int``, every arity checked.
Variables stay symbols; whether they are bound is for ``lower`` to say, it knows scopes.

Each Whistler head has one handler in ``_FORMS``; map operations live in ``expand_maps``.
Every node this module builds carries the location of the form it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import builtins, expand_maps, protocols
from .decls import BINARY_OPS
from .errors import CompileError, Loc
from .forms import Form, Int, List, Str, Symbol, is_nil, short
from .ir import MASK64, evaluate, to_signed
from .macro_eval import Closure, Interpreter, MacroError

MAX_MACRO_DEPTH = 100
MAX_EXPANSIONS = 20_000
MAX_MACRO_NODES = 200_000  # forms one macro call may produce

# Common Lisp operators people reach for, with what to do instead.
CL_HINTS = {
    "FORMAT": "format runs only inside macros; programs cannot build strings",
    "LOOP": "there is no loop; use dotimes with a literal count",
    "DOLIST": "there are no lists at run time; generate the code with a macro",
    "DEFUN": "defun is only allowed at top level, and only for compile-time helpers",
    "MAPCAR": "mapcar runs only inside macros; generate the code with a macro",
    "FUNCALL": "there are no function values in BPF; use a macro",
    "APPLY": "there are no function values in BPF; use a macro",
    "PRINT": "programs cannot print; use a map or a ring buffer",
    "WHILE": "there is no while; use dotimes with a literal count",
    "1+": "use (+ x 1)",
    "1-": "use (- x 1)",
}


@dataclass
class Macro:
    name: str
    expander: Closure
    loc: Loc


@dataclass
class Scope:
    """Everything a body can refer to besides its own variables."""

    constants: dict[str, int]
    interp: Interpreter
    macros: dict[str, Macro] = field(default_factory=dict)
    maps: dict = field(default_factory=dict)  # lisp name -> decls.MapDef
    expansions: int = 0


def error(form: Form, what: str, *, expected: str | None = None, hint: str | None = None) -> CompileError:
    return CompileError(form.loc, what, form=short(form), expected=expected, hint=hint)


def L(loc: Loc, head: str, *items: Form) -> List:
    """A core form ``(HEAD ITEMS...)`` located at ``loc``."""
    return List((Symbol(head, loc), *items), loc)


def is_type(form: Form) -> bool:
    return isinstance(form, Symbol) and form.name in builtins.TYPES


def call_macro(scope: Scope, macro: Macro, form: List) -> Form:
    """Run ``macro`` on ``form``; nodes the macro built get the call's location."""
    scope.expansions += 1
    if scope.expansions > MAX_EXPANSIONS:
        raise error(form, f"more than {MAX_EXPANSIONS} macro expansions in one unit",
                    hint="a macro that keeps generating calls to itself?")
    try:
        result = scope.interp.call(macro.expander, list(form.items[1:]))
    except MacroError as e:
        raise error(form, f"in macro {macro.name.lower()}: {e}",
                    hint=f"the macro is defined at {macro.loc}") from None
    if isinstance(result, Closure):
        raise error(form, f"macro {macro.name.lower()} returned a function, not code")
    passed = set()
    for arg in form.items[1:]:
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


class BodyExpander:
    def __init__(self, scope: Scope, prog_type: str):
        self.scope = scope
        self.prog_type = prog_type
        self.macro_depth = 0

    # entry ------------------------------------------------------------------------------
    def expand(self, form: Form) -> Form:
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
        handler = _FORMS.get(name)
        if handler is not None:
            return handler(self, form)
        macro = self.scope.macros.get(name)
        if macro is not None:
            return self.expand_macro(macro, form)
        accessor = protocols.ACCESSORS.get(name)
        if accessor is not None:
            return self.accessor(form, accessor)
        helper = builtins.HELPERS.get(name)
        if helper is not None:
            return self.helper(form, helper)
        if name in self.scope.interp.functions:
            raise error(form, f"{name.lower()} is a compile-time function (defun)",
                        hint="defun helpers can be called from macros only; use defmacro for code")
        raise error(form, f"unknown form {name.lower()}", hint=CL_HINTS.get(name))

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

    # protocol accessors and helpers -----------------------------------------------------
    def accessor(self, form: List, acc: protocols.Accessor) -> Form:
        (ptr,) = self.args(form, 1, 1, f"({form.items[0]} HEADER-POINTER)")
        loc = form.loc
        value = L(loc, "LOAD", Symbol(acc.type, loc), self.expand(ptr), Int(acc.offset, loc))
        if acc.net_order:
            value = L(loc, {"U16": "BSWAP16", "U32": "BSWAP32"}[acc.type], value)
        return value

    def helper(self, form: List, helper: builtins.Helper) -> Form:
        self.args(form, helper.min_args, helper.max_args)
        return L(form.loc, "CALL", Int(helper.id, form.loc), *self.expand_all(form.items[1:]))


# -- binding forms -----------------------------------------------------------------------


def _declared_types(bx: BodyExpander, body: tuple, names: set[str]) -> tuple[dict[str, Symbol], tuple]:
    """Split leading ``(declare (type T v...))`` forms off ``body``."""
    types: dict[str, Symbol] = {}
    while body and isinstance(body[0], List) and body[0].head_is("DECLARE"):
        for spec in body[0].items[1:]:
            if isinstance(spec, List) and spec.head_is("IGNORE", "IGNORABLE"):
                continue
            if not (isinstance(spec, List) and spec.head_is("TYPE") and len(spec.items) >= 2):
                raise error(spec, "unsupported declaration", expected="(type T VAR...) or (ignore VAR...)")
            typ = bx.type_arg(spec.items[1], spec)
            for var in spec.items[2:]:
                if not isinstance(var, Symbol) or var.name not in names:
                    raise error(spec, f"declares the type of {short(var)}, which this form does not bind")
                types[var.name] = typ
        body = body[1:]
    return types, body


def _binding(bx: BodyExpander, b: Form, context: Form) -> tuple[Symbol, Symbol | None, Form]:
    """One binding -> (var, explicit type or None, init form, unexpanded)."""
    shape = "(VAR INIT), (VAR TYPE INIT) or (VAR TYPE)"
    if not isinstance(b, List) or not 2 <= len(b.items) <= 3:
        raise error(b if isinstance(b, List) else context, f"malformed binding {short(b)}", expected=shape)
    var = bx.variable(b.items[0], b)
    if len(b.items) == 3:
        return var, bx.type_arg(b.items[1], b), b.items[2]
    if is_type(b.items[1]):
        return var, bx.type_arg(b.items[1], b), Int(0, b.loc)
    return var, None, b.items[1]


def _bindings(bx: BodyExpander, bindings: Form, context: Form) -> list:
    if is_nil(bindings):
        return []
    if not isinstance(bindings, List):
        raise error(context, "the bindings must be a list", expected="((VAR INIT)...)")
    return [_binding(bx, b, context) for b in bindings.items]


def _let_form(bx: BodyExpander, form: List, sequential: bool) -> Form:
    bindings_form, *body = bx.args(form, 1, None, f"({form.items[0]} (BINDING...) BODY...)")
    bindings = _bindings(bx, bindings_form, form)
    declared, body = _declared_types(bx, tuple(body), {v.name for v, _typ, _init in bindings})
    triples = [(v, t or declared.get(v.name) or Symbol("NIL", v.loc), bx.expand(init)) for v, t, init in bindings]
    body_forms = bx.expand_all(body)
    loc = form.loc
    if not sequential or len(triples) <= 1:
        return L(loc, "LET", List(tuple(List(t, loc) for t in triples), loc), *body_forms)
    inner: tuple = body_forms
    for triple in reversed(triples):
        inner = (L(loc, "LET", List((List(triple, loc),), loc), *inner),)
    return inner[0]


def _let(bx, form):
    return _let_form(bx, form, sequential=False)


def _let_star(bx, form):
    return _let_form(bx, form, sequential=True)


def _when_let(bx, form):
    bindings_form, *body = bx.args(form, 1, None, "(when-let ((VAR INIT)...) BODY...)")
    single = isinstance(bindings_form, List) and bindings_form.items and isinstance(bindings_form.items[0], Symbol)
    bindings = _bindings(bx, List((bindings_form,), bindings_form.loc) if single else bindings_form, form)
    loc = form.loc
    result = _progn_of(bx, loc, body)
    for var, typ, init in reversed(bindings):
        test = L(loc, "IF", var, result, Int(0, loc))
        result = L(loc, "LET", List((List((var, typ or Symbol("NIL", loc), bx.expand(init)), loc),), loc), test)
    return result


def _if_let(bx, form):
    bindings_form, then, *rest = bx.args(form, 2, 3, "(if-let (VAR INIT) THEN [ELSE])")
    single = isinstance(bindings_form, List) and bindings_form.items and isinstance(bindings_form.items[0], Symbol)
    bindings = _bindings(bx, List((bindings_form,), bindings_form.loc) if single else bindings_form, form)
    loc = form.loc
    names = [v for v, _typ, _init in bindings]
    test = names[0] if len(names) == 1 else L(loc, "AND", *names)
    triples = tuple(List((v, t or Symbol("NIL", loc), bx.expand(i)), loc) for v, t, i in bindings)
    other = bx.expand(rest[0]) if rest else Int(0, loc)
    return L(loc, "LET", List(triples, loc), L(loc, "IF", test, bx.expand(then), other))


# -- assignment ----------------------------------------------------------------------------


def _setf(bx, form):
    args = form.items[1:]
    if len(args) % 2:
        raise error(form, f"{form.items[0]} needs PLACE VALUE pairs, got an odd number of arguments")
    pairs = [set_place(bx, place, value, form) for place, value in zip(args[::2], args[1::2])]
    return pairs[0] if len(pairs) == 1 else L(form.loc, "PROGN", *pairs)


def set_place(bx: BodyExpander, place: Form, value: Form, context: List) -> Form:
    """``(setf PLACE VALUE)`` for one pair; macros in place position are expanded first."""
    loc = context.loc
    if isinstance(place, Symbol):
        return L(loc, "SETQ", bx.variable(place, context), bx.expand(value))
    if isinstance(place, List) and place.items and isinstance(place.items[0], Symbol):
        name = place.items[0].name
        if name == "GETMAP":
            return expand_maps.set_getmap(bx, place, value, context)
        if name == "CTX":
            typ, off = _ctx_place(bx, place, store=True)
            return L(loc, "CTX-STORE", typ, off, bx.expand(value))
        if name == "LOAD":
            load = bx.expand(place)
            return L(loc, "STORE", load.items[1], load.items[2], load.items[3], bx.expand(value))
        macro = bx.scope.macros.get(name)
        if macro is not None:
            return set_place(bx, call_macro(bx.scope, macro, place), value, context)
    raise error(context, f"{short(place)} is not a place setf can assign",
                expected="a variable, (getmap MAP KEY), (ctx FIELD) or (load TYPE PTR OFF)")


def _incf(bx, form):
    place, *delta = bx.args(form, 1, 2, f"({form.items[0]} PLACE [DELTA])")
    loc = form.loc
    amount = delta[0] if delta else Int(1, loc)
    decrement = form.head_is("DECF")
    if isinstance(place, List) and place.head_is("GETMAP"):
        return expand_maps.update_getmap(bx, place, amount, decrement, form)
    op = "-" if decrement else "+"
    return set_place(bx, place, List((Symbol(op, loc), place, amount), loc), form)


# -- control -------------------------------------------------------------------------------


def _progn_of(bx: BodyExpander, loc: Loc, body) -> Form:
    forms = bx.expand_all(body)
    if not forms:
        return Int(0, loc)
    return forms[0] if len(forms) == 1 else L(loc, "PROGN", *forms)


def _progn(bx, form):
    return _progn_of(bx, form.loc, form.items[1:])


def _if(bx, form):
    test, then, *rest = bx.args(form, 2, 3, "(if TEST THEN [ELSE])")
    other = bx.expand(rest[0]) if rest else Int(0, form.loc)
    return L(form.loc, "IF", bx.expand(test), bx.expand(then), other)


def _when(bx, form):
    test, *body = bx.args(form, 1, None, f"({form.items[0]} TEST BODY...)")
    branch = _progn_of(bx, form.loc, body)
    zero = Int(0, form.loc)
    if form.head_is("WHEN"):
        return L(form.loc, "IF", bx.expand(test), branch, zero)
    return L(form.loc, "IF", bx.expand(test), zero, branch)


def _cond(bx, form):
    loc = form.loc
    result: Form = Int(0, loc)
    for clause in reversed(form.items[1:]):
        if not isinstance(clause, List) or not clause.items:
            raise error(clause if isinstance(clause, List) else form, "malformed cond clause",
                        expected="(TEST BODY...)")
        test, *body = clause.items
        if isinstance(test, Symbol) and test.name in ("T", "OTHERWISE"):
            result = _progn_of(bx, clause.loc, body)
        elif not body:
            result = L(clause.loc, "OR", bx.expand(test), result)
        else:
            result = L(clause.loc, "IF", bx.expand(test), _progn_of(bx, clause.loc, body), result)
    return result


def _case(bx, form):
    key, *clauses = bx.args(form, 1, None, "(case KEY (VALUE BODY...)... [(otherwise BODY...)])")
    loc = form.loc
    var = bx.gensym("CASE", loc)
    result: Form = Int(0, loc)
    for i, clause in enumerate(reversed(clauses)):
        if not isinstance(clause, List) or not clause.items:
            raise error(clause if isinstance(clause, List) else form, "malformed case clause",
                        expected="(VALUE BODY...) or ((VALUE...) BODY...)")
        keys, *body = clause.items
        if is_nil(keys):  # as in Common Lisp, NIL and () are an empty key list: never matches
            continue
        branch = _progn_of(bx, clause.loc, body)
        if isinstance(keys, Symbol) and keys.name in ("T", "OTHERWISE"):
            if i != 0:
                raise error(clause, f"the {keys} clause must be the last one")
            result = branch
            continue
        values = keys.items if isinstance(keys, List) else (keys,)
        tests = [L(clause.loc, "=", var, bx.literal(v, clause, "a case key")) for v in values]
        test = tests[0] if len(tests) == 1 else L(clause.loc, "OR", *tests)
        result = L(clause.loc, "IF", test, branch, result)
    return L(loc, "LET", List((List((var, Symbol("NIL", loc), bx.expand(key)), loc),), loc), result)


def _and_or(bx, form):
    args = bx.expand_all(form.items[1:])
    if not args:
        return Int(1 if form.head_is("AND") else 0, form.loc)
    return args[0] if len(args) == 1 else L(form.loc, form.items[0].name, *args)


def _not(bx, form):
    (arg,) = bx.args(form, 1, 1)
    return L(form.loc, "NOT", bx.expand(arg))


def _return(bx, form):
    args = bx.args(form, 0, 1, "(return [VALUE])")
    return L(form.loc, "RETURN", bx.expand(args[0]) if args else Int(0, form.loc))


def _declare(bx, form):
    raise error(form, "declare is only allowed at the start of a let body",
                hint="put (declare (type T VAR)) right after the let bindings")


def _dotimes(bx, form):
    spec, *body = bx.args(form, 1, None, "(dotimes (VAR COUNT) BODY...)")
    if not isinstance(spec, List) or len(spec.items) != 2:
        raise error(form, "malformed dotimes", expected="(dotimes (VAR COUNT) BODY...)")
    var = bx.variable(spec.items[0], form)
    count = bx.literal(spec.items[1], form, "the dotimes count").value
    if not 0 <= count <= MAX_UNROLL:
        raise error(form, f"dotimes count {count} is out of range",
                    expected=f"0 to {MAX_UNROLL} (the loop is unrolled)")
    # Unrolled: each iteration sees VAR bound to its index, and assignments made by one
    # iteration are visible to the next, as in a loop.
    loc = form.loc
    iterations = [L(loc, "LET", List((List((var, Symbol("U64", loc), Int(i, loc)), loc),), loc),
                    *bx.expand_all(body)) for i in range(count)]
    return L(loc, "PROGN", *iterations, Int(0, loc))


MAX_UNROLL = 64


# -- arithmetic ----------------------------------------------------------------------------

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


# -- memory and context --------------------------------------------------------------------


def _pointer_and_offset(bx: BodyExpander, ptr: Form, off: Form, loc: Loc) -> tuple[Form, Int]:
    """A literal offset stays an offset; a computed one is added to the pointer."""
    pointer, offset = bx.expand(ptr), bx.expand(off)
    if isinstance(offset, Int):
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


def _ctx_place(bx: BodyExpander, form: List, store: bool = False) -> tuple[Symbol, Int]:
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


def _check_access(bx: BodyExpander, form: List, name: str, f: builtins.CtxField, store: bool) -> None:
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


def _checked_raw_ctx(bx: BodyExpander, form: List, typ: Symbol, off: Int,
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
    typ, off = _ctx_place(bx, form)
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


_FORMS = {
    "PROGN": _progn, "LET": _let, "LET*": _let_star, "WHEN-LET": _when_let, "IF-LET": _if_let,
    "SETF": _setf, "SETQ": _setf, "INCF": _incf, "DECF": _incf,
    "IF": _if, "WHEN": _when, "UNLESS": _when, "COND": _cond, "CASE": _case,
    "AND": _and_or, "OR": _and_or, "NOT": _not, "RETURN": _return, "DECLARE": _declare,
    "DOTIMES": _dotimes,
    **{name: _arith for name in _FOLDED}, "MOD": _mod, **{name: _shift for name in _SHIFTS}, "ASH": _ash,
    **{name: _compare for name in _COMPARISONS}, "CAST": _cast, **{name: _byte_order for name in _SWAPS},
    "LOAD": _load, "STORE": _store, "ATOMIC-ADD": _atomic_add,
    "CTX": _ctx, "CTX-LOAD": _ctx_load, "CTX-STORE": _ctx_store, "CTX-PTR": _ctx_ptr,
    **{name: _packet_bound for name in _PACKET_BOUNDS}, "STRUCT-ALLOC": _struct_alloc,
    **expand_maps.FORMS,
}

BUILTIN_NAMES = frozenset(_FORMS) | frozenset(builtins.HELPERS) | frozenset(protocols.ACCESSORS)
