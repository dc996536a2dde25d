"""Source locations and the one error type every compiler stage raises.

In: nothing. Out: ``Loc`` (file, line, column) carried by every form, IR instruction
and BPF instruction, and ``CompileError`` whose ``str()`` renders

    file:line:col: error: WHAT
      <the source line>
          ^
      in: FORM
      expected: ...
      hint: ...

Stages never print or exit; the CLI turns a ``CompileError`` into that text and exit code 1.
"""

from __future__ import annotations


class Loc:
    """Immutable by convention; a plain slotted class because every form and instruction has one."""

    __slots__ = ("file", "line", "col")

    def __init__(self, file: str, line: int, col: int):
        self.file = file
        self.line = line  # 1-based
        self.col = col  # 1-based

    def _key(self) -> tuple:
        return self.file, self.line, self.col

    def __eq__(self, other):
        return self._key() == other._key() if other.__class__ is Loc else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Loc({self.file!r}, {self.line}, {self.col})"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN_LOC = Loc("<unknown>", 0, 0)

SHOWN_LINE = 120  # characters of the source line an error shows around the column
SHOWN_TEXT = 400  # characters of each other part of a message


def _window(line: str, col: int) -> tuple[str, int]:
    """At most ``SHOWN_LINE`` characters of ``line`` around column ``col`` (1-based), with
    control characters as '?' so the caret lines up, and the caret's column in that text."""
    col = min(max(col, 1), len(line) + 1)
    start = max(0, min(col - 1 - SHOWN_LINE // 2, len(line) - SHOWN_LINE))
    text = line[start: start + SHOWN_LINE]
    text = "".join("?" if (c < " " and c != "\t") or "\x7f" <= c <= "\x9f" else c for c in text)
    if start:
        text, col = "..." + text, col + 3
    if start + SHOWN_LINE < len(line):
        text += "..."
    return text, col - start


class CompileError(Exception):
    """A problem in the user's source, located at ``loc``.

    ``what`` says what is wrong, ``form`` the offending form as source text (optional),
    ``expected`` what would have been right, ``hint`` how to fix it.
    """

    def __init__(self, loc: Loc, what: str, *, form: str | None = None,
                 expected: str | None = None, hint: str | None = None):
        super().__init__(what)
        self.loc = loc
        self.what = what
        self.form = form
        self.expected = expected
        self.hint = hint
        self.source_line: str | None = None  # filled in by attach_source()

    def attach_source(self, text: str) -> CompileError:
        """Remember the offending source line so the message can show it with a caret."""
        if self.loc.line >= 1:
            start = -1
            for _line in range(self.loc.line - 1):  # lines end at "\n" only, as the reader counts them
                start = text.find("\n", start + 1)
                if start < 0:
                    return self
            end = text.find("\n", start + 1)
            self.source_line = text[start + 1: end if end >= 0 else len(text)]
        return self

    def __str__(self) -> str:
        out = [f"{self.loc}: error: {_clip(self.what)}"]
        if self.source_line is not None:
            line, col = _window(self.source_line, self.loc.col)
            out.append("  " + line)
            out.append("  " + " " * (col - 1) + "^")
        if self.form:
            out.append(f"  in: {_clip(self.form)}")
        if self.expected:
            out.append(f"  expected: {_clip(self.expected)}")
        if self.hint:
            out.append(f"  hint: {_clip(self.hint)}")
        return "\n".join(out)


def _clip(text: str) -> str:
    """A part of the message, bounded: it may quote a name or string of any length."""
    return text if len(text) <= SHOWN_TEXT else text[: SHOWN_TEXT - 3] + "..."
