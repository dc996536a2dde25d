# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of whistler.xdp.xdp_load: the module, with check mode's overlay (``plugin_utils._overlay_action``).

In: the task. Out: the module's result. Outside check mode the module runs as it is. In check mode
the object an earlier xdp_compile of the run would have delivered is shipped to Ansible's remote
temp dir and read from there, and pins are planned on top of what earlier tasks planned.
"""

from __future__ import annotations

from ansible_collections.whistler.xdp.plugins.plugin_utils._overlay_action import OverlayAction


class ActionModule(OverlayAction):
    READS_FILES = ("object",)
