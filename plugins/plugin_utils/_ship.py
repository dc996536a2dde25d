# Copyright (c) whistler.xdp contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A controller-side BPF object, shipped for one task; PRIVATE to the whistler.xdp collection.

In: an action plugin, the task's ``src`` (a Whistler source or a compiled BPF object on the controller,
found like ``template`` finds files) and the run's compile cache directory.
Out: ``object_from_src`` -> ``Compiled(elf, programs, maps, cached, sha256)``: a source compiled once per
run (``_compile.compile_once``), an object read as it is; ``ship(action, elf)``: the object written into
Ansible's remote temporary directory of the task (created if needed, as ``copy`` does, in check mode too),
returning its path there; ``ship_file`` does the same for a file on the controller. The caller removes the temporary directory after the module ran.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.whistler.xdp.plugins.plugin_utils._compile import compile_once

ELF_MAGIC = b"\x7fELF"
MAX_SOURCE = 16 << 20


@dataclass
class Compiled:
    elf: bytes
    programs: list
    maps: list
    cached: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.elf).hexdigest()


def object_from_src(action, src: str, cache_dir: str) -> Compiled:
    """The object ``src`` names: compiled when it is Whistler source, as it is when it is an ELF object."""
    try:
        path = action._find_needle("files", src)
    except AnsibleError as exc:
        raise AnsibleActionFail(to_text(exc)) from exc
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SOURCE + 1)
    except OSError as exc:
        raise AnsibleActionFail(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_SOURCE:
        raise AnsibleActionFail(f"{path}: larger than {MAX_SOURCE} bytes; not a Whistler source or BPF object")
    if data.startswith(ELF_MAGIC):
        return Compiled(data, [], [], False)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnsibleActionFail(f"{path}: neither a BPF object (ELF) nor UTF-8 Whistler source ({exc})") from exc
    compiled, cached = compile_once(text, src, cache_dir)
    if "error" in compiled:
        raise AnsibleActionFail(f"compiling {src} failed:\n{compiled['error']}")
    return Compiled(base64.b64decode(compiled["elf"]), compiled["programs"], compiled["maps"], cached)


def ship_file(action, local_path: str, name: str) -> str:
    """Copy ``local_path`` into the task's remote temporary directory (made if needed) as ``name``; its
    path there. The caller removes the directory when the task is done (``action._remove_tmp_path``)."""
    shell = action._connection._shell
    if shell.tmpdir is None:
        action._make_tmp_path()
    remote = shell.join_path(shell.tmpdir, name)
    action._transfer_file(local_path, remote)
    action._fixup_perms2((shell.tmpdir, remote))
    return remote


def ship(action, elf: bytes, name: str = "object.bpf.o") -> str:
    """Put ``elf`` into the task's remote temporary directory; its path there."""
    local_dir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
    try:
        local = os.path.join(local_dir, name)
        with open(local, "wb") as f:
            f.write(elf)
        return ship_file(action, local, name)
    finally:
        shutil.rmtree(local_dir, ignore_errors=True)
