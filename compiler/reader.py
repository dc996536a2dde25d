"""Reader: source text -> a list of top-level forms (``forms.Form``), each with file:line:col.

Supports the Common Lisp reader syntax Whistler programs use: ``;`` and ``#| |#`` comments,
integers (``42``, ``-1``, ``#x0800``, ``#b101``, ``#o17``), strings, symbols with or without a
package prefix (``whistler::foo`` -> ``FOO``), keywords, ``#:name``, ``'x``, ``#'f``, and
backquote syntax (`` `x``, ``,x``, ``,@x``), which it turns into the lists
``(QUOTE x)``, ``(FUNCTION f)``, ``(QUASIQUOTE x)``, ``(UNQUOTE x)``, ``(UNQUOTE-SPLICING x)``.

The reader builds data and never evaluates anything: ``#.`` is an error, as are floats,
characters, dotted pairs and any other ``#`` dispatch. Source text is at most ``MAX_SOURCE``
characters, lists and quotes nest at most ``MAX_NESTING`` deep and integers have at most
``forms.MAX_INT_BITS`` bits, so no input can exhaust the later stages. Control characters
other than tab, line and page breaks are an error wherever they are (a NUL in a section name
would otherwise cut the name short in the object file). ``decode`` turns a file's bytes into
text, with the line and column of the first byte that is not UTF-8.
"""

from __future__ import annotations

import re

from .errors import CompileError, Loc
from .forms import MAX_INT_BITS, Form, Int, List, Str, Symbol

# Far deeper than any real program (the seed nests 8 deep); the stages after the reader walk
# forms recursively, so the bound is what keeps them inside Python's recursion limit.
MAX_NESTING = 200
# Far larger than any real program (the seed is 1.5 KB); reading is linear, but the back end
# is not, and a larger program fails on the program size limit anyway.
MAX_SOURCE = 1 << 20

_ALLOWED_CONTROLS = "\t\n\v\f\r"
_NOT_CONTROLS = str.maketrans(dict.fromkeys(_ALLOWED_CONTROLS, " "))

_DELIMITERS = set("()'`,\";")
_INT_RE = re.compile(r"^[+-]?\d+\.?$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eEdDfF][+-]?\d+)?$")
_RADIX = {"x": 16, "b": 2, "o": 8}


class _Reader:
    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self.pos = 0
        self.line = 1
        self.col = 1
        self.depth = 0  # lists open around the current position

    # -- low level -------------------------------------------------------------------------
    def loc(self) -> Loc:
        return Loc(self.filename, self.line, self.col)

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def advance(self) -> str:
        ch = self.text[self.pos]
        self.pos += 1
        if ch == "\n":
            self.line += 1
            self.col = 1
        else:
            self.col += 1
        return ch

    def error(self, loc: Loc, what: str, **kw) -> CompileError:
        return CompileError(loc, what, **kw).attach_source(self.text)

    def skip_space(self) -> None:
        while self.pos < len(self.text):
            ch = self.peek()
            if ch.isspace():
                self.advance()
            elif ch == ";":
                while self.pos < len(self.text) and self.peek() != "\n":
                    self.advance()
            elif ch == "#" and self.peek(1) == "|":
                self.skip_block_comment()
            else:
                return

    def skip_block_comment(self) -> None:
        start = self.loc()
        self.advance()
        self.advance()
        depth = 1
        while depth:
            if self.pos >= len(self.text):
                raise self.error(start, "unterminated #| comment", expected="a closing |#")
            if self.peek() == "|" and self.peek(1) == "#":
                depth -= 1
                self.advance()
                self.advance()
            elif self.peek() == "#" and self.peek(1) == "|":
                depth += 1
                self.advance()
                self.advance()
            else:
                self.advance()

    # -- forms -----------------------------------------------------------------------------
    def read_all(self) -> list[Form]:
        forms = []
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                return forms
            forms.append(self.read_form())

    def read_form(self) -> Form:
        self.skip_space()
        loc = self.loc()
        if self.pos >= len(self.text):
            raise self.error(loc, "unexpected end of file", expected="a form")
        ch = self.peek()
        if ch == "(":
            return self.read_list()
        if ch == ")":
            raise self.error(loc, "unexpected ')'", hint="remove the extra closing parenthesis")
        if ch == "'":
            self.advance()
            return self.wrap("QUOTE", loc)
        if ch == "`":
            self.advance()
            return self.wrap("QUASIQUOTE", loc)
        if ch == ",":
            self.advance()
            if self.peek() == "@":
                self.advance()
                return self.wrap("UNQUOTE-SPLICING", loc)
            return self.wrap("UNQUOTE", loc)
        if ch == '"':
            return self.read_string()
        if ch == "#":
            return self.read_dispatch()
        return self.read_atom()

    def wrap(self, name: str, loc: Loc) -> List:
        """``'x`` -> ``(QUOTE x)``: a list like any other, so it counts towards the nesting."""
        self.enter(loc)
        self.skip_space()
        if self.pos >= len(self.text) or self.peek() == ")":
            raise self.error(loc, f"nothing follows the {name.lower()} prefix", expected="a form")
        form = List((Symbol(name, loc), self.read_form()), loc)
        self.depth -= 1
        return form

    def enter(self, loc: Loc) -> None:
        if self.depth >= MAX_NESTING:
            raise self.error(loc, f"lists and quotes nest more than {MAX_NESTING} deep here",
                             hint="split the expression with let bindings or a macro")
        self.depth += 1

    def read_list(self) -> List:
        start = self.loc()
        self.enter(start)
        self.advance()
        items: list[Form] = []
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                raise self.error(start, "unbalanced parenthesis: this '(' is never closed",
                                 expected="a matching ')'")
            if self.peek() == ")":
                self.advance()
                self.depth -= 1
                return List(tuple(items), start)
            items.append(self.read_form())

    def read_string(self) -> Str:
        start = self.loc()
        self.advance()
        out = []
        while True:
            if self.pos >= len(self.text):
                raise self.error(start, "unterminated string", expected='a closing "')
            ch = self.advance()
            if ch == '"':
                return Str("".join(out), start)
            if ch == "\\":
                if self.pos >= len(self.text):
                    raise self.error(start, "unterminated string", expected='a closing "')
                ch = self.advance()
            out.append(ch)

    def read_token(self) -> tuple[str, str]:
        """The next token and, per character, "1" where it was inside |bars| (kept as written)
        and "0" where not (upper-cased; a colon there separates a package prefix)."""
        chars, escaped = [], []
        bars = None  # where the first |escaped| part starts
        while self.pos < len(self.text):
            ch = self.peek()
            if ch.isspace() or ch in _DELIMITERS:
                break
            if ch == "|":  # |Escaped Symbol|
                start = self.loc()
                bars = bars or start
                self.advance()
                while self.pos < len(self.text) and self.peek() != "|":
                    chars.append(self.advance())
                    escaped.append("1")
                if self.pos >= len(self.text):
                    raise self.error(start, "unterminated |escaped symbol|", expected="a closing |")
                self.advance()
                continue
            chars.append(self.advance())
            escaped.append("0")
        if bars and not chars:
            raise self.error(bars, "empty symbol name ||", expected="a name between the bars")
        return "".join(chars), "".join(escaped)

    def read_dispatch(self) -> Form:
        loc = self.loc()
        self.advance()  # '#'
        ch = self.peek().lower()
        if ch == "'":
            self.advance()
            return self.wrap("FUNCTION", loc)
        if ch == ":":
            self.advance()
            token = self.read_token()
            if not token[0]:
                raise self.error(loc, "'#:' must be followed by a symbol name")
            return self.symbol(token, loc)
        if ch in _RADIX:
            self.advance()
            token, _escaped = self.read_token()
            try:
                value = int(token, _RADIX[ch])
            except ValueError:
                raise self.error(loc, f"bad #{ch} number '{token}'",
                                 expected=f"digits in base {_RADIX[ch]}") from None
            return self.integer(value, loc)
        if ch == ".":
            raise self.error(loc, "'#.' (read-time evaluation) is not allowed",
                             hint="Whistler source is data; compute values with defconstant or a macro")
        if ch == "\\":
            raise self.error(loc, "character literals are not supported",
                             hint="use the character's code as an integer")
        raise self.error(loc, f"unsupported reader syntax '#{self.peek()}'",
                         expected="#x, #b, #o, #:, #' or #| |#")

    def read_atom(self) -> Form:
        loc = self.loc()
        token, escaped = self.read_token()
        if not token:
            raise self.error(loc, f"unexpected character {self.peek()!r}")
        if "1" in escaped:
            return self.symbol((token, escaped), loc)
        if _INT_RE.match(token):
            digits = token.rstrip(".")
            if len(digits) > MAX_INT_BITS:  # int() itself refuses very long decimal strings
                raise self.error(loc, f"integer literal of {len(digits)} digits is too large",
                                 expected=f"an integer of at most {MAX_INT_BITS} bits")
            return self.integer(int(digits), loc)
        if _FLOAT_RE.match(token):
            raise self.error(loc, f"floating-point number '{token}' is not supported",
                             hint="BPF programs compute with integers only")
        if token == ".":
            raise self.error(loc, "dotted pairs are not supported")
        return self.symbol((token, escaped), loc)

    def symbol(self, token: tuple[str, str], loc: Loc) -> Symbol:
        name = _symbol_name(*token)
        if not name:
            raise self.error(loc, f"'{token[0]}' has a package prefix but no symbol name",
                             expected="a name after the colon, e.g. whistler::foo")
        return Symbol(name, loc)

    def integer(self, value: int, loc: Loc) -> Int:
        if value.bit_length() > MAX_INT_BITS:
            raise self.error(loc, f"integer literal of {value.bit_length()} bits is too large",
                             expected=f"an integer of at most {MAX_INT_BITS} bits",
                             hint="values are 64-bit; larger literals wrap modulo 2^64")
        return Int(value, loc)


def _symbol_name(token: str, escaped: str) -> str:
    """Upper-case unescaped characters and drop any package prefix (``pkg:`` or ``pkg::``)."""
    if not token.startswith(":"):
        colons = [i for i, c in enumerate(token) if c == ":" and escaped[i] == "0"]
        if colons:
            token, escaped = token[colons[-1] + 1:], escaped[colons[-1] + 1:]
    return "".join(c if e == "1" else c.upper() for c, e in zip(token, escaped))


def _located(text: str, filename: str, index: int) -> Loc:
    """The location of ``text[index]``."""
    line_start = text.rfind("\n", 0, index) + 1
    return Loc(filename, text.count("\n", 0, index) + 1, index - line_start + 1)


def _check_text(text: str, filename: str) -> None:
    """Refuse text longer than ``MAX_SOURCE`` or with a control character other than
    tab, line and page breaks (anywhere, comments included)."""
    if len(text) > MAX_SOURCE:
        raise CompileError(_located(text, filename, MAX_SOURCE),
                           f"the source is longer than {MAX_SOURCE} characters",
                           hint="split the program into several files").attach_source(text)
    if text.translate(_NOT_CONTROLS).isprintable():  # the common case, in one pass in C
        return
    for i, ch in enumerate(text):
        if (ch < " " and ch not in _ALLOWED_CONTROLS) or "\x7f" <= ch <= "\x9f":
            raise CompileError(_located(text, filename, i),
                               f"control character U+{ord(ch):04X} in the source",
                               hint="remove it; only tab, newline, carriage return and form feed "
                                    "may appear").attach_source(text)


def decode(data: bytes, filename: str) -> str:
    """A source file's bytes -> text (UTF-8, a leading byte order mark dropped); bytes that are
    not UTF-8 are an error at the line and column (in characters) where they start."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[line_start:exc.start].decode("utf-8-sig", errors="replace")) + 1
        loc = Loc(filename, data.count(b"\n", 0, exc.start) + 1, col)
        raise CompileError(loc, f"the source is not UTF-8 text: byte 0x{data[exc.start]:02x} here",
                           hint="save the file as UTF-8") from None


def read(text: str, filename: str = "<string>") -> list[Form]:
    """Read every top-level form in ``text``. Raises ``CompileError`` with file:line:col."""
    _check_text(text, filename)
    return _Reader(text, filename).read_all()
