"""A tolerant reader for Common Lisp source: the original's test files, which hold more of Common
Lisp than Whistler programs may (``#'``, ``#(``, characters, package prefixes, dotted pairs).

In: text. Out: ``read_all`` -> nested Python lists of ``int``, ``Text`` (strings), ``Char`` and
``Sym`` (upper-cased symbols keeping their package prefix; ``Sym.base`` drops it); ``show``
prints a form back as source; ``heads`` collects the symbols in head position.
"""

from __future__ import annotations

import re


class Sym(str):
    """A symbol, upper case, with its package prefix (``WHISTLER/COMPILER:CU-INSNS``)."""

    @property
    def base(self) -> str:
        return self if self.startswith(":") else self.rsplit(":", 1)[-1]


class Text(str):
    """A string literal."""


class Char(int):
    """A character literal (its code)."""


class ReadError(Exception):
    pass


_DELIMS = set("()'`,\"; \t\r\n")


def read_all(text: str) -> list:
    pos, out = 0, []
    while True:
        pos = _skip(text, pos)
        if pos >= len(text):
            return out
        form, pos = _read(text, pos)
        out.append(form)


def _skip(text: str, pos: int) -> int:
    while pos < len(text):
        c = text[pos]
        if c.isspace():
            pos += 1
        elif c == ";":
            while pos < len(text) and text[pos] != "\n":
                pos += 1
        elif text.startswith("#|", pos):
            end = text.find("|#", pos)
            pos = len(text) if end < 0 else end + 2
        else:
            return pos
    return pos


def _read(text: str, pos: int):
    pos = _skip(text, pos)
    if pos >= len(text):
        raise ReadError("unexpected end of file")
    c = text[pos]
    if c == "(":
        items, pos = [], pos + 1
        while True:
            pos = _skip(text, pos)
            if pos >= len(text):
                raise ReadError("unterminated list")
            if text[pos] == ")":
                return items, pos + 1
            if text[pos] == "." and pos + 1 < len(text) and text[pos + 1] in _DELIMS:
                tail, pos = _read(text, pos + 1)
                items = [*items, Sym("&DOT"), tail]
                continue
            item, pos = _read(text, pos)
            items.append(item)
    if c == ")":
        raise ReadError("unexpected )")
    prefixes = {"'": "QUOTE", "`": "QUASIQUOTE"}
    if c in prefixes:
        form, pos = _read(text, pos + 1)
        return [Sym(prefixes[c]), form], pos
    if c == ",":
        splice = text.startswith(",@", pos)
        form, pos = _read(text, pos + (2 if splice else 1))
        return [Sym("UNQUOTE-SPLICING" if splice else "UNQUOTE"), form], pos
    if c == '"':
        out, pos = [], pos + 1
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\":
                pos += 1
            out.append(text[pos])
            pos += 1
        return Text("".join(out)), pos + 1
    if c == "#":
        nxt = text[pos + 1] if pos + 1 < len(text) else ""
        if nxt == "'":
            form, pos = _read(text, pos + 2)
            return [Sym("FUNCTION"), form], pos
        if nxt == "(":
            items, pos = _read(text, pos + 1)
            return [Sym("VECTOR"), *items], pos
        if nxt == "\\":
            end = pos + 3
            while end < len(text) and text[end] not in _DELIMS:
                end += 1
            name = text[pos + 2:end]
            return Char(ord(name) if len(name) == 1 else {"SPACE": 32, "NEWLINE": 10}.get(name.upper(), 0)), end
        if nxt in "xXbBoO":
            end = pos + 2
            while end < len(text) and text[end] not in _DELIMS:
                end += 1
            return int(text[pos + 2:end], {"x": 16, "b": 2, "o": 8}[nxt.lower()]), end
        if nxt == ":":
            atom, end = _atom(text, pos + 2)
            return Sym(atom.upper()), end
    atom, end = _atom(text, pos)
    if re.fullmatch(r"[+-]?\d+", atom):
        return int(atom), end
    return Sym(atom.upper()), end


def _atom(text: str, pos: int) -> tuple[str, int]:
    end = pos
    while end < len(text) and text[end] not in _DELIMS:
        if text[end] == "|":
            close = text.find("|", end + 1)
            end = len(text) if close < 0 else close + 1
            continue
        end += 1
    return text[pos:end], end


def show(form) -> str:
    """Print a form back as Lisp source (for the maps a test passes)."""
    if isinstance(form, list):
        if len(form) == 2 and form[0] == "QUOTE":
            return "'" + show(form[1])
        return "(" + " ".join(show(f) for f in form) + ")"
    if isinstance(form, Text):
        return '"' + form.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(form).lower() if isinstance(form, Sym) else str(form)


def heads(form) -> set[str]:
    """Every symbol in head position in ``form``."""
    out = set()
    if isinstance(form, list) and form:
        if isinstance(form[0], Sym):
            out.add(form[0].base)
        for f in form:
            out |= heads(f)
    return out
