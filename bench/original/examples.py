"""The original's ``examples/``: which are XDP/TC programs, and whether each behaves as its comments say.

In: a checkout's ``examples/*.lisp``. Out: ``example_programs`` (one ``Program`` per file,
excluded when it has no ``defprog`` or a program that is not ``:xdp``/``:tc``) and
``run_example``, which builds one and runs its check from ``EXAMPLE_CHECKS``: crafted frames
through BPF_PROG_TEST_RUN, return values, map contents and ring buffer records compared with
what the example's comments describe.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from tests.kernel import frames as fr
from tests.kernel.harness import BpftoolError, loaded

from .programs import Kernel, Program, object_path


def defprog_types(text: str) -> list[str]:
    types = []
    for m in re.finditer(r"\(defprog\s+[^\s()]+\s*\(([^)]*)\)", text, re.I):
        t = re.search(r":type\s+:([a-z0-9-]+)", m.group(1), re.I)
        types.append(t.group(1).lower() if t else "xdp")
    return types


def example_programs(root: Path) -> list[Program]:
    out = []
    for path in sorted((root / "examples").glob("*.lisp")):
        text = path.read_text()
        origin = f"examples/{path.name}"
        types = defprog_types(text)
        prog = Program(origin, text, types[0] if types else "xdp")
        if not types:
            prog.excluded = "no defprog (a loader or session script)"
        elif set(types) - {"xdp", "tc"}:
            prog.excluded = "program types " + ", ".join(sorted(set(types))) + " (not XDP/TC)"
        out.append(prog)
    return out


def _frame(proto=fr.PROTO_TCP, src="10.0.0.1", dst="10.0.0.2", **l4) -> bytes:
    payload = fr.tcp(**l4) if proto == fr.PROTO_TCP else fr.udp(**l4) if proto == fr.PROTO_UDP else fr.icmp()
    return fr.pad(fr.eth(fr.ETH_IPV4, fr.ipv4(proto, payload, src=src, dst=dst)))


ARP = fr.pad(fr.eth(fr.ETH_ARP, fr.arp()))
XDP_DROP, XDP_PASS, TC_ACT_OK, TC_ACT_SHOT = 1, 2, 0, 2


def _check_count_xdp(obj):
    results = [obj.run("count_packets", f) for f in (_frame(), ARP, _frame(fr.PROTO_UDP))]
    return results == [XDP_PASS] * 3 and obj.map("pkt_count") == {0: 3}


def _check_drop_port(obj):
    results = [obj.run("drop_port", f) for f in (_frame(dport=9999), _frame(dport=80), _frame(fr.PROTO_UDP, dport=9999))]
    return results == [XDP_DROP, XDP_PASS, XDP_PASS] and obj.map("drop_count") == {0: 1}


def _check_synflood(obj):
    syn, ack = _frame(src="10.1.1.1", flags=0x02), _frame(src="10.1.1.1", flags=0x12)
    first = [obj.run("synflood", syn) for _run in range(3)] + [obj.run("synflood", ack)]
    counter = obj.map("syn_counter")
    obj.set("syn_counter", int.from_bytes(bytes([10, 1, 1, 1]), "little"), 101)  # over the threshold (100)
    dropped = obj.run("synflood", syn)
    key = int.from_bytes(bytes([10, 1, 1, 1]), "little")
    return (first == [XDP_PASS] * 4 and counter == {key: 3} and dropped == XDP_DROP
            and obj.map("syn_stats") == {0: 4, 1: 1, 2: 1})


def _check_ratelimit(obj):
    a = int.from_bytes(bytes([10, 2, 2, 2]), "little")
    runs = [obj.run("ratelimit", _frame(src="10.2.2.2")) for _run in range(3)]
    counted = obj.map("ip_counter")
    obj.set("ip_counter", a, 1001)  # over the threshold (1000)
    dropped = obj.run("ratelimit", _frame(src="10.2.2.2"))
    arp = obj.run("ratelimit", ARP)
    return runs == [XDP_PASS] * 3 and counted == {a: 3} and dropped == XDP_DROP and arp == XDP_PASS \
        and obj.map("stats") == {0: 4, 1: 1}


def _check_tc_classifier(obj):
    obj.set("blocked_ports", 8080, 1)
    runs = [obj.run("tc_classify", f) for f in (_frame(dport=22), _frame(fr.PROTO_UDP, dport=53),
                                                _frame(dport=443), _frame(dport=8080), _frame(dport=12345),
                                                _frame(fr.PROTO_ICMP), ARP)]
    return runs == [TC_ACT_OK, TC_ACT_OK, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_OK, TC_ACT_OK, TC_ACT_OK] and \
        obj.map("tc_stats") == {0: 5, 1: 2, 2: 1, 3: 1}


def _check_multi_prog(obj):
    obj.set_slot("jt", 0, "ipv4_handler")
    runs = [obj.run("xdp_main", f) for f in (_frame(), _frame(fr.PROTO_UDP), ARP)]
    return runs == [XDP_PASS] * 3 and obj.map("pkt_stats") == {0: 3, 1: 2, 2: 1, 3: 0}


def _check_tail_call_dispatch(obj):
    runs = [obj.run("xdp_dispatch", f) for f in (_frame(), _frame(fr.PROTO_UDP), ARP)]
    return runs == [XDP_PASS] * 3 and obj.map("proto_stats") == {0: 2, 1: 0, 2: 0}


def _check_percpu_counter(obj):
    # four loop iterations each see data_end > data: the program returns the count, 4
    return obj.run("count_with_bounds_check", _frame()) == 4


def _check_ringbuf_events(obj):
    syn = _frame(src="192.168.1.10", dst="10.20.30.40", dport=443, flags=0x02)
    runs = [obj.run("event_logger", f) for f in (syn, _frame(flags=0x12), _frame(fr.PROTO_UDP), ARP)]
    records = obj.records("events")
    expected = struct.pack("<4s4sHBB", bytes([192, 168, 1, 10]), bytes([10, 20, 30, 40]), 443, 6, 0)
    return runs == [XDP_PASS] * 4 and records == [expected] and obj.map("rb_stats") == {0: 1, 1: 0}


EXAMPLE_CHECKS = {
    "count-xdp.lisp": _check_count_xdp, "drop-port.lisp": _check_drop_port,
    "synflood-xdp.lisp": _check_synflood, "ratelimit-xdp.lisp": _check_ratelimit,
    "tc-classifier.lisp": _check_tc_classifier, "multi-prog.lisp": _check_multi_prog,
    "tail-call-dispatch.lisp": _check_tail_call_dispatch, "percpu-counter.lisp": _check_percpu_counter,
    "ringbuf-events.lisp": _check_ringbuf_events,
}


def run_example(kernel: Kernel, prog: Program) -> None:
    kernel.build(prog)
    if prog.excluded or not prog.loaded:
        return
    check = EXAMPLE_CHECKS.get(prog.origin.split("/")[-1])
    if check is None:
        prog.fail("no behaviour check for this example in EXAMPLE_CHECKS")
        return
    try:
        with loaded(object_path(prog), kernel.pins, prog_type=prog.prog_type) as obj:
            prog.behaved = bool(check(obj))
    except (BpftoolError, KeyError, OSError) as err:
        prog.fail(f"behaviour check failed: {str(err).splitlines()[0]}")
        return
    if not prog.behaved:
        prog.fail("behaviour check: results differ from what the example describes")
