"""Helper calls: each helper's prototype as the verifier checks it, and what a call does.

In: an IR ``call`` (helper id, argument operands) and the ``State``. Out: the result's value and
the state after the call (stack bytes a helper wrote, references taken and released, packet
pointers invalidated), or a located error. The prototypes are the kernel's
(``bpf_func_proto``: arg1_type .. arg5_type, ret_type) for the helpers the dialect names;
``UNAVAILABLE`` lists those the verifier refuses per program type ("program of this type cannot
use helper"), checked against this kernel by tests/kernel/compiler/test_checker_rules.py. A
helper id the table does not know (a raw ``(call ID ...)``) is left to the kernel.

Argument kinds: ANY (any initialised value), MAP (a map of the given kinds), KEY / VALUE (a
pointer to the map's key_size / value_size readable bytes), MEM (a pointer to the number of
bytes the next argument, a SIZE, says; read, written or both; "or null" ones also take 0),
CTX (the unmoved context pointer), ALLOC (a constant size), RELEASE (a ring buffer record
from ringbuf-reserve, compared with 0, unmoved), SOCK / SOCK_OR_NULL (a socket from
sk-lookup-*), FUNC (a callback), STACK_OR_NULL (a stack pointer or 0).
"""

from __future__ import annotations

from collections import namedtuple

from ..ir import MapRef, SlotRef
from . import packet, scalar, stack, values
from .diag import fail, line
from .memory import region_check
from .scalar import Scalar
from .values import BTF, CTX, MAP_VALUE, MEM, PACKET_KINDS, SOCKET, STACK, STALE, Pointer

ANY, MAP, KEY, VALUE, CTX_ARG, ALLOC, RELEASE, SOCK, SOCK_OR_NULL, FUNC, STACK_OR_NULL = (
    "any", "map", "key", "value", "ctx", "alloc", "release", "sock", "sock_or_null", "func", "stack_or_null")
MEM_RO, MEM_RO_OR_NULL, MEM_WO, MEM_RW, SIZE, SIZE0 = "mem_ro", "mem_ro_or_null", "mem_wo", "mem_rw", "size", "size0"
INT, VOID, MAP_VALUE_OR_NULL, RECORD_OR_NULL, SOCKET_OR_NULL, KERNEL_PTR = (
    "int", "void", "map_value_or_null", "record_or_null", "socket_or_null", "kernel_ptr")


class Proto(namedtuple("Proto", "name args ret moves_packet maps", defaults=(INT, False, ()))):
    # moves_packet: bpf_helper_changes_pkt_data: every packet pointer is invalid after
    # maps: map kinds a MAP argument accepts (empty: any the map forms allow)
    __slots__ = ()


_PROBE = (MEM_WO, SIZE0, ANY)
PROTOS = {
    1: Proto("map-lookup", (MAP, KEY), MAP_VALUE_OR_NULL),
    2: Proto("map-update", (MAP, KEY, VALUE, ANY)),
    3: Proto("map-delete", (MAP, KEY)),
    4: Proto("probe-read", _PROBE),
    5: Proto("ktime-get-ns", ()),
    6: Proto("trace-printk", (MEM_RO, SIZE)),
    7: Proto("get-prandom-u32", ()),
    8: Proto("get-smp-processor-id", ()),
    9: Proto("skb-store-bytes", (CTX_ARG, ANY, MEM_RO, SIZE, ANY), moves_packet=True),
    10: Proto("l3-csum-replace", (CTX_ARG, ANY, ANY, ANY, ANY), moves_packet=True),
    11: Proto("l4-csum-replace", (CTX_ARG, ANY, ANY, ANY, ANY), moves_packet=True),
    12: Proto("tail-call", (CTX_ARG, MAP, ANY), VOID, maps=("prog-array",)),
    14: Proto("get-current-pid-tgid", ()),
    15: Proto("get-current-uid-gid", ()),
    16: Proto("get-current-comm", (MEM_WO, SIZE)),
    23: Proto("redirect", (ANY, ANY)),
    25: Proto("perf-event-output", (CTX_ARG, MAP, ANY, MEM_RO, SIZE0), maps=("perf-event-array",)),
    26: Proto("skb-load-bytes", (CTX_ARG, ANY, MEM_WO, SIZE)),
    27: Proto("get-stackid", (CTX_ARG, MAP, ANY), maps=("stack-trace",)),
    28: Proto("csum-diff", (MEM_RO_OR_NULL, SIZE0, MEM_RO_OR_NULL, SIZE0, ANY)),
    35: Proto("get-current-task", ()),
    39: Proto("skb-pull-data", (CTX_ARG, ANY), moves_packet=True),
    44: Proto("xdp-adjust-head", (CTX_ARG, ANY), moves_packet=True),
    45: Proto("probe-read-str", _PROBE),
    46: Proto("get-socket-cookie", (CTX_ARG,)),
    51: Proto("redirect-map", (MAP, ANY, ANY)),
    54: Proto("xdp-adjust-meta", (CTX_ARG, ANY), moves_packet=True),
    58: Proto("override-return", (CTX_ARG, ANY)),
    65: Proto("xdp-adjust-tail", (CTX_ARG, ANY), moves_packet=True),
    69: Proto("fib-lookup", (CTX_ARG, MEM_RW, SIZE, ANY)),
    80: Proto("get-current-cgroup-id", ()),
    84: Proto("sk-lookup-tcp", (CTX_ARG, MEM_RO, SIZE, ANY, ANY), SOCKET_OR_NULL),
    85: Proto("sk-lookup-udp", (CTX_ARG, MEM_RO, SIZE, ANY, ANY), SOCKET_OR_NULL),
    86: Proto("sk-release", (SOCK,)),
    109: Proto("send-signal", (ANY,)),
    112: Proto("probe-read-user", _PROBE),
    113: Proto("probe-read-kernel", _PROBE),
    114: Proto("probe-read-user-str", _PROBE),
    115: Proto("probe-read-kernel-str", _PROBE),
    118: Proto("jiffies64", ()),
    124: Proto("sk-assign", (CTX_ARG, SOCK_OR_NULL, ANY)),
    125: Proto("ktime-get-boot-ns", ()),
    130: Proto("ringbuf-output", (MAP, MEM_RO, SIZE0, ANY), maps=("ringbuf",)),
    131: Proto("ringbuf-reserve", (MAP, ALLOC, ANY), RECORD_OR_NULL, maps=("ringbuf",)),
    132: Proto("ringbuf-submit", (RELEASE, ANY), VOID),
    133: Proto("ringbuf-discard", (RELEASE, ANY), VOID),
    147: Proto("d-path", (ANY, MEM_WO, SIZE)),
    158: Proto("get-current-task-btf", (), KERNEL_PTR),
    160: Proto("ktime-get-coarse-ns", ()),
    181: Proto("bpf_loop", (ANY, FUNC, STACK_OR_NULL, ANY)),
    208: Proto("ktime-get-tai-ns", ()),
}

# Helpers the verifier refuses per program type (measured on Linux 6.18).
UNAVAILABLE = {
    "xdp": frozenset((4, 9, 10, 11, 26, 27, 39, 45, 46, 58, 124, 147)),
    "tc": frozenset((4, 27, 44, 45, 51, 54, 58, 65, 147)),
}
_ALTERNATIVE = {4: "probe-read-kernel", 45: "probe-read-kernel-str"}
MAX_MEM = 1 << 29
LOOP = 181


class MapArg(namedtuple("MapArg", "mapdef")):
    __slots__ = ()


class FuncArg(namedtuple("FuncArg", "name")):
    __slots__ = ()


def _arg_value(ck, state, operand):
    if isinstance(operand, MapRef):
        return MapArg(ck.unit.map_named(operand.name))
    if isinstance(operand, SlotRef):
        return Pointer(STACK, region=operand.slot, origin=operand.slot.loc)
    if isinstance(operand, int):
        return scalar.known(operand)
    if type(operand).__name__ == "FuncRef":
        return FuncArg(operand.name)
    return state.regs[operand]


def call(ck, state, insn):
    """Check the call and apply its effects; returns the result's value (None: no value)."""
    proto = PROTOS.get(insn.helper)
    if proto is None:
        return scalar.UNKNOWN
    if insn.helper in UNAVAILABLE[ck.prog_type]:
        alt = _ALTERNATIVE.get(insn.helper)
        fail(insn.loc, f"{proto.name} (helper {insn.helper}) is not available to {ck.prog_type.upper()} programs",
             hint=f"use {alt}" if alt else "the kernel offers it only to other program types")
    if len(insn.args) < len(proto.args):
        fail(insn.loc, f"{proto.name} takes {len(proto.args)} argument(s), got {len(insn.args)}",
             hint=f"call it by name with all its arguments: ({proto.name} ...)")
    args = [_arg_value(ck, state, a) for a in insn.args]
    call_maps = [a.mapdef for a in args if isinstance(a, MapArg)]
    mapdef = call_maps[0] if call_maps else None
    writes = []
    for k, kind in enumerate(proto.args):
        v = args[k]
        n = k + 1
        if kind == ANY:
            if isinstance(v, FuncArg):
                fail(insn.loc, f"argument {n} of {proto.name} is a function", hint="pass a value")
        elif kind == MAP:
            if not isinstance(v, MapArg):
                fail(insn.loc, f"argument {n} of {proto.name} must be a map, got {_describe(v)}",
                     hint="name a map defined with defmap")
            if proto.maps and v.mapdef.kind not in proto.maps:
                fail(insn.loc, f"{proto.name} needs a :{proto.maps[0]} map, but {v.mapdef.lisp_name.lower()} is "
                               f":{v.mapdef.kind}", hint=f"declare the map with :type :{proto.maps[0]}")
        elif kind in (KEY, VALUE):
            size = mapdef.key_size if kind == KEY else mapdef.value_size
            what = f"the {'key' if kind == KEY else 'value'} of map {mapdef.lisp_name.lower()}"
            _memory(ck, state, insn, v, size, False, f"passes {what} ({size} bytes) as", proto, n, writes,
                    key_hint=kind == KEY)
        elif kind in (MEM_RO, MEM_RO_OR_NULL, MEM_WO, MEM_RW):
            size_arg = args[k + 1]
            size = _size(insn, size_arg, proto, n + 1, zero_ok=proto.args[k + 1] == SIZE0)
            if kind == MEM_RO_OR_NULL and isinstance(v, Scalar) and v.is_const and v.value == 0:
                continue
            verb = "reads" if kind in (MEM_RO, MEM_RO_OR_NULL) else "writes"
            _memory(ck, state, insn, v, size, kind in (MEM_WO, MEM_RW),
                    f"{proto.name} {verb} {size} bytes through", proto, n, writes)
        elif kind in (SIZE, SIZE0):
            pass  # checked with its memory argument
        elif kind == CTX_ARG:
            if not (isinstance(v, Pointer) and v.kind == CTX):
                fail(insn.loc, f"argument {n} of {proto.name} must be the context pointer (ctx-ptr), got "
                               f"{_describe(v)}", hint="pass (ctx-ptr)")
            if v.off or not (v.var.is_const and v.var.value == 0):
                fail(insn.loc, f"argument {n} of {proto.name} is the context pointer moved by "
                               f"{v.off if v.var.is_const else v.var.describe()} bytes: the verifier wants it unmoved",
                     hint="pass (ctx-ptr) itself")
        elif kind == ALLOC:
            if not (isinstance(v, Scalar) and v.is_const):
                fail(insn.loc, f"the size given to {proto.name} must be a constant the verifier knows, got "
                               f"{_describe(v)}", hint="write the size as a literal or a defconstant")
        elif kind == RELEASE:
            _release(insn, state, v, proto, n)
        elif kind in (SOCK, SOCK_OR_NULL):
            if kind == SOCK_OR_NULL and isinstance(v, Scalar) and v.is_const and v.value == 0:
                continue
            if not (isinstance(v, Pointer) and v.kind == SOCKET and not v.maybe_null):
                fail(insn.loc, f"argument {n} of {proto.name} must be a socket from sk-lookup-tcp/-udp compared "
                               f"with 0, got {_describe(v)}", hint="(let ((sk (sk-lookup-tcp ...))) (when sk ...))")
            if kind == SOCK and v.ref:
                _drop_ref(state, v.ref)
        elif kind == FUNC:
            if not isinstance(v, FuncArg):
                fail(insn.loc, f"argument {n} of {proto.name} must be a callback, got {_describe(v)}",
                     hint="bpf_loop callbacks come from dotimes")
        elif kind == STACK_OR_NULL:
            null = isinstance(v, Scalar) and v.is_const and v.value == 0
            if not (null or (isinstance(v, Pointer) and v.kind == STACK)):
                fail(insn.loc, f"argument {n} of {proto.name} must be a stack pointer or 0, got {_describe(v)}",
                     hint="pass a struct-alloc buffer, or 0")
    for slot, lo, hi in writes:
        stack.helper_writes(state, slot, lo, hi)
    if insn.helper == 12 and state.refs:
        fail(insn.loc, f"tail-call while {held(state)}: the verifier refuses a tail call that would leak it",
             hint="submit or discard the record (sk-release the socket) before the tail call")
    moved = proto.moves_packet
    if insn.helper == LOOP and isinstance(args[1], FuncArg) and args[1].name in ck.callbacks:
        moved |= ck.run_callback(insn, state, args[1].name, args[2])
    if moved:
        ck.moves_packet = True
        invalidate_packet(state, insn.loc)
    return _result(ck, state, insn, proto, args, mapdef)


def held(state) -> str:
    """'the ring buffer record reserved (line N) is neither submitted nor discarded' for the first
    reference the state holds."""
    loc, what = next(iter(state.refs.values()))
    if what == "record":
        return f"the ring buffer record reserved{line(loc)} is neither submitted nor discarded"
    return f"the socket looked up{line(loc)} is not released (sk-release)"


def _describe(v) -> str:
    if isinstance(v, MapArg):
        return f"map {v.mapdef.lisp_name.lower()}"
    if isinstance(v, FuncArg):
        return "a function"
    return values.describe(v)


def _size(insn, v, proto: Proto, n: int, zero_ok: bool) -> int:
    if not isinstance(v, Scalar):
        fail(insn.loc, f"argument {n} of {proto.name} is a size, got {_describe(v)}",
             hint="pass the number of bytes, e.g. a constant")
    if v.smin < 0:
        fail(insn.loc, f"the size given to {proto.name} (argument {n}) may be negative ({v.describe()})",
             hint="bound it: (when (< n LIMIT) ...)")
    if v.umax >= MAX_MEM:
        fail(insn.loc, f"the size given to {proto.name} (argument {n}) is not bounded ({v.describe()})",
             hint="bound it: mask it or compare it with the buffer's size first")
    if v.umin == 0 and not zero_ok:
        fail(insn.loc, f"the size given to {proto.name} (argument {n}) "
                       f"{'is 0' if v.is_const else f'may be 0 ({v.describe()})'}, which it does not accept",
             hint="check (> n 0) first")
    return v.umax


def _memory(ck, state, insn, v, size: int, write: bool, what: str, proto: Proto, n: int, writes: list,
            key_hint: bool = False) -> None:
    if size == 0:
        return
    unusable = (STALE, CTX, SOCKET, BTF, values.PACKET_END)
    if not isinstance(v, Pointer) or v.kind in unusable or v.maybe_null:
        if key_hint and isinstance(v, Scalar):
            hint = ("this map takes its key by pointer (a struct key, or a key wider than 8 bytes): pass a pointer "
                    f"to the key's {size} bytes, e.g. a struct (make-NAME ...) or (struct-alloc {size}) filled in")
        elif isinstance(v, Pointer) and v.maybe_null:
            hint = "compare it with 0 first: (when P ...)"
        elif isinstance(v, Pointer) and v.kind == STALE:
            hint = "read data and data-end again after the call that moved the packet"
        else:
            hint = (f"pass a pointer to {size} bytes: a struct-alloc or make-NAME buffer, a checked packet "
                    f"pointer, or a map value compared with 0")
        fail(insn.loc, f"{what} argument {n}, but that is {_describe(v)}{line(getattr(v, 'origin', None))}: it must "
                       f"point to memory (the stack, the packet, a map value)", hint=hint)
    verb = f"{proto.name} {'writes' if write else 'reads'}"
    if v.kind in PACKET_KINDS:
        packet.check_access(insn, v, 0, size, verb)
    elif v.kind == MAP_VALUE:
        region_check(insn, v, 0, size, v.region.value_size,
                     f"a value of map {v.region.lisp_name.lower()}{line(v.origin)}", verb)
    elif v.kind == MEM:
        region_check(insn, v, 0, size, v.region, f"the ring buffer record{line(v.origin)}", verb)
    elif v.kind == STACK:
        slot = v.region
        lo, hi = _stack_bounds(insn, slot, v, size, what, n)
        if write:
            writes.append((slot, lo, hi))


def _stack_bounds(insn, slot, v: Pointer, size: int, what: str, n: int) -> tuple:
    var = v.var
    lo = v.off + (scalar.signed(var.value) if var.is_const else var.smin)
    hi = v.off + (scalar.signed(var.value) if var.is_const else var.smax) + size
    if lo < 0 or hi > slot.size:
        from .diag import slot_name
        fail(insn.loc, f"{what} argument {n}: {size} bytes from offset {lo} of {slot_name(slot)}, which has "
                       f"{slot.size}", hint=f"allocate at least {hi} bytes, or pass a smaller size",
             rule="stack-slot-bounds")
    return max(lo, 0), min(hi, slot.size)


def _release(insn, state, v, proto: Proto, n: int) -> None:
    if not (isinstance(v, Pointer) and v.kind == MEM):
        fail(insn.loc, f"argument {n} of {proto.name} must be a record from ringbuf-reserve, got {_describe(v)}",
             hint="pass the pointer ringbuf-reserve returned (after checking it for 0)")
    if v.maybe_null:
        fail(insn.loc, f"{proto.name} of a record{line(v.origin)} that may be null: compare it with 0 first",
             hint="(let ((r (ringbuf-reserve ...))) (when r ... (ringbuf-submit r)))")
    if v.off or not (v.var.is_const and v.var.value == 0):
        fail(insn.loc, f"{proto.name} of a moved record pointer: the verifier wants the pointer itself",
             hint="pass the pointer ringbuf-reserve returned, not an address inside the record")
    if v.ref not in state.refs:
        fail(insn.loc, f"{proto.name} of a record{line(v.origin)} already submitted or discarded",
             hint="submit or discard each record exactly once")
    _drop_ref(state, v.ref)


def _drop_ref(state, ref: int) -> None:
    state.refs.pop(ref, None)

    def unusable(x):
        if isinstance(x, Pointer) and x.ref == ref:
            return scalar.UNKNOWN
        return x
    state.map_values(unusable)


def invalidate_packet(state, loc) -> None:
    def stale(x):
        if isinstance(x, Pointer) and x.kind in (*PACKET_KINDS, values.PACKET_END):
            return Pointer(STALE, origin=loc)
        return x
    state.map_values(stale)


def _result(ck, state, insn, proto: Proto, args, mapdef):
    new_id = ck.new_id(insn)
    if proto.ret == VOID:
        if insn.dst is not None:
            fail(insn.loc, f"{proto.name} returns no value, but its value is used",
                 hint="use the form by name, whose value is 0")
        return None
    if proto.ret == MAP_VALUE_OR_NULL:
        # an array lookup with a constant key below max_entries cannot fail (can_elide_value_nullness)
        key = _constant_key(state, args[1], mapdef.key_size) if mapdef.is_array else None
        sure = key is not None and key < mapdef.max_entries
        return Pointer(MAP_VALUE, region=mapdef, maybe_null=not sure, id=new_id, origin=insn.loc)
    if proto.ret == RECORD_OR_NULL:
        state.refs[new_id] = (insn.loc, "record")
        return Pointer(MEM, region=args[1].value, maybe_null=True, id=new_id, ref=new_id, origin=insn.loc)
    if proto.ret == SOCKET_OR_NULL:
        state.refs[new_id] = (insn.loc, "socket")
        return Pointer(SOCKET, maybe_null=True, id=new_id, ref=new_id, origin=insn.loc)
    if proto.ret == KERNEL_PTR:
        return Pointer(BTF, origin=insn.loc)
    return scalar.UNKNOWN


def _constant_key(state, key, size: int):
    if not (isinstance(key, Pointer) and key.kind == STACK and key.var.is_const):
        return None
    off = key.off + scalar.signed(key.var.value)
    if off < 0 or off + size > key.region.size:
        return None
    return stack.constant_at(state, key.region, off, size)
