"""Top-level declarations: what macro expansion hands to lowering and to the object writer.

In: produced by ``expand.expand_unit(forms)``. Out: a ``Unit`` with maps and programs in
definition order. Names are already mangled (``proto-stats`` -> ``proto_stats``) and checked
(at most 15 characters, unique; one program per section).

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
  (load TYPE PTR OFF)                   OFF is an Int
  (store TYPE PTR OFF VAL)
  (atomic-add TYPE PTR OFF VAL)         TYPE is u32 or u64
  (ctx-load TYPE OFF) (ctx-store TYPE OFF VAL)       raw context access (xdp_md / __sk_buff)
  (map-lookup MAP KEY)                  KEY is a value, spilled as exactly key_size bytes
  (map-update MAP KEY VAL FLAGS)        VAL spilled as exactly value_size bytes
  (map-delete MAP KEY)
  (map-lookup-ptr MAP KEYPTR) (map-update-ptr MAP KEYPTR VALPTR FLAGS) (map-delete-ptr MAP KEYPTR)
  (call ID ARG...)                      BPF helper by number, at most 5 arguments
  (ctx-ptr)                             the program's context pointer (r1 at entry)
  (tail-call MAP INDEX)                 MAP is a prog-array; falls through when the slot is empty
  (struct-alloc N)                      N zeroed stack bytes; value = pointer
MAP is a Symbol with the map's Lisp name (e.g. ``PROTO-STATS``); resolve it with ``Unit.map_named``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Loc
from .forms import Form

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

    @property
    def is_array(self) -> bool:
        return self.kind in ("array", "percpu-array")


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

    def map_named(self, name: str) -> MapDef | None:
        """Look a map up by mangled or Lisp name."""
        for m in self.maps:
            if name in (m.name, m.lisp_name):
                return m
        return None
