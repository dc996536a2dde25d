# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test-only callback: one JSON line per task result, for comparing a check run with a real run.

In: the path in ``WHISTLER_RECORD_FILE``. Out: that file, one object per task and host:
``{"play", "task", "path", "host", "status", "changed", "items", "diff", "msg"}`` where ``path`` is
the task's ``file:line`` (stable across runs, unlike task uuids), ``status`` one of ok / changed /
failed / skipped / unreachable, and ``items`` the per-item ``changed`` flags of a loop.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: whistler_record
type: aggregate
short_description: Record every task result as a JSON line (whistler.xdp tests)
description: Writes one JSON object per task result to the file named by WHISTLER_RECORD_FILE.
requirements: [enable in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "whistler_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ["WHISTLER_RECORD_FILE"]
        self._play = ""

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def _write(self, result, status):
        res = result._result
        items = [bool(r.get("changed")) for r in res.get("results", []) if isinstance(r, dict)]
        diffs = res.get("diff")
        if diffs is None and res.get("results"):
            diffs = [r.get("diff") for r in res["results"] if isinstance(r, dict)]
        record = {
            "play": self._play,
            "task": result._task.get_name(),
            "path": result._task.get_path() or "",
            "host": result._host.get_name(),
            "status": status,
            "changed": bool(res.get("changed")),
            "items": items,
            "diff": diffs,
            "msg": res.get("msg") if status in ("failed", "unreachable") else None,
        }
        with open(self._path, "a") as f:
            f.write(json.dumps(record, default=repr) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")
