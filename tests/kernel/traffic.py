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

For fleets, one process serves many namespaces: a socket stays in the namespace it was created in, so
``Stream`` (UDP at a steady rate to many hosts, each from its own peer namespace, until stopped) and
``Receiver`` (counts the datagrams each host's stack delivers) create one socket per host, switching
namespaces with setns(2) only while they create them. Both report per host.
"""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
from typing import List, Sequence, Tuple

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


# Sockets in other namespaces: setns(2) for the creation only, then back (netns fds by path).
_IN_NETNS = r"""
import ctypes, json, os, select, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
home = os.open("/proc/self/ns/net", os.O_RDONLY)

def in_netns(ns, make):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)
        return make()
    finally:
        libc.setns(home, 0x40000000)
        os.close(fd)

stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
targets = json.loads(sys.argv[2])
"""

_STREAM = _IN_NETNS + r"""
rate = float(sys.argv[1])
socks = []
for ns, dst, port in targets:
    # Not connected: an ICMP port unreachable from a host without a receiver must not fail the next send.
    socks.append((in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)), (dst, port)))
sent = [0] * len(socks)
print("ready", flush=True)
start = time.monotonic()
rounds = 0
while not stop:
    for i, (s, to) in enumerate(socks):
        s.sendto(b"whistler-fleet-16", to)
        sent[i] += 1
    rounds += 1
    delay = start + rounds / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(json.dumps(sent), flush=True)
"""

_RECEIVER = _IN_NETNS + r"""
socks = []
for ns, addr, port in targets:
    def make():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: a busy machine must not drop here
        s.bind((addr, port))
        s.setblocking(False)
        return s
    socks.append(in_netns(ns, make))
got = [0] * len(socks)
index = {s.fileno(): i for i, s in enumerate(socks)}
poller = select.epoll()
for s in socks:
    poller.register(s.fileno(), select.EPOLLIN)
print("ready", flush=True)
while True:
    for fd, _ in poller.poll(0.1):
        s = socks[index[fd]]
        while True:
            try:
                s.recv(2048)
            except BlockingIOError:
                break
            got[index[fd]] += 1
    if stop:
        if not poller.poll(0.3):  # drained
            break
print(json.dumps(got), flush=True)
"""


class _PerHost:
    """One helper process over many namespaces; ``finish()`` stops it and returns its per-target counts."""

    def __init__(self, script: str, first: str, targets: Sequence[Tuple[str, str, int]]):
        self._proc = subprocess.Popen([sys.executable, "-c", script, first, json.dumps([list(t) for t in targets])],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()
        if line.strip() != "ready":
            self.kill()
            raise AssertionError(f"traffic helper did not start: {line}{self._proc.stderr.read()}")

    def finish(self, timeout: float = 60) -> List[int]:
        self._proc.send_signal(signal.SIGTERM)
        out, err = self._proc.communicate(timeout=timeout)
        if self._proc.returncode != 0:
            raise AssertionError(f"traffic helper failed: {err}{out}")
        return json.loads(out.strip().splitlines()[-1])

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


class Stream(_PerHost):
    """UDP datagrams to every ``(peer netns, host address, port)`` target, ``rate`` rounds a second (one
    datagram to each target per round), until ``finish()``, which returns how many each target was sent."""

    def __init__(self, targets: Sequence[Tuple[str, str, int]], rate: float = 100):
        super().__init__(_STREAM, str(rate), targets)


class Receiver(_PerHost):
    """Counts the UDP datagrams delivered to a socket bound at each ``(host netns, address, port)``."""

    def __init__(self, targets: Sequence[Tuple[str, str, int]]):
        super().__init__(_RECEIVER, "", targets)


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
