# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Before/after state of what a module manages; PRIVATE to the whistler.xdp collection.

In: the state a module read from the host and the state it will leave behind, recorded per
object (a program, a map, a jump-table slot, an interface). Out: ``changed`` (the two differ)
and the ``diff`` dict Ansible prints with ``--diff``. One record gives both, so ``changed``
and the diff can never disagree, in check mode or not. ``program_text`` and ``map_text`` are how
diffs and summaries name a program or map, so an operator reads the same words everywhere.
"""

from __future__ import annotations


class Diff:
    def __init__(self):
        self.before = {}
        self.after = {}

    def record(self, name, before, after):
        """Record one object's state; ``None`` means "does not exist" on that side."""
        self.before[name] = before
        self.after[name] = after

    @property
    def changed(self):
        return self.before != self.after

    def result(self):
        return {"before": self.before, "after": self.after}


def program_text(name, tag, prog_id=None):
    """``"tcp_handler (tag a1b2c3d4e5f6a7b8, id 812)"``; ``"... (tag ..., new)"`` without an id (not loaded yet)."""
    return f"{name} (tag {tag}, {_id_text(prog_id)})"


def map_text(name, type_name, map_id=None):
    """``"jt (prog_array, id 77)"``; ``"jt (prog_array, new)"`` without an id (not created yet)."""
    return f"{name} ({type_name}, {_id_text(map_id)})"


def _id_text(object_id):
    return f"id {object_id}" if object_id else "new"
