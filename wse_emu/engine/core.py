"""The run loop: lowest-clock-first scheduling of runnable PEs with a lag window, and the
per-instruction dispatch. Everything here runs inside Numba; Python calls run() once per
batch of work (until done, fault, deadlock or the cycle limit)."""

import numpy as np

from ..isa import CALL_DEPTH, MAX_DIMS, MAX_DSD_LEN, MAX_TASKS
from .control import CTL_SENT, HAS_CONTROL, control_pick, send_control
from .dsd import set_1d, set_extent, span
from .events import EV_IDLE, STALL_RECV, record, stall, task_end
from .fabric import (
    NPOS,
    block_sender,
    ctl_at_head,
    dest_room,
    q_head_time,
    q_pop,
    route_fault,
    send_wavelet,
    walk,
)
from .fp import bf16_bits, f16_bits
from .jit import entry, kernel
from .kinds import (
    C_CPE,
    C_DT,
    C_F0,
    C_F1,
    C_F2,
    C_FN,
    C_MASK,
    C_SEM,
    CFG_LAG,
    CFG_NCOLORS,
    CFG_SRAM,
    CFG_SRAM_ROW,
    CFG_TASK_SWITCH,
    DK_FIN,
    DK_FOUT,
    DK_MEM,
    DSD_ADDR,
    DSD_KIND,
    DSD_LEN,
    DT_BF16,
    DT_F16,
    DT_I8,
    DT_I16,
    F_ALIGN,
    F_BAD_DSD,
    F_BAD_SWITCH,
    F_BAD_TASK,
    F_CALL_DEPTH,
    F_CTL_DATA,
    F_DSD_KIND,
    F_DSD_UNSET,
    F_PC_RANGE,
    F_QUEUE_MISUSE,
    F_SRAM_RANGE,
    F_SRAM_UNDECLARED,
    FN_ABS,
    FN_ADD,
    FN_ALWAYS,
    FN_AND,
    FN_DIV,
    FN_EQ,
    FN_F2H,
    FN_FMAC,
    FN_FTOI,
    FN_GE,
    FN_H2F,
    FN_ITOF,
    FN_LT,
    FN_MAX,
    FN_MIN,
    FN_MUL,
    FN_NE,
    FN_NEG,
    FN_OR,
    FN_RECIP,
    FN_SHL,
    FN_SHR,
    FN_SRA,
    FN_SUB,
    FN_XOR,
    M_ACTIVE,
    M_BUDGET,
    M_DEBUG,
    M_EV_A,
    M_FAULT_PE,
    M_FINISH_PE,
    M_HEAP,
    M_MAX_CYCLES,
    M_PENDING,
    M_RESUME_LIMIT,
    M_RESUME_PE,
    M_ROUTE_VER,
    M_SKIP_PE,
    M_STATUS,
    M_STEP_LEFT,
    M_STEP_PE,
    M_STOP_PE,
    M_STOP_WHY,
    M_STREAM0,
    M_TRACE,
    P_ASYNC,
    P_BUSY,
    P_CEND,
    P_CLOCK,
    P_FARG,
    P_FAULT,
    P_HALTCLK,
    P_IDLE,
    P_IMG,
    P_INSTR,
    P_KEY,
    P_PC,
    P_PICK,
    P_RD,
    P_RECVD,
    P_SP,
    P_STALL,
    P_STATE,
    P_TACT,
    P_TASK,
    P_TBLK,
    P_TSTART,
    P_UTBLK,
    P_UTBUSY,
    P_UTHOST,
    P_WAIT,
    P_WR,
    R_CYCLE_LIMIT,
    R_DEADLOCK,
    R_DONE,
    R_FAULT,
    R_PAUSED,
    R_RUNNING,
    R_STOP,
    S_FAULT,
    S_HALT,
    S_IDLE,
    S_RECV,
    S_RUN,
    S_UTWAIT,
    SEM_ACTIVATE,
    SEM_ALU,
    SEM_ASYNC,
    SEM_BLOCK,
    SEM_BR,
    SEM_CALL,
    SEM_DDIM,
    SEM_DFIN,
    SEM_DFOUT,
    SEM_DINC,
    SEM_DLEN,
    SEM_DMEM,
    SEM_FALU,
    SEM_HALT,
    SEM_LD,
    SEM_MOV,
    SEM_RECV,
    SEM_RET,
    SEM_SEND,
    SEM_SENDCTL,
    SEM_SENDX,
    SEM_ST,
    SEM_SWITCH,
    SEM_UNBLOCK,
    SEM_UTBLOCK,
    SEM_UTUNBLOCK,
    SEM_VRED,
    SEM_VUN,
    STOP_BREAK,
    STOP_FINISH,
    STOP_STEP,
    STOP_WATCH,
)
from .microthread import async_issue, exec_microthread, thread_must_yield, unblock_microthread
from .pipeline import drain, loaded, sync_address
from .sched import heap_pop, make_runnable, must_wait
from .stream import exec_stream
from .vector import BLOCKED, DT_SIZE, bits_to_f32, read_reg, vector_op


@kernel
def wrap32(v):
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


@kernel
def operand(S, p, pc, k):
    """Field k of the instruction at pc: the immediate, or the register/special's value."""
    raw = np.int64(S.code[pc, C_F0 + k])
    if (S.code[pc, C_MASK] >> k) & 1:
        return raw
    return read_reg(S, p, raw)


@kernel
def fault(S, p, code, arg):
    S.pe[p, P_STATE] = S_FAULT
    S.pe[p, P_FAULT] = code
    S.pe[p, P_FARG] = arg
    S.misc[M_STATUS] = R_FAULT
    S.misc[M_FAULT_PE] = p


@kernel
def mem_fault(S, addr, size):
    if addr < 0 or addr + size > S.cfg[CFG_SRAM]:
        return F_SRAM_RANGE
    if addr % size != 0:
        return F_ALIGN
    if addr + size > S.cfg[CFG_SRAM_ROW]:
        return F_SRAM_UNDECLARED
    return 0


PICK_NONE, PICK_STARTED, PICK_LATER = range(3)


@kernel
def pick_task(S, p):
    """Start the activated, unblocked task that is ready first (ties: lowest id). A data task
    takes its wavelet into r0. Returns PICK_NONE when nothing is ready, PICK_LATER when the
    choice is not p's to make yet: a wavelet another PE has still to send could make a data
    task whose queue is empty now win (ready sooner, or as soon with a lower id), so p
    chooses in its turn (sched.must_wait)."""
    pe = S.pe
    img = pe[p, P_IMG]
    nc = S.cfg[CFG_NCOLORS]
    best = -1
    best_t = np.int64(0)
    first_empty = MAX_TASKS  # the lowest unblocked data task with an empty queue
    for t in range(MAX_TASKS):
        entry = S.task_entry[img, t]
        if entry < 0 or (pe[p, P_TBLK] >> t) & 1:
            continue
        color = S.task_color[img, t]
        if color < 0:
            if not (pe[p, P_TACT] >> t) & 1:
                continue
            ready = max(pe[p, P_CLOCK], S.task_at[p, t])
        else:
            qi = p * nc + color
            if S.qcount[qi] == 0:
                first_empty = min(first_empty, t)
                continue
            if ctl_at_head(S, qi):
                continue  # a control task's turn (control_pick)
            ready = max(pe[p, P_CLOCK], q_head_time(S, qi), S.task_at[p, t])
        if best < 0 or ready < best_t:
            best = t
            best_t = ready
    ctl_color = -1
    if S.ctl_task[img, HAS_CONTROL] > 0:
        best, best_t, ctl_color = control_pick(S, p, best, best_t)
        first_empty = -1  # a control wavelet not sent yet could start a control task first
    if best < 0:
        return PICK_NONE
    unknown = first_empty < best or (first_empty < MAX_TASKS and best_t > pe[p, P_CLOCK])
    if unknown and must_wait(S, p, best_t):
        pe[p, P_PICK] = 1
        make_runnable(S, p, best_t)
        return PICK_LATER
    if best_t > pe[p, P_CLOCK]:
        if S.misc[M_TRACE]:
            record(S, EV_IDLE, p, pe[p, P_CLOCK], best_t, 0, 0, 0)
        pe[p, P_IDLE] += best_t - pe[p, P_CLOCK]
        pe[p, P_CLOCK] = best_t
    color = S.task_color[img, best]
    if ctl_color >= 0:  # r0 = the control task ID the wavelet carries
        S.regs[p, 0] = np.int64(q_pop(S, p * nc + ctl_color, pe[p, P_CLOCK]))
        pe[p, P_RECVD] += 1
    elif color < 0:
        pe[p, P_TACT] &= ~(np.int64(1) << best)
    else:
        S.regs[p, 0] = np.int64(q_pop(S, p * nc + color, pe[p, P_CLOCK])) & 0xFFFFFFFF
        pe[p, P_RECVD] += 1
    switch = S.cfg[CFG_TASK_SWITCH]
    pe[p, P_TSTART] = pe[p, P_CLOCK]
    pe[p, P_CLOCK] += switch
    pe[p, P_BUSY] += switch
    pe[p, P_PC] = S.task_entry[img, best]
    pe[p, P_TASK] = best
    pe[p, P_SP] = 0
    return PICK_STARTED


@kernel
def alu(fn, a, b):
    if fn == FN_ADD:
        return wrap32(a + b)
    if fn == FN_SUB:
        return wrap32(a - b)
    if fn == FN_MUL:
        return wrap32(a * b)
    if fn == FN_AND:
        return wrap32(a & b)
    if fn == FN_OR:
        return wrap32(a | b)
    if fn == FN_XOR:
        return wrap32(a ^ b)
    if fn == FN_SHL:
        return wrap32(a << (b & 31))
    if fn == FN_SHR:
        return wrap32((a & 0xFFFFFFFF) >> (b & 31))
    if fn == FN_SRA:
        return wrap32(a >> (b & 31))
    if fn == FN_MIN:
        return min(a, b)
    if fn == FN_MAX:
        return max(a, b)
    if fn == FN_LT:
        return 1 if a < b else 0
    return 1 if a == b else 0  # eq


@kernel
def falu(S, p, pc, fn):
    """Scalar fp32 op; returns (is_int_result, int value, float value)."""
    if fn == FN_H2F:
        return False, 0, np.float64(S.f16tab[operand(S, p, pc, 1) & 0xFFFF])
    a = bits_to_f32(S, operand(S, p, pc, 1))
    if fn == FN_F2H:
        return True, f16_bits(a), 0.0
    b = 0.0
    if fn == FN_RECIP:  # in float64, then rounded to fp32 once: correctly rounded
        return False, 0, 1.0 / a
    if fn != FN_NEG and fn != FN_ABS and fn != FN_ITOF and fn != FN_FTOI and fn != FN_F2H:
        b = bits_to_f32(S, operand(S, p, pc, 2))
    if fn == FN_DIV:  # x/0 is inf, 0/0 NaN (error_model="numpy")
        return False, 0, a / b
    if fn == FN_ADD:
        return False, 0, a + b
    if fn == FN_SUB:
        return False, 0, a - b
    if fn == FN_MUL:
        return False, 0, a * b
    if fn == FN_FMAC:
        return False, 0, np.float64(S.regf[p, S.code[pc, C_F0]]) + a * b
    if fn == FN_MAX or fn == FN_MIN:
        if a != a or b != b:
            return False, 0, np.nan
        return False, 0, (max(a, b) if fn == FN_MAX else min(a, b))
    if fn == FN_NEG:
        return False, 0, -a
    if fn == FN_ABS:
        return False, 0, abs(a)
    if fn == FN_LT:
        return True, (1 if a < b else 0), 0.0
    if fn == FN_ITOF:
        return False, 0, np.float64(np.float32(np.int64(wrap32(operand(S, p, pc, 1)))))
    if fn == FN_FTOI:
        if a != a:
            return True, 0, 0.0
        t = min(max(np.trunc(a), -2147483648.0), 2147483647.0)
        return True, np.int64(t), 0.0
    return True, (1 if a == b else 0), 0.0  # eq


@kernel
def load(S, p, addr, dt):
    if dt == DT_F16:
        S.cvt_f[0] = S.f16tab[S.sram16[p, addr >> 1]]
        return np.int64(S.cvt_u[0])
    if dt == DT_BF16:
        S.cvt_f[0] = S.bf16tab[S.sram16[p, addr >> 1]]
        return np.int64(S.cvt_u[0])
    if dt == DT_I16:
        v = np.int64(S.sram16[p, addr >> 1])
        return v - 65536 if v >= 32768 else v
    if dt == DT_I8:
        v = np.int64(S.sram8[p, addr])
        return v - 256 if v >= 128 else v
    return np.int64(S.sram32[p, addr >> 2])  # i32, f32


@kernel
def store(S, p, addr, dt, bits):
    if dt == DT_F16:
        S.sram16[p, addr >> 1] = f16_bits(bits_to_f32(S, bits))
    elif dt == DT_BF16:
        S.sram16[p, addr >> 1] = bf16_bits(bits_to_f32(S, bits))
    elif dt == DT_I16:
        S.sram16[p, addr >> 1] = bits & 0xFFFF
    elif dt == DT_I8:
        S.sram8[p, addr] = bits & 0xFF
    else:
        S.sram32[p, addr >> 2] = wrap32(bits)


@kernel
def _stop(S, p, why):
    S.misc[M_STOP_PE] = p
    S.misc[M_STOP_WHY] = why
    S.misc[M_STATUS] = R_STOP
    return True


@kernel
def write_range(S, p, pc):
    """(first byte, end) the instruction at pc would write to SRAM, or (0, 0)."""
    code = S.code
    sem = code[pc, C_SEM]
    if sem == SEM_ST:
        base = code[pc, C_F0]
        addr = code[pc, C_F1] + (read_reg(S, p, base) if base >= 0 else 0)
        return addr, addr + DT_SIZE[code[pc, C_DT]]
    if sem >= SEM_VUN and sem <= SEM_VRED and sem != SEM_VRED:
        d = code[pc, C_F0]
        if S.dsd[p, d, DSD_KIND] != DK_MEM:
            return 0, 0
        return span(S.dsd, p, d, S.dsd[p, d, DSD_LEN], DT_SIZE[code[pc, C_DT]])
    return 0, 0


@kernel
def debug_stop(S, p, pc):
    """Before PE p runs the instruction at pc: stop for an event of the last instruction, a
    finished step, a breakpoint or a write into a watched range? (Only with M_DEBUG set.)"""
    misc = S.misc
    if misc[M_PENDING] != 0:
        why = misc[M_PENDING]
        misc[M_PENDING] = 0
        return _stop(S, misc[M_STOP_PE], why)
    if misc[M_STEP_PE] == p and S.pe[p, P_INSTR] >= misc[M_STEP_LEFT]:
        misc[M_STEP_PE] = -1
        return _stop(S, p, STOP_STEP)
    if misc[M_SKIP_PE] == p:
        misc[M_SKIP_PE] = -1
        return False
    if S.bp[p, pc]:
        return _stop(S, p, STOP_BREAK)
    if S.watch[0, 0] >= 0:
        lo, hi = write_range(S, p, pc)
        for w in range(S.watch.shape[0]):
            if S.watch[w, 0] == p and lo < S.watch[w, 2] and S.watch[w, 1] < hi:
                misc[M_EV_A] = w
                return _stop(S, p, STOP_WATCH)
    return False


@kernel
def task_end_stops(S, p):
    """PE p ended a task (or halted): stop if the debugger waits for that."""
    if S.misc[M_FINISH_PE] == p:
        S.misc[M_FINISH_PE] = -1
        return _stop(S, p, STOP_FINISH)
    if S.misc[M_STEP_PE] == p:  # a step that ends the task or halts stops there
        S.misc[M_STEP_PE] = -1
        return _stop(S, p, STOP_STEP)
    return False


@kernel
def exec_pe(S, p, limit):
    """Run PE p until it blocks, halts, faults, ends its last task, or passes limit."""
    pe = S.pe
    code = S.code
    nc = S.cfg[CFG_NCOLORS]
    end = pe[p, P_CEND]  # branch targets are checked at link time; these are not:
    # falling through the last instruction, and returning past it from a final call
    if pe[p, P_PICK]:
        pe[p, P_PICK] = 0
        picked = pick_task(S, p)
        if picked != PICK_STARTED:
            if picked == PICK_NONE:
                pe[p, P_STATE] = S_IDLE
            return
    while True:
        if pe[p, P_CLOCK] > limit:
            make_runnable(S, p, pe[p, P_CLOCK])
            return
        if S.misc[M_BUDGET] <= 0:  # paused: run() resumes p with this limit, off the heap
            pe[p, P_STATE] = S_RUN
            pe[p, P_KEY] = pe[p, P_CLOCK]
            S.misc[M_RESUME_PE] = p
            S.misc[M_RESUME_LIMIT] = limit
            return
        pc = pe[p, P_PC]
        if pe[p, P_UTBUSY] != 0 and thread_must_yield(S, p, pc):
            return
        if S.misc[M_DEBUG] and debug_stop(S, p, pc):
            make_runnable(S, p, pe[p, P_CLOCK])
            return
        S.misc[M_BUDGET] -= 1
        sem = code[pc, C_SEM]
        if sem >= SEM_VUN and sem <= SEM_VRED:
            if pe[p, P_ASYNC] != 0:
                r = async_issue(S, p, pc)
            else:
                r = vector_op(S, p, p, pc)
            if r == BLOCKED:
                return
            if r < 0:
                fault(S, p, -r, pe[p, P_FARG])
                return
            pe[p, P_INSTR] += 1
            if pc + 1 >= end:
                fault(S, p, F_PC_RANGE, pc + 1)
                return
            pe[p, P_PC] = pc + 1
            continue
        cost = code[pc, C_CPE]
        next_pc = pc + 1
        fn = code[pc, C_FN]
        if sem == SEM_MOV:
            S.regs[p, code[pc, C_F0]] = wrap32(operand(S, p, pc, 1))
        elif sem == SEM_ALU:
            S.regs[p, code[pc, C_F0]] = alu(fn, operand(S, p, pc, 1), operand(S, p, pc, 2))
        elif sem == SEM_FALU:
            is_int, iv, fv = falu(S, p, pc, fn)
            if is_int:
                S.regs[p, code[pc, C_F0]] = iv
            else:
                S.regf[p, code[pc, C_F0]] = np.float32(fv)
        elif sem == SEM_BR:
            if fn == FN_ALWAYS:
                next_pc = code[pc, C_F0]
            else:
                a = operand(S, p, pc, 0)
                b = wrap32(operand(S, p, pc, 1))
                if (
                    (fn == FN_EQ and a == b)
                    or (fn == FN_NE and a != b)
                    or (fn == FN_LT and a < b)
                    or (fn == FN_GE and a >= b)
                ):
                    next_pc = code[pc, C_F2]
        elif sem == SEM_LD or sem == SEM_ST:
            k = 1 if sem == SEM_LD else 0
            base = code[pc, C_F0 + k]
            addr = code[pc, C_F0 + k + 1] + (read_reg(S, p, base) if base >= 0 else 0)
            dt = code[pc, C_DT]
            err = mem_fault(S, addr, DT_SIZE[dt])
            if err:
                fault(S, p, err, addr)
                return
            sync_address(S, p, addr, addr + DT_SIZE[dt])
            if sem == SEM_LD:
                S.regs[p, code[pc, C_F0]] = wrap32(load(S, p, addr, dt))
                loaded(S, p, code[pc, C_F0])
                pe[p, P_RD] += DT_SIZE[dt]
            else:
                store(S, p, addr, dt, operand(S, p, pc, 2))
                pe[p, P_WR] += DT_SIZE[dt]
        elif sem == SEM_DMEM or sem == SEM_DFIN or sem == SEM_DFOUT:
            d = code[pc, C_F0]
            length = operand(S, p, pc, 3 if sem == SEM_DMEM else 2)
            if length < 0 or length > MAX_DSD_LEN:
                fault(S, p, F_BAD_DSD, length)
                return
            if sem == SEM_DMEM:
                base = code[pc, C_F1]
                addr = code[pc, C_F2] + (read_reg(S, p, base) if base >= 0 else 0)
                set_1d(S.dsd, p, d, DK_MEM, addr, length, operand(S, p, pc, 4))
            else:
                kind = DK_FIN if sem == SEM_DFIN else DK_FOUT
                set_1d(S.dsd, p, d, kind, code[pc, C_F1], length, 1)
        elif sem == SEM_DLEN or sem == SEM_DDIM:
            d = code[pc, C_F0]
            k = 0 if sem == SEM_DLEN else code[pc, C_F1]
            if k < 0 or k >= MAX_DIMS:  # the assembler checks k; a foreign binary may not
                fault(S, p, F_BAD_DSD, k)
                return
            extent = operand(S, p, pc, 1 if sem == SEM_DLEN else 2)
            stride = operand(S, p, pc, 3) if sem == SEM_DDIM else 0
            err, arg = set_extent(S.dsd, p, d, k, extent, stride)
            if err != 0:
                fault(S, p, err, arg)
                return
        elif sem == SEM_DINC:
            d = code[pc, C_F0]
            if S.dsd[p, d, DSD_KIND] != DK_MEM:
                fault(S, p, F_DSD_UNSET if S.dsd[p, d, DSD_KIND] == 0 else F_DSD_KIND, d)
                return
            step = operand(S, p, pc, 1) * DT_SIZE[code[pc, C_DT]]
            S.dsd[p, d, DSD_ADDR] = wrap32(S.dsd[p, d, DSD_ADDR] + step)
        elif sem == SEM_SEND or sem == SEM_SENDX:
            color = code[pc, C_F0]
            nw = walk(S, p, color)
            if nw < 0:
                fault(S, p, route_fault(nw), color)
                return
            room, q = dest_room(S, p, p, color, nw)
            if room <= 0:
                block_sender(S, p, color, q)
                return
            if sem == SEM_SEND:
                payload = operand(S, p, pc, 1) & 0xFFFFFFFF
            else:
                payload = ((operand(S, p, pc, 1) & 0xFFFF) << 16) | (operand(S, p, pc, 2) & 0xFFFF)
            send_wavelet(S, p, color, payload, pe[p, P_CLOCK], nw)
        elif sem == SEM_RECV:
            color = code[pc, C_F1]
            if S.color_task[pe[p, P_IMG], color] >= 0:
                fault(S, p, F_QUEUE_MISUSE, color)
                return
            qi = p * nc + color
            if S.qcount[qi] == 0:
                pe[p, P_STATE] = S_RECV
                pe[p, P_WAIT] = color
                return
            if ctl_at_head(S, qi):
                fault(S, p, F_CTL_DATA, color)
                return
            arrive = q_head_time(S, qi)
            if arrive > pe[p, P_CLOCK]:
                if S.misc[M_TRACE]:
                    stall(S, p, arrive, STALL_RECV, color)
                pe[p, P_STALL] += arrive - pe[p, P_CLOCK]
                pe[p, P_CLOCK] = arrive
            S.regs[p, code[pc, C_F0]] = wrap32(np.int64(q_pop(S, qi, pe[p, P_CLOCK])))
            pe[p, P_RECVD] += 1
        elif sem == SEM_ACTIVATE or sem == SEM_BLOCK or sem == SEM_UNBLOCK:
            t = code[pc, C_F0]
            if t < 0 or t >= MAX_TASKS or S.task_entry[pe[p, P_IMG], t] < 0:
                fault(S, p, F_BAD_TASK, t)
                return
            bit = np.int64(1) << t
            if sem == SEM_ACTIVATE:
                pe[p, P_TACT] |= bit
            elif sem == SEM_BLOCK:
                pe[p, P_TBLK] |= bit
            else:
                pe[p, P_TBLK] &= ~bit
        elif sem == SEM_ASYNC:  # the next instruction, a vector op, runs on a microthread
            pe[p, P_ASYNC] = pc + 1
        elif sem == SEM_UTBLOCK:
            pe[p, P_UTBLK] |= np.int64(1) << code[pc, C_F0]
        elif sem == SEM_UTUNBLOCK:
            unblock_microthread(S, p, code[pc, C_F0])
        elif sem == SEM_SENDCTL:
            r = send_control(S, p, code[pc, C_F0], code[pc, C_F1], code[pc, C_F2])
            if r != CTL_SENT:
                if r < 0:
                    fault(S, p, -r, pe[p, P_FARG])
                return
        elif sem == SEM_SWITCH:
            position = operand(S, p, pc, 1)
            if position < 0 or position >= NPOS:
                fault(S, p, F_BAD_SWITCH, position)
                return
            S.rpos[p * nc + code[pc, C_F0]] = position
            S.misc[M_ROUTE_VER] += 1
        elif sem == SEM_CALL:
            sp = pe[p, P_SP]
            if sp >= CALL_DEPTH:
                fault(S, p, F_CALL_DEPTH, sp)
                return
            S.stack[p, sp] = pc + 1
            pe[p, P_SP] = sp + 1
            next_pc = code[pc, C_F0]
        elif sem == SEM_RET:
            sp = pe[p, P_SP]
            if sp > 0:
                pe[p, P_SP] = sp - 1
                next_pc = S.stack[p, sp - 1]
            else:
                pe[p, P_CLOCK] += cost
                pe[p, P_BUSY] += cost
                pe[p, P_INSTR] += 1
                if S.misc[M_TRACE]:
                    task_end(S, p)
                if S.misc[M_DEBUG] and task_end_stops(S, p):
                    pe[p, P_PICK] = 1  # resuming picks the next task
                    make_runnable(S, p, pe[p, P_CLOCK])
                    return
                picked = pick_task(S, p)
                if picked != PICK_STARTED:
                    if picked == PICK_NONE:
                        pe[p, P_STATE] = S_IDLE
                    return
                continue
        elif sem == SEM_HALT:
            if pe[p, P_UTBUSY] != 0:  # the PE ends when its microthreads have
                pe[p, P_STATE] = S_UTWAIT
                pe[p, P_WAIT] = -1
                return
            drain(S, p)  # the PE ends when its datapath has written its last result
            pe[p, P_CLOCK] += cost
            pe[p, P_BUSY] += cost
            pe[p, P_INSTR] += 1
            pe[p, P_STATE] = S_HALT
            pe[p, P_HALTCLK] = pe[p, P_CLOCK]
            if S.misc[M_TRACE]:
                task_end(S, p)
            S.misc[M_ACTIVE] -= 1
            if S.misc[M_DEBUG]:
                task_end_stops(S, p)
            return
        pe[p, P_CLOCK] += cost
        pe[p, P_BUSY] += cost
        pe[p, P_INSTR] += 1
        if next_pc >= end:
            fault(S, p, F_PC_RANGE, next_pc)
            return
        pe[p, P_PC] = next_pc


@entry
def run(S, max_cycles):
    """Run until every PE has halted (R_DONE), a fault (R_FAULT), no PE can run (R_DEADLOCK),
    the slowest runnable PE passes max_cycles (R_CYCLE_LIMIT), or about misc[M_BUDGET]
    instructions have run (R_PAUSED). Resumable from any of these."""
    misc = S.misc
    misc[M_STATUS] = R_RUNNING
    misc[M_MAX_CYCLES] = max_cycles
    lag = S.cfg[CFG_LAG]
    while misc[M_HEAP] > 0 or misc[M_RESUME_PE] >= 0:
        if misc[M_RESUME_PE] >= 0:
            p = misc[M_RESUME_PE]
            misc[M_RESUME_PE] = -1
            limit = min(misc[M_RESUME_LIMIT], max_cycles)
        else:
            p = S.heap[0]
            if S.pe[p, P_KEY] > max_cycles:
                misc[M_STATUS] = R_CYCLE_LIMIT
                misc[M_FAULT_PE] = p
                return misc[M_STATUS]
            heap_pop(S)
            limit = max_cycles
            if misc[M_HEAP] > 0:
                limit = min(limit, S.pe[S.heap[0], P_KEY] + lag)
        if p >= misc[M_STREAM0]:
            exec_stream(S, p, limit)
        elif S.pe[p, P_UTHOST] >= 0:
            err = exec_microthread(S, p, limit)
            if err != 0:
                host = S.pe[p, P_UTHOST]
                fault(S, host, err, S.pe[host, P_FARG])
        else:
            exec_pe(S, p, limit)
        if misc[M_PENDING] != 0 and misc[M_STATUS] == R_RUNNING:  # an event as p blocked
            why = misc[M_PENDING]
            misc[M_PENDING] = 0
            _stop(S, misc[M_STOP_PE], why)
        if misc[M_STATUS] != R_RUNNING:
            return misc[M_STATUS]
        if misc[M_BUDGET] <= 0:
            misc[M_STATUS] = R_PAUSED
            return R_PAUSED
    misc[M_STATUS] = R_DONE if misc[M_ACTIVE] == 0 else R_DEADLOCK
    return misc[M_STATUS]


@entry
def launch(S, start_pc):
    """Start the main task at start_pc[p] on every PE that has one (-1: no program)."""
    for p in range(start_pc.shape[0]):
        if start_pc[p] < 0:
            continue
        if S.pe[p, P_STATE] != S_HALT and S.pe[p, P_STATE] != 0 and S.pe[p, P_STATE] != S_IDLE:
            continue
        if S.pe[p, P_STATE] != S_IDLE:
            S.misc[M_ACTIVE] += 1
        S.pe[p, P_PC] = start_pc[p]
        S.pe[p, P_TASK] = -1
        S.pe[p, P_SP] = 0
        S.pe[p, P_TSTART] = S.pe[p, P_CLOCK]
        make_runnable(S, p, S.pe[p, P_CLOCK])
