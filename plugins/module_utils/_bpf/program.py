"""BPF programs as fd-owning objects: a ProgramSpec (+ map fds, BTF fd), pin, id or fd in, ``Program`` out.

``Program.load`` applies the map relocations (ld_imm64 gets src_reg PSEUDO_MAP_FD, imm = the map's fd),
passes func/line info when BTF is loaded, puts the source line of the instruction the verifier rejected
(by the program's line_info) at the top of a ``VerifierError``, and turns the kernel's bare EINVAL for a
prog-array owner mismatch into an ``OwnerMismatchError`` that says which array and why. ``programs_using(map_id)`` lists
the loaded programs that reference a map (what keeps a jump table in use).
"""

from __future__ import annotations

import errno
import os
import struct
from typing import List, Mapping

from . import syscalls as sc
from .btf import Btf, BtfError
from .errors import BpfError, OwnerMismatchError, VerifierError
from .fd import FdOwner, each_loaded
from .maps import Map, ProgArray
from .objfile import INSN_SIZE, MapSpec, ProgramSpec


def relocate(spec: ProgramSpec, map_fds: Mapping[str, int]) -> bytes:
    """The program's instructions with every map load pointing at its map's fd."""
    insns = bytearray(spec.insns)
    for index, map_name in spec.relocations:
        if map_name not in map_fds:
            raise BpfError(errno.EINVAL, "relocate", spec.name, f"no fd for map {map_name!r}")
        at = index * INSN_SIZE
        insns[at + 1] = (insns[at + 1] & 0x0F) | (sc.PSEUDO_MAP_FD << 4)
        struct.pack_into("<i", insns, at + 4, map_fds[map_name])
    return bytes(insns)


class Program(FdOwner):
    def __init__(self, fd: int, name: str = ""):
        super().__init__(fd, f"program {name or fd}")
        self.name = name

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def wrap(cls, fd: int, name: str = "") -> Program:
        """A Program owning ``fd``; closes ``fd`` and fails if it is not a program."""
        if "prog_type" not in sc.fdinfo(fd):
            os.close(fd)
            raise BpfError(errno.EINVAL, "open_program", name or f"fd {fd}", "not a BPF program")
        prog = cls(fd, name)
        prog.name = name or prog.info().name
        return prog

    @classmethod
    def from_pin(cls, path: str) -> Program:
        return cls.wrap(sc.obj_get(path), path)

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        return cls.wrap(sc.prog_get_fd_by_id(prog_id))

    @classmethod
    def load(cls, spec: ProgramSpec, map_fds: Mapping[str, int], btf_fd: int = 0) -> Program:
        """Load ``spec`` with its maps' fds (by map name); ``btf_fd`` adds func/line info."""
        insns = relocate(spec, map_fds)
        info = {}
        if btf_fd and spec.func_info.count:
            info = dict(btf_fd=btf_fd, func_info=spec.func_info.data, func_info_cnt=spec.func_info.count,
                        line_info=spec.line_info.data, line_info_cnt=spec.line_info.count)
        try:
            fd = sc.prog_load(spec.prog_type, insns, spec.license, spec.name, spec.expected_attach_type,
                              spec.prog_flags, **info)
        except BpfError as exc:
            raise _explain_load_failure(spec, map_fds, exc) from None
        return cls(fd, spec.name)

    # -- use ------------------------------------------------------------------------------------

    def info(self) -> sc.ProgInfo:
        return sc.prog_info(self.fd)

    @property
    def id(self) -> int:
        return self.info().id

    def full_name(self) -> str:
        """The program's full function name: the kernel keeps only 15 characters of a name, the BTF
        func_info it was loaded with keeps all of them (what bpftool shows too). The kernel name when
        there is no BTF."""
        info = self.info()
        if len(info.name) < sc.OBJ_NAME_LEN - 1 or not info.btf_id:
            return info.name
        try:
            type_ids = sc.prog_func_type_ids(self.fd)
            with FdOwner(sc.btf_get_fd_by_id(info.btf_id), f"BTF {info.btf_id}") as btf:
                types = Btf.parse(sc.btf_data(btf.fd))
            name = types.type(type_ids[0]).name if type_ids else ""
        except (BpfError, BtfError, IndexError):
            return info.name
        return name if name.startswith(info.name) else info.name

    @property
    def tag(self) -> str:
        return self.info().tag

    def pin(self, path: str) -> None:
        sc.obj_pin(self.fd, path)

    def test_run(self, data: bytes, repeat: int = 1) -> sc.TestRun:
        return sc.prog_test_run(self.fd, data, repeat)


class RunStatistics(FdOwner):
    """While open, the kernel counts every program's runs (``ProgInfo.run_cnt``, ``run_time_ns``):
    BPF_ENABLE_STATS for a window of one's own, leaving the sysctl ``kernel.bpf_stats_enabled`` alone."""

    @classmethod
    def enable(cls) -> RunStatistics:
        return cls(sc.enable_stats(sc.STATS_RUN_TIME), "run statistics")


def programs_using(map_id: int) -> List[sc.ProgInfo]:
    """Every loaded program whose instructions reference map ``map_id`` (walks all program ids; reads only)."""
    return [info for info in each_loaded("program", sc.prog_get_next_id, sc.prog_get_fd_by_id, sc.prog_info)
            if map_id in info.map_ids]


def locate_rejection(spec: ProgramSpec, exc: VerifierError) -> None:
    """Set ``exc.source`` to where in the source the verifier stopped: the failing instruction's line_info
    as ``file:line:col: <verifier's reason> (instruction N of program 'name')`` and the source line."""
    failing = exc.failing_insn()
    line = spec.source_at(failing[0]) if failing else None
    if line is None:
        return
    insn, reason = failing
    exc.source = (f"{line.location}: {reason or 'rejected by the verifier'} (instruction {insn} of program "
                  f"{spec.name!r})" + (f"\n    {line.text}" if line.text else ""))


def _explain_load_failure(spec: ProgramSpec, map_fds: Mapping[str, int], exc: BpfError) -> BpfError:
    """Tell a prog-array owner mismatch (a bare EINVAL after a clean verification) from a real rejection.

    The kernel does not show the owner's attach type or frags flag, so ask it: the program is loaded
    once more against fresh, owner-less copies of its prog arrays; if that succeeds, the owner is why.
    """
    exc.obj = f"{spec.name} ({spec.section})"
    if isinstance(exc, VerifierError):
        locate_rejection(spec, exc)
    if exc.errno != errno.EINVAL:
        return exc
    owned = {}
    for name in spec.map_names:
        with Map.wrap(os.dup(map_fds[name]), name) as used:
            if isinstance(used, ProgArray) and used.owner_prog_type is not None:
                owned[name] = used.owner_prog_type
    if not owned or not _loads_without_owners(spec, map_fds, owned):
        return exc
    arrays = ", ".join(f"{name!r} (owner prog type {owner})" for name, owner in owned.items())
    detail = (f"program {spec.name!r} (prog type {spec.prog_type}, expected_attach_type "
              f"{spec.expected_attach_type}, frags {'on' if spec.prog_flags & sc.F_XDP_HAS_FRAGS else 'off'}) "
              f"passes the verifier but does not match the owner of prog-array {arrays}: the program that "
              "first used the array had a different prog type, expected_attach_type or frags flag "
              "(every XDP program should use expected_attach_type BPF_XDP and the same frags setting); "
              "the owner never changes, so the jump table must be re-created to change it")
    return OwnerMismatchError(exc.errno, exc.op, exc.obj, detail, getattr(exc, "log", ""))


def _loads_without_owners(spec: ProgramSpec, map_fds: Mapping[str, int], owned) -> bool:
    fresh = {}
    try:
        for name in owned:
            with Map.wrap(os.dup(map_fds[name]), name) as used:
                info = used.info
            fresh[name] = Map.create(MapSpec(name, info.type, info.key_size, info.value_size,
                                             info.max_entries, info.flags))
        fds = dict(map_fds, **{name: m.fd for name, m in fresh.items()})
        fd = sc.prog_load(spec.prog_type, relocate(spec, fds), spec.license, spec.name,
                          spec.expected_attach_type, spec.prog_flags)
        os.close(fd)
        return True
    except BpfError:
        return False
    finally:
        for m in fresh.values():
            m.close()
