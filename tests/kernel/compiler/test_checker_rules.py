"""The checking stage's rules are the kernel's: each program of ``check_cases.CASES`` that the stage
refuses, compiled without the stage, is refused by the verifier for the same reason, and each near
miss loads; the helper availability table and the constant-key rule match this kernel.

In: the table, the running kernel (bpftool as an independent loader). Out: pass/fail.
"""

from __future__ import annotations

import pytest

from compiler import compile_source
from compiler.check import helpers
from tests.kernel.harness import BpftoolError, loaded
from tests.unit.compiler.check_cases import CASES
from tests.unit.compiler.test_check_rules import REREAD

RULES = [c for c in CASES if c.verifier is not None]


def _elf(tmp_path, source: str, check_stage: bool = True):
    path = tmp_path / "prog.bpf.o"
    path.write_bytes(compile_source(source, "prog.lisp", check_stage=check_stage).elf)
    return path


@pytest.mark.parametrize("case", RULES, ids=[c.id for c in RULES])
def test_the_verifier_refuses_what_the_stage_refuses(case, pin_dir, tmp_path):
    with pytest.raises(BpftoolError) as info:
        with loaded(_elf(tmp_path, case.source(), check_stage=False), pin_dir, prog_type=case.prog_type):
            pass
    assert case.verifier in str(info.value)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_near_misses_load(case, pin_dir, tmp_path):
    with loaded(_elf(tmp_path, case.source(case.fixed)), pin_dir, prog_type=case.prog_type) as obj:
        assert obj.programs == ["p"]


def test_a_packet_pointer_read_again_after_the_check_loads(pin_dir, tmp_path):
    with loaded(_elf(tmp_path, REREAD), pin_dir) as obj:
        assert obj.programs == ["p"]


PROBE = "(defprog p ({options})\n  (asm #x85 0 0 0 {helper})\n  0)\n"


@pytest.mark.parametrize("prog_type", ["xdp", "tc"])
def test_helper_availability_is_the_kernels(prog_type, pin_dir, tmp_path):
    """Every helper of the prototype table: offered to the program type exactly when the table says.
    (A call with no arguments: the verifier checks availability before the arguments.)"""
    options = "" if prog_type == "xdp" else ":type :tc"
    mismatches = []
    for helper_id in sorted(helpers.PROTOS):
        source = PROBE.format(options=options, helper=helper_id)
        try:
            with loaded(_elf(tmp_path, source, check_stage=False), pin_dir, prog_type=prog_type):
                offered = True
        except BpftoolError as err:
            offered = "cannot use helper" not in str(err) and "unknown func" not in str(err)
        if offered == (helper_id in helpers.UNAVAILABLE[prog_type]):
            mismatches.append((helper_id, helpers.PROTOS[helper_id].name, offered))
    assert not mismatches


CONSTANT_KEY = """(defmap a :type :array :key-size 4 :value-size 8 :max-entries 4)
(defprog p ()
  (load u64 (map-lookup a {key}) 0))
"""


@pytest.mark.parametrize("key, sure", [(0, True), (3, True), (4, False), ("(ktime-get-ns)", False)])
def test_array_lookup_with_a_constant_key_is_not_null(key, sure, pin_dir, tmp_path):
    """The stage and the verifier agree on when an array lookup cannot fail."""
    source = CONSTANT_KEY.format(key=key)
    if sure:
        with loaded(_elf(tmp_path, source), pin_dir) as obj:
            assert obj.programs == ["p"]
        return
    with pytest.raises(Exception, match="may be null"):
        compile_source(source, "prog.lisp")
    with pytest.raises(BpftoolError, match="map_value_or_null"):
        with loaded(_elf(tmp_path, source, check_stage=False), pin_dir):
            pass
