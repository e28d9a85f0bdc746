"""Vector (DSD) instructions: element reads and writes per dtype, the arithmetic, and the
op loop that charges startup + ceil(n / width) cycles, or streams one element per cycle
when a fabric operand is involved, suspending with its progress when the fabric stalls."""

import math

import numpy as np
from numba import njit

from ..isa import N_REGS
from .fabric import (
    block_sender,
    dest_full,
    q_head_time,
    q_pop,
    route_fault,
    send_wavelet,
    walk,
)
from .fp import bf16_bits, f16_bits
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
    CFG_HEIGHT,
    CFG_NCOLORS,
    CFG_SRAM,
    CFG_STARTUP,
    CFG_STRIDE0,
    CFG_WIDTH,
    DK_FIN,
    DK_FOUT,
    DK_MEM,
    DT_BF16,
    DT_F16,
    DT_F32,
    DT_I16,
    DT_I32,
    F_ALIGN,
    F_DSD_KIND,
    F_DSD_LEN,
    F_DSD_UNSET,
    F_QUEUE_MISUSE,
    F_SRAM_RANGE,
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
    P_BUSY,
    P_CLOCK,
    P_FARG,
    P_IMG,
    P_RD,
    P_STALL,
    P_STATE,
    P_VACTIVE,
    P_VPROG,
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

DT_SIZE = np.array([2, 2, 4, 2, 1, 4], np.int64)
INV_SQRT2 = 0.7071067811865476

DONE, BLOCKED = 0, 1


@njit(cache=True)
def is_float(dt):
    return dt <= DT_F32


@njit(cache=True)
def read_mem(S, p, addr, dt):
    if dt == DT_F16:
        return np.float64(S.f16tab[S.sram16[p, addr >> 1]])
    if dt == DT_BF16:
        return np.float64(S.bf16tab[S.sram16[p, addr >> 1]])
    if dt == DT_F32:
        return np.float64(S.sramf[p, addr >> 2])
    if dt == DT_I16:
        v = np.int64(S.sram16[p, addr >> 1])
        return np.float64(v - 65536 if v >= 32768 else v)
    if dt == DT_I32:
        return np.float64(S.sram32[p, addr >> 2])
    v = np.int64(S.sram8[p, addr])
    return np.float64(v - 256 if v >= 128 else v)


@njit(cache=True)
def write_mem(S, p, addr, dt, v):
    if dt == DT_F16:
        S.sram16[p, addr >> 1] = f16_bits(v)
    elif dt == DT_BF16:
        S.sram16[p, addr >> 1] = bf16_bits(v)
    elif dt == DT_F32:
        S.sramf[p, addr >> 2] = np.float32(v)
    elif dt == DT_I16:
        S.sram16[p, addr >> 1] = np.int64(v) & 0xFFFF
    elif dt == DT_I32:
        S.sram32[p, addr >> 2] = ((np.int64(v) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
    else:
        S.sram8[p, addr] = np.int64(v) & 0xFF


@njit(cache=True)
def bits_to_f32(S, bits):
    S.cvt_u[0] = bits & 0xFFFFFFFF
    return np.float64(S.cvt_f[0])


@njit(cache=True)
def f32_to_bits(S, v):
    S.cvt_f[0] = np.float32(v)
    return np.int64(S.cvt_u[0])


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def round_to(S, v, dt):
    """v rounded to dtype dt, as float64 (for scalars entering a vector op)."""
    if dt == DT_F16:
        return np.float64(S.f16tab[f16_bits(v)])
    if dt == DT_BF16:
        return np.float64(S.bf16tab[bf16_bits(v)])
    if dt == DT_F32:
        return np.float64(np.float32(v))
    return v


@njit(cache=True)
def saturate(v, dt):
    if v != v:
        return 0.0
    v = np.rint(v)
    lo, hi = (-32768.0, 32767.0) if dt == DT_I16 else (-128.0, 127.0)
    return min(max(v, lo), hi)


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True)
def stride_width(S, stride):
    if stride == 0 or stride == 1:
        return 0
    return S.cfg[CFG_STRIDE0 + (stride % 8)]


@njit(cache=True)
def check_operand(S, p, d, n, dt, want_src):
    """0, or a fault code for DSD d used with n elements of dtype dt (P_FARG says where)."""
    kind = S.dsd[p, d, 0]
    S.pe[p, P_FARG] = d
    if kind == DK_MEM:
        base = S.dsd[p, d, 1]
        length = S.dsd[p, d, 2]
        stride = S.dsd[p, d, 3]
        if want_src and length < n:
            return F_DSD_LEN
        size = DT_SIZE[dt]
        S.pe[p, P_FARG] = base
        if base % size != 0:
            return F_ALIGN
        last = base + (n - 1) * stride * size if n > 0 else base
        lo = min(base, last)
        hi = max(base, last) + size
        if lo < 0 or hi > S.cfg[CFG_SRAM]:
            S.pe[p, P_FARG] = lo if lo < 0 else hi - size
            return F_SRAM_RANGE
        return 0
    if kind == DK_FIN:
        if not want_src:
            return F_DSD_KIND
        img = S.pe[p, P_IMG]
        if S.color_task[img, S.dsd[p, d, 1]] >= 0:
            S.pe[p, P_FARG] = S.dsd[p, d, 1]
            return F_QUEUE_MISUSE
        return 0
    if kind == DK_FOUT:
        if want_src:
            return F_DSD_KIND
        nw = walk(S, p, S.dsd[p, d, 1])
        if nw < 0:
            S.pe[p, P_FARG] = S.dsd[p, d, 1]
            return route_fault(nw)
        return 0
    return F_DSD_UNSET


@njit(cache=True, error_model="numpy")
def vector_op(S, p, pc):
    """Run (or resume) the vector instruction at pc on PE p. Returns DONE, BLOCKED (the PE's
    state says on what), or minus a fault code (P_FARG names the DSD register)."""
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
    n = S.dsd[p, dst if dst >= 0 else s0, 2]
    # validate operands (cheap; also on resume)
    if dst >= 0:
        err = check_operand(S, p, dst, n, dt, False)
        if err == 0 and reads_dst and S.dsd[p, dst, 0] != DK_MEM:
            S.pe[p, P_FARG] = dst
            err = F_DSD_KIND
        if err != 0:
            return -err
    for d in (s0, s1):
        if d >= 0:
            err = check_operand(S, p, d, n, dt2, True)
            if err != 0:
                return -err
    sval = 0.0
    if scalar_field >= 0:
        raw = code[pc, C_F0 + scalar_field]
        if not (mask >> scalar_field) & 1:
            raw = read_reg(S, p, raw)
        if is_float(dt2):
            sval = round_to(S, bits_to_f32(S, raw), dt2)
        else:
            sval = np.float64(raw)
    # width from the cost table and stride rules
    width = code[pc, C_WIDTH]
    fabric = False
    for d in (dst, s0, s1):
        if d >= 0:
            kind = S.dsd[p, d, 0]
            if kind == DK_MEM:
                sw = stride_width(S, S.dsd[p, d, 3])
                if sw > 0 and sw < width:
                    width = sw
            else:
                fabric = True
    cpe = code[pc, C_CPE]
    nc = S.cfg[CFG_NCOLORS]
    pe = S.pe
    i = 0
    if fabric:
        if pe[p, P_VACTIVE] == 0:
            pe[p, P_VACTIVE] = 1
            pe[p, P_VPROG] = 0
            S.acc[p] = -np.inf if fn == FN_MAX else 0.0
            startup = S.cfg[CFG_STARTUP]
            pe[p, P_CLOCK] += startup
            pe[p, P_BUSY] += startup
        i = pe[p, P_VPROG]
    else:
        S.acc[p] = -np.inf if fn == FN_MAX else 0.0
    acc = S.acc[p]
    int_dst = not is_float(dt)
    while i < n:
        if fabric:
            if dst >= 0 and S.dsd[p, dst, 0] == DK_FOUT:
                nw = walk(S, p, S.dsd[p, dst, 1])
                q = dest_full(S, p, S.dsd[p, dst, 1], nw)
                if q >= 0:
                    pe[p, P_VPROG] = i
                    S.acc[p] = acc
                    block_sender(S, p, S.dsd[p, dst, 1], q)
                    return BLOCKED
            for d in (s0, s1):
                if d >= 0 and S.dsd[p, d, 0] == DK_FIN:
                    color = S.dsd[p, d, 1]
                    if S.qcount[p * nc + color] == 0:
                        pe[p, P_VPROG] = i
                        S.acc[p] = acc
                        pe[p, P_STATE] = S_RECV
                        pe[p, P_WAIT] = color
                        return BLOCKED
        a = 0.0
        b = sval
        for k in range(2):
            d = s0 if k == 0 else s1
            if d < 0:
                continue
            if S.dsd[p, d, 0] == DK_MEM:
                v = read_mem(S, p, S.dsd[p, d, 1] + i * S.dsd[p, d, 3] * DT_SIZE[dt2], dt2)
            else:
                qi = p * nc + S.dsd[p, d, 1]
                arrive = q_head_time(S, qi)
                if arrive > pe[p, P_CLOCK]:
                    pe[p, P_STALL] += arrive - pe[p, P_CLOCK]
                    pe[p, P_CLOCK] = arrive
                v = payload_value(S, q_pop(S, qi, pe[p, P_CLOCK]), dt2)
            if k == 0:
                a = v
            else:
                b = v
        if sem == SEM_VRED:
            if fn == FN_SUM:
                acc = acc + a
            elif fn == FN_DOT:
                acc = acc + a * b
            elif acc == acc and (a != a or a > acc):
                acc = a
            if not int_dst:
                acc = np.float64(np.float32(acc))
        else:
            daddr = 0
            if S.dsd[p, dst, 0] == DK_MEM:
                daddr = S.dsd[p, dst, 1] + i * S.dsd[p, dst, 3] * DT_SIZE[dt]
            if sem == SEM_VUN:
                r = unary(fn, a)
            elif sem == SEM_VFILL:
                r = b
            elif sem == SEM_VBIN or sem == SEM_VBINS:
                r = binary(fn, a, b)
            elif sem == SEM_VCVT:
                r = saturate(a, dt) if int_dst else a
            else:
                r = read_mem(S, p, daddr, dt) + a * b
            if S.dsd[p, dst, 0] == DK_MEM:
                write_mem(S, p, daddr, dt, r)
            else:
                color = S.dsd[p, dst, 1]
                nw = walk(S, p, color)
                send_wavelet(S, p, color, value_payload(S, r, dt), pe[p, P_CLOCK], nw)
        if fabric:
            pe[p, P_CLOCK] += cpe
            pe[p, P_BUSY] += cpe
        i += 1
    if sem == SEM_VRED:
        if int_dst:
            S.regs[p, f0] = np.int64(acc) & 0xFFFFFFFF
        else:
            S.regf[p, f0] = np.float32(acc)
    if not fabric:
        cycles = S.cfg[CFG_STARTUP] + ((n + width - 1) // width) * cpe
        pe[p, P_CLOCK] += cycles
        pe[p, P_BUSY] += cycles
    pe[p, P_VACTIVE] = 0
    pe[p, P_VPROG] = 0
    flops = code[pc, C_FLOPS]
    if flops > 0 and is_float(dt2):
        cat = 3 if dt != dt2 else dt
        S.flops[p, cat] += flops * n
    nmem_src = 0
    for d in (s0, s1):
        if d >= 0 and S.dsd[p, d, 0] == DK_MEM:
            nmem_src += 1
    pe[p, P_RD] += n * (nmem_src * DT_SIZE[dt2] + (DT_SIZE[dt] if reads_dst else 0))
    if dst >= 0 and S.dsd[p, dst, 0] == DK_MEM:
        pe[p, P_WR] += n * DT_SIZE[dt]
    return DONE


@njit(cache=True)
def read_reg(S, p, r):
    """General register or special (x, y, width, height, rx, ry, cycle) as int64."""
    special = r - N_REGS
    if special < 0:
        return np.int64(S.regs[p, r])
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
    return S.pe[p, P_CLOCK]
