# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of whistler.xdp.xdp_attach: the module, with check mode's overlay (``plugin_utils._overlay_action``).

In: the task. Out: the module's result. Outside check mode the module runs as it is. In check mode
the hook is planned on top of the pins and hooks earlier tasks of the run planned (a dispatcher
xdp_load would re-pin makes the interface's program change).
"""

from __future__ import annotations

from ansible_collections.whistler.xdp.plugins.plugin_utils._overlay_action import OverlayAction


class ActionModule(OverlayAction):
    """Hooks planned on the overlaid pins and hooks."""
