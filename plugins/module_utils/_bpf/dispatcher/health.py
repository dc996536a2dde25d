"""Health checks after going live: the ``health`` option in, a ``PostSwitchCheck`` that watches the live
dispatcher for a window out (it raises ``HealthCheckFailed`` with what it saw, and ``apply`` rolls back).

In: ``parse_health(raw, spec)`` checks the option (``{window, min_runs, counters: [{map, key, min_delta,
max_delta}]}``) against the object. Out: a ``HealthCheck``; called with ``apply.Live`` after every interface
switched, it

- enables the kernel's run statistics for its own window (``RunStatistics``: BPF_ENABLE_STATS, no sysctl),
- reads the live dispatcher's run count and each counter (per-CPU values summed) in the shared maps,
- waits ``window`` seconds while traffic flows, reads them again,
- and fails when the dispatcher ran fewer than ``min_runs`` times or a counter grew by less than
  ``min_delta`` or more than ``max_delta``.

``observed`` is what it saw either way (runs, counter values and deltas, the window measured), for the
module's result. Nothing here changes the host: the maps are only read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional

from ..maps import Map
from ..objfile import ObjectSpec
from ..program import Program, RunStatistics
from .testrun import TestSpecError, counter_map, integer

MAX_WINDOW = 600.0


class HealthCheckFailed(Exception):
    """The live dispatcher did not look healthy; ``observed`` says what was seen."""

    def __init__(self, text: str, observed: dict):
        super().__init__(text)
        self.observed = observed


@dataclass(frozen=True)
class CounterCondition:
    map: str
    key: int
    min_delta: Optional[int]
    max_delta: Optional[int]

    @property
    def label(self) -> str:
        return f"{self.map}[{self.key}]"

    def problem(self, delta: int) -> str:
        if self.min_delta is not None and delta < self.min_delta:
            return f"{self.label} grew by {delta}, expected at least {self.min_delta}"
        if self.max_delta is not None and delta > self.max_delta:
            return f"{self.label} grew by {delta}, expected at most {self.max_delta}"
        return ""


@dataclass(frozen=True)
class HealthSpec:
    window: float
    min_runs: int
    counters: List[CounterCondition] = field(default_factory=list)


def parse_health(raw: Optional[dict], spec: Optional[ObjectSpec]) -> Optional[HealthSpec]:
    """The ``health`` option checked against the object; None when no check is asked for."""
    if not raw:
        return None
    unknown = sorted(set(raw) - {"window", "min_runs", "counters"}, key=str)
    if unknown:
        raise TestSpecError(f"health: unknown field {unknown[0]!r} (known: window, min_runs, counters)")
    window = raw.get("window", 5)
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= MAX_WINDOW:
        raise TestSpecError(f"health.window: {window!r} is not a number of seconds above 0 and at most {MAX_WINDOW:g}")
    min_runs = integer(raw.get("min_runs", 1), "health.min_runs")
    if min_runs < 0:
        raise TestSpecError(f"health.min_runs: {min_runs} is below 0")
    counters = [_condition(c, f"health.counters[{i}]", spec) for i, c in enumerate(raw.get("counters") or [])]
    if not min_runs and not counters:
        raise TestSpecError("health: nothing to check (min_runs is 0 and no counters are given)")
    return HealthSpec(float(window), min_runs, counters)


def _condition(item, where: str, spec: Optional[ObjectSpec]) -> CounterCondition:
    if not isinstance(item, dict) or set(item) - {"map", "key", "min_delta", "max_delta"} or "map" not in item:
        raise TestSpecError(f"{where}: expected {{map, key, min_delta, max_delta}}")
    bounds = {name: integer(item[name], f"{where}.{name}") if item.get(name) is not None else None
              for name in ("min_delta", "max_delta")}
    if bounds["min_delta"] is None and bounds["max_delta"] is None:
        raise TestSpecError(f"{where}: give min_delta, max_delta or both")
    if None not in bounds.values() and bounds["min_delta"] > bounds["max_delta"]:
        raise TestSpecError(f"{where}: min_delta {bounds['min_delta']} is above max_delta {bounds['max_delta']}")
    return CounterCondition(counter_map(item["map"], f"{where}.map", spec), integer(item.get("key", 0), f"{where}.key"),
                            **bounds)


def probe() -> None:
    """Fail now (before anything goes live) when this kernel cannot count program runs for us."""
    RunStatistics.enable().close()


class HealthCheck:
    """A ``PostSwitchCheck``: ``check(live)`` watches the live dispatcher for ``spec.window`` seconds."""

    def __init__(self, spec: HealthSpec, sleep=time.sleep, clock=time.monotonic):
        self.spec = spec
        self.observed: Optional[dict] = None
        self._sleep, self._clock = sleep, clock

    def __call__(self, live) -> None:
        spec = self.spec
        maps = {c.map: None for c in spec.counters}
        try:
            for name in maps:
                maps[name] = Map.from_pin(live.layout.shared_map(name))
            with RunStatistics.enable(), Program.from_pin(live.dispatcher_pin) as dispatcher:
                start, runs_before = self._clock(), dispatcher.info().run_cnt
                before = [maps[c.map].integer(c.key) for c in spec.counters]
                self._sleep(spec.window)
                after = [maps[c.map].integer(c.key) for c in spec.counters]
                info = dispatcher.info()
                elapsed = self._clock() - start
        finally:
            for m in maps.values():
                if m is not None:
                    m.close()
        runs = info.run_cnt - runs_before
        problems = [f"{info.name} (program {info.id}) ran {runs} times, expected at least {spec.min_runs}"] \
            if runs < spec.min_runs else []
        counters = []
        for condition, b, a in zip(spec.counters, before, after):
            problem = condition.problem(a - b)
            problems += [problem] if problem else []
            counters.append(dict(map=condition.map, key=condition.key, before=b, after=a, delta=a - b,
                                 min_delta=condition.min_delta, max_delta=condition.max_delta, passed=not problem))
        self.observed = dict(ran=True, passed=not problems, window=spec.window, elapsed=round(elapsed, 3),
                             generation=live.generation,
                             dispatcher=dict(name=info.name, id=info.id, runs=runs, min_runs=spec.min_runs),
                             counters=counters, problems=problems)
        if problems:
            raise HealthCheckFailed(f"health check failed after {elapsed:.1f} s on generation {live.generation}: "
                                    + "; ".join(problems), self.observed)
