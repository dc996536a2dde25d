"""Programs with .text subprograms (bpf_loop callbacks, bpf-to-bpf calls) load with our loader exactly as
libbpf loads them: bpftool and ``load.apply_load`` pin programs with the same kernel tag (so the same
instructions), and both run to the results the C source and the Whistler source define."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program

from tests.kernel.harness import XDP_PASS, XDP_TX, loaded

# A loop too long for the verifier to walk open-coded: the compiler hands it to bpf_loop, and the
# nested one inside it runs open-coded in the callback.
LOOPS = """(defmap res :type :array :key-size 4 :value-size 8 :max-entries 4)
(defprog looped (:type :xdp)
  (let ((s 0))
    (dotimes (i 300000)
      (dotimes (j 3) (setf s (+ s j))))
    (setf (getmap res 0) s)
    (incf (getmap res 1))
    XDP_PASS))
"""


@pytest.fixture(params=["clang", "whistler"])
def subprog_object(request, build, tmp_path):
    if request.param == "clang":
        return build("loader_subprogs.c"), {"sum_loop": XDP_PASS, "calls": XDP_TX}
    import compiler

    compiled = compiler.compile_source(LOOPS, "loops.lisp")
    assert [s.name for s in compiled.programs[0].subprograms] == ["looped_loop1"]
    path = tmp_path / "loops.bpf.o"
    path.write_bytes(compiled.elf)
    return path, {"looped": XDP_PASS}


def test_our_loader_links_like_libbpf(subprog_object, pin_dir, frame):
    path, verdicts = subprog_object
    spec = objfile.read_object(path)
    ours = load.apply_load(load.plan_load(spec, str(pin_dir / "ours")))
    with loaded(path, pin_dir) as theirs:
        for name, verdict in verdicts.items():
            assert ours.programs[name].tag == theirs.prog_info(name)["tag"]
            assert ours.programs[name].tag in spec.program(name).tags()
            assert theirs.run(name, frame(6)) == verdict
            with Program.from_pin(ours.programs[name].pin) as prog:
                assert prog.test_run(frame(6)).retval == verdict


def test_loop_results_through_our_loader(pin_dir, tmp_path, frame):
    import compiler

    path = tmp_path / "loops.bpf.o"
    path.write_bytes(compiler.compile_source(LOOPS, "loops.lisp").elf)
    result = load.apply_load(load.plan_load(objfile.read_object(path), str(pin_dir / "app")))
    with Program.from_pin(result.programs["looped"].pin) as prog:
        assert prog.test_run(frame(17)).retval == XDP_PASS
    with Map.from_pin(result.maps["res"].pin) as res:
        values = {k: int.from_bytes(res.lookup(k.to_bytes(4, "little")), "little") for k in (0, 1)}
    assert values == {0: 300000 * (0 + 1 + 2), 1: 1}
