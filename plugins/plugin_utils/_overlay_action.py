# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugins that make check mode plan on the host as earlier check-mode tasks would leave it.

PRIVATE to the whistler.xdp collection. In: a task of a module that takes the internal option
``_check_overlay`` (``module_utils._overlay``), and the run's store (``_overlay_store``). Out: the
module's result.

- Outside check mode, ``OverlayAction`` runs the module as it is, then forgets the host's overlay: the
  host really changed (or was read as it really is), so later check-mode tasks plan on it again.
- In check mode it reads the host's overlay, ships the planned content of each host file the module
  reads (``files_read``: by default the options in ``READS_FILES``, e.g. the object xdp_compile would have
  delivered) to Ansible's remote temp dir as ``ansible.builtin.copy`` ships its source, passes the overlay
  as ``_check_overlay``,
  takes the changes the module plans out of its result (``_check_overlay_planned``) and records them
  for the tasks after it.

For other action plugins (a module that plans several steps at once, say): subclass ``OverlayAction``
and set ``READS_FILES`` (or override ``files_read``); or use ``overlay_store()``, ``overlay_host()``, ``ship_file()`` (from ``_ship``) and
``module_overlay()`` directly.
"""

from __future__ import annotations

import os

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.whistler.xdp.plugins.plugin_utils._overlay_store import OverlayStore, run_dir
from ansible_collections.whistler.xdp.plugins.plugin_utils._ship import ship_file

OPTION = "_check_overlay"
PLANNED_KEY = "_check_overlay_planned"


def overlay_store() -> OverlayStore:
    """This run's store (in the run's local temp dir, shared by every fork)."""
    return OverlayStore(run_dir(C.DEFAULT_LOCAL_TMP))


def overlay_host(task, task_vars) -> str:
    """The inventory host whose state a task reads and changes: the one it is delegated to, if any."""
    return str(task.delegate_to or task_vars["inventory_hostname"])


def module_overlay(action: ActionBase, overlay: dict, reads: dict) -> dict:
    """The value of ``_check_overlay`` for a module that reads the host files ``reads`` (what -> path):
    the host's planned pins, slots and hooks, and for each of those files a planned task would write,
    where its planned content was shipped."""
    files = {}
    for what, path in reads.items():
        planned = overlay["files"].get(os.path.normpath(path)) if isinstance(path, str) and path else None
        if planned is not None:
            files[path] = ship_file(action, planned["content"], f"planned-{what}-{planned['sha256'][:16]}")
    return dict(pins=overlay["pins"], slots=overlay["slots"], hooks=overlay["hooks"], files=files)


class OverlayAction(ActionBase):
    """Runs the module of the same name with check mode's overlay (see the module docstring)."""

    READS_FILES = ()

    def files_read(self, args: dict, overlay: dict) -> dict:
        """The host files the module reads (what -> path): the options in ``READS_FILES``."""
        return {option: args.get(option) for option in self.READS_FILES}

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if OPTION in self._task.args:
            raise AnsibleActionFail(f"{OPTION} is internal to whistler.xdp: its action plugin sets it in check mode; "
                                    "remove it from the task")
        store, host = overlay_store(), overlay_host(self._task, task_vars)
        try:
            if not self._task.check_mode:
                result.update(self._execute_module(task_vars=task_vars))
                store.clear(host)
                return result
            args = dict(self._task.args)
            overlay = store.read(host)
            args[OPTION] = module_overlay(self, overlay, self.files_read(args, overlay))
            result.update(self._execute_module(module_args=args, task_vars=task_vars))
            planned = result.pop(PLANNED_KEY, None)
            if planned and not result.get("failed"):
                store.record(host, planned)
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
