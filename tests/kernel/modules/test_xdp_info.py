"""whistler.xdp.xdp_info against the kernel: the seed's C twin loaded, wired and attached by the modules,
then read back and compared with bpftool's and iproute2's view."""

from __future__ import annotations

import subprocess

from tests.kernel.modules.bpftool_view import bpftool, xdp_hook


def test_reports_hooks_pins_and_decoded_maps(netns_pair, pin_dir, clang_object, run_module):
    xdp = pin_dir / "xdp"
    assert not run_module("xdp_load", {"object": str(clang_object), "pin_path": str(xdp)}).get("failed")
    assert not run_module("xdp_prog_array", {"map": str(xdp / "maps" / "jt"),
                                             "entries": {"6": str(xdp / "tcp_handler")}}).get("failed")
    attached = run_module("xdp_attach", {"interface": netns_pair.if_a, "netns": netns_pair.a,
                                         "program": str(xdp / "xdp_dispatch"), "mode": "generic"})
    assert not attached.get("failed"), attached
    stats = xdp / "maps" / "proto_stats"
    subprocess.run(["bpftool", "map", "update", "pinned", str(stats), "key", "2", "0", "0", "0",
                    "value", "7", "0", "0", "0", "0", "0", "0", "0"], check=True)
    try:
        info = run_module("xdp_info", {"netns": netns_pair.a, "pin_path": str(xdp)}, check=True)
        assert info["changed"] is False
        dispatcher = bpftool("prog", "show", "pinned", str(xdp / "xdp_dispatch"))
        assert info["interfaces"] == {netns_pair.if_a: {
            "ifindex": netns_pair.ifindex(netns_pair.a, netns_pair.if_a), "mode": "generic",
            "prog_id": dispatcher["id"], "attached": {"generic": dispatcher["id"]},
            "prog_name": "xdp_dispatch", "tag": dispatcher["tag"]}}
        assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": dispatcher["id"]}
        assert set(info["programs"]) == {"xdp_dispatch", "tcp_handler", "udp_handler"}
        assert info["programs"]["xdp_dispatch"]["tag"] == dispatcher["tag"]
        assert info["programs"]["xdp_dispatch"]["type"] == "xdp"
        assert info["maps"]["proto_stats"]["entries"] == {"0": 0, "1": 0, "2": 7}
        tcp_id = bpftool("prog", "show", "pinned", str(xdp / "tcp_handler"))["id"]
        assert info["maps"]["jt"]["type"] == "prog_array"
        assert info["maps"]["jt"]["entries"] == {"6": tcp_id}
        assert info["maps"]["jt"]["slots"] == {"6": {"id": tcp_id, "name": "tcp_handler",
                                                     "pins": [str(xdp / "tcp_handler")]}}
        assert "slots" not in info["maps"]["proto_stats"]

        named = run_module("xdp_info", {"netns": netns_pair.a, "interfaces": ["lo"], "map_contents": False})
        assert named["interfaces"]["lo"]["prog_id"] == 0 and named["programs"] == {} and named["maps"] == {}
        missing = run_module("xdp_info", {"netns": netns_pair.a, "interfaces": ["nosuch0"]})
        assert missing.get("failed") is True and "nosuch0" in missing["msg"]
        outside = run_module("xdp_info", {"pin_path": "/tmp"})
        assert outside.get("failed") is True and "bpffs" in outside["msg"]
    finally:
        run_module("xdp_attach", {"interface": netns_pair.if_a, "netns": netns_pair.a,
                                  "program": str(xdp / "xdp_dispatch"), "state": "absent"})
