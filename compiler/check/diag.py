"""How the checker words a rejection: located errors with a hint, and names for values and memory.

In: the instruction (its ``loc`` is the form that produced it) and what the verifier would say.
Out: ``CompileError`` raised by ``fail``; ``slot_name`` / ``where`` name a stack slot or a source
line the way a user would recognise them.
"""

from __future__ import annotations

from typing import NoReturn

from ..errors import CompileError, Loc
from ..ir import StackSlot


def fail(loc: Loc, what: str, hint: str | None = None, expected: str | None = None) -> NoReturn:
    raise CompileError(loc, what, hint=hint, expected=expected)


def line(loc: Loc | None) -> str:
    """' (line N)' for a location in the same file, '' when unknown."""
    if loc is None or loc.line <= 0:
        return ""
    if loc.file.startswith("<"):
        return ""
    return f" (line {loc.line})"


def slot_name(slot: StackSlot) -> str:
    if slot.kind == "alloc":
        return f"the {slot.size}-byte stack buffer (struct-alloc, make-..., stack-addr){line(slot.loc)}"
    if slot.kind == "scratch":
        return f"the {slot.size}-byte map key/value buffer{line(slot.loc)}"
    return f"the {slot.size}-byte register spill slot"


def byte_range(lo: int, size: int) -> str:
    return f"byte {lo}" if size == 1 else f"bytes {lo}..{lo + size - 1}"
