"""Macro expansion of a whole file: reader output -> ``decls.Unit`` of core forms.

In: the top-level forms of one source file (``reader.read``) and its file name. Out: a
``Unit`` with every ``defmap`` and ``defprog`` in definition order, names mangled and
checked, program bodies in core forms (``body``).

Top level: ``in-package`` and ``compile-to-elf`` are accepted and ignored, ``defconstant``
``defmacro`` ``defun`` define compile-time things (``macro_eval``), ``eval-when`` and
``progn`` contain more top-level forms, and a user macro may expand into top-level forms.
Program bodies are expanded after the whole file is read, so a body may use macros,
constants and maps defined further down, as in Whistler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import builtins, protocols, reader
from ..decls import MAP_TYPES, MapDef, ProgDef, Unit
from ..errors import CompileError, Loc
from ..forms import Form, Int, List, Str, Symbol, mangle, short
from ..macro_eval import Interpreter, MacroError
from .base import Macro, Scope, call_macro, error
from .body import BUILTIN_NAMES, BodyExpander

MAX_NAME = 15  # BPF_OBJ_NAME_LEN - 1: the kernel truncates longer names
_C_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")

_MAP_OPTIONS = (":TYPE", ":KEY-SIZE", ":VALUE-SIZE", ":MAX-ENTRIES", ":MAP-FLAGS")
_PROG_OPTIONS = (":TYPE", ":SECTION", ":LICENSE")
_PROG_TYPES = ("xdp", "tc")
_IGNORED = ("IN-PACKAGE", "COMPILE-TO-ELF")


@dataclass
class _PendingProgram:
    name: str
    lisp_name: str
    prog_type: str
    section: str
    license: str
    body: tuple
    loc: Loc


def _expand_located(expander: BodyExpander, form: Form) -> Form:
    """Expand one body form; a form (or its macro expansion) nested deeper than the compiler
    can recurse is an error at that form rather than a crash."""
    try:
        return expander.expand(form)
    except RecursionError:
        raise error(form, "this form nests too deeply to compile",
                    hint="split it into smaller expressions; check macros that build deep code") from None


def expand_unit(forms: list[Form], filename: str) -> Unit:
    """Expand every top-level form; raises ``CompileError`` at the offending form."""
    return _UnitExpander(filename).run(forms)


_PRELUDE_FORMS: list[Form] = []


def _prelude() -> list[Form]:
    if not _PRELUDE_FORMS:
        _PRELUDE_FORMS.extend(reader.read(protocols.PRELUDE, protocols.PRELUDE_FILE))
    return _PRELUDE_FORMS


class _UnitExpander:
    def __init__(self, filename: str):
        self.filename = filename
        constants = {**builtins.CONSTANTS, **protocols.CONSTANTS}
        self.predefined = frozenset(constants)
        self.scope = Scope(constants=constants, interp=Interpreter(constants))
        self.programs: list[_PendingProgram] = []
        self.kernel_names: dict[str, Loc] = {}  # mangled map and program names share the ELF symtab

    def run(self, forms: list[Form]) -> Unit:
        for form in _prelude():
            self.toplevel(form)
        for form in forms:
            self.toplevel(form)
        if not self.programs:
            raise CompileError(forms[0].loc if forms else Loc(self.filename, 1, 1), "no program in this file",
                               expected="at least one (defprog NAME (...) BODY...)")
        return Unit(maps=tuple(self.scope.maps.values()),
                    programs=tuple(self.finish(p) for p in self.programs), source_file=self.filename)

    # top level --------------------------------------------------------------------------
    def toplevel(self, form: Form) -> None:
        if not (isinstance(form, List) and form.items and isinstance(form.items[0], Symbol)):
            raise error(form, f"{short(form)} cannot appear at top level",
                        expected="defmap, defprog, defconstant, defmacro, defun, eval-when or in-package")
        name = form.items[0].name
        handler = self._HANDLERS.get(name)
        if handler is not None:
            handler(self, form)
        elif name in _IGNORED:
            pass
        elif name in self.scope.macros:
            self.toplevel(call_macro(self.scope, self.scope.macros[name], form))
        else:
            raise error(form, f"unknown top-level form {name.lower()}",
                        expected="defmap, defprog, defconstant, defmacro, defun, eval-when or in-package",
                        hint="expressions belong inside a defprog body")

    def body_forms(self, form: List) -> None:
        for sub in form.items[1:]:
            self.toplevel(sub)

    def eval_when(self, form: List) -> None:
        if len(form.items) < 2:
            raise error(form, "eval-when needs a situation list", expected="(eval-when (SITUATION...) FORM...)")
        for sub in form.items[2:]:
            self.toplevel(sub)

    def evaluate(self, expr: Form, context: Form, what: str):
        try:
            return self.scope.interp.eval_toplevel(expr)
        except MacroError as e:
            raise error(context, f"cannot compute {what}: {e}") from None

    def defconstant(self, form: List) -> None:
        if not 3 <= len(form.items) <= 4 or not isinstance(form.items[1], Symbol):
            raise error(form, "malformed defconstant", expected="(defconstant +NAME+ VALUE [DOC])")
        name = form.items[1]
        value = self.evaluate(form.items[2], form, f"the value of {name}")
        if not isinstance(value, Int):
            raise error(form, f"constant {name} must be an integer, not {short(value)}")
        old = self.scope.constants.get(name.name)
        if old is not None and old != value.value:
            what = "a built-in constant" if name.name in self.predefined else "already defined"
            raise error(form, f"{name} is {what} with value {old}; cannot redefine it as {value.value}")
        self.scope.constants[name.name] = value.value

    def defmacro(self, form: List) -> None:
        if len(form.items) < 3 or not isinstance(form.items[1], Symbol):
            raise error(form, "malformed defmacro", expected="(defmacro NAME (PARAMS...) BODY...)")
        name = form.items[1].name
        if name in BUILTIN_NAMES:
            raise error(form, f"{name.lower()} is built in and cannot be redefined by a macro")
        try:
            closure = self.scope.interp.make_closure(name, form.items[2], form.items[3:])
        except MacroError as e:
            raise error(form, f"bad parameter list for macro {name.lower()}: {e}") from None
        self.scope.macros[name] = Macro(name, closure, form.loc)

    def defun(self, form: List) -> None:
        if len(form.items) < 3 or not isinstance(form.items[1], Symbol):
            raise error(form, "malformed defun", expected="(defun NAME (PARAMS...) BODY...)")
        name = form.items[1].name
        try:
            self.scope.interp.functions[name] = self.scope.interp.make_closure(name, form.items[2], form.items[3:])
        except MacroError as e:
            raise error(form, f"bad parameter list for function {name.lower()}: {e}") from None

    # maps and programs ------------------------------------------------------------------
    def claim_name(self, sym: Symbol, form: List, kind: str) -> str:
        name = mangle(sym.name)
        if not _C_IDENTIFIER.fullmatch(name):
            # BTF (FUNC, VAR), bpffs pin names and libbpf skeletons all take the name as a C
            # identifier; anything else fails only at load time, far from the source.
            raise error(form, f"{kind} name {name} is not a C identifier once mangled",
                        expected="letters, digits, '-' and '_', not starting with a digit",
                        hint="choose a name like proto-stats or xdp_dispatch")
        if len(name) > MAX_NAME:
            raise error(form, f"{kind} name {name} is {len(name)} characters; the kernel keeps only {MAX_NAME}",
                        hint="choose a shorter name")
        if name in self.kernel_names:
            raise error(form, f"the name {name} is already used (at {self.kernel_names[name]})",
                        hint="map and program names must be unique within a file")
        self.kernel_names[name] = form.loc
        return name

    def options(self, items: tuple, allowed: tuple, form: List) -> dict[str, Form]:
        if len(items) % 2:
            raise error(form, "options must be keyword/value pairs, got an odd number",
                        expected=" ".join(k.lower() + " VALUE" for k in allowed))
        found: dict[str, Form] = {}
        for key, value in zip(items[::2], items[1::2]):
            if not (isinstance(key, Symbol) and key.name in allowed):
                raise error(form, f"unknown option {short(key)}", expected="one of " + " ".join(a.lower() for a in allowed))
            if key.name in found:
                raise error(form, f"option {key} given twice")
            found[key.name] = value
        return found

    def defmap(self, form: List) -> None:
        if len(form.items) < 2 or not isinstance(form.items[1], Symbol) or form.items[1].is_keyword:
            raise error(form, "malformed defmap", expected="(defmap NAME :type TYPE :key-size N ...)")
        sym = form.items[1]
        opts = self.options(form.items[2:], _MAP_OPTIONS, form)
        kind_form = opts.get(":TYPE")
        kind = kind_form.name[1:].lower() if isinstance(kind_form, Symbol) and kind_form.is_keyword else None
        if kind not in MAP_TYPES:
            raise error(form, f"unknown map type {short(kind_form) if kind_form is not None else '(none given)'}",
                        expected="one of " + " ".join(":" + k for k in MAP_TYPES))
        sizes = {}
        for key in _MAP_OPTIONS[1:]:
            expr = opts.get(key, Int(0, form.loc))
            value = self.evaluate(expr, form, key.lower())
            if not isinstance(value, Int) or not 0 <= value.value < 1 << 32:
                raise error(form, f"{key.lower()} must be an integer from 0 to 2^32-1, not {short(value)}")
            sizes[key] = value.value
        if ":MAX-ENTRIES" not in opts:
            raise error(form, "missing :max-entries", expected=":max-entries N")
        problem = builtins.map_shape_problem(kind, sizes[":KEY-SIZE"], sizes[":VALUE-SIZE"],
                                             sizes[":MAX-ENTRIES"], sizes[":MAP-FLAGS"])
        if problem is not None:
            raise error(form, f"bad :{kind} map {sym.name.lower()}: {problem[0]}", hint=problem[1])
        if sym.name in self.scope.maps:
            raise error(form, f"map {sym.name.lower()} is already defined (at {self.scope.maps[sym.name].loc})")
        name = self.claim_name(sym, form, "map")
        self.scope.maps[sym.name] = MapDef(name=name, lisp_name=sym.name, kind=kind, map_type=MAP_TYPES[kind],
                                           key_size=sizes[":KEY-SIZE"], value_size=sizes[":VALUE-SIZE"],
                                           max_entries=sizes[":MAX-ENTRIES"], flags=sizes[":MAP-FLAGS"],
                                           loc=form.loc)

    def defprog(self, form: List) -> None:
        if len(form.items) < 3 or not isinstance(form.items[1], Symbol) or not isinstance(form.items[2], List):
            raise error(form, "malformed defprog", expected="(defprog NAME (:type :xdp ...) BODY...)")
        sym = form.items[1]
        opts = self.options(form.items[2].items, _PROG_OPTIONS, form)
        type_form = opts.get(":TYPE", Symbol(":XDP"))
        prog_type = type_form.name[1:].lower() if isinstance(type_form, Symbol) and type_form.is_keyword else None
        if prog_type not in _PROG_TYPES:
            raise error(form, f"unsupported program type {short(type_form)}", expected=":xdp or :tc")
        section = self.string_option(opts, ":SECTION", prog_type, form)
        if not builtins.section_matches(prog_type, section):
            prefixes = builtins.SECTION_PREFIXES[prog_type]
            raise error(form, f"section \"{section}\" does not make a :{prog_type} program",
                        expected=" or ".join(f'"{p}" / "{p}/NAME"' for p in prefixes),
                        hint="the loader picks the program type from the section name")
        license_ = self.string_option(opts, ":LICENSE", "GPL", form)
        for other in self.programs:
            if other.section == section:
                # One program per section keeps `bpftool prog loadall` pin names and our
                # loader's section -> program mapping unambiguous (issue #2).
                raise error(form, f"section \"{section}\" is already used by {other.lisp_name.lower()}",
                            expected="a distinct :section for every defprog",
                            hint='name handler sections after the dispatcher, e.g. "xdp/tcp", "xdp/udp"')
            if other.license != license_:
                raise error(form, f"license \"{license_}\" conflicts with \"{other.license}\" of "
                            f"{other.lisp_name.lower()}", hint="one object file has one license")
        name = self.claim_name(sym, form, "program")
        self.programs.append(_PendingProgram(name, sym.name, prog_type, section, license_,
                                             tuple(form.items[3:]), form.loc))

    def string_option(self, opts: dict, key: str, default: str, form: List) -> str:
        value = opts.get(key)
        if value is None:
            return default
        if not isinstance(value, Str) or not value.value:
            raise error(form, f"{key.lower()} must be a non-empty string, not {short(value)}")
        return value.value

    def finish(self, p: _PendingProgram) -> ProgDef:
        body = list(p.body)
        if not body:
            body = [List((Symbol("RETURN", p.loc), Int(0, p.loc)), p.loc)]
        elif not (isinstance(body[-1], List) and body[-1].head_is("RETURN")):
            body[-1] = List((Symbol("RETURN", body[-1].loc), body[-1]), body[-1].loc)
        expander = BodyExpander(self.scope, p.prog_type)
        return ProgDef(name=p.name, lisp_name=p.lisp_name, prog_type=p.prog_type, section=p.section,
                       license=p.license, body=tuple(_expand_located(expander, f) for f in body), loc=p.loc)

    _HANDLERS = {
        "DEFMAP": defmap, "DEFPROG": defprog, "DEFCONSTANT": defconstant, "DEFMACRO": defmacro,
        "DEFUN": defun, "EVAL-WHEN": eval_when, "PROGN": body_forms,
    }
