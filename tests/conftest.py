"""Shared pytest fixtures.

- Makes the repository importable as ``ansible_collections.whistler.xdp`` (a symlink under
  ``tests/output``), so loader code is tested through the same import path modules use.
- Gates kernel tests: everything under ``tests/kernel`` needs root, bpffs and BPF. Where that
  is missing the tests skip with the reason, unless ``WHISTLER_REQUIRE_KERNEL=1`` (CI), in
  which case they fail.
- ``pin_dir``: a fresh bpffs directory per test, removed afterwards even on failure.
- ``netns_pair``: two network namespaces joined by a veth pair, deleted afterwards.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import compiler.ir

# Every compile in the tests checks the IR after each stage and optimisation pass, so that the one
# that breaks an invariant is named (a plain compile checks it once, after the passes).
compiler.ir.VERIFY_EACH_STAGE = True

REPO = Path(__file__).resolve().parent.parent
BPFFS = Path("/sys/fs/bpf")
BPF_FS_MAGIC = 0xCAFE4A11
# Names this pytest run creates carry SESSION, so the leak check at the end looks at its own pins and
# namespaces only, never at those of another run on the same machine (a developer's, or CI's own
# integration targets, which use whistler-test-it-*).
SESSION = uuid.uuid4().hex[:6]
TEST_PIN_PREFIX = f"whistler-test-{SESSION}"
TEST_NETNS_PREFIX = f"wxt-{SESSION}"
SEED = REPO / "examples" / "seed" / "xdp-tail-call-dispatch.lisp"


def _install_collection_path() -> None:
    root = REPO / "tests" / "output" / ".collection"
    link = root / "ansible_collections" / "whistler" / "xdp"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(REPO, target_is_directory=True)
        except FileExistsError:
            pass
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


try:
    importlib.import_module("ansible_collections.whistler.xdp")  # already on the path, e.g. ansible-test
except ImportError:
    _install_collection_path()


# -- kernel gating -------------------------------------------------------------------------

def _statfs_magic(path: Path) -> int | None:
    class StatFs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 120)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = StatFs()
    if libc.statfs(str(path).encode(), ctypes.byref(buf)) != 0:
        return None
    return buf.f_type & 0xFFFFFFFF


def ensure_bpffs() -> str | None:
    """Mount bpffs at /sys/fs/bpf if needed. Returns None when usable, else the reason."""
    if os.geteuid() != 0:
        return "kernel tests need root (CAP_BPF, CAP_NET_ADMIN)"
    if _statfs_magic(BPFFS) != BPF_FS_MAGIC:
        BPFFS.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], check=False, capture_output=True, text=True)
        if r.returncode != 0 or _statfs_magic(BPFFS) != BPF_FS_MAGIC:
            return f"cannot mount bpffs at {BPFFS}: {r.stderr.strip()}"
    return None


_KERNEL_REASON: list[str | None] = []


def kernel_unavailable_reason() -> str | None:
    if not _KERNEL_REASON:
        _KERNEL_REASON.append(ensure_bpffs())
    return _KERNEL_REASON[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/kernel" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.kernel)


def pytest_runtest_setup(item):
    if item.get_closest_marker("kernel") is None:
        return
    reason = kernel_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("WHISTLER_REQUIRE_KERNEL") == "1":
        pytest.fail(f"kernel required (WHISTLER_REQUIRE_KERNEL=1) but unavailable: {reason}")
    pytest.skip(reason)


def pytest_sessionfinish(session, exitstatus):
    """Fail loudly if a test of this run left pins or namespaces behind."""
    if os.environ.get("CI") != "true":
        return  # developers may run several suites at once; only CI owns the whole machine
    leftovers = []
    if BPFFS.is_dir():
        leftovers += [str(p) for p in BPFFS.glob(TEST_PIN_PREFIX + "*")]
    netns = Path("/run/netns")
    if netns.is_dir():
        leftovers += [f"netns {p.name}" for p in netns.glob(TEST_NETNS_PREFIX + "*")]
    if leftovers:
        for path in leftovers:
            if path.startswith("netns "):
                subprocess.run(["ip", "netns", "del", path[6:]], check=False, capture_output=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
        session.exitstatus = 1
        print(f"\nERROR: tests leaked kernel state (now removed): {leftovers}", file=sys.stderr)


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def pin_dir():
    """A fresh directory on bpffs; everything pinned under it is removed afterwards."""
    reason = kernel_unavailable_reason()
    if reason:
        pytest.skip(reason)
    path = BPFFS / f"{TEST_PIN_PREFIX}{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class NetnsPair:
    """Two namespaces joined by a veth pair: ``a``/``if_a``/``ip_a`` and ``b``/``if_b``/``ip_b``."""

    a: str
    b: str
    if_a: str
    if_b: str
    ip_a: str
    ip_b: str

    @property
    def path_a(self) -> str:
        return f"/run/netns/{self.a}"

    @property
    def path_b(self) -> str:
        return f"/run/netns/{self.b}"

    def run(self, ns: str, *argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        """Run a command inside namespace ``ns`` (``nsenter --net``: keeps /sys/fs/bpf visible)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{ns}", *argv],
                              check=check, capture_output=True, text=True, **kw)

    def ifindex(self, ns: str, ifname: str) -> int:
        # /sys/class/net shows the host's namespace under nsenter --net; ask netlink instead.
        out = self.run(ns, "ip", "-j", "link", "show", "dev", ifname).stdout
        return int(json.loads(out)[0]["ifindex"])


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@pytest.fixture
def netns_pair():
    """Create ns a + ns b, veth if_a (in a, 10.x.y.1/24) <-> if_b (in b, 10.x.y.2/24), both up."""
    reason = kernel_unavailable_reason()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:8]
    a, b = f"{TEST_NETNS_PREFIX}{tag}-a", f"{TEST_NETNS_PREFIX}{tag}-b"
    octet = int(tag[:2], 16) % 250 + 1
    pair = NetnsPair(a, b, "veth0", "veth1", f"10.251.{octet}.1", f"10.251.{octet}.2")
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("link", "add", f"wx{tag}a", "type", "veth", "peer", "name", f"wx{tag}b")
        _ip("link", "set", f"wx{tag}a", "netns", a)
        _ip("link", "set", f"wx{tag}b", "netns", b)
        for ns, old, new, addr in ((a, f"wx{tag}a", pair.if_a, pair.ip_a), (b, f"wx{tag}b", pair.if_b, pair.ip_b)):
            _ip("-n", ns, "link", "set", old, "name", new)
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", new)
            _ip("-n", ns, "link", "set", new, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", f"wx{tag}a"], check=False, capture_output=True)


def seed_source() -> str:
    """The seed's Whistler program (``examples/seed``), as the book prints it."""
    return SEED.read_text()


@pytest.fixture
def seed_program() -> str:
    if not SEED.exists():
        pytest.fail(f"seed file missing: {SEED}")
    return seed_source()
