"""Trace events: what each PE did and when, for a timeline (wse_emu/trace.py writes it).

The engine appends events to one flat preallocated int64 buffer, S.ev[cap, NEVF], a row
per event: kind, row (a PE, or a microthread row: engine/microthread.py), first and last
cycle (equal for an instant), three arguments. Every hook is `if S.misc[M_TRACE]:` before
a call, so a run without a trace pays one test at each site and nothing else. Filters are
applied here, so filtered-out events cost no storage: S.evmask[pe] says which PEs are
traced and [misc[M_EV_LO], misc[M_EV_HI]] is the cycle window (slices are clipped to it).
When the buffer reaches misc[M_EV_SOFT] events the run pauses (its instruction budget is
set to 0; pausing changes no cycle) and the host drains it; events that find the buffer
full (one instruction produced more than the headroom) are counted in misc[M_EV_LOST]."""

from .jit import kernel
from .kinds import (
    M_BUDGET,
    M_EV_HI,
    M_EV_LO,
    M_EV_LOST,
    M_EV_N,
    M_EV_SOFT,
    P_CLOCK,
    P_TASK,
    P_TSTART,
    P_UTHOST,
    P_VFREE,
    P_VT0,
)

# event kinds: a task ran, a vector op occupied the datapath (or its microthread), the
# context stalled or idled, a wavelet was sent, landed in an input queue, was taken from one
EV_TASK, EV_VOP, EV_STALL, EV_IDLE, EV_SENT, EV_LAND, EV_POP = range(7)
# fields of an event row
E_KIND, E_ROW, E_T0, E_T1, E_A, E_B, E_C = range(7)
NEVF = 7
# why a context stalled (EV_STALL's a; b: the color, the microthread, or -1)
STALL_RECV, STALL_SEND, STALL_UT, STALL_DATAPATH = range(4)


@kernel
def record(S, kind, row, t0, t1, a, b, c):
    """Append an event of row over cycles [t0, t1] if its PE is traced and the span meets
    the window; pause the run when the buffer is nearly full."""
    p = row
    if row >= S.evmask.shape[0]:  # a microthread row: traced with its PE
        p = S.pe[row, P_UTHOST]
        if p < 0:  # a host stream's row: its wavelets show where they land
            return
    lo = S.misc[M_EV_LO]
    hi = S.misc[M_EV_HI]
    if not S.evmask[p] or t1 < lo or t0 > hi:
        return
    n = S.misc[M_EV_N]
    if n >= S.ev.shape[0]:
        S.misc[M_EV_LOST] += 1
        return
    ev = S.ev[n]
    ev[E_KIND] = kind
    ev[E_ROW] = row
    ev[E_T0] = max(t0, lo)
    ev[E_T1] = min(t1, hi)
    ev[E_A] = a
    ev[E_B] = b
    ev[E_C] = c
    S.misc[M_EV_N] = n + 1
    if n + 1 >= S.misc[M_EV_SOFT]:
        S.misc[M_BUDGET] = 0


@kernel
def task_end(S, p):
    """PE p's task (P_TASK; -1: main) ends at its clock."""
    record(S, EV_TASK, p, S.pe[p, P_TSTART], S.pe[p, P_CLOCK], S.pe[p, P_TASK], 0, 0)
    S.pe[p, P_TSTART] = -1


@kernel
def vector_op_done(S, p, pc, n):
    """Context p's vector op at pc over n elements held the datapath from P_VT0 to P_VFREE."""
    record(S, EV_VOP, p, S.pe[p, P_VT0], S.pe[p, P_VFREE], pc, n, 0)


@kernel
def stall(S, p, until, why, arg):
    """Context p waits from its clock to cycle until."""
    record(S, EV_STALL, p, S.pe[p, P_CLOCK], until, why, arg, 0)
