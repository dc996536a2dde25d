"""``python -m compiler``: commands, output, exit codes (0 ok, 1 bad input, 2 usage, 3 internal).

In: the seed program, small sources written here, hand-built and clang-built objects.
Out: pass/fail. Most tests call ``main`` in-process (fast); one runs the real module in a
subprocess to check the entry point and that no traceback ever reaches the user.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compiler import pipeline
from compiler.__main__ import default_output, main
from compiler.elf import write_object
from compiler.elfread import read_programs
from compiler.isa import disassemble
from tests.conftest import seed_source
from tests.unit.compiler.handmade import SOURCE, unit_and_programs

REPO = Path(__file__).resolve().parents[3]
COUNTER = """\
(defmap pkt-count :type :array :key-size 4 :value-size 8 :max-entries 1)
(defprog count-packets (:type :xdp :section "xdp" :license "GPL")
  (incf (getmap pkt-count 0))
  XDP_PASS)
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def handmade_obj(tmp_path) -> Path:
    path = tmp_path / "handmade.bpf.o"
    path.write_bytes(write_object(*unit_and_programs(), SOURCE))
    return path


@pytest.fixture
def seed_file(tmp_path) -> Path:
    path = tmp_path / "seed.lisp"
    path.write_text(seed_source())
    return path


def test_default_output_replaces_the_lisp_suffix():
    assert default_output("dir/x.lisp") == "dir/x.bpf.o"
    assert default_output("prog") == "prog.bpf.o"


def test_compile_writes_the_object_next_to_the_source(capsys, seed_file):
    code, out, err = run(capsys, "compile", str(seed_file))
    assert (code, err) == (0, "")
    written = seed_file.with_name("seed.bpf.o").read_bytes()
    assert written == pipeline.compile_source(seed_file.read_text(), str(seed_file)).elf
    assert sorted(p.name for p in read_programs(written)) == ["tcp_handler", "udp_handler", "xdp_dispatch"]


def test_compile_to_a_named_output(capsys, seed_file, tmp_path):
    out_path = tmp_path / "out" / "x.o"
    out_path.parent.mkdir()
    assert run(capsys, "compile", str(seed_file), "-o", str(out_path))[0] == 0
    assert out_path.read_bytes()[:4] == b"\x7fELF"
    assert [p.name for p in tmp_path.joinpath("out").iterdir()] == ["x.o"]  # no temporary left


def test_check_prints_counts_and_writes_nothing(capsys, seed_file):
    code, out, err = run(capsys, "check", str(seed_file))
    assert code == 0
    obj = pipeline.compile_source(seed_file.read_text(), str(seed_file))
    assert out.splitlines() == [f"{p.decl.name}: {p.slots} instructions (section {p.decl.section})"
                                for p in obj.programs]
    assert sorted(p.name for p in seed_file.parent.iterdir()) == ["seed.lisp"]


def test_disasm_of_source_lists_each_program(capsys, tmp_path):
    src = tmp_path / "count.lisp"
    src.write_text(COUNTER)
    code, out, _err = run(capsys, "disasm", str(src))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("section xdp: count_packets, ") and lines[0].endswith(" instructions")
    assert any("map[" in line and "pkt" in line for line in lines[1:])
    assert lines[-1].endswith("exit")


def test_disasm_of_our_object(capsys, handmade_obj):
    code, out, _err = run(capsys, "disasm", str(handmade_obj))
    assert code == 0
    unit, programs = unit_and_programs()
    expected = []
    for prog in programs:
        expected += [f"section {prog.decl.section}: {prog.decl.name}, {prog.slots} instructions",
                     *disassemble(list(prog.insns)), ""]
    assert out.splitlines() == expected[:-1]
    assert "r1 = map[stats]" in out and "r2 = map[jt]" in out


def test_disasm_of_a_clang_object(capsys, tmp_path):
    obj = tmp_path / "tcd.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(REPO / "bench/c/tail_call_dispatch.c"), "-o", str(obj)], check=True)
    code, out, _err = run(capsys, "disasm", str(obj))
    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("section ")]
    assert headers == ["section xdp: xdp_dispatch, 26 instructions", "section xdp: tcp_handler, 11 instructions",
                       "section xdp: udp_handler, 12 instructions"]
    assert "= map[proto_stats]" in out and "= map[jt]" in out


def test_compile_error_is_located_with_source_line_and_caret(capsys, tmp_path):
    src = tmp_path / "bad.lisp"
    src.write_text('(defprog p (:type :xdp)\n  (return (+ 1 "two")))\n')
    out_path = tmp_path / "bad.bpf.o"
    code, out, err = run(capsys, "compile", str(src), "-o", str(out_path))
    assert code == 1 and out == ""
    first, source_line, caret = err.splitlines()[:3]
    assert first.startswith(f"{src}:2:") and ": error: " in first
    assert source_line == '    (return (+ 1 "two")))'
    col = int(first.split(":")[2])
    assert caret == "  " + " " * (col - 1) + "^"
    assert not out_path.exists()


def test_reader_error_keeps_an_existing_output(capsys, tmp_path):
    src = tmp_path / "bad.lisp"
    src.write_text("(defprog p (:type :xdp)\n  (return 1)\n")  # missing ')'
    out_path = tmp_path / "bad.bpf.o"
    out_path.write_bytes(b"previous")
    code, _out, err = run(capsys, "compile", str(src), "-o", str(out_path))
    assert code == 1 and err.startswith(f"{src}:")
    assert out_path.read_bytes() == b"previous"


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["compile"], ["compile", "a", "b"], ["check", "--nope", "x"]])
def test_usage_errors_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and "usage:" in err


def test_missing_source_is_a_usage_error(capsys, tmp_path):
    code, _out, err = run(capsys, "check", str(tmp_path / "nope.lisp"))
    assert code == 2 and "cannot read" in err and "nope.lisp" in err


def test_unwritable_output_is_a_usage_error(capsys, seed_file, tmp_path):
    code, _out, err = run(capsys, "compile", str(seed_file), "-o", str(tmp_path / "no-such-dir" / "x.o"))
    assert code == 2 and "cannot write" in err


def test_corrupt_object_is_bad_input(capsys, tmp_path):
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF\x01\x01" + bytes(100))
    code, _out, err = run(capsys, "disasm", str(bad))
    assert code == 1 and "not a readable BPF object" in err and "64-bit" in err


def test_internal_error_is_one_line_with_the_program_location(capsys, monkeypatch, seed_file):
    # Fault injection: make a back-end stage fail the way a compiler bug would.
    def broken(*args):
        raise KeyError("vreg 7")

    monkeypatch.setattr(pipeline.regalloc, "allocate", broken)
    code, out, err = run(capsys, "check", str(seed_file))
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"internal compiler error in regalloc at {seed_file}:")
    assert "KeyError" in err and "vreg 7" in err


def test_module_entry_point_never_prints_a_traceback(tmp_path):
    src = tmp_path / "bad.lisp"
    src.write_text("(defprog p (:type :xdp) (frobnicate 1))\n")
    r = subprocess.run([sys.executable, "-m", "compiler", "check", str(src)], cwd=REPO,
                       check=False, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{src}:1:")


@pytest.mark.parametrize("command", ["check", "disasm", "compile", "--help"])
def test_a_closed_output_pipe_ends_the_command_quietly(command, seed_file, tmp_path):
    # The reader is gone before the command writes anything, so every write fails with EPIPE,
    # as with `python -m compiler disasm OBJ | head` once head has exited.
    argv = [command] if command == "--help" else [command, str(seed_file)]
    if command == "compile":
        argv += ["-o", str(tmp_path / "x.o")]
    proc = subprocess.Popen([sys.executable, "-m", "compiler", *argv], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    code = proc.wait()
    assert err == b""
    # compile writes nothing to stdout; argparse's --help swallows the failed write itself
    assert code in ({"compile": (0,), "--help": (0, 141)}.get(command, (141,)))


def test_disasm_stops_quietly_when_head_has_read_enough(tmp_path):
    src = tmp_path / "long.lisp"
    src.write_text("(defmap m :type :array :key-size 4 :value-size 8 :max-entries 4)\n(defprog p ()\n  "
                   + " ".join(f"(setf (getmap m {i % 4}) {i})" for i in range(1200)) + ")\n")
    obj = tmp_path / "long.bpf.o"
    assert main(["compile", str(src), "-o", str(obj)]) == 0
    # far more than the pipe (64 KiB) and our read buffer (8 KiB) hold, so the writer must block
    assert sum(len(line) + 1 for line in disassemble(list(read_programs(obj.read_bytes())[0].insns))) > 128 << 10
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "disasm", str(obj)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"section xdp: p, ")
    proc.stdout.close()  # like head -1
    err = proc.stderr.read()
    assert (proc.wait(), err) == (141, b"")
