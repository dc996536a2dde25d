"""Packet tests on a private test instance of an object: tests and an object in, verdicts out.

In: ``parse_tests(raw, spec)`` checks the option (``[{name, frame, expect, counters?}]``, see ``packet``)
against the object; ``run_tests(spec, wiring, tests, shared_maps)`` runs them.
Out: one ``TestResult`` per test (verdict got and expected, counter changes got and expected).

The instance is the object loaded against fresh maps of the same specs (``load.load_objects`` on a plan
from an empty pin state): its own jump table, wired to its own handlers, and scratch copies of the live
shared maps (their entries are copied in, so tests see the live configuration; the live maps are only
read). A program's tag ignores which maps it uses, so the instance runs the very code that goes live;
``run_tests`` checks that each instance program's kernel tag is one of the object's offline tags.
Nothing is pinned; everything is closed afterwards. Check mode runs tests too: they change nothing.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .. import syscalls as sc
from ..errors import BpfError
from ..load import PinState, decide, load_objects
from ..maps import Map
from ..objfile import ObjectSpec
from ..packet import VERDICT_NAMES, VERDICTS, FrameError, frame_bytes

# Maps whose entries are plain data (copied from the live map into the scratch one).
DATA_MAP_TYPES = (sc.MAP_TYPE_HASH, sc.MAP_TYPE_ARRAY, sc.MAP_TYPE_PERCPU_HASH, sc.MAP_TYPE_PERCPU_ARRAY,
                  sc.MAP_TYPE_LRU_HASH, sc.MAP_TYPE_LRU_PERCPU_HASH, 11)  # 11: LPM_TRIE
INTEGER = re.compile(r"(0|[1-9][0-9]*|0[xX][0-9a-fA-F]+)", re.ASCII)


class TestSpecError(ValueError):
    """A test description that cannot be run; the message names the test and field."""

    __test__ = False


@dataclass(frozen=True)
class CounterCheck:
    map: str
    key: int
    delta: int


@dataclass(frozen=True)
class PacketTest:
    __test__ = False

    name: str
    frame: bytes
    expect: int
    counters: List[CounterCheck] = field(default_factory=list)


@dataclass(frozen=True)
class Wiring:
    """Which program the tests enter, and the jump table slots: {slot: handler program name}."""

    dispatcher: str
    jump_table: str
    handlers: Dict[int, str]


@dataclass
class TestResult:
    __test__ = False

    name: str
    frame: str
    verdict: str
    expected: str
    counters: List[dict]

    @property
    def passed(self) -> bool:
        return self.verdict == self.expected and all(c["delta"] == c["expected"] for c in self.counters)

    def failure(self) -> str:
        counters = "; ".join(f"{c['map']}[{c['key']}] changed by {c['delta']}, expected {c['expected']}"
                             for c in self.counters if c["delta"] != c["expected"])
        verdict = f"verdict {self.verdict}, expected {self.expected}"
        return f"test {self.name!r}: frame {self.frame}: " + (verdict if self.verdict != self.expected else counters)

    def as_dict(self) -> dict:
        return dict(name=self.name, frame=self.frame, verdict=self.verdict, expected=self.expected,
                    counters=self.counters, passed=self.passed)


def integer(value, where: str) -> int:
    """A plain integer: an int, or decimal / 0x-hex text (no signs, '_' or non-ASCII digits)."""
    if isinstance(value, bool):
        raise TestSpecError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and INTEGER.fullmatch(value):
        return int(value, 0)
    raise TestSpecError(f"{where}: {value!r} is not a plain integer (decimal or 0x hex)")


def parse_tests(raw: Optional[list], spec: Optional[ObjectSpec]) -> List[PacketTest]:
    """The ``tests`` option checked against the object: frames built, verdicts and counters known."""
    tests: List[PacketTest] = []
    names = set()
    for i, item in enumerate(raw or []):
        where = f"tests[{i}]"
        if not isinstance(item, dict):
            raise TestSpecError(f"{where}: expected a dict with name, frame and expect")
        unknown = sorted(set(item) - {"name", "frame", "expect", "counters"}, key=str)
        if unknown:
            raise TestSpecError(f"{where}: unknown field {unknown[0]!r} (known: name, frame, expect, counters)")
        name = str(item.get("name") or f"test {i}")
        where = f"tests[{i}] ({name})"
        if name in names:
            raise TestSpecError(f"{where}: two tests are named {name!r}")
        names.add(name)
        if "frame" not in item:
            raise TestSpecError(f"{where}: frame is required")
        try:
            frame = frame_bytes(item["frame"], f"{where}.frame")
        except FrameError as exc:
            raise TestSpecError(str(exc)) from None
        expect = str(item.get("expect", "")).upper()
        if expect not in VERDICTS:
            raise TestSpecError(f"{where}.expect: {item.get('expect')!r} is not a verdict "
                                f"({', '.join(VERDICTS)})")
        counters = [_counter(c, f"{where}.counters[{j}]", spec) for j, c in enumerate(item.get("counters") or [])]
        tests.append(PacketTest(name, frame, VERDICTS[expect], counters))
    return tests


def _counter(item, where: str, spec: Optional[ObjectSpec]) -> CounterCheck:
    if not isinstance(item, dict) or set(item) - {"map", "key", "delta"} or "map" not in item:
        raise TestSpecError(f"{where}: expected {{map, key, delta}}")
    map_name = counter_map(item["map"], f"{where}.map", spec)
    return CounterCheck(map_name, integer(item.get("key", 0), f"{where}.key"), integer(item.get("delta", 1), f"{where}.delta"))


def counter_map(value, where: str, spec: Optional[ObjectSpec]) -> str:
    """``value`` if it names one of the object's maps of integers of at most 8 bytes (counters)."""
    map_name = str(value)
    if spec is not None:
        try:
            m = spec.map(map_name)
        except KeyError as exc:
            raise TestSpecError(f"{where}: {exc.args[0]}") from None
        if m.type not in DATA_MAP_TYPES or m.value_size > 8:
            raise TestSpecError(f"{where}: {map_name!r} does not hold counters (a map of integers of at "
                                f"most 8 bytes)")
    return map_name


def run_tests(spec: ObjectSpec, wiring: Wiring, tests: List[PacketTest], shared_maps: Dict[str, str]) -> List[TestResult]:
    """Run every test on a fresh test instance of ``spec``; ``shared_maps``: {map name: live pin} whose
    entries the scratch maps start with (a missing pin: the scratch map starts empty)."""
    if not tests:
        return []
    plan = decide(spec, PinState(), "<test instance>", "<test instance>")
    with load_objects(plan) as instance:
        _check_tags(spec, instance)
        for name, path in shared_maps.items():
            if name in instance.maps and instance.maps[name].info.type in DATA_MAP_TYPES:
                _copy_entries(path, instance.maps[name])
        table = instance.maps[wiring.jump_table]
        for slot, handler in sorted(wiring.handlers.items()):
            table.set(slot, instance.programs[handler].fd)
        entry = instance.programs[wiring.dispatcher]
        return [_run(entry, instance.maps, test) for test in tests]


def _check_tags(spec: ObjectSpec, instance) -> None:
    for p in spec.programs:
        tag = instance.programs[p.name].tag
        if tag not in p.tags():
            raise BpfError(errno.EINVAL, "test instance", p.name, f"kernel tag {tag} is none of the object's "
                           f"offline tags {sorted(p.tags())}: the tested code would not be the code that goes live")


def _copy_entries(live_pin: str, scratch: Map) -> None:
    try:
        live = Map.from_pin(live_pin)
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    with live:
        if (live.info.key_size, live.info.value_size) != (scratch.info.key_size, scratch.info.value_size):
            return  # an incompatible live map is the load plan's business, not the tests'
        for key, value in live.items().items():
            scratch.update(key, value)


def _read(maps: Dict[str, Map], check: CounterCheck) -> int:
    return maps[check.map].integer(check.key)


def _run(entry, maps: Dict[str, Map], test: PacketTest) -> TestResult:
    before = [_read(maps, c) for c in test.counters]
    try:
        verdict = entry.test_run(test.frame).retval
    except BpfError as exc:
        exc.obj = f"test {test.name!r}"
        raise
    counters = [dict(map=c.map, key=c.key, delta=_read(maps, c) - b, expected=c.delta)
                for c, b in zip(test.counters, before)]
    return TestResult(test.name, test.frame.hex(), VERDICT_NAMES.get(verdict, str(verdict)),
                      VERDICT_NAMES[test.expect], counters)
