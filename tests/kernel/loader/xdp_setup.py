"""Load an object for the attach and jump-table tests: an object path and a bpffs directory in,
the directory with every program pinned at ``<dir>/<function>`` and every map at
``<dir>/maps/<map>`` out, loaded by our own loader (``load.plan_load`` + ``apply_load``), the way
the ``xdp_load`` module does before ``xdp_prog_array`` and ``xdp_attach`` run."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.whistler.xdp.plugins.module_utils._bpf.load import apply_load, plan_load
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import read_object


def load_pinned(obj: Path, pin_dir: Path) -> Path:
    plan = plan_load(read_object(str(obj)), str(pin_dir))
    plan.check()
    apply_load(plan)
    return pin_dir
