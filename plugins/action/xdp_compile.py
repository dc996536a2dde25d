# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of whistler.xdp.xdp_compile: Whistler source on the controller in, object on the host out.

In: the task's ``src`` (a controller path, searched like ``template`` searches) or ``content``,
``dest`` and the file options. Compiles with the collection's ``compiler`` package, at most once per
distinct source per run (``plugin_utils._compile``), writes the object to a local
temporary file and hands it to ``ansible.builtin.copy``, which gives checksum idempotency, check
mode, diff and mode/owner/group. In check mode the object it would deliver is kept in the run's
check-mode overlay (``_overlay_action``), so that a later xdp_load of the same run plans with it. Out: copy's result (without its internal ``src``, ``path`` and
``md5sum``; ``dest`` always) plus ``programs``, ``maps``, ``sha256`` and ``cached``. A compile
error fails the task with the compiler's ``file:line:col`` message and hint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.basic import FILE_COMMON_ARGUMENTS
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.whistler.xdp.plugins.modules.xdp_compile import (
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
)
from ansible_collections.whistler.xdp.plugins.plugin_utils._compile import cache_dir, compile_once
from ansible_collections.whistler.xdp.plugins.plugin_utils._overlay_action import overlay_host, overlay_store

CONTENT_FILENAME = "<content>"
COPY_INTERNAL_KEYS = ("src", "path", "md5sum")


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        try:
            validation, args = self.validate_argument_spec(
                argument_spec=dict(ARGUMENT_SPEC, **FILE_COMMON_ARGUMENTS),
                mutually_exclusive=MUTUALLY_EXCLUSIVE,
                required_one_of=REQUIRED_ONE_OF,
            )
            text, filename = self._source(args)
            data, cached = compile_once(text, filename, cache_dir(C.DEFAULT_LOCAL_TMP))
            if "error" in data:
                raise AnsibleActionFail(f"compiling {filename} failed:\n{data['error']}")
            elf = base64.b64decode(data["elf"])
            before = self._remote_checksum(args["dest"], task_vars) if self._task.diff else None
            result = self._deliver(elf, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if not result.get("failed"):
            self._plan_or_forget(args["dest"], elf, result, task_vars)
            checksum = hashlib.sha1(elf).hexdigest()
            # copy reports the host's temporary upload as src (deleted by now), path instead of dest
            # when nothing changed, and no dest at all in check mode: report the documented keys only.
            for internal in COPY_INTERNAL_KEYS:
                result.pop(internal, None)
            result.update(programs=data["programs"], maps=data["maps"], cached=cached, dest=args["dest"],
                          sha256=hashlib.sha256(elf).hexdigest(), checksum=checksum)
            if self._task.diff and result.get("changed"):
                # copy cannot show a binary file; show which object was there and which is now.
                result["diff"] = {"before": {"path": args["dest"], "checksum": before},
                                  "after": {"path": args["dest"], "checksum": checksum,
                                            "programs": {p["name"]: p["tag"] for p in data["programs"]}}}
        return result

    def _plan_or_forget(self, dest, elf, result, task_vars):
        """Check mode: against what an earlier check-mode task of the run would have written to ``dest``, if
        any, and keep the object as ``dest``'s planned content for later tasks (xdp_load reads it). A real
        run: the host really changed, so the run's check-mode overlay of it is forgotten."""
        store, host = overlay_store(), overlay_host(self._task, task_vars)
        if not self._task.check_mode:
            store.clear(host)
            return
        planned = store.read(host)["files"].get(os.path.normpath(dest))
        if planned is not None:
            result["changed"] = planned["sha256"] != hashlib.sha256(elf).hexdigest()
        if result.get("changed"):
            store.keep_file(host, dest, elf)

    def _remote_checksum(self, dest, task_vars):
        """SHA-1 of the file at ``dest`` on the host, None when there is none."""
        stat = self._execute_remote_stat(dest, all_vars=task_vars, follow=False)
        return stat.get("checksum") if stat.get("exists") else None

    def _source(self, args):
        if args["content"] is not None:
            return args["content"], CONTENT_FILENAME
        try:
            path = self._find_needle("files", args["src"])
        except AnsibleError as exc:
            raise AnsibleActionFail(to_text(exc)) from exc
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), args["src"]
        except (OSError, UnicodeDecodeError) as exc:
            raise AnsibleActionFail(f"cannot read Whistler source {path}: {exc}") from exc

    def _deliver(self, elf, task_vars):
        """Copy ``elf`` to the task's ``dest`` with ansible.builtin.copy (check mode and diff included)."""
        local_dir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
        try:
            object_file = os.path.join(local_dir, "object.bpf.o")
            with open(object_file, "wb") as f:
                f.write(elf)
            copy_task = self._task.copy()
            for option in ("content", "src"):
                copy_task.args.pop(option, None)
            copy_task.args["src"] = object_file
            copy_action = self._shared_loader_obj.action_loader.get(
                "ansible.builtin.copy", task=copy_task, connection=self._connection,
                play_context=self._play_context, loader=self._loader, templar=self._templar,
                shared_loader_obj=self._shared_loader_obj)
            return copy_action.run(task_vars=task_vars)
        finally:
            shutil.rmtree(local_dir, ignore_errors=True)
