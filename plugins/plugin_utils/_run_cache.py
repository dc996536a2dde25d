# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A controller-side cache that forked workers share; PRIVATE to the whistler.xdp collection.

In: a cache directory (one per ansible run: it lives in the run's local temp directory, which
the main process creates before it forks workers and removes at exit), a key (a hex digest)
and a ``build()`` that returns JSON-able data. Out: ``(data, cached)``. The first worker to ask
for a key builds it while holding an exclusive lock on the key; the others wait on the lock and
read the stored result, so a key is built once per run however many hosts and forks ask.
Entries are written to a temporary file and renamed into place, so no reader sees half an entry.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile


def cached_json(cache_dir, key, build):
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    entry = os.path.join(cache_dir, key + ".json")
    with open(os.path.join(cache_dir, key + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(entry) as f:
                return json.load(f), True
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
        return data, False
