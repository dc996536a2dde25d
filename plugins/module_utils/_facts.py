# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read-only facts about XDP on a host, for whistler.xdp.xdp_info; PRIVATE to the collection.

In: network namespaces and interface names, and bpffs directories. Out: plain dicts ready for
``exit_json``: the XDP programs on each interface (id, name, tag, mode), the programs and maps
pinned directly in the directories (maps with their contents decoded through BTF, prog-arrays as
slot -> program id, and each slot's program by name and pins), and ``summary``, one line per object
in words (interface -> program and mode, jump-table slot -> handler, map -> its entries). Every
program shown by id is named too. Nothing here changes kernel state.

``entry_words`` is the one place a map entry's value becomes text in the summary, so a richer
decoding of values (struct fields) changes how they read there too.
"""

from __future__ import annotations

import errno

from ._bpf import pins
from ._bpf.errors import BpfError
from ._bpf.maps import PROG_TYPE_NAMES, Map, ProgArray
from ._bpf.netlink import XdpHook, list_interfaces
from ._bpf.progarray import describe_entries
from ._bpf.program import Program
from ._diff import map_text, program_text

SUMMARY_ENTRIES = 16  # entries of one map shown in its summary line; the rest are counted


def _program_name(prog_id):
    """The full name of program ``prog_id`` (``Program.full_name``); "" if it was unloaded meanwhile."""
    try:
        with Program.from_id(prog_id) as program:
            return program.full_name()
    except BpfError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return ""


def _map_name(map_id):
    try:
        with Map.from_id(map_id) as bpf_map:
            return bpf_map.info.name
    except BpfError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return ""


def program_facts(program):
    """``insns`` says which count it is: the kernel holds the program as translated by the verifier, which
    rewrites some instructions, so this is not the compiler's count."""
    info = program.info()
    return dict(id=info.id, name=program.full_name(), tag=info.tag, type=PROG_TYPE_NAMES.get(info.type, str(info.type)),
                map_ids=list(info.map_ids), map_names=[_map_name(map_id) for map_id in info.map_ids],
                insns=dict(translated=info.xlated_prog_len // 8))


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


def interface_facts(netns, names, required=None):
    """{name: XDP hook facts} of ``names`` in ``netns``; every interface with a program attached when
    ``names`` is None. A name that is not there fails, unless not ``required`` (then it is left out; by
    default names are required, while listed interfaces that go away meanwhile are just not reported)."""
    required = names is not None if required is None else required
    wanted = names if names is not None else list_interfaces(netns)
    result = {}
    for name in wanted:
        try:
            with XdpHook(name, netns) as hook:
                state = hook.state()
        except OSError as exc:
            if required or exc.errno != errno.ENODEV:
                raise
            continue
        if names is None and not state.attached:
            continue
        facts = dict(ifindex=state.ifindex, netns=netns, mode=state.mode, prog_id=state.prog_id,
                     attached=state.attached,
                     attached_names={mode: _program_name(prog_id) for mode, prog_id in state.attached.items()})
        if state.prog_id:
            with Program.from_id(state.prog_id) as program:
                facts.update(prog_name=program.full_name(), tag=program.info().tag)
        result[name] = facts
    return result


def several_interface_facts(namespaces, names):
    """{key: hook facts} over ``namespaces`` (None: the host's own one): keyed by interface name for one
    namespace, by ``<netns>/<interface>`` for several. With several, a named interface is reported from
    each namespace that has it, and fails only when none has it."""
    if len(namespaces) <= 1:
        return interface_facts(namespaces[0] if namespaces else None, names)
    result = {}
    for netns in namespaces:
        found = interface_facts(netns, names, required=False)
        result.update({f"{netns}/{name}": facts for name, facts in found.items()})
    missing = [name for name in names or () if not any(key.endswith("/" + name) for key in result)]
    if missing:
        raise BpfError(errno.ENODEV, "xdp_query", f"interface {missing[0]!r}",
                       f"no such interface in any of the network namespaces {', '.join(namespaces)}")
    return result


def pinned_facts(directories, contents, by_path=False):
    """``(programs, maps)``: {pin name (``by_path``: pin path): facts} of what is pinned directly in
    ``directories``."""
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
            key = path if by_path else name
            if key in target:
                raise ValueError(f"two {kind}s are pinned as {name!r}: {target[key]['pin']} and {path}")
            target[key] = dict(facts, pin=path)
    return programs, maps


# -- summary ----------------------------------------------------------------------------------------

def entry_words(value):
    """A map entry's value as the summary shows it (a number, or a struct's fields)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{field}: {entry_words(item)}" for field, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(entry_words(item) for item in value) + "]"
    return str(value)


def interface_line(key, facts):
    parts = []
    for mode, prog_id in facts["attached"].items():
        name = facts["attached_names"][mode] or "program"
        text = program_text(name, facts["tag"], prog_id) if prog_id == facts["prog_id"] else f"{name} (id {prog_id})"
        parts.append(f"{text} in {mode} mode")
    return f"{key}: {', '.join(parts) or 'no XDP program'}"


def program_line(facts):
    maps = ", ".join(name or f"id {map_id}" for name, map_id in zip(facts["map_names"], facts["map_ids"]))
    return (f"program {program_text(facts['name'], facts['tag'], facts['id'])}: {facts['type']}, "
            f"{facts['insns']['translated']} instructions as translated by the kernel"
            + (f", uses {maps}" if maps else "") + f", pinned at {facts['pin']}")


def map_lines(facts):
    head = f"map {map_text(facts['name'], facts['type'], facts['id'])}"
    if "entries" not in facts:
        return [f"{head}: {facts['max_entries']} entries at most (contents not read)"]
    if "slots" in facts:
        filled = f"{len(facts['slots'])} of {facts['max_entries']} slots filled"
        return [f"{head}: {filled}"] + [
            f"{facts['name']} slot {key}: {slot['name'] or 'program'} (id {slot['id']})"
            + (f", pinned at {', '.join(slot['pins'])}" if slot["pins"] else "")
            for key, slot in facts["slots"].items()]
    shown = list(facts["entries"].items())[:SUMMARY_ENTRIES]
    text = ", ".join(f"{key}={entry_words(value)}" for key, value in shown) or "empty"
    more = len(facts["entries"]) - len(shown)
    return [f"{head}: {text}" + (f" and {more} more" if more > 0 else "")]


def summary(interfaces, programs, maps):
    """One line per object, in words: interfaces, then programs, then maps (prog-arrays slot by slot)."""
    lines = [interface_line(key, facts) for key, facts in interfaces.items()]
    lines += [program_line(facts) for facts in programs.values()]
    for facts in maps.values():
        lines += map_lines(facts)
    return lines
