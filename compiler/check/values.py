"""The abstract values of the checker: what the verifier knows a register holds.

In: nothing. Out: ``Scalar`` (from ``scalar``) and ``Pointer``, the value kinds the verifier
tracks (``enum bpf_reg_type``), with ``join`` (the least value containing two), ``contains``
(subsumption, for pruning states) and ``describe`` (for messages).

A pointer is a kind, the region it points into, a fixed offset and a variable one (a
``Scalar``), and per kind:

  CTX           the program's context (xdp_md, __sk_buff); only a fixed offset may be dereferenced
  PACKET        packet data; ``id`` names its variable part (0: none), ``range`` is how many bytes
                from the pointer's base (data + the variable part) comparisons against data_end
                have proven (negative: at or beyond the end, AT_END / BEYOND_END)
  PACKET_META   the metadata area before the packet, proven against data in the same way
  PACKET_END    data_end: only compared, never dereferenced or moved
  STACK         ``region`` is the ``ir.StackSlot`` (a struct-alloc, a map key or value buffer)
  MAP_VALUE     ``region`` is the ``decls.MapDef``; a lookup's result is ``maybe_null`` until a
                comparison with 0 (``id`` ties the copies of one result together)
  MEM           a ring buffer record; ``region`` is its size in bytes; ``ref`` must be released
  SOCKET        a socket from sk_lookup_*; ``ref`` must be released
  BTF           a kernel object pointer (get_current_task_btf): left to the kernel
  STALE         a packet pointer a helper that moves packet data invalidated (``origin``: that
                call); a number to the verifier, which refuses to dereference it
``origin`` is where the value came from and ``checked`` the comparison that proved a packet
pointer's range, for messages; they take no part in comparisons.
"""

from __future__ import annotations

from collections import namedtuple

from . import scalar
from .scalar import Scalar

CTX, PACKET, PACKET_META, PACKET_END, STACK, MAP_VALUE, MEM, SOCKET, BTF, STALE = (
    "ctx", "packet", "packet_meta", "packet_end", "stack", "map_value", "mem", "socket", "btf", "stale")
PACKET_KINDS = (PACKET, PACKET_META)
AT_END, BEYOND_END = -1, -2  # packet ranges after a failed comparison against data_end
MAX_PACKET_OFF = 0xFFFF


class Pointer(namedtuple("Pointer", "kind off var id range region maybe_null ref origin checked",
                         defaults=(0, scalar.ZERO, 0, 0, None, False, 0, None, None))):
    # checked: packet pointers: the comparison that proved ``range``
    __slots__ = ()

    def key(self) -> tuple:
        """Everything but ``origin``."""
        return self[:8]

    def moved(self, off: int, var: Scalar | None = None) -> Pointer:
        return self._replace(off=off, var=self.var if var is None else var)


Value = (Scalar, Pointer)  # what a register or a stack slot holds (for annotations and isinstance)
FORGOTTEN = scalar.UNKNOWN  # a number no check depends on, once the checker stops tracking it


def is_pointer(v: Value) -> bool:
    return isinstance(v, Pointer)


def same(a: Value, b: Value) -> bool:
    if isinstance(a, Pointer) and isinstance(b, Pointer):
        return a.key() == b.key()
    return a == b


def contains(big: Value, small: Value) -> bool:
    """Is ``small`` at least as precise as ``big``: whatever is safe with ``big`` is safe with
    ``small``? (Used to drop a state another one already covers.)"""
    if isinstance(big, Scalar) or isinstance(small, Scalar):
        return isinstance(big, Scalar) and isinstance(small, Scalar) and big.contains(small)
    if (big.kind, big.off, big.id, big.region, big.maybe_null, big.ref) != \
            (small.kind, small.off, small.id, small.region, small.maybe_null, small.ref):
        return False
    if not big.var.contains(small.var):
        return False
    if big.kind in PACKET_KINDS:
        return small.range >= big.range if big.range >= 0 else small.range == big.range
    return True


def compatible(a: Value, b: Value) -> bool:
    """May ``join`` merge the two without losing what matters to the verifier's decisions: the
    same kind, region, nullness, reference and base (``id``); fixed offsets that differ become an
    exact variable part."""
    if isinstance(a, Scalar) or isinstance(b, Scalar):
        return isinstance(a, Scalar) and isinstance(b, Scalar)
    if (a.kind, a.region, a.maybe_null, a.ref, a.id) != (b.kind, b.region, b.maybe_null, b.ref, b.id):
        return False
    return a.off == b.off or (a.var.exact and b.var.exact)


def join(a: Value, b: Value, widen: bool = False, thresholds: tuple = ()) -> Value | None:
    """The least value containing both, or None when no value does (a pointer and a number,
    pointers of different kinds): the states stay apart."""
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return scalar.widen(a, b, thresholds) if widen else scalar.join(a, b)
    if not (isinstance(a, Pointer) and isinstance(b, Pointer)):
        return None
    if (a.kind, a.region, a.maybe_null, a.ref) != (b.kind, b.region, b.maybe_null, b.ref):
        return None

    def merge(x, y):
        return scalar.widen(x, y, thresholds) if widen else scalar.join(x, y)
    same_base = a.id == b.id
    rng = min(a.range, b.range) if a.range >= 0 and b.range >= 0 else (a.range if a.range == b.range else 0)
    if a.off == b.off:
        var = merge(a.var, b.var)
        keep = same_base and (var.exact or var.same_bounds(a.var))
        return a._replace(var=var, id=a.id if keep else _merged_id(a, b), range=rng if keep else 0)
    # different fixed offsets: the difference becomes part of the variable offset, exact when
    # both were (each path the verifier walks still has a fixed offset and keeps the base's range)
    low = min(a.off, b.off)
    va = scalar.alu("add", a.var, scalar.known(a.off - low))
    vb = scalar.alu("add", b.var, scalar.known(b.off - low))
    var = merge(va, vb)
    keep = same_base and var.exact
    return a._replace(off=low, var=var, id=a.id if keep else _merged_id(a, b), range=rng if keep else 0)


def _merged_id(a: Pointer, b: Pointer) -> int:
    # a deterministic id for the merged variable part, distinct from instruction-made ids
    return -(abs(hash((a.id, b.id, a.off, b.off))) % (1 << 30)) - 1


def describe(v: Value) -> str:
    if isinstance(v, Scalar):
        return "the number " + v.describe() if v.is_const else "a number"
    kind = {CTX: "the context pointer", PACKET: "a packet pointer", PACKET_META: "a packet metadata pointer",
            PACKET_END: "the packet end (data-end)", STACK: "a stack pointer", MAP_VALUE: "a map value pointer",
            MEM: "a ring buffer record pointer", SOCKET: "a socket pointer", BTF: "a kernel object pointer",
            STALE: "a packet pointer invalidated by a helper call"}[v.kind]
    if v.maybe_null:
        kind += " that may be null"
    return kind
