"""What one compile may spend on work the source asks for, so that any input ends, quickly.

In: charges from the two stages that do work on the source's behalf: the compile-time Lisp
(``macro_eval``: a step per evaluation, per loop iteration, per element a built-in walks; the
size of every list, string, symbol, integer and function it builds, charged before building
it) and expansion (``expand.body``, ``expand.base``: a step and the size of a form for every form expanded or
copied out of a macro's result). Out: ``Budget``, one per compile, shared by every macro call
and every program of the file; the charge that goes past a limit raises ``OverBudget``, and the
stage turns that into an error located at the form being expanded.

Sizes are estimates of CPython's memory for the value, charged cumulatively (freed values are
not refunded), so the memory compile-time values hold is at most ``MAX_BYTES``. ``MAX_STEPS`` is
about a second of evaluation. Both are far above what real programs use (the seed takes 51
steps and 8 KB; the most any test program of this repository takes is 182,016 steps and
4.5 MB), and low enough that a compile stays within 10 s and 512 MiB.
"""

from __future__ import annotations

MAX_STEPS = 1_000_000
MAX_BYTES = 64 << 20

# Approximate sizes in bytes (CPython, 64-bit) of what the compile-time Lisp builds.
LIST_BYTES = 120  # a List node and its tuple, without the items
ITEM_BYTES = 8  # one slot of a tuple
CHAR_BYTES = 4  # one character of a str (UCS-4 at worst)
ATOM_BYTES = 100  # a Symbol, Str or Int node and its value's header
FUNCTION_BYTES = 400  # a closure and the environment it captures
FORM_BYTES = 200  # one form of a program as expansion builds it


class OverBudget(Exception):
    """The compile spent its budget; ``str()`` says which."""


class Budget:
    __slots__ = ("steps", "bytes")

    def __init__(self) -> None:
        self.steps = 0
        self.bytes = 0

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise OverBudget(f"gave up after {MAX_STEPS:,} steps of compile-time work on this file")

    def alloc(self, n_bytes: int) -> None:
        self.bytes += n_bytes
        if self.bytes > MAX_BYTES:
            raise OverBudget(f"gave up after building {MAX_BYTES >> 20} MiB of forms and values while "
                             "compiling this file")

    def list_of(self, n_items: int) -> None:
        """Charge for a list of ``n_items`` about to be built."""
        self.alloc(LIST_BYTES + ITEM_BYTES * n_items)

    def text_of(self, n_chars: int) -> None:
        """Charge for a string or symbol of ``n_chars`` characters about to be built."""
        self.alloc(ATOM_BYTES + CHAR_BYTES * n_chars)
