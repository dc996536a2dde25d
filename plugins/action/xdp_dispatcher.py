# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of whistler.xdp.xdp_dispatcher: the controller's half of one dispatcher plan.

In: the task's options. With ``src`` (state=present): the source compiled once per run (or an object read
as it is) and shipped into the task's remote temporary directory, in check mode too, then passed to the
module as ``object``; the directory is removed afterwards. Out: the module's result, plus ``compiled``
(sha256, programs and maps as compiled, whether this run's cache held them).
"""

from __future__ import annotations

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible_collections.whistler.xdp.plugins.plugin_utils._compile import cache_dir
from ansible_collections.whistler.xdp.plugins.plugin_utils._ship import object_from_src, ship


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        src = args.pop("src", None)
        compiled = None
        try:
            if src is not None and args.get("state", "present") == "present":
                if args.get("object") is not None:
                    return dict(result, failed=True, msg="parameters are mutually exclusive: src|object")
                compiled = object_from_src(self, src, cache_dir(C.DEFAULT_LOCAL_TMP))
                args["object"] = ship(self, compiled.elf)
            result.update(self._execute_module(module_name="whistler.xdp.xdp_dispatcher", module_args=args,
                                               task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if compiled is not None:
            result["compiled"] = dict(src=src, sha256=compiled.sha256, programs=compiled.programs, maps=compiled.maps,
                                      cached=compiled.cached)
            if isinstance(result.get("msg"), str) and args["object"] in result["msg"]:
                # The shipped copy is gone after the task: name the object by the source it came from. The
                # error summary captured from the module repeats the old text; without it, the new one shows.
                result["msg"] = result["msg"].replace(args["object"], f"{src} (compiled)")
                result.pop("exception", None)
        return result
