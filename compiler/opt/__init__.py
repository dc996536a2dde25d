"""IR optimisation: a fixed list of passes, repeated until none changes anything.

In: a valid ``ir.Function`` from ``lower``. Out: the same function, rewritten in place and
validated after every pass (a pass that breaks an invariant is named in the error). Each pass
is one file with a ``run(fn) -> changed`` function and must be sound on its own.
"""

from __future__ import annotations

from .. import ir
from . import addrfold, branchthread, bswapcmp, cfg, constarm, constfold, copyprop, dce, tailmerge

PASSES = (copyprop, constfold, bswapcmp, addrfold, dce, constarm, cfg, branchthread, tailmerge)
MAX_ROUNDS = 20


def optimize(fn: ir.Function) -> ir.Function:
    ir.validate(fn)
    for _round in range(MAX_ROUNDS):
        changed = False
        for p in PASSES:
            if p.run(fn):
                changed = True
                try:
                    ir.validate(fn)
                except ir.MalformedIR as err:
                    raise ir.MalformedIR(f"after pass {p.__name__}: {err}") from err
        if not changed:
            break
    return fn
