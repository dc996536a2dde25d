"""Same input, same bytes: objects do not depend on time, hash seeds or the working directory.

In: the hand-built unit (writer alone), the seed and bench/whistler/drop-port.lisp (whole
pipeline). Out: pass/fail. Each compile runs in a fresh interpreter with a different
``PYTHONHASHSEED`` and working directory, so set/dict-order accidents would show.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

_WRITER = """
import hashlib, sys
sys.path.insert(0, {repo!r})
from compiler.elf import write_object
from tests.unit.compiler.handmade import SOURCE, unit_and_programs
print(hashlib.sha256(write_object(*unit_and_programs(), SOURCE)).hexdigest())
"""

_PIPELINE = """
import hashlib, sys
sys.path.insert(0, {repo!r})
from compiler import compile_source
print(hashlib.sha256(compile_source(sys.stdin.read(), "prog.lisp").elf).hexdigest())
"""


def _digest(script: str, seed: int, cwd: Path, stdin: str = "") -> str:
    r = subprocess.run([sys.executable, "-c", script.format(repo=str(REPO))], input=stdin, cwd=cwd,
                       env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def test_writer_output_is_reproducible(tmp_path):
    digests = {_digest(_WRITER, seed, cwd) for seed, cwd in ((1, tmp_path), (2, REPO), (12345, Path("/")))}
    assert len(digests) == 1


@pytest.mark.parametrize("which", ["seed", "bench/whistler/drop-port.lisp"])
def test_compiled_program_is_reproducible(which, seed_program, tmp_path):
    text = seed_program if which == "seed" else (REPO / which).read_text()
    from compiler import compile_source

    in_process = hashlib.sha256(compile_source(text, "prog.lisp").elf).hexdigest()
    assert {_digest(_PIPELINE, seed, cwd, text) for seed, cwd in ((3, tmp_path), (4, REPO))} == {in_process}
