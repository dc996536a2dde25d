"""The compiler's context-access rules agree with the verifier's (reference §2.14): each
``xdp_md`` / ``__sk_buff`` read or store the compiler accepts loads, and each one it refuses
(with a located error) the verifier refuses too.

In: one tiny program per field and access. Out: pass/fail. The kernel is the oracle: for an
access the compiler refuses, the test compiles it anyway (the field's flag flipped in
``CTX_LAYOUTS``) and expects bpftool's load to fail.
"""

from __future__ import annotations

import dataclasses

import pytest

from compiler import CompileError, compile_source
from compiler.builtins import CTX_LAYOUTS, CtxField
from tests.kernel.harness import BpftoolError, loaded

ACCESSES = [(prog_type, name, f) for prog_type, layout in CTX_LAYOUTS.items() for name, f in layout.items()]
IDS = [f"{t}-{n.lower()}" for t, n, _f in ACCESSES]
MAPS = "(defmap res :type :array :key-size 4 :value-size 8 :max-entries 1)\n"


def field_ref(name: str, f: CtxField) -> str:
    return f"(ctx {name.lower()}{' 1' if f.count > 1 else ''})"


def check_against_kernel(prog_type: str, name: str, f: CtxField, access: str, allowed: bool, flag: str,
                         refusal: str, pin_dir, monkeypatch) -> None:
    source = f"{MAPS}(defprog conf (:type :{prog_type})\n  {access}\n  0)\n"
    if allowed:
        with loaded(source, pin_dir, prog_type=prog_type) as obj:
            assert obj.programs == ["conf"]
        return
    with pytest.raises(CompileError, match=refusal) as info:
        compile_source(source, "ctx.lisp")
    assert (info.value.loc.line, info.value.loc.col) == (3, access.index("(ctx") + 3)
    monkeypatch.setitem(CTX_LAYOUTS, prog_type,
                        {**CTX_LAYOUTS[prog_type], name: dataclasses.replace(f, **{flag: True})})
    with pytest.raises(BpftoolError, match="invalid bpf_context access"):
        with loaded(source, pin_dir, prog_type=prog_type):
            pass


@pytest.mark.parametrize("prog_type, name, f", ACCESSES, ids=IDS)
def test_reads(prog_type, name, f, pin_dir, monkeypatch):
    # the value goes to a map, so the load is not dead code
    check_against_kernel(prog_type, name, f, f"(setf (getmap res 0) {field_ref(name, f)})", f.readable,
                         "readable", "not accessible", pin_dir, monkeypatch)


@pytest.mark.parametrize("prog_type, name, f", ACCESSES, ids=IDS)
def test_stores(prog_type, name, f, pin_dir, monkeypatch):
    check_against_kernel(prog_type, name, dataclasses.replace(f, readable=True), f"(setf {field_ref(name, f)} 1)",
                         f.readable and f.writable, "writable", "not accessible" if not f.readable else "read-only",
                         pin_dir, monkeypatch)
