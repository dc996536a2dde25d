# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A controller-side cache that forked workers and later runs share; PRIVATE to the whistler.xdp collection.

In: a cache directory, a key (a hex digest that covers everything the data depends on) and a
``build()`` that returns JSON-able data. Out: ``(data, cached)``. The first worker to ask for a key
builds it while holding an exclusive lock on the key; the others wait on the lock and read the stored
result, so a key is built once however many hosts, forks and runs ask. Entries are written to a
temporary file and renamed into place, so no reader sees half an entry. A hit refreshes the entry's
time; a build removes entries nobody used for ``MAX_AGE`` seconds, so the directory stays small.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time

MAX_AGE = 30 * 24 * 3600


def cached_json(cache_dir, key, build):
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    entry = os.path.join(cache_dir, key + ".json")
    with open(os.path.join(cache_dir, key + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(entry) as f:
                data = json.load(f)
            os.utime(entry)
            return data, True
        except FileNotFoundError:
            pass
        data = build()
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=key + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    prune(cache_dir, MAX_AGE)
    return data, False


def prune(cache_dir, max_age):
    """Remove the entries (and their locks) of ``cache_dir`` not used for ``max_age`` seconds."""
    oldest = time.time() - max_age
    for name in os.listdir(cache_dir):
        if not name.endswith(".json"):
            continue
        entry = os.path.join(cache_dir, name)
        try:
            if os.stat(entry).st_mtime < oldest:
                os.unlink(entry)
                os.unlink(entry[:-len(".json")] + ".lock")
        except FileNotFoundError:
            pass  # another run pruned it first
