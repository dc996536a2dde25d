"""Map, Program and pin objects against the kernel: create/reuse/compatibility, typed dumps, per-CPU
values, atomic pin replacement, and clear errors for bad keys, pin names and pin directories."""

from __future__ import annotations

import errno
import os

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile, pins
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map, ProgArray, possible_cpus
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.objfile import MapSpec
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program


@pytest.fixture
def dispatch_spec(build):
    return objfile.read_object(build("tail_call_dispatch.c"))


def test_map_with_btf_dumps_typed_values(dispatch_spec):
    btf_fd = sc.btf_load(dispatch_spec.btf)
    try:
        with Map.create(dispatch_spec.map("proto_stats"), btf_fd) as stats:
            assert stats.info.btf_value_type_id == dispatch_spec.map("proto_stats").btf_value_type_id
            stats.update(1, 41)
            stats.update(2, (2**64 - 1).to_bytes(8, "little"))
            assert stats.typed_items() == {0: 0, 1: 41, 2: 2**64 - 1}
            assert stats.compatible(dispatch_spec.map("proto_stats")) == []
            assert stats.compatible(MapSpec("proto_stats", 2, 4, 4, 3)) == ["value_size is 8, the object wants 4"]
    finally:
        os.close(btf_fd)


def test_prog_array_refuses_btf_but_still_loads(dispatch_spec):
    btf_fd = sc.btf_load(dispatch_spec.btf)
    try:
        with Map.create(dispatch_spec.map("jt"), btf_fd) as jt:
            assert isinstance(jt, ProgArray) and jt.info.btf_id == 0
            assert jt.entries() == {} and jt.owner_prog_type is None
    finally:
        os.close(btf_fd)


def test_percpu_values_have_one_entry_per_possible_cpu():
    with Map.create(MapSpec("pcpu", sc.MAP_TYPE_PERCPU_ARRAY, 4, 8, 2)) as m:
        assert m.typed_items() == {0: [0] * possible_cpus(), 1: [0] * possible_cpus()}


def test_integer_values_sum_per_cpu_counters():
    cpus = possible_cpus()
    with Map.create(MapSpec("pcpu", sc.MAP_TYPE_PERCPU_ARRAY, 4, 4, 2)) as m:
        # 4-byte values, each CPU's slot rounded up to 8 bytes
        m.update(1, b"".join((cpu + 1).to_bytes(4, "little") + bytes(4) for cpu in range(cpus)))
        assert m.integer(1) == cpus * (cpus + 1) // 2 and m.integer(0) == 0
    with Map.create(MapSpec("plain", sc.MAP_TYPE_ARRAY, 4, 8, 2)) as m, \
            Map.create(MapSpec("hash", sc.MAP_TYPE_HASH, 4, 8, 2)) as h:
        m.update(1, 2**40 + 7)
        assert m.integer(1) == 2**40 + 7
        assert h.integer(3) == 0  # absent


def test_bad_keys_are_clear_errors():
    with Map.create(MapSpec("small", sc.MAP_TYPE_ARRAY, 4, 8, 2)) as m:
        with pytest.raises(BpfError, match="key 4294967296 does not fit 4 bytes"):
            m.lookup(2**32)
        with pytest.raises(BpfError, match="key is 2 bytes, map keys are 4"):
            m.lookup(b"\0\0")
        with pytest.raises(BpfError, match="E2BIG"):
            m.update(5, 1)


def test_from_id_and_pin_round_trip(dispatch_spec, pin_dir):
    with Map.create(dispatch_spec.map("jt")) as jt:
        jt.pin(str(pin_dir / "jt"))
        with Map.from_id(jt.id) as again, Map.from_pin(str(pin_dir / "jt")) as pinned:
            assert again.id == pinned.id == jt.id
    assert pins.list_pins(str(pin_dir)) == {"jt": "map"}
    with pytest.raises(BpfError, match="not a BPF program"):
        Program.from_pin(str(pin_dir / "jt"))


def test_pin_errors_name_path_and_reason(dispatch_spec, pin_dir):
    with Map.create(dispatch_spec.map("jt")) as jt:
        with pytest.raises(BpfError, match=r"'\.'"):
            pins.pin(jt.fd, str(pin_dir / "jt.v2"))
        pins.pin(jt.fd, str(pin_dir / "jt"))
        with pytest.raises(BpfError) as caught:
            pins.pin(jt.fd, str(pin_dir / "jt"))
        assert caught.value.errno == errno.EEXIST and str(pin_dir / "jt") in str(caught.value)


def test_replace_pin_swaps_atomically_and_leaves_no_temporary(dispatch_spec, pin_dir):
    path = str(pin_dir / "stats")
    with Map.create(dispatch_spec.map("proto_stats")) as old, Map.create(dispatch_spec.map("proto_stats")) as new:
        pins.pin(old.fd, path)
        pins.replace(new.fd, path)
        with Map.from_pin(path) as now:
            assert now.id == new.id
    assert os.listdir(pin_dir) == ["stats"]


def test_program_load_test_run_and_info(dispatch_spec, frame):
    with Map.create(dispatch_spec.map("jt")) as jt, Map.create(dispatch_spec.map("proto_stats")) as stats:
        with Program.load(dispatch_spec.program("udp_handler"), {"jt": jt.fd, "proto_stats": stats.fd}) as p:
            info = p.info()
            assert (info.type, info.name, info.map_ids) == (sc.PROG_TYPE_XDP, "udp_handler", [stats.id])
            assert info.tag in dispatch_spec.program("udp_handler").tags()
            assert p.test_run(frame(17), repeat=3).retval == 2
        assert stats.typed_items() == {0: 0, 1: 0, 2: 3}


def test_a_pin_where_a_pin_directory_should_be_is_named(dispatch_spec, pin_dir):
    with Map.create(dispatch_spec.map("jt")) as jt:
        jt.pin(str(pin_dir / "app"))
    for pin_path, map_pin_path, at in ((pin_dir / "app", None, "there"),
                                       (pin_dir / "app" / "sub", None, f"at {pin_dir / 'app'}"),
                                       (pin_dir / "ok", pin_dir / "app", "there")):
        with pytest.raises(BpfError) as caught:
            load.plan_load(dispatch_spec, str(pin_path), map_pin_path and str(map_pin_path))
        assert caught.value.errno == errno.ENOTDIR
        assert str(caught.value).endswith(f"a map is pinned {at}, not a directory")
    assert sorted(os.listdir(pin_dir)) == ["app"]
