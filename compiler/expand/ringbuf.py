"""Ring buffers and perf events (reference §2.11): ``ringbuf-*`` and ``perf-event-output`` -> helper calls.

In: the form and the ``BodyExpander``. Out: core ``(call ID ...)`` with the map passed as
``(map-fd MAP)``:

  (ringbuf-reserve MAP SIZE [FLAGS])        bpf_ringbuf_reserve: a record pointer or 0; SIZE constant
  (ringbuf-submit PTR [FLAGS])              bpf_ringbuf_submit; value 0
  (ringbuf-discard PTR [FLAGS])             bpf_ringbuf_discard; value 0
  (ringbuf-output MAP DATA SIZE [FLAGS])    bpf_ringbuf_output: copy SIZE bytes at DATA; 0 or -errno
  (perf-event-output CTX MAP FLAGS DATA SIZE)   bpf_perf_event_output on a :perf-event-array map

MAP must be a ``:ringbuf`` map (a ``:perf-event-array`` one for perf-event-output). Submit and
discard return nothing in the kernel (r0 is unreadable after them), so their value is 0.
``with-ringbuf`` is a prelude macro (``protocols``) over reserve and submit.
"""

from __future__ import annotations

from ..forms import Int, List, Symbol, short
from .base import L, error

RINGBUF_OUTPUT, RINGBUF_RESERVE, RINGBUF_SUBMIT, RINGBUF_DISCARD = 130, 131, 132, 133
PERF_EVENT_OUTPUT = 25


def _map(bx, name, form: List, kind: str) -> List:
    m = bx.scope.maps.get(name.name) if isinstance(name, Symbol) else None
    if m is None:
        known = ", ".join(d.lisp_name.lower() for d in bx.scope.maps.values() if d.kind == kind) or "none defined"
        raise error(form, f"unknown map {short(name)}", expected=f"a :{kind} map ({known})")
    if m.kind != kind:
        raise error(form, f"{form.items[0]} needs a :{kind} map, but {m.lisp_name.lower()} is :{m.kind}",
                    hint=f"declare it with (defmap {m.lisp_name.lower()} :type :{kind} ...)" if kind == "ringbuf"
                    else None)
    return L(form.loc, "MAP-FD", Symbol(m.lisp_name, form.loc))


def _flags(bx, rest: tuple, form: List):
    return bx.expand(rest[0]) if rest else Int(0, form.loc)


def _reserve(bx, form):
    name, size, *flags = bx.args(form, 2, 3, "(ringbuf-reserve MAP SIZE [FLAGS])")
    n = bx.literal(size, form, "the ringbuf-reserve size (the verifier wants a constant)")
    if n.value <= 0:
        raise error(form, f"ringbuf-reserve of {n.value} bytes", expected="a positive size")
    return L(form.loc, "CALL", Int(RINGBUF_RESERVE, form.loc), _map(bx, name, form, "ringbuf"), n,
             _flags(bx, flags, form))


def _release(helper: int):
    def handler(bx, form):
        ptr, *flags = bx.args(form, 1, 2, f"({form.items[0]} RECORD-POINTER [FLAGS])")
        call = L(form.loc, "CALL", Int(helper, form.loc), bx.expand(ptr), _flags(bx, flags, form))
        return L(form.loc, "PROGN", call, Int(0, form.loc))
    return handler


def _output(bx, form):
    name, data, size, *flags = bx.args(form, 3, 4, "(ringbuf-output MAP DATA SIZE [FLAGS])")
    return L(form.loc, "CALL", Int(RINGBUF_OUTPUT, form.loc), _map(bx, name, form, "ringbuf"), bx.expand(data),
             bx.expand(size), _flags(bx, flags, form))


def _perf_event_output(bx, form):
    ctx, name, flags, data, size = bx.args(form, 5, 5, "(perf-event-output CTX MAP FLAGS DATA SIZE)")
    return L(form.loc, "CALL", Int(PERF_EVENT_OUTPUT, form.loc), bx.expand(ctx),
             _map(bx, name, form, "perf-event-array"), bx.expand(flags), bx.expand(data), bx.expand(size))


FORMS = {
    "RINGBUF-RESERVE": _reserve, "RINGBUF-SUBMIT": _release(RINGBUF_SUBMIT),
    "RINGBUF-DISCARD": _release(RINGBUF_DISCARD), "RINGBUF-OUTPUT": _output,
    "PERF-EVENT-OUTPUT": _perf_event_output,
}
