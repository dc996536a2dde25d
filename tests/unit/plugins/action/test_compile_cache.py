"""The xdp_compile action plugin's compile-once cache: keyed by the source and the compiler's own code.

(The code lives in plugin_utils/_compile.py, which imports no controller code: importing the action
plugin here would change how in-process module runs in the kernel tests report warnings.)"""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.plugin_utils import _compile as xdp_compile

PASS_ALL = '(defprog pass-all (:type :xdp :section "xdp" :license "GPL")\n  XDP_PASS)\n'
DROP_ALL = '(defprog drop-all (:type :xdp :section "xdp" :license "GPL")\n  XDP_DROP)\n'


@pytest.fixture
def builds(monkeypatch):
    """The sources actually compiled, in order."""
    compiled = []
    real = xdp_compile.compile_to_json

    def counting(text, filename):
        compiled.append(text)
        return real(text, filename)

    monkeypatch.setattr(xdp_compile, "compile_to_json", counting)
    return compiled


def test_each_distinct_source_is_compiled_once(tmp_path, builds):
    cache = str(tmp_path)
    first, cached_first = xdp_compile.compile_once(PASS_ALL, "a.lisp", cache)
    again, cached_again = xdp_compile.compile_once(PASS_ALL, "a.lisp", cache)
    other, cached_other = xdp_compile.compile_once(DROP_ALL, "a.lisp", cache)
    assert (cached_first, cached_again, cached_other) == (False, True, False)
    assert again == first and other != first
    assert builds == [PASS_ALL, DROP_ALL]
    assert [p["name"] for p in first["programs"]] == ["pass_all"]


def test_a_changed_compiler_does_not_reuse_cached_objects(tmp_path, builds, monkeypatch):
    cache = str(tmp_path)
    xdp_compile.compile_once(PASS_ALL, "a.lisp", cache)
    monkeypatch.setattr(xdp_compile, "compiler_fingerprint", lambda: "another compiler")
    assert xdp_compile.compile_once(PASS_ALL, "a.lisp", cache)[1] is False
    assert builds == [PASS_ALL, PASS_ALL]


def test_compiler_fingerprint_covers_the_compiler_sources():
    import ansible_collections.whistler.xdp.compiler as compiler_package

    assert len(xdp_compile.compiler_fingerprint()) == 64
    assert compiler_package.__file__.endswith("__init__.py")


def test_compile_errors_are_cached_with_their_location(tmp_path, builds):
    broken = '(defprog broken (:type :xdp :section "xdp" :license "GPL")\n  (let ((x 1)\n'
    data, cached = xdp_compile.compile_once(broken, "broken.lisp", str(tmp_path))
    assert cached is False
    assert "broken.lisp:" in data["error"]
    assert xdp_compile.compile_once(broken, "broken.lisp", str(tmp_path)) == (data, True)
    assert builds == [broken]


def test_every_map_type_the_compiler_emits_is_reported_by_name():
    from ansible_collections.whistler.xdp.compiler.decls import MAP_TYPES

    options = {"lpm-trie": ":key-size 8 :value-size 4 :max-entries 16 :map-flags 1",
               "ringbuf": ":max-entries 4096"}
    source = "".join(f"(defmap m{i} :type :{kind} {options.get(kind, ':key-size 4 :value-size 4 :max-entries 4')})\n"
                     for i, kind in enumerate(MAP_TYPES)) + PASS_ALL
    data = xdp_compile.compile_to_json(source, "maps.lisp")
    assert "error" not in data, data
    assert [m["type"] for m in data["maps"]] == [kind.replace("-", "_") for kind in MAP_TYPES]


def test_the_cache_outlives_the_run_beside_its_temporary_directory():
    assert xdp_compile.cache_dir("/root/.ansible/tmp/ansible-local-123abc") == "/root/.ansible/tmp/whistler-xdp-compile"
    assert xdp_compile.cache_dir("/tmp/x/ansible-local-9/") == "/tmp/x/whistler-xdp-compile"
