"""Build the loader tests' BPF objects: a C source (tests/testdata/c or bench/c) in, a clang object out.

Objects are built during the test session into a temporary directory and never committed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
C_DIR = REPO / "tests" / "testdata" / "c"
BENCH_C = REPO / "bench" / "c"
CLANG = ["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu"]


def source(name: str) -> Path:
    """tests/testdata/c/<name> or bench/c/<name>."""
    for directory in (C_DIR, BENCH_C):
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(f"no C source {name} in {C_DIR} or {BENCH_C}")


def build_c(name: str, out_dir: Path, *defines: str) -> Path:
    """Compile C source ``name`` with ``-D<define>`` each; returns the object's path in ``out_dir``."""
    suffix = "".join("_" + d.replace("=", "_") for d in defines)
    obj = Path(out_dir) / f"{Path(name).stem}{suffix}.o"
    cmd = [*CLANG, *(f"-D{d}" for d in defines), "-c", str(source(name)), "-o", str(obj)]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"clang failed on {name}:\n{result.stderr}")
    return obj
