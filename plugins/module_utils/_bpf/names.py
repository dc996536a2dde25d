"""bpftool's spelling of BPF map types: a BPF_MAP_TYPE_* number in, its name out.

One table for the host (``maps.Map.type_name``, what xdp_info reports) and the controller (the
xdp_compile action plugin describing a compiled object), so both name a map the same way.
The controller imports this module too: standard library only.
"""

from __future__ import annotations

MAP_TYPE_NAMES = {1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash",
                  6: "percpu_array", 7: "stack_trace", 9: "lru_hash", 10: "lru_percpu_hash", 11: "lpm_trie",
                  14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap", 18: "sockhash", 25: "devmap_hash",
                  27: "ringbuf"}


def map_type_name(map_type: int) -> str:
    """bpftool's name of ``map_type``, or the number as text for a type it has no name for here."""
    return MAP_TYPE_NAMES.get(map_type, str(map_type))
