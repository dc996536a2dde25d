# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of whistler.xdp.xdp_map: the module, with check mode's overlay (``plugin_utils._overlay_action``).

In: the task. Out: the module's result. Outside check mode the module runs as it is. In check mode the
entries are planned on the host as earlier tasks of the run would leave it: a map an earlier xdp_load
would create is planned on as that load would create it, so the object it reads (the planned map's
``object``, which an earlier xdp_compile of the run may have delivered) is shipped to Ansible's remote
temp dir for the module to read the map's types from.
"""

from __future__ import annotations

import os

from ansible_collections.whistler.xdp.plugins.plugin_utils._overlay_action import OverlayAction


class ActionModule(OverlayAction):
    def files_read(self, args: dict, overlay: dict) -> dict:
        path = args.get("map")
        pin = overlay["pins"].get(os.path.normpath(path)) if isinstance(path, str) and path else None
        if isinstance(pin, dict) and pin.get("kind") == "map" and isinstance(pin.get("object"), str):
            return {"object": pin["object"]}
        return {}
