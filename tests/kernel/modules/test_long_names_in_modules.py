"""The modules with program and map names longer than the kernel's 15 characters
(tests/testdata/c/loader_longnames.c, built with clang): results, diffs and pins use the full ELF names."""

from __future__ import annotations

import pytest

from tests.testdata.build import build_c

DISPATCH, FIRST, SECOND = "dispatcher_with_a_long_name", "handler_with_long_name_first", "handler_with_long_name_second"
JT, STATS = "jump_table_of_handlers", "protocol_statistics_counters"


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    return build_c("loader_longnames.c", tmp_path_factory.mktemp("long"))


def test_modules_report_full_names(pin_dir, obj, run_module):
    app = pin_dir / "app"
    loaded = run_module("xdp_load", {"object": str(obj), "pin_path": str(app)}, diff=True)
    assert not loaded.get("failed"), loaded
    assert set(loaded["programs"]) == {DISPATCH, FIRST, SECOND} and set(loaded["maps"]) == {JT, STATS}
    assert set(loaded["diff"]["after"]) == {str(app / n) for n in (DISPATCH, FIRST, SECOND)} | \
        {str(app / "maps" / n) for n in (JT, STATS)}
    wired = run_module("xdp_prog_array", {"map": str(app / "maps" / JT),
                                          "entries": {"0": str(app / FIRST), "1": str(app / SECOND)}})
    assert wired["changed"] is True
    assert wired["entries"] == {"0": loaded["programs"][FIRST]["id"], "1": loaded["programs"][SECOND]["id"]}
    assert run_module("xdp_load", {"object": str(obj), "pin_path": str(app)})["changed"] is False
    gone = run_module("xdp_load", {"object": str(obj), "pin_path": str(app), "state": "absent"})
    assert gone["changed"] is True and list(pin_dir.iterdir()) == []
