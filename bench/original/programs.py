"""Programs of the original and their fate: compiled by our compiler once, loaded once.

In: a ``Program`` (origin and complete Whistler source). Out: the same ``Program`` with
``compiled``/``loaded`` set, its ELF, or ``excluded`` (tracing-only forms, a helper XDP programs
cannot call, or one of the ``INVALID_PROGRAMS`` no compiler can make load) or ``reason`` (the
first failure). ``Kernel`` loads with ``bpftool prog loadall`` under a private bpffs directory.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from compiler import CompileError, compile_source
from tests.kernel.harness import BpftoolError, loaded

BPFFS = Path("/sys/fs/bpf")

TRACING_FORMS = {
    "KERNEL-LOAD", "PROBE-READ", "PROBE-READ-USER", "PROBE-READ-KERNEL", "PROBE-READ-STR",
    "PROBE-READ-USER-STR", "PROBE-READ-KERNEL-STR", "PT-REGS-PARM1", "PT-REGS-PARM2", "PT-REGS-PARM3",
    "PT-REGS-PARM4", "PT-REGS-PARM5", "PT-REGS-PARM6", "PT-REGS-RET", "GET-CURRENT-TASK",
    "GET-CURRENT-TASK-BTF", "GET-CURRENT-COMM", "GET-STACKID", "DO-USER-PTRS", "DO-USER-ARRAY",
    "FILL-PROCESS-INFO", "OVERRIDE-RETURN", "SEND-SIGNAL", "D-PATH", "DEFTRACEPOINT",
    "IMPORT-KERNEL-STRUCT", "LD-BTF-ID",
}
# Test programs no compiler can make load (the tests only compile them), by test name: excluded
# when our compiler refuses them (its checking stage models the verifier) with the message
# matching the second pattern, or the verifier refuses them with the first: (verifier's reason,
# the compile error's, what the program does).
INVALID_PROGRAMS = {
    "cse-duplicate-ctx-load": ("pointer += pointer", "of two pointers",
                               "adds xdp_md.data to itself (two packet pointers)"),
    "cse-different-offsets-not-eliminated": ("pointer += pointer", "of two pointers",
                                             "adds data and data_end (two packet pointers)"),
    "ringbuf-reserve-compiles": ("reference leak", "neither submitted nor discarded",
                                 "reserves a ring buffer record and never submits it"),
    "phi-threading-helper-call-before-getmap": (
        "invalid mem access 'scalar'", "which is not a pointer",
        "stores through (getmap stats pid), which on a map without :value-type "
        "is the value's first 8 bytes, not a pointer (reference 2.10)"),
}
# What the verifier says when a helper is not offered to the program type, and what the compiler says.
NOT_FOR_XDP = re.compile(r"unknown func|program of this type cannot use helper|cannot call")
NOT_FOR_XDP_COMPILE = re.compile(r"is not available to XDP programs")


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
            first = str(err).splitlines()[0]
            invalid = INVALID_PROGRAMS.get(prog.origin.rsplit(": ", 1)[-1])
            if invalid and invalid[1] in first:
                prog.excluded = f"invalid for the kernel whatever the compiler: {invalid[2]} (refused at compile " \
                                f"time: {first.split(' error: ', 1)[-1][:100]})"
            elif NOT_FOR_XDP_COMPILE.search(first):
                prog.excluded = "uses a helper the kernel does not offer XDP programs (refused at compile time: " + \
                                first.split(" error: ", 1)[-1][:100] + ")"
            else:
                prog.fail("compile error: " + first)
            return prog
        try:
            with loaded(object_path(prog), self.pins, prog_type=prog.prog_type):
                prog.loaded = True
        except BpftoolError as err:
            log = str(err)
            helper = NOT_FOR_XDP.search(log)
            invalid = INVALID_PROGRAMS.get(prog.origin.rsplit(": ", 1)[-1])
            if invalid and invalid[0] in log:
                prog.excluded = f"invalid for the kernel whatever the compiler: {invalid[2]} ({invalid[0]})"
            elif helper:
                prog.excluded = "uses a helper the kernel does not offer XDP programs (" + \
                                _last_line(log, helper.group(0)) + ")"
            else:
                prog.fail("verifier/libbpf: " + _last_line(log, ""))
        return prog


def object_path(prog: Program) -> Path:
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
