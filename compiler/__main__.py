"""Command line: ``python -m compiler compile|disasm|check``.

In: argv. Out: files and text, and the exit status:

  compile SRC [-o OUT] [--verify]   write the object (default OUT: SRC with .lisp -> .bpf.o)
  disasm SRC|OBJ         per program: section, name, instruction count, listing with map names
                         (OBJ: any BPF ELF object, ours or clang's)
  check SRC [--verify]   compile, print per-program instruction counts, write nothing

``--verify`` also loads every program into the running kernel against throwaway maps (root;
nothing is pinned or kept) and reports each one the verifier refuses at the file:line:col of
the instruction it stopped at; ``compile`` then writes no object. Only ``--verify`` imports the
loader's bpf(2) layer (``compiler.verify``).

Exit 0 on success, 1 for an error in the input (printed as ``file:line:col: error: ...`` with
the source line and a caret), 2 for a usage error (bad arguments, unreadable or unwritable
file), 3 for an internal compiler error (one line, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .errors import CompileError
from .isa import disassemble, slot_count

PROG = "python -m compiler"


class UsageError(Exception):
    pass


class BadObject(Exception):
    pass


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _compile(path: str, data: bytes):
    from .pipeline import compile_source

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadObject(f"{path}: error: source is not UTF-8 text (byte {exc.start})") from exc
    return compile_source(text, path)


def _write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` only once the whole object is written: a failure leaves the old file."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def default_output(src: str) -> str:
    return (src[: -len(".lisp")] if src.endswith(".lisp") else src) + ".bpf.o"


class Rejected(Exception):
    """The kernel refused programs in a trial load (``--verify``); the errors are printed already."""


def _verify(path: str, data: bytes, obj) -> None:
    from . import verify

    try:
        rejections = verify.trial_load(obj)
    except verify.Unavailable as exc:
        raise UsageError(f"--verify: {exc}") from exc
    for err in rejections:
        if err.loc.file == path:
            err.attach_source(data.decode("utf-8"))
        print(err, file=sys.stderr)
    if rejections:
        raise Rejected()


def cmd_compile(args) -> None:
    data = _read(args.src)
    obj = _compile(args.src, data)
    if args.verify:
        _verify(args.src, data, obj)
    _write_atomically(args.output or default_output(args.src), obj.elf)


def cmd_check(args) -> None:
    data = _read(args.src)
    obj = _compile(args.src, data)
    for prog in obj.programs:
        print(f"{prog.decl.name}: {prog.slots} instructions (section {prog.decl.section})")
    if args.verify:
        _verify(args.src, data, obj)
        print(f"the kernel's verifier accepts {'it' if len(obj.programs) == 1 else f'all {len(obj.programs)}'}")


def _listings(path: str, data: bytes):
    """(section, name, instructions) per program of a source file or an ELF object."""
    if data.startswith(b"\x7fELF"):
        from .elfread import read_programs

        try:
            return [(p.section, p.name, list(p.insns)) for p in read_programs(data)]
        except ValueError as exc:
            raise BadObject(f"{path}: error: not a readable BPF object: {exc}") from exc
    return [(p.decl.section, p.decl.name, list(p.insns)) for p in _compile(path, data).programs]


def cmd_disasm(args) -> None:
    listings = _listings(args.file, _read(args.file))
    for i, (section, name, insns) in enumerate(listings):
        if i:
            print()
        print(f"section {section}: {name}, {slot_count(insns)} instructions")
        print("\n".join(disassemble(insns)))


VERIFY_HELP = "also load every program into the kernel against throwaway maps (root) and report refusals"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Whistler compiler: Lisp source -> BPF ELF object")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("compile", help="compile SRC to a BPF object")
    p.add_argument("src", metavar="SRC")
    p.add_argument("-o", "--output", metavar="OUT", help="output object (default: SRC with .lisp -> .bpf.o)")
    p.add_argument("--verify", action="store_true", help=VERIFY_HELP)
    p.set_defaults(run=cmd_compile)
    p = sub.add_parser("disasm", help="list the instructions of SRC (compiled) or of an object file")
    p.add_argument("file", metavar="SRC|OBJ")
    p.set_defaults(run=cmd_disasm)
    p = sub.add_parser("check", help="compile SRC and print instruction counts, writing nothing")
    p.add_argument("src", metavar="SRC")
    p.add_argument("--verify", action="store_true", help=VERIFY_HELP)
    p.set_defaults(run=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # exits 2 on a usage error
    try:
        args.run(args)
    except CompileError as err:
        print(err, file=sys.stderr)
        return 1
    except BadObject as err:
        print(err, file=sys.stderr)
        return 1
    except Rejected:
        return 1
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a compiler bug: report it in one line, not as a traceback
        text = str(err) if str(err).startswith("internal compiler error") else \
            f"internal compiler error: {type(err).__name__}: {err}"
        print(" ".join(text.split()), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
