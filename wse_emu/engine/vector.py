"""Vector (DSD) instructions: element reads and writes per dtype, the arithmetic, and the
op loop: an all-SRAM op runs in one go and charges start-up plus its SIMD steps' cycles from
the bank model (bank.py); an op with a fabric operand streams one element a step,
suspending with its progress when the fabric stalls."""

import math

import numpy as np

from ..isa import DTYPE_SIZE, DTYPES, N_REGS
from .bank import bank_cycles, bank_operands, memo_cost
from .dsd import elem_addr, span
from .events import STALL_RECV, stall, vector_op_done
from .fabric import (
    block_sender,
    ctl_at_head,
    data_before_ctl,
    dest_room,
    q_advance,
    route_fault,
    send_wavelet,
    walk,
)
from .fp import bf16_bits, f16_bits
from .jit import kernel
from .kinds import (
    C_CPE,
    C_DT,
    C_DT2,
    C_F0,
    C_F1,
    C_F2,
    C_FLOPS,
    C_FN,
    C_MASK,
    C_SEM,
    C_WIDTH,
    CFG_BANK_BYTES,
    CFG_BANK_GROUPS,
    CFG_HEIGHT,
    CFG_ISSUE,
    CFG_NCOLORS,
    CFG_SRAM,
    CFG_SRAM_ROW,
    CFG_WIDTH,
    DK_FIN,
    DK_FOUT,
    DK_MEM,
    DSD_ADDR,
    DSD_EXT,
    DSD_KIND,
    DSD_LEN,
    DSD_STRIDE,
    DT_BF16,
    DT_F16,
    DT_F32,
    DT_I16,
    DT_I32,
    F_ALIGN,
    F_CTL_DATA,
    F_DSD_KIND,
    F_DSD_LEN,
    F_DSD_RANGE,
    F_DSD_UNDECLARED,
    F_DSD_UNSET,
    F_QUEUE_MISUSE,
    FN_ABS,
    FN_ADD,
    FN_AND,
    FN_DOT,
    FN_EXP,
    FN_GELU,
    FN_LOG,
    FN_MAX,
    FN_MIN,
    FN_MUL,
    FN_NEG,
    FN_OR,
    FN_RECIP,
    FN_RELU,
    FN_RSQRT,
    FN_SIGMOID,
    FN_SUB,
    FN_SUM,
    FN_TANH,
    M_TRACE,
    P_BUSY,
    P_CLOCK,
    P_FARG,
    P_IMG,
    P_RD,
    P_STALL,
    P_STATE,
    P_UTHOST,
    P_VACTIVE,
    P_VFREE,
    P_VPROG,
    P_VT0,
    P_WAIT,
    P_WR,
    P_X0,
    P_Y0,
    S_RECV,
    SEM_VBIN,
    SEM_VBINS,
    SEM_VCVT,
    SEM_VFILL,
    SEM_VFMA,
    SEM_VFMAS,
    SEM_VRED,
    SEM_VUN,
)
from .pipeline import drain, end_sync, issue, start_sync, use_register, wait_until

DT_SIZE = np.array([DTYPE_SIZE[d] for d in DTYPES], np.int64)  # bytes, by dtype code
INV_SQRT2 = 0.7071067811865476

DONE, BLOCKED = 0, 1


@kernel
def is_float(dt):
    return dt <= DT_F32


@kernel
def bits_to_f32(S, bits):
    S.cvt_u[0] = bits & 0xFFFFFFFF
    return np.float64(S.cvt_f[0])


@kernel
def f32_to_bits(S, v):
    S.cvt_f[0] = np.float32(v)
    return np.int64(S.cvt_u[0])


@kernel
def payload_value(S, pay, dt):
    """Value carried by a wavelet: 16-bit types in the low half, f32 as all 32 bits."""
    pay = np.int64(pay)
    if dt == DT_F16:
        return np.float64(S.f16tab[pay & 0xFFFF])
    if dt == DT_BF16:
        return np.float64(S.bf16tab[pay & 0xFFFF])
    if dt == DT_F32:
        return bits_to_f32(S, pay)
    if dt == DT_I16:
        v = pay & 0xFFFF
        return np.float64(v - 65536 if v >= 32768 else v)
    if dt == DT_I32:
        v = pay & 0xFFFFFFFF
        return np.float64(v - 0x100000000 if v >= 0x80000000 else v)
    v = pay & 0xFF
    return np.float64(v - 256 if v >= 128 else v)


@kernel
def value_payload(S, v, dt):
    if dt == DT_F16:
        return f16_bits(v)
    if dt == DT_BF16:
        return bf16_bits(v)
    if dt == DT_F32:
        return f32_to_bits(S, v)
    if dt == DT_I16:
        return np.int64(v) & 0xFFFF
    if dt == DT_I32:
        return np.int64(v) & 0xFFFFFFFF
    return np.int64(v) & 0xFF


@kernel
def saturate(v, dt):
    if v != v:
        return 0.0
    v = np.rint(v)
    lo, hi = (-32768.0, 32767.0) if dt == DT_I16 else (-128.0, 127.0)
    return min(max(v, lo), hi)


@kernel
def unary(fn, a):
    if fn == FN_NEG:
        return -a
    if fn == FN_ABS:
        return abs(a)
    if fn == FN_RELU:
        return a if (a > 0.0 or a != a) else 0.0
    if fn == FN_EXP:
        return math.exp(a)
    if fn == FN_LOG:
        if a < 0.0:
            return np.nan
        if a == 0.0:
            return -np.inf
        return math.log(a)
    if fn == FN_TANH:
        return math.tanh(a)
    if fn == FN_SIGMOID:
        if a >= 0.0:
            return 1.0 / (1.0 + math.exp(-a))
        e = math.exp(a)
        return e / (1.0 + e)
    if fn == FN_GELU:
        return 0.5 * a * (1.0 + math.erf(a * INV_SQRT2))
    if fn == FN_RSQRT:
        if a < 0.0:
            return np.nan
        return 1.0 / math.sqrt(a)
    if fn == FN_RECIP:
        return 1.0 / a
    return a  # mov


@kernel
def binary(fn, a, b):
    if fn == FN_ADD:
        return a + b
    if fn == FN_SUB:
        return a - b
    if fn == FN_MUL:
        return a * b
    if fn == FN_MAX:
        if a != a or b != b:
            return np.nan
        return a if a >= b else b
    if fn == FN_MIN:
        if a != a or b != b:
            return np.nan
        return a if a <= b else b
    ia = np.int64(a)
    ib = np.int64(b)
    if fn == FN_AND:
        return np.float64(ia & ib)
    if fn == FN_OR:
        return np.float64(ia | ib)
    return np.float64(ia ^ ib)  # xor


@kernel
def reduce_step(fn, acc, a, b, int_dst):
    """One element of a reduction: sum, dot (fp32 after each step for floats) or max."""
    if fn == FN_SUM:
        acc = acc + a
    elif fn == FN_DOT:
        acc = acc + a * b
    elif acc == acc and (a != a or a > acc):
        acc = a
    if not int_dst:
        acc = np.float64(np.float32(acc))
    return acc


@kernel
def element(sem, fn, dt, int_dst, a, b, c):
    """One element of an elementwise vector op (c: the destination's value, for fmac)."""
    if sem == SEM_VFMA or sem == SEM_VFMAS:
        return c + a * b
    if sem == SEM_VUN:
        return unary(fn, a)
    if sem == SEM_VFILL:
        return b
    if sem == SEM_VCVT:
        return saturate(a, dt) if int_dst else a
    return binary(fn, a, b)


@kernel
def mem_operand_fault(dsd, p, d, n, size, is_source, sram, row):
    """(fault code, argument) for memory DSD d used over n elements of size bytes, or (0, 0).
    Every dimension is checked (either end, negative strides too); a range fault names the
    DSD and the first address outside SRAM (packed as address * 16 + d), or outside the
    row allocated for it (row bytes: the declared data)."""
    if is_source and dsd[p, d, DSD_LEN] < n:
        return F_DSD_LEN, d
    base = dsd[p, d, DSD_ADDR]
    if base % size != 0:
        return F_ALIGN, base
    lo, hi = span(dsd, p, d, n, size)
    if lo < 0:
        return F_DSD_RANGE, lo * 16 + d
    if hi > sram:
        return F_DSD_RANGE, (hi - size) * 16 + d
    if hi > row:
        return F_DSD_UNDECLARED, (hi - size) * 16 + d
    return 0, 0


@kernel
def check_fabric_operand(S, p, h, d, is_source):
    """0, or the fault code for fabric DSD d of context p (a PE's thread or one of its
    microthreads) on PE h (P_FARG says which DSD or color)."""
    kind = S.dsd[p, d, 0]
    color = S.dsd[p, d, 1]
    S.pe[p, P_FARG] = d
    if kind == DK_FIN:
        if not is_source:
            return F_DSD_KIND
        if S.color_task[S.pe[p, P_IMG], color] >= 0:
            S.pe[p, P_FARG] = color
            return F_QUEUE_MISUSE
        return 0
    if kind == DK_FOUT:
        if is_source:
            return F_DSD_KIND
        nw = walk(S, h, color)
        if nw < 0:
            S.pe[p, P_FARG] = color
            return route_fault(nw)
        return 0
    return F_DSD_UNSET


@kernel
def _load(s8, s16, sf, s32, f16t, bf16t, addr, dt):
    if dt == DT_F16:
        return np.float64(f16t[s16[addr >> 1]])
    if dt == DT_F32:
        return np.float64(sf[addr >> 2])
    if dt == DT_BF16:
        return np.float64(bf16t[s16[addr >> 1]])
    if dt == DT_I16:
        v = np.int64(s16[addr >> 1])
        return np.float64(v - 65536 if v >= 32768 else v)
    if dt == DT_I32:
        return np.float64(s32[addr >> 2])
    v = np.int64(s8[addr])
    return np.float64(v - 256 if v >= 128 else v)


@kernel
def _store(s8, s16, sf, s32, addr, dt, v):
    if dt == DT_F32:
        sf[addr >> 2] = np.float32(v)
    elif dt == DT_F16:
        s16[addr >> 1] = f16_bits(v)
    elif dt == DT_BF16:
        s16[addr >> 1] = bf16_bits(v)
    elif dt == DT_I16:
        s16[addr >> 1] = np.int64(v) & 0xFFFF
    elif dt == DT_I32:
        s32[addr >> 2] = ((np.int64(v) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
    else:
        s8[addr] = np.int64(v) & 0xFF


@kernel
def mem_loop(
    s8,
    s16,
    sf,
    s32,
    f16t,
    bf16t,
    sem,
    fn,
    dt,
    dt2,
    n,
    d_addr,
    d_step,
    a_addr,
    a_step,
    b_addr,
    b_step,
    sval,
    acc,
):
    """n elements of a vector op whose operands are all in SRAM (one PE's row views), each
    operand in a straight line (one innermost row), in one tight loop. a_addr / b_addr < 0:
    no such source (b then is the scalar sval); d_addr < 0: a reduction, which goes on from
    acc and returns its value."""
    if sem == SEM_VFMAS and dt2 == DT_F16 and (dt == DT_F32 or dt == DT_F16):
        # the GEMM inner step, C[r, :] += a * B[kk, :]: a tight loop of its own
        for i in range(n):
            da = d_addr + i * d_step
            v = np.float64(f16t[s16[(a_addr + i * a_step) >> 1]]) * sval
            if dt == DT_F32:
                sf[da >> 2] = np.float32(np.float64(sf[da >> 2]) + v)
            else:
                s16[da >> 1] = f16_bits(np.float64(f16t[s16[da >> 1]]) + v)
        return 0.0
    int_dst = dt > DT_F32
    for i in range(n):
        a = 0.0
        if a_addr >= 0:
            a = _load(s8, s16, sf, s32, f16t, bf16t, a_addr + i * a_step, dt2)
        b = sval
        if b_addr >= 0:
            b = _load(s8, s16, sf, s32, f16t, bf16t, b_addr + i * b_step, dt2)
        if sem == SEM_VRED:
            acc = reduce_step(fn, acc, a, b, int_dst)
            continue
        daddr = d_addr + i * d_step
        c = 0.0
        if sem == SEM_VFMA or sem == SEM_VFMAS:
            c = _load(s8, s16, sf, s32, f16t, bf16t, daddr, dt)
        _store(s8, s16, sf, s32, daddr, dt, element(sem, fn, dt, int_dst, a, b, c))
    return acc


@kernel
def _fin_avail(S, p, h, d, other, nc):
    """Elements the fabric input d can feed now (both sources on one color take two each)."""
    avail = data_before_ctl(S, h * nc + S.dsd[p, d, 1])
    if other >= 0 and S.dsd[p, other, 0] == DK_FIN and S.dsd[p, other, 1] == S.dsd[p, d, 1]:
        avail //= 2
    return avail


@kernel
def stream(S, p, h, sem, fn, dt, dt2, n, i, dst, s0, s1, sval, total):
    """Elements i .. n-1 of a vector op with a fabric operand, `total` cycles for all n
    spread evenly (element i ends at i * total // n). Runs in batches: as many elements as
    every input queue holds and every destination has room for, with no checks inside a
    batch. Returns the next element; below n the PE is blocked (its state says on what) and
    resumes there. p is the context that runs it (PE h's thread, p == h, or one of h's
    microthreads): its clock, DSDs and progress; SRAM, queues and routes are h's."""
    pe = S.pe
    nc = S.cfg[CFG_NCOLORS]
    s8 = S.sram8[h]
    s16 = S.sram16[h]
    sf = S.sramf[h]
    s32 = S.sram32[h]
    f16t = S.f16tab
    bf16t = S.bf16tab
    cvt_u = S.cvt_u
    cvt_f = S.cvt_f
    qoff = S.qoff
    qhead = S.qhead
    qtime = S.qtime
    qpay = S.qpay
    out_color = -1
    if dst >= 0 and S.dsd[p, dst, 0] == DK_FOUT:
        out_color = S.dsd[p, dst, 1]
    int_dst = not is_float(dt)
    acc = S.acc[p]
    while i < n:
        m = n - i
        nw = 0
        if out_color >= 0:
            nw = walk(S, h, out_color)
            room, q = dest_room(S, p, h, out_color, nw)
            if room <= 0:
                block_sender(S, p, out_color, q)
                break
            m = min(m, room)
        blocked = False
        for k in range(2):
            d = s0 if k == 0 else s1
            if d >= 0 and S.dsd[p, d, 0] == DK_FIN:
                avail = _fin_avail(S, p, h, d, s1 if k == 0 else s0, nc)
                if avail <= 0:
                    pe[p, P_STATE] = S_RECV
                    pe[p, P_WAIT] = S.dsd[p, d, 1]
                    blocked = True
                    break
                m = min(m, avail)
        if blocked:
            break
        for _ in range(m):
            a = 0.0
            b = sval
            for k in range(2):
                d = s0 if k == 0 else s1
                if d < 0:
                    continue
                if S.dsd[p, d, 0] == DK_MEM:
                    addr = elem_addr(S.dsd, p, d, i, DT_SIZE[dt2])
                    v = _load(s8, s16, sf, s32, f16t, bf16t, addr, dt2)
                else:  # take the next wavelet; the PE's clock moves to its arrival
                    qi = h * nc + S.dsd[p, d, 1]
                    base = qoff[qi]
                    head = qhead[qi]
                    arrive = qtime[base + head]
                    if arrive > pe[p, P_CLOCK]:
                        if S.misc[M_TRACE]:
                            stall(S, p, arrive, STALL_RECV, S.dsd[p, d, 1])
                        pe[p, P_STALL] += arrive - pe[p, P_CLOCK]
                        pe[p, P_CLOCK] = arrive
                    pay = np.int64(qpay[base + head])
                    q_advance(S, qi, pe[p, P_CLOCK])
                    if dt2 == DT_F16:
                        v = np.float64(f16t[pay & 0xFFFF])
                    elif dt2 == DT_F32:
                        cvt_u[0] = pay & 0xFFFFFFFF
                        v = np.float64(cvt_f[0])
                    else:
                        v = payload_value(S, pay, dt2)
                if k == 0:
                    a = v
                else:
                    b = v
            if sem == SEM_VRED:
                acc = reduce_step(fn, acc, a, b, int_dst)
            else:
                daddr = 0
                if out_color < 0:
                    daddr = elem_addr(S.dsd, p, dst, i, DT_SIZE[dt])
                c = 0.0
                if sem == SEM_VFMA or sem == SEM_VFMAS:  # the destination is in SRAM
                    c = _load(s8, s16, sf, s32, f16t, bf16t, daddr, dt)
                r = element(sem, fn, dt, int_dst, a, b, c)
                if out_color < 0:
                    _store(s8, s16, sf, s32, daddr, dt, r)
                else:
                    pay = f16_bits(r) if dt == DT_F16 else value_payload(S, r, dt)
                    send_wavelet(S, h, out_color, pay, pe[p, P_CLOCK], nw)
            cycles = (i + 1) * total // n - i * total // n
            pe[p, P_CLOCK] += cycles
            pe[p, P_BUSY] += cycles
            i += 1
    pe[p, P_VPROG] = i
    S.acc[p] = acc
    return i


@kernel
def mem_rows(S, p, sem, fn, dt, dt2, n, dst, s0, s1, sval):
    """An all-SRAM op over n elements, run as straight pieces: each ends where some operand's
    innermost row ends (one piece for 1-D operands). Returns a reduction's value."""
    dsd = S.dsd
    zd = DT_SIZE[dt]
    zs = DT_SIZE[dt2]
    acc = -np.inf if fn == FN_MAX else 0.0
    i = 0
    while i < n:
        seg = n - i
        for k in range(3):
            d = dst if k == 0 else (s0 if k == 1 else s1)
            if d >= 0:
                e0 = dsd[p, d, DSD_EXT]
                seg = min(seg, e0 - i % e0)
        acc = mem_loop(
            S.sram8[p],
            S.sram16[p],
            S.sramf[p],
            S.sram32[p],
            S.f16tab,
            S.bf16tab,
            sem,
            fn,
            dt,
            dt2,
            seg,
            elem_addr(dsd, p, dst, i, zd) if dst >= 0 else -1,
            dsd[p, max(dst, 0), DSD_STRIDE] * zd,
            elem_addr(dsd, p, s0, i, zs) if s0 >= 0 else -1,
            dsd[p, max(s0, 0), DSD_STRIDE] * zs,
            elem_addr(dsd, p, s1, i, zs) if s1 >= 0 else -1,
            dsd[p, max(s1, 0), DSD_STRIDE] * zs,
            sval,
            acc,
        )
        i += seg
    return acc


@kernel
def vector_op(S, p, h, pc):
    """Run (or resume) the vector instruction at pc in context p on PE h (p == h: the PE's
    thread; else one of its microthreads, microthread.py). Returns DONE, BLOCKED (p's state
    says on what), or minus a fault code (P_FARG names the DSD register)."""
    code = S.code
    sem = code[pc, C_SEM]
    fn = code[pc, C_FN]
    dt = code[pc, C_DT]
    dt2 = code[pc, C_DT2]
    mask = code[pc, C_MASK]
    f0 = code[pc, C_F0]
    f1 = code[pc, C_F1]
    f2 = code[pc, C_F2]
    dst = f0
    s0 = f1
    s1 = -1
    scalar_field = -1
    if sem == SEM_VRED:
        dst = -1
        if fn == FN_DOT:
            s1 = f2
    elif sem == SEM_VFILL:
        s0 = -1
        scalar_field = 1
    elif sem == SEM_VBIN or sem == SEM_VFMA:
        s1 = f2
    elif sem == SEM_VBINS or sem == SEM_VFMAS:
        scalar_field = 2
    reads_dst = sem == SEM_VFMA or sem == SEM_VFMAS
    dsd = S.dsd
    pe = S.pe
    n = dsd[p, dst if dst >= 0 else s0, DSD_LEN]
    # validate the operands (also on resume)
    fabric = False
    sram = S.cfg[CFG_SRAM]
    row = S.cfg[CFG_SRAM_ROW]
    for k in range(3):
        d = dst if k == 0 else (s0 if k == 1 else s1)
        if d < 0:
            continue
        if dsd[p, d, 0] == DK_MEM:
            err, arg = mem_operand_fault(
                dsd, p, d, n, DT_SIZE[dt if k == 0 else dt2], k > 0, sram, row
            )
            if err != 0:
                pe[p, P_FARG] = arg
                return -err
        else:
            if k == 0 and reads_dst:
                pe[p, P_FARG] = d
                return -F_DSD_KIND
            err = check_fabric_operand(S, p, h, d, k > 0)
            if err != 0:
                return -err
            fabric = True
    # cycles, from the bank model over the memory operands (a stream: one element a step)
    cycle = S.cfg[CFG_BANK_BYTES] * S.cfg[CFG_BANK_GROUPS]
    total = memo_cost(S.bmemo, dsd, code, p, pc, n, dst, s0, s1, cycle, -1)
    if total < 0:
        width = 1 if fabric else code[pc, C_WIDTH]
        m = bank_operands(
            dsd, S.cfg, S.bank, p, dst, s0, s1, reads_dst, DT_SIZE[dt], DT_SIZE[dt2], n, width
        )
        total = bank_cycles(S.cfg, S.bank, m, width, code[pc, C_CPE])
        memo_cost(S.bmemo, dsd, code, p, pc, n, dst, s0, s1, cycle, total)
    sval = 0.0
    if scalar_field >= 0:
        raw = code[pc, C_F0 + scalar_field]
        if not (mask >> scalar_field) & 1:
            raw = read_reg(S, p, raw)
        if dt2 <= DT_F32:  # fp32 bits, rounded to the source dtype
            S.cvt_u[0] = raw & 0xFFFFFFFF
            sval = np.float64(S.cvt_f[0])
            if dt2 == DT_F16:
                sval = np.float64(S.f16tab[f16_bits(sval)])
            elif dt2 == DT_BF16:
                sval = np.float64(S.bf16tab[bf16_bits(sval)])
        else:
            sval = np.float64(raw)
    i = 0
    if fabric:
        if pe[p, P_VACTIVE] == 0:
            pe[p, P_VACTIVE] = 1
            pe[p, P_VPROG] = 0
            S.acc[p] = -np.inf if fn == FN_MAX else 0.0
            start_sync(S, p)
            pe[p, P_VT0] = pe[p, P_CLOCK]
        i = pe[p, P_VPROG]
    else:
        S.acc[p] = mem_rows(S, p, sem, fn, dt, dt2, n, dst, s0, s1, sval)
        i = n  # done: skip the streaming loop below
    int_dst = not is_float(dt)
    if fabric:
        i = stream(S, p, h, sem, fn, dt, dt2, n, i, dst, s0, s1, sval, total)
        if i < n:
            if pe[p, P_STATE] == S_RECV and ctl_at_head(S, h * S.cfg[CFG_NCOLORS] + pe[p, P_WAIT]):
                pe[p, P_FARG] = pe[p, P_WAIT]
                return -F_CTL_DATA
            return BLOCKED
    acc = S.acc[p]
    if sem == SEM_VRED:
        if int_dst:
            S.regs[p, f0] = np.int64(acc) & 0xFFFFFFFF
        else:
            S.regf[p, f0] = np.float32(acc)
    wlo, whi = operand_span(S, p, dst, n, dt)
    if fabric:
        end_sync(S, p, wlo, whi)
    elif sem == SEM_VRED:  # its result is a register: the thread waits for it
        start_sync(S, p)
        pe[p, P_VT0] = pe[p, P_CLOCK]
        wait_until(S, p, pe[p, P_CLOCK] + total)
        end_sync(S, p, wlo, whi)
        drain(S, p)
    else:
        alo, ahi = operand_span(S, p, s0, n, dt2)
        blo, bhi = operand_span(S, p, s1, n, dt2)
        rd = 1 if reads_dst else 0
        issue(S, p, total, alo, ahi, blo, bhi, wlo * rd, whi * rd, wlo, whi)
        pe[p, P_VT0] = pe[p, P_VFREE] - total
        pe[p, P_CLOCK] += S.cfg[CFG_ISSUE]
        pe[p, P_BUSY] += S.cfg[CFG_ISSUE]
    if S.misc[M_TRACE]:
        vector_op_done(S, p, pc, n)
    pe[p, P_VACTIVE] = 0
    pe[p, P_VPROG] = 0
    flops = code[pc, C_FLOPS]
    if flops > 0 and is_float(dt2):
        cat = 3 if dt != dt2 else dt
        S.flops[h, cat] += flops * n
    nmem_src = 0
    for d in (s0, s1):
        if d >= 0 and S.dsd[p, d, 0] == DK_MEM:
            nmem_src += 1
    pe[h, P_RD] += n * (nmem_src * DT_SIZE[dt2] + (DT_SIZE[dt] if reads_dst else 0))
    if dst >= 0 and S.dsd[p, dst, 0] == DK_MEM:
        pe[h, P_WR] += n * DT_SIZE[dt]
    return DONE


@kernel
def operand_span(S, p, d, n, dt):
    """Byte range [lo, hi) that memory DSD d covers over n elements; (0, 0) for none."""
    if d < 0 or S.dsd[p, d, DSD_KIND] != DK_MEM or n <= 0:
        return 0, 0
    return span(S.dsd, p, d, n, DT_SIZE[dt])


@kernel
def read_reg(S, p, r):
    """General register or special (x, y, width, height, rx, ry, cycle) as int64."""
    special = r - N_REGS
    if special < 0:
        use_register(S, p, r)
        return np.int64(S.regs[p, r])
    if S.pe[p, P_UTHOST] >= 0:  # a microthread reads its PE's specials
        p = S.pe[p, P_UTHOST]
    width = S.cfg[CFG_WIDTH]
    if special == 0:
        return p % width
    if special == 1:
        return p // width
    if special == 2:
        return width
    if special == 3:
        return S.cfg[CFG_HEIGHT]
    if special == 4:
        return p % width - S.pe[p, P_X0]
    if special == 5:
        return p // width - S.pe[p, P_Y0]
    drain(S, p)  # the cycle counter is read after outstanding datapath work
    return S.pe[p, P_CLOCK]
