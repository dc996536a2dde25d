"""An oracle independent of our loader: load objects and run programs with bpftool (libbpf).

In: Whistler source text (compiled with ``compiler.compile_source``) or the path of an ELF
object, and a bpffs directory. Out: a ``LoadedObject`` whose programs and maps are pinned under
a private subdirectory, with ``run`` (BPF_PROG_TEST_RUN), ``map`` (typed dump), ``set``
(pre-set a map value) and ``set_slot`` (wire a prog-array slot). Everything is unpinned when
the ``with`` block ends, on failure too::

    with loaded(source, pin_dir) as obj:
        obj.set_slot("jt", 6, "tcp_handler")
        assert obj.run("xdp_dispatch", frame) == XDP_PASS
        assert obj.map("proto_stats") == {0: 1, 1: 1, 2: 0}

Keys and values are decoded from the raw little-endian bytes bpftool prints, not from BTF, so a
wrong BTF type cannot hide a wrong value; ``typed_dump`` gives bpftool's BTF-formatted view.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)


class BpftoolError(AssertionError):
    """bpftool refused: the message carries its stderr (libbpf and verifier log)."""


def bpftool(*argv: str) -> str:
    r = subprocess.run(["bpftool", *argv], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise BpftoolError(f"bpftool {' '.join(argv)} failed (exit {r.returncode}):\n{r.stderr}{r.stdout}")
    return r.stdout


def bpftool_json(*argv: str):
    return json.loads(bpftool("-j", *argv))


def _bytes_of(hex_list: list[str]) -> bytes:
    return bytes(int(b, 16) for b in hex_list)


def _int_of(hex_list: list[str]) -> int:
    return int.from_bytes(_bytes_of(hex_list), "little")


def _hex_args(value: int, size: int) -> list[str]:
    return ["hex", *(f"{b:02x}" for b in (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))]


@dataclass
class RunResult:
    retval: int
    data_out: bytes
    ctx_out: bytes = b""  # the context after the run, when a ctx_in was given


@dataclass
class LoadedObject:
    pins: Path  # programs pinned here by name, maps under pins/maps
    work: Path  # scratch directory for the object and frame files

    @property
    def programs(self) -> list[str]:
        return sorted(p.name for p in self.pins.iterdir() if p.name != "maps")

    @property
    def maps(self) -> list[str]:
        maps = self.pins / "maps"
        return sorted(p.name for p in maps.iterdir()) if maps.is_dir() else []

    def map_info(self, name: str) -> dict:
        """bpftool's ``map show``: type, bytes_key, bytes_value, max_entries, flags..."""
        return bpftool_json("map", "show", "pinned", str(self.pins / "maps" / name))

    def prog_info(self, name: str) -> dict:
        return bpftool_json("prog", "show", "pinned", str(self.pins / name))

    def run_full(self, prog: str, frame: bytes, ctx: bytes | None = None) -> RunResult:
        """One BPF_PROG_TEST_RUN of ``prog`` on ``frame`` (optionally with a ctx_in: xdp_md, __sk_buff)."""
        tag = uuid.uuid4().hex[:8]
        data_in, data_out = self.work / f"in-{tag}", self.work / f"out-{tag}"
        data_in.write_bytes(frame)
        argv = ["prog", "run", "pinned", str(self.pins / prog), "data_in", str(data_in),
                "data_out", str(data_out)]
        ctx_out = self.work / f"ctx-out-{tag}"
        if ctx is not None:
            ctx_in = self.work / f"ctx-{tag}"
            ctx_in.write_bytes(ctx)
            argv += ["ctx_in", str(ctx_in), "ctx_out", str(ctx_out)]
        result = bpftool_json(*argv, "repeat", "1")
        return RunResult(int(result["retval"]), data_out.read_bytes() if data_out.exists() else b"",
                         ctx_out.read_bytes() if ctx_out.exists() else b"")

    def run(self, prog: str, frame: bytes, ctx: bytes | None = None) -> int:
        """The program's return value on ``frame``."""
        return self.run_full(prog, frame, ctx).retval

    def dump(self, name: str) -> list[dict]:
        return bpftool_json("map", "dump", "pinned", str(self.pins / "maps" / name))

    def map(self, name: str) -> dict[int, int]:
        """Every entry as {key: value}, both unsigned little-endian ints; per-CPU values summed."""
        out = {}
        for entry in self.dump(name):
            if "values" in entry:  # per-CPU map: one value per CPU
                out[_int_of(entry["key"])] = sum(_int_of(v["value"]) for v in entry["values"])
            else:
                out[_int_of(entry["key"])] = _int_of(entry["value"])
        return out

    def records(self, name: str) -> list[bytes]:
        """The records waiting in ring buffer ``name`` (consumed by reading them)."""
        from tests.kernel.ringbuf import records

        return records(str(self.pins / "maps" / name), self.map_info(name)["max_entries"])

    def typed_dump(self, name: str) -> dict:
        """bpftool's BTF-formatted entries ({key: value} as bpftool typed them)."""
        return {e["formatted"]["key"]: e["formatted"]["value"] for e in self.dump(name)}

    def set(self, name: str, key: int, value: int) -> None:
        """Write ``value`` at ``key``, each encoded at the map's key/value width."""
        info = self.map_info(name)
        bpftool("map", "update", "pinned", str(self.pins / "maps" / name),
                "key", *_hex_args(key, info["bytes_key"]), "value", *_hex_args(value, info["bytes_value"]))

    def set_slot(self, prog_array: str, key: int, prog: str) -> None:
        """Point prog-array slot ``key`` at the pinned program ``prog``."""
        info = self.map_info(prog_array)
        bpftool("map", "update", "pinned", str(self.pins / "maps" / prog_array),
                "key", *_hex_args(key, info["bytes_key"]), "value", "pinned", str(self.pins / prog))


def compile_text(text: str, filename: str = "test.lisp") -> bytes:
    import compiler

    return compiler.compile_source(text, filename).elf


@contextmanager
def loaded(source: str | Path, pin_dir: Path, filename: str = "test.lisp",
           prog_type: str = "xdp") -> Iterator[LoadedObject]:
    """Compile (if ``source`` is text) and ``bpftool prog loadall`` it under ``pin_dir``, every
    program as ``prog_type`` (``xdp`` or ``tc``, as libbpf spells section names).

    ``source`` is Whistler text, or a ``Path`` to an ELF object. Raises ``CompileError`` or
    ``BpftoolError`` (with the verifier log); leaves nothing pinned afterwards.
    """
    pins = Path(pin_dir) / uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="whistler-harness-") as work:
        work = Path(work)
        if isinstance(source, Path):
            obj = source
        else:
            obj = work / (Path(filename).stem + ".bpf.o")
            obj.write_bytes(compile_text(source, filename))
        try:
            bpftool("prog", "loadall", str(obj), str(pins), "type", prog_type, "pinmaps", str(pins / "maps"))
            yield LoadedObject(pins, work)
        finally:
            shutil.rmtree(pins, ignore_errors=True)
