"""Where a dispatcher rollout lives in bpffs: its pin path in, every path of its layout out.

::

    <pin_path>/maps/<map>                 maps every generation shares (counters survive upgrades and rollbacks)
    <pin_path>/gen/<N>/progs/<program>    generation N's programs
    <pin_path>/gen/<N>/maps/<prog-array>  generation N's jump table(s), filled with generation N's handlers
    <pin_path>/gen/<N>/record             generation N's record, pinned last: without it N is incomplete
    <pin_path>/gen/current -> <N>         symlink to the live generation (so gen/current/maps/<jump table>
                                          is always the live jump table, for bpftool and xdp_info)
    <pin_path>/gen/previous -> <M>        symlink to the generation ``state=previous`` returns to
    <pin_path>/attached/if<i>_ns<n>       what ``attach`` pinned for each hook it changed (links/ for bpf_links)
    <pin_path>/<program>                  version 1 (xdp_load) layout: adopted as generation 0

Programs and prog-arrays sit in their own subdirectories of a generation, so no program name (``maps``,
``record``) can collide with the generation's own entries. Every path built from a name goes through
``pins.join`` (the name checked by ``pinnames``, the result proven to be an entry directly inside its
directory), so a name from an object or an option never leaves its directory. The pointers are the
only symlinks, made here with fixed names and a number as target; nothing follows them to build a path.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Optional

from .. import pins
from ..errors import BpfError
from ..pinnames import check_object_name

GENERATION = re.compile(r"(0|[1-9][0-9]{0,8})", re.ASCII)
SHARED_MAPS, GENERATIONS, PROGRAMS, ARRAYS, RECORD = pins.MAP_DIR, "gen", "progs", "maps", "record"
CURRENT, PREVIOUS = "current", "previous"


def name(value: str, what: str) -> str:
    """``value`` if it can name a program or map and be a pin name (``pinnames.check_object_name``)."""
    return check_object_name(value, what)


def generation_number(entry: str) -> Optional[int]:
    """The generation an entry of ``gen/`` is named after, None for anything else."""
    return int(entry) if GENERATION.fullmatch(entry) else None


class Layout:
    """The paths of one rollout under ``root`` (``Layout.checked`` checks a pin path first)."""

    def __init__(self, root: str):
        self.root = root

    @classmethod
    def checked(cls, pin_path: str) -> Layout:
        """The layout under ``pin_path``: on bpffs, no '.', a directory below the mount (not the mount)."""
        root = pins.check_dir(pin_path, "pin_path")
        if os.path.ismount(root):
            raise BpfError(errno.EINVAL, "pin_path", root, "is the bpffs mount itself; give the rollout a "
                           "directory of its own below it (state=absent removes everything the rollout pinned)")
        return cls(root)

    @property
    def shared_maps(self) -> str:
        return os.path.join(self.root, SHARED_MAPS)

    def shared_map(self, map_name: str) -> str:
        return pins.join(self.shared_maps, name(map_name, "map name"), "map name")

    @property
    def generations(self) -> str:
        return os.path.join(self.root, GENERATIONS)

    def generation(self, number: int) -> str:
        return pins.join(self.generations, str(int(number)), "generation")

    def programs(self, number: int) -> str:
        return os.path.join(self.generation(number), PROGRAMS)

    def program(self, number: int, program_name: str) -> str:
        return pins.join(self.programs(number), name(program_name, "program name"), "program name")

    def arrays(self, number: int) -> str:
        return os.path.join(self.generation(number), ARRAYS)

    def array(self, number: int, map_name: str) -> str:
        return pins.join(self.arrays(number), name(map_name, "map name"), "map name")

    def record(self, number: int) -> str:
        return os.path.join(self.generation(number), RECORD)

    @property
    def current(self) -> str:
        return os.path.join(self.generations, CURRENT)

    @property
    def previous(self) -> str:
        return os.path.join(self.generations, PREVIOUS)
