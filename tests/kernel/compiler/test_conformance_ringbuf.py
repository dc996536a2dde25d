"""Conformance: ring buffers and perf event output (reference §2.11), in the kernel.

Each program writes records; the test reads them back from the ring buffer's pages
(``tests/kernel/ringbuf.py``, independent of the compiler) and compares their bytes with what
the program wrote, built here with ``struct``. Reserve/submit, reserve/discard, a failed
reservation, ``ringbuf-output`` of stack memory and ``with-ringbuf`` (also in a TC program)
are covered; ``perf-event-output`` delivers a record to a real BPF-output perf event (read back
from its ring, ``tests/kernel/perf.py``) and returns the kernel's error codes for an empty slot
and an index past the array.
"""

from __future__ import annotations

import os
import struct

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc

from tests.kernel import frames as f
from tests.kernel.harness import XDP_PASS, loaded
from tests.kernel.perf import BpfOutputEvent

MAPS = """(defmap rb :type :ringbuf :max-entries 4096)
(defmap args :type :array :key-size 4 :value-size 8 :max-entries 4)
(defmap pea :type :perf-event-array :key-size 4 :value-size 4 :max-entries 2)
(defstruct rec (kind u8) (len u16) (stamp u32) (word u64))
"""
A = "(getmap args 0)"


def run(pin_dir, body: str, runs: int = 1, args: dict | None = None, options: str = "",
        frame: bytes = f.tcp_frame(), prog_type: str = "xdp") -> tuple[list[int], list[bytes]]:
    """Return values of ``runs`` runs of ``body``, and the records in ``rb`` afterwards."""
    with loaded(MAPS + f"(defprog conf ({options})\n  {body})\n", pin_dir, prog_type=prog_type) as obj:
        for key, val in (args or {}).items():
            obj.set("args", key, val)
        results = [obj.run("conf", frame) for _run in range(runs)]
        return results, obj.records("rb")


def rec(kind: int, length: int, stamp: int, word: int) -> bytes:
    return struct.pack("<BxHIQ", kind, length, stamp, word)


def test_with_ringbuf_submits_one_record_per_run(pin_dir):
    body = (f"(with-ringbuf (r rb (sizeof rec))\n"
            f"    (setf (rec-kind r) 7 (rec-len r) (+ {A} 1) (rec-stamp r) #xAABBCCDD (rec-word r) {A}))\n  XDP_PASS")
    results, records = run(pin_dir, body, runs=3, args={0: 0x1234})
    assert results == [XDP_PASS] * 3
    assert records == [rec(7, 0x1235, 0xAABBCCDD, 0x1234)] * 3


def test_reserve_submit_and_discard(pin_dir):
    body = ("(let ((p (ringbuf-reserve rb 16 0)))\n"
            f"    (when p (store u64 p 0 {A}) (store u64 p 8 2)\n"
            f"      (if (= {A} 1) (ringbuf-discard p 0) (ringbuf-submit p 0))))\n  XDP_PASS")
    assert run(pin_dir, body, args={0: 1})[1] == []
    assert run(pin_dir, body, args={0: 5})[1] == [struct.pack("<QQ", 5, 2)]


def test_reservation_larger_than_the_ring_fails(pin_dir):
    body = "(let ((p (ringbuf-reserve rb 8192))) (if p (progn (ringbuf-discard p) 1) 2))"
    assert run(pin_dir, body) == ([2], [])


def test_submit_and_discard_are_worth_zero(pin_dir):
    body = "(+ 40 (with-ringbuf (p rb 8) (store u64 p 0 9)) (let ((q (ringbuf-reserve rb 8))) (if q (ringbuf-discard q) 1)))"
    assert run(pin_dir, body) == ([40], [struct.pack("<Q", 9)])


def test_ringbuf_output_copies_stack_memory(pin_dir):
    body = (f"(let ((r (make-rec :kind 1 :word {A})))\n"
            "    (setf (rec-stamp r) 99)\n    (ringbuf-output rb r (sizeof rec) 0))")
    assert run(pin_dir, body, args={0: 0x55}) == ([0], [rec(1, 0, 99, 0x55)])


def test_records_keep_their_order(pin_dir):
    body = "(ringbuf-output rb (make-rec :kind 1) 16)\n  (ringbuf-output rb (make-rec :kind 2) 16)\n  (with-ringbuf (p rb 16 :flags 0) (memset p 0 3 16))\n  0"
    assert run(pin_dir, body)[1] == [rec(1, 0, 0, 0), rec(2, 0, 0, 0), bytes([3]) * 16]


def test_with_tc_packet_and_ringbuf_in_a_classifier(pin_dir):
    body = ("(with-tc-ipv4 (data end ip)\n"
            "    (with-ringbuf (r rb (sizeof rec)) (setf (rec-kind r) (ipv4-protocol ip) (rec-stamp r) (ipv4-src-addr ip))))\n"
            "  TC_ACT_SHOT")
    results, records = run(pin_dir, body, options=":type :tc", prog_type="tc",
                           frame=f.udp_frame(), runs=1)
    assert results == [2]
    assert records == [rec(17, 0, int.from_bytes(bytes([10, 0, 0, 1]), "little"), 0)]


@pytest.mark.parametrize("flags, errno", [(0, 2), (5, 7)], ids=["empty slot: ENOENT", "index past the array: E2BIG"])
def test_perf_event_output_reports_the_kernel_error(pin_dir, flags, errno):
    body = f"(perf-event-output (ctx-ptr) pea {flags} (make-rec :kind 1) (sizeof rec))"
    results, _records = run(pin_dir, body)
    assert results == [(-errno) & 0xFFFFFFFF]


def test_perf_event_output_reaches_the_event_of_the_current_cpu(pin_dir):
    """A real BPF-output perf event on CPU 0 in slot 0; the program runs pinned to CPU 0 and
    writes to the current CPU's slot (BPF_F_CURRENT_CPU)."""
    body = ("(let ((r (make-rec :kind 5 :len 300)))\n"
            f"    (setf (rec-word r) {A})\n"
            "    (perf-event-output (ctx-ptr) pea BPF_F_CURRENT_CPU r (sizeof rec)))")
    event = BpfOutputEvent(cpu=0)
    old_cpus = os.sched_getaffinity(0)
    try:
        with loaded(MAPS + f"(defprog conf ()\n  {body})\n", pin_dir) as obj:
            obj.set("args", 0, 0xC0FFEE)
            slot = sc.obj_get(str(obj.pins / "maps" / "pea"))
            prog = sc.obj_get(str(obj.pins / "conf"))
            try:
                sc.map_update_elem(slot, struct.pack("<I", 0), struct.pack("<I", event.fd))
                os.sched_setaffinity(0, {0})
                results = [sc.prog_test_run(prog, f.tcp_frame()).retval for _run in range(2)]
            finally:
                os.close(slot)
                os.close(prog)
        samples = event.samples()
    finally:
        os.sched_setaffinity(0, old_cpus)
        event.close()
    assert results == [0, 0]
    record = rec(5, 300, 0, 0xC0FFEE)
    assert [s[:len(record)] for s in samples] == [record, record]
