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
``record``) can collide with the generation's own entries. Every name is checked before a path is built
from it (``name``): a name from an object or an option never leaves its directory.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Optional

from .. import pins
from ..errors import BpfError

NAME = re.compile(r"[A-Za-z0-9_]{1,128}", re.ASCII)
GENERATION = re.compile(r"(0|[1-9][0-9]{0,8})", re.ASCII)
SHARED_MAPS, GENERATIONS, PROGRAMS, ARRAYS, RECORD = "maps", "gen", "progs", "maps", "record"
CURRENT, PREVIOUS = "current", "previous"


def name(value: str, what: str) -> str:
    """``value`` if it can be a pin name (letters, digits, '_'; at most 128), else BpfError naming ``what``."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise BpfError(errno.EINVAL, what, repr(value), "names are 1 to 128 letters, digits or '_' (no '/', "
                       "'.', spaces or control characters), because they become pin names in bpffs")
    return value


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
        return os.path.join(self.shared_maps, name(map_name, "map name"))

    @property
    def generations(self) -> str:
        return os.path.join(self.root, GENERATIONS)

    def generation(self, number: int) -> str:
        return os.path.join(self.generations, str(int(number)))

    def programs(self, number: int) -> str:
        return os.path.join(self.generation(number), PROGRAMS)

    def program(self, number: int, program_name: str) -> str:
        return os.path.join(self.programs(number), name(program_name, "program name"))

    def arrays(self, number: int) -> str:
        return os.path.join(self.generation(number), ARRAYS)

    def array(self, number: int, map_name: str) -> str:
        return os.path.join(self.arrays(number), name(map_name, "map name"))

    def record(self, number: int) -> str:
        return os.path.join(self.generation(number), RECORD)

    @property
    def current(self) -> str:
        return os.path.join(self.generations, CURRENT)

    @property
    def previous(self) -> str:
        return os.path.join(self.generations, PREVIOUS)

    def legacy_program(self, program_name: str) -> str:
        """Where version 1 (``xdp_load``) pinned a program."""
        return os.path.join(self.root, name(program_name, "program name"))
