"""Options are untrusted input too: jump-table keys are plain integers, interface names are what the
kernel would accept (nothing netlink could truncate), a netns is a name under /run/netns or a path to a
network namespace file, each refused with a message that says which check failed."""

from __future__ import annotations

import os

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import netns
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import UnsafeNameError
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.netlink import check_interface
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import ProgArrayError, parse_slot
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize("key, slot", [(6, 6), ("6", 6), ("0", 0), ("007", 7), ("0x11", 17), ("0XfF", 255),
                                       ("4294967295", 0xFFFFFFFF), ("0xffffffff", 0xFFFFFFFF)])
def test_slot_keys_that_are_plain_integers(key, slot):
    assert parse_slot(key) == slot


@pytest.mark.parametrize("key", ["1_0", "\u0663", "\uff13", "\U0001d7e5", " 3", "3 ", "3\n", "+3", "-1", "0x",
                                 "0x1_0", "0b11", "0o7", "1e3", "3.0", "", "tcp", True, None, 3.0, "9" * 5000])
def test_other_slot_keys_are_refused(key):
    with pytest.raises(ProgArrayError, match="is not a slot number"):
        parse_slot(key, "entries")


@pytest.mark.parametrize("key", [-1, 1 << 32, "4294967296", "0x100000000"])
def test_slot_keys_out_of_u32_range(key):
    with pytest.raises(ProgArrayError, match="out of range|is not a slot number"):
        parse_slot(key)


@given(st.text())
def test_a_slot_key_is_ascii_digits_or_hex(text):
    try:
        slot = parse_slot(text)
    except ProgArrayError:
        return
    assert text.isascii() and (text.isdigit() or text[:2].lower() == "0x")
    assert slot == int(text, 0 if text[:2].lower() == "0x" else 10)


@pytest.mark.parametrize("name", ["veth0", "eth1", "a" * 15, "wx12345678a", "lo", 4])
def test_interface_names_the_kernel_accepts(name):
    assert check_interface(name) == name


@pytest.mark.parametrize("name, reason", [
    ("veth0\0x", "contains a NUL character"),
    ("veth0\x01", "contains the control character U+0001"),
    ("veth\t0", "contains the control character U+0009"),
    ("veth 0", "contains a space"),
    ("a" * 16, "longer than 15 bytes"),
    ("ééééééé\u00e9x", "longer than 15 bytes"),
    ("a/b", "contains '/' or ':'"),
    ("eth0:1", "contains '/' or ':'"),
    ("..", "is not an interface name"),
    ("", "is empty"),
    (0, "a positive number"),
    (True, "is not a name or an index"),
])
def test_interface_names_refused(name, reason):
    with pytest.raises(UnsafeNameError, match="^interface ") as caught:
        check_interface(name)
    assert reason in str(caught.value)


@pytest.mark.parametrize("value, message", [
    ("/proc/self/status", "network namespace path '/proc/self/status': /proc/self/status is a file on procfs, "
                          "not a namespace file (nsfs)"),
    ("/proc/self/ns/mnt", "/proc/self/ns/mnt is a mount namespace, not a network namespace"),
    ("/proc/self/ns/uts", "is a UTS namespace, not a network namespace"),
    ("/dev/null", "/dev/null is a device or socket, not a namespace file"),
    ("/proc/self", "is a directory, not a namespace file"),
    ("/nonexistent/netns", "network namespace path '/nonexistent/netns': No such file or directory"),
    ("wa-no-such-netns", "network namespace 'wa-no-such-netns' does not exist (there is no "
                         "/run/netns/wa-no-such-netns"),
    ("..", "network namespace '..': the name is not a namespace name"),
    ("blue\0", "the name contains a NUL character"),
    ("/run/netns/blue\x01", "network namespace path '/run/netns/blue\\x01': contains the control character"),
])
def test_a_netns_that_is_not_one_is_refused_saying_why(value, message):
    with pytest.raises(netns.NetnsError) as caught:
        netns.netns_path(value)
    assert message in caught.value.strerror


def test_a_fifo_given_as_netns_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "ns"
    os.mkfifo(fifo)
    with pytest.raises(netns.NetnsError, match="is a FIFO, not a namespace file"):
        netns.netns_path(str(fifo))


def test_own_namespace_by_path():
    assert netns.netns_path("/proc/self/ns/net") == "/proc/self/ns/net"
    assert netns.netns_path(None) is None
