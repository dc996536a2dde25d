"""xdp_map on a Whistler program's struct maps: our compiler's BTF (a ``defstruct`` key and value,
``:key-type``/``:value-type``) is enough for the module to validate entries field by field, write
them, and for the program to act on them.

In: a Whistler port filter compiled here, loaded by xdp_load. Out: pass/fail. The bytes the
module must write are derived from the struct layout by hand (``struct.pack``), the verdicts
from what the program's text says.
"""

from __future__ import annotations

import struct

from tests.kernel.frames import PROTO_TCP, PROTO_UDP, eth, ipv4, tcp, udp
from tests.kernel.harness import XDP_DROP, XDP_PASS, LoadedObject, compile_text

SOURCE = """
(defstruct port-key (port u16) (proto u8) (pad u8))
(defstruct port-rule (action u32) (hits u32) (label (array u8 8)))
(defmap rules :type :hash :key-type port-key :value-type port-rule :max-entries 64)

;; Drop TCP/UDP packets whose destination port has a rule with action 1; count rule hits.
(defprog port-filter ()
  (with-packet (data end :min-len 38)
    (when (= (eth-type data) +ethertype-ipv4+)
      (let* ((ip (+ data 14))
             (key (make-port-key :port (tcp-dst-port (+ ip 20)) :proto (ipv4-protocol ip)))
             (rule (getmap rules key)))
        (when rule
          (incf (port-rule-hits rule))
          (when (= (port-rule-action rule) 1)
            (return XDP_DROP))))))
  XDP_PASS)
"""


def frame(dport: int, proto: int = PROTO_TCP) -> bytes:
    return eth(0x0800, ipv4(proto, tcp(dport=dport) if proto == PROTO_TCP else udp(dport=dport)))


def test_xdp_map_writes_struct_entries_a_whistler_program_reads(pin_dir, run_module, tmp_path):
    obj_path = tmp_path / "port-filter.bpf.o"
    obj_path.write_bytes(compile_text(SOURCE, "port-filter.lisp"))
    loaded = run_module("xdp_load", {"object": str(obj_path), "pin_path": str(pin_dir / "xdp")})
    assert loaded.get("changed") is True, loaded
    xdp = LoadedObject(pin_dir / "xdp", tmp_path)
    rules = str(xdp.pins / "maps" / "rules")
    ssh = {"key": {"port": 22, "proto": PROTO_TCP, "pad": 0},
           "value": {"action": 1, "hits": 0, "label": [115, 115, 104, 0, 0, 0, 0, 0]}}
    dns = {"key": {"port": 53, "proto": PROTO_UDP, "pad": 0}, "value": {"action": 0, "hits": 0, "label": [0] * 8}}

    bad = run_module("xdp_map", {"map": rules, "entries": [{**dns, "value": {**dns["value"], "action": 1 << 32}}]})
    assert bad.get("failed") and "entries[0].value.action" in bad["msg"], bad

    done = run_module("xdp_map", {"map": rules, "entries": [ssh, dns]})
    assert done["changed"] is True, done
    raw = {bytes(int(b, 16) for b in e["key"]): bytes(int(b, 16) for b in e["value"]) for e in xdp.dump("rules")}
    assert raw == {struct.pack("<HBB", 22, PROTO_TCP, 0): struct.pack("<II8s", 1, 0, b"ssh"),
                   struct.pack("<HBB", 53, PROTO_UDP, 0): struct.pack("<II8s", 0, 0, b"")}

    assert [xdp.run("port_filter", f) for f in (frame(22), frame(53, PROTO_UDP), frame(80))] == \
        [XDP_DROP, XDP_PASS, XDP_PASS]
    hits = {e["formatted"]["key"]["port"]: e["formatted"]["value"]["hits"] for e in xdp.dump("rules")}
    assert hits == {22: 1, 53: 1}
    again = run_module("xdp_map", {"map": rules, "entries": [ssh, dns]})
    assert again["changed"] is True  # the program counted hits, so the entries differ again
