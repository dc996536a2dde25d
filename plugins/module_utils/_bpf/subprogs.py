"""Linking ``.text`` subprograms into the programs that use them, the way libbpf does.

In: a ``Text`` (the object's ``.text``: its bytes, its functions, its own map relocations and
references, its func_info/line_info) and, per program, the references its code makes into
``.text`` (``Ref``). Out (``link``): each ProgramSpec with every subprogram it reaches appended
after its own code, in order of first reference, depth first, exactly as libbpf appends them (so
both loaders submit the same instructions and the kernel reports the same tag). Each reference is
rewritten as the kernel expects it: a subprogram's address (``ld_imm64``, e.g. a ``bpf_loop``
callback) gets src_reg BPF_PSEUDO_FUNC, a call keeps src_reg BPF_PSEUDO_CALL, and the immediate
becomes the distance in instructions from the next instruction. Map relocations and func/line
info of the appended code come along, their instruction offsets shifted.

A reference is a relocation against ``.text`` (the section symbol plus the offset in the
instruction, or a function symbol) or, inside ``.text``, a call without a relocation (relative
to the call). A reference that lands anywhere but at the start of a ``.text`` function is an
``ObjectFileError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .errors import ObjectFileError

INSN_SIZE = 8
LD_IMM64, CALL = 0x18, 0x85
PSEUDO_CALL, PSEUDO_FUNC = 1, 4


@dataclass
class Ref:
    """An instruction (slot index in its function or program) that refers to ``target``, the byte
    offset of a subprogram in ``.text``."""

    index: int
    target: int


@dataclass
class TextFunc:
    name: str
    start: int  # byte offset in .text
    size: int


@dataclass
class Text:
    source: str
    data: bytes
    funcs: List[TextFunc]
    relocations: List[Tuple[int, str]] = field(default_factory=list)  # (byte offset, map name)
    refs: List[Ref] = field(default_factory=list)  # relocated references, index = slot in .text
    func_info: object = None  # btf.ExtSection of ".text" or None
    line_info: object = None

    def func_at(self, target: int, where: str) -> TextFunc:
        for f in self.funcs:
            if f.start == target:
                return f
        raise ObjectFileError(self.source, f"{where} refers to offset {target:#x} of '.text', where no "
                                           "function starts")

    def refs_in(self, f: TextFunc) -> List[Ref]:
        """References made by the code of ``f`` (slot indices relative to ``f``), in order."""
        first, end = f.start // INSN_SIZE, (f.start + f.size) // INSN_SIZE
        relocated = {r.index: r.target for r in self.refs if first <= r.index < end}
        out = []
        for slot in range(first, end):
            if slot in relocated:
                out.append(Ref(slot - first, relocated[slot]))
            elif self.data[slot * INSN_SIZE] == CALL and self.data[slot * INSN_SIZE + 1] >> 4 == PSEUDO_CALL:
                imm = struct.unpack_from("<i", self.data, slot * INSN_SIZE + 4)[0]
                out.append(Ref(slot - first, (slot + imm + 1) * INSN_SIZE))
        return out


def link(prog, refs: List[Ref], text: Optional[Text]) -> None:
    """Append the subprograms ``prog`` reaches through ``refs`` and resolve every reference."""
    if not refs:
        return
    if text is None:
        raise ObjectFileError("<object>", f"program {prog.name!r} refers to '.text', which holds no code")
    code = bytearray(prog.insns)
    relocations = list(prog.relocations)
    func_info, line_info = bytearray(prog.func_info.data), bytearray(prog.line_info.data)
    placed: Dict[str, int] = {}  # subprogram name -> its first slot in the linked program

    def resolve(base: int, own: List[Ref], where: str) -> None:
        for ref in own:
            f = text.func_at(ref.target, f"{where} (instruction {ref.index})")
            if f.name not in placed:
                placed[f.name] = append(f)
                resolve(placed[f.name], text.refs_in(f), f"subprogram {f.name!r}")
            at = (base + ref.index) * INSN_SIZE
            kind = code[at]
            if kind == LD_IMM64:
                code[at + 1] = (code[at + 1] & 0x0F) | (PSEUDO_FUNC << 4)
            elif kind != CALL:
                raise ObjectFileError(text.source, f"{where} (instruction {ref.index}) refers to '.text' but is "
                                                   "neither a call nor an ld_imm64")
            struct.pack_into("<i", code, at + 4, placed[f.name] - (base + ref.index) - 1)

    def append(f: TextFunc) -> int:
        base = len(code) // INSN_SIZE
        code.extend(text.data[f.start:f.start + f.size])
        relocations.extend((base + (off - f.start) // INSN_SIZE, name) for off, name in text.relocations
                           if f.start <= off < f.start + f.size)
        for records, ext in ((func_info, text.func_info), (line_info, text.line_info)):
            for rec in (ext.records if ext is not None else ()):
                off = struct.unpack_from("<I", rec, 0)[0]
                if f.start <= off < f.start + f.size:
                    records.extend(struct.pack("<I", base + (off - f.start) // INSN_SIZE) + rec[4:])
        return base

    resolve(0, refs, f"program {prog.name!r}")
    prog.insns = bytes(code)
    prog.relocations = relocations
    if prog.func_info.rec_size:
        prog.func_info.data = bytes(func_info)
    if prog.line_info.rec_size:
        prog.line_info.data = bytes(line_info)
