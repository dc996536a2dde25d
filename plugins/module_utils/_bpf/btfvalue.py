"""Map keys and values as Python data: BTF types (or a bare size) in, codecs out.

``type_codec(btf, type_id)`` builds a tree of small codecs following a BTF type; ``map_codec(info, btf)``
picks a map's key and value codecs (``MapCodec``). Every codec has ``size`` (bytes), ``decode(raw)``
and ``encode(value)``; the value is what a user writes in YAML and reads back:

- ``Int``: a number within the type's width and signedness (a bitfield: within its bits). Typedefs
  ``__be16``/``__be32``/``__be64`` are big-endian; a ``__be32`` also takes an IPv4 address "10.0.0.1".
- ``Enum``: the enumerator's name (a number no enumerator has stays a number); names or numbers in.
- ``Chars``: a ``char`` array as text (printable ASCII, NUL-padded), or a list of numbers when it holds
  anything else.
- ``Array``: a list of exactly as many elements as the array has.
- ``Struct``: a dict of every field by name (bitfields too; an anonymous member is ``_anon<N>``).
- ``Union``: a dict of every member when read; exactly one member when written.
- ``Float``; ``Hex``: bytes as hex digits (maps without BTF whose size is not 1, 2, 4 or 8).
- ``LpmKey``: an LPM trie key ``{u32 prefixlen; data}``: "10.0.0.0/8" or "2001:db8::/32" when the
  data is 4 or 16 bytes (host bits are not part of the key, so they are dropped when read), else
  ``{prefixlen, data}``.

Encoding expects a value that passed the codec's JSON Schema (``schema.py``); what a schema cannot
say (an address with host bits set) raises ``CodecError`` carrying the path of the field.
Pure: no kernel access.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import struct
import typing
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from . import btf as btfmod
from .btf import Btf, BtfError

BIG_ENDIAN_TYPEDEFS = ("__be16", "__be32", "__be64")
MAP_TYPE_LPM_TRIE = 11
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_HEXADECIMAL = re.compile(r"[+-]?0[xX][0-9a-fA-F]+")


class CodecError(ValueError):
    """A value the codec cannot encode; ``path`` (field names, list indices) says where in it."""

    def __init__(self, message: str, path: Tuple[typing.Union[str, int], ...] = ()):
        super().__init__(message)
        self.path = path

    def within(self, part: typing.Union[str, int]) -> CodecError:
        return CodecError(str(self), (part,) + self.path)


@dataclass(frozen=True)
class Int:
    """``bits`` bits at bit ``shift`` of ``size`` bytes (a whole integer: shift 0, bits 8 * size)."""

    size: int
    bits: int
    shift: int = 0
    signed: bool = False
    big_endian: bool = False

    @property
    def minimum(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def maximum(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def takes_ipv4(self) -> bool:
        return self.big_endian and self.bits == 32

    def to_int(self, value) -> int:
        if isinstance(value, str) and self.takes_ipv4:
            try:
                return int(ipaddress.IPv4Address(value))
            except ValueError as exc:
                raise CodecError(str(exc)) from None
        if isinstance(value, float) and value.is_integer():  # JSON Schema counts 3.0 as an integer
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError(f"{value!r} is not an integer")
        if not self.minimum <= value <= self.maximum:
            raise CodecError(f"{value} does not fit {self.bits} {'signed' if self.signed else 'unsigned'} bits")
        return value

    def from_int(self, number: int):
        return number

    def decode(self, raw: bytes):
        number = int.from_bytes(raw[:self.size], "big" if self.big_endian else "little") >> self.shift
        number &= (1 << self.bits) - 1
        if self.signed and number >> (self.bits - 1):
            number -= 1 << self.bits
        return self.from_int(number)

    def encode(self, value) -> bytes:
        number = (self.to_int(value) & ((1 << self.bits) - 1)) << self.shift
        return number.to_bytes(self.size, "big" if self.big_endian else "little")


@dataclass(frozen=True)
class Enum(Int):
    names: Tuple[Tuple[str, int], ...] = ()

    def to_int(self, value) -> int:
        if isinstance(value, str):
            for name, number in self.names:
                if name == value:
                    return number
            raise CodecError(f"{value!r} is not one of {[name for name, _number in self.names]}")
        return super().to_int(value)

    def from_int(self, number: int):
        return next((name for name, value in self.names if value == number), number)


@dataclass(frozen=True)
class Float:
    size: int

    def decode(self, raw: bytes) -> float:
        return struct.unpack("<f" if self.size == 4 else "<d", raw[:self.size])[0]

    def encode(self, value) -> bytes:
        return struct.pack("<f" if self.size == 4 else "<d", value)


@dataclass(frozen=True)
class Hex:
    size: int

    def decode(self, raw: bytes) -> str:
        return raw[:self.size].hex()

    def encode(self, value) -> bytes:
        data = bytes.fromhex(value)
        if len(data) != self.size:
            raise CodecError(f"{value!r} is {len(data)} bytes, not {self.size}")
        return data


@dataclass(frozen=True)
class Array:
    elem: Any
    count: int

    @property
    def size(self) -> int:
        return self.elem.size * self.count

    def decode(self, raw: bytes) -> list:
        step = self.elem.size
        return [self.elem.decode(raw[i * step:(i + 1) * step]) for i in range(self.count)]

    def encode(self, value) -> bytes:
        if not isinstance(value, list) or len(value) != self.count:
            raise CodecError(f"expected a list of {self.count} elements")
        parts = []
        for index, item in enumerate(value):
            try:
                parts.append(self.elem.encode(item))
            except CodecError as exc:
                raise exc.within(index) from None
        return b"".join(parts)


_PRINTABLE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class Chars(Array):
    """A ``char`` array: text when it holds printable ASCII followed only by NULs."""

    def decode(self, raw: bytes):
        raw = raw[:self.size]
        text, _nul, rest = raw.partition(b"\0")
        if not rest.strip(b"\0") and _PRINTABLE.fullmatch(text.decode("latin-1")):
            return text.decode("ascii")
        return super().decode(raw)

    def encode(self, value) -> bytes:
        if not isinstance(value, str):
            return super().encode(value)
        if not _PRINTABLE.fullmatch(value) or len(value) > self.count:
            raise CodecError(f"{value!r} is not printable ASCII of at most {self.count} characters")
        return value.encode("ascii").ljust(self.count, b"\0")


@dataclass(frozen=True)
class Field:
    name: str
    offset: int  # bytes from the start of the struct or union
    codec: Any


@dataclass(frozen=True)
class Struct:
    size: int
    fields: Tuple[Field, ...]

    def decode(self, raw: bytes) -> dict:
        return {f.name: f.codec.decode(raw[f.offset:f.offset + f.codec.size]) for f in self.fields}

    def encode(self, value) -> bytes:
        if not isinstance(value, dict):
            raise CodecError(f"expected a dict of {self._what()}")
        out = bytearray(self.size)
        for f in self._given(value):
            try:
                data = f.codec.encode(value[f.name])
            except CodecError as exc:
                raise exc.within(f.name) from None
            for i, byte in enumerate(data):  # bitfields share bytes: each sets only its own bits
                out[f.offset + i] |= byte
        return bytes(out)

    def _what(self) -> str:
        return "fields " + ", ".join(f.name for f in self.fields)

    def _given(self, value: dict) -> List[Field]:
        unknown = sorted(set(value) - {f.name for f in self.fields})
        missing = [f.name for f in self.fields if f.name not in value]
        if unknown or missing:
            raise CodecError(f"expected {self._what()}" + (f"; unknown: {', '.join(map(str, unknown))}" if unknown
                                                           else f"; missing: {', '.join(missing)}"))
        return list(self.fields)


@dataclass(frozen=True)
class Union(Struct):
    """Every member when read; exactly one member when written (the rest of the bytes are zero)."""

    def _what(self) -> str:
        return "exactly one of " + ", ".join(f.name for f in self.fields)

    def _given(self, value: dict) -> List[Field]:
        chosen = [f for f in self.fields if f.name in value]
        if len(value) != 1 or len(chosen) != 1:
            raise CodecError(f"expected {self._what()}")
        return chosen


@dataclass(frozen=True)
class LpmKey:
    """``{u32 prefixlen (host order); data}``, the key layout of every BPF_MAP_TYPE_LPM_TRIE."""

    data: Any

    @property
    def size(self) -> int:
        return 4 + self.data.size

    @property
    def max_prefixlen(self) -> int:
        return 8 * self.data.size

    @property
    def ip_version(self) -> int:
        """4 or 6 when the data is an IPv4 or IPv6 address, else 0."""
        return {4: 4, 16: 6}.get(self.data.size, 0)

    def decode(self, raw: bytes):
        prefixlen = int.from_bytes(raw[:4], "little")
        if self.ip_version and prefixlen <= self.max_prefixlen:
            address = ipaddress.ip_address(bytes(raw[4:self.size]))
            return str(ipaddress.ip_network((address, prefixlen), strict=False))
        return {"prefixlen": prefixlen, "data": self.data.decode(raw[4:self.size])}

    def encode(self, value) -> bytes:
        if self.ip_version and isinstance(value, str):
            try:
                network = ipaddress.ip_network(value)
            except ValueError as exc:
                raise CodecError(str(exc)) from None
            if network.version != self.ip_version:
                raise CodecError(f"{value} is an IPv{network.version} network; this map's keys hold IPv"
                                 f"{self.ip_version} addresses")
            return network.prefixlen.to_bytes(4, "little") + network.network_address.packed
        if not isinstance(value, dict) or set(value) != {"prefixlen", "data"}:
            raise CodecError("expected an IP network like 10.0.0.0/8" if self.ip_version
                             else "expected a dict of prefixlen and data")
        prefixlen = value["prefixlen"]
        if isinstance(prefixlen, bool) or not isinstance(prefixlen, int) or not 0 <= prefixlen <= self.max_prefixlen:
            raise CodecError(f"{prefixlen!r} is not a prefix length of 0 to {self.max_prefixlen}", ("prefixlen",))
        try:
            return prefixlen.to_bytes(4, "little") + self.data.encode(value["data"])
        except CodecError as exc:
            raise exc.within("data") from None


# -- from BTF ---------------------------------------------------------------------------------------

MAX_ITEMS = 1 << 22  # numbers a decoded key or value may hold; crafted BTF could ask for billions


def type_codec(btf: Btf, type_id: int):
    """The codec of BTF type ``type_id``; raises BtfError for what cannot be a key or value."""
    builder = _Builder(btf)
    codec = builder.codec(type_id, 0)
    if builder.items[type_id] > MAX_ITEMS:
        raise BtfError(f"BTF type {type_id}: a value of it holds more than {MAX_ITEMS} numbers")
    return codec


class _Builder:
    """Builds codecs type by type, once per type id (crafted BTF may reuse a type many times over)."""

    def __init__(self, btf: Btf):
        self.btf = btf
        self.built = {}
        self.items = {}  # type id -> numbers in a decoded value (bounds decoding work)

    def codec(self, type_id: int, depth: int):
        if type_id not in self.built:
            if depth > btfmod.MAX_NESTING:
                raise BtfError(f"BTF type {type_id}: types nest deeper than {btfmod.MAX_NESTING} (a loop?)")
            self.built[type_id], self.items[type_id] = self._build(type_id, depth)
        return self.built[type_id]

    def _build(self, type_id: int, depth: int):
        btf = self.btf
        t = btf.skip_modifiers(type_id)
        if t.kind == btfmod.INT:
            return _int(t, _is_big_endian(btf, type_id)), 1
        if t.kind in (btfmod.ENUM, btfmod.ENUM64):
            return _enum(t), 1
        if t.kind == btfmod.PTR:
            return Int(8, 64), 1
        if t.kind == btfmod.FLOAT:
            return (Float(t.size_or_type) if t.size_or_type in (4, 8) else Hex(t.size_or_type)), 1
        if t.kind == btfmod.ARRAY:
            elem = self.codec(t.extra[0], depth + 1)
            if elem.size == 0:
                raise BtfError(f"BTF type {type_id}: array of zero-sized elements")
            elem_type = btf.skip_modifiers(t.extra[0])
            chars = elem_type.kind == btfmod.INT and elem.size == 1 and (
                elem_type.name == "char" or elem_type.int_encoding & btfmod.INT_CHAR)
            return (Chars if chars else Array)(elem, t.extra[2]), 1 + t.extra[2] * self.items[t.extra[0]]
        if t.kind in (btfmod.STRUCT, btfmod.UNION):
            return self._struct(t, depth)
        raise BtfError(f"BTF type {type_id} ({t.name or 'anonymous'}) cannot be a map key or value")

    def _struct(self, t: btfmod.Type, depth: int):
        fields = []
        items = 1
        anonymous = 0
        for m in t.members:
            codec = self.codec(m.type, depth + 1)
            items += self.items[m.type]
            bit_offset, bits = m.offset, m.bits
            if not bits and isinstance(codec, Int) and (codec.shift or codec.bits != 8 * codec.size):
                bit_offset, bits = bit_offset + codec.shift, codec.bits  # a bitfield the old way: in the INT
            if bits:
                if not isinstance(codec, Int):
                    raise BtfError(f"BTF type {t.id} ({t.name}): bitfield {m.name!r} is not an integer")
                shift = bit_offset % 8
                codec = dataclasses.replace(codec, size=(shift + bits + 7) // 8, bits=bits, shift=shift,
                                            big_endian=False)
            elif bit_offset % 8:
                raise BtfError(f"BTF type {t.id} ({t.name}): member {m.name!r} is not byte-aligned")
            name = m.name
            if not name:
                name, anonymous = f"_anon{anonymous}", anonymous + 1
            if any(f.name == name for f in fields):
                raise BtfError(f"BTF type {t.id} ({t.name}): two members are named {name!r}")
            if bit_offset // 8 + codec.size > t.size_or_type:
                raise BtfError(f"BTF type {t.id} ({t.name}): member {name!r} ends past the end of the type")
            fields.append(Field(name, bit_offset // 8, codec))
        return (Union if t.kind == btfmod.UNION else Struct)(t.size_or_type, tuple(fields)), items


def _is_big_endian(btf: Btf, type_id: int) -> bool:
    """Whether a typedef on the way from ``type_id`` to its integer says big-endian (``__be32``)."""
    t = btf.type(type_id)
    for _step in range(len(btf.types)):
        if t.kind not in btfmod.MODIFIERS:
            break
        if t.kind == btfmod.TYPEDEF and t.name in BIG_ENDIAN_TYPEDEFS:
            return True
        t = btf.type(t.size_or_type)
    return False


def _int(t: btfmod.Type, big_endian: bool) -> Int:
    size, bits, shift = t.size_or_type, t.int_bits, t.int_offset
    if not (1 <= size <= 16 and 1 <= bits and shift + bits <= 8 * size):
        raise BtfError(f"BTF type {t.id} ({t.name}): bad integer encoding ({bits} bits at {shift}, {size} bytes)")
    whole = shift == 0 and bits == 8 * size
    return Int(size, bits, shift, bool(t.int_encoding & btfmod.INT_SIGNED), big_endian and whole)


def _enum(t: btfmod.Type) -> Enum:
    size = t.size_or_type
    if size not in (1, 2, 4, 8):
        raise BtfError(f"BTF type {t.id} ({t.name}): enum of {size} bytes")
    width = 32 if t.kind == btfmod.ENUM else 64
    names = []
    for m in t.members:
        value = m.offset & ((1 << width) - 1)
        if t.kind_flag and value >> (width - 1):  # signed enum
            value -= 1 << width
        names.append((m.name, value))
    return Enum(size, 8 * size, signed=t.kind_flag, names=tuple(names))


def sized_codec(size: int):
    """A key or value without BTF: an unsigned integer of 1, 2, 4 or 8 bytes, else hex digits."""
    return Int(size, 8 * size) if size in (1, 2, 4, 8) else Hex(size)


# -- maps -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapCodec:
    """A map's key and value codecs; ``cpus`` > 0 for per-CPU maps (a value per possible CPU)."""

    key: Any
    value: Any
    cpus: int = 0

    @property
    def value_stride(self) -> int:
        """Bytes per CPU in a per-CPU value buffer (the kernel rounds each CPU's value up to 8)."""
        return (self.value.size + 7) // 8 * 8

    def decode_value(self, raw: bytes):
        if not self.cpus:
            return self.value.decode(raw)
        return [self.value.decode(raw[i * self.value_stride:i * self.value_stride + self.value.size])
                for i in range(self.cpus)]

    def identity(self, raw_key: bytes) -> bytes:
        """The key as the kernel tells keys apart: an LPM key without host bits, else its bytes."""
        if isinstance(self.key, LpmKey):
            try:
                return self.key.encode(self.key.decode(raw_key))
            except CodecError:  # a prefix longer than the data: the kernel never stores one
                pass
        return bytes(raw_key)

    @staticmethod
    def label(key) -> typing.Union[int, str]:
        """A decoded key as a dict key: numbers and text as they are, anything else as compact JSON."""
        if isinstance(key, (int, str)) and not isinstance(key, bool):
            return key
        return json.dumps(key, separators=(",", ":"))

    def key_from_text(self, text):
        """A key written as text (a YAML/JSON dict key) as the value the key codec takes: JSON for a
        struct or list, a number for an integer key, else the text itself (an enum name, a network)."""
        if not isinstance(text, str):
            return text
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.loads(stripped)
            except ValueError:
                return text
        if isinstance(self.key, Int) and _DECIMAL.fullmatch(stripped):
            return int(stripped, 10)
        if isinstance(self.key, Int) and _HEXADECIMAL.fullmatch(stripped):
            return int(stripped, 16)
        return text


def map_codec(map_type: int, key_size: int, value_size: int, btf: Optional[Btf] = None, key_type_id: int = 0,
              value_type_id: int = 0, cpus: int = 0) -> MapCodec:
    """The codecs of a map's keys and values: from its BTF types where it has them and their sizes
    match the map's, else from the sizes alone. Raises BtfError for BTF types that cannot be decoded."""
    def codec(type_id: int, size: int):
        if btf is not None and type_id:
            found = type_codec(btf, type_id)
            if found.size == size:
                return found
        return sized_codec(size)

    if map_type == MAP_TYPE_LPM_TRIE and key_size > 4:
        key = LpmKey(_lpm_data(btf, key_type_id, key_size - 4))
    else:
        key = codec(key_type_id, key_size)
    return MapCodec(key, codec(value_type_id, value_size), cpus)


def _lpm_data(btf: Optional[Btf], key_type_id: int, size: int):
    """The codec of an LPM key's data: the BTF struct's second member when the key is declared as
    ``{u32 prefixlen; T data;}``, else hex digits."""
    if btf is not None and key_type_id:
        t = btf.skip_modifiers(key_type_id)
        if t.kind == btfmod.STRUCT and len(t.members) == 2 and t.members[1].offset == 32 and not t.members[1].bits:
            data = type_codec(btf, t.members[1].type)
            if data.size == size:
                return data
    return Hex(size)
