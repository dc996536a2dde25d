"""Fixtures for playbook scenarios against namespaced XDP hosts (see ``checkreal``).

- ``xdp_hosts(n, interfaces=1)``: ``n`` fresh ``XdpHost``s, each with its own pair of network
  namespaces, ``interfaces`` veth pairs (addresses 10.<x>.<y>.1/24 in the host, .2 in the peer), a
  pin directory under /sys/fs/bpf (not created) and a file directory. Everything is removed
  afterwards, also on failure: namespaces, pins, files.
- ``add_interface(host)``: one more veth pair for a host (the "added interface" scenario).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from tests.conftest import BPFFS, TEST_NETNS_PREFIX, TEST_PIN_PREFIX, kernel_unavailable_reason
from tests.kernel.playbooks.checkreal import XdpHost


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


class _Hosts:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.hosts = []
        self.subnets = set()

    def __call__(self, n: int, interfaces: int = 1):
        made = [self._host(interfaces) for _index in range(n)]
        return made

    def _subnet(self) -> str:
        while True:
            tag = uuid.uuid4().int
            subnet = f"10.{200 + tag % 50}.{(tag >> 8) % 250 + 1}"
            if subnet not in self.subnets:
                self.subnets.add(subnet)
                return subnet

    def _host(self, interfaces: int) -> XdpHost:
        tag = uuid.uuid4().hex[:8]
        host = XdpHost(name=f"h{tag}", netns=f"{TEST_NETNS_PREFIX}{tag}-h", peer_netns=f"{TEST_NETNS_PREFIX}{tag}-p",
                       interfaces=[], peers=[], addresses=[], pin_path=str(BPFFS / f"{TEST_PIN_PREFIX}{tag}"),
                       file_dir=self.tmp_path / f"h{tag}")
        self.hosts.append(host)
        host.file_dir.mkdir()
        _ip("netns", "add", host.netns)
        _ip("netns", "add", host.peer_netns)
        for ns in (host.netns, host.peer_netns):
            _ip("-n", ns, "link", "set", "lo", "up")
        for _iface in range(interfaces):
            self.add_interface(host)
        return host

    def add_interface(self, host: XdpHost) -> str:
        i = len(host.interfaces)
        ifname, peer = f"veth{2 * i}", f"veth{2 * i + 1}"
        subnet = self._subnet()
        _ip("-n", host.netns, "link", "add", ifname, "type", "veth", "peer", "name", peer, "netns", host.peer_netns)
        _ip("-n", host.netns, "addr", "add", f"{subnet}.1/24", "dev", ifname)
        _ip("-n", host.peer_netns, "addr", "add", f"{subnet}.2/24", "dev", peer)
        _ip("-n", host.netns, "link", "set", ifname, "up")
        _ip("-n", host.peer_netns, "link", "set", peer, "up")
        host.interfaces.append(ifname)
        host.peers.append(peer)
        host.addresses.append(f"{subnet}.1")
        return ifname

    def remove_all(self):
        for host in self.hosts:
            for ns in (host.netns, host.peer_netns):
                subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
            shutil.rmtree(host.pin_path, ignore_errors=True)
            shutil.rmtree(host.file_dir, ignore_errors=True)


@pytest.fixture
def xdp_hosts(tmp_path):
    reason = kernel_unavailable_reason()
    if reason:
        pytest.skip(reason)
    hosts = _Hosts(tmp_path)
    try:
        yield hosts
    finally:
        hosts.remove_all()


@pytest.fixture
def add_interface(xdp_hosts):
    return xdp_hosts.add_interface
