"""IR optimisation: a fixed list of passes, repeated until none changes anything.

In: a valid ``ir.Function`` from ``lower``. Out: the same function and each of its loop
callbacks, rewritten in place and validated once the passes are done (with
``ir.VERIFY_EACH_STAGE``, as the tests run, also before them and after every pass, so that a pass
that breaks an invariant is named in the error).
Each pass is one file with a ``run(fn) -> changed`` function and must be sound on its own, on
loops too: a vreg assigned in a loop carries its value around the back edge, and only a vreg with a single definition has facts (``facts``); ``constprop`` and
``loadcse`` follow values through variables with a forward dataflow (``dataflow``).

The order within a round: clean-ups that expose constants and copies first (copyprop,
copyfold, coalesce, constprop, constfold), then the passes that rewrite memory accesses and
drop dead code, then control flow (selects, zero guards, constant arms, CFG clean-up, branch
threading), then the ones that share code (tailmerge, crossjump, retval: they want the CFG
clean), and last reassoc, which regroups what is left of straight-line arithmetic.
"""

from __future__ import annotations

from .. import ir
from . import (
    addrfold,
    boolsel,
    branchthread,
    bswapcmp,
    cfg,
    coalesce,
    constarm,
    constfold,
    constprop,
    copyfold,
    copyprop,
    crossjump,
    dce,
    deadstore,
    licm,
    loadcse,
    reassoc,
    retval,
    tailmerge,
    zeroguard,
)

PASSES = (copyprop, copyfold, coalesce, constprop, constfold, bswapcmp, addrfold, loadcse, dce, deadstore, licm, boolsel, zeroguard, constarm,
          cfg, branchthread, tailmerge, crossjump, retval, reassoc)
MAX_ROUNDS = 20


def optimize(fn: ir.Function) -> ir.Function:
    for f in fn.functions():
        _optimize(f)
    return fn


def _optimize(fn: ir.Function) -> None:
    if ir.VERIFY_EACH_STAGE:
        _validate(fn, "before the optimisation passes")
    # A pass that changed nothing need not run again until another pass changes the function:
    # passes are deterministic, so on the same IR it would find nothing again.
    edits = 0  # how many times a pass has changed the function
    idle_since = {}  # pass -> the edit count when it last ran and changed nothing
    for _round in range(MAX_ROUNDS):
        changed = False
        for p in PASSES:
            if idle_since.get(p) == edits:
                continue
            if p.run(fn):
                changed = True
                edits += 1
                if ir.VERIFY_EACH_STAGE:
                    _validate(fn, f"after pass {p.__name__}")
            else:
                idle_since[p] = edits
        if not changed:
            break
    _validate(fn, "after the optimisation passes")


def _validate(fn: ir.Function, when: str) -> None:
    try:
        ir.validate(fn)
    except ir.MalformedIR as err:
        raise ir.MalformedIR(f"{when}: {err}") from err
