"""Fixtures for whistler.xdp.xdp_dispatcher against the kernel.

- ``run_module`` (imported from tests/kernel/modules, so a fixture here too) runs the module's ``main()`` in this process;
- ``xdp_hosts`` / ``add_interface`` (from tests/kernel/playbooks) make namespaced hosts with veth pairs;
- ``objects``: ``objects(variant) -> Path``, the role's bundled dispatcher compiled with our compiler, as it
  is (``"v1"``), with the TCP handler counting twice (``"v2"``: one handler changed), with the UDP handler
  returning XDP_DROP (``"drop_udp"``), or with an extra instruction in the dispatcher (``"v3"``);
- ``dispatcher_args(host, obj, **options)``: the module's options for a host's interfaces;
- ``pinned_state(host)``: pins with ids/tags/slots, hooks and counter values, to compare byte for byte.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.kernel import traffic
from tests.kernel.modules.conftest import run_module  # noqa: F401  # pylint: disable=unused-import
from tests.kernel.playbooks.checkreal import host_state
from tests.kernel.playbooks.conftest import (  # noqa: F401  # pylint: disable=unused-import
    add_interface,
    xdp_hosts,
)

REPO = Path(__file__).resolve().parents[3]
SOURCE = REPO / "roles" / "tail_call_dispatch" / "files" / "tail-call-dispatch.lisp"
TCP_COUNT = "(incf (getmap proto-stats +stat-tcp+))"
UDP_BODY = "(incf (getmap proto-stats +stat-udp+))\n  XDP_PASS)"
DISPATCH_GUARD = "(when (> (+ data 34) data-end)"

VARIANTS = {
    "v1": lambda text: text,
    "v2": lambda text: text.replace(TCP_COUNT, TCP_COUNT + " " + TCP_COUNT),
    "v3": lambda text: text.replace(DISPATCH_GUARD, "(when (> (+ data 38) data-end)"),
    "drop_udp": lambda text: text.replace(UDP_BODY, "(incf (getmap proto-stats +stat-udp+))\n  XDP_DROP)"),
}


@pytest.fixture(scope="session")
def objects(tmp_path_factory):
    import compiler

    out = tmp_path_factory.mktemp("dispatcher-objects")
    text = SOURCE.read_text()
    made = {}

    def make(variant: str) -> Path:
        if variant not in made:
            source = VARIANTS[variant](text)
            assert variant == "v1" or source != text, f"variant {variant} changed nothing"
            path = out / f"{variant}.bpf.o"
            path.write_bytes(compiler.compile_source(source, f"{variant}.lisp").elf)
            made[variant] = path
        return made[variant]

    return make


def dispatcher_args(host, obj, interfaces=None, **options):
    names = host.interfaces if interfaces is None else interfaces
    args = dict(object=str(obj) if obj else None, pin_path=host.pin_path, dispatcher="xdp_dispatch", jump_table="jt",
                handlers={"6": "tcp_handler", "17": "udp_handler"},
                interfaces=[{"name": i, "netns": host.netns, "mode": "generic"} for i in names])
    args.update(options)
    return {k: v for k, v in args.items() if v is not None}


def counters(host) -> dict:
    """{key: value} of the shared proto_stats counters (empty when not pinned)."""
    path = Path(host.pin_path) / "maps" / "proto_stats"
    return traffic.counters(str(path)) if path.exists() else {}


def pinned_state(host) -> dict:
    """Everything a failed or check-mode run must leave exactly as it was: pins (kind, id, tag, slots),
    hooks, files, and the counters' values."""
    return dict(host_state(host), counters=counters(host))


def bump_counters(host, values) -> None:
    """Write ``values`` ({key: u64}) into the shared counters, so a test can see they survive."""
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map

    with Map.from_pin(str(Path(host.pin_path) / "maps" / "proto_stats")) as stats:
        for key, value in values.items():
            stats.update(key, struct.pack("<Q", value))


def version_1_rollout(run, host, obj, via_link=False):
    """Roll ``obj`` out the way version 1 of the collection did: xdp_load, xdp_prog_array, xdp_attach."""
    pin = host.pin_path
    steps = [("xdp_load", {"object": str(obj), "pin_path": pin}),
             ("xdp_prog_array", {"map": f"{pin}/maps/jt", "entries": {"6": f"{pin}/tcp_handler", "17": f"{pin}/udp_handler"},
                                 "exclusive": True})]
    steps += [("xdp_attach", {"interface": name, "netns": host.netns, "program": f"{pin}/xdp_dispatch", "mode": "generic",
                              "via_link": via_link}) for name in host.interfaces]
    for module, args in steps:
        result = run(module, args)
        assert not result.get("failed"), (module, result.get("msg"))
