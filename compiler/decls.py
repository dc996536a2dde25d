"""Top-level declarations: what macro expansion hands to lowering and to the object writer.

In: produced by ``expand.expand_unit(forms)``. Out: a ``Unit`` with maps and programs in
definition order, and the ``defstruct``/``defunion`` types in definition order. Names are
already mangled (``proto-stats`` -> ``proto_stats``) and checked (C identifiers, unique; one
program per section). Names may be longer than the 15 characters the kernel keeps of an
object's name: ELF symbols, BTF and pins keep the full name.

A program body is a list of **core forms**, the only vocabulary ``lower`` understands.
Expansion has already removed every macro, folded every named constant (``+eth-hdr-len+``,
``XDP_PASS``, user ``defconstant``s) to an ``Int``, and checked arities. Core forms:

  INT                                   literal (any width; wraps mod 2**64)
  SYMBOL                                variable reference
  (progn F...)                          value of the last form; () -> 0
  (let ((VAR TYPE INIT)...) F...)        parallel bindings; TYPE is u8..u64/i8..i64 (a Symbol)
                                        or NIL (= infer from INIT); INIT is a form
                                        (``(VAR TYPE)`` bindings arrive as INIT = 0)
  (setq VAR F)                          assign a bound variable; value = new value
  (if TEST THEN ELSE)                   always three operands (a one-armed if gets ELSE = 0)
  (and F...) (or F...) (not F)          short-circuit; value 1/0 for not, last/first non-zero
  (return F)                            mov r0, F; exit
  (OP A B)  OP in + - * / mod logand logior logxor << >> >>>   binary, 64-bit, unsigned / and mod
  (neg A)
  (CMP A B) CMP in = /= < <= > >= s< s<= s> s>=                value 1/0, or a branch test
  (cast TYPE F)                         truncate to TYPE's width (no sign extension)
  (bswap16 F) (bswap32 F) (bswap64 F)   network <-> host order (ntohs/ntohl/ntohll and hton*)
  (load TYPE PTR OFF)                   OFF is an Int from -32768 to 32767 (the instruction's field)
  (store TYPE PTR OFF VAL)
  (atomic-add TYPE PTR OFF VAL)         TYPE is u32 or u64
  (ctx-load TYPE OFF) (ctx-store TYPE OFF VAL)       raw context access (xdp_md / __sk_buff)
  (map-lookup MAP KEY)                  KEY is a value, spilled as exactly key_size bytes
  (map-update MAP KEY VAL FLAGS)        VAL spilled as exactly value_size bytes
  (map-delete MAP KEY)
  (map-lookup-ptr MAP KEYPTR) (map-update-ptr MAP KEYPTR VALPTR FLAGS) (map-delete-ptr MAP KEYPTR)
  (call ID ARG...)                      BPF helper by number, at most 5 arguments; an ARG
                                        may be (map-fd MAP), the map's address (ringbuf_*,
                                        perf_event_output)
  (asm OPCODE DST SRC OFF IMM)          one raw instruction (Ints); r0-r5 are scratch for it
                                        as for a helper call; value = r0 after it
  (ctx-ptr)                             the program's context pointer (r1 at entry)
  (tail-call MAP INDEX)                 MAP is a prog-array; falls through when the slot is empty
  (struct-alloc N)                      N zeroed stack bytes; value = pointer
  (dotimes (VAR COUNT MAX) F...)        run F... min(COUNT, MAX) times (COUNT unsigned, read once;
                                        an Int equal to MAX when constant; MAX an Int, 0..2**23),
                                        VAR = 0, 1, ... bound afresh each iteration; value 0
MAP is a Symbol with the map's Lisp name (e.g. ``PROTO-STATS``); resolve it with ``Unit.map_named``.
"""

from __future__ import annotations

from .errors import Loc
from .forms import Form
from .records import dataclass, field

# The binary core forms and the IR operation each one is (``ir.evaluate`` gives their meaning).
BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "MOD": "mod", "LOGAND": "and",
              "LOGIOR": "or", "LOGXOR": "xor", "<<": "lsh", ">>": "rsh", ">>>": "arsh"}

# BPF_MAP_TYPE_* numbers for the map type keywords Whistler accepts.
MAP_TYPES = {
    "hash": 1,
    "array": 2,
    "prog-array": 3,
    "percpu-hash": 5,
    "percpu-array": 6,
    "stack-trace": 7,
    "lru-hash": 9,
    "lpm-trie": 11,
    "sockmap": 15,
    "sockhash": 18,
    "perf-event-array": 4,
    "ringbuf": 27,
}


@dataclass(frozen=True)
class MapDef:
    name: str  # mangled kernel name, e.g. "proto_stats"
    lisp_name: str  # as written, upper case, e.g. "PROTO-STATS"
    kind: str  # keyword without colon: "array", "prog-array", ...
    map_type: int  # BPF_MAP_TYPE_* number
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    loc: Loc = field(compare=False)
    key_struct: str | None = None  # StructDef.lisp_name when declared with :key-type STRUCT
    value_struct: str | None = None  # ... with :value-type STRUCT

    @property
    def is_array(self) -> bool:
        return self.kind in ("array", "percpu-array")

    @property
    def keys_by_pointer(self) -> bool:
        """Programs pass this map's keys as pointers to memory (structs, or wider than 8 bytes)."""
        return self.key_struct is not None or self.key_size > 8


@dataclass(frozen=True)
class FieldDef:
    name: str  # mangled, e.g. "dst_port"
    lisp_name: str  # e.g. "DST-PORT"
    type: str  # element type, "U8" .. "U64"
    count: int  # elements; 0 for a scalar field, N for (array TYPE N)
    offset: int  # bytes from the start of the struct

    @property
    def elem_size(self) -> int:
        return {"U8": 1, "U16": 2, "U32": 4, "U64": 8}[self.type]

    @property
    def size(self) -> int:
        return self.elem_size * max(self.count, 1)


@dataclass(frozen=True)
class StructDef:
    """A ``defstruct`` (fields laid out with natural alignment) or a ``defunion`` (members =
    the structs it overlays at offset 0, no fields of its own)."""

    name: str  # mangled C name, e.g. "conn_event"
    lisp_name: str
    size: int  # sizeof: padded to the largest alignment
    fields: tuple[FieldDef, ...]
    loc: Loc = field(compare=False)
    members: tuple[str, ...] = ()  # defunion: lisp names of the member structs

    @property
    def is_union(self) -> bool:
        return bool(self.members)

    def field_named(self, lisp_name: str) -> FieldDef | None:
        return next((f for f in self.fields if f.lisp_name == lisp_name), None)


@dataclass(frozen=True)
class ProgDef:
    name: str  # mangled, e.g. "xdp_dispatch"
    lisp_name: str
    prog_type: str  # "xdp" or "tc": selects the context layout
    section: str  # ELF section, e.g. "xdp", "xdp/tcp"
    license: str
    body: tuple[Form, ...]  # core forms (see module docstring)
    loc: Loc = field(compare=False)


@dataclass(frozen=True)
class Unit:
    maps: tuple[MapDef, ...]
    programs: tuple[ProgDef, ...]
    source_file: str
    structs: tuple[StructDef, ...] = ()

    def map_named(self, name: str) -> MapDef | None:
        """Look a map up by mangled or Lisp name."""
        for m in self.maps:
            if name in (m.name, m.lisp_name):
                return m
        return None

    def struct_named(self, lisp_name: str) -> StructDef | None:
        return next((s for s in self.structs if s.lisp_name == lisp_name), None)
