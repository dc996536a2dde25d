"""Random integer expressions with a meaning computed here, independently of the compiler.

In: a hypothesis ``draw`` (via the ``expressions`` strategy). Out: ``Expr`` trees over three
run-time operands a, b, c that render either as core forms (``core``, for the IR-level tests)
or as Whistler source (``source``, for the kernel tests), and ``evaluate`` giving the 64-bit
value the language defines (reference §2: wrap mod 2**64, unsigned / and mod with x/0 = 0 and
x mod 0 = x, >>> arithmetic, comparisons 1/0, and/or values, one-armed if = 0, cast truncates),
and loops: ``(let ((s INIT)) (dotimes (i COUNT [:max MAX]) (setf s BODY)) s)``, where BODY sees the
running value of s and the index i, and a run-time COUNT runs min(COUNT, MAX) times (§2.15), and
stack memory: ``(let ((m (struct-alloc 16))) STATEMENT... (load T m OFF))``, each statement a
``store`` of a value at an aligned offset or an ``if`` choosing between two stores (§2.9; the
buffer starts zeroed, values are stored little-endian and truncated to their type).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

M = (1 << 64) - 1
BINARY = ("+", "-", "*", "/", "mod", "logand", "logior", "logxor")
SHIFTS = ("<<", ">>", ">>>")
COMPARES = ("=", "/=", "<", "<=", ">", ">=", "s<", "s<=", "s>", "s>=")
CASTS = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}
SWAPS = {2: ("bswap16", "ntohs"), 4: ("bswap32", "ntohl"), 8: ("bswap64", "ntohll")}
VARS = ("a", "b", "c")


@dataclass(frozen=True)
class Expr:
    op: str  # "int", "var", a BINARY/SHIFTS/COMPARES op, "if", "and", "or", "not", "cast", "swap", "let",
    # "loop", "memory"
    args: tuple = ()  # sub-expressions, or the literal / variable name / (type, expr) / (size, expr);
    # a loop: (accumulator name, init, count (an int, or an Expr with a max), max or None, index name, body);
    # memory: (statements, (type, offset) loaded at the end), a statement ("store", type, offset, expr)
    # or ("if", test, store, store)


def _signed(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def evaluate(e: Expr, env: dict) -> int:
    op, args = e.op, e.args
    if op == "int":
        return args[0] & M
    if op == "var":
        return env[args[0]]
    if op == "let":
        name, init, body = args
        return evaluate(body, {**env, name: evaluate(init, env)})
    if op == "loop":
        acc, init, count, maximum, index, body = args
        value = evaluate(init, env)
        # COUNT is rendered inside the accumulator's let: it sees the accumulator's initial value
        n = count if maximum is None else min(evaluate(count, {**env, acc: value}), maximum)
        for i in range(n):
            value = evaluate(body, {**env, acc: value, index: i})
        return value
    if op == "memory":
        statements, (typ, off) = args
        buffer = bytearray(MEMORY_SIZE)
        for statement in statements:
            if statement[0] == "if":
                statement = statement[2] if evaluate(statement[1], env) else statement[3]
            _store, styp, soff, value = statement
            size = CASTS[styp]
            buffer[soff:soff + size] = (evaluate(value, env) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return int.from_bytes(buffer[off:off + CASTS[typ]], "little")
    if op == "if":
        test = evaluate(args[0], env)
        return evaluate(args[1], env) if test else (evaluate(args[2], env) if len(args) > 2 else 0)
    if op in ("and", "or"):
        value = 1 if op == "and" else 0
        for sub in args:
            value = evaluate(sub, env)
            if (value == 0) == (op == "and"):
                return value
        return value
    if op == "not":
        return int(evaluate(args[0], env) == 0)
    if op == "cast":
        return evaluate(args[1], env) & ((1 << (8 * CASTS[args[0]])) - 1)
    if op == "swap":
        size, sub = args
        low = evaluate(sub, env) & ((1 << (8 * size)) - 1)
        return int.from_bytes(low.to_bytes(size, "little"), "big")
    a, b = (evaluate(x, env) for x in args)
    if op in COMPARES:
        if op.startswith("s"):
            a, b, op = _signed(a), _signed(b), op[1:]
        return int({"=": a == b, "/=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
    return {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a // b if b else 0,
        "mod": lambda: a % b if b else a, "logand": lambda: a & b, "logior": lambda: a | b,
        "logxor": lambda: a ^ b, "<<": lambda: a << b, ">>": lambda: a >> b, ">>>": lambda: _signed(a) >> b,
    }[op]() & M


def render(e: Expr, dialect: str) -> str:
    """``dialect`` is "core" (decls vocabulary) or "source" (Whistler as users write it)."""
    op, args = e.op, e.args
    if op == "int":
        return str(args[0])
    if op == "var":
        return args[0]
    if op == "let":
        name, init, body = args
        binding = f"({name} nil {render(init, dialect)})" if dialect == "core" else f"({name} {render(init, dialect)})"
        return f"(let ({binding}) {render(body, dialect)})"
    if op == "loop":
        acc, init, count, maximum, index, body = args
        core = dialect == "core"
        if maximum is None:
            spec = f"({index} {count} {count})" if core else f"({index} {count})"
        else:
            spec = f"({index} {render(count, dialect)} {maximum})" if core else \
                f"({index} {render(count, dialect)} :max {maximum})"
        binding = f"({acc} nil {render(init, dialect)})" if core else f"({acc} {render(init, dialect)})"
        return (f"(let ({binding}) (dotimes {spec} ({'setq' if core else 'setf'} {acc} {render(body, dialect)})) "
                f"{acc})")
    if op == "memory":
        statements, (typ, off) = args

        def store(statement) -> str:
            _store, styp, soff, value = statement
            return f"(store {styp} m {soff} {render(value, dialect)})"

        body = " ".join(store(st) if st[0] == "store" else
                        f"(if {render(st[1], dialect)} {store(st[2])} {store(st[3])})" for st in statements)
        binding = f"(m nil (struct-alloc {MEMORY_SIZE}))" if dialect == "core" else f"(m (struct-alloc {MEMORY_SIZE}))"
        return f"(let ({binding}) {body} (load {typ} m {off}))"
    if op == "if" and len(args) == 2 and dialect == "core":
        return f"(if {render(args[0], dialect)} {render(args[1], dialect)} 0)"
    if op == "cast":
        return f"(cast {args[0]} {render(args[1], dialect)})"
    if op == "swap":
        name = SWAPS[args[0]][0 if dialect == "core" else 1]
        return f"({name} {render(args[1], dialect)})"
    return "(" + " ".join([op, *(render(x, dialect) for x in args)]) + ")"


LITERALS = st.sampled_from([0, 1, 2, 3, 7, 8, 0x7F, 0xFF, 0x800, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                            0xFFFFFFFF, 1 << 32, (1 << 63), M, M - 1])


@st.composite
def expressions(draw, depth: int = 3, names: tuple = VARS) -> Expr:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return Expr("var", (draw(st.sampled_from(names)),))
        return Expr("int", (draw(LITERALS),))
    sub = expressions(depth - 1, names)
    kind = draw(st.sampled_from(("binary", "shift", "compare", "if", "andor", "not", "cast", "swap", "let",
                                 "loop", "memory")))
    if kind == "binary":
        op = draw(st.sampled_from(BINARY))
        right = draw(sub)
        if op in ("/", "mod") and right.op == "int" and right.args[0] == 0:
            right = Expr("int", (3,))  # a literal zero divisor is a compile error, not a value
        return Expr(op, (draw(sub), right))
    if kind == "shift":
        return Expr(draw(st.sampled_from(SHIFTS)), (draw(sub), Expr("int", (draw(st.integers(0, 63)),))))
    if kind == "compare":
        return Expr(draw(st.sampled_from(COMPARES)), (draw(sub), draw(sub)))
    if kind == "if":
        arms = (draw(sub), draw(sub)) if draw(st.booleans()) else (draw(sub),)
        return Expr("if", (draw(sub), *arms))
    if kind == "andor":
        return Expr(draw(st.sampled_from(("and", "or"))), tuple(draw(st.lists(sub, min_size=1, max_size=3))))
    if kind == "not":
        return Expr("not", (draw(sub),))
    if kind == "cast":
        return Expr("cast", (draw(st.sampled_from(sorted(CASTS))), draw(sub)))
    if kind == "swap":
        return Expr("swap", (draw(st.sampled_from(sorted(SWAPS))), draw(sub)))
    if kind == "loop":
        return draw(loops(depth, names))
    if kind == "memory":
        return draw(memory(depth, names))
    name = draw(st.sampled_from(("x", "y")))
    return Expr("let", (name, draw(sub), draw(expressions(depth - 1, (*names, name)))))


@st.composite
def loops(draw, depth: int = 3, names: tuple = VARS) -> Expr:
    """A loop whose body is an expression over ``names``, the running value and the index."""
    sub = expressions(depth - 1, names)
    acc, index = draw(st.sampled_from((("s", "i"), ("u", "j"))))
    if draw(st.booleans()):
        count, maximum = draw(st.integers(0, 4)), None
    else:
        count, maximum = draw(sub), draw(st.integers(0, 5))
    body = draw(expressions(depth - 1, (*names, acc, index)))
    return Expr("loop", (acc, draw(sub), count, maximum, index, body))


MEMORY_SIZE = 16


@st.composite
def memory(draw, depth: int = 3, names: tuple = VARS) -> Expr:
    """Stores into a zeroed 16-byte stack buffer, some chosen by a test, then one load from it."""
    sub = expressions(depth - 1, names)

    def place():
        typ = draw(st.sampled_from(sorted(CASTS)))
        return typ, CASTS[typ] * draw(st.integers(0, MEMORY_SIZE // CASTS[typ] - 1))

    def store():
        return ("store", *place(), draw(sub))

    statements = tuple(("if", draw(sub), store(), store()) if draw(st.booleans()) else store()
                       for _statement in range(draw(st.integers(1, 3))))
    return Expr("memory", (statements, place()))


OPERANDS = st.sampled_from([0, 1, 2, 5, 0xFF, 0x1234, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 40,
                            1 << 63, M]) | st.integers(0, M)
