"""The kernel's program tag, computed offline: instructions in, 16 hex digits out.

The kernel (``bpf_prog_calc_tag``) hashes the instructions as submitted, with the immediates of both
halves of every map-loading ``ld_imm64`` (src_reg PSEUDO_MAP_FD or PSEUDO_MAP_VALUE) zeroed, and keeps
the first 8 bytes of the digest: SHA-256 since Linux 6.18, SHA-1 before. Both are offered so a pinned
program from either kind of kernel can be recognised without loading anything.

Object files hold map loads with src_reg 0 until the loader relocates them; pass their instruction
indices as ``map_loads`` to get the tag of the program as it will be loaded.
The controller (xdp_compile action plugin) imports this module too: standard library only.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Set

LD_IMM64 = 0x18
PSEUDO_MAP_FD, PSEUDO_MAP_VALUE = 1, 2
ALGORITHMS = ("sha256", "sha1")


def normalize(insns: bytes, map_loads: Iterable[int] = ()) -> bytes:
    """``insns`` as the kernel hashes them; ``map_loads`` (slot indices) become PSEUDO_MAP_FD loads."""
    if len(insns) % 8:
        raise ValueError(f"instruction bytes not a multiple of 8 ({len(insns)})")
    out = bytearray(insns)
    for index in map_loads:
        if out[index * 8] != LD_IMM64:
            raise ValueError(f"instruction {index} is not ld_imm64 (opcode {out[index * 8]:#x})")
        out[index * 8 + 1] = (out[index * 8 + 1] & 0x0F) | (PSEUDO_MAP_FD << 4)
    index = 0
    while index < len(out) // 8:
        at = index * 8
        if out[at] == LD_IMM64 and (out[at + 1] >> 4) in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
            out[at + 4:at + 8] = bytes(4)
            second = at + 8
            # The kernel zeroes the second half only when it is the plain continuation slot.
            if second + 8 <= len(out) and out[second:second + 4] == bytes(4):
                out[second + 4:second + 8] = bytes(4)
                index += 1
        index += 1
    return bytes(out)


def program_tag(insns: bytes, algo: str = "sha256", map_loads: Iterable[int] = ()) -> str:
    """The tag (16 hex digits) the kernel would report for ``insns`` under hash ``algo``."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown tag algorithm {algo!r} (known: {', '.join(ALGORITHMS)})")
    return hashlib.new(algo, normalize(insns, map_loads)).digest()[:8].hex()


def tags(insns: bytes, map_loads: Iterable[int] = ()) -> Set[str]:
    """Every tag a supported kernel could report for ``insns`` (SHA-256 and SHA-1 prefixes)."""
    loads = list(map_loads)
    return {program_tag(insns, algo, loads) for algo in ALGORITHMS}


def kernel_algorithm(release: str) -> str:
    """The hash a kernel of ``release`` (``platform.release()``) tags programs with: SHA-256 since 6.18."""
    numbers = []
    for part in release.split("-")[0].split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        numbers.append(int(digits))
    return "sha256" if tuple(numbers) >= (6, 18) else "sha1"
