"""whistler.xdp.xdp_map against the kernel: tests/testdata/c/map_values.c (clang) loaded by xdp_load.

The map contents are checked with bpftool's raw dump (bytes written out here from the C layout,
independent of the collection's codec), and the filter's verdicts with ``bpftool prog run``
(BPF_PROG_TEST_RUN): a block list, per-port configuration and an LPM trie of networks, wired by
xdp_map, change what the handler returns.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import possible_cpus

from tests.kernel.frames import PROTO_TCP, PROTO_UDP, eth, ipv4, tcp, udp
from tests.kernel.harness import XDP_DROP, XDP_PASS, LoadedObject, bpftool
from tests.kernel.modules.bpftool_view import bpftool as bpftool_json
from tests.testdata.build import build_c

SSH_FROM_7 = {"addr": "10.0.0.7", "port": 22, "proto": PROTO_TCP}
SSH_FROM_7_READ = {"addr": 0x0A000007, "port": 22, "proto": PROTO_TCP}
DNS_FROM_9 = {"addr": "10.0.0.9", "port": 53, "proto": PROTO_UDP}
HTTP_CONFIG = {"verdict": "VERDICT_DROP", "rate_limit": 1000, "enabled": 1, "log": 0, "level": 5, "name": "http",
               "allowed": [1, 2, 3]}


@pytest.fixture(scope="module")
def map_values_object(tmp_path_factory):
    return build_c("map_values.c", tmp_path_factory.mktemp("map-values"))


@pytest.fixture
def xdp(pin_dir, map_values_object, run_module, tmp_path):
    loaded = run_module("xdp_load", {"object": str(map_values_object), "pin_path": str(pin_dir / "xdp")})
    assert loaded.get("changed") is True, loaded
    return LoadedObject(pin_dir / "xdp", tmp_path)


def pin(xdp, name):
    return str(xdp.pins / "maps" / name)


def raw_dump(xdp, name) -> dict:
    """{key bytes: value bytes} as bpftool dumps them (no BTF involved)."""
    out = {}
    for entry in xdp.dump(name):
        key = bytes(int(b, 16) for b in entry["key"])
        if "values" in entry:
            out[key] = [bytes(int(b, 16) for b in v["value"]) for v in entry["values"]]
        else:
            out[key] = bytes(int(b, 16) for b in entry["value"])
    return out


def flow_key(addr: str, port: int, proto: int) -> bytes:
    return socket.inet_aton(addr) + struct.pack("!H", port) + bytes([proto, 0])


def frame(src: str, dport: int, proto: int = PROTO_TCP) -> bytes:
    l4 = tcp(dport=dport) if proto == PROTO_TCP else udp(dport=dport)
    return eth(0x0800, ipv4(proto, l4, src=src))


def test_block_list_changes_the_verdict_and_is_idempotent(xdp, run_module):
    ssh = frame("10.0.0.7", 22)
    assert xdp.run("xdp_filter", ssh) == XDP_PASS
    args = {"map": pin(xdp, "blocklist"), "entries": [{"key": SSH_FROM_7, "value": 1}, {"key": DNS_FROM_9, "value": 1}]}

    first = run_module("xdp_map", args, diff=True)
    assert first["changed"] is True, first
    assert raw_dump(xdp, "blocklist") == {flow_key("10.0.0.7", 22, 6): struct.pack("<I", 1),
                                          flow_key("10.0.0.9", 53, 17): struct.pack("<I", 1)}
    assert first["added"] == [SSH_FROM_7_READ, {"addr": 0x0A000009, "port": 53, "proto": PROTO_UDP}]
    assert first["diff"]["before"] == {'{"addr":167772167,"port":22,"proto":6}': None,
                                       '{"addr":167772169,"port":53,"proto":17}': None}
    assert xdp.run("xdp_filter", ssh) == XDP_DROP
    assert xdp.run("xdp_filter", frame("10.0.0.9", 53, PROTO_UDP)) == XDP_DROP
    assert xdp.run("xdp_filter", frame("10.0.0.9", 53)) == XDP_PASS  # TCP/53 is not listed
    assert xdp.run("xdp_filter", frame("10.0.0.8", 22)) == XDP_PASS

    second = run_module("xdp_map", args, diff=True)
    assert second["changed"] is False
    assert second["diff"]["before"] == second["diff"]["after"]
    assert (second["added"], second["updated"], second["removed"]) == ([], [], [])

    # Keep only DNS: the SSH entry goes, so SSH passes again.
    only_dns = run_module("xdp_map", {"map": pin(xdp, "blocklist"), "entries": [{"key": DNS_FROM_9, "value": 1}],
                                      "exclusive": True})
    assert only_dns["changed"] is True and only_dns["removed"] == [SSH_FROM_7_READ]
    assert list(raw_dump(xdp, "blocklist")) == [flow_key("10.0.0.9", 53, 17)]
    assert xdp.run("xdp_filter", ssh) == XDP_PASS


def test_check_mode_predicts_the_run_and_writes_nothing(xdp, run_module):
    run_module("xdp_map", {"map": pin(xdp, "port_config"), "entries": {"22": dict(HTTP_CONFIG, name="ssh")}})
    before = raw_dump(xdp, "port_config")
    args = {"map": pin(xdp, "port_config"), "entries": {"80": HTTP_CONFIG}, "exclusive": True}
    check = run_module("xdp_map", args, check=True, diff=True)
    assert check["changed"] is True
    assert raw_dump(xdp, "port_config") == before
    real = run_module("xdp_map", args, diff=True)
    for key in ("changed", "diff", "added", "updated", "removed", "entries"):
        assert real[key] == check[key], key
    assert real["diff"]["before"]["80"]["enabled"] == 0 and real["diff"]["after"]["80"] == HTTP_CONFIG
    assert real["diff"]["before"]["22"]["name"] == "ssh" and real["diff"]["after"]["22"]["name"] == ""
    assert real["updated"] == [80] and real["removed"] == [22]


def test_per_port_config_sets_the_verdict(xdp, run_module):
    http = frame("10.0.0.1", 80)
    assert xdp.run("xdp_filter", http) == XDP_PASS
    result = run_module("xdp_map", {"map": pin(xdp, "port_config"), "entries": {"80": HTTP_CONFIG}})
    assert result["changed"] is True, result
    # struct port_config: verdict u32, rate_limit u16, enabled:1 log:1 level:3 (one byte), char name[9],
    # u32 allowed[3] (at byte 16)
    expected = (struct.pack("<IH", 1, 1000) + bytes([1 | 5 << 2]) + b"http".ljust(9, b"\0")
                + struct.pack("<III", 1, 2, 3))
    assert raw_dump(xdp, "port_config")[struct.pack("<I", 80)] == expected
    formatted = {e["formatted"]["key"]: e["formatted"]["value"]
                 for e in bpftool_json("map", "dump", "pinned", pin(xdp, "port_config"))}
    assert formatted[80]["verdict"] == "VERDICT_DROP" and formatted[80]["name"] == "http"  # bpftool agrees
    assert xdp.run("xdp_filter", http) == XDP_DROP
    disabled = run_module("xdp_map", {"map": pin(xdp, "port_config"), "entries": {"80": dict(HTTP_CONFIG, enabled=0)}})
    assert disabled["changed"] is True and disabled["updated"] == [80]
    assert xdp.run("xdp_filter", http) == XDP_PASS


def test_lpm_networks_are_keys_and_host_bits_are_refused(xdp, run_module):
    ten = frame("10.1.2.3", 443)
    args = {"map": pin(xdp, "nets"), "entries": {"10.0.0.0/8": "VERDICT_DROP", "192.168.1.0/24": "VERDICT_PASS"}}
    result = run_module("xdp_map", args, diff=True)
    assert result["changed"] is True
    assert raw_dump(xdp, "nets") == {struct.pack("<I", 8) + bytes([10, 0, 0, 0]): struct.pack("<I", 1),
                                     struct.pack("<I", 24) + bytes([192, 168, 1, 0]): struct.pack("<I", 2)}
    assert result["diff"]["after"] == {"10.0.0.0/8": "VERDICT_DROP", "192.168.1.0/24": "VERDICT_PASS"}
    assert xdp.run("xdp_filter", ten) == XDP_DROP
    assert xdp.run("xdp_filter", frame("192.168.1.5", 443)) == XDP_PASS
    assert run_module("xdp_map", args)["changed"] is False

    bad = run_module("xdp_map", {"map": pin(xdp, "nets"), "entries": {"10.0.0.1/8": 1}})
    assert bad.get("failed") is True
    assert bad["msg"] == f"map {pin(xdp, 'nets')}: entries['10.0.0.1/8'].key: 10.0.0.1/8 has host bits set"

    gone = run_module("xdp_map", {"map": pin(xdp, "nets"), "entries": {"10.0.0.0/8": None}, "state": "absent"})
    assert gone["changed"] is True and gone["removed"] == ["10.0.0.0/8"]
    assert xdp.run("xdp_filter", ten) == XDP_PASS
    again = run_module("xdp_map", {"map": pin(xdp, "nets"), "entries": {"10.0.0.0/8": None}, "state": "absent"})
    assert again["changed"] is False

    six = run_module("xdp_map", {"map": pin(xdp, "nets6"), "entries": {"2001:db8::/32": 7}, "contents": True})
    assert six["contents"] == [{"key": "2001:db8::/32", "value": 7}]
    assert raw_dump(xdp, "nets6") == {struct.pack("<I", 32) + bytes.fromhex("20010db8") + bytes(12):
                                      struct.pack("<I", 7)}


def test_bad_entries_fail_naming_entry_and_field_and_write_nothing(xdp, run_module):
    run_module("xdp_map", {"map": pin(xdp, "blocklist"), "entries": [{"key": SSH_FROM_7, "value": 1}]})
    before = raw_dump(xdp, "blocklist")
    result = run_module("xdp_map", {"map": pin(xdp, "blocklist"), "entries": [
        {"key": DNS_FROM_9, "value": 1},
        {"key": dict(SSH_FROM_7, port=70000), "value": 1},
        {"key": {"addr": "10.0.0.300", "port": 1, "proto": 6}, "value": 1},
        {"key": {"addr": "10.0.0.1", "port": 1}, "value": 2**32},
    ], "exclusive": True})
    assert result.get("failed") is True
    assert result["msg"] == (
        f"map {pin(xdp, 'blocklist')}: entries[1].key.port: 70000 is greater than the maximum of 65535; "
        "entries[2].key.addr: '10.0.0.300' is not an IPv4 address; "
        "entries[3].key: 'proto' is a required property; "
        "entries[3].value: 4294967296 is greater than the maximum of 4294967295")
    assert raw_dump(xdp, "blocklist") == before


def test_per_cpu_maps_are_read_and_not_written(xdp, run_module):
    xdp.run("xdp_filter", frame("10.0.0.1", 1000))
    view = run_module("xdp_map", {"map": pin(xdp, "stats"), "contents": True})
    assert view["changed"] is False
    cpus = possible_cpus()
    assert [len(e["value"]) for e in view["contents"]] == [cpus, cpus]
    assert sum(view["contents"][0]["value"]) == 1 and sum(view["contents"][1]["value"]) == 0
    refused = run_module("xdp_map", {"map": pin(xdp, "stats"), "entries": {"0": 0}})
    assert refused.get("failed") is True and "percpu_array maps are read-only" in refused["msg"]


def test_refused_map_kinds(xdp, run_module, pin_dir):
    jt = run_module("xdp_map", {"map": pin(xdp, "jt"), "entries": {"0": 1}})
    assert jt.get("failed") is True and "xdp_prog_array" in jt["msg"]
    ring = sc.map_create(27, 0, 0, 4096, name="ring")
    try:
        sc.obj_pin(ring, str(pin_dir / "ring"))
    finally:
        os.close(ring)
    refused = run_module("xdp_map", {"map": str(pin_dir / "ring"), "contents": True})
    assert refused.get("failed") is True and "ring buffer" in refused["msg"]
    missing = run_module("xdp_map", {"map": pin(xdp, "no_such_map"), "entries": {"0": 1}})
    assert missing.get("failed") is True and "nothing is pinned there" in missing["msg"]
    outside = run_module("xdp_map", {"map": "/tmp/not-a-pin", "entries": {"0": 1}})
    assert outside.get("failed") is True and outside["msg"].startswith("map /tmp/not-a-pin: ")


def test_map_without_btf_takes_integers_and_hex(pin_dir, run_module):
    fd = sc.map_create(sc.MAP_TYPE_HASH, 4, 6, 4, name="plain")
    try:
        sc.obj_pin(fd, str(pin_dir / "plain"))
    finally:
        os.close(fd)
    result = run_module("xdp_map", {"map": str(pin_dir / "plain"), "entries": {"0x10": "0a0b0c0d0e0f"}, "contents": True})
    assert result["changed"] is True, result
    assert result["contents"] == [{"key": 16, "value": "0a0b0c0d0e0f"}]
    dump = bpftool_json("map", "dump", "pinned", str(pin_dir / "plain"))
    assert [(e["key"], e["value"]) for e in dump] == [(["0x10", "0x00", "0x00", "0x00"],
                                                       ["0x0a", "0x0b", "0x0c", "0x0d", "0x0e", "0x0f"])]


def test_xdp_info_shows_struct_keys_and_fields_by_name(xdp, run_module):
    run_module("xdp_map", {"map": pin(xdp, "blocklist"), "entries": [{"key": SSH_FROM_7, "value": 1}]})
    run_module("xdp_map", {"map": pin(xdp, "nets"), "entries": {"10.0.0.0/8": "VERDICT_DROP"}})
    run_module("xdp_map", {"map": pin(xdp, "port_config"), "entries": {"80": HTTP_CONFIG}})
    info = run_module("xdp_info", {"pin_path": str(xdp.pins)})
    maps = info["maps"]
    assert maps["blocklist"]["entries"] == {'{"addr":167772167,"port":22,"proto":6}': 1}
    assert maps["nets"]["entries"] == {"10.0.0.0/8": "VERDICT_DROP"}
    assert maps["port_config"]["entries"]["80"] == HTTP_CONFIG
    bpftool("map", "delete", "pinned", pin(xdp, "nets"), "key", "8", "0", "0", "0", "10", "0", "0", "0")
