"""The bpftool oracle itself, checked on the clang build of the seed (bench/c): if these fail,
the conformance results mean nothing. In: bench/c/tail_call_dispatch.c. Out: pass/fail."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.kernel import frames
from tests.kernel.harness import XDP_PASS, BpftoolError, loaded

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def clang_object(tmp_path) -> Path:
    out = tmp_path / "tail_call_dispatch.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(REPO / "bench" / "c" / "tail_call_dispatch.c"), "-o", str(out)],
                   check=True, capture_output=True)
    return out


def test_harness_runs_clang_seed(clang_object, pin_dir):
    with loaded(clang_object, pin_dir) as obj:
        assert obj.programs == ["tcp_handler", "udp_handler", "xdp_dispatch"]
        assert obj.maps == ["jt", "proto_stats"]
        obj.set_slot("jt", 6, "tcp_handler")
        obj.set_slot("jt", 17, "udp_handler")
        assert obj.run("xdp_dispatch", frames.tcp_frame()) == XDP_PASS
        assert obj.run("xdp_dispatch", frames.udp_frame()) == XDP_PASS
        assert obj.run("xdp_dispatch", frames.icmp_frame()) == XDP_PASS
        assert obj.map("proto_stats") == {0: 3, 1: 1, 2: 1}
        assert obj.typed_dump("proto_stats") == {0: 3, 1: 1, 2: 1}
        obj.set("proto_stats", 2, 0x1122334455667788)
        assert obj.map("proto_stats")[2] == 0x1122334455667788
        pins = obj.pins
    assert not pins.exists()


def test_harness_reports_verifier_rejection(pin_dir, tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("xdp") int f(struct xdp_md *c) { return *(int *)(long)c->data; }\n'
                   'char L[] SEC("license") = "GPL";\n')
    obj = tmp_path / "bad.o"
    subprocess.run(["clang", "-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", str(bad),
                    "-o", str(obj)], check=True, capture_output=True)
    with pytest.raises(BpftoolError, match="invalid access to packet"):
        with loaded(obj, pin_dir):
            pass
    assert list(pin_dir.iterdir()) == []
