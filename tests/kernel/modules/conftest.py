"""Fixtures for running the collection's modules for real against the kernel.

- ``run_module(name, args, check=False, diff=False)``: runs ``plugins/modules/<name>.py``'s
  ``main()`` in this process, exactly as AnsiballZ would (args through ``patch_module_args``),
  and returns the JSON result (``failed`` set when the module failed).
- ``clang_object``: the clang build of bench/c/tail_call_dispatch.c (the seed's C twin).
Helpers for an independent view of the kernel (bpftool) are in ``bpftool_view.py``.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def run_module(capsys):
    def run(name: str, args: dict, check: bool = False, diff: bool = False) -> dict:
        module = importlib.import_module(f"ansible_collections.whistler.xdp.plugins.modules.{name}")
        capsys.readouterr()
        with patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=diff)):
            with pytest.raises(SystemExit):
                module.main()
        return json.loads(capsys.readouterr().out)

    return run


@pytest.fixture(scope="session")
def clang_object(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clang") / "tail_call_dispatch.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(REPO / "bench" / "c" / "tail_call_dispatch.c"), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return out
