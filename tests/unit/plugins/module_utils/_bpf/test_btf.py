"""BTF parsing, sizes, value decoding and the DATASEC fix-up, on a BTF blob assembled here by hand."""

from __future__ import annotations

import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import btf
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.btfvalue import type_codec


def _blob():
    """Types: 1 int u32, 2 typedef __u32 -> 1, 3 int s64 signed, 4 struct pair {a: u32 @0, b: s64 @64},
    5 array[2] of 1, 6 var 'stats' -> 4, 7 datasec '.maps' {6 @0 size 0} (as clang leaves it)."""
    names = b"\0u32\0__u32\0s64\0pair\0a\0b\0stats\0.maps\0"
    at = {n: names.index(n.encode() + b"\0") for n in ("u32", "__u32", "s64", "pair", "a", "b", "stats",
                                                       ".maps")}

    def head(name, kind, vlen, size_or_type, flag=0):
        return struct.pack("<III", at[name] if name else 0, kind << 24 | vlen | flag << 31, size_or_type)

    types = b"".join([
        head("u32", btf.INT, 0, 4) + struct.pack("<I", 32),
        head("__u32", btf.TYPEDEF, 0, 1),
        head("s64", btf.INT, 0, 8) + struct.pack("<I", 1 << 24 | 64),
        head("pair", btf.STRUCT, 2, 16) + struct.pack("<III", at["a"], 1, 0) + struct.pack("<III", at["b"], 3, 64),
        head("", btf.ARRAY, 0, 0) + struct.pack("<III", 1, 1, 2),
        head("stats", btf.VAR, 0, 4) + struct.pack("<I", 1),
        head(".maps", btf.DATASEC, 1, 0) + struct.pack("<III", 6, 0, 0),
    ])
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(names))
    return header + types + names


def test_parse_names_kinds_and_sizes():
    b = btf.Btf.parse(_blob())
    assert [t.name for t in b.types[1:]] == ["u32", "__u32", "s64", "pair", "", "stats", ".maps"]
    assert [b.size(i) for i in (1, 2, 3, 4, 5)] == [4, 4, 8, 16, 8]
    assert b.skip_modifiers(2).name == "u32"
    assert b.find(btf.DATASEC, ".maps").id == 7


def test_decode_values():
    b = btf.Btf.parse(_blob())
    raw = struct.pack("<Iiq", 7, 0, -3)
    assert type_codec(b, 2).decode(raw[:4]) == 7
    assert type_codec(b, 4).decode(raw) == {"a": 7, "b": -3}
    assert type_codec(b, 5).decode(struct.pack("<II", 1, 2)) == [1, 2]


def test_fixup_datasec_fills_size_and_offsets():
    fixed = btf.Btf.parse(btf.Btf.parse(_blob()).fixup_datasecs({".maps": 48}, {"stats": 32}))
    sec = fixed.find(btf.DATASEC, ".maps")
    assert sec.size_or_type == 48
    assert [(m.type, m.offset, m.size) for m in sec.members] == [(6, 32, 16)]


def test_big_endian_blob_is_refused():
    with pytest.raises(btf.BtfError, match="magic"):
        btf.Btf.parse(b"\xeb\x9f" + bytes(30))


def _with_types(*records, names=b"\0t\0"):
    types = b"".join(records)
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(names)) + types + names


def test_modifier_loop_is_an_error_not_a_hang():
    looped = _with_types(struct.pack("<III", 1, btf.TYPEDEF << 24, 2), struct.pack("<III", 1, btf.CONST << 24, 1))
    b = btf.Btf.parse(looped)
    with pytest.raises(btf.BtfError, match="modifiers form a loop"):
        b.skip_modifiers(1)


def test_array_loop_is_an_error_not_a_recursion_crash():
    self_array = _with_types(struct.pack("<III", 0, btf.ARRAY << 24, 0) + struct.pack("<III", 1, 1, 2))
    with pytest.raises(btf.BtfError, match="nest deeper"):
        btf.Btf.parse(self_array).size(1)


@pytest.mark.parametrize("blob, message", [
    (_with_types(struct.pack("<III", 1, btf.STRUCT << 24 | 500, 4)), "runs past the end"),
    (_with_types(struct.pack("<III", 1, btf.INT << 24, 4) + struct.pack("<I", 32), names=b"\0t"),
     "not NUL-terminated"),
    (_with_types(struct.pack("<III", 1, btf.INT << 24, 4) + struct.pack("<I", 32), names=b"\0\xff\0"),
     "not valid UTF-8"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 1 << 30, 4) + bytes(16), "past the end"),
])
def test_corrupt_type_section_is_a_btf_error(blob, message):
    with pytest.raises(btf.BtfError, match=message):
        btf.Btf.parse(blob)


def _ext(func_block):
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(func_block), len(func_block), 0)
    return header + func_block


@pytest.mark.parametrize("block, message", [
    # 2**32-1 func_info records claimed in a 20-byte block: refused before allocating anything
    (struct.pack("<III", 8, 1, 0xFFFFFFFF) + bytes(8), "do not fit"),
    (struct.pack("<III", 2, 1, 1) + bytes(8), "bad record size 2"),
    (struct.pack("<IIII", 8, 1, 1, 0), "do not fit"),
])
def test_corrupt_ext_info_is_a_btf_error(block, message):
    with pytest.raises(btf.BtfError, match=message):
        btf.parse_ext(_ext(block), btf.Btf.parse(_blob()))
