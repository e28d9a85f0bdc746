"""Microthreads: after an `async U, T` prefix, the next vector op (it must have a fabric
operand) runs on microthread U of its PE beside the thread, and activates (or unblocks)
task T when it completes.

Each microthread is a scheduler row of its own: rows n_pe.. of S.pe, made at load for the
PEs whose program has an `async` (CFG_MICROTHREADS rows each; pe[p, P_UTBASE] is the first,
pe[e, P_UTHOST] the PE). A row has its own clock and a copy of the PE's DSD and general
registers as they were at issue, and it blocks and wakes on queues like a PE, so the
fabric and stream code serve it unchanged; SRAM, queues, routes and statistics are its
PE's (vector.stream's p and h).

Timing:
- the op starts like a synchronous fabric op, vector_startup after issue (and after the
  same microthread's previous op is done: two ops on one microthread run one after the
  other; the thread waits at a third `async` on a busy microthread until it is free);
- the thread pays its issue slot only (the `async` prefix costs `async_flag` cycles, 0);
- the datapath is shared: the busy cycles of a microthread's elements that fall inside
  the thread's running memory-only op delay that op's end by as many cycles (the
  microthread, fed by the fabric, takes precedence);
- on completion, its last result written (drain after its last element), it activates or
  unblocks its task; the task starts no earlier than that cycle (S.task_at);
- `halt` waits for the PE's microthreads; `utblock U` pauses U before its next batch of
  elements, `utunblock U` lets it go on.
Not modelled: bank conflicts between a microthread's accesses and the thread's (each op's
bank cost is its own); contention with the thread's own synchronous fabric ops.
Known limit: the share is decided when the microthread's elements are emulated, against the
thread's ops issued so far, so cycles can move slightly with the lag window (README)."""

from ..isa import N_DSDS, N_FIELDS, N_REGS, SPECIAL_BASE, SPECIALS
from .events import STALL_UT, stall
from .fabric import vector_operands
from .jit import kernel
from .kinds import (
    C_F0,
    C_F1,
    C_FN,
    C_MASK,
    C_SEM,
    CFG_ISSUE,
    DK_FIN,
    DK_FOUT,
    F_ASYNC_OPERAND,
    FN_ACTIVATE,
    M_BUDGET,
    M_RESUME_LIMIT,
    M_RESUME_PE,
    M_TRACE,
    NDSDF,
    P_ASYNC,
    P_BUSY,
    P_CLOCK,
    P_FARG,
    P_KEY,
    P_PC,
    P_PICK,
    P_STALL,
    P_STATE,
    P_TACT,
    P_TBLK,
    P_UTBASE,
    P_UTBLK,
    P_UTBUSY,
    P_UTHOST,
    P_UTID,
    P_VACTIVE,
    P_VDONE,
    P_VFREE,
    P_VPROG,
    P_VSTART,
    P_WAIT,
    S_IDLE,
    S_RUN,
    S_UTPAUSE,
    S_UTWAIT,
    SEM_HALT,
    SEM_LD,
    SEM_ST,
    SEM_VRED,
    SEM_VUN,
)
from .sched import make_runnable, must_wait
from .vector import BLOCKED, DONE, vector_op

CYCLE_REG = SPECIAL_BASE + SPECIALS.index("cycle")


@kernel
def async_issue(S, p, pc):
    """PE p's thread reaches the vector op at pc after an `async` prefix: hand it to the
    prefix's microthread. DONE (issued), BLOCKED (that microthread is busy: the thread
    waits, state S_UTWAIT), or minus a fault code."""
    pe = S.pe
    apc = pe[p, P_ASYNC] - 1
    u = S.code[apc, C_F0]
    if (pe[p, P_UTBUSY] >> u) & 1:
        pe[p, P_STATE] = S_UTWAIT
        pe[p, P_WAIT] = u
        return BLOCKED
    dst, s0, s1 = vector_operands(S, pc)
    fabric = False
    for d in (dst, s0, s1):
        if d >= 0 and (S.dsd[p, d, 0] == DK_FIN or S.dsd[p, d, 0] == DK_FOUT):
            fabric = True
    if not fabric:
        pe[p, P_FARG] = u
        return -F_ASYNC_OPERAND
    e = pe[p, P_UTBASE] + u
    for d in range(N_DSDS):
        for f in range(NDSDF):
            S.dsd[e, d, f] = S.dsd[p, d, f]
    for r in range(N_REGS):
        S.regs[e, r] = S.regs[p, r]
    pe[e, P_PC] = pc
    pe[e, P_ASYNC] = apc + 1
    pe[e, P_VACTIVE] = 0
    pe[e, P_VPROG] = 0
    pe[e, P_CLOCK] = max(pe[e, P_CLOCK], pe[p, P_CLOCK])
    pe[p, P_UTBUSY] |= 1 << u
    pe[p, P_ASYNC] = 0
    make_runnable(S, e, pe[e, P_CLOCK])
    pe[p, P_CLOCK] += S.cfg[CFG_ISSUE]
    pe[p, P_BUSY] += S.cfg[CFG_ISSUE]
    return DONE


@kernel
def _share_datapath(S, h, t0, t1, busy):
    """A microthread of h was busy `busy` cycles between t0 and t1: as many of them as fall
    in the datapath's current busy period with the thread's memory ops [VSTART, VFREE)
    delay the last of those ops."""
    lo = max(t0, S.pe[h, P_VSTART])
    hi = min(t1, S.pe[h, P_VFREE])
    stolen = min(busy, hi - lo)
    if stolen > 0:
        S.pe[h, P_VFREE] += stolen
        S.pe[h, P_VDONE] += stolen


@kernel
def _complete(S, e, h):
    """Microthread row e finished its op: act on its task, free it, wake its PE's thread if
    it waits for that."""
    pe = S.pe
    u = pe[e, P_UTID]
    apc = pe[e, P_ASYNC] - 1
    task = S.code[apc, C_F1]
    done = pe[e, P_VDONE]
    bit = 1 << task
    if S.code[apc, C_FN] == FN_ACTIVATE:
        pe[h, P_TACT] |= bit
    else:
        pe[h, P_TBLK] &= ~bit
    S.task_at[h, task] = max(S.task_at[h, task], done)
    pe[h, P_UTBUSY] &= ~(1 << u)
    pe[e, P_STATE] = S_IDLE
    state = pe[h, P_STATE]
    if state == S_IDLE:
        pe[h, P_PICK] = 1
        make_runnable(S, h, max(pe[h, P_CLOCK], done))
    elif state == S_UTWAIT and (pe[h, P_WAIT] < 0 or pe[h, P_WAIT] == u):
        if pe[h, P_CLOCK] < done:
            if S.misc[M_TRACE]:
                stall(S, h, done, STALL_UT, u)
            pe[h, P_STALL] += done - pe[h, P_CLOCK]
            pe[h, P_CLOCK] = done
        make_runnable(S, h, pe[h, P_CLOCK])


@kernel
def exec_microthread(S, e, limit):
    """Run microthread row e's op until it blocks or completes. Returns 0, or a fault code
    (the op's pc is then put in its PE's pc, so the fault names the op's line)."""
    pe = S.pe
    h = pe[e, P_UTHOST]
    if pe[e, P_CLOCK] > limit:
        make_runnable(S, e, pe[e, P_CLOCK])
        return 0
    if S.misc[M_BUDGET] <= 0:  # paused: run() resumes e with this limit, off the heap
        pe[e, P_STATE] = S_RUN
        pe[e, P_KEY] = pe[e, P_CLOCK]
        S.misc[M_RESUME_PE] = e
        S.misc[M_RESUME_LIMIT] = limit
        return 0
    S.misc[M_BUDGET] -= 1
    if (pe[h, P_UTBLK] >> pe[e, P_UTID]) & 1:
        pe[e, P_STATE] = S_UTPAUSE
        return 0
    t0 = pe[e, P_CLOCK]
    b0 = pe[e, P_BUSY]
    r = vector_op(S, e, h, pe[e, P_PC])
    _share_datapath(S, h, t0, pe[e, P_CLOCK], pe[e, P_BUSY] - b0)
    if r == BLOCKED:
        return 0
    if r < 0:
        pe[h, P_PC] = pe[e, P_PC]
        pe[h, P_FARG] = pe[e, P_FARG]
        return -r
    _complete(S, e, h)
    return 0


@kernel
def _waits_on_datapath(S, pc):
    """Can the instruction at pc make the thread wait for its datapath (pipeline.py): halt,
    a load or store, a reduction, a fabric op on the thread, a read of %cycle?"""
    code = S.code
    sem = code[pc, C_SEM]
    if sem == SEM_HALT or sem == SEM_LD or sem == SEM_ST or (sem >= SEM_VUN and sem <= SEM_VRED):
        return True
    for k in range(N_FIELDS):
        if not (code[pc, C_MASK] >> k) & 1 and code[pc, C_F0 + k] == CYCLE_REG:
            return True
    return False


@kernel
def thread_must_yield(S, p, pc):
    """PE p has busy microthreads and its thread is about to run an instruction that may wait
    for the datapath until its work is done: it goes on only once every other runnable row
    (its microthreads, and the PEs that feed them) has caught up with that cycle, so the
    microthreads' share of the datapath is known when the thread waits. Else p is put back
    on the heap at that cycle and True returned (the instruction runs again then)."""
    t = S.pe[p, P_VDONE]
    if t <= S.pe[p, P_CLOCK] or not _waits_on_datapath(S, pc) or not must_wait(S, p, t):
        return False
    make_runnable(S, p, t)
    return True


@kernel
def unblock_microthread(S, p, u):
    """`utunblock u` on PE p: a microthread paused by utblock goes on from p's clock."""
    S.pe[p, P_UTBLK] &= ~(1 << u)
    e = S.pe[p, P_UTBASE] + u
    if S.pe[e, P_STATE] == S_UTPAUSE:
        make_runnable(S, e, max(S.pe[e, P_CLOCK], S.pe[p, P_CLOCK]))
