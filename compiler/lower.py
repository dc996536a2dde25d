"""Lowering: a program's core forms -> IR (``ir.Function``).

In: a ``decls.ProgDef`` whose body is core forms (vocabulary in ``decls``) and the ``Unit`` for
map lookups. Out: a validated ``ir.Function`` that is deliberately naive: every literal and
every variable gets its own vreg and ``mov``; the ``opt`` passes clean that up.

Semantics implemented here (reference §2): values are 64-bit and wrap; ``if`` is always
three-armed; ``and``/``or`` evaluate each operand once and yield the last value / the first
non-zero one; comparisons, ``not``, ``and``, ``or`` and constants in test position compile to
compare-and-branch, never to a materialised boolean; ``return`` may appear anywhere (code after
it is unreachable and dropped). A map key or value given as a value is written to a stack slot
as exactly the map's key_size / value_size bytes (zero-extended) right before the helper call.
If control reaches the end of the body, the body's value is returned. ``dotimes`` is lowered in
``lower_loops``, each loop the way the program's ``loopplan.LoopPlan`` says.
"""

from __future__ import annotations

from . import ir, loopplan
from .decls import BINARY_OPS, MapDef, ProgDef, Unit
from .errors import CompileError, Loc
from .forms import Form, Int, List, Symbol, short
from .ir import Insn, MapRef, SlotRef, VReg

TYPE_SIZES = {"U8": 1, "U16": 2, "U32": 4, "U64": 8, "I8": 1, "I16": 2, "I32": 4, "I64": 8}
COMPARE = {"=": "eq", "/=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge",
           "S<": "slt", "S<=": "sle", "S>": "sgt", "S>=": "sge"}
BSWAP = {"BSWAP16": 2, "BSWAP32": 4, "BSWAP64": 8}
HELPER_LOOKUP, HELPER_UPDATE, HELPER_DELETE, HELPER_TAIL_CALL = 1, 2, 3, 12
MAP_OPS = {
    "MAP-LOOKUP": (HELPER_LOOKUP, "(map-lookup MAP KEY)"),
    "MAP-UPDATE": (HELPER_UPDATE, "(map-update MAP KEY VALUE FLAGS)"),
    "MAP-DELETE": (HELPER_DELETE, "(map-delete MAP KEY)"),
    "MAP-LOOKUP-PTR": (HELPER_LOOKUP, "(map-lookup-ptr MAP KEYPTR)"),
    "MAP-UPDATE-PTR": (HELPER_UPDATE, "(map-update-ptr MAP KEYPTR VALUEPTR FLAGS)"),
    "MAP-DELETE-PTR": (HELPER_DELETE, "(map-delete-ptr MAP KEYPTR)"),
}
# Maps whose elements a program cannot read or write with the map_*_elem helpers.
NO_ELEM_ACCESS = ("prog-array", "ringbuf", "stack-trace", "perf-event-array")


def lower_program(prog: ProgDef, unit: Unit, plan: loopplan.LoopPlan | None = None) -> ir.Function:
    """The program's function (its loop callbacks in ``callbacks``), loops lowered as ``plan`` says
    (``loopplan.plan`` when not given)."""
    fn = ir.Function(prog.name, prog.loc, [])
    lowerer = _Lowerer(prog, unit, plan or loopplan.plan(prog, unit), fn, fn)
    lowerer.ctx = lowerer._value("arg", [], prog.loc, off=0)
    return lowerer.run(prog.body, prog.loc)


class _Lowerer:
    """Lowers core forms into ``fn``; ``program`` is the program's own function, which collects
    the loop callbacks (``fn`` is a callback while one is being lowered, see ``lower_loops``)."""

    def __init__(self, prog: ProgDef, unit: Unit, plan: loopplan.LoopPlan, fn: ir.Function,
                 program: ir.Function):
        self.prog = prog
        self.unit = unit
        self.plan = plan
        self.fn = fn
        self.program = program
        self.block: ir.Block | None = self._new_block("entry")
        self.scopes: list[dict[str, VReg]] = []
        self.ctx: VReg | None = None  # the context pointer
        self.callback = None  # a lower_loops.Callback while a callback is lowered: how it ends and returns

    def run(self, body, loc: Loc) -> ir.Function:
        value = self._progn(list(body), loc)
        if self.block is not None:
            self._return(value, loc)
        ir.prune_unreachable(self.fn)  # code after a return
        return ir.checked(self.fn)

    def _return(self, value: VReg, loc: Loc) -> None:
        """Leave the program with ``value`` (from a loop callback: via the loop's caller)."""
        if self.callback is not None:
            self.callback.return_(self, value, loc)
        else:
            self._terminate("ret", [value], loc)

    # -- building blocks -------------------------------------------------------------------
    def _new_block(self, hint: str) -> ir.Block:
        block = ir.Block(self.fn.new_label(hint), [])
        self.fn.blocks.append(block)
        return block

    def _current(self) -> ir.Block:
        """The block to append to; after a terminator, a fresh block no edge leads to."""
        if self.block is None:
            self.block = self._new_block("dead")
        return self.block

    def _emit(self, op: str, dst: VReg | None, args: list, loc: Loc, **kw) -> Insn:
        insn = Insn(op, dst, args, loc, **kw)
        self._current().insns.append(insn)
        return insn

    def _value(self, op: str, args: list, loc: Loc, **kw) -> VReg:
        dst = self.fn.new_vreg()
        self._emit(op, dst, args, loc, **kw)
        return dst

    def _const(self, value: int, loc: Loc) -> VReg:
        return self._value("mov", [value & ir.MASK64], loc)

    def _terminate(self, op: str, args: list, loc: Loc, **kw) -> None:
        self._current().term = Insn(op, None, args, loc, **kw)
        self.block = None

    def _jump(self, target: ir.Block, loc: Loc) -> None:
        if self.block is not None:
            self._terminate("jump", [], loc, targets=(target.label,))

    # -- errors and operand checks ---------------------------------------------------------
    def _error(self, form: Form, what: str, **kw) -> CompileError:
        return CompileError(form.loc, what, form=short(form), **kw)

    def _arity(self, form: List, n: int, shape: str) -> None:
        if len(form) - 1 != n:
            raise self._error(form, f"{form.head} takes {n} operand(s), got {len(form) - 1}",
                              expected=shape)

    def _int(self, form: Form, what: str) -> int:
        if not isinstance(form, Int):
            raise self._error(form, f"{what} must be an integer literal", expected="an integer")
        return form.value

    def _size(self, form: Form, allowed=(1, 2, 4, 8)) -> int:
        size = TYPE_SIZES.get(form.name) if isinstance(form, Symbol) else None
        if size not in allowed:
            names = ", ".join(n.lower() for n, s in TYPE_SIZES.items() if s in allowed)
            raise self._error(form, f"bad type {short(form)}", expected=f"one of {names}")
        return size

    def _map(self, form: Form, usage: str) -> MapDef:
        mapdef = self.unit.map_named(form.name) if isinstance(form, Symbol) else None
        if mapdef is None:
            known = ", ".join(m.lisp_name.lower() for m in self.unit.maps) or "none"
            raise self._error(form, f"unknown map {short(form)}", expected=f"a defmap name ({known})")
        if usage == "tail-call" and mapdef.kind != "prog-array":
            raise self._error(form, f"tail-call needs a :prog-array map, {mapdef.lisp_name.lower()} is "
                                    f":{mapdef.kind}", hint="declare the jump table with :type :prog-array")
        if usage == "elem" and mapdef.kind in NO_ELEM_ACCESS:
            raise self._error(form, f"map {mapdef.lisp_name.lower()} (:{mapdef.kind}) does not support "
                                    f"element lookup/update/delete from a program",
                              hint="use tail-call for prog-arrays and the ringbuf forms for ring buffers")
        return mapdef

    # -- variables -------------------------------------------------------------------------
    def _lookup(self, sym: Symbol) -> VReg:
        for scope in reversed(self.scopes):
            if sym.name in scope:
                return scope[sym.name]
        in_scope = sorted({n.lower() for s in self.scopes for n in s})
        raise CompileError(sym.loc, f"unbound variable {sym.name.lower()}", form=short(sym),
                           expected="a variable bound by an enclosing let",
                           hint="variables in scope: " + (", ".join(in_scope) or "none"))

    # -- expressions -----------------------------------------------------------------------
    def lower(self, form: Form) -> VReg:
        if isinstance(form, Int):
            return self._const(form.value, form.loc)
        if isinstance(form, Symbol):
            if form.name == "NIL":
                return self._const(0, form.loc)
            return self._lookup(form)
        if not isinstance(form, List) or not form.items:
            raise self._error(form, f"cannot compile {short(form)} here", expected="a core form")
        head = form.head
        name = head.name if isinstance(head, Symbol) else None
        handler = _FORMS.get(name)
        if handler is not None:
            return handler(self, form)
        if name in BINARY_OPS:
            self._arity(form, 2, f"({name.lower()} A B)")
            a, b = self.lower(form[1]), self.lower(form[2])
            return self._value(BINARY_OPS[name], [a, b], form.loc)
        if name in COMPARE:
            return self._materialise(form)
        if name in BSWAP:
            self._arity(form, 1, f"({name.lower()} X)")
            return self._value("bswap", [self.lower(form[1])], form.loc, size=BSWAP[name])
        raise self._error(form, f"unknown core form {short(head)}",
                          hint="macro expansion should have produced only core forms")

    def _progn(self, body: list, loc: Loc) -> VReg:
        value = None
        for f in body:
            value = self.lower(f)
        return value if value is not None else self._const(0, loc)

    def _f_progn(self, form: List) -> VReg:
        return self._progn(list(form.items[1:]), form.loc)

    def _bindings(self, form: List) -> dict[str, VReg]:
        if len(form) < 2 or not isinstance(form[1], List):
            raise self._error(form, "malformed let", expected="(let ((VAR TYPE INIT)...) BODY...)")
        scope: dict[str, VReg] = {}
        for b in form[1]:
            if not (isinstance(b, List) and len(b) == 3 and isinstance(b[0], Symbol)):
                raise self._error(b, "malformed binding", expected="(VAR TYPE INIT)")
            if b[1] != Symbol("NIL"):
                self._size(b[1])
            init = self.lower(b[2])
            var = self.fn.new_vreg()
            self._emit("mov", var, [init], b.loc)
            scope[b[0].name] = var
        return scope

    def _f_let(self, form: List) -> VReg:
        scope = self._bindings(form)  # inits see the outer scope only
        self.scopes.append(scope)
        try:
            return self._progn(list(form.items[2:]), form.loc)
        finally:
            self.scopes.pop()

    def _f_setq(self, form: List) -> VReg:
        self._arity(form, 2, "(setq VAR VALUE)")
        if not isinstance(form[1], Symbol):
            raise self._error(form, "setq needs a variable name", expected="(setq VAR VALUE)")
        var = self._lookup(form[1])
        value = self.lower(form[2])
        self._emit("mov", var, [value], form.loc)
        return value

    def _f_if(self, form: List) -> VReg:
        """An ``if`` whose else arm is another ``if`` (what ``cond`` and ``case`` expand to) is one
        chain of tests sharing one join, lowered in a loop: a ``case`` with hundreds of arms
        must not nest that many Python calls."""
        chain = []
        while isinstance(form, List) and form.head_is("IF"):
            self._arity(form, 3, "(if TEST THEN ELSE)")
            chain.append(form)
            form = form[3]
        result, join = self.fn.new_vreg(), self._new_block("join")
        for link in chain:
            then, other = self._new_block("then"), self._new_block("else")
            self.test(link[1], then, other)
            self.block = then
            self._arm_value(link[2], result, join, link.loc)
            self.block = other
        self._arm_value(form, result, join, chain[-1].loc)
        self.block = join
        return result

    def _arm_value(self, form: Form, result: VReg, join: ir.Block, loc: Loc) -> None:
        """Lower one arm of a conditional into ``result`` and go on to ``join``."""
        value = self.lower(form)
        if self.block is not None:
            self._emit("mov", result, [value], loc)
            self._jump(join, loc)

    def _f_and_or(self, form: List) -> VReg:
        """An operand that is a test (``_boolean``) branches straight to a block setting the
        result to 1 or 0, shared by all such operands; any other operand's value is the result
        when it stops the chain."""
        operands = list(form.items[1:])
        is_and = form.head.name == "AND"
        if not operands:
            return self._const(1 if is_and else 0, form.loc)
        result, join = self.fn.new_vreg(), self._new_block("join")
        constant_arms: dict = {}

        def arm(value: int) -> ir.Block:
            if value not in constant_arms:
                block = self._new_block("true" if value else "false")
                block.insns.append(Insn("mov", result, [value], form.loc))
                block.term = Insn("jump", None, [], form.loc, targets=(join.label,))
                constant_arms[value] = block
            return constant_arms[value]

        for i, operand in enumerate(operands):
            last = i == len(operands) - 1
            if _boolean(operand):
                if last:
                    self.test(operand, arm(1), arm(0))
                    break
                rest = self._new_block("next")
                if is_and:
                    self.test(operand, rest, arm(0))
                else:
                    self.test(operand, arm(1), rest)
            else:
                value = self.lower(operand)
                if self.block is None:
                    break
                self._emit("mov", result, [value], operand.loc)
                if last:
                    self._jump(join, form.loc)
                    break
                rest = self._new_block("next")
                zero = self._const(0, operand.loc)
                stop, go_on = (join, rest) if is_and else (rest, join)
                self._terminate("branch", [value, zero], operand.loc, cond="eq", targets=(stop.label, go_on.label))
            self.block = rest
        self.block = join
        return result

    def _materialise(self, form: Form) -> VReg:
        """A test used as a value: 1 or 0."""
        yes, no = self._new_block("true"), self._new_block("false")
        result, join = self.fn.new_vreg(), self._new_block("join")
        self.test(form, yes, no)
        for block, value in ((yes, 1), (no, 0)):
            self.block = block
            self._arm_value(Int(value, form.loc), result, join, form.loc)
        self.block = join
        return result

    def _f_not(self, form: List) -> VReg:
        self._arity(form, 1, "(not X)")
        return self._materialise(form)

    def _f_return(self, form: List) -> VReg:
        self._arity(form, 1, "(return VALUE)")
        value = self.lower(form[1])
        if self.block is not None:
            self._return(value, form.loc)
        return self._const(0, form.loc)  # the value of code that never runs

    def _f_neg(self, form: List) -> VReg:
        self._arity(form, 1, "(neg X)")
        return self._value("neg", [self.lower(form[1])], form.loc)

    def _f_cast(self, form: List) -> VReg:
        self._arity(form, 2, "(cast TYPE X)")
        size = self._size(form[1])
        value = self.lower(form[2])
        if size == 8:
            return self._value("mov", [value], form.loc)
        return self._value("trunc", [value], form.loc, size=size)

    # -- memory ----------------------------------------------------------------------------
    def _f_load(self, form: List) -> VReg:
        self._arity(form, 3, "(load TYPE PTR OFF)")
        size, off = self._size(form[1]), self._int(form[3], "load offset")
        return self._value("load", [self.lower(form[2])], form.loc, size=size, off=off)

    def _f_store(self, form: List) -> VReg:
        self._arity(form, 4, "(store TYPE PTR OFF VALUE)")
        size, off = self._size(form[1]), self._int(form[3], "store offset")
        ptr = self.lower(form[2])
        self._emit("store", None, [ptr, self.lower(form[4])], form.loc, size=size, off=off)
        return self._const(0, form.loc)

    def _f_atomic_add(self, form: List) -> VReg:
        self._arity(form, 4, "(atomic-add TYPE PTR OFF VALUE)")
        size, off = self._size(form[1], (4, 8)), self._int(form[3], "atomic-add offset")
        if off % size:
            raise self._error(form[3], f"atomic-add offset {off} is not aligned to {size} bytes",
                              expected=f"a multiple of {size}")
        ptr = self.lower(form[2])
        self._emit("atomic_add", None, [ptr, self.lower(form[4])], form.loc, size=size, off=off)
        return self._const(0, form.loc)

    def _f_ctx_load(self, form: List) -> VReg:
        self._arity(form, 2, "(ctx-load TYPE OFF)")
        size, off = self._size(form[1]), self._int(form[2], "context offset")
        return self._value("load", [self.ctx], form.loc, size=size, off=off)

    def _f_ctx_store(self, form: List) -> VReg:
        self._arity(form, 3, "(ctx-store TYPE OFF VALUE)")
        size, off = self._size(form[1]), self._int(form[2], "context offset")
        self._emit("store", None, [self.ctx, self.lower(form[3])], form.loc, size=size, off=off)
        return self._const(0, form.loc)

    def _f_ctx_ptr(self, form: List) -> VReg:
        self._arity(form, 0, "(ctx-ptr)")
        return self.ctx

    def _f_struct_alloc(self, form: List) -> VReg:
        self._arity(form, 1, "(struct-alloc N)")
        size = self._int(form[1], "struct-alloc size")
        if size <= 0:
            raise self._error(form, f"struct-alloc size must be positive, got {size}")
        slot = self.fn.new_slot(size, "alloc", form.loc)
        self._fill(SlotRef(slot), size, None, form.loc)
        return self._value("mov", [SlotRef(slot)], form.loc)

    def _fill(self, base: SlotRef, size: int, value: VReg | None, loc: Loc) -> None:
        """Write ``size`` bytes at ``base``: ``value`` zero-extended (None: zeros), widest aligned stores."""
        off = 0
        while off < size:
            width = next(w for w in (8, 4, 2, 1) if w <= size - off and off % w == 0)
            if value is None or off >= 8:
                chunk = self._const(0, loc)
            elif off == 0:
                chunk = value
            else:
                chunk = self._value("rsh", [value, self._const(8 * off, loc)], loc)
            self._emit("store", None, [base, chunk], loc, size=width, off=off)
            off += width

    def _spill(self, value: VReg, size: int, group: int, loc: Loc) -> SlotRef:
        """A fresh scratch slot holding exactly ``size`` bytes of ``value``, zero-extended."""
        ref = SlotRef(self.fn.new_slot(size, "scratch", loc, group))
        self._fill(ref, size, value, loc)
        return ref

    # -- maps, helpers, tail calls ---------------------------------------------------------
    def _call(self, helper: int, args: list, loc: Loc) -> VReg:
        return self._value("call", args, loc, helper=helper)

    def _f_map_op(self, form: List) -> VReg:
        name = form.head.name
        helper, shape = MAP_OPS[name]
        self._arity(form, len(shape.split()) - 1, shape)
        mapdef = self._map(form[1], "elem")
        operands = [self.lower(f) for f in form.items[2:]]
        by_value = not name.endswith("-PTR")
        group = self.fn.new_id()  # this call's key and value slots live together
        args = [_map_ref(mapdef)]
        for operand, size, f in zip(operands, (mapdef.key_size, mapdef.value_size), form.items[2:4]):
            args.append(self._spill(operand, size, group, f.loc) if by_value else operand)
        if helper == HELPER_UPDATE:
            args.append(operands[2])
        return self._call(helper, args, form.loc)

    def _f_call(self, form: List) -> VReg:
        if len(form) < 2:
            raise self._error(form, "call needs a helper id", expected="(call ID ARG...)")
        helper = self._int(form[1], "helper id")
        if len(form) - 2 > ir.MAX_CALL_ARGS:
            raise self._error(form, f"a helper takes at most 5 arguments, got {len(form) - 2}")
        return self._call(helper, [self._call_arg(f) for f in form.items[2:]], form.loc)

    def _call_arg(self, form: Form):
        if isinstance(form, List) and form.head_is("MAP-FD"):
            self._arity(form, 1, "(map-fd MAP)")
            return _map_ref(self._map(form[1], "fd"))
        return self.lower(form)

    def _f_asm(self, form: List) -> VReg:
        self._arity(form, 5, "(asm OPCODE DST SRC OFF IMM)")
        fields = tuple(self._int(f, "asm field") for f in form.items[1:])
        return self._value("asm", [], form.loc, raw=fields)

    def _f_tail_call(self, form: List) -> VReg:
        self._arity(form, 2, "(tail-call MAP INDEX)")
        mapdef = self._map(form[1], "tail-call")
        index = self.lower(form[2])
        self._emit("call", None, [self.ctx, MapRef(mapdef.name), index], form.loc, helper=HELPER_TAIL_CALL)
        return self._const(0, form.loc)  # reached only when the slot is empty

    # -- tests -----------------------------------------------------------------------------
    def test(self, form: Form, yes: ir.Block, no: ir.Block) -> None:
        """Branch to ``yes`` if ``form`` is non-zero, else to ``no``; leaves no current block."""
        if isinstance(form, Int):
            self._jump(yes if form.value & ir.MASK64 else no, form.loc)
            return
        name = form.head.name if isinstance(form, List) and isinstance(form.head, Symbol) else None
        if name in COMPARE:
            self._arity(form, 2, f"({name.lower()} A B)")
            a, b = self.lower(form[1]), self.lower(form[2])
            self._branch(COMPARE[name], a, b, yes, no, form.loc)
        elif name == "NOT":
            self._arity(form, 1, "(not X)")
            self.test(form[1], no, yes)
        elif name in ("AND", "OR"):
            self._test_chain(form, name == "AND", yes, no)
        elif name == "IF" and len(form) == 4:
            then, other = self._new_block("then"), self._new_block("else")
            self.test(form[1], then, other)
            for block, arm in ((then, form[2]), (other, form[3])):
                self.block = block
                self.test(arm, yes, no)
        elif name == "PROGN" and len(form) > 1:
            for f in form.items[1:-1]:
                self.lower(f)
            self.test(form[len(form) - 1], yes, no)
        else:
            value = self.lower(form)
            self._branch("ne", value, self._const(0, form.loc), yes, no, form.loc)

    def _branch(self, cond: str, a: VReg, b: VReg, yes: ir.Block, no: ir.Block, loc: Loc) -> None:
        if self.block is not None:
            self._terminate("branch", [a, b], loc, cond=cond, targets=(yes.label, no.label))

    def _test_chain(self, form: List, is_and: bool, yes: ir.Block, no: ir.Block) -> None:
        operands = list(form.items[1:])
        if not operands:
            self._jump(yes if is_and else no, form.loc)
            return
        for operand in operands[:-1]:
            rest = self._new_block("next")
            if is_and:
                self.test(operand, rest, no)
            else:
                self.test(operand, yes, rest)
            self.block = rest
        self.test(operands[-1], yes, no)


# Maps whose lookups only read them (an LRU map's marks the entry used; a sockmap's takes a
# reference to a socket).
PURE_LOOKUPS = ("hash", "array", "percpu-hash", "percpu-array", "lpm-trie")


def _map_ref(mapdef: MapDef) -> MapRef:
    return MapRef(mapdef.name, pure_lookup=mapdef.kind in PURE_LOOKUPS)


def _boolean(form: Form) -> bool:
    """Is ``form`` a test whose value is 1 or 0 (a comparison, ``not``, or ``and``/``or`` of
    such tests)? ``test`` compiles it to branches without materialising the value."""
    name = form.head.name if isinstance(form, List) and isinstance(form.head, Symbol) else None
    if name in COMPARE or name == "NOT":
        return True
    return name in ("AND", "OR") and len(form) > 1 and all(_boolean(f) for f in form.items[1:])


def _dotimes(lowerer, form):
    from . import lower_loops  # only programs with loops pay for importing it

    return lower_loops.lower_dotimes(lowerer, form)


_FORMS = {
    "PROGN": _Lowerer._f_progn, "LET": _Lowerer._f_let, "SETQ": _Lowerer._f_setq, "IF": _Lowerer._f_if,
    "AND": _Lowerer._f_and_or, "OR": _Lowerer._f_and_or, "NOT": _Lowerer._f_not,
    "RETURN": _Lowerer._f_return, "NEG": _Lowerer._f_neg, "CAST": _Lowerer._f_cast,
    "LOAD": _Lowerer._f_load, "STORE": _Lowerer._f_store, "ATOMIC-ADD": _Lowerer._f_atomic_add,
    "CTX-LOAD": _Lowerer._f_ctx_load, "CTX-STORE": _Lowerer._f_ctx_store, "CTX-PTR": _Lowerer._f_ctx_ptr,
    "STRUCT-ALLOC": _Lowerer._f_struct_alloc, "CALL": _Lowerer._f_call, "TAIL-CALL": _Lowerer._f_tail_call,
    "ASM": _Lowerer._f_asm,
    "DOTIMES": _dotimes,
    **{n: _Lowerer._f_map_op for n in MAP_OPS},
}
