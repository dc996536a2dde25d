"""The seed, compiled by ``python -m compiler compile``, is an object libbpf loads whole: all three
programs, typed maps, and function/line info the kernel accepts and reports back.

In: the seed program (``seed_program`` fixture). Out: pass/fail. Expected line texts are the
seed's own lines, read from the source file, not from the compiler.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.kernel.harness import bpftool_json, loaded

REPO = Path(__file__).resolve().parents[3]
PROGRAMS = ["tcp_handler", "udp_handler", "xdp_dispatch"]


def _compile_with_cli(seed_program: str, tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "seed.lisp"
    src.write_text(seed_program)
    r = subprocess.run([sys.executable, "-m", "compiler", "compile", str(src)], cwd=REPO,
                       check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return src, tmp_path / "seed.bpf.o"


def test_seed_object_loads_with_typed_maps(seed_program, tmp_path, pin_dir):
    obj_path = _compile_with_cli(seed_program, tmp_path)[1]
    with loaded(obj_path, pin_dir) as obj:
        assert obj.programs == PROGRAMS
        assert obj.maps == ["jt", "proto_stats"]
        assert obj.typed_dump("proto_stats") == {0: 0, 1: 0, 2: 0}
        info = obj.map_info("proto_stats")
        assert (info["type"], info["bytes_key"], info["bytes_value"], info["max_entries"]) == ("array", 4, 8, 3)
        jt = obj.map_info("jt")
        assert (jt["type"], jt["max_entries"]) == ("prog_array", 256)


def test_seed_line_info_points_at_the_seed_lines(seed_program, tmp_path, pin_dir):
    src, obj_path = _compile_with_cli(seed_program, tmp_path)
    lines = src.read_text().splitlines()
    with loaded(obj_path, pin_dir) as obj:
        for name in PROGRAMS:
            dump = bpftool_json("prog", "dump", "xlated", "pinned", str(obj.pins / name), "linum")
            assert dump[0]["proto"] == f"int {name}(struct xdp_md * ctx)"
            located = [d for d in dump if "src" in d]
            assert located and located[0] is dump[0]  # the first instruction has a line
            for d in located:
                assert d["file"] == str(src)
                assert d["src"] == lines[d["line_num"] - 1].strip()
                assert 1 <= d["line_col"] <= len(lines[d["line_num"] - 1])
        dispatch = bpftool_json("prog", "dump", "xlated", "pinned", str(obj.pins / "xdp_dispatch"), "linum")
        assert any(d.get("src", "").startswith("(tail-call jt proto)") for d in dispatch)
