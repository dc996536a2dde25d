"""whistler.xdp.xdp_load against the kernel, with the clang build of the seed's C twin.

Ids and tags are checked against bpftool's view of the pins; map reuse is shown by a counter value
written with bpftool surviving a reload.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.kernel.modules.bpftool_view import REPO, bpftool, program_words

PROGRAMS = ("xdp_dispatch", "tcp_handler", "udp_handler")
MAPS = ("jt", "proto_stats")


def load_args(pin_dir, clang_object, **extra):
    return dict({"object": str(clang_object), "pin_path": str(pin_dir / "xdp")}, **extra)


def test_load_changed_then_unchanged(pin_dir, clang_object, run_module):
    first = run_module("xdp_load", load_args(pin_dir, clang_object), diff=True)
    assert not first.get("failed"), first
    assert first["changed"] is True
    assert set(first["programs"]) == set(PROGRAMS) and set(first["maps"]) == set(MAPS)
    for name, prog in first["programs"].items():
        assert prog["pin"] == str(pin_dir / "xdp" / name)
        shown = bpftool("prog", "show", "pinned", prog["pin"])
        assert (prog["id"], prog["tag"], prog["reused"]) == (shown["id"], shown["tag"], False)
    for name, m in first["maps"].items():
        assert m["pin"] == str(pin_dir / "xdp" / "maps" / name)
        assert m["id"] == bpftool("map", "show", "pinned", m["pin"])["id"]
    assert all(v is None for v in first["diff"]["before"].values())

    second = run_module("xdp_load", load_args(pin_dir, clang_object), diff=True)
    assert second["changed"] is False
    assert second["diff"]["before"] == second["diff"]["after"]
    assert {n: p["id"] for n, p in second["programs"].items()} == {n: p["id"] for n, p in first["programs"].items()}
    assert all(p["reused"] for p in second["programs"].values())
    assert all(m["reused"] for m in second["maps"].values())


def test_check_mode_predicts_and_loads_nothing(pin_dir, clang_object, run_module):
    check = run_module("xdp_load", load_args(pin_dir, clang_object), check=True, diff=True)
    assert check["changed"] is True
    assert not (pin_dir / "xdp").exists()
    real = run_module("xdp_load", load_args(pin_dir, clang_object), diff=True)
    # The offline-predicted tags are the tags the kernel reports after the real load.
    assert {n: p["tag"] for n, p in check["programs"].items()} == {n: p["tag"] for n, p in real["programs"].items()}
    assert check["diff"]["after"].keys() == real["diff"]["after"].keys()


def test_reload_of_changed_object_keeps_maps(pin_dir, clang_object, run_module, tmp_path):
    run_module("xdp_load", load_args(pin_dir, clang_object))
    stats = pin_dir / "xdp" / "maps" / "proto_stats"
    subprocess.run(["bpftool", "map", "update", "pinned", str(stats), "key", "1", "0", "0", "0",
                    "value", "42", "0", "0", "0", "0", "0", "0", "0"], check=True)
    changed = tmp_path / "changed.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
                    "-c", str(_changed_source(tmp_path)), "-o", str(changed)], check=True, capture_output=True)
    old_dispatch = bpftool("prog", "show", "pinned", str(pin_dir / "xdp" / "xdp_dispatch"))["id"]
    result = run_module("xdp_load", load_args(pin_dir, changed))
    assert result["changed"] is True
    assert result["maps"]["proto_stats"]["reused"] is True
    assert result["programs"]["xdp_dispatch"]["action"] == "replace"
    assert result["programs"]["xdp_dispatch"]["id"] != old_dispatch
    dumped = bpftool("map", "lookup", "pinned", str(stats), "key", "1", "0", "0", "0")
    assert int.from_bytes(bytes(int(b, 16) for b in dumped["value"]), "little") == 42


def _changed_source(tmp_path):
    """The C twin with one more instruction in the dispatcher (an extra XDP_PASS path)."""
    text = (REPO / "bench" / "c" / "tail_call_dispatch.c").read_text()
    marker = "    if (data + 34 > data_end)"
    assert marker in text
    text = text.replace(marker, "    if (ctx->ingress_ifindex == 0xffffff)\n        return XDP_PASS;\n" + marker, 1)
    path = tmp_path / "changed.c"
    path.write_text(text)
    return path


def test_incompatible_map_fails_and_changes_nothing(pin_dir, clang_object, run_module, tmp_path):
    run_module("xdp_load", load_args(pin_dir, clang_object))
    stats = pin_dir / "xdp" / "maps" / "proto_stats"
    old_id = bpftool("map", "show", "pinned", str(stats))["id"]
    bigger = tmp_path / "bigger.c"
    bigger.write_text(_changed_source(tmp_path).read_text().replace("__uint(max_entries, 3);", "__uint(max_entries, 4);"))
    obj = tmp_path / "bigger.bpf.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", str(bigger),
                    "-o", str(obj)], check=True, capture_output=True)
    before = {n: bpftool("prog", "show", "pinned", str(pin_dir / "xdp" / n))["id"] for n in PROGRAMS}
    failed = run_module("xdp_load", load_args(pin_dir, obj))
    assert failed.get("failed") is True
    assert "proto_stats" in failed["msg"] and "replace_incompatible_maps" in failed["msg"]
    assert {n: bpftool("prog", "show", "pinned", str(pin_dir / "xdp" / n))["id"] for n in PROGRAMS} == before
    assert bpftool("map", "show", "pinned", str(stats))["id"] == old_id

    replaced = run_module("xdp_load", load_args(pin_dir, obj, replace_incompatible_maps=True))
    assert replaced["changed"] is True
    assert replaced["maps"]["proto_stats"]["action"] == "replace"
    assert bpftool("map", "show", "pinned", str(stats))["max_entries"] == 4


def test_absent_unpins_changed_then_unchanged(pin_dir, clang_object, run_module):
    run_module("xdp_load", load_args(pin_dir, clang_object))
    check = run_module("xdp_load", load_args(pin_dir, clang_object, state="absent"), check=True)
    assert check["changed"] is True and (pin_dir / "xdp" / "xdp_dispatch").exists()
    gone = run_module("xdp_load", load_args(pin_dir, clang_object, state="absent"), diff=True)
    assert gone["changed"] is True
    assert sorted(gone["removed"]) == sorted(check["removed"])
    assert len(gone["removed"]) == len(PROGRAMS) + len(MAPS)
    assert not (pin_dir / "xdp").exists()
    assert run_module("xdp_load", load_args(pin_dir, clang_object, state="absent"))["changed"] is False


@pytest.mark.parametrize("bad, message", [
    ({"object": "/nonexistent/x.bpf.o"}, "/nonexistent/x.bpf.o"),
    ({"pin_path": "/tmp/not-bpffs"}, "not on a bpffs mount"),
    ({"pin_path": "PIN/with.dot"}, "'.'"),
])
def test_bad_input_fails_clearly_and_changes_nothing(pin_dir, clang_object, run_module, bad, message):
    args = load_args(pin_dir, clang_object)
    args.update({k: v.replace("PIN", str(pin_dir)) for k, v in bad.items()})
    result = run_module("xdp_load", args)
    assert result.get("failed") is True
    assert message in result["msg"]
    assert list(pin_dir.iterdir()) == []


@pytest.mark.parametrize("state, name, reason", [
    ("present", "missing.bpf.o", "No such file or directory"),
    ("present", "", "is a directory, not a regular file: an object must be a regular file"),
    ("absent", "", "is a directory, not a regular file: an object must be a regular file"),
])
def test_unreadable_object_names_the_option_and_file(pin_dir, run_module, tmp_path, state, name, reason):
    path = str(tmp_path / name) if name else str(tmp_path)
    result = run_module("xdp_load", {"object": path, "pin_path": str(pin_dir / "xdp"), "state": state})
    assert result.get("failed") is True
    assert result["msg"].startswith(f"object {path}: ")
    assert result["msg"].endswith(reason)
    assert "Errno" not in result["msg"]
    assert list(pin_dir.iterdir()) == []


def test_absent_with_the_object_gone_is_ok_once_nothing_is_pinned(pin_dir, clang_object, run_module, tmp_path):
    obj = tmp_path / "gone.bpf.o"
    obj.write_bytes(clang_object.read_bytes())
    run_module("xdp_load", load_args(pin_dir, obj))
    obj.unlink()
    refused = run_module("xdp_load", load_args(pin_dir, obj, state="absent"))
    assert refused.get("failed") is True, refused
    assert refused["msg"].startswith(f"object {obj}: ") and refused["msg"].endswith("No such file or directory")
    assert pins_under(pin_dir / "xdp")

    run_module("xdp_load", {"pin_path": str(pin_dir / "xdp"), "state": "absent"})
    for check in (True, False):
        again = run_module("xdp_load", load_args(pin_dir, obj, state="absent"), check=check, diff=True)
        assert not again.get("failed"), again
        assert (again["changed"], again["removed"]) == (False, [])
    assert list(pin_dir.iterdir()) == []


def test_not_an_object_fails_clearly(pin_dir, run_module, tmp_path):
    junk = tmp_path / "junk.bpf.o"
    junk.write_bytes(b"this is not an ELF file")
    result = run_module("xdp_load", {"object": str(junk), "pin_path": str(pin_dir / "xdp")})
    assert result.get("failed") is True
    assert result["msg"].startswith(f"object {junk}: ")
    assert list(pin_dir.iterdir()) == []


def attach_dispatcher(run_module, netns_pair, pin_dir, **extra):
    result = run_module("xdp_attach", dict({"interface": netns_pair.if_a, "netns": netns_pair.a, "mode": "generic",
                                            "program": str(pin_dir / "xdp" / "xdp_dispatch")}, **extra))
    assert not result.get("failed"), result
    return result


def pins_under(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("via_link, record_dir", [(False, "attached"), (True, "links")])
def test_absent_refuses_while_the_dispatcher_is_attached(pin_dir, clang_object, run_module, netns_pair,
                                                         via_link, record_dir):
    run_module("xdp_load", load_args(pin_dir, clang_object))
    prog_id = attach_dispatcher(run_module, netns_pair, pin_dir, via_link=via_link)["prog_id"]
    pinned_before = pins_under(pin_dir)
    assert [p for p in pinned_before if p.startswith(f"xdp/{record_dir}/")], pinned_before

    for check in (True, False):
        refused = run_module("xdp_load", load_args(pin_dir, clang_object, state="absent"), check=check)
        assert refused.get("failed") is True, refused
        dispatcher = program_words(pin_dir / "xdp" / "xdp_dispatch")
        assert f"program {dispatcher} on interface {netns_pair.if_a!r} in network namespace {netns_pair.a!r}" \
            in refused["msg"]
        assert "force=true" in refused["msg"]
        assert pins_under(pin_dir) == pinned_before

    forced = run_module("xdp_load", load_args(pin_dir, clang_object, state="absent", force=True))
    assert forced["changed"] is True and len(forced["removed"]) == len(PROGRAMS) + len(MAPS)
    assert any(netns_pair.if_a in str(warning) for warning in forced.get("warnings", [])), forced
    # The dispatcher keeps running, and its record keeps it recognisable: detaching needs no force.
    assert [p.split("/")[1] for p in pins_under(pin_dir)] == [record_dir]
    detached = attach_dispatcher(run_module, netns_pair, pin_dir, state="absent")
    assert (detached["changed"], detached["previous_prog_id"]) == (True, prog_id)
    assert pins_under(pin_dir) == []


def test_absent_removes_the_records_of_attachments_that_are_gone(pin_dir, clang_object, run_module, netns_pair):
    run_module("xdp_load", load_args(pin_dir, clang_object))
    attach_dispatcher(run_module, netns_pair, pin_dir)
    # Another tool takes the program off: the record under attached/ is stale now.
    netns_pair.run(netns_pair.a, "ip", "link", "set", "dev", netns_pair.if_a, "xdpgeneric", "off")
    record = [p for p in pins_under(pin_dir) if p.startswith("xdp/attached/")]
    assert len(record) == 1

    gone = run_module("xdp_load", load_args(pin_dir, clang_object, state="absent"))
    assert not gone.get("failed"), gone
    assert str(pin_dir / record[0]) in gone["removed"]
    assert not (pin_dir / "xdp").exists()
