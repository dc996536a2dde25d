"""Identity of what is pinned at a bpffs path: a path in, ``Pinned(kind, id, prog_id)`` or None out.

Also collects the program ids pinned under a directory (programs, and the programs that pinned
links run), which is how attach plans recognise programs this collection put on a hook and how
prog-array slots are traced back to pins.
(``pins`` handles the paths themselves: checks, atomic replacement, removal.)
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Set

from . import pins, syscalls
from .errors import BpfError
from .fd import FdOwner


@dataclass(frozen=True)
class Pinned:
    """``kind`` is "prog", "map" or "link"; ``prog_id`` is the program a prog or link stands for."""

    path: str
    kind: str
    id: int
    prog_id: int = 0


def pinned(path: str) -> Optional[Pinned]:
    """The object pinned at ``path``, or None when nothing is."""
    try:
        obj = FdOwner(syscalls.obj_get(path), path)
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    with obj:
        fields = syscalls.fdinfo(obj.fd)
        if "link_type" in fields:
            info = syscalls.link_info(obj.fd)
            return Pinned(path, "link", info.id, info.prog_id)
        if "map_type" in fields:
            return Pinned(path, "map", syscalls.map_info(obj.fd).id)
        prog_id = syscalls.prog_info(obj.fd).id
        return Pinned(path, "prog", prog_id, prog_id)


def pins_by_prog_id(directory: str) -> Dict[int, List[str]]:
    """{program id: pin paths} of every program pinned anywhere under ``directory``, directly or
    behind a pinned link (the link's pin is listed for its program). Only entries ``pins.join`` accepts
    are looked at: symlinks (which could lead anywhere) and names this collection never makes are not."""
    found: Dict[int, List[str]] = {}
    for path in pins.entries(directory):
        if os.path.isdir(path):
            for prog_id, paths in pins_by_prog_id(path).items():
                found.setdefault(prog_id, []).extend(paths)
            continue
        obj = pinned(path)
        if obj is not None and obj.prog_id:
            found.setdefault(obj.prog_id, []).append(obj.path)
    return found


def pinned_prog_ids(directory: str) -> Set[int]:
    """Ids of every program pinned anywhere under ``directory``, directly or behind a pinned link."""
    return set(pins_by_prog_id(directory))
