"""Feature probes without a kernel: how each probe reads the kernel's answer (an older kernel's
EINVAL/E2BIG is "missing", EPERM is "the probe could not tell"), the test hook, and the messages."""

from __future__ import annotations

import errno

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import features
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import syscalls as sc
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError, VerifierError


@pytest.fixture(autouse=True)
def fresh_probes(monkeypatch):
    monkeypatch.setattr(features, "_CACHE", {})
    monkeypatch.delenv(features.SIMULATE_ENV, raising=False)


def refuse(err, log=None):
    def call(*args, **kwargs):
        if log is not None:
            raise VerifierError(err, "prog_load", "probe", log)
        raise BpfError(err, "prog_load", "probe")
    return call


@pytest.mark.parametrize("name, target, err", [
    ("xdp", "prog_load", errno.EINVAL),
    ("xdp_frags", "prog_load", errno.EINVAL),
    ("bounded_loops", "prog_load", errno.EINVAL),
    ("btf_maps", "btf_load", errno.EINVAL),
    ("btf_func_info", "btf_load", errno.E2BIG),
    ("ringbuf", "map_create", errno.EINVAL),
])
def test_an_older_kernels_refusal_reads_missing(monkeypatch, name, target, err):
    monkeypatch.setattr(sc, target, refuse(err))
    probe = features.probe(name)
    assert probe.status == features.MISSING
    assert probe.problem.startswith(f"needs Linux {features.FEATURES[name].kernel} (")


def test_a_refusal_for_another_reason_is_a_probe_error(monkeypatch):
    monkeypatch.setattr(sc, "prog_load", refuse(errno.EPERM))
    probe = features.probe("xdp")
    assert probe.status == features.ERROR
    assert "EPERM" in probe.detail
    assert probe.problem.startswith("cannot tell whether the kernel has XDP programs: ")


@pytest.mark.parametrize("log, status", [
    ("0: (85) call unknown#181\ninvalid func unknown#181\n", features.MISSING),
    ("program of this type cannot use helper bpf_loop#181\n", features.MISSING),
    ("0: (85) call bpf_loop#181\nR1 !read_ok\n", features.OK),
])
def test_the_helper_probe_reads_the_verifier_log(monkeypatch, log, status):
    monkeypatch.setattr(sc, "prog_load", refuse(errno.EINVAL, log))
    assert features.probe("bpf_loop").status == status


def test_the_tag_probe_tells_sha1_from_sha256(monkeypatch):
    def info(fd):
        return sc.ProgInfo(type=6, id=1, tag=features.tag.program_tag(features.RETURN_PASS, "sha1"), name="")
    monkeypatch.setattr(sc, "prog_load", lambda *a, **k: 99)
    monkeypatch.setattr(sc, "prog_info", info)
    monkeypatch.setattr(features.os, "close", lambda fd: None)
    assert features.probe("tag_sha256").status == features.MISSING


def test_the_replace_probe_reads_rtnetlinks_answer(monkeypatch):
    monkeypatch.setattr(sc, "prog_load", lambda *a, **k: 99)
    monkeypatch.setattr(features.os, "close", lambda fd: None)
    for answer, status in ((errno.EEXIST, features.OK), (errno.EINVAL, features.MISSING),
                           (errno.EPERM, features.ERROR)):
        monkeypatch.setattr(features, "_CACHE", {})
        monkeypatch.setattr(features, "in_private_netns", lambda fn, answer=answer: answer)
        assert features.probe("xdp_replace").status == status


def test_the_test_hook_simulates_missing_features(monkeypatch):
    monkeypatch.setattr(sc, "prog_load", refuse(errno.EPERM))  # never reached for simulated ones
    monkeypatch.setenv(features.SIMULATE_ENV, "all")
    assert {p.status for p in features.probe_all().values()} == {features.MISSING}
    monkeypatch.setenv(features.SIMULATE_ENV, " ringbuf ,xdp ")
    assert features.simulated_missing() == {"ringbuf", "xdp"}
    assert "simulated" in features.probe("xdp").detail


def test_require_names_every_missing_feature(monkeypatch):
    monkeypatch.setenv(features.SIMULATE_ENV, "xdp_replace,ringbuf")
    with pytest.raises(features.KernelFeatureMissing) as refused:
        features.require(["xdp_replace", "ringbuf"])
    assert "needs Linux 5.7 (atomic XDP replace" in str(refused.value)
    assert "needs Linux 5.8 (BPF ring buffer maps)" in str(refused.value)
    assert refused.value.errno == errno.EOPNOTSUPP


def test_unknown_features_are_refused():
    with pytest.raises(ValueError, match="unknown kernel feature 'warp_drive'"):
        features.probe("warp_drive")


def test_every_feature_names_a_linux_release_and_is_in_the_modules_choices():
    from ansible_collections.whistler.xdp.plugins.modules import xdp_preflight
    assert xdp_preflight.ARGUMENT_SPEC["features"]["choices"] == list(features.FEATURES)
    for feature in features.FEATURES.values():
        assert [int(n) for n in feature.kernel.split(".")]
    assert set(features.ROLLOUT) <= set(features.FEATURES)
