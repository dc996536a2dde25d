"""Map contents through the map's BTF as the kernel holds it (Map.codec reads it back with
BTF_GET_FD_BY_ID + OBJ_GET_INFO_BY_FD), compared with bpftool's BTF-formatted dump; and applying
a plan that the kernel refuses halfway puts back what was already written."""

from __future__ import annotations

import errno
import os
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.mapentries import (
    apply_map_entries,
    plan_map_entries,
)
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map

from tests.kernel.harness import bpftool, bpftool_json


@pytest.fixture
def maps(build, pin_dir):
    spec = objfile.read_object(build("map_values.c"))
    load.apply_load(load.plan_load(spec, str(pin_dir / "app")))
    return pin_dir / "app" / "maps"


def hex_args(data: bytes):
    return [f"0x{b:02x}" for b in data]


def update(path, key: bytes, value: bytes):
    bpftool("map", "update", "pinned", str(path), "key", *hex_args(key), "value", *hex_args(value))


def formatted(path) -> list:
    return [(e["formatted"]["key"], e["formatted"]["value"]) for e in bpftool_json("map", "dump", "pinned", str(path))]


def test_struct_values_read_like_bpftool_shows_them(maps):
    value = (struct.pack("<IH", 2, 7) + bytes([0b11101]) + b"edge\0\0\0\0\0" + struct.pack("<III", 4, 5, 6))
    update(maps / "port_config", struct.pack("<I", 3), value)
    update(maps / "recent", struct.pack("<I", 0x0100000A), struct.pack("<QQ", 2, 128))
    with Map.from_pin(str(maps / "port_config")) as config:
        mine = config.typed_items()[3]
    assert mine == {"verdict": "VERDICT_PASS", "rate_limit": 7, "enabled": 1, "log": 0, "level": 7,
                    "name": "edge", "allowed": [4, 5, 6]}
    theirs = dict(formatted(maps / "port_config"))[3]
    # bpftool prints bitfields as hex text; everything else reads the same.
    assert {k: int(v, 16) if k in ("enabled", "log", "level") else v for k, v in theirs.items()} == mine
    with Map.from_pin(str(maps / "recent")) as recent:
        assert recent.typed_entries() == [{"key": 0x0100000A, "value": {"packets": 2, "bytes": 128}}]
    assert formatted(maps / "recent") == [(0x0100000A, {"packets": 2, "bytes": 128})]


def test_big_endian_and_lpm_keys_read_in_network_order(maps):
    update(maps / "blocklist", bytes([192, 0, 2, 1, 0x01, 0xBB, 6, 0]), struct.pack("<I", 1))
    update(maps / "nets", struct.pack("<I", 12) + bytes([172, 16, 0, 0]), struct.pack("<I", 1))
    with Map.from_pin(str(maps / "blocklist")) as blocklist:
        assert blocklist.typed_entries() == [{"key": {"addr": 0xC0000201, "port": 443, "proto": 6}, "value": 1}]
    # bpftool knows no byte order: it shows the same bytes as little-endian numbers.
    assert formatted(maps / "blocklist") == [({"addr": 0x010200C0, "port": 0xBB01, "proto": 6}, 1)]
    with Map.from_pin(str(maps / "nets")) as nets:
        assert nets.typed_items() == {"172.16.0.0/12": "VERDICT_DROP"}
    assert formatted(maps / "nets") == [({"prefixlen": 12, "data": [172, 16, 0, 0]}, "VERDICT_DROP")]


def test_a_refused_write_puts_back_what_was_written(maps):
    blocklist = str(maps / "blocklist")
    first = bytes([10, 0, 0, 1, 0, 22, 6, 0])
    update(maps / "blocklist", first, struct.pack("<I", 1))
    plan = plan_map_entries(blocklist, [
        {"key": {"addr": "10.0.0.1", "port": 22, "proto": 6}, "value": 2},   # updated in place first
        {"key": {"addr": "10.0.0.2", "port": 22, "proto": 6}, "value": 1},   # then inserted
    ])
    assert [w.label for w in plan.writes][0] == '{"addr":167772161,"port":22,"proto":6}'
    for n in range(15):  # someone fills the map (16 entries) between plan and apply
        update(maps / "blocklist", bytes([10, 9, 9, n, 0, 80, 6, 0]), struct.pack("<I", 1))
    with pytest.raises(BpfError) as caught:
        apply_map_entries(plan)
    assert caught.value.errno == errno.E2BIG
    assert str(caught.value).startswith(f'update map entry {blocklist} key {{"addr":167772162,"port":22,"proto":6}}')
    with Map.from_pin(blocklist) as bpf_map:
        assert bpf_map.lookup(first) == struct.pack("<I", 1)  # the in-place update was rolled back
        assert len(bpf_map.raw_items()) == 16


def test_a_map_replaced_since_the_plan_is_not_written(maps, pin_dir):
    plan = plan_map_entries(str(maps / "recent"), {"1": {"packets": 1, "bytes": 1}})
    bpftool("map", "create", str(pin_dir / "other"), "type", "lru_hash", "key", "4", "value", "16", "entries", "4",
            "name", "other")
    os.rename(str(pin_dir / "other"), str(maps / "recent"))
    with pytest.raises(ValueError, match="a different map was pinned there since the plan"):
        apply_map_entries(plan)
    with Map.from_pin(str(maps / "recent")) as recent:
        assert recent.raw_items() == {}
