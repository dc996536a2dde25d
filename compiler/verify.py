"""Trial load: each program of a compiled object, into the running kernel, against throwaway maps.

In: a ``code.CompiledObject``. Out: one ``CompileError`` per program the kernel's verifier
refuses, located at the instruction it stopped at (every instruction carries the location of the
form that produced it), with its reason and the end of its log (the whole log in ``.log``); an
empty list when every program
loads. Nothing stays behind: the maps and programs it creates are closed, nothing is pinned, and
prog-arrays are fresh, so no jump table gains an owner.

This is the compiler's second opinion after ``check`` (which models the verifier): the kernel
itself. It needs bpf(2) with CAP_BPF and CAP_NET_ADMIN (root). The bpf(2) layer is the
collection's loader's (``plugins/module_utils/_bpf/syscalls.py``, ctypes and the standard library
only), imported here and only when a trial load is asked for: the compiler itself never imports
it, and without the collection's ``plugins`` directory a trial load is unavailable, not broken.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import struct
import sys
from pathlib import Path

from .code import CompiledObject, ProgramCode
from .errors import CompileError, Loc
from .isa import encode, slot_count
from .records import replace

PROG_TYPES = {"xdp": (6, 37), "tc": (3, 0)}  # BPF_PROG_TYPE_*, expected_attach_type (BPF_XDP)
F_XDP_HAS_FRAGS = 0x20
LOG_TAIL = 4


class Unavailable(Exception):
    """No trial load here: the loader's bpf(2) layer is missing, or the kernel refuses us bpf(2)."""


def _loader_package() -> str:
    """The import name of ``plugins/module_utils/_bpf`` next to this compiler."""
    parent = __package__.rpartition(".")[0]
    if parent:  # installed as ansible_collections.<ns>.<name>.compiler
        return f"{parent}.plugins.module_utils._bpf"
    name = "_whistler_bpf"
    if name not in sys.modules:
        where = Path(__file__).resolve().parent.parent / "plugins" / "module_utils" / "_bpf"
        spec = importlib.util.spec_from_file_location(name, where / "__init__.py",
                                                      submodule_search_locations=[str(where)])
        if spec is None or not (where / "syscalls.py").is_file():
            raise Unavailable(f"the loader's bpf(2) layer is not installed next to the compiler ({where})")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return name


def loader():
    """(syscalls, errors) modules of the collection's loader."""
    try:
        pkg = _loader_package()
        return importlib.import_module(pkg + ".syscalls"), importlib.import_module(pkg + ".errors")
    except ImportError as exc:
        raise Unavailable(f"the loader's bpf(2) layer cannot be imported: {exc}") from exc


class MapCache:
    """Throwaway maps by shape, shared by the loads of one run (e.g. a fuzzer's); prog-arrays are
    per program type, as the first program using one owns it. ``close`` frees them all."""

    def __init__(self, sc):
        self.sc = sc
        self.fds: dict = {}

    def fd(self, m, prog_type: str) -> int:
        key = (m.map_type, m.key_size, m.value_size, m.max_entries, m.flags,
               prog_type if m.kind == "prog-array" else None)
        if key not in self.fds:
            self.fds[key] = self.sc.map_create(m.map_type, m.key_size, m.value_size, m.max_entries, m.flags)
        return self.fds[key]

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def trial_load(obj: CompiledObject, maps: MapCache | None = None) -> list[CompileError]:
    """Load every program of ``obj``; the located rejections (empty: all loaded)."""
    sc, errors = loader()
    own = maps is None
    maps = MapCache(sc) if own else maps
    rejections = []
    try:
        for prog in obj.programs:
            error = _load(sc, errors, obj, prog, maps)
            if error is not None:
                rejections.append(error)
    except errors.BpfError as exc:
        if exc.errno in (1, 13, 38):  # EPERM, EACCES, ENOSYS
            raise Unavailable(f"the kernel refuses bpf(2) here ({exc}): a trial load needs root "
                              f"(CAP_BPF, CAP_NET_ADMIN)") from exc
        raise
    finally:
        if own:
            maps.close()
    return rejections


def linked(prog: ProgramCode) -> tuple:
    """The program's instructions with the loop callbacks it reaches appended, as libbpf links
    ``.text`` (in order of first reference), each callback address pointing at its code; and the
    slot where each callback starts."""
    subs = {s.name: s for s in prog.subprograms}
    code, start = list(prog.insns), {}
    i = 0
    while i < len(code):
        ref = code[i].func_ref
        if ref is not None and ref not in start and ref in subs:
            start[ref] = slot_count(code)
            code += subs[ref].insns
        i += 1
    out, slot = [], 0
    for insn in code:
        if insn.func_ref is not None and insn.func_ref in start:
            insn = replace(insn, imm=start[insn.func_ref] - (slot + 1))
        out.append(insn)
        slot += insn.slots
    return out, start


def func_info(obj: CompiledObject, prog: ProgramCode, starts: dict) -> tuple:
    """(BTF bytes, func_info records, count) for the linked program: the kernel wants a BTF FUNC
    for each function when a program has callbacks. The BTF is the object writer's own."""
    from . import btf

    subs = [s for s in prog.subprograms if s.name in starts]
    built = btf.build(obj.unit, [(prog, 0)], btf.map_layout(obj.unit.maps), "", [(s, 0) for s in subs])
    ext = built.ext
    func_off, func_len = struct.unpack_from("<II", ext, 8)
    block = ext[32 + func_off:32 + func_off + func_len]
    type_ids, at = [], 4
    while at < len(block):
        _name, count = struct.unpack_from("<II", block, at)
        type_ids += [struct.unpack_from("<II", block, at + 8 + 8 * k)[1] for k in range(count)]
        at += 8 + 8 * count
    offsets = [0] + [starts[s.name] for s in subs]
    records = sorted(zip(offsets, type_ids))
    return built.btf, b"".join(struct.pack("<II", off, tid) for off, tid in records), len(records)


def _load(sc, errors, obj: CompiledObject, prog: ProgramCode, maps: MapCache) -> CompileError | None:
    prog_type, attach = PROG_TYPES[prog.decl.prog_type]
    code, starts = linked(prog)
    insns = []
    for insn in code:
        if insn.map_ref is not None:
            insn = replace(insn, imm=maps.fd(obj.unit.map_named(insn.map_ref), prog.decl.prog_type))
        insns.append(insn)
    flags = F_XDP_HAS_FRAGS if prog.decl.section.startswith("xdp.frags") else 0
    info, btf_fd = {}, 0
    if starts:
        data, records, count = func_info(obj, prog, starts)
        btf_fd = sc.btf_load(data)
        info = dict(btf_fd=btf_fd, func_info=records, func_info_cnt=count)
    try:
        fd = sc.prog_load(prog_type, encode(insns), prog.decl.license, prog.decl.name[:15], attach, flags, **info)
    except errors.VerifierError as exc:
        return _locate(prog, insns, exc)
    finally:
        if btf_fd:
            os.close(btf_fd)
    os.close(fd)
    return None


def insn_at_slot(insns: list, slot: int):
    """The instruction occupying 8-byte slot ``slot`` (an ld_imm64 takes two)."""
    at = 0
    for insn in insns:
        if at <= slot < at + insn.slots:
            return insn
        at += insn.slots
    return None


def _locate(prog: ProgramCode, insns: list, exc) -> CompileError:
    failing = exc.failing_insn()
    insn = insn_at_slot(insns, failing[0]) if failing else None
    loc = insn.loc if insn is not None and insn.loc is not None else prog.decl.loc
    reason = failing[1] if failing and failing[1] else "refused"
    where = f" at instruction {failing[0]}" if failing else ""
    lines = [line.split(";")[0].rstrip() for line in exc.log.strip().splitlines()
             if line.strip() and not line.startswith(("processed ", "verification time", "stack depth"))]
    tail = lines[-LOG_TAIL:]
    err = CompileError(loc or Loc("<unknown>", 0, 0),
                       f"the kernel's verifier refuses program {prog.decl.name}{where}: {reason}",
                       hint="verifier log (end): " + " | ".join(tail) if tail else None)
    err.log = exc.log
    return err
