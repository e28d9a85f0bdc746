"""The SRAM bank model: how many cycles a vector op's memory side takes, decided once per op
from its memory operands' bases, strides, element sizes and the SIMD width (never element by
element). Numbers from isa/costs.toml [bank]; the rules, in README "Timing model":

- stride: a SIMD step reads `width` elements of one operand; when they fall in fewer banks
  than there are bank groups, it reads one element per bank per cycle (the width becomes that
  number of banks); an element stride = +-1 mod 8 other than 1 caps the width (facts).
- ports and conflicts: a step reads each memory operand once (a destination that is read
  back, as in fmac, too), in the bank group of its first element; the step takes
  max(ceil(reads / read ports), reads sharing a bank group) cycles, at least 1. Fabric
  operands and the destination's write take no read port.
- dimensions: a step covers `width` elements of one innermost row. Bank groups repeat every
  bank_bytes * bank_groups bytes, so each dimension's steps fall into a few residue classes;
  the op's cost is the sum over those classes, weighted by how many steps each holds: exact,
  and O(classes) per op, never O(elements). An operand whose shape differs from the op's is
  taken as 1-D with its innermost stride (exact for 1-D operands)."""

import numpy as np

from .dsd import ndims
from .jit import kernel
from .kinds import (
    B_BASE,
    B_DSD,
    B_READ,
    B_SHAPE,
    B_SPAN,
    B_STRIDE,
    B_WIDTH,
    CFG_BANK_BYTES,
    CFG_BANK_GROUPS,
    CFG_BANKS,
    CFG_READ_PORTS,
    CFG_STRIDE_PM1,
    DK_MEM,
    DSD_ADDR,
    DSD_EXT,
    DSD_KIND,
    DSD_STRIDE,
    MAX_DIMS,
    MEMO_INSN,
    MEMO_OPERAND,
    MEMO_OPS,
)


@kernel
def stride_width(cfg, stride, size, width):
    """The SIMD width a memory operand with this innermost element stride allows."""
    if stride == 0 or stride == 1:
        return width
    banks = cfg[CFG_BANKS]
    r = stride % banks
    if r == 1 or r == banks - 1:
        width = min(width, cfg[CFG_STRIDE_PM1])
    mask = np.int64(0)
    for j in range(min(width, banks)):
        mask |= np.int64(1) << ((j * stride * size // cfg[CFG_BANK_BYTES]) % banks)
    touched = 0
    while mask:
        touched += mask & 1
        mask >>= 1
    if touched < cfg[CFG_BANK_GROUPS]:
        width = min(width, touched)
    return max(width, 1)


@kernel
def _mod(x, cycle):
    """x modulo cycle, >= 0 (a mask when cycle is a power of two: integer division is the
    slow part of costing an op)."""
    if cycle & (cycle - 1) == 0:
        return x & (cycle - 1)
    return x % cycle


@kernel
def _add_operand(dsd, cfg, bank, m, p, d, size, read, width, cycle):
    """Row m of bank for memory DSD d (or merge into the row of the same DSD); returns m'."""
    for j in range(m):
        if bank[j, B_DSD] == d:  # the same DSD register: one stream, read if either is
            bank[j, B_READ] |= read
            return m
    groups = cfg[CFG_BANK_GROUPS]
    bank[m, B_DSD] = d
    bank[m, B_SPAN] = min(groups, max(1, size // cfg[CFG_BANK_BYTES]))
    bank[m, B_READ] = read
    bank[m, B_BASE] = _mod(dsd[p, d, DSD_ADDR], cycle)
    bank[m, B_WIDTH] = stride_width(cfg, dsd[p, d, DSD_STRIDE], size, width)
    conforms = True
    for k in range(1, MAX_DIMS):
        conforms = conforms and dsd[p, d, DSD_EXT + k] == bank[B_SHAPE, B_STRIDE + k]
    step = _mod(dsd[p, d, DSD_STRIDE] * size, cycle)
    bank[m, B_STRIDE] = step
    for k in range(1, MAX_DIMS):
        step = _mod(step * bank[B_SHAPE, B_STRIDE + k - 1], cycle)  # as if 1-D
        if bank[B_SHAPE, B_STRIDE + k] == 1:
            bank[m, B_STRIDE + k] = 0  # never stepped
        elif conforms:
            bank[m, B_STRIDE + k] = _mod(dsd[p, d, DSD_STRIDE + k] * size, cycle)
        else:  # the innermost stride times the op's inner extents
            bank[m, B_STRIDE + k] = step
    return m + 1


@kernel
def bank_operands(dsd, cfg, bank, p, dst, s0, s1, reads_dst, size_dst, size_src, n, width):
    """Fill `bank` with the op's distinct memory operands and its shape (that of the memory
    operand with the most dimensions, the destination first; 1-D of n elements if that shape
    does not hold n elements). Returns the number of operands."""
    shape = -1
    best = 0
    for k in range(3):
        d = dst if k == 0 else (s0 if k == 1 else s1)
        if d >= 0 and dsd[p, d, 0] == DK_MEM and ndims(dsd, p, d) > best:
            best = ndims(dsd, p, d)
            shape = d
    total = np.int64(1)
    for k in range(MAX_DIMS):
        e = dsd[p, shape, DSD_EXT + k] if shape >= 0 else (n if k == 0 else 1)
        bank[B_SHAPE, B_STRIDE + k] = e
        total *= e
    if total != n:
        for k in range(MAX_DIMS):
            bank[B_SHAPE, B_STRIDE + k] = n if k == 0 else 1
    cycle = cfg[CFG_BANK_BYTES] * cfg[CFG_BANK_GROUPS]
    m = 0
    for k in range(3):
        d = dst if k == 0 else (s0 if k == 1 else s1)
        if d >= 0 and dsd[p, d, 0] == DK_MEM:
            read = 1 if (k > 0 or reads_dst) else 0
            m = _add_operand(
                dsd, cfg, bank, m, p, d, size_dst if k == 0 else size_src, read, width, cycle
            )
    return m


@kernel
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@kernel
def _period(bank, m, k, mult, cycle):
    """Steps along op dimension k after which every operand is back in the same bank group."""
    per = np.int64(1)
    pow2 = cycle & (cycle - 1) == 0
    for j in range(m):
        step = _mod(bank[j, B_STRIDE + k] * mult, cycle)
        if step == 0:
            continue
        if pow2:  # every period divides cycle, a power of two: the lcm is the largest
            per = max(per, cycle // (step & -step))
        else:
            pj = cycle // _gcd(step, cycle)
            per = per * pj // _gcd(per, pj)
    return per


@kernel
def _step_cost(cfg, bank, m, reads, r0, r1, r2, r3, cycle):
    """Cycles of one SIMD step whose first element has op index (r0, r1, r2, r3)."""
    ports = cfg[CFG_READ_PORTS]
    cost = max((reads + ports - 1) // ports, 1)
    if reads < 2:
        return cost
    groups = cfg[CFG_BANK_GROUPS]
    bb = cfg[CFG_BANK_BYTES]
    first0 = first1 = first2 = np.int64(0)
    for j in range(m):
        a = _mod(
            bank[j, B_BASE]
            + r0 * bank[j, B_STRIDE]
            + r1 * bank[j, B_STRIDE + 1]
            + r2 * bank[j, B_STRIDE + 2]
            + r3 * bank[j, B_STRIDE + 3],
            cycle,
        )
        first = a // bb
        if j == 0:
            first0 = first
        elif j == 1:
            first1 = first
        else:
            first2 = first
    for g in range(groups):
        c = 0
        for j in range(m):
            if bank[j, B_READ]:
                dg = g - (first0 if j == 0 else (first1 if j == 1 else first2))
                if dg < 0:
                    dg += groups
                if dg < bank[j, B_SPAN]:
                    c += 1
        cost = max(cost, c)
    return cost


@kernel
def _weight(count, r, per):
    """How many of count steps have index r modulo per."""
    return (count - 1 - r) // per + 1


@kernel
def bank_cycles(cfg, bank, m, width, cpe):
    """Cycles of an op over its shape (bank row B_SHAPE) with m memory operands (bank rows):
    the sum over its SIMD steps of max(cpe, the step's SRAM cycles). `width` is the SIMD
    class's; each operand's stride may lower it."""
    for j in range(m):
        width = min(width, bank[j, B_WIDTH])
    e0 = bank[B_SHAPE, B_STRIDE]
    e1 = bank[B_SHAPE, B_STRIDE + 1]
    e2 = bank[B_SHAPE, B_STRIDE + 2]
    e3 = bank[B_SHAPE, B_STRIDE + 3]
    q = (e0 + width - 1) // width  # steps per innermost row
    reads = 0
    for j in range(m):
        reads += bank[j, B_READ]
    if reads < 2:  # nothing can conflict: every step costs the same
        return q * e1 * e2 * e3 * max(cpe, _step_cost(cfg, bank, m, reads, 0, 0, 0, 0, 1))
    cycle = cfg[CFG_BANK_BYTES] * cfg[CFG_BANK_GROUPS]
    p0 = _period(bank, m, 0, width, cycle) if q > 1 else 1
    p1 = _period(bank, m, 1, 1, cycle) if e1 > 1 else 1
    p2 = _period(bank, m, 2, 1, cycle) if e2 > 1 else 1
    p3 = _period(bank, m, 3, 1, cycle) if e3 > 1 else 1
    total = np.int64(0)
    for r3 in range(min(e3, p3)):
        w3 = _weight(e3, r3, p3)
        for r2 in range(min(e2, p2)):
            w2 = w3 * _weight(e2, r2, p2)
            for r1 in range(min(e1, p1)):
                w1 = w2 * _weight(e1, r1, p1)
                for r0 in range(min(q, p0)):
                    c = _step_cost(cfg, bank, m, reads, r0 * width, r1, r2, r3, cycle)
                    total += w1 * _weight(q, r0, p0) * max(cpe, c)
    return total


@kernel
def memo_cost(memo, dsd, code, p, pc, n, dst, s0, s1, cycle, total):
    """An op's cost does not change while its instruction's kind and what the bank model reads
    of its DSDs do not, so each PE remembers its last one: a loop of like ops pays a
    comparison, not the model. total < 0: look up, returns the cost or -1; else remember."""
    store = total >= 0
    if store:
        memo[p, 0] = total
        memo[p, 1] = n
    elif memo[p, 1] != n:
        return -1
    for f in range(len(MEMO_INSN)):
        v = code[pc, MEMO_INSN[f]]
        if store:
            memo[p, 2 + f] = v
        elif memo[p, 2 + f] != v:
            return -1
    for k in range(3):
        d = dst if k == 0 else (s0 if k == 1 else s1)
        o = MEMO_OPS + k * MEMO_OPERAND
        for f in range(MEMO_OPERAND):
            v = np.int64(-1)
            if d >= 0:
                if f == 0:
                    v = dsd[p, d, DSD_KIND]
                elif f == 1:
                    v = _mod(dsd[p, d, DSD_ADDR], cycle)
                else:  # strides, then extents
                    v = dsd[p, d, DSD_STRIDE + f - 2]
            if store:
                memo[p, o + f] = v
            elif memo[p, o + f] != v:
                return -1
    return memo[p, 0]
