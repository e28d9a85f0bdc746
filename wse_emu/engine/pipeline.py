"""The PE's instruction pipeline: a vector (DSD) op is issued by the thread and runs on the
datapath while the thread goes on with the next instructions; the thread waits only where
it must see the datapath's work done. Also the load-use latency of scalar loads.

Timeline of a memory-only vector op issued at cycle t (costs.toml names in brackets):
  begin = max(t + [vector_startup], previous op's end + [vector_gap],
              previous op's begin + [vector_drain] if it reads what that op writes)
  end   = begin + ceil(n / width) * cycles per element     (the datapath is busy)
  done  = end + [vector_drain]                              (the last result is written)
The thread pays [scalar] to issue it. It waits for `done` when it reads the cycle counter
(a timestamp orders after outstanding datapath work), loads or stores an address the op
writes, ends its program, or starts a reduction (whose result is a register) or an op with
a fabric operand (those run synchronously, on the thread). Results are computed at issue:
only time is modelled as overlapped, so the order of effects stays the program's."""

from .events import STALL_DATAPATH, stall
from .jit import kernel
from .kinds import (
    CFG_DRAIN,
    CFG_GAP,
    CFG_LOAD_USE,
    CFG_STARTUP,
    M_TRACE,
    P_BUSY,
    P_CLOCK,
    P_LDREADY,
    P_LDREG,
    P_VBEGIN,
    P_VDONE,
    P_VFREE,
    P_VSTART,
    P_VWHI,
    P_VWLO,
)


@kernel
def wait_until(S, p, t):
    """The thread waits for the datapath until cycle t (counted as busy: the PE is working)."""
    if t > S.pe[p, P_CLOCK]:
        if S.misc[M_TRACE]:
            stall(S, p, t, STALL_DATAPATH, -1)
        S.pe[p, P_BUSY] += t - S.pe[p, P_CLOCK]
        S.pe[p, P_CLOCK] = t


@kernel
def drain(S, p):
    """Wait until every issued vector op has written its results."""
    wait_until(S, p, S.pe[p, P_VDONE])


@kernel
def sync_address(S, p, lo, hi):
    """A scalar load or store of [lo, hi) waits for an in-flight op that writes there."""
    if lo < S.pe[p, P_VWHI] and S.pe[p, P_VWLO] < hi:
        drain(S, p)


@kernel
def _overlaps(lo, hi, lo2, hi2):
    return lo < hi2 and lo2 < hi


@kernel
def issue(S, p, cycles, alo, ahi, blo, bhi, clo, chi, writes_lo, writes_hi):
    """Put a memory-only vector op of `cycles` datapath cycles on the datapath; the thread
    pays one scalar issue slot (charged by the caller). Ranges are byte [lo, hi) of what it
    reads (two sources and a destination it reads back) and writes (empty: lo == hi)."""
    pe = S.pe
    begin = max(pe[p, P_CLOCK] + S.cfg[CFG_STARTUP], pe[p, P_VFREE] + S.cfg[CFG_GAP])
    wlo = pe[p, P_VWLO]
    whi = pe[p, P_VWHI]
    if (
        _overlaps(alo, ahi, wlo, whi)
        or _overlaps(blo, bhi, wlo, whi)
        or _overlaps(clo, chi, wlo, whi)
    ):
        begin = max(begin, pe[p, P_VBEGIN] + S.cfg[CFG_DRAIN])
    end = begin + cycles
    if begin > pe[p, P_VFREE] + S.cfg[CFG_GAP]:  # the datapath was idle: a new busy period
        pe[p, P_VSTART] = begin
    pe[p, P_VBEGIN] = begin
    pe[p, P_VFREE] = end
    pe[p, P_VDONE] = max(pe[p, P_VDONE], end + S.cfg[CFG_DRAIN])
    pe[p, P_VWLO] = writes_lo
    pe[p, P_VWHI] = writes_hi


@kernel
def start_sync(S, p):
    """An op that runs on the thread (fabric operand, reduction) starts when the datapath
    is free and its own start-up has passed."""
    pe = S.pe
    t = max(pe[p, P_CLOCK] + S.cfg[CFG_STARTUP], pe[p, P_VFREE] + S.cfg[CFG_GAP], pe[p, P_VDONE])
    wait_until(S, p, t)


@kernel
def end_sync(S, p, writes_lo, writes_hi):
    """A synchronous op finished its last element at the thread's clock: its results are
    written a drain later; the datapath is free from now."""
    pe = S.pe
    pe[p, P_VBEGIN] = pe[p, P_CLOCK]
    pe[p, P_VSTART] = pe[p, P_CLOCK]
    pe[p, P_VFREE] = pe[p, P_CLOCK]
    pe[p, P_VDONE] = pe[p, P_CLOCK] + S.cfg[CFG_DRAIN]
    pe[p, P_VWLO] = writes_lo
    pe[p, P_VWHI] = writes_hi


@kernel
def loaded(S, p, r):
    """A scalar load wrote register r: it is usable load_use cycles after the load issued."""
    S.pe[p, P_LDREG] = r
    S.pe[p, P_LDREADY] = S.pe[p, P_CLOCK] + S.cfg[CFG_LOAD_USE]


@kernel
def use_register(S, p, r):
    """Reading register r right after a load of it waits for the load's data."""
    if r == S.pe[p, P_LDREG]:
        wait_until(S, p, S.pe[p, P_LDREADY])
        S.pe[p, P_LDREG] = -1
