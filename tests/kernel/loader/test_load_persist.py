"""Must show 2: jump-table entries survive the loading process exiting (the table is pinned) and
dispatch works afterwards, measured with BPF_PROG_TEST_RUN and the proto_stats counters."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program

TCP, UDP, ICMP = 6, 17, 1

LOADER = textwrap.dedent("""
    import sys
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program
    obj, pin = sys.argv[1], sys.argv[2]
    load.apply_load(load.plan_load(objfile.read_object(obj), pin))
    with Map.from_pin(pin + "/maps/jt") as jt:
        for slot, name in ((6, "tcp_handler"), (17, "udp_handler")):
            with Program.from_pin(pin + "/" + name) as prog:
                jt.set(slot, prog.fd)
""")


def test_jump_table_survives_loader_exit(dispatch_object, pin_dir, frame):
    app = pin_dir / "app"
    env_path = ":".join(sys.path)
    subprocess.run([sys.executable, "-c", LOADER, str(dispatch_object), str(app)], check=True,
                   env={"PYTHONPATH": env_path}, capture_output=True, text=True)

    with Program.from_pin(str(app / "tcp_handler")) as tcp, Program.from_pin(str(app / "udp_handler")) as udp:
        expected = {TCP: tcp.id, UDP: udp.id}
    with Map.from_pin(str(app / "maps" / "jt")) as jt:
        assert jt.entries() == expected

    with Program.from_pin(str(app / "xdp_dispatch")) as dispatch:
        assert dispatch.test_run(frame(TCP), repeat=7).retval == 2  # XDP_PASS from the handler
        dispatch.test_run(frame(UDP), repeat=5)
        dispatch.test_run(frame(ICMP), repeat=3)          # empty slot: falls through
        dispatch.test_run(frame(TCP, b"\x86\xdd"), repeat=4)  # not IPv4: not counted
    with Map.from_pin(str(app / "maps" / "proto_stats")) as stats:
        assert stats.typed_items() == {0: 7 + 5 + 3, 1: 7, 2: 5}
