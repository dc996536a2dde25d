"""Macro expansion of a whole file: reader output -> ``decls.Unit`` of core forms.

In: the top-level forms of one source file (``reader.read``) and its file name. Out: a
``Unit`` with every ``defmap`` and ``defprog`` in definition order, names mangled and
checked, program bodies in core forms (``body``).

Top level: ``in-package`` and ``compile-to-elf`` are accepted and ignored; ``defconstant``,
``defmacro``, ``defun``, ``defparameter``/``defvar`` and ``defsetf`` define compile-time things
(``macro_eval``); ``defstruct``, ``defunion`` (``structs``) and ``defheader`` (``headers``)
define types and the accessor forms they generate; ``eval-when`` and ``progn`` contain more
top-level forms, and a user macro may expand into top-level forms. A ``defmap`` may give its
key or value as a struct (``:key-type``/``:value-type``), which sets its size.
Program bodies are expanded after the whole file is read, so a body may use macros,
constants and maps defined further down, as in Whistler.
"""

from __future__ import annotations

from .. import builtins, protocols, reader
from ..decls import MAP_TYPES, MapDef, ProgDef, Unit
from ..errors import CompileError, Loc
from ..forms import NIL, Form, Int, List, Str, Symbol, is_nil, mangle, short
from ..macro_eval import Interpreter, MacroError
from ..records import dataclass
from . import headers, structs
from .base import MAX_MACRO_DEPTH, Accessor, Macro, Scope, SetfExpander, call_macro, error
from .body import BUILTIN_NAMES, BodyExpander

# The kernel keeps 15 characters of a program's or map's name (BPF_OBJ_NAME_LEN - 1) and
# loaders truncate it there, as libbpf does; ELF symbols, BTF names and pins keep the whole
# name, so two names that share their first 15 characters are still two objects. BTF refuses
# identifiers of KSYM_NAME_LEN (128) characters or more.
MAX_NAME = 127
# What one file may hold. The back end takes time roughly linear in a program's size with a
# large constant (about 0.3 ms per form on a busy 2-core machine, and a fixed cost per program),
# so these keep any file's compile within seconds; real programs are far smaller (the seed's
# three programs are 133 forms after expansion).
MAX_FORMS = 16_000  # core forms of all programs after macro expansion
MAX_PROGRAMS = 256
MAX_MAPS = 1024
MAX_STRING_OPTION = 127  # characters of a :section or :license

_MAP_OPTIONS = (":TYPE", ":KEY-SIZE", ":VALUE-SIZE", ":MAX-ENTRIES", ":MAP-FLAGS", ":KEY-TYPE", ":VALUE-TYPE")
_SIZE_OPTIONS = (":KEY-SIZE", ":VALUE-SIZE", ":MAX-ENTRIES", ":MAP-FLAGS")
# Map kinds whose keys and values are data a struct can describe (the kernel checks their BTF).
_STRUCT_KINDS = {"key": ("hash", "percpu-hash", "lru-hash", "lpm-trie"),
                 "value": ("hash", "array", "percpu-hash", "percpu-array", "lru-hash", "lpm-trie")}
_PROG_OPTIONS = (":TYPE", ":SECTION", ":LICENSE")
_PROG_TYPES = ("xdp", "tc")
_IGNORED = ("IN-PACKAGE", "COMPILE-TO-ELF")
_TOPLEVEL = ("defmap, defprog, defconstant, defmacro, defun, defparameter, defstruct, defunion, defheader, "
             "defsetf, eval-when or in-package")


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


def _is_c_identifier(name: str) -> bool:
    """``[a-z_][a-z0-9_]*``, as mangled names are lower case."""
    return name.isascii() and name.isidentifier() and name == name.lower()


def _count_forms(form: Form) -> int:
    count, pending = 0, [form]
    while pending:
        f = pending.pop()
        count += 1
        if isinstance(f, List):
            pending.extend(f.items)
    return count


def expand_unit(forms: list[Form], filename: str) -> Unit:
    """Expand every top-level form; raises ``CompileError`` at the offending form."""
    return _UnitExpander(filename).run(forms)


_LIBRARY: dict[str, tuple[str, int]] = {}


def _library() -> dict[str, tuple[str, int]]:
    """Macro name -> (its ``defmacro`` in ``protocols.PRELUDE``, the line where that starts).
    Cut at the lines that start with ``(defmacro ``, without reading anything: each macro is
    read and defined only when a program first uses it (most use one or two)."""
    if not _LIBRARY:
        lines = protocols.PRELUDE.split("\n")
        starts = [i for i, line in enumerate(lines) if line.startswith("(defmacro ")]
        for start, end in zip(starts, [*starts[1:], len(lines)]):
            _LIBRARY[lines[start].split()[1].upper()] = ("\n".join(lines[start:end]), start + 1)
    return _LIBRARY


class _LibraryMacro:
    """A macro of the protocol library, read and defined the first time it is expanded."""

    def __init__(self, name: str, text: str, line: int, unit: _UnitExpander):
        self.name, self.text, self.unit = name, text, unit
        self.loc = Loc(protocols.PRELUDE_FILE, line, 1)
        self._expander = None

    @property
    def expander(self):
        if self._expander is None:
            (form,) = reader.read(self.text, protocols.PRELUDE_FILE, self.loc.line)
            self._expander = self.unit.scope.interp.make_closure(self.name, form.items[2], form.items[3:])
        return self._expander


class _UnitExpander:
    def __init__(self, filename: str):
        self.filename = filename
        constants = {**builtins.CONSTANTS, **protocols.CONSTANTS}
        self.predefined = frozenset(constants)
        self.scope = Scope(constants=constants, interp=Interpreter(constants),
                           accessors=dict(headers.builtin_accessors()))
        self.accessor_origin: dict[str, str] = dict.fromkeys(self.scope.accessors, "a built-in header accessor")
        self.programs: list[_PendingProgram] = []
        self.kernel_names: dict[str, Loc] = {}  # mangled map and program names share the ELF symtab
        self.macro_depth = 0  # top-level macro calls expanding inside each other's results
        self.sections: dict[str, _PendingProgram] = {}
        self.forms = 0  # core forms of the programs expanded so far

    def run(self, forms: list[Form]) -> Unit:
        for name, (text, line) in _library().items():
            self.scope.macros[name] = _LibraryMacro(name, text, line, self)
        for form in forms:
            try:
                self.toplevel(form)
            except RecursionError:
                raise error(form, "this form nests too deeply to compile",
                            hint="check macros that expand into more top-level macro calls") from None
        if not self.programs:
            raise CompileError(forms[0].loc if forms else Loc(self.filename, 1, 1), "no program in this file",
                               expected="at least one (defprog NAME (...) BODY...)")
        return Unit(maps=tuple(self.scope.maps.values()),
                    programs=tuple(self.finish(p) for p in self.programs), source_file=self.filename,
                    structs=tuple(self.scope.structs.values()))

    # top level --------------------------------------------------------------------------
    def toplevel(self, form: Form) -> None:
        if not (isinstance(form, List) and form.items and isinstance(form.items[0], Symbol)):
            raise error(form, f"{short(form)} cannot appear at top level",
                        expected=_TOPLEVEL)
        name = form.items[0].name
        handler = self._HANDLERS.get(name)
        if handler is not None:
            handler(self, form)
        elif name in _IGNORED:
            pass
        elif name in self.scope.macros:
            if self.macro_depth >= MAX_MACRO_DEPTH:
                raise error(form, f"macro {name.lower()} nests more than {MAX_MACRO_DEPTH} expansions deep",
                            hint="does the macro expand into a call to itself?")
            self.macro_depth += 1
            try:
                self.toplevel(call_macro(self.scope, self.scope.macros[name], form))
            finally:
                self.macro_depth -= 1
        else:
            raise error(form, f"unknown top-level form {name.lower()}",
                        expected=_TOPLEVEL,
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
            return self.scope.interp.eval_toplevel(structs.fold_sizeof(self.scope, expr))
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
        self.check_free(name, form)
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

    def defparameter(self, form: List) -> None:
        keep_old = form.head_is("DEFVAR")
        shape = f"({form.items[0]} NAME {'[VALUE]' if keep_old else 'VALUE'} [DOC])"
        if not (2 + (not keep_old) <= len(form.items) <= 4) or not isinstance(form.items[1], Symbol) \
                or form.items[1].is_keyword:
            raise error(form, f"malformed {form.items[0]}", expected=shape)
        name = form.items[1]
        if name.name in self.scope.constants:
            raise error(form, f"{name} is a constant and cannot be a variable too")
        variables = self.scope.interp.variables
        if keep_old and name.name in variables:
            return
        value = self.evaluate(form.items[2], form, f"the value of {name}") if len(form.items) > 2 else NIL
        variables[name.name] = value

    def defsetf(self, form: List) -> None:
        shape = "(defsetf ACCESSOR UPDATER) or (defsetf ACCESSOR (PARAMS...) (NEW-VALUE) BODY...)"
        if len(form.items) < 3 or not isinstance(form.items[1], Symbol) or form.items[1].is_keyword:
            raise error(form, "malformed defsetf", expected=shape)
        name = form.items[1].name
        if name in BUILTIN_NAMES:
            raise error(form, f"{name.lower()} is built in; its setf cannot be redefined")
        if isinstance(form.items[2], Symbol) and not form.items[2].is_keyword and len(form.items) <= 4:
            self.scope.setf_expanders[name] = SetfExpander(name, form.loc, updater=form.items[2])
            return
        stores = form.items[3] if len(form.items) > 3 else None
        if not (isinstance(form.items[2], List) or is_nil(form.items[2])) or not (
                isinstance(stores, List) and len(stores.items) == 1 and isinstance(stores.items[0], Symbol)):
            raise error(form, "malformed defsetf", expected=shape,
                        hint="the long form takes exactly one new-value variable")
        params = form.items[2].items if isinstance(form.items[2], List) else ()
        try:
            closure = self.scope.interp.make_closure(name, List((stores.items[0], *params), form.loc),
                                                     form.items[4:])
        except MacroError as e:
            raise error(form, f"bad parameter list for defsetf {name.lower()}: {e}") from None
        self.scope.setf_expanders[name] = SetfExpander(name, form.loc, expander=Macro(name, closure, form.loc))

    # types and the forms they generate --------------------------------------------------
    def check_free(self, name: str, form: List) -> None:
        """``name`` may become a new macro or generated accessor."""
        if name in BUILTIN_NAMES:
            raise error(form, f"{name.lower()} is built in and cannot be redefined")
        if name in self.scope.accessors:
            raise error(form, f"{name.lower()} is already {self.accessor_origin[name]}")
        if name in self.scope.macros:
            raise error(form, f"{name.lower()} is already a macro (defined at {self.scope.macros[name].loc})")

    def define_accessors(self, found: dict[str, Accessor], form: List, origin: str) -> None:
        for name in found:
            self.check_free(name, form)
        self.scope.accessors.update(found)
        self.accessor_origin.update(dict.fromkeys(found, origin))

    def define_type(self, form: List) -> None:
        define = structs.define_union if form.head_is("DEFUNION") else structs.define_struct
        name = form.items[1] if len(form.items) > 1 else None
        if isinstance(name, Symbol) and name.name in self.scope.structs:
            raise error(form, f"struct {name.name.lower()} is already defined (at {self.scope.structs[name.name].loc})")
        struct = define(self.scope, form)
        if not _is_c_identifier(struct.name) or len(struct.name) > MAX_NAME:
            raise error(form, f"struct name {struct.name} is not a C identifier (of at most {MAX_NAME} "
                        "characters) once mangled", expected="letters, digits, '-' and '_', not starting with a digit")
        for f in struct.fields:
            if not _is_c_identifier(f.name):
                raise error(form, f"field name {f.name} is not a C identifier once mangled")
        self.define_accessors(structs.accessors(struct), form, f"generated by defstruct {struct.lisp_name.lower()}")
        self.scope.structs[struct.lisp_name] = struct

    def defheader(self, form: List) -> None:
        self.define_accessors(headers.define(self.scope, form), form,
                              f"generated by defheader {form.items[1].name.lower()}")

    # maps and programs ------------------------------------------------------------------
    def claim_name(self, sym: Symbol, form: List, kind: str) -> str:
        name = mangle(sym.name)
        if not _is_c_identifier(name):
            # BTF (FUNC, VAR), bpffs pin names and libbpf skeletons all take the name as a C
            # identifier; anything else fails only at load time, far from the source.
            raise error(form, f"{kind} name {name} is not a C identifier once mangled",
                        expected="letters, digits, '-' and '_', not starting with a digit",
                        hint="choose a name like proto-stats or xdp_dispatch")
        if len(name) > MAX_NAME:
            raise error(form, f"{kind} name {name} is {len(name)} characters; BTF allows at most {MAX_NAME}",
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
        for key in _SIZE_OPTIONS:
            expr = opts.get(key, Int(0, form.loc))
            value = self.evaluate(expr, form, key.lower())
            if not isinstance(value, Int) or not 0 <= value.value < 1 << 32:
                raise error(form, f"{key.lower()} must be an integer from 0 to 2^32-1, not {short(value)}")
            sizes[key] = value.value
        if ":MAX-ENTRIES" not in opts:
            raise error(form, "missing :max-entries", expected=":max-entries N")
        typed = {side: self.map_type_option(opts, side, kind, sizes, form) for side in ("key", "value")}
        problem = builtins.map_shape_problem(kind, sizes[":KEY-SIZE"], sizes[":VALUE-SIZE"],
                                             sizes[":MAX-ENTRIES"], sizes[":MAP-FLAGS"])
        if problem is not None:
            raise error(form, f"bad :{kind} map {sym.name.lower()}: {problem[0]}", hint=problem[1])
        if sym.name in self.scope.maps:
            raise error(form, f"map {sym.name.lower()} is already defined (at {self.scope.maps[sym.name].loc})")
        if len(self.scope.maps) >= MAX_MAPS:
            raise error(form, f"more than {MAX_MAPS} maps in one file", hint="split the file")
        name = self.claim_name(sym, form, "map")
        self.scope.maps[sym.name] = MapDef(name=name, lisp_name=sym.name, kind=kind, map_type=MAP_TYPES[kind],
                                           key_size=sizes[":KEY-SIZE"], value_size=sizes[":VALUE-SIZE"],
                                           max_entries=sizes[":MAX-ENTRIES"], flags=sizes[":MAP-FLAGS"],
                                           loc=form.loc, key_struct=typed["key"], value_struct=typed["value"])

    def map_type_option(self, opts: dict, side: str, kind: str, sizes: dict, form: List) -> str | None:
        """``:key-type`` / ``:value-type``: a struct (its name is returned) or u8..u64; either
        sets the size, which an explicit ``:key-size`` / ``:value-size`` must then agree with."""
        typ = opts.get(f":{side.upper()}-TYPE")
        if typ is None:
            return None
        size_key = f":{side.upper()}-SIZE"
        if isinstance(typ, Symbol) and typ.name in ("U8", "U16", "U32", "U64"):
            size, struct = builtins.TYPES[typ.name], None
        else:
            s = structs.struct_named(self.scope, typ, form)
            if kind not in _STRUCT_KINDS[side]:
                raise error(form, f"a :{kind} map cannot have a struct {side}",
                            expected=f":{side}-type on a " + ", ".join(":" + k for k in _STRUCT_KINDS[side]) + " map",
                            hint="array keys are u32 indexes" if side == "key" and "array" in kind else None)
            size, struct = s.size, s.lisp_name
        if size_key in opts and sizes[size_key] != size:
            raise error(form, f"{size_key.lower()} {sizes[size_key]} disagrees with :{side}-type {short(typ)} "
                        f"({size} bytes)", hint=f"drop {size_key.lower()}: the type sets it")
        sizes[size_key] = size
        return struct

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
        other = self.sections.get(section)
        if other is not None:
            # One program per section keeps `bpftool prog loadall` pin names and our
            # loader's section -> program mapping unambiguous (issue #2).
            raise error(form, f"section \"{section}\" is already used by {other.lisp_name.lower()}",
                        expected="a distinct :section for every defprog",
                        hint='name handler sections after the dispatcher, e.g. "xdp/tcp", "xdp/udp"')
        if self.programs and self.programs[0].license != license_:
            first = self.programs[0]
            raise error(form, f"license \"{license_}\" conflicts with \"{first.license}\" of "
                        f"{first.lisp_name.lower()}", hint="one object file has one license")
        if len(self.programs) >= MAX_PROGRAMS:
            raise error(form, f"more than {MAX_PROGRAMS} programs in one file", hint="split the file")
        name = self.claim_name(sym, form, "program")
        self.programs.append(_PendingProgram(name, sym.name, prog_type, section, license_,
                                             tuple(form.items[3:]), form.loc))
        self.sections[section] = self.programs[-1]

    def string_option(self, opts: dict, key: str, default: str, form: List) -> str:
        value = opts.get(key)
        if value is None:
            return default
        if not isinstance(value, Str) or not value.value:
            raise error(form, f"{key.lower()} must be a non-empty string, not {short(value)}")
        text = value.value
        # Section and license end up as C strings in the object (the kernel reads at most 127
        # characters of a license); loaders treat section names as names, not text.
        if len(text) > MAX_STRING_OPTION or not text.isprintable() or (key == ":SECTION" and " " in text):
            raise error(form, f"{key.lower()} {short(value)} is not a name",
                        expected=f"at most {MAX_STRING_OPTION} printable characters"
                                 + (" without spaces" if key == ":SECTION" else ""))
        return text

    def finish(self, p: _PendingProgram) -> ProgDef:
        body = list(p.body)
        if not body:
            body = [List((Symbol("RETURN", p.loc), Int(0, p.loc)), p.loc)]
        elif not (isinstance(body[-1], List) and body[-1].head_is("RETURN")):
            body[-1] = List((Symbol("RETURN", body[-1].loc), body[-1]), body[-1].loc)
        expander = BodyExpander(self.scope, p.prog_type)
        expanded = []
        for form in body:
            expanded.append(_expand_located(expander, form))
            self.forms += _count_forms(expanded[-1])
            if self.forms > MAX_FORMS:
                raise error(form, f"the programs of this file are too large: more than {MAX_FORMS:,} forms "
                            "after macro expansion", hint="split the file, or generate less code with macros "
                            "and dotimes")
        return ProgDef(name=p.name, lisp_name=p.lisp_name, prog_type=p.prog_type, section=p.section,
                       license=p.license, body=tuple(expanded), loc=p.loc)

    _HANDLERS = {
        "DEFMAP": defmap, "DEFPROG": defprog, "DEFCONSTANT": defconstant, "DEFMACRO": defmacro,
        "DEFUN": defun, "DEFPARAMETER": defparameter, "DEFVAR": defparameter, "DEFSETF": defsetf,
        "DEFSTRUCT": define_type, "DEFUNION": define_type, "DEFHEADER": defheader,
        "EVAL-WHEN": eval_when, "PROGN": body_forms,
    }
