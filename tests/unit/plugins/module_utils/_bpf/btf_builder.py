"""Raw BTF assembled by hand for the codec tests: add types one by one, get their ids, then ``parse()``.

    b = BtfBuilder()
    u16 = b.int("u16", 2)
    key = b.struct("key", 4, [("port", u16, 0), ("flags", u16, 16)])
    types = b.parse()
"""

from __future__ import annotations

import struct

from ansible_collections.whistler.xdp.plugins.module_utils._bpf import btf


class BtfBuilder:
    def __init__(self):
        self.names = b"\0"
        self.records = []

    def _name(self, name: str) -> int:
        if not name:
            return 0
        off = len(self.names)
        self.names += name.encode() + b"\0"
        return off

    def _add(self, name, kind, vlen, size_or_type, tail=b"", flag=0) -> int:
        self.records.append(struct.pack("<III", self._name(name), flag << 31 | kind << 24 | vlen, size_or_type) + tail)
        return len(self.records)

    def int(self, name: str, size: int, signed: bool = False, bits: int = 0, offset: int = 0, char=False) -> int:
        encoding = (btf.INT_SIGNED if signed else 0) | (btf.INT_CHAR if char else 0)
        return self._add(name, btf.INT, 0, size, struct.pack("<I", encoding << 24 | offset << 16 | (bits or 8 * size)))

    def typedef(self, name: str, target: int) -> int:
        return self._add(name, btf.TYPEDEF, 0, target)

    def const(self, target: int) -> int:
        return self._add("", btf.CONST, 0, target)

    def ptr(self, target: int) -> int:
        return self._add("", btf.PTR, 0, target)

    def array(self, elem: int, count: int, index: int = 1) -> int:
        return self._add("", btf.ARRAY, 0, 0, struct.pack("<III", elem, index, count))

    def enum(self, name: str, size: int, values, signed: bool = False) -> int:
        tail = b"".join(struct.pack("<Ii", self._name(n), v) if signed else struct.pack("<II", self._name(n), v)
                        for n, v in values)
        return self._add(name, btf.ENUM, len(values), size, tail, flag=int(signed))

    def struct(self, name: str, size: int, members, union: bool = False) -> int:
        """``members``: (name, type, bit offset) or (name, type, bit offset, bitfield width)."""
        bitfields = any(len(m) > 3 for m in members)
        tail = b"".join(struct.pack("<III", self._name(m[0]), m[1],
                                    (m[3] << 24 | m[2]) if bitfields and len(m) > 3 else m[2]) for m in members)
        return self._add(name, btf.UNION if union else btf.STRUCT, len(members), size, tail, flag=int(bitfields))

    def float(self, name: str, size: int) -> int:
        return self._add(name, btf.FLOAT, 0, size)

    def raw(self) -> bytes:
        types = b"".join(self.records)
        return struct.pack("<HBBIIIII", btf.MAGIC, 1, 0, 24, 0, len(types), len(types), len(self.names)) + \
            types + self.names

    def parse(self) -> btf.Btf:
        return btf.Btf.parse(self.raw())
