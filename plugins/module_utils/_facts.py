# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read-only facts about XDP on a host, for whistler.xdp.xdp_info; PRIVATE to the collection.

In: a network namespace and interface names, and bpffs directories. Out: plain dicts ready for
``exit_json``: the XDP programs on each interface (id, name, tag, mode), and the programs and maps
pinned directly in the directories (maps with their contents decoded through BTF, prog-arrays as
slot -> program id, and each slot's program by name and pins). Nothing here changes kernel state.
"""

from __future__ import annotations

from ._bpf import pins
from ._bpf.maps import PROG_TYPE_NAMES, Map, ProgArray
from ._bpf.netlink import XdpHook, list_interfaces
from ._bpf.progarray import describe_entries
from ._bpf.program import Program


def program_facts(program):
    info = program.info()
    return dict(id=info.id, name=program.full_name(), tag=info.tag, type=PROG_TYPE_NAMES.get(info.type, str(info.type)),
                map_ids=list(info.map_ids), insns=info.xlated_prog_len // 8)


def map_facts(bpf_map, contents, directories=()):
    """Facts of ``bpf_map``; with ``contents`` its entries, and for a prog-array the program in each
    slot, found by name and by its pins under ``directories``."""
    info = bpf_map.info
    facts = dict(id=info.id, name=info.name, type=bpf_map.type_name, key_size=info.key_size,
                 value_size=info.value_size, max_entries=info.max_entries, flags=info.flags)
    if contents and isinstance(bpf_map, ProgArray):
        facts["entries"] = bpf_map.entries()
        facts["slots"] = {key: dict(id=slot.id, name=slot.name, pins=list(slot.pins))
                          for key, slot in describe_entries(facts["entries"], directories).items()}
    elif contents:
        facts["entries"] = bpf_map.typed_items()
    return facts


def interface_facts(netns, names):
    """{name: XDP hook facts} for ``names``; all interfaces with a program attached when ``names`` is None."""
    wanted = names if names is not None else list_interfaces(netns)
    result = {}
    for name in wanted:
        with XdpHook(name, netns) as hook:
            state = hook.state()
        if names is None and not state.attached:
            continue
        facts = dict(ifindex=state.ifindex, mode=state.mode, prog_id=state.prog_id, attached=state.attached)
        if state.prog_id:
            with Program.from_id(state.prog_id) as program:
                facts.update(prog_name=program.full_name(), tag=program.info().tag)
        result[name] = facts
    return result


def pinned_facts(directories, contents):
    """``(programs, maps)``: {pin name: facts} of what is pinned directly in ``directories``."""
    programs, maps = {}, {}
    for directory in directories:
        for name, kind in pins.list_pins(pins.check_path(directory, "pin directory")).items():
            path = pins.join(directory, name)
            if kind == "program":
                target = programs
                with Program.from_pin(path) as program:
                    facts = program_facts(program)
            elif kind == "map":
                target = maps
                with Map.from_pin(path) as bpf_map:
                    facts = map_facts(bpf_map, contents, directories)
            else:
                continue
            if name in target:
                raise ValueError(f"two {kind}s are pinned as {name!r}: {target[name]['pin']} and {path}")
            target[name] = dict(facts, pin=path)
    return programs, maps
