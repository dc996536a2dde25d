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

from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN_LOC = Loc("<unknown>", 0, 0)


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
        lines = text.splitlines()
        if 1 <= self.loc.line <= len(lines):
            self.source_line = lines[self.loc.line - 1]
        return self

    def __str__(self) -> str:
        out = [f"{self.loc}: error: {self.what}"]
        if self.source_line is not None:
            out.append("  " + self.source_line)
            out.append("  " + " " * max(self.loc.col - 1, 0) + "^")
        if self.form:
            out.append(f"  in: {self.form}")
        if self.expected:
            out.append(f"  expected: {self.expected}")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)
