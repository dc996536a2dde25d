"""dispatcher.health: the ``health`` option checked against an object (no kernel); conditions in words."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.health import (
    CounterCondition,
    HealthSpec,
    parse_health,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.dispatcher.testrun import TestSpecError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import MapSpec, ObjectSpec

SPEC = ObjectSpec(source="x.bpf.o", license="GPL", programs=[], maps=[
    MapSpec("jt", sc.MAP_TYPE_PROG_ARRAY, 4, 4, 8),
    MapSpec("drops", sc.MAP_TYPE_PERCPU_ARRAY, 4, 8, 4),
    MapSpec("names", sc.MAP_TYPE_HASH, 4, 16, 4),
])


def test_defaults_and_conditions():
    assert parse_health(None, SPEC) is None and parse_health({}, SPEC) is None
    assert parse_health({"window": 2}, SPEC) == HealthSpec(2.0, 1, [])
    spec = parse_health({"window": 0.5, "min_runs": 0, "counters": [{"map": "drops", "key": "0x1", "max_delta": 10}]},
                        SPEC)
    assert spec == HealthSpec(0.5, 0, [CounterCondition("drops", 1, None, 10)])


@pytest.mark.parametrize("raw, message", [
    ({"window": 0}, "health.window: 0 is not a number of seconds"),
    ({"window": 601}, "health.window: 601"),
    ({"window": True}, "health.window: True"),
    ({"min_runs": 0}, "health: nothing to check"),
    ({"min_runs": -1}, "health.min_runs: -1 is below 0"),
    ({"wndow": 1}, "health: unknown field 'wndow'"),
    ({"counters": [{"map": "drops"}]}, "health.counters[0]: give min_delta, max_delta or both"),
    ({"counters": [{"map": "drops", "min_delta": 5, "max_delta": 1}]}, "min_delta 5 is above max_delta 1"),
    ({"counters": [{"map": "nope", "max_delta": 1}]}, "health.counters[0].map:"),
    ({"counters": [{"map": "jt", "max_delta": 1}]}, "'jt' does not hold counters"),
    ({"counters": [{"map": "names", "max_delta": 1}]}, "'names' does not hold counters"),
    ({"counters": [{"map": "drops", "max_delta": 1, "key": "-1"}]}, "health.counters[0].key"),
    ({"counters": ["drops"]}, "health.counters[0]: expected {map, key, min_delta, max_delta}"),
])
def test_bad_health_options_name_the_field(raw, message):
    with pytest.raises(TestSpecError) as failure:
        parse_health(raw, SPEC)
    assert message in str(failure.value)


def test_a_condition_says_what_it_saw():
    at_most = CounterCondition("drops", 0, None, 10)
    at_least = CounterCondition("proto_stats", 2, 100, None)
    assert at_most.problem(10) == "" and at_least.problem(100) == ""
    assert at_most.problem(11) == "drops[0] grew by 11, expected at most 10"
    assert at_least.problem(3) == "proto_stats[2] grew by 3, expected at least 100"
