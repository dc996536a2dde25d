"""Context rules: which bytes of xdp_md / __sk_buff a program may read or write, and what it reads.

In: an access through the context pointer (offset, size, load or store) and the program type.
Out: the value read (data, data_end and data_meta become packet pointers) or a located error.

The verifier's rules (net/core/filter.c xdp_is_valid_access, tc_cls_act_is_valid_access): the
context pointer may only be dereferenced at a fixed offset, unmoved; XDP fields are read whole
(4 bytes) and never written; __sk_buff fields may be read by their low 1, 2 or 4 bytes (aligned),
except the packet pointers, which are read whole; classifiers write only the fields
``builtins.CTX_LAYOUTS`` marks writable. Offsets past the fields the compiler knows are left
to the kernel.
"""

from __future__ import annotations

from .. import builtins
from . import scalar
from .diag import fail
from .values import PACKET, PACKET_END, PACKET_META, Pointer

_POINTER_FIELDS = {"DATA": PACKET, "DATA-END": PACKET_END, "DATA-META": PACKET_META}
_NAMES = {"xdp": "XDP (xdp_md)", "tc": "TC (__sk_buff)"}


def _field(prog_type: str, off: int):
    return builtins.ctx_field_at(prog_type, off)


def access(insn, prog_type: str, ptr: Pointer, off: int, size: int, write: bool):
    """The value a load gives (None for a store); refuses what the verifier refuses."""
    verb = "writes" if write else "reads"
    if ptr.off != 0 or not (ptr.var.is_const and ptr.var.value == 0):
        fail(insn.loc, f"{verb} the context through a pointer moved by {ptr.var.describe() if not ptr.var.is_const else ptr.off}"
                       f" bytes: the verifier only accepts the context pointer itself plus a constant offset",
             hint="use (ctx FIELD) or (ctx-load TYPE OFFSET) instead of arithmetic on (ctx-ptr)")
    at = off
    found = _field(prog_type, at)
    if found is None:
        if prog_type == "xdp" or at < 0:
            fail(insn.loc, f"{verb} {size} bytes at offset {at} of the {_NAMES[prog_type]} context, past its fields",
                 hint="see (ctx FIELD) for the fields")
        return None if write else scalar.of_width(size)  # a field this compiler does not list
    name, f = found
    elem = 4
    in_field = (at - f.offset) % elem
    field = name.lower()
    kind = _POINTER_FIELDS.get(name)
    if write:
        if not f.writable:
            fail(insn.loc, f"writes the context field {field} of a {_NAMES[prog_type]} program, which is read-only",
                 hint="XDP programs cannot write their context" if prog_type == "xdp" else
                 "classifiers may write mark, queue-mapping, priority, tc-index, cb and tc-classid")
        if size != 4 or in_field:
            fail(insn.loc, f"writes {size} bytes at offset {at} of the context: field {field} is written whole "
                           f"(u32)", hint=f"write it as (setf (ctx {field}) VALUE)")
        return None
    if not f.readable:
        fail(insn.loc, f"reads the context field {field}, which {_NAMES[prog_type]} programs cannot read",
             hint="see (ctx FIELD) for the fields this program type may read")
    whole = prog_type == "xdp" or kind is not None
    if (whole and (size != 4 or in_field)) or size > 4 or at % size:
        fail(insn.loc, f"reads {size} bytes at offset {at} of the context: field {field} is read "
                       f"{'whole (u32)' if whole else 'by its aligned low 1, 2 or 4 bytes'}",
             hint=f"read it as (ctx {field})")
    if kind is not None:
        return Pointer(kind, origin=insn.loc)
    return scalar.of_width(size)
