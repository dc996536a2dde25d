# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of whistler.xdp.xdp_compile: Whistler source on the controller in, object on the host out.

In: the task's ``src`` (a controller path, searched like ``template`` searches) or ``content``,
``dest`` and the file options. Compiles with the collection's ``compiler`` package (imported
lazily), at most once per distinct source per run (``_run_cache``), writes the object to a local
temporary file and hands it to ``ansible.builtin.copy``, which gives checksum idempotency, check
mode, diff and mode/owner/group. Out: copy's result plus ``programs``, ``maps``, ``sha256`` and
``cached``. A compile error fails the task with the compiler's ``file:line:col`` message and hint.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import shutil
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.basic import FILE_COMMON_ARGUMENTS
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.tag import program_tag, tags
from ansible_collections.whistler.xdp.plugins.modules.xdp_compile import (
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
)
from ansible_collections.whistler.xdp.plugins.plugin_utils._run_cache import cached_json

# bpftool's spelling of the map types the compiler can emit (BPF_MAP_TYPE_* number -> name).
MAP_TYPE_NAMES = {1: "hash", 2: "array", 3: "prog_array", 5: "percpu_hash", 6: "percpu_array",
                  7: "stack_trace", 9: "lru_hash", 11: "lpm_trie", 15: "sockmap", 18: "sockhash",
                  27: "ringbuf"}
CONTENT_FILENAME = "<content>"


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
    maps = [dict(name=m.name, type=MAP_TYPE_NAMES.get(m.map_type, str(m.map_type)), key_size=m.key_size,
                 value_size=m.value_size, max_entries=m.max_entries) for m in compiled.unit.maps]
    return {"elf": base64.b64encode(compiled.elf).decode(), "programs": programs, "maps": maps}


def compile_once(text, filename, cache_dir):
    """``(compiled data, cached)``: compiled in this run already (by any fork) or now."""
    key = hashlib.sha256(b"\0".join([compiler_fingerprint().encode(), filename.encode(), text.encode()]))
    return cached_json(cache_dir, key.hexdigest(), lambda: compile_to_json(text, filename))


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        try:
            validation, args = self.validate_argument_spec(
                argument_spec=dict(ARGUMENT_SPEC, **FILE_COMMON_ARGUMENTS),
                mutually_exclusive=MUTUALLY_EXCLUSIVE,
                required_one_of=REQUIRED_ONE_OF,
            )
            text, filename = self._source(args)
            data, cached = compile_once(text, filename, os.path.join(C.DEFAULT_LOCAL_TMP, "whistler-xdp-compile"))
            if "error" in data:
                raise AnsibleActionFail(f"compiling {filename} failed:\n{data['error']}")
            elf = base64.b64decode(data["elf"])
            before = self._remote_checksum(args["dest"], task_vars) if self._task.diff else None
            result = self._deliver(elf, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if not result.get("failed"):
            checksum = hashlib.sha1(elf).hexdigest()
            result.update(programs=data["programs"], maps=data["maps"], cached=cached,
                          sha256=hashlib.sha256(elf).hexdigest(), checksum=checksum)
            if self._task.diff and result.get("changed"):
                # copy cannot show a binary file; show which object was there and which is now.
                result["diff"] = {"before": {"path": args["dest"], "checksum": before},
                                  "after": {"path": args["dest"], "checksum": checksum,
                                            "programs": {p["name"]: p["tag"] for p in data["programs"]}}}
        return result

    def _remote_checksum(self, dest, task_vars):
        """SHA-1 of the file at ``dest`` on the host, None when there is none."""
        stat = self._execute_remote_stat(dest, all_vars=task_vars, follow=False)
        return stat.get("checksum") if stat.get("exists") else None

    def _source(self, args):
        if args["content"] is not None:
            return args["content"], CONTENT_FILENAME
        try:
            path = self._find_needle("files", args["src"])
        except AnsibleError as exc:
            raise AnsibleActionFail(to_text(exc)) from exc
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), args["src"]
        except (OSError, UnicodeDecodeError) as exc:
            raise AnsibleActionFail(f"cannot read Whistler source {path}: {exc}") from exc

    def _deliver(self, elf, task_vars):
        """Copy ``elf`` to the task's ``dest`` with ansible.builtin.copy (check mode and diff included)."""
        local_dir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
        try:
            object_file = os.path.join(local_dir, "object.bpf.o")
            with open(object_file, "wb") as f:
                f.write(elf)
            copy_task = self._task.copy()
            for option in ("content", "src"):
                copy_task.args.pop(option, None)
            copy_task.args["src"] = object_file
            copy_action = self._shared_loader_obj.action_loader.get(
                "ansible.builtin.copy", task=copy_task, connection=self._connection,
                play_context=self._play_context, loader=self._loader, templar=self._templar,
                shared_loader_obj=self._shared_loader_obj)
            return copy_action.run(task_vars=task_vars)
        finally:
            shutil.rmtree(local_dir, ignore_errors=True)
