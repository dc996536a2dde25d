# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The per-run store of check mode's planned host state, on the controller; PRIVATE to whistler.xdp.

In: a directory that lives as long as one ansible run (``run_dir()``: under the run's local temp dir,
which the main process creates before it forks workers and removes at exit, so nothing leaks into a
later run), inventory host names, and the planned changes modules return
(``module_utils._overlay``: ``{"pins": {...}, "slots": {...}, "hooks": {...}}``).
Out: ``OverlayStore``:
- ``read(host)``: the host's overlay, ``{"files", "pins", "slots", "hooks"}`` (empty ones for a host with
  nothing planned), as ``module_utils._overlay.Overlay`` reads it once ``files`` is shipped;
- ``record(host, planned)``: merges a task's planned changes in (``merge``);
- ``keep_file(host, path, data)``: a host file a check-mode task would write (its content is kept
  beside the overlays, by SHA-256; ``files[path]`` names it);
- ``clear(host)``: forgets the host's overlay (a real task changed the host: plans start from it again).

One JSON file per host (the name is the SHA-256 of the host name, which is untrusted), written to a
temporary file and renamed into place under an exclusive lock, so a fork never reads half a file and
two forks never lose each other's changes. Standard library only, testable without Ansible.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager

SECTIONS = ("files", "pins", "slots", "hooks")
RUN_SUBDIR = "whistler-xdp-check-overlay"


def run_dir(local_tmp: str) -> str:
    """The store's directory in the run's local temp dir (Ansible's ``C.DEFAULT_LOCAL_TMP``)."""
    return os.path.join(local_tmp, RUN_SUBDIR)


def empty() -> dict:
    return {section: {} for section in SECTIONS}


def merge(overlay: dict, planned: dict) -> dict:
    """``overlay`` with a task's ``planned`` changes on top (a new dict; neither argument changes).

    Pins and hooks are replaced path by path and hook by hook, slots slot by slot. A pin that changes
    (replaced or removed) drops the slots planned for what was pinned there before: they were edits
    of an object that will no longer be at that path.
    """
    result = {section: dict(overlay.get(section) or {}) for section in SECTIONS}
    result["slots"] = {path: dict(slots) for path, slots in result["slots"].items()}
    for path, pin in (planned.get("pins") or {}).items():
        result["pins"][path] = pin
        result["slots"].pop(path, None)
    for path, slots in (planned.get("slots") or {}).items():
        result["slots"].setdefault(path, {}).update(slots)
    result["hooks"].update(planned.get("hooks") or {})
    result["files"].update(planned.get("files") or {})
    return result


class OverlayStore:
    def __init__(self, directory: str):
        self.directory = directory

    def _path(self, host: str, suffix: str = ".json") -> str:
        return os.path.join(self.directory, hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest() + suffix)

    @contextmanager
    def _locked(self, host: str):
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        with open(self._path(host, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _load(self, host: str) -> dict:
        try:
            with open(self._path(host)) as f:
                stored = json.load(f)
            return {section: stored.get(section) or {} for section in SECTIONS}
        except FileNotFoundError:
            return empty()

    def _write(self, host: str, overlay: dict) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(overlay, f, sort_keys=True)
            os.replace(tmp, self._path(host))
        except BaseException:
            os.unlink(tmp)
            raise

    def read(self, host: str) -> dict:
        if not os.path.isdir(self.directory):
            return empty()
        with self._locked(host):
            return self._load(host)

    def record(self, host: str, planned: dict) -> dict:
        """Merge ``planned`` into the host's overlay; returns the overlay now stored."""
        with self._locked(host):
            overlay = merge(self._load(host), planned)
            self._write(host, overlay)
            return overlay

    def keep_file(self, host: str, path: str, data: bytes) -> dict:
        """Record that a check-mode task would write ``data`` to ``path`` on ``host``; the content is
        stored once per run (by SHA-256) for later tasks' action plugins to ship."""
        digest = hashlib.sha256(data).hexdigest()
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        content = os.path.join(self.directory, digest + ".file")
        if not os.path.exists(content):
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, content)
        return self.record(host, {"files": {os.path.normpath(path): {"sha256": digest, "content": content}}})

    def clear(self, host: str) -> None:
        if not os.path.isdir(self.directory):
            return
        with self._locked(host):
            try:
                os.unlink(self._path(host))
            except FileNotFoundError:
                pass
