"""How the checker words a rejection: located errors with a hint, and names for values and memory.

In: the instruction (its ``loc`` is the form that produced it) and what the verifier would say.
Out: ``CompileError`` raised by ``fail``; ``slot_name`` / ``where`` name a stack slot or a source
line the way a user would recognise them.
"""

from __future__ import annotations

from ..errors import CompileError, Loc
from ..ir import StackSlot

# Rules stricter than the kernel's verifier, kept because breaking them is a bug in the program
# whatever the kernel says: bytes outside a stack slot belong to another variable (the frame
# layout is the allocator's), and r1-r5 hold nothing the program named at an asm instruction.
LANGUAGE_RULES = frozenset(("stack-slot-bounds", "asm-registers"))


def fail(loc: Loc, what: str, hint: str | None = None, expected: str | None = None,
         rule: str = "verifier") -> None:  # never returns
    """Raise the located error; ``rule`` ("verifier" or one of ``LANGUAGE_RULES``) says whose rule
    the program breaks (``CompileError.rule``)."""
    here = f" (line {loc.line})"  # a reference to the error's own line says nothing
    err = CompileError(loc, what.replace(here, ""), hint=hint.replace(here, "") if hint else hint,
                       expected=expected)
    err.rule = rule
    raise err


def line(loc: Loc | None) -> str:
    """' (line N)' for a location in the same file, '' when unknown."""
    if loc is None or loc.line <= 0:
        return ""
    if loc.file.startswith("<"):
        return ""
    return f" (line {loc.line})"


def slot_name(slot: StackSlot) -> str:
    if slot.kind == "alloc":
        return f"the {slot.size}-byte stack buffer{line(slot.loc)}"
    if slot.kind == "scratch":
        return f"the {slot.size}-byte map key/value buffer{line(slot.loc)}"
    if slot.kind == "capture":
        return f"the {slot.size}-byte area a bpf_loop body shares with its caller{line(slot.loc)}"
    return f"the {slot.size}-byte register spill slot"


def byte_range(lo: int, size: int) -> str:
    return f"byte {lo}" if size == 1 else f"bytes {lo}..{lo + size - 1}"
