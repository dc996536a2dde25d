"""The original's FiveAM tests, interpreted, with their compile functions backed by our compiler.

In: a checkout's ``tests/*.lisp``. Out: ``run_tests`` -> one ``TestRun`` per ``test``/``deftest``
that compiles Whistler code: the programs it compiled (through ``Kernel``) and the assertions
that failed. ``Interp`` evaluates the subset of Common Lisp the tests use (``let``, ``loop``,
``is``, ``finishes``, ``signals`` ...); ``w-body``, ``w-count``, ``compile-single``,
``compile-program``, ``torture-verify``, ``eval-whistler`` and inline ``defmap``/``defprog``
build a program from the test's text and our compiler compiles it. Anything outside that
subset makes the test ``NotEvaluable``, with the reason.
"""

from __future__ import annotations

import math
import re
import struct
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from compiler import CompileError, compile_source
from compiler.elfread import read_programs
from compiler.isa import encode

from .lisp import ReadError, Sym, Text, heads, read_all, show
from .programs import Kernel, Program


class NotEvaluable(Exception):
    """The test uses something outside the subset this harness interprets."""


class LispError(Exception):
    """An error the test itself would see (e.g. a compile error inside ``signals``)."""


@dataclass
class CU:
    """What ``compile-single`` returns: our compiled program (its instruction bytes, as the
    original's ``insn-bytes`` gives them, ld_imm64 as two 8-byte slots)."""

    program: Program

    @property
    def code(self) -> Code:
        (p,) = read_programs(self.program.elf)
        return Code(encode(list(p.insns)), self)


class Code(bytes):
    """Instruction bytes that remember the program they came from (``write-bpf-elf`` wants it)."""

    def __new__(cls, data: bytes, cu: CU):
        code = super().__new__(cls, data)
        code.cu = cu
        return code


@dataclass
class TestRun:
    origin: str
    programs: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    pending: list = field(default_factory=list)  # inline defmap/defprog/eval-whistler forms
    files: dict = field(default_factory=dict)  # path the test names -> our file
    negative: bool = False  # the test expects compilation to fail


class Interp:
    def __init__(self, kernel: Kernel, root: Path, constants: dict, workdir: Path):
        self.kernel, self.root, self.constants, self.workdir = kernel, root, constants, workdir
        self.run: TestRun | None = None

    # programs -------------------------------------------------------------------------
    def program(self, body: str, maps) -> Program:
        defmaps = "".join(f"(defmap {show(m[0])} {' '.join(show(x) for x in m[1:])})\n" for m in (maps or []))
        source = f"{defmaps}(defprog torture-test (:type :xdp :section \"xdp\" :license \"GPL\")\n{body})\n"
        prog = self.kernel.build(Program(self.run.origin, source))
        if prog not in self.run.programs:
            self.run.programs.append(prog)
        return prog

    def cu(self, body: str, maps) -> CU:
        prog = self.program(body, maps)
        if prog.excluded:
            raise NotEvaluable(prog.excluded)
        if not prog.compiled:
            raise LispError(prog.reason)
        return CU(prog)

    def unit(self) -> Program:
        source = "".join(self.run.pending)
        prog = Program(self.run.origin, source)
        try:
            prog.elf = compile_source(source, "test.lisp").elf
            prog.compiled = True
        except CompileError as err:
            prog.fail("compile error: " + str(err).splitlines()[0])
        if not self.run.negative:
            self.run.programs.append(self.kernel.build(prog))
        if not prog.compiled:
            raise LispError(prog.reason)
        return prog

    # evaluation -----------------------------------------------------------------------
    def eval(self, form, env: dict):
        if isinstance(form, Sym):
            name = form.base
            if name.startswith(":") or name in ("T", "NIL"):
                return {"T": True, "NIL": None}.get(name, name)
            for scope in reversed(env["scopes"]):
                if form in scope:
                    return scope[form]
            if name in self.constants:
                return self.constants[name]
            raise NotEvaluable(f"unbound {name.lower()}")
        if not isinstance(form, list):
            return form
        if not form:
            return None
        head = form[0].base if isinstance(form[0], Sym) else None
        if head in OPERATORS:
            return OPERATORS[head](*[self.eval(a, env) for a in form[1:]])
        special = getattr(self, "s_" + (head or "").replace("-", "_").replace("*", "star").lower(), None)
        if special is not None:
            return special(form, env)
        fn = getattr(self, "f_" + head.replace("-", "_").lower(), None) if head else None
        if fn is None:
            raise NotEvaluable(f"uses {show(form[0])}")
        return fn(*[self.eval(a, env) for a in form[1:]])

    def body(self, forms, env):
        value = None
        for f in forms:
            value = self.eval(f, env)
        return value

    def bind(self, env, names_values: dict):
        return {"scopes": [*env["scopes"], names_values]}

    # special forms
    def s_quote(self, form, env):
        return form[1]

    def s_function(self, form, env):
        return form[1]

    def s_declare(self, form, env):
        return None

    def s_in_suite(self, form, env):
        return None

    def _let(self, form, env, sequential):
        scope = {}
        inner = self.bind(env, scope)
        for b in form[1]:
            name, init = (b, None) if isinstance(b, Sym) else (b[0], b[1] if len(b) > 1 else None)
            scope[name] = self.eval(init, inner if sequential else env)
        return self.body(form[2:], inner)

    def s_let(self, form, env):
        return self._let(form, env, False)

    def s_letstar(self, form, env):
        return self._let(form, env, True)

    def s_if(self, form, env):
        return self.eval(form[2] if _true(self.eval(form[1], env)) else (form[3] if len(form) > 3 else None), env)

    def s_when(self, form, env):
        return self.body(form[2:], env) if _true(self.eval(form[1], env)) else None

    def s_unless(self, form, env):
        return None if _true(self.eval(form[1], env)) else self.body(form[2:], env)

    def s_and(self, form, env):
        value = True
        for f in form[1:]:
            value = self.eval(f, env)
            if not _true(value):
                return None
        return value

    def s_or(self, form, env):
        for f in form[1:]:
            value = self.eval(f, env)
            if _true(value):
                return value
        return None

    def s_progn(self, form, env):
        return self.body(form[1:], env)

    def s_setf(self, form, env):
        for place, value in zip(form[1::2], form[2::2]):
            if not isinstance(place, Sym):
                raise NotEvaluable(f"setf of {show(place)}")
            self._assign(place, self.eval(value, env), env)

    s_setq = s_setf

    def s_incf(self, form, env):
        place = form[1]
        value = self.eval(place, env) + (self.eval(form[2], env) if len(form) > 2 else 1)
        self._assign(place, value, env)
        return value

    def _assign(self, name, value, env):
        for scope in reversed(env["scopes"]):
            if name in scope:
                scope[name] = value
                return
        raise NotEvaluable(f"assignment to unbound {name}")

    def s_dolist(self, form, env):
        var, items = form[1][0], self.eval(form[1][1], env)
        for item in items or []:
            self.body(form[2:], self.bind(env, {var: item}))

    def s_unwind_protect(self, form, env):
        try:
            return self.eval(form[1], env)
        finally:
            self.body(form[2:], env)

    def s_with_output_to_string(self, form, env):
        out = []
        self.body(form[2:], self.bind(env, {form[1][0]: out}))
        return "".join(out)

    def s_with_open_file(self, form, env):
        var, path = form[1][0], self.eval(form[1][1], env)
        return self.body(form[2:], self.bind(env, {var: self.run.files.get(path, Path(path)).read_bytes()}))

    def s_loop(self, form, env):
        """``loop for V below N | from A below/to N | from A downto B | = EXPR``, then
        ``when C``, and one of ``do``/``return``/``collect``/``count``/``thereis``."""
        clauses, i = form[1:], 0
        fors, scope = [], {}
        while i < len(clauses) and clauses[i] == "FOR":
            var, kind = clauses[i + 1], clauses[i + 2]
            if kind == "BELOW":
                fors.append((var, 0, self.eval(clauses[i + 3], self.bind(env, scope)), 1, False))
                i += 4
            elif kind == "FROM" and clauses[i + 4] in ("BELOW", "TO", "DOWNTO"):
                start = self.eval(clauses[i + 3], self.bind(env, scope))
                end = self.eval(clauses[i + 5], self.bind(env, scope))
                step = -1 if clauses[i + 4] == "DOWNTO" else 1
                fors.append((var, start, end, step, clauses[i + 4] != "BELOW"))
                i += 6
            elif kind == "=":
                fors.append((var, clauses[i + 3], None, None, None))
                i += 4
            elif kind == "IN" and isinstance(var, Sym):
                fors.append((var, None, self.eval(clauses[i + 3], self.bind(env, scope)) or [], "IN", None))
                i += 4
            else:
                raise NotEvaluable(f"loop for ... {kind.lower()}")
        rest = clauses[i:]
        cond = None
        if rest and rest[0] == "WHEN":
            cond, rest = rest[1], rest[2:]
        action, exprs = rest[0], rest[1:]
        (var, start, end, step, inclusive) = fors[0]
        values = end if step == "IN" else range(start, end + step if inclusive else end, step)
        collected, count = [], 0
        for v in values:
            scope = {var: v}
            inner = self.bind(env, scope)
            for other in fors[1:]:
                scope[other[0]] = self.eval(other[1], inner)
            if cond is not None and not _true(self.eval(cond, inner)):
                continue
            if action == "DO":
                self.body(exprs, inner)
            elif action == "RETURN":
                return self.eval(exprs[0], inner)
            elif action == "COLLECT":
                collected.append(self.eval(exprs[0], inner))
            elif action == "COUNT":
                count += 1 if _true(self.eval(exprs[0], inner)) else 0
            elif action == "THEREIS":
                value = self.eval(exprs[0], inner)
                if _true(value):
                    return value
            else:
                raise NotEvaluable(f"loop {action.lower()}")
        return collected if action == "COLLECT" else count if action == "COUNT" else None

    # assertions
    def s_is(self, form, env):
        try:
            ok = _true(self.eval(form[1], env))
        except LispError as err:
            ok, form = False, [*form[:2], Text(str(err))]
        if not ok:
            why = next((self.eval(f, env) for f in form[2:3] if isinstance(f, (Text, list))), None)
            self.run.failures.append(f"{show(form[1])[:120]}" + (f" -- {why}" if why else ""))

    s_assert_true = s_is
    s_is_true = s_is

    def s_assert_eq(self, form, env):
        return self.s_is([Sym("IS"), [Sym("EQUAL"), form[1], form[2]]], env)

    def s_is_false(self, form, env):
        return self.s_is([Sym("IS"), [Sym("NOT"), form[1]]], env)

    def s_pass(self, form, env):
        return None

    def s_finishes(self, form, env):
        try:
            self.body(form[1:], env)
        except LispError as err:
            self.run.failures.append(f"expected to finish: {err}")

    def s_signals(self, form, env):
        self.run.negative = True
        try:
            self.body(form[2:], env)
        except LispError:
            return None
        self.run.failures.append("expected an error, the compiler accepted the program")

    def s_torture_verify(self, form, env):
        maps = None
        if len(form) > 3 and form[2] == ":MAPS":
            maps = form[3]
        prog = self.program(self.eval(form[1], env), maps)
        if prog.excluded:
            raise NotEvaluable(prog.excluded)
        if not prog.loaded:
            self.run.failures.append(prog.reason)

    def _whistler_toplevel(self, form, env):
        self.run.pending.append(show(form) + "\n")

    s_defmap = s_defprog = s_defstruct = _whistler_toplevel

    def s_w_body(self, form, env):
        return self.cu(self.eval(form[1], env), self._maps_arg(form, env)).code

    def s_w_count(self, form, env):
        return len(self.cu(self.eval(form[1], env), self._maps_arg(form, env)).code) // 8

    def _maps_arg(self, form, env):
        return self.eval(form[3], env) if len(form) > 3 and form[2] == ":MAPS" else None

    # functions backed by our compiler
    def f_read_whistler_forms(self, text):
        return Text(text)

    def f_compile_single(self, body, *kw):
        return self.cu(body, dict(zip(kw[::2], kw[1::2])).get(":MAPS"))

    def f_compile_insn_bytes(self, body, *kw):
        return self.f_compile_single(body, *kw).code

    def f_insn_count(self, body, *kw):
        return len(self.f_compile_insn_bytes(body, *kw)) // 8

    def f_compile_program(self, section, license_, maps, body):
        return self.cu("\n".join(show(f) for f in body), maps)

    # Package prefixes are dropped: whistler/compiler:cu-insns is f_cu_insns.
    def f_cu_insns(self, cu):
        return cu

    def f_insn_bytes(self, cu):
        return cu.code

    def f_cu_maps(self, cu):
        unit = compile_source(cu.program.source, "test.lisp").unit
        return [{"name": m.name, "type": m.map_type, "key": m.key_size, "value": m.value_size,
                 "max": m.max_entries} for m in unit.maps]

    def f_bpf_map_name(self, m):
        return m["name"]

    def f_bpf_map_type(self, m):
        return m["type"]

    def f_bpf_map_key_size(self, m):
        return m["key"]

    def f_bpf_map_value_size(self, m):
        return m["value"]

    def f_bpf_map_max_entries(self, m):
        return m["max"]

    def f_reverse(self, xs):
        return list(reversed(xs or []))

    def f_cu_map_relocs(self, cu):
        return [i for i in read_programs(cu.program.elf)[0].insns if i.is_ld_imm64 and i.src == 1]

    def f_eval_whistler(self, text):
        self.run.pending.append(text + "\n")

    def f_compile_to_elf(self, path):
        prog = self.unit()
        target = self.workdir / f"{uuid.uuid4().hex}.bpf.o"
        target.write_bytes(prog.elf)
        self.run.files[path] = target

    def f_write_bpf_elf(self, path, *kw):
        sections = dict(zip(kw[::2], kw[1::2]))[":PROG-SECTIONS"]
        code = sections[0][1]
        if not isinstance(code, Code):
            raise NotEvaluable("write-bpf-elf of code not compiled here")
        target = self.workdir / f"{uuid.uuid4().hex}.bpf.o"
        target.write_bytes(code.cu.program.elf)
        self.run.files[path] = target

    def f_run_program(self, argv, *kw):
        argv = [str(self.run.files.get(a, a)) for a in argv]
        out = dict(zip(kw[::2], kw[1::2])).get(":OUTPUT")
        text = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        if isinstance(out, list):
            out.append(text)
        return text

    def f_load(self, path):
        prog = Program(f"examples/{Path(path).name}", Path(path).read_text())
        prog = self.kernel.build(prog)
        if not prog.compiled:
            raise LispError(prog.reason or prog.excluded)
        return True

    def f_merge_pathnames(self, name, directory):
        return str(Path(directory) / name)

    def f_system_source_directory(self, _system):
        return str(self.root)

    def f_probe_file(self, path):
        return path if path in self.run.files or Path(path).exists() else None

    def f_delete_file(self, path):
        return True

    def f_make_array(self, n, *kw):
        return bytearray(n)

    def f_read_sequence(self, array, data):
        array[:] = data[:len(array)]
        return len(array)

    def f_nth_insn_opcode(self, code, n):
        return code[8 * n]

    def f_nth_insn_regs(self, code, n):
        return code[8 * n + 1]

    def f_nth_insn_off(self, code, n):
        return struct.unpack_from("<h", code, 8 * n + 2)[0]

    def f_nth_insn_imm(self, code, n):
        return struct.unpack_from("<i", code, 8 * n + 4)[0]

    def f_find_opcode(self, code, opcode):
        return next((i for i in range(len(code) // 8) if code[8 * i] == opcode), None)

    def f_count_opcode(self, code, opcode):
        return sum(1 for i in range(len(code) // 8) if code[8 * i] == opcode)

    def f_has_opcode_p(self, code, opcode):
        return self.f_find_opcode(code, opcode) is not None

    # a little Common Lisp
    def f_length(self, x):
        return len(x.code) // 8 if isinstance(x, CU) else len(x or [])

    def f_aref(self, x, i):
        return x[i]

    def f_char_code(self, c):
        return int(c)

    def f_search(self, needle, haystack):
        i = (haystack or "").find(needle)
        return None if i < 0 else i

    def f_format(self, dest, fmt, *args):
        return re.sub(r"~[a-z%&]", lambda m: str(args[0]) if args else "", str(fmt), count=len(args) or 0)

    def f_list(self, *xs):
        return list(xs)

    def f_member(self, x, xs):
        return xs[xs.index(x):] if x in (xs or []) else None

    def f_first(self, xs):
        return xs[0] if xs else None

    def f_second(self, xs):
        return xs[1] if xs and len(xs) > 1 else None

    def f_ash(self, x, n):
        return x << n if n >= 0 else x >> -n

    def f_not(self, x):
        return not _true(x)

    f_null = f_not

    def f_max(self, *xs):
        return max(xs)

    def f_min(self, *xs):
        return min(xs)

    def f_logand(self, *xs):
        out = -1
        for x in xs:
            out &= x
        return out

    def f_equal(self, a, b):
        return a == b

    f_eq = f_eql = f_equalp = f_equal


def _true(value) -> bool:
    return value is not None and value is not False


def _chain(test):
    return lambda *a: all(test(x, y) for x, y in zip(a, a[1:]))


# Arithmetic and comparisons, whose names are no Python identifiers.
OPERATORS = {
    "+": lambda *a: sum(a), "-": lambda a, *b: a - sum(b) if b else -a, "*": lambda *a: math.prod(a),
    "/": lambda a, b: a // b, "1+": lambda a: a + 1, "1-": lambda a: a - 1, "/=": lambda a, b: a != b,
    "=": _chain(lambda x, y: x == y), "<": _chain(lambda x, y: x < y), ">": _chain(lambda x, y: x > y),
    "<=": _chain(lambda x, y: x <= y), ">=": _chain(lambda x, y: x >= y),
}

_COMPILING = {"W-BODY", "W-COUNT", "COMPILE-SINGLE", "COMPILE-INSN-BYTES", "INSN-COUNT", "COMPILE-PROGRAM",
              "TORTURE-VERIFY", "EVAL-WHISTLER", "DEFPROG", "LOAD"}


def test_runs(root: Path) -> tuple[list, list, dict]:
    """(tests that compile programs, [(file, reason)] excluded files, constants from suite.lisp)."""
    constants, files, excluded = {}, {}, []
    for path in sorted((root / "tests").glob("*.lisp")):
        try:
            files[path] = read_all(path.read_text())
        except ReadError as err:
            files[path] = []
            excluded.append((path.name, f"unreadable: {err}"))
        for form in files[path]:  # the opcode names suite.lisp and the test files define
            if isinstance(form, list) and form[:1] == ["DEFCONSTANT"] and isinstance(form[2], int):
                constants[form[1].base] = form[2]
    runs = []
    for path, forms in files.items():
        for form in forms:
            if not (isinstance(form, list) and form and form[0] in ("TEST", "DEFTEST")):
                continue
            body = form[2:]
            if body and isinstance(body[0], Text):
                body = body[1:]
            if "BPFTRACE" in path.name.upper() or not any(heads(b) & _COMPILING for b in body):
                continue
            runs.append((f"tests/{path.name}: {form[1].lower()}", body))
    return runs, excluded, constants


def run_tests(kernel: Kernel, root: Path, workdir: Path) -> list[TestRun]:
    tests, _excluded, constants = test_runs(root)
    interp = Interp(kernel, root, constants, workdir)
    out = []
    for origin, body in tests:
        run = interp.run = TestRun(origin)
        try:
            interp.body(body, {"scopes": [{}]})
        except NotEvaluable as err:
            run.failures.append(f"not evaluated: {err}")
        except LispError as err:
            run.failures.append(str(err))
        except (IndexError, TypeError, KeyError, ValueError) as err:
            run.failures.append(f"not evaluated: {type(err).__name__}: {err}")
        broken = [p for p in run.programs if not p.excluded and not p.loaded]
        run.failures[:0] = [f"program did not {'load' if p.compiled else 'compile'}: {p.reason}" for p in broken]
        for prog in run.programs:
            if prog.loaded and not run.failures:
                prog.behaved = True
        out.append(run)
    return out
