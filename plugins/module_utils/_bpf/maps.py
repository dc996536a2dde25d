"""BPF maps as fd-owning objects: a MapSpec, pin, id or fd in, a ``Map`` (or ``ProgArray``) out.

``Map.create`` passes BTF key/value ids (both or neither) and, like libbpf, retries without BTF when the
kernel refuses them. ``Map.compatible`` says why a pinned map cannot stand in for a spec (cilium/ebpf's
check plus the prog-array owner from fdinfo). Keys and values are bytes or ints of the map's sizes;
``codec`` reads the map's BTF from the kernel and ``typed_items``/``typed_entries`` decode its contents
through it (``btfvalue``). Per-CPU maps read as one value per possible CPU.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import Dict, Iterator, List, Optional, Union

from . import syscalls as sc
from .btf import Btf, BtfError
from .btfvalue import MapCodec, map_codec
from .errors import BpfError, OwnerMismatchError
from .fd import FdOwner
from .names import map_type_name
from .objfile import MapSpec

PERCPU_TYPES = (sc.MAP_TYPE_PERCPU_HASH, sc.MAP_TYPE_PERCPU_ARRAY, sc.MAP_TYPE_LRU_PERCPU_HASH,
                21)  # 21: PERCPU_CGROUP_STORAGE
# Maps whose values are fds or kernel objects: libbpf never sends BTF ids for them.
NO_BTF_TYPES = (sc.MAP_TYPE_PROG_ARRAY, 4, 7, 8, 12, 13, 14, 15, 16, 17, 18, 22, 23, 25, 33)
PROG_TYPE_NAMES = {sc.PROG_TYPE_SCHED_CLS: "sched_cls", sc.PROG_TYPE_XDP: "xdp"}

Key = Union[int, bytes]


def possible_cpus() -> int:
    """Number of possible CPUs (per-CPU values are sized by it, not by the online count)."""
    with open("/sys/devices/system/cpu/possible") as f:
        count = 0
        for part in f.read().strip().split(","):
            low, _dash, high = part.partition("-")
            count += int(high or low) - int(low) + 1
        return count


def max_entries(spec: MapSpec) -> int:
    """``spec``'s max_entries on this host: a perf event array declared with 0 gets one per possible CPU."""
    if spec.type == sc.MAP_TYPE_PERF_EVENT_ARRAY and spec.max_entries == 0:
        return possible_cpus()
    return spec.max_entries


def value_buffer_size(info: sc.MapInfo) -> int:
    """Bytes of one value as a lookup returns it: per-CPU maps hold one 8-byte aligned value per possible CPU."""
    if info.type in PERCPU_TYPES:
        return (info.value_size + 7) // 8 * 8 * possible_cpus()
    return info.value_size


def codec_of(info: sc.MapInfo, btf: Optional[Btf], name: str) -> MapCodec:
    """The codec of a map described by ``info`` whose BTF (None: none) is ``btf`` (see ``Map.codec``)."""
    try:
        return map_codec(info.type, info.key_size, info.value_size, btf, info.btf_key_type_id,
                         info.btf_value_type_id, possible_cpus() if info.type in PERCPU_TYPES else 0)
    except BtfError as exc:
        raise BpfError(errno.EINVAL, "map btf", name, f"cannot decode its BTF: {exc}") from None


def incompatibilities(info: sc.MapInfo, owner_prog_type: Optional[int], spec: MapSpec,
                      prog_type: Optional[int] = None) -> List[str]:
    """Why a map described by ``info`` (and its prog-array owner) cannot stand in for ``spec``."""
    problems = [f"{field} is {have}, the object wants {want}" for field, have, want in (
        ("type", info.type, spec.type), ("key_size", info.key_size, spec.key_size),
        ("value_size", info.value_size, spec.value_size), ("max_entries", info.max_entries, max_entries(spec)),
        ("flags", info.flags, spec.flags)) if have != want]
    if owner_prog_type is not None and prog_type is not None and owner_prog_type != prog_type:
        problems.append(f"prog-array is owned by {PROG_TYPE_NAMES.get(owner_prog_type, owner_prog_type)} "
                        f"programs, the object's programs are {PROG_TYPE_NAMES.get(prog_type, prog_type)}")
    return problems


class Map(FdOwner):
    def __init__(self, fd: int, name: str = ""):
        super().__init__(fd, f"map {name or fd}")
        self.info = sc.map_info(fd)
        self.name = name or self.info.name

    # -- construction ---------------------------------------------------------------------------

    @staticmethod
    def wrap(fd: int, name: str = "") -> Map:
        """A Map (a ProgArray for prog arrays) owning ``fd``; closes ``fd`` if it is not a map."""
        try:
            fields = sc.fdinfo(fd)
        except OSError:
            os.close(fd)
            raise
        if "map_type" not in fields:
            os.close(fd)
            raise BpfError(errno.EINVAL, "open_map", name or f"fd {fd}", "not a BPF map")
        cls = ProgArray if int(fields["map_type"]) == sc.MAP_TYPE_PROG_ARRAY else Map
        return cls(fd, name)

    @classmethod
    def from_pin(cls, path: str) -> Map:
        return cls.wrap(sc.obj_get(path), path)

    @classmethod
    def from_id(cls, map_id: int) -> Map:
        return cls.wrap(sc.map_get_fd_by_id(map_id))

    @classmethod
    def create(cls, spec: MapSpec, btf_fd: int = 0) -> Map:
        """Create a map from ``spec``; with BTF type ids when ``btf_fd`` is given and the kernel takes them."""
        args = (spec.type, spec.key_size, spec.value_size, max_entries(spec), spec.flags, spec.name)
        with_btf = bool(btf_fd and spec.btf_key_type_id and spec.btf_value_type_id
                        and spec.type not in NO_BTF_TYPES)
        if with_btf:
            try:
                return cls.wrap(sc.map_create(*args, btf_fd=btf_fd, btf_key_type_id=spec.btf_key_type_id,
                                              btf_value_type_id=spec.btf_value_type_id,
                                              numa_node=spec.numa_node), spec.name)
            except BpfError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
        try:
            return cls.wrap(sc.map_create(*args, numa_node=spec.numa_node), spec.name)
        except BpfError as exc:
            exc.obj = spec.name
            raise

    # -- description ----------------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def type_name(self) -> str:
        return map_type_name(self.info.type)

    @property
    def owner_prog_type(self) -> Optional[int]:
        """Program type owning this prog array (None: no owner yet, or not a prog array)."""
        owner = sc.fdinfo(self.fd).get("owner_prog_type")
        return int(owner) if owner is not None else None

    def compatible(self, spec: MapSpec, prog_type: Optional[int] = None) -> List[str]:
        """Why this map cannot be used for ``spec`` (empty list: it can). ``prog_type``: of its users."""
        owner = self.owner_prog_type if self.info.type == sc.MAP_TYPE_PROG_ARRAY else None
        return incompatibilities(self.info, owner, spec, prog_type)

    def pin(self, path: str) -> None:
        sc.obj_pin(self.fd, path)

    # -- elements -------------------------------------------------------------------------------

    @property
    def _value_buffer_size(self) -> int:
        return value_buffer_size(self.info)

    def key(self, key: Key) -> bytes:
        if isinstance(key, int):
            if not 0 <= key < 1 << (8 * self.info.key_size):
                raise BpfError(errno.EINVAL, "map key", self.name, f"key {key} does not fit "
                               f"{self.info.key_size} bytes")
            return key.to_bytes(self.info.key_size, "little")
        if len(key) != self.info.key_size:
            raise BpfError(errno.EINVAL, "map key", self.name, f"key is {len(key)} bytes, map keys are "
                           f"{self.info.key_size}")
        return bytes(key)

    def lookup(self, key: Key) -> Optional[bytes]:
        return sc.map_lookup_elem(self.fd, self.key(key), self._value_buffer_size)

    def integer(self, key: Key) -> int:
        """The value at ``key`` as an unsigned little-endian integer, per-CPU values summed (0 when absent)."""
        raw = self.lookup(key)
        if raw is None:
            return 0
        size = self.info.value_size
        if self.info.type in PERCPU_TYPES:
            step = (size + 7) // 8 * 8
            return sum(int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), step))
        return int.from_bytes(raw[:size], "little")

    def update(self, key: Key, value: Union[int, bytes], flags: int = sc.ANY) -> None:
        if isinstance(value, int):
            value = value.to_bytes(self.info.value_size, "little")
        try:
            sc.map_update_elem(self.fd, self.key(key), value, flags)
        except BpfError as exc:
            exc.obj = f"{self.name} key {key}"
            raise

    def delete(self, key: Key) -> bool:
        return sc.map_delete_elem(self.fd, self.key(key))

    def keys(self) -> Iterator[bytes]:
        key = None
        while True:
            key = sc.map_get_next_key(self.fd, key, self.info.key_size)
            if key is None:
                return
            yield key

    def items(self) -> Dict[int, bytes]:
        """{int key: raw value} of every present key (per-CPU: all CPUs' values concatenated)."""
        return {int.from_bytes(key, "little"): value for key, value in self.raw_items().items()}

    def raw_items(self) -> Dict[bytes, bytes]:
        """{raw key: raw value} of every present key (per-CPU: all CPUs' values concatenated)."""
        result = {}
        for key in self.keys():
            value = sc.map_lookup_elem(self.fd, key, self._value_buffer_size)
            if value is not None:  # deleted while we walked
                result[key] = value
        return result

    def btf(self) -> Optional[Btf]:
        if not (self.info.btf_id and self.info.btf_value_type_id):
            return None
        with FdOwner(sc.btf_get_fd_by_id(self.info.btf_id), f"btf {self.info.btf_id}") as btf_fd:
            return Btf.parse(sc.btf_data(btf_fd.fd))

    def codec(self) -> MapCodec:
        """How this map's keys and values read as Python data: through its BTF types when it has them,
        else as integers (or hex digits) of its key and value sizes; per-CPU values as a list per CPU."""
        return codec_of(self.info, self.btf(), self.name)

    def typed_items(self) -> dict:
        """{key: value} decoded through ``codec()``; a key that is not a number or text (a struct, an
        LPM key without an address) is its compact JSON text, so every key can be a dict key."""
        codec = self.codec()
        return {codec.label(codec.key.decode(key)): codec.decode_value(value)
                for key, value in self.raw_items().items()}

    def typed_entries(self) -> List[dict]:
        """[{"key": key, "value": value}] of every entry, decoded through ``codec()`` (keys as data)."""
        codec = self.codec()
        return [{"key": codec.key.decode(key), "value": codec.decode_value(value)}
                for key, value in self.raw_items().items()]


class NewMap:
    """The map ``Map.create(spec)`` would make, before it exists (check mode plans on it): empty, as the
    kernel creates maps, so an array holds zeros at every index. It reads like a ``Map`` (``info``,
    ``codec``, ``raw_items``, ``lookup``; a context manager holding nothing); ``identity`` stands for its
    id, and ``btf`` is the object's (its types count only where ``Map.create`` would pass them)."""

    PREFILLED = (sc.MAP_TYPE_ARRAY, sc.MAP_TYPE_PERCPU_ARRAY)

    def __init__(self, spec: MapSpec, btf: Optional[Btf], identity: object):
        typed = bool(btf is not None and spec.btf_key_type_id and spec.btf_value_type_id
                     and spec.type not in NO_BTF_TYPES)
        self.name = spec.name
        self.info = sc.MapInfo(spec.type, identity, spec.key_size, spec.value_size, max_entries(spec), spec.flags,
                               spec.name, 0, spec.btf_key_type_id if typed else 0,
                               spec.btf_value_type_id if typed else 0)
        self._btf = btf if typed else None

    def __enter__(self) -> NewMap:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def codec(self) -> MapCodec:
        return codec_of(self.info, self._btf, self.name)

    def lookup(self, key: bytes) -> Optional[bytes]:
        if self.info.type in self.PREFILLED and int.from_bytes(key, "little") < self.info.max_entries:
            return bytes(value_buffer_size(self.info))
        return None

    def raw_items(self) -> Dict[bytes, bytes]:
        if self.info.type not in self.PREFILLED:
            return {}
        zero = bytes(value_buffer_size(self.info))
        return {index.to_bytes(self.info.key_size, "little"): zero for index in range(self.info.max_entries)}


class ProgArray(Map):
    """A BPF_MAP_TYPE_PROG_ARRAY: slots hold program fds on write and program ids on read."""

    def entries(self) -> Dict[int, int]:
        """{slot: program id} of the filled slots."""
        result = {}
        for key in range(self.info.max_entries):
            value = self.lookup(key)
            if value is not None:
                result[key] = struct.unpack("<I", value)[0]
        return result

    def set(self, key: int, prog_fd: int) -> None:
        """Point slot ``key`` at a program (BPF_ANY: an in-place swap, never a gap)."""
        try:
            self.update(key, struct.pack("<i", prog_fd))
        except BpfError as exc:
            if exc.errno == errno.EINVAL:
                raise self.owner_mismatch(prog_fd, exc) from None
            raise

    def owner_mismatch(self, prog_fd: int, exc: BpfError) -> BpfError:
        """Explain a bare EINVAL from inserting (or loading a user of) an incompatible program."""
        owner = self.owner_prog_type
        if owner is None:
            return exc
        info = sc.prog_info(prog_fd)
        name = info.name or f"id {info.id}"
        if info.type != owner:
            why = (f"program {name!r} is {PROG_TYPE_NAMES.get(info.type, info.type)}, the prog-array "
                   f"is owned by {PROG_TYPE_NAMES.get(owner, owner)} programs")
        else:
            why = (f"program {name!r} has the owner's type ({PROG_TYPE_NAMES.get(owner, owner)}), so it "
                   "differs in expected_attach_type or the frags flag (every XDP program should use "
                   "expected_attach_type BPF_XDP and the same frags setting)")
        return OwnerMismatchError(exc.errno, exc.op, self.name, why)
