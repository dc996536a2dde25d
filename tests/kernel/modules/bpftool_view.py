"""bpftool's view of the kernel: an oracle independent of the collection's loader.

In: pin paths and objects. Out: ids, prog-array slots, XDP hooks as bpftool/iproute2 report them,
a pinned program in the words the modules' diffs use (``program_words``), and ``bpftool_loadall`` to
load an object with libbpf instead of our loader.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def bpftool(*argv: str):
    """``bpftool -j ARGV`` parsed."""
    out = subprocess.run(["bpftool", "-j", *argv], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else None


def bpftool_loadall(obj: Path, prog_dir: Path, map_dir: Path) -> None:
    """Load every program of ``obj`` with bpftool, pinning programs and maps (the reference loader)."""
    subprocess.run(["bpftool", "prog", "loadall", str(obj), str(prog_dir), "type", "xdp",
                    "pinmaps", str(map_dir)], check=True, capture_output=True, text=True)


def pinned_id(path: Path) -> int:
    """Id of the program or map pinned at ``path``, as bpftool reports it."""
    kind = "map" if "maps" in path.parts else "prog"
    return bpftool(kind, "show", "pinned", str(path))["id"]


def program_words(path: Path) -> str:
    """The program pinned at ``path`` as the modules' diffs name it, from bpftool's name, tag and id."""
    shown = bpftool("prog", "show", "pinned", str(path))
    return f"{shown['name']} (tag {shown['tag']}, id {shown['id']})"


def prog_array_entries(path: Path) -> dict:
    """{slot: prog id} of the prog-array pinned at ``path``, as bpftool dumps it."""
    return {int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"):
            int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
            for e in bpftool("map", "dump", "pinned", str(path)) or []}


_IP_XDP_MODES = {1: "native", 2: "generic", 3: "offload"}


def xdp_hook(netns: str, ifname: str) -> dict:
    """{mode: prog id} attached to ``ifname`` in ``netns``, as ``ip -j link show`` reports it."""
    out = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "ip", "-j", "link", "show", "dev", ifname],
                         check=True, capture_output=True, text=True).stdout
    xdp = json.loads(out)[0].get("xdp", {})
    return {_IP_XDP_MODES[a["mode"]]: a["prog"]["id"] for a in xdp.get("attached", [])}
