# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compile-once for the xdp_compile and xdp_dispatcher action plugins; PRIVATE to the whistler.xdp collection.

In: Whistler source text, the name it is reported under, and the cache directory (``cache_dir``: beside
the run's own temporary directory, so later runs find it too). Out: ``compile_once``: ``(data, cached)``,
where data is ``{"elf": base64, "programs": [...], "maps": [...]}`` or ``{"error": "file:line:col: ..."}``,
built by the first fork (of this run or an earlier one) that asks for a source and read back by all the
others (``_run_cache``). The key is the SHA-256 of the compiler's own code, the name and the text, so a
changed source or a changed compiler never reuses an object; the compiler itself is only imported to
compile, so a rerun with nothing new never loads it. No Ansible controller code is imported here, so this is
testable on its own.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os

from ansible_collections.whistler.xdp.plugins.module_utils._bpf.names import map_type_name
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.tag import program_tag, tags
from ansible_collections.whistler.xdp.plugins.plugin_utils._run_cache import cached_json

CACHE_NAME = "whistler-xdp-compile"


def cache_dir(local_tmp):
    """The compile cache for a run whose own temporary directory is ``local_tmp`` (Ansible's
    ``DEFAULT_LOCAL_TMP``, removed at the end of the run): beside it, in Ansible's local temporary root
    (``~/.ansible/tmp`` by default), so that a rerun compiles nothing it compiled before."""
    return os.path.join(os.path.dirname(os.path.normpath(local_tmp)), CACHE_NAME)


@functools.lru_cache(maxsize=1)
def compiler_fingerprint():
    """SHA-256 over the compiler's own source, so a changed compiler never reuses a cached object."""
    import ansible_collections.whistler.xdp.compiler as compiler_package

    digest = hashlib.sha256()
    root = os.path.dirname(compiler_package.__file__)
    for directory, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(directory, name)
            digest.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def compile_to_json(text, filename):
    """Compile; the object and its description as JSON-able data, or ``{"error": message}``."""
    from ansible_collections.whistler.xdp import compiler
    from ansible_collections.whistler.xdp.compiler.isa import encode

    try:
        compiled = compiler.compile_source(text, filename)
    except compiler.CompileError as exc:
        if exc.source_line is None:
            exc.attach_source(text)
        return {"error": str(exc)}
    programs = []
    for program in compiled.programs:
        insns = encode(list(program.insns))
        programs.append(dict(name=program.decl.name, section=program.decl.section, insns=program.slots,
                             tag=program_tag(insns, "sha256"), tags=sorted(tags(insns))))
    maps = [dict(name=m.name, type=map_type_name(m.map_type), key_size=m.key_size,
                 value_size=m.value_size, max_entries=m.max_entries) for m in compiled.unit.maps]
    return {"elf": base64.b64encode(compiled.elf).decode(), "programs": programs, "maps": maps}


def compile_once(text, filename, cache_dir):
    """``(compiled data, cached)``: compiled in this run already (by any fork) or now."""
    key = hashlib.sha256(b"\0".join([compiler_fingerprint().encode(), filename.encode(), text.encode()]))
    return cached_json(cache_dir, key.hexdigest(), lambda: compile_to_json(text, filename))
