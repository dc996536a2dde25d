"""Kernel feature probes against the live kernel: every feature the CI kernel (6.18) has reads "ok",
the probes leave nothing behind (no fd, no XDP program on any loopback), and the test hook turns a
feature into a refusal naming the Linux release that brought it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import features


@pytest.fixture(autouse=True)
def fresh_probes(monkeypatch):
    """Each test probes for itself (the results are cached per process otherwise)."""
    monkeypatch.setattr(features, "_CACHE", {})
    monkeypatch.delenv(features.SIMULATE_ENV, raising=False)


def _kernel_at_least(release: str) -> bool:
    mine = tuple(int(n) for n in os.uname().release.split("-")[0].split(".")[:2])
    return mine >= tuple(int(n) for n in release.split("."))


def test_every_feature_of_this_kernel_probes_ok():
    results = features.probe_all()
    assert set(results) == set(features.FEATURES)
    for name, probe in results.items():
        expected = features.OK if _kernel_at_least(probe.feature.kernel) else features.MISSING
        assert probe.status == expected, f"{name}: {probe.status} {probe.detail}"


def test_the_rollout_requirements_pass_here():
    features.require(features.ROLLOUT)


def test_probes_leave_no_xdp_program_on_the_hosts_loopback():
    def lo_xdp():
        link = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show", "dev", "lo"], check=True,
                                         capture_output=True, text=True).stdout)[0]
        return link.get("xdp")
    before = lo_xdp()
    assert features.probe("xdp_replace").ok
    assert features.probe("bpf_link_xdp").ok
    assert lo_xdp() == before


def test_results_are_cached_per_process(monkeypatch):
    first = features.probe("ringbuf")

    def probe_again():
        raise AssertionError("probed twice")
    monkeypatch.setitem(features.FEATURES, "ringbuf", features.Feature("ringbuf", "5.8", "ring buffers", probe_again))
    assert features.probe("ringbuf") is first


def test_a_simulated_missing_feature_is_refused_with_the_linux_release(monkeypatch):
    monkeypatch.setenv(features.SIMULATE_ENV, "xdp_replace, bpf_loop")
    assert features.probe("xdp_replace").status == features.MISSING
    assert features.probe("xdp").ok
    with pytest.raises(features.KernelFeatureMissing) as refused:
        features.require(["xdp", "xdp_replace", "bpf_loop"])
    message = str(refused.value)
    assert message.startswith("needs Linux 5.7 (atomic XDP replace")
    assert "needs Linux 5.17 (the bpf_loop helper)" in message
    assert message.endswith(f"; this kernel is {os.uname().release}")
    assert [p.feature.name for p in refused.value.probes] == ["xdp_replace", "bpf_loop"]
