"""``pins.locked`` across processes: a second process waits for the pin directory's flock, and
``apply_prog_array`` (like every apply) waits for it too; a directory the holder created and removed
again is re-created and locked by the waiter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

from ansible_collections.whistler.xdp.plugins.module_utils._bpf.progarray import (
    apply_prog_array,
    plan_prog_array,
)

from tests.kernel.loader.xdp_setup import load_pinned
from tests.kernel.modules.bpftool_view import prog_array_entries

HOLDER = textwrap.dedent("""
    import sys
    from ansible_collections.whistler.xdp.plugins.module_utils._bpf import pins
    with pins.locked(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def python(code: str, *argv: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, "-c", code, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


class Holder:
    """Another process holding ``pins.locked(directory)`` until ``release()``."""

    def __init__(self, directory):
        self.proc = python(HOLDER, str(directory))
        assert self.proc.stdout.readline().strip() == "locked", self.proc.stderr.read()

    def release(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=10) == 0, self.proc.stderr.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_a_second_process_waits_for_the_lock(pin_dir):
    missing = pin_dir / "new" / "dir"  # created by the holder, removed again when it lets go
    with Holder(missing) as holder:
        assert missing.is_dir()
        waiter = python(HOLDER, str(missing))
        try:
            time.sleep(0.5)
            assert waiter.poll() is None, "the second process got the lock while the first held it"
            holder.release()
            assert waiter.stdout.readline().strip() == "locked", waiter.stderr.read()
        finally:
            waiter.kill()
            waiter.wait()


def test_lock_is_released_and_the_directory_recreated_for_the_waiter(pin_dir):
    missing = pin_dir / "new" / "dir"
    with Holder(missing) as holder:
        waiter = python(HOLDER, str(missing))
        try:
            time.sleep(0.3)
            assert waiter.poll() is None
            holder.release()
            assert waiter.stdout.readline().strip() == "locked", waiter.stderr.read()
            assert missing.is_dir(), "the waiter locks a fresh directory at the same path"
            waiter.stdin.write("\n")
            waiter.stdin.flush()
            assert waiter.wait(timeout=10) == 0
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
    assert not (pin_dir / "new").exists(), "directories created only for the lock are removed again"


def test_apply_waits_for_the_lock_of_the_pin_directory(pin_dir, build):
    app = load_pinned(build("counter_dispatch.c"), pin_dir / "app")
    jump_table = app / "maps" / "jt"
    plan = plan_prog_array(str(jump_table), {17: str(app / "handler_a")})
    assert plan.changed
    outcome = {}
    with Holder(jump_table.parent) as holder:
        worker = threading.Thread(target=lambda: outcome.update(result=apply_prog_array(plan)))
        worker.start()
        try:
            time.sleep(0.5)
            assert worker.is_alive(), "apply_prog_array wrote while another process held the lock"
            assert prog_array_entries(jump_table) == {}
            holder.release()
        finally:
            worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome["result"].changed
    assert set(prog_array_entries(jump_table)) == {17}
