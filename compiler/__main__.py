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
file), 3 for an internal compiler error (one line, never a traceback). When the reader of the
output goes away (``... | head``) the command stops quietly with status 141, as a program
killed by SIGPIPE does.

Start-up and exit are part of every compile (bench/compile_speed.py measures them), so this
module imports only what the command needs (the pipeline for a source, the ELF reader and the
disassembler only for ``disasm``, argparse only for help and mistakes) and, run as a program,
ends the process without Python's teardown once its output is out.
"""

from __future__ import annotations

import gc
import os
import sys

from .errors import CompileError

PROG = "python -m compiler"
EXIT_BROKEN_PIPE = 128 + 13  # the status of a process that SIGPIPE ended
MAX_OBJECT = 64 << 20  # bytes read of an object file for disasm


class UsageError(Exception):
    pass


class BadObject(Exception):
    pass


def _read(path: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``path``: enough to tell that it is too large."""
    try:
        with open(path, "rb") as f:
            return f.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read_source(path: str) -> bytes:
    from .reader import MAX_SOURCE

    return _read(path, 4 * MAX_SOURCE)  # UTF-8: at most 4 bytes a character


def _compile(path: str, data: bytes):
    from .errors import Loc
    from .pipeline import compile_source
    from .reader import MAX_SOURCE, decode

    if len(data) > 4 * MAX_SOURCE:
        raise CompileError(Loc(path, 1, 1), f"the source is larger than {4 * MAX_SOURCE} bytes",
                           hint="split the program into several files")
    return compile_source(decode(data, path), path)


def _write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` only once the whole object is written: a failure leaves the old file."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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
    data = _read_source(args.src)
    obj = _compile(args.src, data)
    if args.verify:
        _verify(args.src, data, obj)
    _write_atomically(args.output or default_output(args.src), obj.elf)


def cmd_check(args) -> None:
    data = _read_source(args.src)
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

        if len(data) > MAX_OBJECT:
            raise BadObject(f"{path}: error: not a readable BPF object: larger than {MAX_OBJECT} bytes")
        try:
            return [(p.section, p.name, list(p.insns)) for p in read_programs(data)]
        except ValueError as exc:
            raise BadObject(f"{path}: error: not a readable BPF object: {exc}") from exc
    return [(p.decl.section, p.decl.name, list(p.insns)) for p in _compile(path, data).programs]


def cmd_disasm(args) -> None:
    from .isa import disassemble, slot_count

    listings = _listings(args.file, _read(args.file, MAX_OBJECT))
    for i, (section, name, insns) in enumerate(listings):
        if i:
            print()
        print(f"section {section}: {name}, {slot_count(insns)} instructions")
        print("\n".join(disassemble(insns)))


VERIFY_HELP = "also load every program into the kernel against throwaway maps (root) and report refusals"


class _Args:
    def __init__(self, run, **values):
        self.run = run
        self.__dict__.update(values)


def _common_args(argv: list[str]) -> _Args | None:
    """The arguments of the three plain invocations, read without argparse: importing it (with
    re, gettext, locale and shutil) costs more than a fifth of a small compile. Anything else
    (options in other places, --help, mistakes) is for argparse, which also explains errors."""
    if any(a.startswith("-") for i, a in enumerate(argv) if not (i == 2 and a in ("-o", "--output"))):
        return None
    if len(argv) == 2 and argv[0] in ("check", "disasm"):
        return _Args(cmd_check, src=argv[1], verify=False) if argv[0] == "check" else _Args(cmd_disasm, file=argv[1])
    if argv[:1] == ["compile"] and (len(argv) == 2 or (len(argv) == 4 and argv[2] in ("-o", "--output"))):
        return _Args(cmd_compile, src=argv[1], output=argv[3] if len(argv) == 4 else None, verify=False)
    return None


def _parser():
    import argparse

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


def _stdout_gone() -> int:
    """The reader of our output went away: send what is still buffered nowhere, so that
    flushing at exit does not fail again, and stop as SIGPIPE would have stopped us."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = _common_args(argv) or _parser().parse_args(argv)  # usage errors, --help: SystemExit
        args.run(args)
        sys.stdout.flush()  # a closed pipe shows here rather than at exit
    except SystemExit as exc:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _stdout_gone()
        return 0 if exc.code is None else exc.code
    except BrokenPipeError:
        return _stdout_gone()
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


def run_and_exit() -> None:
    """``main`` as the whole process: exit without Python's teardown, which frees every module
    and object one by one and costs a small compile about a seventh of its time. Everything the
    command produced is already out: the object is written and renamed, and the output streams
    are flushed here."""
    gc.disable()  # a short process that builds trees, not cycles: no collections on the way
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(status if isinstance(status, int) else 1)


if __name__ == "__main__":
    run_and_exit()
