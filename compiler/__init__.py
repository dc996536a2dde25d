"""The Whistler compiler: Whistler Lisp source -> BPF ELF relocatable object.

Standard library only. The pipeline (each stage one module, data flowing one way)::

    reader   text -> forms                      (forms.py)
    expand   forms -> Unit of core forms        (decls.py; macro_eval.py runs user defmacros)
    lower    core forms -> IR                   (ir.py)
    opt      IR -> IR                           (opt/)
    check    IR -> IR, refusing what the verifier would    (check/)
    regalloc IR -> IR on r0-r9 + stack
    emit     IR -> instructions                 (isa.py, code.py)
    btf/elf  instructions + maps -> ELF bytes

``pipeline.compile_source`` wires them; it is the only public entry point besides the CLI
(``python -m compiler``). Every stage raises ``errors.CompileError`` for bad input; the work a
source can ask for is bounded (``budget.py``, docs/robustness.md). Value classes are declared
with ``records.dataclass``, the standard library's subset without its start-up cost.
"""

from .errors import CompileError, Loc


def compile_source(text: str, filename: str = "<string>", check_stage: bool = True):
    """Compile Whistler source text. Returns a ``code.CompiledObject`` (``.elf`` is the bytes).
    ``check_stage=False`` skips the stage that refuses what the kernel's verifier would refuse."""
    from .pipeline import compile_source as _compile

    return _compile(text, filename, check_stage)


__all__ = ["CompileError", "Loc", "compile_source"]
