"""The test fixtures themselves work against the kernel (bpffs dir, namespaces, veth)."""

import subprocess


def test_pin_dir_is_on_bpffs(pin_dir):
    (pin_dir / "sub").mkdir()
    assert (pin_dir / "sub").is_dir()


def test_netns_pair_pings(netns_pair):
    r = netns_pair.run(netns_pair.a, "ping", "-c", "1", "-W", "2", netns_pair.ip_b, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert netns_pair.ifindex(netns_pair.a, netns_pair.if_a) > 0
    netns_list = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True).stdout
    assert netns_list.count(netns_pair.a[:12]) >= 1
