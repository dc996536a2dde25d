"""The controller-side cache the compiling action plugins share between forked workers and runs."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

from ansible_collections.whistler.xdp.plugins.plugin_utils import _run_cache
from ansible_collections.whistler.xdp.plugins.plugin_utils._run_cache import cached_json


def test_builds_once_then_reads(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"elf": "AAAA", "programs": [{"name": "x"}]}

    first = cached_json(str(tmp_path / "cache"), "k1", build)
    second = cached_json(str(tmp_path / "cache"), "k1", build)
    assert first == ({"elf": "AAAA", "programs": [{"name": "x"}]}, False)
    assert second == (first[0], True)
    assert calls == [1]
    assert cached_json(str(tmp_path / "cache"), "k2", build)[1] is False
    assert len(calls) == 2


def _worker(cache_dir, log, out):
    def build():
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return {"built_by": os.getpid()}

    data, cached = cached_json(cache_dir, "shared", build)
    with open(out, "a") as f:
        f.write(json.dumps([data, cached]) + "\n")


def test_forked_workers_build_a_key_once(tmp_path):
    log, out = tmp_path / "builds", tmp_path / "results"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(str(tmp_path / "cache"), log, out)) for worker in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    builders = log.read_text().split()
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(builders) == 1
    assert len(results) == 6
    assert all(result[0] == {"built_by": int(builders[0])} for result in results)
    assert sorted(result[1] for result in results) == [False] + [True] * 5


def test_failed_build_leaves_no_entry(tmp_path):
    def broken():
        raise RuntimeError("compiler crashed")

    cache = tmp_path / "cache"
    try:
        cached_json(str(cache), "k", broken)
    except RuntimeError:
        pass
    assert not (cache / "k.json").exists()
    assert cached_json(str(cache), "k", lambda: {"ok": True}) == ({"ok": True}, False)


def test_entries_nobody_used_for_long_are_pruned_and_hits_keep_theirs(tmp_path):
    cache = str(tmp_path / "cache")
    cached_json(cache, "old", lambda: {"n": 1})
    cached_json(cache, "used", lambda: {"n": 2})
    long_ago = time.time() - _run_cache.MAX_AGE - 60
    for name in ("old", "used"):
        os.utime(os.path.join(cache, name + ".json"), (long_ago, long_ago))
    assert cached_json(cache, "used", lambda: {"n": 0}) == ({"n": 2}, True)   # a hit refreshes its entry
    assert cached_json(cache, "new", lambda: {"n": 3}) == ({"n": 3}, False)   # a build prunes
    assert sorted(os.listdir(cache)) == ["new.json", "new.lock", "used.json", "used.lock"]
