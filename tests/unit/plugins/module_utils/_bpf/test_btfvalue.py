"""The BTF value codec and its JSON Schema, on BTF assembled by hand (btf_builder).

Expected bytes are written out from the C layout rules (little-endian, bitfields from bit 0 up,
network order for __be types), not derived from the codec.
"""

from __future__ import annotations

import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import btfvalue as bv
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.btf import BtfError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.schema import (
    codec_schema,
    entry_errors,
    entry_schema,
    validator,
)
from ansible_collections.whistler.xdp.tests.unit.plugins.module_utils._bpf.btf_builder import BtfBuilder
from hypothesis import given
from hypothesis import strategies as st


def flow_key_btf():
    """struct flow_key {__be32 addr; __be16 port; __u8 proto;} (8 bytes, 1 of padding)."""
    b = BtfBuilder()
    u32, u16, u8 = b.int("unsigned int", 4), b.int("unsigned short", 2), b.int("unsigned char", 1)
    be32 = b.typedef("__be32", b.typedef("__u32", u32))
    be16 = b.typedef("__be16", b.typedef("__u16", u16))
    key = b.struct("flow_key", 8, [("addr", be32, 0), ("port", be16, 32), ("proto", u8, 48)])
    return b.parse(), key


def port_config_btf():
    """struct port_config {enum verdict verdict; __u16 rate; __u8 enabled:1, log:1, level:3;
    char name[5]; __s32 allowed[2];} (20 bytes)."""
    b = BtfBuilder()
    u16, u8 = b.int("unsigned short", 2), b.int("unsigned char", 1)
    s32, char = b.int("int", 4, signed=True), b.int("char", 1, signed=True)
    verdict = b.enum("verdict", 4, [("DROP", 1), ("PASS", 2)])
    config = b.struct("port_config", 20, [
        ("verdict", verdict, 0), ("rate", u16, 32), ("enabled", u8, 48, 1), ("log", u8, 49, 1),
        ("level", u8, 50, 3), ("name", b.array(char, 5), 56), ("allowed", b.array(s32, 2), 96, 0)])
    return b.parse(), config


CONFIG = {"verdict": "DROP", "rate": 1000, "enabled": 1, "log": 0, "level": 5, "name": "ssh", "allowed": [-1, 7]}
CONFIG_BYTES = struct.pack("<IH", 1, 1000) + bytes([1 | 5 << 2]) + b"ssh\0\0" + struct.pack("<ii", -1, 7)


def test_struct_with_big_endian_fields_matches_network_order():
    types, key = flow_key_btf()
    codec = bv.type_codec(types, key)
    raw = bytes([10, 0, 0, 7, 0, 22, 6, 0])
    assert codec.encode({"addr": "10.0.0.7", "port": 22, "proto": 6}) == raw
    assert codec.decode(raw) == {"addr": 0x0A000007, "port": 22, "proto": 6}
    assert codec.encode(codec.decode(raw)) == raw


def test_struct_with_bitfields_enum_chars_and_array():
    types, config = port_config_btf()
    codec = bv.type_codec(types, config)
    assert codec.size == 20
    assert codec.encode(CONFIG) == CONFIG_BYTES
    assert codec.decode(CONFIG_BYTES) == CONFIG
    # Neighbouring bitfields keep their bits; an unknown enumerator value stays a number.
    other = bytearray(CONFIG_BYTES)
    other[0], other[6] = 9, 0b10110
    assert codec.decode(bytes(other)) == dict(CONFIG, verdict=9, enabled=0, log=1, level=5)


def test_char_array_that_is_not_text_reads_as_numbers():
    types, config = port_config_btf()
    codec = bv.type_codec(types, config)
    raw = CONFIG_BYTES[:7] + b"a\0b\0\0" + CONFIG_BYTES[12:]
    decoded = codec.decode(raw)
    assert decoded["name"] == [97, 0, 98, 0, 0]
    assert codec.encode(decoded) == raw


def test_union_reads_every_member_and_writes_one():
    b = BtfBuilder()
    u32, u8 = b.int("unsigned int", 4), b.int("unsigned char", 1)
    either = b.struct("either", 4, [("word", u32, 0), ("bytes", b.array(u8, 4), 0)], union=True)
    codec = bv.type_codec(b.parse(), either)
    assert codec.encode({"bytes": [1, 2, 3, 4]}) == bytes([1, 2, 3, 4])
    assert codec.decode(bytes([1, 2, 3, 4])) == {"word": 0x04030201, "bytes": [1, 2, 3, 4]}
    checker = validator(codec_schema(codec))
    assert not list(checker.iter_errors({"word": 5}))
    assert list(checker.iter_errors({"word": 5, "bytes": [0, 0, 0, 0]}))
    with pytest.raises(bv.CodecError, match="exactly one of word, bytes"):
        codec.encode({"word": 5, "bytes": [0, 0, 0, 0]})


def test_anonymous_members_are_numbered_and_modifiers_are_skipped():
    b = BtfBuilder()
    u16 = b.int("unsigned short", 2)
    inner = b.struct("", 2, [("low", u16, 0)])
    outer = b.struct("outer", 4, [("", inner, 0), ("tail", b.const(u16), 16)])
    codec = bv.type_codec(b.parse(), outer)
    assert codec.decode(struct.pack("<HH", 3, 4)) == {"_anon0": {"low": 3}, "tail": 4}


@pytest.mark.parametrize("value, raw", [
    ("10.0.0.0/8", struct.pack("<I", 8) + bytes([10, 0, 0, 0])),
    ("192.168.1.7", struct.pack("<I", 32) + bytes([192, 168, 1, 7])),
    ("0.0.0.0/0", bytes(8)),
])
def test_lpm_ipv4_keys_are_networks(value, raw):
    codec = bv.LpmKey(bv.Array(bv.Int(1, 8), 4))
    assert codec.encode(value) == raw
    assert codec.decode(raw) == (value if "/" in value else value + "/32")


def test_lpm_keys_drop_host_bits_when_read_and_refuse_them_when_written():
    codec = bv.map_codec(bv.MAP_TYPE_LPM_TRIE, 20, 4)
    raw = struct.pack("<I", 32) + bytes([0x20, 0x01, 0x0d, 0xb8]) + bytes([0xff] * 12)
    assert codec.key.decode(raw) == "2001:db8::/32"
    assert codec.identity(raw) == codec.key.encode("2001:db8::/32")
    with pytest.raises(bv.CodecError, match="host bits set"):
        codec.key.encode("2001:db8::1/32")
    with pytest.raises(bv.CodecError, match="IPv4 network; this map's keys hold IPv6"):
        codec.key.encode("10.0.0.0/8")


def test_lpm_keys_of_other_sizes_are_prefixlen_and_data():
    codec = bv.map_codec(bv.MAP_TYPE_LPM_TRIE, 10, 4)  # no BTF: 6 data bytes as hex digits
    raw = struct.pack("<I", 12) + bytes.fromhex("0a0b0c0d0e0f")
    assert codec.key.decode(raw) == {"prefixlen": 12, "data": "0a0b0c0d0e0f"}
    assert codec.key.encode({"prefixlen": 12, "data": "0a0b0c0d0e0f"}) == raw
    checker = validator(codec_schema(codec.key))
    assert [e.message for e in checker.iter_errors({"prefixlen": 49, "data": "0a0b0c0d0e0f"})] == \
        ["49 is greater than the maximum of 48"]


def test_lpm_data_codec_comes_from_the_btf_struct():
    b = BtfBuilder()
    u32, u16 = b.int("unsigned int", 4), b.int("unsigned short", 2)
    key = b.struct("port_key", 10, [("prefixlen", u32, 0), ("ports", b.array(u16, 3), 32)])
    codec = bv.map_codec(bv.MAP_TYPE_LPM_TRIE, 10, 4, b.parse(), key, u32)
    assert codec.key.decode(struct.pack("<IHHH", 16, 80, 443, 0)) == {"prefixlen": 16, "data": [80, 443, 0]}


@pytest.mark.parametrize("size, value, raw", [(4, 7, bytes([7, 0, 0, 0])), (8, 2**64 - 1, bytes([255] * 8)),
                                              (6, "0a0000000016", bytes([10, 0, 0, 0, 0, 0x16]))])
def test_maps_without_btf_use_integers_or_hex_digits(size, value, raw):
    codec = bv.map_codec(1, size, size)
    assert codec.key.encode(value) == raw
    assert codec.value.decode(raw) == value


def test_btf_of_the_wrong_size_falls_back_to_sizes():
    types, key = flow_key_btf()
    codec = bv.map_codec(1, 4, 4, types, key, key)
    assert codec.key == bv.Int(4, 32)


def test_per_cpu_values_read_one_per_cpu():
    codec = bv.map_codec(6, 4, 4, cpus=3)
    assert codec.decode_value(struct.pack("<IIIIII", 1, 0, 2, 0, 3, 0)) == [1, 2, 3]


@pytest.mark.parametrize("text, key", [("80", 80), ("0x50", 80), ("-3", -3), ("abc", "abc"),
                                       ('{"port": 1}', {"port": 1}), ("[1, 2]", [1, 2]), ("{oops", "{oops")])
def test_key_from_text(text, key):
    assert bv.MapCodec(bv.Int(4, 32, signed=True), bv.Int(4, 32)).key_from_text(text) == key


def test_labels_are_keys_or_json():
    assert bv.MapCodec.label(5) == 5
    assert bv.MapCodec.label("10.0.0.0/8") == "10.0.0.0/8"
    assert bv.MapCodec.label({"addr": 1, "port": 2}) == '{"addr":1,"port":2}'


# -- schemas ------------------------------------------------------------------------------------------

def test_errors_name_the_entry_and_the_field():
    types, config = port_config_btf()
    codec = bv.MapCodec(bv.Int(4, 32), bv.type_codec(types, config))
    checker = validator(entry_schema(codec))
    bad = dict(CONFIG, rate=70000, level=8, verdict="REJECT", allowed=[1], extra=1)
    assert entry_errors(checker, {"key": 3, "value": bad}, "entries[3]") == [
        "entries[3].value: Additional properties are not allowed ('extra' was unexpected)",
        "entries[3].value.allowed: [1] is too short",
        "entries[3].value.level: 8 is greater than the maximum of 7",
        "entries[3].value.rate: 70000 is greater than the maximum of 65535",
        "entries[3].value.verdict: 'REJECT' is not one of ['DROP', 'PASS']",
    ]
    missing = dict(CONFIG)
    del missing["log"]
    assert entry_errors(checker, {"key": -1, "value": missing}, "entries['x']") == [
        "entries['x'].key: -1 is less than the minimum of 0",
        "entries['x'].value: 'log' is a required property",
    ]


def test_entry_needs_value_only_when_asked():
    codec = bv.map_codec(1, 4, 4)
    assert entry_errors(validator(entry_schema(codec)), {"key": 1}, "e") == ["e: 'value' is a required property"]
    assert entry_errors(validator(entry_schema(codec, value_required=False)), {"key": 1}, "e") == []


@given(st.integers(min_value=1, max_value=8), st.booleans(), st.integers(min_value=-(2**65), max_value=2**65))
def test_integer_schema_accepts_exactly_what_encodes(size, signed, number):
    codec = bv.Int(size, 8 * size, signed=signed)
    accepted = not list(validator(codec_schema(codec)).iter_errors(number))
    try:
        raw = codec.encode(number)
    except bv.CodecError:
        assert not accepted
    else:
        assert accepted
        assert codec.decode(raw) == number


@given(st.integers(min_value=0, max_value=0xFFFFFFFF), st.integers(min_value=0, max_value=0xFFFF),
       st.integers(min_value=0, max_value=255))
def test_struct_round_trips(addr, port, proto):
    types, key = flow_key_btf()
    codec = bv.type_codec(types, key)
    value = {"addr": addr, "port": port, "proto": proto}
    assert not list(validator(codec_schema(codec)).iter_errors(value))
    assert codec.decode(codec.encode(value)) == value


@given(st.integers(0, 32), st.integers(0, 0xFFFFFFFF))
def test_lpm_identity_ignores_host_bits(prefixlen, address):
    codec = bv.map_codec(bv.MAP_TYPE_LPM_TRIE, 8, 4)
    raw = struct.pack("<I", prefixlen) + address.to_bytes(4, "big")
    masked = address & ~((1 << (32 - prefixlen)) - 1) & 0xFFFFFFFF
    assert codec.identity(raw) == struct.pack("<I", prefixlen) + masked.to_bytes(4, "big")
    assert codec.key.encode(codec.key.decode(raw)) == codec.identity(raw)


# -- crafted BTF ----------------------------------------------------------------------------------------

def test_bad_btf_is_an_error_not_a_crash():
    b = BtfBuilder()
    u32 = b.int("unsigned int", 4)
    dup = b.struct("dup", 8, [("a", u32, 0), ("a", u32, 32)])
    past = b.struct("past", 4, [("a", u32, 0), ("b", u32, 32)])
    unaligned = b.struct("unaligned", 8, [("a", u32, 4)])
    fwd_like = b.ptr(0)
    types = b.parse()
    for type_id, message in ((dup, "two members are named 'a'"), (past, "ends past the end"),
                             (unaligned, "not byte-aligned")):
        with pytest.raises(BtfError, match=message):
            bv.type_codec(types, type_id)
    assert bv.type_codec(types, fwd_like) == bv.Int(8, 64)


def test_huge_or_deep_types_are_refused():
    b = BtfBuilder()
    u8 = b.int("unsigned char", 1)
    big = b.array(b.array(u8, 1 << 12), 1 << 12)
    deep = u8
    for _level in range(70):
        deep = b.struct("", 1, [("x", deep, 0)])
    types = b.parse()
    with pytest.raises(BtfError, match="more than"):
        bv.type_codec(types, big)
    with pytest.raises(BtfError, match="nest deeper"):
        bv.type_codec(types, deep)


def test_shared_types_are_built_once():
    b = BtfBuilder()
    t = b.int("unsigned char", 1)
    for _level in range(40):  # each level holds the one below twice: 2**40 leaves if built naively
        t = b.struct("", 2, [("a", t, 0), ("b", t, 0)], union=True)
    with pytest.raises(BtfError, match="more than"):
        bv.type_codec(b.parse(), t)
