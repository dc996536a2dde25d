"""Program and map names longer than the kernel's 15 characters load, as with libbpf: the kernel object
keeps the first 15 characters, pins, plans and results keep the full ELF name. The two handlers of
tests/testdata/c/loader_longnames.c share their first 15 characters, so only full names tell them apart.
bpftool is the independent view of what the kernel holds (it too reads a program's full name from BTF)."""

from __future__ import annotations

from ansible_collections.whistler.xdp.plugins.module_utils._bpf import load, objfile
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.maps import Map
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import describe_entries
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.program import Program

from tests.kernel.modules.bpftool_view import bpftool

DISPATCH, FIRST, SECOND = "dispatcher_with_a_long_name", "handler_with_long_name_first", "handler_with_long_name_second"
JT, STATS = "jump_table_of_handlers", "protocol_statistics_counters"
XDP_DROP, XDP_TX = 1, 3


def test_long_names_load_and_pin_under_their_full_names(pin_dir, build, frame):
    app = pin_dir / "app"
    spec = objfile.read_object(build("loader_longnames.c"))
    assert [p.name for p in spec.programs] == [DISPATCH, FIRST, SECOND]
    assert [m.name for m in spec.maps] == [JT, STATS]
    result = load.apply_load(load.plan_load(spec, str(app)))
    assert set(result.programs) == {DISPATCH, FIRST, SECOND} and set(result.maps) == {JT, STATS}

    for name, prog in result.programs.items():
        assert prog.pin == str(app / name)
        with Program.from_pin(prog.pin) as loaded:
            assert loaded.info().name == name[:15], "the kernel keeps 15 characters"
            assert loaded.full_name() == name, "the full name comes back from the program's BTF"
        shown = bpftool("prog", "show", "pinned", prog.pin)
        assert (shown["id"], shown["name"]) == (prog.id, name), "bpftool reads the full name from BTF too"
    for name, m in result.maps.items():
        assert m.pin == str(app / "maps" / name)
        assert bpftool("map", "show", "pinned", m.pin)["name"] == name[:15]

    replan = load.plan_load(spec, str(app))
    assert not replan.changed and [s.name for s in replan.programs] == [DISPATCH, FIRST, SECOND]

    with Map.from_pin(str(app / "maps" / JT)) as jt, Program.from_pin(str(app / FIRST)) as first, \
            Program.from_pin(str(app / SECOND)) as second:
        jt.set(0, first.fd)
        jt.set(1, second.fd)
        slots = describe_entries(jt.entries(), [str(app)])
    assert {key: (s.name, s.pins) for key, s in slots.items()} == \
        {0: (FIRST, (str(app / FIRST),)), 1: (SECOND, (str(app / SECOND),))}
    with Program.from_pin(str(app / DISPATCH)) as dispatch:
        assert dispatch.test_run(frame(6)).retval == XDP_DROP  # slot 0: the first handler
