"""Host -> fabric streams: the host pushes a sequence of wavelets on a color into an edge PE's
router from off the mesh (the SDK's `memcpy_h2d(..., streaming=True)`; I/O enters at the
wafer's East and West edges, wse-facts.md "Host interface").

Each stream is a scheduler row of its own, after the PE and microthread rows (rows from
misc[M_STREAM0] on; S.strm[s] holds its table, kinds.ST_*), with its own clock, so it
sends in time order with the PEs and blocks and wakes on full queues exactly as a sending
PE does (fabric.dest_room_for, block_sender, wake_senders): the cycles it is held back by
a full queue are its row's P_STALL (backpressure). It sends wavelet i no earlier than the
host link allows: one every ST_STEP / 2**STREAM_FRAC cycles (at least one cycle: one
wavelet per link per cycle), and after a hold the link starts again from then (no credit
is banked). The wavelet enters the edge router's input from the side ST_SIDE, whose rx bit
the route must have, and goes on down the color's multicast tree like any wavelet, the
router taking it with the ramp's latency (assumed: the I/O channel's latency is not
public). Its payloads are a flat buffer (S.spay); nothing runs in Python per wavelet."""

from .fabric import (
    ROUTE_NO_RAMP,
    _walk_error,
    block_sender,
    dest_room_for,
    grow_tree,
    route_fault,
    route_rx,
    send_wavelet,
)
from .jit import entry, kernel
from .kinds import (
    CFG_NCOLORS,
    M_BUDGET,
    M_FAULT_PE,
    M_RESUME_LIMIT,
    M_RESUME_PE,
    M_ROUTE_VER,
    M_STATUS,
    M_STREAM0,
    M_WALK_ERR,
    M_WALK_KEY,
    M_WALK_N,
    M_WALK_VER,
    P_CLOCK,
    P_FARG,
    P_FAULT,
    P_KEY,
    P_STATE,
    R_FAULT,
    S_FAULT,
    S_HALT,
    S_RUN,
    ST_COLOR,
    ST_FIRST,
    ST_LAST,
    ST_LEN,
    ST_NEXT,
    ST_OFF,
    ST_PE,
    ST_SENT,
    ST_SIDE,
    ST_START,
    ST_STEP,
    STREAM_FRAC,
)
from .sched import make_runnable

FRAC_ROUND = (1 << STREAM_FRAC) - 1


@kernel
def stream_walk(S, s):
    """Stream s's multicast tree from its edge PE's router, in the walk arrays (cached like
    fabric.walk; the key is negative so it never names a PE's tree). Minus ROUTE_NO_RAMP
    when the router's rx lacks the stream's side (a switch may have moved it)."""
    p = S.strm[s, ST_PE]
    color = S.strm[s, ST_COLOR]
    side = S.strm[s, ST_SIDE]
    key = -2 - ((p * S.cfg[CFG_NCOLORS] + color) * 4 + side)
    if S.misc[M_WALK_KEY] == key and S.misc[M_WALK_VER] == S.misc[M_ROUTE_VER]:
        return S.misc[M_WALK_N]
    S.misc[M_WALK_KEY] = key
    S.misc[M_WALK_VER] = S.misc[M_ROUTE_VER]
    if not route_rx(S, p, color) & (1 << side):
        return _walk_error(S, ROUTE_NO_RAMP, p, side)
    return grow_tree(S, p, color)


@kernel
def exec_stream(S, r, limit):
    """Run stream row r until it has sent everything, blocks on a full queue or on its turn,
    or passes limit."""
    pe = S.pe
    s = r - S.misc[M_STREAM0]
    st = S.strm[s]
    color = st[ST_COLOR]
    while st[ST_SENT] < st[ST_LEN]:
        due = (st[ST_NEXT] + FRAC_ROUND) >> STREAM_FRAC
        t = max(pe[r, P_CLOCK], due)
        pe[r, P_CLOCK] = t
        if t > limit:
            make_runnable(S, r, t)
            return
        if S.misc[M_BUDGET] <= 0:  # paused: run() resumes r with this limit, off the heap
            pe[r, P_STATE] = S_RUN
            pe[r, P_KEY] = t
            S.misc[M_RESUME_PE] = r
            S.misc[M_RESUME_LIMIT] = limit
            return
        S.misc[M_BUDGET] -= 1
        nw = stream_walk(S, s)
        if nw < 0:
            pe[r, P_STATE] = S_FAULT
            pe[r, P_FAULT] = route_fault(nw)
            pe[r, P_FARG] = color
            S.misc[M_STATUS] = R_FAULT
            S.misc[M_FAULT_PE] = r
            return
        room, q = dest_room_for(S, r, r, color, nw, True)
        if room <= 0:
            block_sender(S, r, color, q)
            return
        send_wavelet(S, r, color, S.spay[st[ST_OFF] + st[ST_SENT]], t, nw)
        if st[ST_SENT] == 0:
            st[ST_FIRST] = t
        st[ST_LAST] = t
        st[ST_SENT] += 1
        if t > due:  # held back: the link starts again from t, no credit banked
            st[ST_NEXT] = t << STREAM_FRAC
        st[ST_NEXT] += st[ST_STEP]
    pe[r, P_STATE] = S_HALT


@entry
def start_stream(S, s, t0):
    """Stream s begins at cycle t0: its row goes on the heap."""
    r = S.misc[M_STREAM0] + s
    S.strm[s, ST_START] = t0
    S.strm[s, ST_NEXT] = t0 << STREAM_FRAC
    S.pe[r, P_CLOCK] = t0
    make_runnable(S, r, t0)


@entry
def check_stream(S, s):
    """Load-time check of stream s's tree at the current switch positions: (the walk's result:
    entries, or minus a ROUTE_* error; misc[M_WALK_ERR] where it failed)."""
    return stream_walk(S, s), S.misc[M_WALK_ERR]
