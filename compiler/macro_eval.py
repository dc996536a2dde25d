"""A small, sandboxed compile-time Lisp: runs ``defmacro`` and ``defun`` bodies and constant
expressions over forms.

In: forms (``forms.Form``) and an ``Interpreter`` holding global constants, user functions,
a gensym counter and the compile's ``budget.Budget``. Out: forms. Values are forms themselves
(``Int``, ``Str``, ``Symbol``, ``List``; ``NIL`` and ``()`` are both false) plus ``Closure`` and
``Builtin`` for functions, so a macro's result needs no conversion. The language: quote,
backquote (nested, ``,`` and ``,@``), ``if when unless cond case let let* progn and or setq
lambda function dolist``, lambda lists with destructuring, ``&optional &rest &body &key``,
and the list/number/string/symbol functions in ``_BUILTINS``. There is no I/O of any kind; an
unknown function, or a built-in called with the wrong number of arguments, is an error.

Compile-time code is untrusted (a playbook's source is compiled inside Ansible), so all of its
work is bounded: every evaluation step, loop iteration and element a built-in walks is charged
to the compile's one budget, and so is the size of every value, before it is built. Calls nest
at most ``MAX_DEPTH`` deep, a list has at most ``MAX_LIST`` elements, a string ``MAX_STRING``
characters and an integer ``forms.MAX_INT_BITS`` bits. Equality and printing walk without
recursion. Anything past a bound ends in ``MacroError``, never a hang or a crash.
"""

from __future__ import annotations

from .budget import ATOM_BYTES, FUNCTION_BYTES, Budget, OverBudget
from .forms import MAX_INT_BITS, NIL, Form, Int, List, Str, Symbol, T, is_nil, show, write

MAX_DEPTH = 120
MAX_LIST = 100_000  # elements of one list
MAX_STRING = 100_000  # characters of one string
MAX_MESSAGE = 500  # characters of an (error ...) message


class MacroError(Exception):
    """Evaluation failed; the caller turns it into a located ``CompileError``."""


class LambdaList:
    __slots__ = ("required", "optional", "rest", "keys", "allow_other_keys")

    def __init__(self) -> None:
        self.required: list = []  # Symbol, or a nested LambdaList (destructuring)
        self.optional: list = []  # (pattern, default form, supplied-p Symbol|None)
        self.rest: Symbol | None = None
        self.keys: list = []  # (keyword name, Symbol, default form, supplied-p)
        self.allow_other_keys = False


class Closure:
    """A user function: ``defun``, ``defmacro``'s expander, or a ``lambda``."""

    __slots__ = ("name", "params", "body", "env")

    def __init__(self, name: str, params: LambdaList, body: tuple, env: Env):
        self.name, self.params, self.body, self.env = name, params, body, env

    def __str__(self) -> str:
        return f"#<function {self.name.lower()}>"

    __repr__ = __str__


class Builtin:
    """A built-in function as a value (``#'car``). ``fn`` takes the interpreter first; the
    arity is read off ``fn``'s own parameters."""

    __slots__ = ("name", "fn", "min_args", "max_args")

    def __init__(self, name: str, fn):
        code = fn.__code__
        self.name, self.fn = name, fn
        self.max_args = None if code.co_flags & 0x04 else code.co_argcount - 1  # 0x04: *args
        self.min_args = code.co_argcount - 1 - len(fn.__defaults__ or ())

    def check_arity(self, n: int) -> None:
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            want = (str(self.min_args) if self.max_args == self.min_args else
                    f"at least {self.min_args}" if self.max_args is None else f"{self.min_args} to {self.max_args}")
            raise MacroError(f"{self.name.lower()}: expected {want} argument{'' if want == '1' else 's'}, got {n}")

    def __str__(self) -> str:
        return f"#<function {self.name.lower()}>"

    __repr__ = __str__


class Env:
    __slots__ = ("vars", "parent")

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
    return show(value, 80)


# -- lambda lists --------------------------------------------------------------------------

_MARKERS = {"&OPTIONAL", "&REST", "&BODY", "&KEY", "&ALLOW-OTHER-KEYS"}


def parse_lambda_list(form: Form) -> LambdaList:
    items = as_items(form, "lambda list")
    ll = LambdaList()
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
                raise MacroError(f"bad &key parameter {_show(item)}")
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
    if not parts or len(parts) > 3 or (len(parts) == 3 and not isinstance(parts[2], Symbol)):
        raise MacroError(f"bad parameter {_show(item)}")
    var = parts[0] if isinstance(parts[0], Symbol) else parse_lambda_list(parts[0])
    return var, parts[1] if len(parts) > 1 else NIL, parts[2] if len(parts) > 2 else None


# -- the interpreter -----------------------------------------------------------------------


class Interpreter:
    """Evaluates compile-time code. ``constants`` and ``functions`` are shared with the caller,
    so later ``defconstant``/``defun`` forms are visible to earlier-defined macros. ``budget``
    is the compile's: every call of ``eval_toplevel`` and ``call`` draws on the same one."""

    def __init__(self, constants: dict[str, int], functions: dict[str, Closure] | None = None,
                 budget: Budget | None = None):
        self.constants = constants
        self.functions: dict[str, Closure] = {} if functions is None else functions
        self.variables: dict[str, object] = {}  # defparameter/defvar globals
        self.budget = Budget() if budget is None else budget
        self.globals = Env(_Globals(self))
        self.gensym_counter = 0
        self.depth = 0

    # entry points ----------------------------------------------------------------------
    def eval_toplevel(self, form: Form):
        """Evaluate a constant expression such as ``(* 256 1024)``."""
        return self._guarded(self.eval, form, self.globals)

    def call(self, fn: Closure, args: list):
        """Apply ``fn`` (a macro's expander) to ``args``."""
        return self._guarded(self.apply, fn, args)

    def make_closure(self, name: str, lambda_list: Form, body: tuple) -> Closure:
        return Closure(name, parse_lambda_list(lambda_list), _strip_doc_and_declare(body), self.globals)

    def gensym(self, prefix: str = "G") -> Symbol:
        self.gensym_counter += 1
        # '#:' cannot begin a symbol the reader produces, so a gensym never captures a user name.
        return Symbol(f"#:{prefix}{self.gensym_counter}")

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except OverBudget as exc:
            raise MacroError(f"{exc} (a runaway loop or recursion?)") from None
        except RecursionError:
            raise MacroError("compile-time code nests too deeply") from None
        finally:
            self.depth = 0

    # evaluation ------------------------------------------------------------------------
    def eval(self, form: Form, env: Env):
        self.budget.step()
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
            raise MacroError(f"cannot call {_show(head)}")
        return self.apply(fn, [self.eval(a, env) for a in form.items[1:]])

    def function_named(self, name: str):
        if name in self.functions:
            return self.functions[name]
        builtin = _BUILTINS.get(name)
        if builtin is None:
            raise MacroError(f"unknown function {name.lower()} in compile-time code")
        return builtin

    def apply(self, fn, args: list):
        self.budget.step()
        if isinstance(fn, Builtin):
            fn.check_arity(len(args))
            return fn.fn(self, *args)
        if isinstance(fn, Closure):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise MacroError(f"calls nested more than {MAX_DEPTH} deep (runaway recursion?)")
            try:
                env = Env({}, fn.env)
                self.bind(fn.params, args, env, fn.name)
                return self.progn(fn.body, env)
            finally:
                self.depth -= 1
        raise MacroError(f"{_show(fn)} is not a function")

    def progn(self, body, env: Env):
        result = NIL
        for f in body:
            result = self.eval(f, env)
        return result

    def bind(self, ll: LambdaList, args: list, env: Env, name: str) -> None:
        if len(args) < len(ll.required):
            raise MacroError(f"{name.lower()}: too few arguments (expected at least {len(ll.required)}, "
                             f"got {len(args)})")
        for pattern, arg in zip(ll.required, args):
            self._bind_pattern(pattern, arg, env, name)
        rest = args[len(ll.required):]
        for i, (pattern, default, supplied) in enumerate(ll.optional):
            given = i < len(rest)
            self._bind_pattern(pattern, rest[i] if given else self.eval(default, env), env, name)
            if supplied is not None:
                env.vars[supplied.name] = _bool(given)
        rest = rest[len(ll.optional):]
        if ll.rest is not None:
            env.vars[ll.rest.name] = new_list(self, rest)
        if ll.keys:
            if len(rest) % 2:
                raise MacroError(f"{name.lower()}: odd number of &key arguments")
            given = {}
            for k, v in zip(rest[::2], rest[1::2]):
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
        elif rest and ll.rest is None:
            raise MacroError(f"{name.lower()}: too many arguments (expected at most "
                             f"{len(ll.required) + len(ll.optional)}, got {len(args)})")

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


# -- values, charged before they are built ---------------------------------------------------


def new_list(it: Interpreter, items) -> Form:
    """A list of ``items`` (a sequence whose length is known), or NIL when empty."""
    if len(items) > MAX_LIST:
        raise MacroError(f"a list grew past {MAX_LIST} elements")
    it.budget.list_of(len(items))
    return List(tuple(items)) if items else NIL


def _new_string(it: Interpreter, text: str) -> Str:
    _check_length(len(text))
    it.budget.text_of(len(text))
    return Str(text)


def _check_length(n_chars: int) -> None:
    if n_chars > MAX_STRING:
        raise MacroError(f"a string grew past {MAX_STRING} characters")


def _number(it: Interpreter, value: int) -> Int:
    bits = value.bit_length()
    if bits > MAX_INT_BITS:
        raise MacroError(f"an integer grew past {MAX_INT_BITS} bits")
    it.budget.alloc(ATOM_BYTES + bits // 8)
    return Int(value)


# -- special forms -------------------------------------------------------------------------


def _args(form: List, n_min: int, n_max: int | None = None) -> tuple:
    args = form.items[1:]
    if len(args) < n_min or (n_max is not None and len(args) > n_max):
        want = str(n_min) if n_max == n_min else f"{n_min}..{'' if n_max is None else n_max}"
        raise MacroError(f"{form.items[0]}: expected {want} arguments, got {len(args)}")
    return args


def _quote(it, form, env):
    return _args(form, 1, 1)[0]


def _function(it, form, env):
    (target,) = _args(form, 1, 1)
    if isinstance(target, Symbol):
        return it.function_named(target.name)
    return it.eval(target, env)


def _lambda(it, form, env):
    ll, *body = _args(form, 1)
    it.budget.alloc(FUNCTION_BYTES)
    return Closure("lambda", parse_lambda_list(ll), _strip_doc_and_declare(body), env)


def _if(it, form, env):
    test, then, *rest = _args(form, 2, 3)
    if truthy(it.eval(test, env)):
        return it.eval(then, env)
    return it.eval(rest[0], env) if rest else NIL


def _when(it, form, env):
    test, *body = _args(form, 1)
    return it.progn(body, env) if truthy(it.eval(test, env)) else NIL


def _unless(it, form, env):
    test, *body = _args(form, 1)
    return NIL if truthy(it.eval(test, env)) else it.progn(body, env)


def _cond(it, form, env):
    for clause in form.items[1:]:
        parts = as_items(clause, "cond clause")
        if not parts:
            raise MacroError("empty cond clause")
        value = it.eval(parts[0], env)
        if truthy(value):
            return it.progn(parts[1:], env) if len(parts) > 1 else value
    return NIL


def _case(it, form, env):
    key, *clauses = _args(form, 1)
    value = it.eval(key, env)
    for clause in clauses:
        parts = as_items(clause, "case clause")
        if not parts:
            raise MacroError("empty case clause")
        keys, *body = parts
        if isinstance(keys, Symbol) and keys.name in ("T", "OTHERWISE"):
            return it.progn(body, env)
        if any(_eql(value, k) for k in (keys.items if isinstance(keys, List) else (keys,))):
            return it.progn(body, env)
    return NIL


def _bindings(form: Form):
    for b in as_items(form, "let bindings"):
        if isinstance(b, Symbol):
            yield b, NIL
        else:
            parts = as_items(b, "let binding")
            if not parts or len(parts) > 2 or not isinstance(parts[0], Symbol):
                raise MacroError(f"malformed let binding {_show(b)}")
            yield parts[0], parts[1] if len(parts) == 2 else NIL


def _let(it, form, env):
    bindings, *body = _args(form, 1)
    values = {var.name: it.eval(init, env) for var, init in _bindings(bindings)}
    return it.progn(_strip_doc_and_declare(body), Env(values, env))


def _let_star(it, form, env):
    bindings, *body = _args(form, 1)
    # One frame for the whole let*, and a new one only when a name is bound again, so that a
    # long let* does not make every variable lookup in its body walk a long chain of frames.
    inner = Env({}, env)
    for var, init in _bindings(bindings):
        value = it.eval(init, inner)
        if var.name in inner.vars:
            inner = Env({}, inner)
        inner.vars[var.name] = value
    return it.progn(_strip_doc_and_declare(body), inner)


def _progn(it, form, env):
    return it.progn(form.items[1:], env)


def _and(it, form, env):
    value = T
    for f in form.items[1:]:
        value = it.eval(f, env)
        if not truthy(value):
            return NIL
    return value


def _or(it, form, env):
    for f in form.items[1:]:
        value = it.eval(f, env)
        if truthy(value):
            return value
    return NIL


def _setq(it, form, env):
    args = form.items[1:]
    if len(args) % 2:
        raise MacroError(f"{form.items[0]}: odd number of arguments")
    value = NIL
    for var, expr in zip(args[::2], args[1::2]):
        if not isinstance(var, Symbol):
            raise MacroError(f"{form.items[0]}: only variables can be assigned at compile time, not {_show(var)}")
        value = it.eval(expr, env)
        env.assign(var.name, value)
    return value


def _dolist(it, form, env):
    spec, *body = _args(form, 1)
    parts = as_items(spec, "dolist spec")
    if len(parts) not in (2, 3) or not isinstance(parts[0], Symbol):
        raise MacroError("dolist: expected (VAR LIST [RESULT])")
    inner = Env({parts[0].name: NIL}, env)
    for item in as_items(it.eval(parts[1], env), "dolist"):
        it.budget.step()
        inner.vars[parts[0].name] = item
        it.progn(body, inner)
    return it.eval(parts[2], inner) if len(parts) == 3 else NIL


def _quasiquote(it, form, env):
    (template,) = _args(form, 1, 1)
    return _qq(it, template, env, 1)


def _qq(it, form, env, depth: int):
    if not isinstance(form, List) or not form.items:
        return form
    if form.head_is("UNQUOTE", "UNQUOTE-SPLICING") and len(form.items) == 2:
        if form.head_is("UNQUOTE-SPLICING") and depth == 1:
            raise MacroError(",@ outside of a list")
        if depth == 1:
            return it.eval(form.items[1], env)
        return new_list(it, (form.items[0], _qq(it, form.items[1], env, depth - 1)))
    if form.head_is("QUASIQUOTE") and len(form.items) == 2:
        return new_list(it, (form.items[0], _qq(it, form.items[1], env, depth + 1)))
    out: list = []
    for item in form.items:
        if isinstance(item, List) and item.head_is("UNQUOTE-SPLICING") and len(item.items) == 2 and depth == 1:
            spliced = as_items(it.eval(item.items[1], env), ",@")
            if len(out) + len(spliced) > MAX_LIST:
                raise MacroError(f"a list grew past {MAX_LIST} elements")
            out.extend(spliced)
        else:
            out.append(_qq(it, item, env, depth))
    return new_list(it, out)


_SPECIAL = {
    "QUOTE": _quote, "FUNCTION": _function, "LAMBDA": _lambda, "IF": _if, "WHEN": _when,
    "UNLESS": _unless, "COND": _cond, "CASE": _case, "LET": _let, "LET*": _let_star,
    "PROGN": _progn, "AND": _and, "OR": _or, "SETQ": _setq, "SETF": _setq, "DOLIST": _dolist,
    "QUASIQUOTE": _quasiquote,
}


# -- built-in functions: each takes the interpreter first ------------------------------------


def _eql(a, b) -> bool:
    if isinstance(a, (Symbol, Int)) and type(a) is type(b):
        return a == b
    if is_nil(a) and is_nil(b):
        return True
    return a is b


def _equal(it, a, b) -> bool:
    """Structural equality, one step per pair of nodes compared (no recursion; a shared
    sublist is compared once per path, so a huge shared tree runs out of budget, not time)."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if x is y:
            continue
        if isinstance(x, List) and isinstance(y, List) and x.items and y.items:
            if len(x.items) != len(y.items):
                return False
            it.budget.step(len(x.items))
            pending.extend(zip(x.items, y.items))
        elif not (_eql(x, y) or (isinstance(x, Str) and x == y)):
            return False
    return True


def _car(it, x):
    items = as_items(x, "car")
    return items[0] if items else NIL


def _cdr(it, x):
    return new_list(it, as_items(x, "cdr")[1:])


def _nth(it, n, x):
    items = as_items(x, "nth")
    i = _int(n, "nth")
    return items[i] if 0 <= i < len(items) else NIL


def _nthcdr(it, n, x):
    items = as_items(x, "nthcdr")
    i = _int(n, "nthcdr")
    if i < 0:
        raise MacroError(f"nthcdr: expected a non-negative index, got {i}")
    return new_list(it, items[i:])


def _last(it, x, n=None):
    items = as_items(x, "last")
    count = 1 if n is None else _int(n, "last")
    if count < 0:
        raise MacroError(f"last: expected a non-negative count, got {count}")
    return new_list(it, items[max(len(items) - count, 0):] if count else ())


def _cons(it, a, b):
    if not (isinstance(b, List) or is_nil(b)):
        raise MacroError(f"cons: dotted pairs are not supported ({_show(a)} . {_show(b)})")
    return new_list(it, (a, *as_items(b, "cons")))


def _list_star(it, *args):
    if not args:
        raise MacroError("list*: needs at least one argument")
    return _append(it, new_list(it, args[:-1]), args[-1])


def _append(it, *lists):
    parts = [as_items(x, "append") for x in lists]
    total = sum(len(p) for p in parts)
    if total > MAX_LIST:
        raise MacroError(f"a list grew past {MAX_LIST} elements")
    return new_list(it, [item for p in parts for item in p])


def _reverse(it, x):
    return new_list(it, as_items(x, "reverse")[::-1])


def _length(it, x):
    return Int(len(x.value) if isinstance(x, Str) else len(as_items(x, "length")))


def _mapcar(it, fn, first, *more):
    columns = [as_items(x, "mapcar") for x in (first, *more)]
    n = min(len(c) for c in columns)
    fn = _callable(it, fn)
    it.budget.list_of(n)  # the result; each call charges its own work
    results = [it.apply(fn, [c[i] for c in columns]) for i in range(n)]
    return List(tuple(results)) if results else NIL


def _mapcan(it, fn, first, *more):
    return _append(it, *as_items(_mapcar(it, fn, first, *more), "mapcan"))


def _funcall(it, fn, *args):
    return it.apply(_callable(it, fn), list(args))


def _apply(it, fn, *args):
    if not args:
        raise MacroError("apply: needs an argument list")
    spread = as_items(args[-1], "apply")
    if len(spread) > MAX_LIST:
        raise MacroError(f"apply: more than {MAX_LIST} arguments")
    it.budget.list_of(len(args) - 1 + len(spread))
    return it.apply(_callable(it, fn), [*args[:-1], *spread])


def _callable(it, fn):
    return it.function_named(fn.name) if isinstance(fn, Symbol) else fn


def _member(it, item, x, *options):
    test = _test_option(it, options)
    items = as_items(x, "member")
    for i, candidate in enumerate(items):
        it.budget.step()
        if test(item, candidate):
            return new_list(it, items[i:])
    return NIL


def _assoc(it, key, alist, *options):
    test = _test_option(it, options)
    for pair in as_items(alist, "assoc"):
        it.budget.step()
        entry = as_items(pair, "assoc entry")
        if entry and test(key, entry[0]):
            return pair
    return NIL


def _test_option(it, options):
    if not options:
        return _eql
    if len(options) != 2 or not (isinstance(options[0], Symbol) and options[0].name == ":TEST"):
        raise MacroError("only the :test option is supported")
    fn = _callable(it, options[1])
    return lambda a, b: truthy(it.apply(fn, [a, b]))


def _gensym(it, prefix=None):
    it.budget.alloc(ATOM_BYTES)
    return it.gensym(prefix.value.upper() if isinstance(prefix, Str) else "G")


def _error(it, fmt, *args):
    text = _format(it, NIL, fmt, *args).value if isinstance(fmt, Str) else _show(fmt)
    raise MacroError(text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "...")


_DIRECTIVES = "ADSX%~"


def _format(it, dest, fmt, *args):
    if not is_nil(dest):
        raise MacroError("format: only (format nil ...) is supported (no output at compile time)")
    if not isinstance(fmt, Str):
        raise MacroError("format: the control string must be a string")
    text, pending, out, size = fmt.value, list(args), [], 0
    i = 0
    while i < len(text):
        j = text.find("~", i)
        if j < 0:
            piece, i = text[i:], len(text)
        else:
            piece = text[i:j] + _directive(text[j + 1: j + 2], fmt, pending, MAX_STRING - size - (j - i))
            i = j + 2
        size += len(piece)
        _check_length(size)
        out.append(piece)
    return _new_string(it, "".join(out))


def _directive(d: str, fmt: Str, pending: list, room: int) -> str:
    """The text one ``~d`` directive stands for, at most ``room`` characters long."""
    d = d.upper()
    if d == "%":
        return "\n"
    if d == "~":
        return "~"
    if not d or d not in _DIRECTIVES:
        raise MacroError(f"format: unsupported directive ~{d} in {_show(fmt)} "
                         "(supported: ~A ~D ~S ~X ~% ~~)")
    if not pending:
        raise MacroError(f"format: not enough arguments for {_show(fmt)}")
    arg = pending.pop(0)
    if d == "X":
        return format(_int(arg, "format ~X"), "X")
    if d in "AD" and isinstance(arg, (Str, Symbol)):
        return arg.value if isinstance(arg, Str) else arg.name
    text = write(arg, max(room, 0)) if isinstance(arg, (Int, Str, Symbol, List)) else str(arg)
    if text is None:
        raise MacroError(f"a string grew past {MAX_STRING} characters")
    return text


def _string_of(x) -> str:
    if isinstance(x, Str):
        return x.value
    if isinstance(x, Symbol):
        return x.name
    raise MacroError(f"expected a string or symbol, got {_show(x)}")


def _concatenate(it, kind, *parts):
    if not (isinstance(kind, Symbol) and kind.name == "STRING"):
        raise MacroError("concatenate: only 'string is supported")
    texts = [_string_of(p) for p in parts]
    _check_length(sum(len(t) for t in texts))
    return _new_string(it, "".join(texts))


def _intern(it, name, package=None):
    text = _string_of(name)
    it.budget.text_of(len(text))
    return Symbol(text)


def _string_compare(it, a, b):
    x, y = _string_of(a), _string_of(b)
    it.budget.step(1 + min(len(x), len(y)) // 64)
    return _bool(x == y)


def _arith(op, identity=None):
    def fn(it, *args):
        values = [_int(a, "arithmetic") for a in args]
        if not values:
            if identity is None:
                raise MacroError("arithmetic needs an argument")
            return Int(identity)
        result = _number(it, values[0])
        for v in values[1:]:
            result = _number(it, op(result.value, v))
        return result
    return fn


def _minus(it, first, *more):
    values = [_int(a, "-") for a in (first, *more)]
    result = -values[0] if len(values) == 1 else values[0]
    for v in values[1:]:
        result = _number(it, result - v).value
    return _number(it, result)


def _ash(it, x, n):
    value, count = _int(x, "ash"), _int(n, "ash")
    if value and count > MAX_INT_BITS:  # checked first: the shift itself would exhaust memory
        raise MacroError(f"ash: shifting by {count} grows an integer past {MAX_INT_BITS} bits")
    return _number(it, value << count if count >= 0 else value >> min(-count, MAX_INT_BITS + 1))


def _divide(op):
    def fn(it, a, b):
        divisor = _int(b, "division")
        if divisor == 0:
            raise MacroError("division by zero")
        return _number(it, op(_int(a, "division"), divisor))
    return fn


def _truncate(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _compare(op):
    def fn(it, first, *more):
        values = [_int(a, "comparison") for a in (first, *more)]
        return _bool(all(op(x, y) for x, y in zip(values, values[1:])))
    return fn


def _pred(test):
    return lambda it, x: _bool(test(x))


def _int_pred(name, test):
    return lambda it, x: _bool(test(_int(x, name)))


def _functionp(x) -> bool:
    return isinstance(x, (Closure, Builtin))


_FUNCTIONS = {
    "CAR": _car, "FIRST": _car, "CDR": _cdr, "REST": _cdr,
    "SECOND": lambda it, x: _nth(it, Int(1), x), "THIRD": lambda it, x: _nth(it, Int(2), x),
    "FOURTH": lambda it, x: _nth(it, Int(3), x), "NTH": _nth, "NTHCDR": _nthcdr, "LAST": _last,
    "CONS": _cons, "LIST": lambda it, *xs: new_list(it, xs), "LIST*": _list_star, "APPEND": _append,
    "REVERSE": _reverse, "LENGTH": _length,
    "MAPCAR": _mapcar, "MAPCAN": _mapcan, "FUNCALL": _funcall, "APPLY": _apply,
    "MEMBER": _member, "ASSOC": _assoc, "IDENTITY": lambda it, x: x,
    "EQ": lambda it, a, b: _bool(_eql(a, b)), "EQL": lambda it, a, b: _bool(_eql(a, b)),
    "EQUAL": lambda it, a, b: _bool(_equal(it, a, b)),
    "NOT": _pred(lambda x: not truthy(x)), "NULL": _pred(lambda x: not truthy(x)),
    "LISTP": _pred(lambda x: isinstance(x, List) or is_nil(x)),
    "CONSP": _pred(lambda x: isinstance(x, List) and bool(x.items)),
    "ATOM": _pred(lambda x: not (isinstance(x, List) and x.items)),
    "SYMBOLP": _pred(lambda x: isinstance(x, Symbol) or is_nil(x)),
    "KEYWORDP": _pred(lambda x: isinstance(x, Symbol) and x.is_keyword),
    "INTEGERP": _pred(lambda x: isinstance(x, Int)), "NUMBERP": _pred(lambda x: isinstance(x, Int)),
    "STRINGP": _pred(lambda x: isinstance(x, Str)), "FUNCTIONP": _pred(_functionp),
    "ZEROP": _int_pred("zerop", lambda v: v == 0), "PLUSP": _int_pred("plusp", lambda v: v > 0),
    "MINUSP": _int_pred("minusp", lambda v: v < 0), "EVENP": _int_pred("evenp", lambda v: v % 2 == 0),
    "ODDP": _int_pred("oddp", lambda v: v % 2 == 1),
    "+": _arith(lambda a, b: a + b, 0), "*": _arith(lambda a, b: a * b, 1), "-": _minus,
    "LOGAND": _arith(lambda a, b: a & b, -1), "LOGIOR": _arith(lambda a, b: a | b, 0),
    "LOGXOR": _arith(lambda a, b: a ^ b, 0),
    "MIN": _arith(min), "MAX": _arith(max), "ABS": lambda it, x: _number(it, abs(_int(x, "abs"))),
    "1+": lambda it, x: _number(it, _int(x, "1+") + 1), "1-": lambda it, x: _number(it, _int(x, "1-") - 1),
    "FLOOR": _divide(lambda a, b: a // b), "TRUNCATE": _divide(_truncate), "/": _divide(_truncate),
    "MOD": _divide(lambda a, b: a % b), "REM": _divide(lambda a, b: a - b * _truncate(a, b)),
    "ASH": _ash,
    "=": _compare(lambda a, b: a == b), "/=": _compare(lambda a, b: a != b),
    "<": _compare(lambda a, b: a < b), "<=": _compare(lambda a, b: a <= b),
    ">": _compare(lambda a, b: a > b), ">=": _compare(lambda a, b: a >= b),
    "GENSYM": _gensym, "ERROR": _error, "FORMAT": _format, "CONCATENATE": _concatenate,
    "INTERN": _intern, "MAKE-SYMBOL": _intern,
    "SYMBOL-NAME": lambda it, s: _new_string(it, _string_of(s)),
    "STRING": lambda it, x: _new_string(it, _string_of(x)),
    "STRING-UPCASE": lambda it, x: _new_string(it, _string_of(x).upper()),
    "STRING-DOWNCASE": lambda it, x: _new_string(it, _string_of(x).lower()),
    "STRING=": _string_compare,
}

_BUILTINS = {name: Builtin(name, fn) for name, fn in _FUNCTIONS.items()}
