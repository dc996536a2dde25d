"""Fixed tables of the Whistler dialect that expansion consults: no logic beyond lookups.

In: nothing. Out: ``TYPES`` (type name -> size in bytes), ``CONSTANTS`` (built-in named
integers), ``HELPERS`` (helper name -> ``Helper`` id and arity), ``CTX_LAYOUTS`` (program type ->
context fields), ``map_shape_problem`` (kernel rules on a map's sizes and flags, checked at
compile time so a bad ``defmap`` fails with its location instead of an EINVAL at load).
All names are upper case, as the reader produces them.
"""

from __future__ import annotations

from .records import dataclass

TYPES = {"U8": 1, "U16": 2, "U32": 4, "U64": 8, "I8": 1, "I16": 2, "I32": 4, "I64": 8}

# Width -> the unsigned type that loads or stores exactly that many bytes.
UNSIGNED_BY_SIZE = {1: "U8", 2: "U16", 4: "U32", 8: "U64"}

CONSTANTS = {
    "XDP_ABORTED": 0,
    "XDP_DROP": 1,
    "XDP_PASS": 2,
    "XDP_TX": 3,
    "XDP_REDIRECT": 4,
    "TC_ACT_OK": 0,
    "TC_ACT_SHOT": 2,
    "TC_ACT_STOLEN": 4,
    "TC_ACT_REDIRECT": 7,
    "BPF_ANY": 0,
    "BPF_NOEXIST": 1,
    "BPF_EXIST": 2,
    "BPF_F_CURRENT_CPU": 0xFFFFFFFF,  # perf-event-output: the slot of the CPU the program runs on
    "SK_DROP": 0,
    "SK_PASS": 1,
    "NULL": 0,
    "NIL": 0,
    "T": 1,
}


@dataclass(frozen=True)
class Helper:
    id: int  # BPF_FUNC_* number
    min_args: int
    max_args: int


def _h(helper_id: int, min_args: int, max_args: int | None = None) -> Helper:
    return Helper(helper_id, min_args, min_args if max_args is None else max_args)


# Helpers callable by name with plain (non-map) arguments; ids as in uapi linux/bpf.h
# (the reference's 159/161/226 for the last three are wrong; tests check against the header). Helpers that take a map
# (map_lookup_elem, tail_call, ringbuf_*, perf_event_output, get_stackid) have their own forms.
HELPERS = {
    "PROBE-READ": _h(4, 3),
    "KTIME-GET-NS": _h(5, 0),
    "TRACE-PRINTK": _h(6, 2, 5),
    "GET-PRANDOM-U32": _h(7, 0),
    "GET-SMP-PROCESSOR-ID": _h(8, 0),
    "SKB-STORE-BYTES": _h(9, 5),
    "L3-CSUM-REPLACE": _h(10, 5),
    "L4-CSUM-REPLACE": _h(11, 5),
    "GET-CURRENT-PID-TGID": _h(14, 0),
    "GET-CURRENT-UID-GID": _h(15, 0),
    "GET-CURRENT-COMM": _h(16, 2),
    "REDIRECT": _h(23, 2),
    "SKB-LOAD-BYTES": _h(26, 4),
    "CSUM-DIFF": _h(28, 5),
    "GET-CURRENT-TASK": _h(35, 0),
    "SKB-PULL-DATA": _h(39, 2),
    "XDP-ADJUST-HEAD": _h(44, 2),
    "PROBE-READ-STR": _h(45, 3),
    "GET-SOCKET-COOKIE": _h(46, 1),
    "XDP-ADJUST-META": _h(54, 2),
    "OVERRIDE-RETURN": _h(58, 2),
    "XDP-ADJUST-TAIL": _h(65, 2),
    "FIB-LOOKUP": _h(69, 4),
    "GET-CURRENT-CGROUP-ID": _h(80, 0),
    "SK-LOOKUP-TCP": _h(84, 5),
    "SK-LOOKUP-UDP": _h(85, 5),
    "SK-RELEASE": _h(86, 1),
    "SEND-SIGNAL": _h(109, 1),
    "PROBE-READ-USER": _h(112, 3),
    "PROBE-READ-KERNEL": _h(113, 3),
    "PROBE-READ-USER-STR": _h(114, 3),
    "PROBE-READ-KERNEL-STR": _h(115, 3),
    "JIFFIES64": _h(118, 0),
    "SK-ASSIGN": _h(124, 3),
    "KTIME-GET-BOOT-NS": _h(125, 0),
    "D-PATH": _h(147, 3),
    "PER-CPU-PTR": _h(153, 2),
    "GET-CURRENT-TASK-BTF": _h(158, 0),
    "KTIME-GET-COARSE-NS": _h(160, 0),
    "KTIME-GET-TAI-NS": _h(208, 0),
}


@dataclass(frozen=True)
class CtxField:
    offset: int
    type: str  # element type, e.g. "U32"
    count: int = 1  # > 1 for array fields (need an index)
    readable: bool = True  # may the program load it (else the verifier rejects the load)
    writable: bool = False  # may the program store to it (else the verifier rejects the store)


def _u32_fields(*names_and_counts, unreadable: tuple = (), writable: tuple = ()) -> dict[str, CtxField]:
    """Consecutive u32 fields starting at offset 0; an entry may be (name, element_count)."""
    fields, offset = {}, 0
    for entry in names_and_counts:
        name, count = entry if isinstance(entry, tuple) else (entry, 1)
        fields[name] = CtxField(offset, "U32", count, name not in unreadable, name in writable)
        offset += 4 * count
    return fields


# Context structures by defprog :type (uapi linux/bpf.h; every field listed is a __u32). What a
# program may read and write is the verifier's rule for its type (net/core/filter.c):
# xdp_is_valid_access allows no stores, and egress_ifindex only to devmap programs;
# tc_cls_act_is_valid_access refuses the socket fields (family .. local_port) and lets
# classifiers store only to the fields listed. tests/kernel/compiler/test_ctx_rules.py checks
# these tables against the running kernel.
CTX_LAYOUTS = {
    "xdp": _u32_fields("DATA", "DATA-END", "DATA-META", "INGRESS-IFINDEX", "RX-QUEUE-INDEX",
                       "EGRESS-IFINDEX", unreadable=("EGRESS-IFINDEX",)),
    "tc": _u32_fields("LEN", "PKT-TYPE", "MARK", "QUEUE-MAPPING", "PROTOCOL", "VLAN-PRESENT",
                      "VLAN-TCI", "VLAN-PROTO", "PRIORITY", "INGRESS-IFINDEX", "IFINDEX", "TC-INDEX",
                      ("CB", 5), "HASH", "TC-CLASSID", "DATA", "DATA-END", "NAPI-ID", "FAMILY",
                      "REMOTE-IP4", "LOCAL-IP4", ("REMOTE-IP6", 4), ("LOCAL-IP6", 4), "REMOTE-PORT",
                      "LOCAL-PORT", "DATA-META",
                      unreadable=("FAMILY", "REMOTE-IP4", "LOCAL-IP4", "REMOTE-IP6", "LOCAL-IP6",
                                  "REMOTE-PORT", "LOCAL-PORT"),
                      writable=("MARK", "QUEUE-MAPPING", "PRIORITY", "TC-INDEX", "CB", "TC-CLASSID")),
}

CTX_STRUCT_NAMES = {"xdp": "xdp_md", "tc": "__sk_buff"}

# Sections whose prefix makes libbpf (and our loader) pick the matching program type.
SECTION_PREFIXES = {
    "xdp": ("xdp", "xdp.frags"),
    "tc": ("tc", "classifier", "tcx"),
}

# Which map kinds the value-level map operations and tail-call accept.
NOT_LOOKUPABLE = {"prog-array": "tail-call", "ringbuf": "the ringbuf forms",
                  "perf-event-array": "perf-event-output"}


def ctx_field_at(prog_type: str, offset: int) -> tuple[str, CtxField] | None:
    """The context field (or array field) covering byte ``offset``, if any."""
    for name, f in CTX_LAYOUTS[prog_type].items():
        if f.offset <= offset < f.offset + TYPES[f.type] * f.count:
            return name, f
    return None


def section_matches(prog_type: str, section: str) -> bool:
    return any(section == p or section.startswith(p + "/") for p in SECTION_PREFIXES[prog_type])


def map_shape_problem(kind: str, key_size: int, value_size: int, max_entries: int,
                      flags: int) -> tuple[str, str] | None:
    """Kernel map-create rules for ``kind``; returns (problem, hint) or None when acceptable."""
    if kind == "ringbuf":
        if key_size or value_size:
            return ("a :ringbuf map has no keys or values", "drop :key-size and :value-size")
        if max_entries < 4096 or max_entries & (max_entries - 1):
            return (f":max-entries {max_entries} is not a power of two >= 4096",
                    "a ringbuf's :max-entries is its size in bytes, e.g. (* 256 1024)")
        return None
    if key_size == 0 or value_size == 0:
        return ("key and value sizes must be non-zero", "give :key-size and :value-size in bytes")
    if max_entries == 0:
        return (":max-entries must be at least 1", None)
    if kind in ("array", "percpu-array", "prog-array", "stack-trace", "sockmap") and key_size != 4:
        return (f"a :{kind} map is indexed by a 4-byte key", "use :key-size 4")
    if kind == "prog-array" and value_size != 4:
        return ("a :prog-array map holds 4-byte program fds", "use :value-size 4")
    if kind == "lpm-trie" and not flags & 1:
        return ("the kernel requires BPF_F_NO_PREALLOC for :lpm-trie", "add :map-flags 1")
    return None
