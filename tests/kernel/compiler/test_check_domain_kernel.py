"""The checking stage knows exactly what the verifier knows about numbers.

In: random programs that load a number of some width from a map value, apply one to three ALU
instructions (immediates and a second loaded number; every IR operation) and optionally a
comparison, then dereference the number to make the verifier stop and print what it knows about
it. Out: pass/fail: the verifier's bounds and known bits (its log) equal the checking stage's
(``compiler.check.scalar``), including the 32-bit sub-register bounds. Knowing less would refuse
programs the kernel loads; knowing more would accept programs it refuses. At least 99% must
agree exactly: the last disagreements are kernel subtleties (one in about 5000: a bitwise or
after an arithmetic shift, where Linux 6.18 concludes a constant).
"""

from __future__ import annotations

import os
import random
import re
import struct

from compiler import ir, isa, verify
from compiler.check import scalar, tnum
from compiler.check.scalar import Scalar

M = (1 << 64) - 1
ALU = {"add": isa.ADD, "sub": isa.SUB, "mul": isa.MUL, "div": isa.DIV, "mod": isa.MOD, "and": isa.AND,
       "or": isa.OR, "xor": isa.XOR, "lsh": isa.LSH, "rsh": isa.RSH, "arsh": isa.ARSH}
JUMPS = {"eq": isa.JEQ, "ne": isa.JNE, "gt": isa.JGT, "ge": isa.JGE, "lt": isa.JLT, "le": isa.JLE,
         "sgt": isa.JSGT, "sge": isa.JSGE, "slt": isa.JSLT, "sle": isa.JSLE}
WIDTHS = {1: isa.B, 2: isa.H, 4: isa.W, 8: isa.DW}
IMMEDIATES = (0, 1, 3, 7, 15, 255, 256, 4095, -1, -8, 1000, 63, 32)
R0, R1, R2, R6, R7, R10 = 0, 1, 2, 6, 7, 10
COUNT = 600


def parse(text: str) -> Scalar | None:
    """A scalar as the verifier prints it: ``5``, ``0xff``, ``scalar()``, ``scalar(umax=255,...)``."""
    if re.fullmatch(r"-?(0x[0-9a-f]+|\d+)", text):
        return scalar.known(int(text, 0))
    m = re.fullmatch(r"scalar\((.*)\)", text)
    if m is None:
        return None
    body = m.group(1)
    var = re.search(r"var_off=\((0x[0-9a-f]+); (0x[0-9a-f]+)\)", body)
    fields = {}
    for part in filter(None, re.sub(r",?var_off=\([^)]*\)", "", body).split(",")):
        *names, value = part.split("=")
        for name in names:
            fields[name] = int(value, 0)
    t = tnum.Tnum(int(var.group(1), 16), int(var.group(2), 16)) if var else tnum.UNKNOWN
    return scalar.UNKNOWN._replace(
        umin=fields.get("umin", 0), umax=fields.get("umax", M), smin=scalar.signed(fields.get("smin", 1 << 63)),
        smax=scalar.signed(fields.get("smax", (1 << 63) - 1)), tn=t, u32min=fields.get("umin32", 0),
        u32max=fields.get("umax32", (1 << 32) - 1), s32min=scalar.s32(fields.get("smin32", 1 << 31)),
        s32max=scalar.s32(fields.get("smax32", (1 << 31) - 1)))


def register_after(log: str, reg: int) -> str | None:
    """What the log's last annotated instruction says register ``reg`` holds."""
    for line in reversed(log.splitlines()):
        if ";" not in line:
            continue
        note = line.split(";", 1)[1]
        at = re.search(rf"\bR{reg}(_w)?=", note)
        if at is None:
            continue
        depth, end = 0, at.end()
        while end < len(note) and not (note[end] == " " and depth == 0):
            depth += (note[end] == "(") - (note[end] == ")")
            end += 1
        return note[at.end():end]
    return None


def program(rng: random.Random) -> tuple[list, Scalar, list]:
    """(instructions with a map fd placeholder, the stage's idea of r6 at the end, what was done)."""
    width = rng.choice(list(WIDTHS))
    insns = [isa.st(isa.W, R10, -4, 0), isa.ld_map_fd(R1, "m"), isa.mov64_reg(R2, R10),
             isa.alu64_imm(isa.ADD, R2, -4), isa.call(1), isa.Insn(isa.JMP | isa.JNE | isa.K, R0, 0, 2, 0),
             isa.mov64_imm(R0, 0), isa.exit_(), isa.ldx(WIDTHS[width], R6, R0, 0), isa.ldx(isa.B, R7, R0, 1)]
    mine, other, done = scalar.of_width(width), scalar.of_width(1), []
    for _step in range(rng.randint(1, 3)):
        op = rng.choice(ir.BINARY_OPS)
        if op in ir.SHIFTS or rng.random() < 0.6:
            imm = rng.randint(0, 63) if op in ir.SHIFTS else rng.choice(IMMEDIATES)
            if op in ("div", "mod") and imm == 0:
                imm = 3
            insns.append(isa.alu64_imm(ALU[op], R6, imm))
            mine = scalar.alu(op, mine, scalar.known(imm & M))
        else:
            imm = "r7"
            insns.append(isa.alu64_reg(ALU[op], R6, R7))
            mine = scalar.alu(op, mine, other)
        done.append((op, imm))
    tail = []
    if rng.random() < 0.5:  # a comparison; the dereference is on the side where it fails
        cond, imm = rng.choice(ir.CONDS), rng.choice((0, 1, 16, 255, 1000, -1))
        taken = scalar.branch_taken(ir.NEGATED[cond], mine, scalar.known(imm & M))
        if taken is None:
            insns.append(isa.Insn(isa.JMP | JUMPS[cond] | isa.K, R6, 0, 2, imm))
            mine = scalar.refine(ir.NEGATED[cond], mine, scalar.known(imm & M))[0]
            done.append((cond, imm))
            tail = [isa.mov64_imm(R0, 0), isa.exit_()]
    insns += [isa.ldx(isa.B, R0, R6, 0), isa.exit_(), *tail]
    return insns, mine, done


def test_the_stage_knows_what_the_verifier_knows(pin_dir):
    sc, errors = verify.loader()
    fd = sc.map_create(2, 4, 8, 1)  # an array: its value is what r6 and r7 are loaded from
    rng = random.Random(2026)
    mismatches, compared = [], 0
    try:
        for _program in range(COUNT):
            insns, mine, done = program(rng)
            code = bytearray(isa.encode(insns))
            struct.pack_into("<i", code, 8 + 4, fd)  # the ld_imm64 of the map, second instruction
            compared += 1
            try:
                os.close(sc.prog_load(6, bytes(code), "GPL", "wkdomain", 37, 0))
            except errors.VerifierError as err:
                log = err.log
            else:  # the verifier decided the comparison the stage could not
                mismatches.append((done, "the kernel decided the comparison", mine.bounds()))
                continue
            text = register_after(log, R6)
            theirs = parse(text) if text else None
            assert theirs is not None, log[-500:]
            if theirs.bounds() != mine.bounds():
                mismatches.append((done, theirs.bounds(), mine.bounds()))
    finally:
        os.close(fd)
    assert compared == COUNT and len(mismatches) <= compared // 100, mismatches[:5]
