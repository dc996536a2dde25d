"""Fixtures for the loader's kernel tests: objects built in the session, frames, pinned-state snapshots.

- ``build``: ``build(name, *defines) -> Path`` compiles tests/testdata/c/<name> (or bench/c/<name>)
  with clang into a session temp directory (cached per name and defines).
- ``dispatch_objects``: {"clang": clang build of bench/c/tail_call_dispatch.c, "whistler": our compiled
  seed} as object paths.
- ``snapshot(dir)``: {relative pin path: (kind, kernel id)} of everything pinned under ``dir``, to
  assert that a failed operation changed nothing; ``frame(ip_proto)``: an IPv4 test frame.
- ``no_fd_leaks`` (autouse): every BPF fd a test or the loader opened is closed when the test ends,
  on error paths too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc

from tests.conftest import seed_source
from tests.testdata.build import build_c

ETH_IPV4 = b"\x08\x00"
ETH_IPV6 = b"\x86\xdd"


def _frame(ip_proto: int, ethertype: bytes = ETH_IPV4) -> bytes:
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, ip_proto, 0, 0]) + bytes([10, 0, 0, 1, 10, 0, 0, 2])
    return bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + ethertype + ip + bytes(20)


@pytest.fixture
def frame():
    """``frame(ip_proto, ethertype=IPv4) -> bytes``: Ethernet + IPv4 header + 20 bytes payload."""
    return _frame


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("bpf-objects")
    cache: dict = {}

    def _build(name: str, *defines: str) -> Path:
        key = (name, defines)
        if key not in cache:
            cache[key] = build_c(name, out, *defines)
        return cache[key]

    return _build


@pytest.fixture(scope="session")
def seed_object(tmp_path_factory) -> Path:
    import compiler

    obj = tmp_path_factory.mktemp("whistler") / "seed.bpf.o"
    obj.write_bytes(compiler.compile_source(seed_source(), "xdp-tail-call-dispatch.lisp").elf)
    return obj


@pytest.fixture(params=["clang", "whistler"])
def dispatch_object(request, build) -> Path:
    """The seed's dispatcher: clang's build of bench/c/tail_call_dispatch.c, then our compiled seed."""
    if request.param == "clang":
        return build("tail_call_dispatch.c")
    return request.getfixturevalue("seed_object")


@pytest.fixture
def snapshot():
    """``snapshot(dir) -> {relative path: (kind, id)}`` of every pin under ``dir``."""
    return _snapshot


def _snapshot(directory: Path) -> dict:
    result = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            fd = sc.obj_get(str(path))
            try:
                fields = sc.fdinfo(fd)
                if "prog_type" in fields:
                    result[str(path.relative_to(directory))] = ("program", sc.prog_info(fd).id)
                else:
                    result[str(path.relative_to(directory))] = ("map", sc.map_info(fd).id)
            finally:
                os.close(fd)
    return result


def _bpf_fds() -> dict:
    """{fd: kind} of this process's open BPF object fds (anon inodes bpf-prog, bpf-map, bpf_link, btf)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed while listing (the listing's own fd)
        if target.startswith("anon_inode:") and ("bpf" in target or "btf" in target):
            found[int(name)] = target
    return found


@pytest.fixture(autouse=True)
def no_fd_leaks():
    """Every test must close every BPF fd it (or the loader) opened, on error paths too. No garbage
    collection first: an fd closed only by ``FdOwner.__del__`` is a leak."""
    before = _bpf_fds()
    yield
    leaked = {fd: kind for fd, kind in _bpf_fds().items() if before.get(fd) != kind}
    assert not leaked, f"BPF fds left open: {leaked}"
