"""One conformance case = one small Whistler program, the frame it runs on, and what must come out.

In: ``Case`` tables built by the ``test_conformance_*.py`` files. Out: ``run_case`` compiles the
program (with ``PRELUDE``'s two maps), loads it with bpftool, pre-sets map entries, wires prog-array
slots, runs ``entry`` ``runs`` times with BPF_PROG_TEST_RUN and asserts the return value and the
exact map contents. Expected values are written in the tables as Python arithmetic or
hand-derived constants, never taken from the compiler.

XDP return values are 32 bits wide, so ``value`` cases also store the full 64-bit result in
``res[0]`` and check both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.kernel import frames as f
from tests.kernel.harness import loaded

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1

# ``args`` feeds run-time operands the compiler cannot fold; ``res`` collects results.
PRELUDE = """(defmap args :type :array :key-size 4 :value-size 8 :max-entries 4)
(defmap res :type :array :key-size 4 :value-size 8 :max-entries 4)
"""

# Every field distinct and non-zero, so an accessor reading the wrong bytes cannot pass by luck.
DEFAULT_FRAME = f.eth(f.ETH_IPV4, f.ipv4(f.PROTO_TCP, f.tcp(
    sport=0x1234, dport=8080, seq=0x01020304, ack=0x0A0B0C0D, flags=0x18, window=0x4321,
    urgent=7, payload=b"hello, whistler!"), src="192.168.1.10", dst="10.20.30.40", ttl=61, tos=0x10))


def u64(x: int) -> int:
    return x & MASK64


def res(*values: int) -> dict[str, dict[int, int]]:
    """Expected contents of the ``res`` map: ``values`` from slot 0 on, the rest 0."""
    slots = [u64(v) for v in values] + [0] * (4 - len(values))
    return {"res": dict(enumerate(slots))}


@dataclass
class Case:
    id: str
    source: str  # program text after PRELUDE; the entry program is ``entry``
    retval: int  # expected XDP/TC return value
    maps: dict[str, dict[int, int]] = field(default_factory=dict)  # exact contents after the runs
    args: dict[int, int] = field(default_factory=dict)  # pre-set args[k] = v
    preset: dict[str, dict[int, int]] = field(default_factory=dict)  # other maps' entries before the run
    frame: bytes = DEFAULT_FRAME
    slots: dict[tuple[str, int], str] = field(default_factory=dict)  # (prog-array, key) -> program
    runs: int = 1
    entry: str = "conf"
    prog_type: str = "xdp"


def program(body: str, extra: str = "", options: str = "") -> str:
    """``extra`` top-level forms, then ``(defprog conf (OPTIONS) BODY)``."""
    return f"{extra}\n(defprog conf ({options})\n  {body})\n"


def value(case_id: str, expr: str, expected: int, args: dict[int, int] | None = None,
          extra: str = "", frame: bytes = DEFAULT_FRAME, counts: tuple[int, ...] = ()) -> Case:
    """``expr`` must evaluate to ``expected`` (mod 2**64): checked in the return value and res[0].

    ``counts`` are the values ``expr``'s side effects must leave in res[1], res[2]...
    """
    body = f"(let ((result {expr}))\n    (setf (getmap res 0) result)\n    result)"
    return Case(case_id, program(body, extra), u64(expected) & MASK32, res(expected, *counts),
                args=dict(args or {}), frame=frame)


def run_case(case: Case, pin_dir: Path) -> None:
    filename = re.sub(r"[^a-z0-9]+", "-", case.id.lower()) + ".lisp"
    with loaded(PRELUDE + case.source, pin_dir, filename, case.prog_type) as obj:
        for name, entries in {"args": case.args, **case.preset}.items():
            for key, val in entries.items():
                obj.set(name, key, val)
        for (prog_array, key), prog in case.slots.items():
            obj.set_slot(prog_array, key, prog)
        results = [obj.run(case.entry, case.frame) for _run in range(case.runs)]
        assert results == [case.retval] * case.runs, f"return values {results}, expected {case.retval}"
        for name, expected in case.maps.items():
            assert obj.map(name) == expected, f"map {name}"
