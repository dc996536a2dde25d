"""Branches: which way a comparison can go, and what each side learns.

In: an IR ``branch`` and the ``State`` before it. Out: the (target, state) pairs of the sides
that can run, each state narrowed by what the comparison proves there (check_cond_jmp_op):
- a packet pointer against data_end proves packet bytes (``packet``);
- a map lookup's or ring buffer reservation's result compared with the constant 0 (``=``,
  ``/=``; only an immediate 0, as ``emit`` writes a constant that fits 32 bits) is null on one
  side, which also releases a record's reference, and usable on the other, for every copy;
- a pointer the verifier knows is not null (a checked map value, a record, a socket) compared
  with a constant 0 goes one way only;
- two numbers narrow each other's bounds; a comparison whose outcome the bounds decide goes one
  way only, as the verifier walks only that side;
- any other comparison (pointers of other kinds, a pointer and a number) narrows nothing.
"""

from __future__ import annotations

from ..ir import VReg
from . import packet, scalar
from .alu import as_number
from .scalar import Scalar
from .values import MAP_VALUE, MEM, PACKET_END, SOCKET, Pointer

_NOT_NULL = (MAP_VALUE, MEM, SOCKET, "btf")


def _value(state, operand):
    if isinstance(operand, int):
        return scalar.known(operand)
    return state.regs[operand]


def split(state, insn) -> list:
    a_op, b_op = insn.args
    a, b = _value(state, a_op), _value(state, b_op)
    yes, no = insn.targets
    cond = insn.cond

    matched = packet.match(cond, a, b)
    if matched is not None:
        ptr, ncond, which = matched
        other = b if which == 0 else a
        taken = packet.decided(ptr, ncond, isinstance(other, Pointer) and other.kind == PACKET_END)
        if taken is not None:
            return [(yes if taken else no, state)]
        reg = (a_op, b_op)[which]
        reg = reg if isinstance(reg, VReg) else None
        t_fact, f_fact = packet._LEARN[ncond]
        t_state, f_state = state.copy(), state
        packet.learn(t_state, reg, ptr, t_fact, insn.loc)
        packet.learn(f_state, reg, ptr, f_fact, insn.loc)
        return [(yes, t_state), (no, f_state)]

    if isinstance(a, Pointer) and a.maybe_null and b_op == 0 and cond in ("eq", "ne"):
        null, usable = state.copy(), state
        _mark_null(null, a, True)
        _mark_null(usable, a, False)
        return [(yes, null), (no, usable)] if cond == "eq" else [(yes, usable), (no, null)]

    if isinstance(a, Pointer) and not a.maybe_null and a.kind in _NOT_NULL and isinstance(b, Scalar) \
            and b.is_const and b.value == 0 and cond in ("eq", "ne"):
        return [(no if cond == "eq" else yes, state)]

    a, b = as_number(a), as_number(b)
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        taken = scalar.branch_taken(cond, a, b)
        if taken is not None:
            return [(yes if taken else no, state)]
        out = []
        for target, c, st in ((yes, cond, state.copy()), (no, _NEGATED[cond], state)):
            ra, rb = scalar.refine(c, a, b)
            if scalar.is_empty(ra) or scalar.is_empty(rb):
                continue
            _narrow(st, a_op, a, ra)
            _narrow(st, b_op, b, rb)
            out.append((target, st))
        return out
    return [(yes, state.copy()), (no, state)]


_NEGATED = {"eq": "ne", "ne": "eq", "gt": "le", "le": "gt", "ge": "lt", "lt": "ge",
            "sgt": "sle", "sle": "sgt", "sge": "slt", "slt": "sge"}


def _narrow(state, operand, old: Scalar, new: Scalar) -> None:
    """Give the operand (and every copy linked to it by id) the narrowed bounds."""
    if not isinstance(operand, VReg) or not isinstance(state.regs.get(operand), Scalar):
        return
    if old.id:
        def linked(x):
            if isinstance(x, Scalar) and x.id == old.id:
                return new._replace(id=x.id)
            return x
        state.map_values(linked)
    state.regs[operand] = new._replace(id=old.id)


def _mark_null(state, ptr: Pointer, null: bool) -> None:
    def mark(x):
        if isinstance(x, Pointer) and x.maybe_null and x.id == ptr.id and x.kind == ptr.kind:
            return scalar.ZERO if null else x._replace(maybe_null=False)
        return x
    state.map_values(mark)
    if null and ptr.ref:
        state.refs.pop(ptr.ref, None)
