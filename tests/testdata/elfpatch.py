"""Craft hostile BPF objects for the loader's tests: a compiled object and a name in, the object with
that name rewritten in place out.

pyelftools finds the string table sections; the bytes are rewritten here. A name is replaced where it
is stored (``old`` followed by its NUL), so ``new`` may not be longer than ``old``: it is padded with
NULs, and every name that shares the stored string (clang tail-merges ``.relxdp/x`` and ``xdp/x``) is
rewritten with it. ``new`` is bytes, so it may hold any byte but NUL (which would end the name early).
"""

from __future__ import annotations

import io
from pathlib import Path

from elftools.elf.elffile import ELFFile


def rename(data: bytes, old: str, new: bytes, section: str = ".strtab") -> bytes:
    """``data`` (an ELF object) with the string ``old`` in ``section`` (``.strtab``: symbol and, for
    clang, section names; ``.BTF``: BTF names) replaced by ``new``."""
    if b"\0" in new or len(new) > len(old):
        raise ValueError(f"replacement {new!r} must be NUL-free and at most {len(old)} bytes")
    found = ELFFile(io.BytesIO(data)).get_section_by_name(section)
    if found is None:
        raise ValueError(f"no section {section!r}")
    start, end = found["sh_offset"], found["sh_offset"] + found["sh_size"]
    needle = old.encode() + b"\0"
    out = bytearray(data)
    at, hits = out.find(needle, start, end), 0
    while at >= 0:
        out[at:at + len(old)] = new.ljust(len(old), b"\0")
        hits += 1
        at = out.find(needle, at + len(needle), end)
    if not hits:
        raise ValueError(f"{old!r} is not in {section!r}")
    return bytes(out)


def crafted(obj: Path, out: Path, *renames) -> Path:
    """Write ``obj`` with each ``(old, new[, section])`` of ``renames`` applied to ``out``; returns ``out``."""
    data = Path(obj).read_bytes()
    for rule in renames:
        data = rename(data, *rule)
    Path(out).write_bytes(data)
    return Path(out)


# The names of tests/testdata/c/loader_names.c, the template the crafted objects are made from.
TEMPLATE_PROGRAM = "prog_placeholder_" + "x" * 64 + "_" + "y" * 48
TEMPLATE_MAP = "map_placeholder_" + "x" * 64 + "_" + "z" * 48
TEMPLATE_SECTION = "xdp/section_" + "x" * 64 + "_" + "w" * 48
