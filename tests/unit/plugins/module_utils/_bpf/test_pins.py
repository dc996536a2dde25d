"""Pin path validation (no kernel needed: the checks are on the path and the filesystem type)."""

from __future__ import annotations

import pytest
from ansible_collections.whistler.xdp.plugins.module_utils._bpf import pins
from ansible_collections.whistler.xdp.plugins.module_utils._bpf.errors import BpfError


@pytest.mark.parametrize("path, message", [
    ("relative/pin", "absolute"),
    ("/sys/fs/bpf/app/v1.2/prog", "'v1.2'"),
])
def test_bad_paths(path, message):
    with pytest.raises(BpfError, match=message):
        pins.check_path(path)


def test_path_outside_bpffs(tmp_path):
    with pytest.raises(BpfError, match="not on a bpffs mount"):
        pins.check_path(str(tmp_path / "app" / "prog"))


@pytest.mark.parametrize("path, message", [
    ("/sys/fs/bpf/app\0x", "contains a NUL character"),
    ("/sys/fs/bpf/app\x1b[2J", "contains the control character U+001B"),
])
def test_paths_with_control_characters(path, message):
    with pytest.raises(BpfError) as caught:
        pins.check_path(path)
    assert message in str(caught.value)
    assert "\0" not in str(caught.value) and "\x1b" not in str(caught.value)
