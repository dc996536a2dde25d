"""The original Whistler's own XDP/TC programs, through our compiler and the kernel.

In: a checkout of the original Whistler (``--whistler PATH``; its files are read, never built or
run). Out: a tally on stdout (markdown, or ``--json``): programs found, compiled, loaded and
behaved, and each failure with its reason. Needs root, bpffs and bpftool (programs are loaded
with ``bpftool prog loadall`` and run with BPF_PROG_TEST_RUN through ``tests/kernel/harness``).

    sudo .venv/bin/python bench/original_programs.py --whistler /path/to/Whistler [--json]

Where the programs come from:

* ``examples/*.lisp`` with at least one ``defprog`` and only ``:xdp``/``:tc`` programs; the
  others (tracepoints, uprobes, cgroup, sk_lookup, loader sessions) are listed as excluded.
  "Behaved" runs each example against the expectations in ``EXAMPLE_CHECKS`` below, derived
  from what the example's comments say it does (the original's tests only compile them).
* ``tests/*.lisp``: every FiveAM ``test`` (and ``deftest``) that compiles Whistler code —
  ``w-body``, ``w-count``, ``compile-single``, ``compile-program``, ``torture-verify``, inline
  ``defmap``/``defprog``, ``eval-whistler`` — is evaluated by a small interpreter for the
  subset of Common Lisp the tests use, with those functions backed by our compiler. Each
  program is loaded as XDP (which is what ``compile-single`` compiles for) and "behaved" means
  every assertion of its test held (opcode checks run on our instruction bytes). Programs that
  use tracing-only forms, or helpers the kernel does not offer XDP programs, are excluded and
  counted as such; bpftrace tests and host-side tests (loader, symbolizer) have no program.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compiler import CompileError, compile_source  # noqa: E402
from compiler.elfread import read_programs  # noqa: E402
from compiler.isa import encode  # noqa: E402
from tests.kernel import frames as fr  # noqa: E402
from tests.kernel.harness import BpftoolError, loaded  # noqa: E402

BPFFS = Path("/sys/fs/bpf")

# Forms that exist only for tracing programs (kernel memory, registers, task data).
TRACING_FORMS = {
    "KERNEL-LOAD", "PROBE-READ", "PROBE-READ-USER", "PROBE-READ-KERNEL", "PROBE-READ-STR",
    "PROBE-READ-USER-STR", "PROBE-READ-KERNEL-STR", "PT-REGS-PARM1", "PT-REGS-PARM2", "PT-REGS-PARM3",
    "PT-REGS-PARM4", "PT-REGS-PARM5", "PT-REGS-PARM6", "PT-REGS-RET", "GET-CURRENT-TASK",
    "GET-CURRENT-TASK-BTF", "GET-CURRENT-COMM", "GET-STACKID", "DO-USER-PTRS", "DO-USER-ARRAY",
    "FILL-PROCESS-INFO", "OVERRIDE-RETURN", "SEND-SIGNAL", "D-PATH", "DEFTRACEPOINT",
    "IMPORT-KERNEL-STRUCT", "LD-BTF-ID",
}
# Test programs no compiler can make load (the tests only compile them), by test name: excluded
# when the verifier refuses them for exactly this reason.
INVALID_PROGRAMS = {
    "cse-duplicate-ctx-load": ("pointer += pointer", "adds xdp_md.data to itself (two packet pointers)"),
    "cse-different-offsets-not-eliminated": ("pointer += pointer", "adds data and data_end (two packet pointers)"),
    "ringbuf-reserve-compiles": ("reference leak", "reserves a ring buffer record and never submits it"),
    "phi-threading-helper-call-before-getmap": (
        "invalid mem access 'scalar'", "stores through (getmap stats pid), which on a map without :value-type "
        "is the value's first 8 bytes, not a pointer (reference 2.10)"),
}
# What the verifier says when a helper is not offered to the program type.
NOT_FOR_XDP = re.compile(r"unknown func|program of this type cannot use helper|cannot call")


# -- a tolerant reader for Common Lisp source --------------------------------------------------

class Sym(str):
    """A symbol, upper case, with its package prefix (``WHISTLER/COMPILER:CU-INSNS``)."""

    @property
    def base(self) -> str:
        return self if self.startswith(":") else self.rsplit(":", 1)[-1]


class Text(str):
    """A string literal."""


class Char(int):
    """A character literal (its code)."""


class ReadError(Exception):
    pass


_DELIMS = set("()'`,\"; \t\r\n")


def read_all(text: str) -> list:
    pos, out = 0, []
    while True:
        pos = _skip(text, pos)
        if pos >= len(text):
            return out
        form, pos = _read(text, pos)
        out.append(form)


def _skip(text: str, pos: int) -> int:
    while pos < len(text):
        c = text[pos]
        if c.isspace():
            pos += 1
        elif c == ";":
            while pos < len(text) and text[pos] != "\n":
                pos += 1
        elif text.startswith("#|", pos):
            end = text.find("|#", pos)
            pos = len(text) if end < 0 else end + 2
        else:
            return pos
    return pos


def _read(text: str, pos: int):
    pos = _skip(text, pos)
    if pos >= len(text):
        raise ReadError("unexpected end of file")
    c = text[pos]
    if c == "(":
        items, pos = [], pos + 1
        while True:
            pos = _skip(text, pos)
            if pos >= len(text):
                raise ReadError("unterminated list")
            if text[pos] == ")":
                return items, pos + 1
            if text[pos] == "." and pos + 1 < len(text) and text[pos + 1] in _DELIMS:
                tail, pos = _read(text, pos + 1)
                items = [*items, Sym("&DOT"), tail]
                continue
            item, pos = _read(text, pos)
            items.append(item)
    if c == ")":
        raise ReadError("unexpected )")
    prefixes = {"'": "QUOTE", "`": "QUASIQUOTE"}
    if c in prefixes:
        form, pos = _read(text, pos + 1)
        return [Sym(prefixes[c]), form], pos
    if c == ",":
        splice = text.startswith(",@", pos)
        form, pos = _read(text, pos + (2 if splice else 1))
        return [Sym("UNQUOTE-SPLICING" if splice else "UNQUOTE"), form], pos
    if c == '"':
        out, pos = [], pos + 1
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\":
                pos += 1
            out.append(text[pos])
            pos += 1
        return Text("".join(out)), pos + 1
    if c == "#":
        nxt = text[pos + 1] if pos + 1 < len(text) else ""
        if nxt == "'":
            form, pos = _read(text, pos + 2)
            return [Sym("FUNCTION"), form], pos
        if nxt == "(":
            items, pos = _read(text, pos + 1)
            return [Sym("VECTOR"), *items], pos
        if nxt == "\\":
            end = pos + 3
            while end < len(text) and text[end] not in _DELIMS:
                end += 1
            name = text[pos + 2:end]
            return Char(ord(name) if len(name) == 1 else {"SPACE": 32, "NEWLINE": 10}.get(name.upper(), 0)), end
        if nxt in "xXbBoO":
            end = pos + 2
            while end < len(text) and text[end] not in _DELIMS:
                end += 1
            return int(text[pos + 2:end], {"x": 16, "b": 2, "o": 8}[nxt.lower()]), end
        if nxt == ":":
            atom, end = _atom(text, pos + 2)
            return Sym(atom.upper()), end
    atom, end = _atom(text, pos)
    if re.fullmatch(r"[+-]?\d+", atom):
        return int(atom), end
    return Sym(atom.upper()), end


def _atom(text: str, pos: int) -> tuple[str, int]:
    end = pos
    while end < len(text) and text[end] not in _DELIMS:
        if text[end] == "|":
            close = text.find("|", end + 1)
            end = len(text) if close < 0 else close + 1
            continue
        end += 1
    return text[pos:end], end


def show(form) -> str:
    """Print a form back as Lisp source (for the maps a test passes)."""
    if isinstance(form, list):
        if len(form) == 2 and form[0] == "QUOTE":
            return "'" + show(form[1])
        return "(" + " ".join(show(f) for f in form) + ")"
    if isinstance(form, Text):
        return '"' + form.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(form).lower() if isinstance(form, Sym) else str(form)


def heads(form) -> set[str]:
    """Every symbol in head position in ``form``."""
    out = set()
    if isinstance(form, list) and form:
        if isinstance(form[0], Sym):
            out.add(form[0].base)
        for f in form:
            out |= heads(f)
    return out


# -- programs and their fate ------------------------------------------------------------------

@dataclass
class Program:
    origin: str  # "examples/x.lisp" or "tests/test-alu.lisp: NAME"
    source: str  # complete Whistler source
    prog_type: str = "xdp"
    compiled: bool = False
    loaded: bool = False
    behaved: bool = False
    excluded: str | None = None  # why it is not an XDP/TC program
    reason: str = ""  # the first failure
    elf: bytes = b""

    def fail(self, why: str) -> None:
        if not self.reason:
            self.reason = why


class Kernel:
    """Compiles and loads each distinct program once; a private bpffs directory for all."""

    def __init__(self):
        self.pins = BPFFS / f"whistler-bench-{uuid.uuid4().hex[:8]}"
        self.pins.mkdir()
        self.seen: dict[tuple[str, str], Program] = {}

    def close(self) -> None:
        shutil.rmtree(self.pins, ignore_errors=True)

    def build(self, prog: Program) -> Program:
        key = (prog.source, prog.prog_type)
        if key in self.seen:
            return self.seen[key]
        self.seen[key] = prog
        tokens = {t.upper() for t in re.findall(r"\(([A-Za-z0-9+*/<>=-]+)", prog.source)}
        tracing = sorted(tokens & TRACING_FORMS)
        if tracing:
            prog.excluded = "tracing-only forms: " + ", ".join(t.lower() for t in tracing)
            return prog
        try:
            prog.elf = compile_source(prog.source, prog.origin.split(":")[0]).elf
            prog.compiled = True
        except CompileError as err:
            prog.fail("compile error: " + str(err).splitlines()[0])
            return prog
        try:
            with loaded(_object_path(prog), self.pins, prog_type=prog.prog_type):
                prog.loaded = True
        except BpftoolError as err:
            log = str(err)
            helper = NOT_FOR_XDP.search(log)
            invalid = INVALID_PROGRAMS.get(prog.origin.rsplit(": ", 1)[-1])
            if invalid and invalid[0] in log:
                prog.excluded = f"invalid for the kernel whatever the compiler: {invalid[1]} ({invalid[0]})"
            elif helper:
                prog.excluded = "uses a helper the kernel does not offer XDP programs (" + \
                                _last_line(log, helper.group(0)) + ")"
            else:
                prog.fail("verifier/libbpf: " + _last_line(log, ""))
        return prog


def _object_path(prog: Program) -> Path:
    path = Path(tempfile.mkdtemp(prefix="whistler-bench-")) / "prog.bpf.o"
    path.write_bytes(prog.elf)
    return path


def _last_line(log: str, containing: str) -> str:
    noise = ("libbpf:", "Error:", "Warning", "If it", "-- ", "processed ", "verification time", "stack depth",
             "bpftool ")
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.strip().startswith(noise)]
    for line in reversed(lines):
        if containing in line:
            return line[:160]
    return (lines[-1] if lines else log.strip())[:160]


# -- examples ---------------------------------------------------------------------------------

def _defprog_types(text: str) -> list[str]:
    types = []
    for m in re.finditer(r"\(defprog\s+[^\s()]+\s*\(([^)]*)\)", text, re.I):
        t = re.search(r":type\s+:([a-z0-9-]+)", m.group(1), re.I)
        types.append(t.group(1).lower() if t else "xdp")
    return types


def example_programs(root: Path) -> list[Program]:
    out = []
    for path in sorted((root / "examples").glob("*.lisp")):
        text = path.read_text()
        origin = f"examples/{path.name}"
        types = _defprog_types(text)
        prog = Program(origin, text, types[0] if types else "xdp")
        if not types:
            prog.excluded = "no defprog (a loader or session script)"
        elif set(types) - {"xdp", "tc"}:
            prog.excluded = "program types " + ", ".join(sorted(set(types))) + " (not XDP/TC)"
        out.append(prog)
    return out


def _frame(proto=fr.PROTO_TCP, src="10.0.0.1", dst="10.0.0.2", **l4) -> bytes:
    payload = fr.tcp(**l4) if proto == fr.PROTO_TCP else fr.udp(**l4) if proto == fr.PROTO_UDP else fr.icmp()
    return fr.pad(fr.eth(fr.ETH_IPV4, fr.ipv4(proto, payload, src=src, dst=dst)))


ARP = fr.pad(fr.eth(fr.ETH_ARP, fr.arp()))
XDP_DROP, XDP_PASS, TC_ACT_OK, TC_ACT_SHOT = 1, 2, 0, 2


def _check_count_xdp(obj):
    results = [obj.run("count_packets", f) for f in (_frame(), ARP, _frame(fr.PROTO_UDP))]
    return results == [XDP_PASS] * 3 and obj.map("pkt_count") == {0: 3}


def _check_drop_port(obj):
    results = [obj.run("drop_port", f) for f in (_frame(dport=9999), _frame(dport=80), _frame(fr.PROTO_UDP, dport=9999))]
    return results == [XDP_DROP, XDP_PASS, XDP_PASS] and obj.map("drop_count") == {0: 1}


def _check_synflood(obj):
    syn, ack = _frame(src="10.1.1.1", flags=0x02), _frame(src="10.1.1.1", flags=0x12)
    first = [obj.run("synflood", syn) for _ in range(3)] + [obj.run("synflood", ack)]
    counter = obj.map("syn_counter")
    obj.set("syn_counter", int.from_bytes(bytes([10, 1, 1, 1]), "little"), 101)  # over the threshold (100)
    dropped = obj.run("synflood", syn)
    key = int.from_bytes(bytes([10, 1, 1, 1]), "little")
    return (first == [XDP_PASS] * 4 and counter == {key: 3} and dropped == XDP_DROP
            and obj.map("syn_stats") == {0: 4, 1: 1, 2: 1})


def _check_ratelimit(obj):
    a = int.from_bytes(bytes([10, 2, 2, 2]), "little")
    runs = [obj.run("ratelimit", _frame(src="10.2.2.2")) for _ in range(3)]
    counted = obj.map("ip_counter")
    obj.set("ip_counter", a, 1001)  # over the threshold (1000)
    dropped = obj.run("ratelimit", _frame(src="10.2.2.2"))
    arp = obj.run("ratelimit", ARP)
    return runs == [XDP_PASS] * 3 and counted == {a: 3} and dropped == XDP_DROP and arp == XDP_PASS \
        and obj.map("stats") == {0: 4, 1: 1}


def _check_tc_classifier(obj):
    obj.set("blocked_ports", 8080, 1)
    runs = [obj.run("tc_classify", f) for f in (_frame(dport=22), _frame(fr.PROTO_UDP, dport=53),
                                                _frame(dport=443), _frame(dport=8080), _frame(dport=12345),
                                                _frame(fr.PROTO_ICMP), ARP)]
    return runs == [TC_ACT_OK, TC_ACT_OK, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK, TC_ACT_OK, TC_ACT_OK] and \
        obj.map("tc_stats") == {0: 5, 1: 2, 2: 1, 3: 1}


def _check_multi_prog(obj):
    obj.set_slot("jt", 0, "ipv4_handler")
    runs = [obj.run("xdp_main", f) for f in (_frame(), _frame(fr.PROTO_UDP), ARP)]
    return runs == [XDP_PASS] * 3 and obj.map("pkt_stats") == {0: 3, 1: 2, 2: 1, 3: 0}


def _check_tail_call_dispatch(obj):
    runs = [obj.run("xdp_dispatch", f) for f in (_frame(), _frame(fr.PROTO_UDP), ARP)]
    return runs == [XDP_PASS] * 3 and obj.map("proto_stats") == {0: 2, 1: 0, 2: 0}


def _check_percpu_counter(obj):
    # four loop iterations each see data_end > data: the program returns the count, 4
    return obj.run("count_with_bounds_check", _frame()) == 4


def _check_ringbuf_events(obj):
    syn = _frame(src="192.168.1.10", dst="10.20.30.40", dport=443, flags=0x02)
    runs = [obj.run("event_logger", f) for f in (syn, _frame(flags=0x12), _frame(fr.PROTO_UDP), ARP)]
    records = obj.records("events")
    expected = struct.pack("<4s4sHBB", bytes([192, 168, 1, 10]), bytes([10, 20, 30, 40]), 443, 6, 0)
    return runs == [XDP_PASS] * 4 and records == [expected] and obj.map("rb_stats") == {0: 1, 1: 0}


EXAMPLE_CHECKS = {
    "count-xdp.lisp": _check_count_xdp, "drop-port.lisp": _check_drop_port,
    "synflood-xdp.lisp": _check_synflood, "ratelimit-xdp.lisp": _check_ratelimit,
    "tc-classifier.lisp": _check_tc_classifier, "multi-prog.lisp": _check_multi_prog,
    "tail-call-dispatch.lisp": _check_tail_call_dispatch, "percpu-counter.lisp": _check_percpu_counter,
    "ringbuf-events.lisp": _check_ringbuf_events,
}


def run_example(kernel: Kernel, prog: Program) -> None:
    kernel.build(prog)
    if prog.excluded or not prog.loaded:
        return
    check = EXAMPLE_CHECKS.get(prog.origin.split("/")[-1])
    if check is None:
        prog.fail("no behaviour check for this example in EXAMPLE_CHECKS")
        return
    try:
        with loaded(_object_path(prog), kernel.pins, prog_type=prog.prog_type) as obj:
            prog.behaved = bool(check(obj))
    except (BpftoolError, KeyError, OSError) as err:
        prog.fail(f"behaviour check failed: {str(err).splitlines()[0]}")
        return
    if not prog.behaved:
        prog.fail("behaviour check: results differ from what the example describes")


# -- the tests' Common Lisp, interpreted -------------------------------------------------------

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


# -- report -----------------------------------------------------------------------------------

def tally(programs: list[Program]) -> dict:
    counted = [p for p in programs if not p.excluded]
    return {"found": len(counted), "compiled": sum(p.compiled for p in counted),
            "loaded": sum(p.loaded for p in counted), "behaved": sum(p.behaved for p in counted),
            "excluded": len(programs) - len(counted)}


def report(examples: list[Program], runs: list[TestRun]) -> dict:
    test_programs, seen = [], set()
    for run in runs:
        for prog in run.programs:
            if id(prog) not in seen:
                seen.add(id(prog))
                test_programs.append(prog)
    failing_tests = [(r.origin, r.failures[0]) for r in runs
                     if r.failures and any(not p.excluded for p in r.programs)]
    evaluated = [r for r in runs if any(not p.excluded for p in r.programs) or r.negative]
    return {
        "examples": tally(examples), "tests": tally(test_programs),
        "test_count": {"with_programs": len(evaluated), "all_assertions_held": sum(not r.failures for r in evaluated)},
        "example_programs": sum(len(_defprog_types(p.source)) for p in examples if not p.excluded),
        "example_rows": [{"file": p.origin, "excluded": p.excluded, "compiled": p.compiled, "loaded": p.loaded,
                          "behaved": p.behaved, "reason": p.reason} for p in examples],
        "test_failures": [{"test": t, "reason": why} for t, why in failing_tests],
        "test_excluded": sorted({(p.origin, p.excluded) for p in test_programs if p.excluded}),
        "negative_tests": [{"test": r.origin, "ok": not r.failures} for r in runs if r.negative],
    }


def markdown(result: dict) -> str:
    out = ["| | programs | compiled | loaded | behaved | excluded |", "|---|---:|---:|---:|---:|---:|"]
    for name in ("examples", "tests"):
        t = result[name]
        out.append(f"| {name} | {t['found']} | {t['compiled']} | {t['loaded']} | {t['behaved']} | {t['excluded']} |")
    counts = result["test_count"]
    out += ["", f"Example files hold {result['example_programs']} XDP/TC programs. Of the original's FiveAM tests, "
            f"{counts['with_programs']} compile XDP code (the others are host-side: loader, bpftrace, symbolizer); "
            f"every assertion held in {counts['all_assertions_held']} of them."]
    out += ["", "| example | result |", "|---|---|"]
    for row in result["example_rows"]:
        if row["excluded"]:
            verdict = f"excluded: {row['excluded']}"
        elif row["behaved"]:
            verdict = "compiles, loads, behaves"
        else:
            verdict = row["reason"]
        out.append(f"| {row['file']} | {verdict} |")
    if result["test_failures"]:
        out += ["", "| test | first failure |", "|---|---|"]
        out += [f"| {f['test']} | {f['reason'].replace('|', '/')} |" for f in result["test_failures"]]
    if result["test_excluded"]:
        out += ["", "| excluded test program | why |", "|---|---|"]
        out += [f"| {origin} | {why} |" for origin, why in result["test_excluded"]]
    if result["negative_tests"]:
        out += ["", "| test expecting a compile error | rejected as expected |", "|---|---|"]
        out += [f"| {n['test']} | {'yes' if n['ok'] else 'no'} |" for n in result["negative_tests"]]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whistler", required=True, type=Path, help="checkout of the original Whistler")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    root = args.whistler
    if not (root / "examples").is_dir() or not (root / "tests").is_dir():
        parser.error(f"{root} has no examples/ and tests/ directories")
    kernel = Kernel()
    workdir = Path(tempfile.mkdtemp(prefix="whistler-bench-"))
    try:
        examples = example_programs(root)
        for prog in examples:
            run_example(kernel, prog)
        runs = run_tests(kernel, root, workdir)
    finally:
        kernel.close()
        shutil.rmtree(workdir, ignore_errors=True)
    result = report(examples, runs)
    print(json.dumps(result, indent=2) if args.json else markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
