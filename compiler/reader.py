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

_DELIMITERS = frozenset("()'`,\";")
_ASCII_SPACE = frozenset(" \t\n\v\f\r")
_TOKEN_END = _DELIMITERS | _ASCII_SPACE | {"|"}
_RADIX = {"x": (16, "0123456789abcdefABCDEF"), "b": (2, "01"), "o": (8, "01234567")}
_PREFIXES = {"'": "QUOTE", "`": "QUASIQUOTE", ",": "UNQUOTE"}


class _Reader:
    """Scans with index arithmetic and ``str.find`` over the text (a compile's start-up time
    matters); the line is counted at every newline passed, the column is the distance from the
    start of the line."""

    def __init__(self, text: str, filename: str, line: int = 1):
        self.text = text
        self.filename = filename
        self.pos = 0
        self.line = line
        self.line_start = 0  # index of the first character of the current line
        self.depth = 0  # lists and prefixes open around the current position

    # -- low level -------------------------------------------------------------------------
    def loc(self, pos: int | None = None) -> Loc:
        """The location of ``pos`` (default: the current position) on the current line."""
        return Loc(self.filename, self.line, (self.pos if pos is None else pos) - self.line_start + 1)

    def jump(self, to: int) -> None:
        """Move to ``to``, counting the lines passed."""
        newlines = self.text.count("\n", self.pos, to)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.pos, to) + 1
        self.pos = to

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def error(self, loc: Loc, what: str, **kw) -> CompileError:
        return CompileError(loc, what, **kw).attach_source(self.text)

    def skip_space(self) -> None:
        text, pos, end = self.text, self.pos, len(self.text)
        while pos < end:
            ch = text[pos]
            if ch == "\n":
                pos += 1
                self.line += 1
                self.line_start = pos
            elif ch in _ASCII_SPACE or (ch > "\x7f" and ch.isspace()):
                pos += 1
            elif ch == ";":
                newline = text.find("\n", pos)
                pos = end if newline < 0 else newline
            elif ch == "#" and text.startswith("|", pos + 1):
                self.pos = pos
                self.skip_block_comment()
                pos = self.pos
            else:
                break
        self.pos = pos

    def skip_block_comment(self) -> None:
        start = self.loc()
        text, pos, depth = self.text, self.pos + 2, 1
        while depth:
            close, open_ = text.find("|#", pos), text.find("#|", pos)
            if close < 0:
                raise self.error(start, "unterminated #| comment", expected="a closing |#")
            if 0 <= open_ < close:
                depth, pos = depth + 1, open_ + 2
            else:
                depth, pos = depth - 1, close + 2
        self.jump(pos)

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
        ch = self.peek()
        if ch == "(":
            return self.read_list(loc)
        if ch == ")":
            raise self.error(loc, "unexpected ')'", hint="remove the extra closing parenthesis")
        if ch in _PREFIXES:
            self.pos += 1
            if ch == "," and self.peek() == "@":
                self.pos += 1
                return self.wrap("UNQUOTE-SPLICING", loc)
            return self.wrap(_PREFIXES[ch], loc)
        if ch == '"':
            return self.read_string(loc)
        if ch == "#":
            return self.read_dispatch(loc)
        if not ch:
            raise self.error(loc, "unexpected end of file", expected="a form")
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

    def read_list(self, start: Loc) -> List:
        self.enter(start)
        self.pos += 1
        items: list[Form] = []
        while True:
            self.skip_space()
            ch = self.peek()
            if ch == ")":
                self.pos += 1
                self.depth -= 1
                return List(tuple(items), start)
            if not ch:
                raise self.error(start, "unbalanced parenthesis: this '(' is never closed",
                                 expected="a matching ')'")
            items.append(self.read_form())

    def read_string(self, start: Loc) -> Str:
        text, pos, out = self.text, self.pos + 1, []
        backslash = text.find("\\", pos)
        while True:
            quote = text.find('"', pos)
            if quote < 0:
                raise self.error(start, "unterminated string", expected='a closing "')
            if 0 <= backslash < quote:  # \c stands for c
                if backslash + 1 >= len(text):
                    raise self.error(start, "unterminated string", expected='a closing "')
                out.append(text[pos:backslash] + text[backslash + 1])
                pos = backslash + 2
                backslash = text.find("\\", pos)
                continue
            out.append(text[pos:quote])
            self.jump(quote + 1)
            return Str("".join(out), start)

    def read_token(self) -> tuple[str, str]:
        """The next token and, per character, "1" where it was inside |bars| (kept as written)
        and "0" where not (upper-cased; a colon there separates a package prefix)."""
        text, end = self.text, len(self.text)
        chars, escaped = [], []
        bars = None  # where the first |escaped| part starts
        pos = self.pos
        while pos < end:
            start = pos
            while pos < end and text[pos] not in _TOKEN_END and not (text[pos] > "\x7f" and text[pos].isspace()):
                pos += 1
            chars.append(text[start:pos])
            escaped.append("0" * (pos - start))
            if pos >= end or text[pos] != "|":
                break
            loc = self.loc(pos)  # |Escaped Symbol|
            bars = bars or loc
            close = text.find("|", pos + 1)
            if close < 0:
                raise self.error(loc, "unterminated |escaped symbol|", expected="a closing |")
            chars.append(text[pos + 1:close])
            escaped.append("1" * (close - pos - 1))
            self.jump(close + 1)
            pos = self.pos
        self.pos = pos
        token = "".join(chars)
        if bars and not token:
            raise self.error(bars, "empty symbol name ||", expected="a name between the bars")
        return token, "".join(escaped)

    def read_dispatch(self, loc: Loc) -> Form:
        self.pos += 1  # '#'
        ch = self.peek().lower()
        if ch == "'":
            self.pos += 1
            return self.wrap("FUNCTION", loc)
        if ch == ":":
            self.pos += 1
            token = self.read_token()
            if not token[0]:
                raise self.error(loc, "'#:' must be followed by a symbol name")
            return self.symbol(token, loc)
        if ch in _RADIX:
            self.pos += 1
            token, _escaped = self.read_token()
            base, digits = _RADIX[ch]
            body = token[1:] if token[:1] in ("+", "-") else token
            if not body or any(c not in digits for c in body):
                raise self.error(loc, f"bad #{ch} number '{token}'", expected=f"digits in base {base}")
            return self.integer(int(token, base), loc)
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
        if not token:  # only a stray "|" can leave an empty token here
            raise self.error(loc, f"unexpected character {self.peek()!r}")
        if "1" in escaped:
            return self.symbol((token, escaped), loc)
        digits = _integer_digits(token)
        if digits is not None:
            if len(digits) > MAX_INT_BITS:  # int() itself refuses very long decimal strings
                raise self.error(loc, f"integer literal of {len(digits)} digits is too large",
                                 expected=f"an integer of at most {MAX_INT_BITS} bits")
            return self.integer(int(digits), loc)
        if _is_float(token):
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


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # 0-9 only, at least one


def _integer_digits(token: str) -> str | None:
    """``[+-]DIGITS[.]`` (a trailing dot means decimal, as in Common Lisp) -> ``[+-]DIGITS``."""
    body = token[1:] if token[:1] in ("+", "-") else token
    if _digits(body[:-1] if body.endswith(".") else body):
        return token[:-1] if token.endswith(".") else token
    return None


def _is_float(token: str) -> bool:
    """``[+-]`` then ``D+.D*``, ``.D+`` or ``D+``, then an optional exponent ``[eEdDfF][+-]D+``."""
    body = token[1:] if token[:1] in ("+", "-") else token
    mantissa, exponent = body, None
    for i, c in enumerate(body):
        if c in "eEdDfF":
            mantissa, exponent = body[:i], body[i + 1:]
            break
    if exponent is not None and not _digits(exponent[1:] if exponent[:1] in ("+", "-") else exponent):
        return False
    whole, dot, fraction = mantissa.partition(".")
    if dot:
        return (_digits(whole) and (not fraction or _digits(fraction))) or (not whole and _digits(fraction))
    return _digits(whole)


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
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        before = data[line_start:exc.start].decode("utf-8", errors="replace")
        if line_start == 0 and before.startswith("\ufeff"):
            before = before[1:]
        loc = Loc(filename, data.count(b"\n", 0, exc.start) + 1, len(before) + 1)
        raise CompileError(loc, f"the source is not UTF-8 text: byte 0x{data[exc.start]:02x} here",
                           hint="save the file as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def read(text: str, filename: str = "<string>", line: int = 1) -> list[Form]:
    """Read every top-level form in ``text`` (which starts at line ``line`` of ``filename``).
    Raises ``CompileError`` with file:line:col."""
    _check_text(text, filename)
    return _Reader(text, filename, line).read_all()
