"""``python -m compiler compile|check --verify``: the kernel's verdict on every program, located.

In: small programs, the CLI (in process and as a subprocess) and the running kernel. Out:
pass/fail: accepted programs verify (callbacks linked with their BTF), a refusal is reported at
the file:line:col of the instruction the verifier stopped at with the source line, nothing is
written then, and without ``--verify`` the CLI never imports the loader's bpf(2) layer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compiler import __main__ as cli
from compiler import compile_source, verify

REPO = Path(__file__).resolve().parents[3]
MAP = "(defmap h :type :hash :key-size 4 :value-size 8 :max-entries 16)\n"
GOOD = MAP + "(defprog p ()\n  (with-packet (data data-end :min-len 14)\n    (incf (getmap h (load u32 data 0))))\n  0)\n"
# helper 3000 does not exist: the stage leaves unknown helpers to the kernel, which refuses it
UNKNOWN_HELPER = MAP + "(defprog p ()\n  (setf (getmap h 0) (asm #x85 0 0 0 3000))\n  0)\n"
LOOP = MAP + ("(defprog p ()\n  (let ((s 0))\n    (with-packet (d de :min-len 14)\n      (dotimes (i 1000000)\n"
              "        (incf s (load u8 d {offset}))))\n    (setf (getmap h 0) s))\n  0)\n")


def run_cli(tmp_path, argv, source):
    src = tmp_path / "prog.lisp"
    src.write_text(source)
    return subprocess.run([sys.executable, "-m", "compiler", *[a.replace("SRC", str(src)) for a in argv]],
                          cwd=REPO, capture_output=True, text=True, check=False), src


def test_check_verify_accepts_a_good_program(tmp_path):
    r, _src = run_cli(tmp_path, ["check", "SRC", "--verify"], GOOD)
    assert r.returncode == 0, r.stderr
    assert "p: " in r.stdout and "the kernel's verifier accepts it" in r.stdout


def test_compile_verify_writes_the_object_only_when_the_kernel_accepts(tmp_path):
    r, src = run_cli(tmp_path, ["compile", "SRC", "--verify"], GOOD)
    assert r.returncode == 0 and src.with_suffix(".bpf.o").read_bytes().startswith(b"\x7fELF")
    r, src = run_cli(tmp_path, ["compile", "SRC", "--verify", "-o", str(tmp_path / "bad.o")], UNKNOWN_HELPER)
    assert r.returncode == 1 and not (tmp_path / "bad.o").exists()
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{src}:3:22: error: the kernel's verifier refuses program p at instruction ")
    assert "invalid func unknown#3000" in first
    assert r.stderr.splitlines()[1].strip() == "(setf (getmap h 0) (asm #x85 0 0 0 3000))"
    assert r.stderr.splitlines()[2].index("^") == 23  # under the asm form (two spaces of indent)
    assert "hint: verifier log (end):" in r.stderr


def test_a_compile_error_comes_before_any_load(tmp_path):
    r, src = run_cli(tmp_path, ["check", "SRC", "--verify"], MAP + "(defprog p ()\n  (eth-type 5))\n")
    assert r.returncode == 1 and r.stderr.startswith(f"{src}:3:3: error: reads through the number 5")


def test_callbacks_are_linked_and_a_refusal_inside_one_is_located():
    assert not verify.trial_load(compile_source(LOOP.format(offset=10), "loop.lisp"))
    unchecked = compile_source(LOOP.format(offset=20), "loop.lisp", check_stage=False)
    assert unchecked.programs[0].subprograms  # the loop runs under bpf_loop
    (err,) = verify.trial_load(unchecked)
    assert (err.loc.line, err.loc.col) == (6, 17) and "outside of the packet" in err.log


def test_without_a_kernel_verify_is_a_usage_error(tmp_path, monkeypatch, capsys):
    def unavailable():
        raise verify.Unavailable("the loader's bpf(2) layer is not installed next to the compiler")
    monkeypatch.setattr(verify, "loader", unavailable)
    src = tmp_path / "prog.lisp"
    src.write_text(GOOD)
    assert cli.main(["check", str(src), "--verify"]) == 2
    assert "--verify: the loader's bpf(2) layer is not installed" in capsys.readouterr().err


@pytest.mark.parametrize("verify_flag, imported", [([], False), (["--verify"], True)])
def test_only_verify_imports_the_bpf_layer(tmp_path, verify_flag, imported):
    r, _src = run_cli(tmp_path, ["check", "SRC", *verify_flag], GOOD)
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "compiler", "check", str(tmp_path / "prog.lisp"), *verify_flag],
        cwd=REPO, capture_output=True, text=True, check=False)
    assert probe.returncode == r.returncode == 0
    modules = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if line.startswith("import time:")}
    assert ("_whistler_bpf.errors" in modules) == imported and ("compiler.verify" in modules) == imported
    assert ("ctypes" in modules) == imported
