"""Cross-jumping: two pieces of code that end alike share one copy.

In/out: an ``ir.Function``, rewritten in place; returns whether anything changed.
Two blocks X and Y are compared from the end: the longest run of matching instructions is the
start of a *tail*; where their terminators go to different blocks, those blocks are matched as
wholes too, and so on (a few blocks deep), so a tail is a small region of code: a map lookup,
its null test and the increment, say, down to the returns. When the two regions match, one copy
S is made; X and Y jump to it (a block matching as a whole is bypassed: its predecessors go to
S). Original blocks that nothing else enters disappear. Instructions match when they do the
same operation and their operands correspond:

- the same operand on both sides (a vreg, constant, map ...);
- vregs assigned in the regions at matching places and used nowhere else (S keeps X's);
- two scratch slots of the same size used only in the regions (a helper's key, written right
  before its call): S uses X's;
- anything else a vreg can stand for (two constants, two vregs assigned before the regions): a
  *parameter*, a fresh vreg each side sets right before entering S (at the end of its own
  prefix, or in each predecessor of a block bypassed as a whole).

So ``(if q (progn ... (incf (getmap m 0)) (return 1)) (progn (incf (getmap m 1)) (return 2)))``
looks the counter up once, key and verdict in registers. A merge is made only when it saves
more instruction slots than the parameter copies and jumps it adds. Sound on any CFG, loops
included: S is the X region's code, run where either region ran, with each parameter holding
the operand it replaced (an operand a region reads but does not assign keeps its value
throughout it; every vreg a region assigns privately is read only inside it).
"""

from __future__ import annotations

from collections import Counter

from .. import ir
from ..ir import FuncRef, Insn, MapRef, SlotRef, VReg

COPY_COST = 0.25  # a vreg copy is usually free: the allocator gives both vregs one register
MAX_GROUP = 16  # blocks compared pairwise per group of alike ends (bounds the work)
MAX_REGION = 6  # blocks per region


def _operand_slots(a) -> float:
    if isinstance(a, (MapRef, FuncRef, SlotRef)):
        return 2
    if isinstance(a, int):
        return 1 if ir.fits_s32(a) else 2
    return 0


def slots(insn: Insn) -> float:
    """Roughly how many instruction slots ``emit`` spends on ``insn``."""
    if insn.op == "call":
        return 1 + sum(_operand_slots(a) for a in insn.args)
    if insn.op == "ret":
        return 1 + (_operand_slots(insn.args[0]) or COPY_COST)
    if insn.op == "mov":
        return _operand_slots(insn.args[0]) or COPY_COST
    return 1


def _block_slots(block: ir.Block) -> float:
    return sum(slots(i) for i in [*block.insns, block.term])


def _same_shape(a: Insn, b: Insn) -> bool:
    """Alike but for operands and jump targets."""
    return a.op != "arg" and (a.op, a.size, a.off, a.cond, len(a.targets), a.helper, a.raw, len(a.args),
                              a.dst is None) \
        == (b.op, b.size, b.off, b.cond, len(b.targets), b.helper, b.raw, len(b.args), b.dst is None)


def _unifiable(a, b) -> bool:
    return (isinstance(a, SlotRef) and isinstance(b, SlotRef) and a.slot.kind == b.slot.kind == "scratch"
            and a.slot.size == b.slot.size)


def _may_pair(a, b) -> bool:
    """Can ``a`` in one region correspond to ``b`` in the other (maybe through a parameter)?"""
    if a == b:
        return True
    if isinstance(a, SlotRef) or isinstance(b, SlotRef):
        return _unifiable(a, b)
    return not isinstance(a, (MapRef, FuncRef)) and not isinstance(b, (MapRef, FuncRef))


def _alike(a: Insn, b: Insn) -> bool:
    return _same_shape(a, b) and all(_may_pair(p, q) for p, q in zip(a.args, b.args))


def _names(insn: Insn):
    for a in insn.args:
        if isinstance(a, VReg):
            yield a
        elif isinstance(a, SlotRef):
            yield a.slot.id
    if insn.dst is not None:
        yield insn.dst


class _Region:
    """Matching regions from X's last ``n`` instructions and Y's: ``pairs`` lists the matched
    blocks (X's, Y's, instructions of each from the end; the whole block after the first),
    ``ok`` whether one copy can serve both."""

    def __init__(self, fn: ir.Function, blocks: dict, x: ir.Block, y: ir.Block, n: int, counts: Counter):
        self.ok = False
        self.params: dict = {}  # (X operand, Y operand) -> None, in order
        self.pairs = [(x, y, n)]
        paired = {x.label: y.label}
        queue = [(x, y)]
        while queue:
            bx, by = queue.pop(0)
            for tx, ty in zip(bx.term.targets, by.term.targets):
                if tx == ty and tx not in paired:
                    continue  # both go on to the same code: the regions end here
                if paired.get(tx) == ty:
                    continue
                if tx in paired or ty in paired.values() or len(self.pairs) >= MAX_REGION:
                    return
                nx, ny = blocks[tx], blocks[ty]
                if nx is fn.blocks[0] or ny is fn.blocks[0] or len(nx.insns) != len(ny.insns) or \
                        not all(_alike(a, b) for a, b in zip([*nx.insns, nx.term], [*ny.insns, ny.term])):
                    return
                paired[tx] = ty
                self.pairs.append((nx, ny, len(nx.insns) + 1))
                queue.append((nx, ny))
        self.labels_x, self.labels_y = set(paired), set(paired.values())
        if self.labels_x & self.labels_y:
            return  # the regions overlap
        self.ok = self._operands(counts)

    def tails(self):
        for bx, by, n in self.pairs:
            xs, ys = [*bx.insns, bx.term], [*by.insns, by.term]
            yield xs[len(xs) - n:], ys[len(ys) - n:]

    def _operands(self, counts: Counter) -> bool:
        private: dict = {}  # X's private vreg -> Y's
        for tx, ty in self.tails():
            for ix, iy in zip(tx, ty):
                if ix.dst is not None and ix.dst != iy.dst and private.setdefault(ix.dst, iy.dst) != iy.dst:
                    return False
        private_y = set(private.values())
        inside = Counter()
        for tx, ty in self.tails():
            for insn in [*tx, *ty]:
                inside.update(_names(insn))
        if len(private_y) != len(private) or private_y & set(private) or \
                any(inside[v] != counts[v] for v in [*private, *private_y]):
            return False
        assigned_x = {i.dst for tx, _ty in self.tails() for i in tx if i.dst is not None}
        assigned_y = {i.dst for _tx, ty in self.tails() for i in ty if i.dst is not None}
        unified: set = set()
        for tx, ty in self.tails():
            for ix, iy in zip(tx, ty):
                for a, b in zip(ix.args, iy.args):
                    if a in private or b in private_y:
                        if private.get(a) != b:
                            return False
                    elif a == b:
                        continue  # the same vreg (assigned alike in both, or before both) or constant
                    elif _unifiable(a, b):
                        unified |= {a.slot.id, b.slot.id}
                    elif isinstance(a, (VReg, int)) and isinstance(b, (VReg, int)) \
                            and a not in assigned_x and b not in assigned_y:
                        self.params.setdefault((a, b), None)
                    else:
                        return False
        return all(inside[s] == counts[s] for s in unified)

    def benefit(self, fn: ir.Function, preds: dict) -> float:
        """Slots saved: the code that disappears, less the copy, the parameters and jumps."""
        (x, y, n), inner = self.pairs[0], self.pairs[1:]
        whole_x, whole_y = n == len(x.insns) + 1, n == len(y.insns) + 1
        tx, ty = next(self.tails())
        removed = sum(slots(i) for i in [*tx, *ty])
        copy = sum(slots(i) for i in tx)
        for side, labels in ((0, self.labels_x), (1, self.labels_y)):
            for pair in inner:
                block = pair[side]
                removed += _block_slots(block) if set(preds[block.label]) <= labels else 0
                copy += _block_slots(block) if side == 0 else 0
        per_side = sum(slots(Insn("mov", None, [a], None)) + slots(Insn("mov", None, [b], None))
                       for a, b in self.params) / 2
        added = copy + max((not whole_x) + (not whole_y) - 1, 0)  # one side can fall through into S
        for block, whole in ((x, whole_x), (y, whole_y)):
            added += per_side * (len(preds[block.label]) if whole else 1)
        if self.params and whole_x and whole_y:  # a branch into both sets Y's parameters on its own edge
            added += len(set(preds[x.label]) & set(preds[y.label]))
        return removed - added


def _param_cost(tx: list, ty: list) -> float:
    """Slots the parameters of two tails cost at least (constants that differ)."""
    differ = {(a, b) for ix, iy in zip(tx, ty) for a, b in zip(ix.args, iy.args)
              if a != b and isinstance(a, int) and isinstance(b, int)}
    return sum(_operand_slots(a) + _operand_slots(b) for a, b in differ)


def _best(fn: ir.Function, blocks: dict, x: ir.Block, y: ir.Block, preds: dict, counts: Counter):
    """(benefit, region) of the most profitable merge of tails of x and y, or None."""
    xs, ys = [*x.insns, x.term], [*y.insns, y.term]
    longest = 0
    while longest < min(len(xs), len(ys)) and _alike(xs[-1 - longest], ys[-1 - longest]):
        longest += 1
    if x.term.targets == y.term.targets:  # the regions are the tails: a cheap bound first
        def bound(n: int) -> float:
            tx, ty = xs[len(xs) - n:], ys[len(ys) - n:]
            partial = (n < len(xs)) + (n < len(ys))
            return sum(slots(i) for i in ty) - _param_cost(tx, ty) - max(partial - 1, 0)

        if all(bound(n) <= 0.5 for n in range(1, longest + 1)):
            return None
    best = None
    for n in range(longest, 0, -1):
        whole_x, whole_y = n == len(xs), n == len(ys)
        if (whole_x and x is fn.blocks[0]) or (whole_y and y is fn.blocks[0]):
            continue
        if any(p in (x.label, y.label) for block, whole in ((x, whole_x), (y, whole_y)) if whole
               for p in preds[block.label]):
            continue  # a block entering itself or the other one
        region = _Region(fn, blocks, x, y, n, counts)
        if not region.ok:
            continue
        if any(p in region.labels_x | region.labels_y for block, whole in ((x, whole_x), (y, whole_y))
               if whole for p in preds[block.label]):
            continue  # a region entering itself
        benefit = region.benefit(fn, preds)
        if benefit > 0.5 and (best is None or benefit > best[0]):
            best = (benefit, region)
    return best


def _copy(insn: Insn, args: list, targets: tuple) -> Insn:
    return Insn(insn.op, insn.dst, args, insn.loc, insn.size, insn.off, insn.cond, targets, insn.helper, insn.raw)


def _apply(fn: ir.Function, region: _Region, preds: dict) -> None:
    blocks = fn.block_map()
    params = {pair: fn.new_vreg() for pair in region.params}
    copies = {bx.label: fn.new_label("tail") for bx, _by, _n in region.pairs}
    for (bx, _by, _n), (tx, ty) in zip(region.pairs, list(region.tails())):
        code = []
        for ix, iy in zip(tx, ty):
            args = [params.get((a, b), a) for a, b in zip(ix.args, iy.args)]
            code.append(_copy(ix, args, tuple(copies.get(t, t) for t in ix.targets)))
        fn.blocks.append(ir.Block(copies[bx.label], code[:-1], code[-1]))
    x, y, n = region.pairs[0]
    shared = copies[x.label]
    preds_of_both = set(preds[x.label]) & set(preds[y.label])

    def sets(pick: int, loc) -> list:
        return [Insn("mov", p, [pair[pick]], loc) for pair, p in params.items()]

    for side, pick in ((x, 0), (y, 1)):
        seq = [*side.insns, side.term]

        if n == len(seq):  # the whole block: its predecessors set the parameters and go to S
            for label in dict.fromkeys(preds[side.label]):
                pred = blocks[label]
                target = shared
                if params and side is y and label in preds_of_both:  # a branch into X and Y
                    edge = ir.Block(fn.new_label("edge"), sets(pick, pred.term.loc),
                                    Insn("jump", None, [], pred.term.loc, targets=(shared,)))
                    fn.blocks.append(edge)
                    target = edge.label
                else:
                    pred.insns += sets(pick, pred.term.loc)
                pred.term.targets = tuple(target if t == side.label else t for t in pred.term.targets)
        else:
            side.insns = side.insns[:len(seq) - n] + sets(pick, side.term.loc)
            side.term = Insn("jump", None, [], side.term.loc, targets=(shared,))
    ir.prune_unreachable(fn)


def _groups(fn: ir.Function) -> list:
    """Blocks that could share a tail: alike terminators and last instructions."""
    groups: dict = {}
    for block in fn.blocks:
        t = block.term
        last = block.insns[-1] if block.insns else None
        key = (t.op, t.cond, len(t.targets), len(t.args),
               None if last is None else (last.op, last.size, last.off, last.helper, len(last.args)))
        groups.setdefault(key, []).append(block)
    return [g[:MAX_GROUP] for g in groups.values() if len(g) > 1]


def _touched(region: _Region, preds: dict) -> set:
    """Labels of the blocks a merge rewrites: the matched blocks and, for a block matched as a
    whole, its predecessors (which get the parameters and the new target)."""
    (x, y, n), labels = region.pairs[0], region.labels_x | region.labels_y
    for side in (x, y):
        if n == len(side.insns) + 1:
            labels |= set(preds[side.label])
    return labels


def run(fn: ir.Function) -> bool:
    """Each scan finds every profitable merge, applies the best ones that rewrite disjoint
    blocks (what a scan knows about the others stays true), and scans again until none is left."""
    changed = False
    while True:
        preds, blocks = fn.predecessors(), fn.block_map()
        counts = Counter()
        for insn in fn.all_insns():
            counts.update(_names(insn))
        found = []
        for group in _groups(fn):
            for i, x in enumerate(group):
                for y in group[i + 1:]:
                    merge = _best(fn, blocks, x, y, preds, counts)
                    if merge is not None:
                        found.append(merge)
        if not found:
            return changed
        taken: set = set()
        for _benefit, region in sorted(found, key=lambda m: -m[0]):
            touched = _touched(region, preds)
            if not touched & taken:
                taken |= touched
                _apply(fn, region, preds)
        changed = True
