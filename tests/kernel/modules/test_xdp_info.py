"""whistler.xdp.xdp_info against the kernel: the seed's C twin loaded, wired and attached by the modules,
then read back and compared with bpftool's and iproute2's view."""

from __future__ import annotations

import subprocess

from tests.kernel.modules.bpftool_view import bpftool, program_words, xdp_hook


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
            "ifindex": netns_pair.ifindex(netns_pair.a, netns_pair.if_a), "netns": netns_pair.a, "mode": "generic",
            "prog_id": dispatcher["id"], "attached": {"generic": dispatcher["id"]},
            "attached_names": {"generic": "xdp_dispatch"}, "prog_name": "xdp_dispatch", "tag": dispatcher["tag"]}}
        assert xdp_hook(netns_pair.a, netns_pair.if_a) == {"generic": dispatcher["id"]}
        assert set(info["programs"]) == {"xdp_dispatch", "tcp_handler", "udp_handler"}
        assert info["programs"]["xdp_dispatch"]["tag"] == dispatcher["tag"]
        assert info["programs"]["xdp_dispatch"]["type"] == "xdp"
        # The count says which count it is: the kernel's translated instructions, as bpftool's xlated size.
        assert info["programs"]["xdp_dispatch"]["insns"] == {"translated": dispatcher["bytes_xlated"] // 8}
        assert info["programs"]["xdp_dispatch"]["map_names"] == [
            bpftool("map", "show", "id", str(map_id))["name"] for map_id in dispatcher["map_ids"]]
        assert info["maps"]["proto_stats"]["entries"] == {"0": 0, "1": 0, "2": 7}
        tcp_id = bpftool("prog", "show", "pinned", str(xdp / "tcp_handler"))["id"]
        assert info["maps"]["jt"]["type"] == "prog_array"
        assert info["maps"]["jt"]["entries"] == {"6": tcp_id}
        assert info["maps"]["jt"]["slots"] == {"6": {"id": tcp_id, "name": "tcp_handler",
                                                     "pins": [str(xdp / "tcp_handler")]}}
        assert "slots" not in info["maps"]["proto_stats"]
        jt_id, stats_id = (bpftool("map", "show", "pinned", str(xdp / "maps" / m))["id"] for m in ("jt", "proto_stats"))
        assert info["summary"] == [
            f"{netns_pair.if_a}: {program_words(xdp / 'xdp_dispatch')} in generic mode",
            *[f"program {program_words(xdp / name)}: xdp, "
              f"{info['programs'][name]['insns']['translated']} instructions as translated by the kernel, "
              f"uses {', '.join(info['programs'][name]['map_names'])}, pinned at {xdp / name}"
              for name in info["programs"]],
            f"map jt (prog_array, id {jt_id}): 1 of 256 slots filled",
            f"jt slot 6: tcp_handler (id {tcp_id}), pinned at {xdp / 'tcp_handler'}",
            f"map proto_stats (array, id {stats_id}): 0=0, 1=0, 2=7"]
        assert "ansible_facts" not in info

        named = run_module("xdp_info", {"netns": netns_pair.a, "interfaces": ["lo"], "map_contents": False})
        assert named["interfaces"]["lo"]["prog_id"] == 0 and named["programs"] == {} and named["maps"] == {}
        missing = run_module("xdp_info", {"netns": netns_pair.a, "interfaces": ["nosuch0"]})
        assert missing.get("failed") is True and "nosuch0" in missing["msg"]
        outside = run_module("xdp_info", {"pin_path": "/tmp"})
        assert outside.get("failed") is True and "bpffs" in outside["msg"]
    finally:
        run_module("xdp_attach", {"interface": netns_pair.if_a, "netns": netns_pair.a,
                                  "program": str(xdp / "xdp_dispatch"), "state": "absent"})


def test_reports_several_namespaces_and_pin_paths_as_facts(netns_pair, pin_dir, clang_object, run_module):
    first, second = pin_dir / "xdp", pin_dir / "canary"
    for pins in (first, second):
        assert not run_module("xdp_load", {"object": str(clang_object), "pin_path": str(pins)}).get("failed")
    attached = run_module("xdp_attach", {"interface": netns_pair.if_a, "netns": netns_pair.a,
                                         "program": str(second / "xdp_dispatch"), "mode": "generic"})
    assert not attached.get("failed"), attached
    try:
        both = [netns_pair.a, netns_pair.b]
        info = run_module("xdp_info", {"netns": both, "pin_path": [str(first), str(second)], "facts": True})
        assert not info.get("failed"), info
        assert list(info["interfaces"]) == [f"{netns_pair.a}/{netns_pair.if_a}"]
        hook = info["interfaces"][f"{netns_pair.a}/{netns_pair.if_a}"]
        assert (hook["netns"], hook["prog_id"], hook["prog_name"]) == (netns_pair.a, attached["prog_id"], "xdp_dispatch")
        # Two rollouts pin the same names: keyed by pin path, nothing is lost.
        assert sorted(info["programs"]) == sorted(str(pins / name) for pins in (first, second)
                                                  for name in ("xdp_dispatch", "tcp_handler", "udp_handler"))
        assert sorted(info["maps"]) == sorted(str(pins / "maps" / name) for pins in (first, second)
                                              for name in ("jt", "proto_stats"))
        assert info["summary"][0] == (f"{netns_pair.a}/{netns_pair.if_a}: "
                                      f"{program_words(second / 'xdp_dispatch')} in generic mode")
        assert info["ansible_facts"] == {"whistler_xdp": {key: info[key] for key in
                                                          ("interfaces", "programs", "maps", "summary")}}

        named = run_module("xdp_info", {"netns": both, "interfaces": [netns_pair.if_a, netns_pair.if_b]})
        assert sorted(named["interfaces"]) == sorted([f"{netns_pair.a}/{netns_pair.if_a}",
                                                      f"{netns_pair.b}/{netns_pair.if_b}"])
        assert named["interfaces"][f"{netns_pair.b}/{netns_pair.if_b}"]["prog_id"] == 0
        assert f"{netns_pair.b}/{netns_pair.if_b}: no XDP program" in named["summary"]
        nowhere = run_module("xdp_info", {"netns": both, "interfaces": ["nosuch0"]})
        assert nowhere.get("failed") is True and "nosuch0" in nowhere["msg"] and netns_pair.b in nowhere["msg"]
    finally:
        run_module("xdp_attach", {"interface": netns_pair.if_a, "netns": netns_pair.a,
                                  "program": str(second / "xdp_dispatch"), "state": "absent"})
