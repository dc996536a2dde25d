"""Real traffic from one network namespace to another, counted exactly, and counters read back.

In: a namespace name (of a ``NetnsPair``), a destination address and port, a packet count.
Out: the number of packets the sender really put on the wire (its own accounting), and the
values of a pinned array map of u64 counters.

Each packet is accounted for by construction:
- UDP: one ``sendto()`` of a small datagram is one IPv4 packet.
- TCP: one ``connect()`` to a port nobody listens on is exactly one SYN; the peer answers with a
  RST at once, so it is never retransmitted (a timeout would mean it was, and fails the sender).
The sender runs as a Python process entered into the namespace with ``nsenter --net`` (which,
unlike ``ip netns exec``, keeps /sys/fs/bpf visible). ``warm_up`` resolves ARP first so that no
packet waits in the neighbour queue while a test counts.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time

from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map

_SENDER = r"""
import socket, sys, time
proto, dst, port, count, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sent = 0
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        s.sendto(b"whistler-test-16", (dst, port))
        sent += 1
        if burst and sent % burst == 0:
            time.sleep(0.001)  # stay below the veth ring size: a drop there is not the hook's doing
else:
    for _ in range(count):
        c = socket.socket()
        c.settimeout(0.9)  # below the 1 s SYN retransmission timer
        try:
            c.connect((dst, port))
        except ConnectionRefusedError:
            sent += 1
        else:
            sys.exit("port %d is open: a TCP connect would send more than one packet" % port)
        finally:
            c.close()
print(sent)
"""


def _argv(ns: str, proto: str, dst: str, port: int, count: int, burst: int) -> list:
    return ["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", _SENDER,
            proto, dst, str(port), str(count), str(burst)]


def send(ns: str, proto: str, dst: str, port: int, count: int, burst: int = 64) -> int:
    """Send ``count`` UDP datagrams or TCP SYNs from namespace ``ns``; returns the number sent."""
    r = subprocess.run(_argv(ns, proto, dst, port, count, burst), check=False, capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"sender in {ns} failed: {r.stderr}{r.stdout}")
    return int(r.stdout)


class Background:
    """A sender running while the test does something else; ``finish()`` returns what it sent."""

    def __init__(self, ns: str, proto: str, dst: str, port: int, count: int, burst: int = 64):
        self._proc = subprocess.Popen(_argv(ns, proto, dst, port, count, burst),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def running(self) -> bool:
        return self._proc.poll() is None

    def finish(self, timeout: float = 120) -> int:
        out, err = self._proc.communicate(timeout=timeout)
        if self._proc.returncode != 0:
            raise AssertionError(f"background sender failed: {err}{out}")
        return int(out)

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


def warm_up(ns: str, dst: str) -> None:
    """Resolve the neighbour entry for ``dst`` before anything is counted."""
    r = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "ping", "-c", "1", "-W", "2", dst],
                       check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"ping {dst} from {ns} failed: {r.stdout}{r.stderr}")


def counters(map_pin: str) -> dict:
    """{key: u64 value} of every slot of the array map pinned at ``map_pin``."""
    with Map.from_pin(map_pin) as counts:
        return {key: struct.unpack("<Q", value)[0] for key, value in counts.items().items()}


def settle(read, expected, timeout: float = 5.0, quiet: float = 0.3):
    """Poll ``read()`` until it equals ``expected`` (packets are handled in softirq after the
    sender returns), then keep reading for ``quiet`` seconds so an over-count shows too."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    end = time.monotonic() + quiet
    while value == expected and time.monotonic() < end:
        time.sleep(0.05)
        value = read()
    return value
