"""Names from outside that become bpffs path components: a name in, the same name or a clear error out.

Program and map names come from ELF symbols and BTF, names found in a pin directory from whoever put
them there: all untrusted. ``pin_name_problem`` says why a name cannot be one component of a pin path
(empty, NUL or another control character, ``/``, ``.`` or ``..`` or any ``.`` (bpffs refuses dots), too
long to be staged beside its pin); ``check_object_name`` also requires what the kernel accepts as a
program or map name and what C and our compiler produce: letters, digits and ``_``, not starting with a
digit. ``printable`` shows any text in a message without letting control characters through.
``pins.join`` is where a checked name meets a directory. Pure: standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

from .errors import UnsafeNameError

NAME_MAX = 255                    # longest directory entry name (bytes) on Linux, bpffs included
TMP_MARK = "_whistler_tmp_"       # staged pins: <name>_whistler_tmp_<8 hex digits>, renamed over <name>
TMP_SUFFIX_LEN = len(TMP_MARK) + 8
MAX_NAME_BYTES = NAME_MAX - TMP_SUFFIX_LEN  # a name whose staged pin still fits in a directory entry
MAX_SECTION_BYTES = 256
_OBJECT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STAGED_NAME = re.compile(r"([A-Za-z0-9_]+)" + TMP_MARK + r"[0-9a-f]{8}")


def printable(text: str) -> str:
    """``text`` for a message, with control and other non-printable characters escaped (``\\x1b``)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _utf8_length(name: str) -> Optional[int]:
    try:
        return len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _control(name: str) -> Optional[str]:
    """The first character that is not printable (NUL, control, format or separator characters)."""
    return next((c for c in name if not c.isprintable()), None)


def describe_char(c: str) -> str:
    """"a NUL", "the control character U+0009", "the non-printable character U+200E" or "a space"."""
    if c == "\0":
        return "a NUL character"
    if c == " ":
        return "a space"
    kind = "control" if unicodedata.category(c) == "Cc" else "non-printable"
    return f"the {kind} character U+{ord(c):04X}"


def pin_name_problem(name: object) -> Optional[str]:
    """Why ``name`` cannot be one component of a pin path, or None when it can."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a string"
    if not name:
        return "is empty"
    bad = "\0" if "\0" in name else _control(name)
    if bad is not None:
        return f"contains {describe_char(bad)}"
    if "/" in name:
        return "contains '/' (a name is one path component)"
    if name in (".", ".."):
        return f"is {name!r}, a relative directory, not a name"
    if "." in name:
        return "contains '.', which bpffs refuses in names"
    size = _utf8_length(name)
    if size is None:
        return "is not valid Unicode text"
    if size > MAX_NAME_BYTES:
        return (f"is {size} bytes long; at most {MAX_NAME_BYTES} bytes fit a bpffs entry "
                f"({NAME_MAX} bytes) beside the {TMP_SUFFIX_LEN} that staging a new pin adds")
    return None


def check_pin_name(name: object, what: str = "pin name") -> str:
    """``name`` if it can be one component of a pin path; UnsafeNameError naming ``what`` otherwise."""
    problem = pin_name_problem(name)
    if problem:
        raise UnsafeNameError(what, name, problem)
    return name  # type: ignore[return-value]


def check_object_name(name: object, what: str) -> str:
    """``name`` if it is a safe pin name and a name the kernel accepts for a program or map (longer
    names are fine: the kernel keeps the first 15 characters, pins keep the whole name)."""
    check_pin_name(name, what)
    if not _OBJECT_NAME.fullmatch(name):  # type: ignore[arg-type]
        raise UnsafeNameError(what, name, "is not a C identifier (letters, digits and '_', not starting "
                                          "with a digit), which the kernel requires of program and map names")
    return name  # type: ignore[return-value]


def check_text(text: object, what: str, limit: int = MAX_SECTION_BYTES) -> str:
    """``text`` if it is printable and at most ``limit`` bytes (section names: shown, never paths)."""
    if not isinstance(text, str) or not text:
        raise UnsafeNameError(what, text, "is empty" if text == "" else "is not a string")
    bad = _control(text)
    if bad is not None:
        raise UnsafeNameError(what, text, f"contains {describe_char(bad)}")
    size = _utf8_length(text)
    if size is None or size > limit:
        raise UnsafeNameError(what, text, f"is longer than {limit} bytes" if size else "is not valid Unicode text")
    return text
