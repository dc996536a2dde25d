"""A small, sandboxed compile-time Lisp: runs ``defmacro`` and ``defun`` bodies and constant
expressions over forms.

In: forms (``forms.Form``) and an ``Interpreter`` holding global constants, user functions
and a gensym counter. Out: forms. Values are forms themselves (``Int``, ``Str``, ``Symbol``,
``List``; ``NIL`` and ``()`` are both false) plus ``Closure`` for functions, so a macro's
result needs no conversion. The language: quote, backquote (nested, ``,`` and ``,@``),
``if when unless cond case let let* progn and or setq lambda function dolist``, lambda lists
with destructuring, ``&optional &rest &body &key``, and the list/number/string/symbol
functions in ``_BUILTINS``. There is no I/O of any kind; an unknown function is an error.
Every evaluation step counts against a budget and calls nest at most ``MAX_DEPTH`` deep, so
a runaway macro ends in ``MacroError`` rather than a hang.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable

from .forms import MAX_INT_BITS, NIL, Form, Int, List, Str, Symbol, T, is_nil

MAX_STEPS = 200_000
MAX_DEPTH = 120
# Doubling a list, string or number a few dozen times would exhaust memory within the step budget.
MAX_LIST = 100_000  # elements of one list
MAX_STRING = 100_000  # characters of one string


class MacroError(Exception):
    """Evaluation failed; the caller turns it into a located ``CompileError``."""


@dataclass
class LambdaList:
    required: list  # Symbol, or a nested LambdaList (destructuring)
    optional: list = field(default_factory=list)  # (pattern, default form, supplied-p Symbol|None)
    rest: Symbol | None = None
    keys: list = field(default_factory=list)  # (keyword name, Symbol, default form, supplied-p)
    allow_other_keys: bool = False


@dataclass
class Closure:
    name: str
    params: LambdaList
    body: tuple
    env: Env


class Env:
    def __init__(self, bindings: dict[str, object], parent: Env | None = None):
        self.vars = bindings
        self.parent = parent

    def lookup(self, name: str):
        env = self
        while env is not None:
            if name in env.vars:
                return env.vars[name]
            env = env.parent
        raise MacroError(f"unbound variable {name.lower()} in compile-time code")

    def assign(self, name: str, value) -> None:
        env = self
        while env is not None:
            if name in env.vars:
                env.vars[name] = value
                return
            env = env.parent
        raise MacroError(f"setq of unbound variable {name.lower()}")


class _Globals:
    """The outermost bindings, read live (a closure sees globals defined after it): the
    interpreter's constants, its defparameter variables, nil and t. Only variables assign."""

    def __init__(self, interp: Interpreter):
        self.interp = interp

    def __contains__(self, name: str) -> bool:
        return name in self.interp.variables or name in self.interp.constants or name in ("NIL", "T")

    def __getitem__(self, name: str):
        if name in ("NIL", "T"):
            return NIL if name == "NIL" else T
        if name in self.interp.variables:
            return self.interp.variables[name]
        return Int(self.interp.constants[name])

    def __setitem__(self, name: str, value) -> None:
        if name in ("NIL", "T") or name not in self.interp.variables:
            raise MacroError(f"{name.lower()} is a constant and cannot be assigned")
        self.interp.variables[name] = value


def truthy(value) -> bool:
    return not is_nil(value)


def _bool(flag: bool) -> Symbol:
    return T if flag else NIL


def as_items(value, what: str) -> tuple:
    if isinstance(value, List):
        return value.items
    if isinstance(value, Symbol) and value.name == "NIL":
        return ()
    raise MacroError(f"{what}: expected a list, got {_show(value)}")


def _int(value, what: str) -> int:
    if isinstance(value, Int):
        return value.value
    raise MacroError(f"{what}: expected an integer, got {_show(value)}")


def _show(value) -> str:
    return f"#<function {value.name.lower()}>" if isinstance(value, Closure) else str(value)


# -- lambda lists --------------------------------------------------------------------------

_MARKERS = {"&OPTIONAL", "&REST", "&BODY", "&KEY", "&ALLOW-OTHER-KEYS"}


def parse_lambda_list(form: Form) -> LambdaList:
    items = as_items(form, "lambda list")
    ll = LambdaList(required=[])
    mode = "required"
    i = 0
    while i < len(items):
        item = items[i]
        name = item.name if isinstance(item, Symbol) else None
        if name in _MARKERS:
            if name == "&ALLOW-OTHER-KEYS":
                ll.allow_other_keys = True
            elif name in ("&REST", "&BODY"):
                if i + 1 >= len(items) or not isinstance(items[i + 1], Symbol):
                    raise MacroError(f"{name.lower()} must be followed by a variable name")
                ll.rest = items[i + 1]
                i += 1
            else:
                mode = name
            i += 1
            continue
        if mode == "required":
            ll.required.append(item if isinstance(item, Symbol) else parse_lambda_list(item))
        elif mode == "&OPTIONAL":
            var, default, supplied = _param_spec(item)
            ll.optional.append((var, default, supplied))
        else:  # &KEY
            var, default, supplied = _param_spec(item)
            if not isinstance(var, Symbol):
                raise MacroError(f"bad &key parameter {item}")
            ll.keys.append((":" + var.name, var, default, supplied))
        i += 1
    for var in ll.required:
        if isinstance(var, Symbol) and var.is_keyword:
            raise MacroError(f"{var} cannot be a parameter name")
    return ll


def _param_spec(item: Form):
    if isinstance(item, Symbol):
        return item, NIL, None
    parts = as_items(item, "parameter")
    if not parts or len(parts) > 3:
        raise MacroError(f"bad parameter {item}")
    var = parts[0] if isinstance(parts[0], Symbol) else parse_lambda_list(parts[0])
    return var, parts[1] if len(parts) > 1 else NIL, parts[2] if len(parts) > 2 else None


# -- the interpreter -----------------------------------------------------------------------


class Interpreter:
    """Evaluates compile-time code. ``constants`` and ``functions`` are shared with the caller,
    so later ``defconstant``/``defun`` forms are visible to earlier-defined macros."""

    def __init__(self, constants: dict[str, int], functions: dict[str, Closure] | None = None):
        self.constants = constants
        self.functions: dict[str, Closure] = {} if functions is None else functions
        self.variables: dict[str, object] = {}  # defparameter/defvar globals
        self.gensym_counter = 0
        self.steps = 0
        self.depth = 0

    # entry points ----------------------------------------------------------------------
    def eval_toplevel(self, form: Form):
        """Evaluate a constant expression such as ``(* 256 1024)`` with a fresh budget."""
        self.steps = 0
        return self._guarded(lambda: self.eval(form, self.global_env()))

    def call(self, fn: Closure, args: list):
        """Apply ``fn`` (a macro's expander) with a fresh budget."""
        self.steps = 0
        return self._guarded(lambda: self.apply(fn, args))

    def make_closure(self, name: str, lambda_list: Form, body: tuple) -> Closure:
        return Closure(name, parse_lambda_list(lambda_list), _strip_doc_and_declare(body), self.global_env())

    def global_env(self) -> Env:
        return Env(_Globals(self))

    def gensym(self, prefix: str = "G") -> Symbol:
        self.gensym_counter += 1
        # '#:' cannot begin a symbol the reader produces, so a gensym never captures a user name.
        return Symbol(f"#:{prefix}{self.gensym_counter}")

    def _guarded(self, thunk):
        try:
            return thunk()
        except RecursionError:
            raise MacroError("compile-time recursion too deep") from None

    # evaluation ------------------------------------------------------------------------
    def eval(self, form: Form, env: Env):
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise MacroError(f"gave up after {MAX_STEPS} evaluation steps (runaway recursion or loop?)")
        if isinstance(form, Symbol):
            return form if form.is_keyword else env.lookup(form.name)
        if isinstance(form, (Int, Str)):
            return form
        if not form.items:
            return NIL
        head = form.items[0]
        if isinstance(head, Symbol):
            special = _SPECIAL.get(head.name)
            if special is not None:
                return special(self, form, env)
            fn = self.function_named(head.name)
        elif isinstance(head, List) and head.head_is("LAMBDA"):
            fn = self.eval(head, env)
        else:
            raise MacroError(f"cannot call {head}")
        return self.apply(fn, [self.eval(a, env) for a in form.items[1:]])

    def function_named(self, name: str):
        if name in self.functions:
            return self.functions[name]
        builtin = _BUILTINS.get(name)
        if builtin is None:
            raise MacroError(f"unknown function {name.lower()} in compile-time code")
        return functools.partial(builtin, self) if name in _NEEDS_INTERP else builtin

    def apply(self, fn, args: list):
        if isinstance(fn, Closure):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.depth = 0
                raise MacroError(f"calls nested more than {MAX_DEPTH} deep (runaway recursion?)")
            try:
                env = Env({}, fn.env)
                self.bind(fn.params, args, env, fn.name)
                return self.progn(fn.body, env)
            finally:
                self.depth = max(self.depth - 1, 0)
        if callable(fn):
            return fn(*args)
        raise MacroError(f"{_show(fn)} is not a function")

    def progn(self, body, env: Env):
        result = NIL
        for f in body:
            result = self.eval(f, env)
        return result

    def bind(self, ll: LambdaList, args: list, env: Env, name: str) -> None:
        args = list(args)
        if len(args) < len(ll.required):
            raise MacroError(f"{name.lower()}: too few arguments (expected at least {len(ll.required)}, "
                             f"got {len(args)})")
        for pattern in ll.required:
            self._bind_pattern(pattern, args.pop(0), env, name)
        for pattern, default, supplied in ll.optional:
            given = bool(args)
            self._bind_pattern(pattern, args.pop(0) if given else self.eval(default, env), env, name)
            if supplied is not None:
                env.vars[supplied.name] = _bool(given)
        if ll.rest is not None:
            env.vars[ll.rest.name] = List(tuple(args))
        if ll.keys:
            if len(args) % 2:
                raise MacroError(f"{name.lower()}: odd number of &key arguments")
            given = {}
            for k, v in zip(args[::2], args[1::2]):
                if not (isinstance(k, Symbol) and k.is_keyword):
                    raise MacroError(f"{name.lower()}: expected a keyword, got {_show(k)}")
                given.setdefault(k.name, v)
            known = {key for key, *_rest in ll.keys}
            unknown = sorted(set(given) - known)
            if unknown and not ll.allow_other_keys:
                raise MacroError(f"{name.lower()}: unknown keyword {unknown[0].lower()} "
                                 f"(expected one of {', '.join(sorted(k.lower() for k in known))})")
            for key, var, default, supplied in ll.keys:
                env.vars[var.name] = given[key] if key in given else self.eval(default, env)
                if supplied is not None:
                    env.vars[supplied.name] = _bool(key in given)
        elif args and ll.rest is None:
            raise MacroError(f"{name.lower()}: too many arguments (expected at most "
                             f"{len(ll.required) + len(ll.optional)}, got "
                             f"{len(ll.required) + len(ll.optional) + len(args)})")

    def _bind_pattern(self, pattern, value, env: Env, name: str) -> None:
        if isinstance(pattern, Symbol):
            env.vars[pattern.name] = value
        else:
            self.bind(pattern, list(as_items(value, f"{name.lower()}: destructuring")), env, name)


def _strip_doc_and_declare(body: tuple) -> tuple:
    body = tuple(body)
    if len(body) > 1 and isinstance(body[0], Str):
        body = body[1:]
    while body and isinstance(body[0], List) and body[0].head_is("DECLARE"):
        body = body[1:]
    return body


# -- special forms -------------------------------------------------------------------------


def _args(form: List, n_min: int, n_max: int | None = None) -> tuple:
    args = form.items[1:]
    if len(args) < n_min or (n_max is not None and len(args) > n_max):
        want = str(n_min) if n_max == n_min else f"{n_min}..{'' if n_max is None else n_max}"
        raise MacroError(f"{form.items[0]}: expected {want} arguments, got {len(args)}")
    return args


def _quote(interp, form, env):
    return _args(form, 1, 1)[0]


def _function(interp, form, env):
    (target,) = _args(form, 1, 1)
    if isinstance(target, Symbol):
        return interp.function_named(target.name)
    return interp.eval(target, env)


def _lambda(interp, form, env):
    ll, *body = _args(form, 1)
    return Closure("lambda", parse_lambda_list(ll), _strip_doc_and_declare(body), env)


def _if(interp, form, env):
    test, then, *rest = _args(form, 2, 3)
    if truthy(interp.eval(test, env)):
        return interp.eval(then, env)
    return interp.eval(rest[0], env) if rest else NIL


def _when(interp, form, env):
    test, *body = _args(form, 1)
    return interp.progn(body, env) if truthy(interp.eval(test, env)) else NIL


def _unless(interp, form, env):
    test, *body = _args(form, 1)
    return NIL if truthy(interp.eval(test, env)) else interp.progn(body, env)


def _cond(interp, form, env):
    for clause in form.items[1:]:
        parts = as_items(clause, "cond clause")
        if not parts:
            raise MacroError("empty cond clause")
        value = interp.eval(parts[0], env)
        if truthy(value):
            return interp.progn(parts[1:], env) if len(parts) > 1 else value
    return NIL


def _case(interp, form, env):
    key, *clauses = _args(form, 1)
    value = interp.eval(key, env)
    for clause in clauses:
        keys, *body = as_items(clause, "case clause")
        if isinstance(keys, Symbol) and keys.name in ("T", "OTHERWISE"):
            return interp.progn(body, env)
        if any(_eql(value, k) for k in (keys.items if isinstance(keys, List) else (keys,))):
            return interp.progn(body, env)
    return NIL


def _bindings(form: Form):
    for b in as_items(form, "let bindings"):
        if isinstance(b, Symbol):
            yield b, NIL
        else:
            parts = as_items(b, "let binding")
            if not parts or len(parts) > 2 or not isinstance(parts[0], Symbol):
                raise MacroError(f"malformed let binding {b}")
            yield parts[0], parts[1] if len(parts) == 2 else NIL


def _let(interp, form, env):
    bindings, *body = _args(form, 1)
    values = {var.name: interp.eval(init, env) for var, init in _bindings(bindings)}
    return interp.progn(_strip_doc_and_declare(body), Env(values, env))


def _let_star(interp, form, env):
    bindings, *body = _args(form, 1)
    inner = Env({}, env)
    for var, init in _bindings(bindings):
        inner = Env({var.name: interp.eval(init, inner)}, inner)
    return interp.progn(_strip_doc_and_declare(body), inner)


def _progn(interp, form, env):
    return interp.progn(form.items[1:], env)


def _and(interp, form, env):
    value = T
    for f in form.items[1:]:
        value = interp.eval(f, env)
        if not truthy(value):
            return NIL
    return value


def _or(interp, form, env):
    for f in form.items[1:]:
        value = interp.eval(f, env)
        if truthy(value):
            return value
    return NIL


def _setq(interp, form, env):
    args = form.items[1:]
    if len(args) % 2:
        raise MacroError(f"{form.items[0]}: odd number of arguments")
    value = NIL
    for var, expr in zip(args[::2], args[1::2]):
        if not isinstance(var, Symbol):
            raise MacroError(f"{form.items[0]}: only variables can be assigned at compile time, not {var}")
        value = interp.eval(expr, env)
        env.assign(var.name, value)
    return value


def _dolist(interp, form, env):
    spec, *body = _args(form, 1)
    parts = as_items(spec, "dolist spec")
    if len(parts) not in (2, 3) or not isinstance(parts[0], Symbol):
        raise MacroError("dolist: expected (VAR LIST [RESULT])")
    inner = Env({parts[0].name: NIL}, env)
    for item in as_items(interp.eval(parts[1], env), "dolist"):
        inner.vars[parts[0].name] = item
        interp.progn(body, inner)
    return interp.eval(parts[2], inner) if len(parts) == 3 else NIL


def _quasiquote(interp, form, env):
    (template,) = _args(form, 1, 1)
    return _qq(interp, template, env, 1)


def _qq(interp, form, env, depth: int):
    if not isinstance(form, List) or not form.items:
        return form
    if form.head_is("UNQUOTE", "UNQUOTE-SPLICING") and len(form.items) == 2:
        if form.head_is("UNQUOTE-SPLICING") and depth == 1:
            raise MacroError(",@ outside of a list")
        if depth == 1:
            return interp.eval(form.items[1], env)
        return List((form.items[0], _qq(interp, form.items[1], env, depth - 1)), form.loc)
    if form.head_is("QUASIQUOTE") and len(form.items) == 2:
        return List((form.items[0], _qq(interp, form.items[1], env, depth + 1)), form.loc)
    out: list = []
    for item in form.items:
        if isinstance(item, List) and item.head_is("UNQUOTE-SPLICING") and len(item.items) == 2 and depth == 1:
            out.extend(as_items(interp.eval(item.items[1], env), ",@"))
        else:
            out.append(_qq(interp, item, env, depth))
    return List(tuple(out), form.loc)


_SPECIAL: dict[str, Callable] = {
    "QUOTE": _quote, "FUNCTION": _function, "LAMBDA": _lambda, "IF": _if, "WHEN": _when,
    "UNLESS": _unless, "COND": _cond, "CASE": _case, "LET": _let, "LET*": _let_star,
    "PROGN": _progn, "AND": _and, "OR": _or, "SETQ": _setq, "SETF": _setq, "DOLIST": _dolist,
    "QUASIQUOTE": _quasiquote,
}


# -- built-in functions --------------------------------------------------------------------


def _eql(a, b) -> bool:
    if isinstance(a, (Symbol, Int)) and type(a) is type(b):
        return a == b
    if is_nil(a) and is_nil(b):
        return True
    return a is b


def _equal(a, b) -> bool:
    if is_nil(a) and is_nil(b):
        return True
    if isinstance(a, List) and isinstance(b, List):
        return len(a.items) == len(b.items) and all(_equal(x, y) for x, y in zip(a.items, b.items))
    return _eql(a, b) or (isinstance(a, Str) and a == b)


def _lst(items) -> Form:
    items = tuple(items)
    if len(items) > MAX_LIST:
        raise MacroError(f"a list grew past {MAX_LIST} elements")
    return List(items) if items else NIL


def _car(x):
    items = as_items(x, "car")
    return items[0] if items else NIL


def _cdr(x):
    return _lst(as_items(x, "cdr")[1:])


def _nth(n, x):
    items = as_items(x, "nth")
    i = _int(n, "nth")
    return items[i] if 0 <= i < len(items) else NIL


def _cons(a, b):
    if not (isinstance(b, List) or is_nil(b)):
        raise MacroError(f"cons: dotted pairs are not supported ({_show(a)} . {_show(b)})")
    return List((a, *as_items(b, "cons")))


def _list_star(*args):
    if not args:
        raise MacroError("list*: needs at least one argument")
    return _cons_all(args[:-1], args[-1])


def _cons_all(heads, tail):
    return _lst((*heads, *as_items(tail, "list*")))


def _append(*lists):
    return _lst(item for x in lists for item in as_items(x, "append"))


def _mapcar(interp, fn, *lists):
    if not lists:
        raise MacroError("mapcar: needs a list")
    columns = zip(*(as_items(x, "mapcar") for x in lists))
    return _lst(interp.apply(fn, list(col)) for col in columns)


def _mapcan(interp, fn, *lists):
    return _append(*as_items(_mapcar(interp, fn, *lists), "mapcan"))


def _funcall(interp, fn, *args):
    return interp.apply(_callable(interp, fn), list(args))


def _apply(interp, fn, *args):
    if not args:
        raise MacroError("apply: needs an argument list")
    return interp.apply(_callable(interp, fn), [*args[:-1], *as_items(args[-1], "apply")])


def _callable(interp, fn):
    return interp.function_named(fn.name) if isinstance(fn, Symbol) else fn


def _member(interp, item, x, *options):
    test = _test_option(interp, options)
    items = as_items(x, "member")
    for i, candidate in enumerate(items):
        if test(item, candidate):
            return List(items[i:])
    return NIL


def _assoc(interp, key, alist, *options):
    test = _test_option(interp, options)
    for pair in as_items(alist, "assoc"):
        entry = as_items(pair, "assoc entry")
        if entry and test(key, entry[0]):
            return pair
    return NIL


def _test_option(interp, options):
    if not options:
        return _eql
    if len(options) != 2 or not (isinstance(options[0], Symbol) and options[0].name == ":TEST"):
        raise MacroError("only the :test option is supported")
    fn = _callable(interp, options[1])
    return lambda a, b: truthy(interp.apply(fn, [a, b]))


def _gensym(interp, prefix=None):
    return interp.gensym(prefix.value.upper() if isinstance(prefix, Str) else "G")


def _error(interp, fmt, *args):
    text = _format(NIL, fmt, *args).value if isinstance(fmt, Str) else _show(fmt)
    raise MacroError(text)


_DIRECTIVE = re.compile(r"~(.?)", re.DOTALL)


def _format(dest, fmt, *args):
    if not is_nil(dest):
        raise MacroError("format: only (format nil ...) is supported (no output at compile time)")
    if not isinstance(fmt, Str):
        raise MacroError("format: the control string must be a string")
    pending = list(args)

    def one(match: re.Match) -> str:
        d = match.group(1).upper()
        if d == "%":
            return "\n"
        if d == "~":
            return "~"
        if d not in ("A", "D", "S", "X"):
            raise MacroError(f"format: unsupported directive ~{match.group(1)} in {fmt} "
                             "(supported: ~A ~D ~S ~X ~% ~~)")
        if not pending:
            raise MacroError(f"format: not enough arguments for {fmt}")
        arg = pending.pop(0)
        if d == "X":
            return format(_int(arg, "format ~X"), "X")
        if d == "S":
            return _show(arg)
        return arg.value if isinstance(arg, Str) else arg.name if isinstance(arg, Symbol) else _show(arg)

    return _string(_DIRECTIVE.sub(one, fmt.value))


def _string_of(x) -> str:
    if isinstance(x, Str):
        return x.value
    if isinstance(x, Symbol):
        return x.name
    raise MacroError(f"expected a string or symbol, got {_show(x)}")


def _concatenate(kind, *parts):
    if not (isinstance(kind, Symbol) and kind.name == "STRING"):
        raise MacroError("concatenate: only 'string is supported")
    return _string("".join(_string_of(p) for p in parts))


def _string(text: str) -> Str:
    if len(text) > MAX_STRING:
        raise MacroError(f"a string grew past {MAX_STRING} characters")
    return Str(text)


def _intern(name, *package):
    return Symbol(_string_of(name))


def _number(value: int) -> Int:
    if value.bit_length() > MAX_INT_BITS:
        raise MacroError(f"an integer grew past {MAX_INT_BITS} bits")
    return Int(value)


def _arith(op, identity=None):
    def fn(*args):
        values = [_int(a, "arithmetic") for a in args]
        if not values:
            if identity is None:
                raise MacroError("arithmetic needs an argument")
            return Int(identity)
        return functools.reduce(lambda a, b: _number(op(a.value, b)), values[1:], _number(values[0]))
    return fn


def _minus(*args):
    values = [_int(a, "-") for a in args]
    if not values:
        raise MacroError("-: needs an argument")
    return _number(-values[0] if len(values) == 1 else functools.reduce(lambda a, b: a - b, values))


def _ash(x, n):
    value, count = _int(x, "ash"), _int(n, "ash")
    if value and count > MAX_INT_BITS:  # checked first: the shift itself would exhaust memory
        raise MacroError(f"ash: shifting by {count} grows an integer past {MAX_INT_BITS} bits")
    return _number(value << count if count >= 0 else value >> -count)


def _divide(op):
    def fn(a, b):
        divisor = _int(b, "division")
        if divisor == 0:
            raise MacroError("division by zero")
        return Int(op(_int(a, "division"), divisor))
    return fn


def _truncate(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _compare(op):
    def fn(*args):
        values = [_int(a, "comparison") for a in args]
        return _bool(all(op(x, y) for x, y in zip(values, values[1:])))
    return fn


def _pred(test):
    return lambda x: _bool(test(x))


_BUILTINS: dict[str, Callable] = {
    "CAR": _car, "FIRST": _car, "CDR": _cdr, "REST": _cdr,
    "SECOND": lambda x: _nth(Int(1), x), "THIRD": lambda x: _nth(Int(2), x),
    "FOURTH": lambda x: _nth(Int(3), x), "NTH": _nth,
    "NTHCDR": lambda n, x: _lst(as_items(x, "nthcdr")[_int(n, "nthcdr"):]),
    "LAST": lambda x, *n: _lst(as_items(x, "last")[-(_int(n[0], "last") if n else 1):]
                               if (not n or _int(n[0], "last")) else ()),
    "CONS": _cons, "LIST": lambda *xs: _lst(xs), "LIST*": _list_star, "APPEND": _append,
    "REVERSE": lambda x: _lst(reversed(as_items(x, "reverse"))),
    "LENGTH": lambda x: Int(len(x.value) if isinstance(x, Str) else len(as_items(x, "length"))),
    "MAPCAR": _mapcar, "MAPCAN": _mapcan, "FUNCALL": _funcall, "APPLY": _apply,
    "MEMBER": _member, "ASSOC": _assoc, "IDENTITY": lambda x: x,
    "EQ": lambda a, b: _bool(_eql(a, b)), "EQL": lambda a, b: _bool(_eql(a, b)),
    "EQUAL": lambda a, b: _bool(_equal(a, b)),
    "NOT": _pred(lambda x: not truthy(x)), "NULL": _pred(lambda x: not truthy(x)),
    "LISTP": _pred(lambda x: isinstance(x, List) or is_nil(x)),
    "CONSP": _pred(lambda x: isinstance(x, List) and bool(x.items)),
    "ATOM": _pred(lambda x: not (isinstance(x, List) and x.items)),
    "SYMBOLP": _pred(lambda x: isinstance(x, Symbol) or is_nil(x)),
    "KEYWORDP": _pred(lambda x: isinstance(x, Symbol) and x.is_keyword),
    "INTEGERP": _pred(lambda x: isinstance(x, Int)), "NUMBERP": _pred(lambda x: isinstance(x, Int)),
    "STRINGP": _pred(lambda x: isinstance(x, Str)),
    "FUNCTIONP": _pred(lambda x: isinstance(x, Closure) or callable(x)),
    "ZEROP": _pred(lambda x: _int(x, "zerop") == 0), "PLUSP": _pred(lambda x: _int(x, "plusp") > 0),
    "MINUSP": _pred(lambda x: _int(x, "minusp") < 0), "EVENP": _pred(lambda x: _int(x, "evenp") % 2 == 0),
    "ODDP": _pred(lambda x: _int(x, "oddp") % 2 == 1),
    "+": _arith(lambda a, b: a + b, 0), "*": _arith(lambda a, b: a * b, 1), "-": _minus,
    "LOGAND": _arith(lambda a, b: a & b, -1), "LOGIOR": _arith(lambda a, b: a | b, 0),
    "LOGXOR": _arith(lambda a, b: a ^ b, 0),
    "MIN": _arith(min), "MAX": _arith(max), "ABS": lambda x: Int(abs(_int(x, "abs"))),
    "1+": lambda x: _number(_int(x, "1+") + 1), "1-": lambda x: _number(_int(x, "1-") - 1),
    "FLOOR": _divide(lambda a, b: a // b), "TRUNCATE": _divide(_truncate), "/": _divide(_truncate),
    "MOD": _divide(lambda a, b: a % b), "REM": _divide(lambda a, b: a - b * _truncate(a, b)),
    "ASH": _ash,
    "=": _compare(lambda a, b: a == b), "/=": _compare(lambda a, b: a != b),
    "<": _compare(lambda a, b: a < b), "<=": _compare(lambda a, b: a <= b),
    ">": _compare(lambda a, b: a > b), ">=": _compare(lambda a, b: a >= b),
    "GENSYM": _gensym, "ERROR": _error, "FORMAT": _format, "CONCATENATE": _concatenate,
    "INTERN": _intern, "MAKE-SYMBOL": lambda name: Symbol(_string_of(name)),
    "SYMBOL-NAME": lambda s: Str(_string_of(s)),
    "STRING": lambda x: Str(_string_of(x)),
    "STRING-UPCASE": lambda x: Str(_string_of(x).upper()),
    "STRING-DOWNCASE": lambda x: Str(_string_of(x).lower()),
    "STRING=": lambda a, b: _bool(_string_of(a) == _string_of(b)),
}

# Built-ins that call back into the interpreter (function arguments, gensym counter).
_NEEDS_INTERP = {"MAPCAR", "MAPCAN", "FUNCALL", "APPLY", "MEMBER", "ASSOC", "GENSYM", "ERROR"}
