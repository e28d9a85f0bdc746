"""Fabric: routes with switch positions, multicast trees resolved when a wavelet is sent
(cached until a switch moves), input queues kept in arrival order, and sending with
per-link contention and backpressure."""

import numpy as np

from ..isa import SWITCH_POSITIONS
from .jit import inlined, kernel
from .kinds import (
    CFG_HEIGHT,
    CFG_HOP,
    CFG_NCOLORS,
    CFG_QDEPTH,
    CFG_RAMP_OFF,
    CFG_RAMP_ON,
    CFG_WIDTH,
    D_RAMP,
    F_NO_ROUTE,
    F_ROUTE_LOOP,
    F_ROUTE_NOT_RECEIVED,
    F_ROUTE_NOWHERE,
    F_ROUTE_OFF_MESH,
    M_DEBUG,
    M_EV_A,
    M_EV_B,
    M_EV_C,
    M_EV_D,
    M_PENDING,
    M_ROUTE_VER,
    M_STOP_PE,
    M_WALK_ERR,
    M_WALK_KEY,
    M_WALK_N,
    M_WALK_STAMP,
    M_WALK_VER,
    P_CLOCK,
    P_HOPS,
    P_IMG,
    P_NEXTW,
    P_PICK,
    P_SENT,
    P_STALL,
    P_STATE,
    P_TBLK,
    P_WAIT,
    P_WAITPE,
    S_IDLE,
    S_RECV,
    S_SEND,
    STOP_COLOR,
    STOP_LINK,
)
from .sched import make_runnable

NPOS = SWITCH_POSITIONS
RAMP_BIT = 1 << D_RAMP
# (dx, dy) per direction; y grows southwards
DX = np.array([0, 1, 0, -1], np.int64)
DY = np.array([-1, 0, 1, 0], np.int64)

# walk results (negated when returned by walk)
ROUTE_OK, ROUTE_OFF_MESH, ROUTE_NOT_RECEIVED, ROUTE_LOOP, ROUTE_NO_RAMP, ROUTE_NOWHERE = range(6)
ROUTE_FAULTS = np.array(
    [0, F_ROUTE_OFF_MESH, F_ROUTE_NOT_RECEIVED, F_ROUTE_LOOP, F_NO_ROUTE, F_ROUTE_NOWHERE],
    np.int64,
)


@kernel
def route_rx(S, node, color):
    i = node * S.cfg[CFG_NCOLORS] + color
    return S.rx[i, S.rpos[i]]


@kernel
def route_tx(S, node, color):
    i = node * S.cfg[CFG_NCOLORS] + color
    return S.tx[i, S.rpos[i]]


@kernel
def _walk_error(S, code, node, d):
    S.misc[M_WALK_ERR] = node * 4 + d
    S.misc[M_WALK_N] = -code
    return -code


@inlined
def walk(S, p, color):
    """p's multicast tree for color at the current switch positions, breadth first, in the
    walk arrays (node, parent entry, link id, hops, delivers to the PE). Returns the number
    of entries, or minus a ROUTE_* error (misc[M_WALK_ERR] = node * 4 + direction). The
    last tree is kept until another is asked for or a switch moves."""
    key = p * S.cfg[CFG_NCOLORS] + color
    if S.misc[M_WALK_KEY] == key and S.misc[M_WALK_VER] == S.misc[M_ROUTE_VER]:
        return S.misc[M_WALK_N]
    return walk_tree(S, p, color, key)


@kernel
def walk_tree(S, p, color, key):
    S.misc[M_WALK_KEY] = key
    S.misc[M_WALK_VER] = S.misc[M_ROUTE_VER]
    if not route_rx(S, p, color) & RAMP_BIT:
        return _walk_error(S, ROUTE_NO_RAMP, p, 4)
    width = S.cfg[CFG_WIDTH]
    height = S.cfg[CFG_HEIGHT]
    S.misc[M_WALK_STAMP] += 1
    stamp = S.misc[M_WALK_STAMP]
    S.wmark[p] = stamp
    S.wnode[0] = p
    S.wparent[0] = -1
    S.wlink[0] = -1
    S.whops[0] = 0
    n = 1
    i = 0
    delivers = 0
    while i < n:
        node = S.wnode[i]
        t = route_tx(S, node, color)
        S.wdeliver[i] = 1 if t & RAMP_BIT else 0
        delivers += S.wdeliver[i]
        x = node % width
        y = node // width
        for d in range(4):
            if t & (1 << d):
                nx = x + DX[d]
                ny = y + DY[d]
                if nx < 0 or ny < 0 or nx >= width or ny >= height:
                    return _walk_error(S, ROUTE_OFF_MESH, node, d)
                m = ny * width + nx
                if not route_rx(S, m, color) & (1 << ((d + 2) % 4)):
                    return _walk_error(S, ROUTE_NOT_RECEIVED, node, d)
                if S.wmark[m] == stamp:
                    return _walk_error(S, ROUTE_LOOP, node, d)
                S.wmark[m] = stamp
                S.wnode[n] = m
                S.wparent[n] = i
                S.wlink[n] = node * 4 + d
                S.whops[n] = S.whops[i] + 1
                n += 1
        i += 1
    if delivers == 0:
        return _walk_error(S, ROUTE_NOWHERE, p, 4)
    S.misc[M_WALK_N] = n
    return n


@kernel
def check_routes(S, active):
    """Load-time check of every tree a placed PE can send at its initial switch positions.
    Returns (source key, ROUTE_* error, node * 4 + direction), or (-1, 0, 0)."""
    nc = S.cfg[CFG_NCOLORS]
    for p in range(S.pe.shape[0]):
        if not active[p]:
            continue
        for c in range(nc):
            if route_rx(S, p, c) & RAMP_BIT:
                r = walk(S, p, c)
                if r < 0 and -r != ROUTE_NOWHERE:
                    return p * nc + c, -r, S.misc[M_WALK_ERR]
    return -1, 0, 0


def queue_storage(rx_tx_tx, n_pe, n_colors, depth, hop, ramp_on, ramp_off, width, height):
    """Ring size of each input queue: queue_depth plus one wavelet per pipeline stage of the
    longest shortest path on the mesh, for every (PE, color) that some switch position
    delivers to; 0 elsewhere. The threshold a sender meets is smaller: see dest_room."""
    tx = rx_tx_tx.reshape(n_pe * n_colors, -1)
    receives = (tx & RAMP_BIT).any(axis=1)
    longest = ramp_on + ramp_off + hop * (width + height - 2)
    return np.where(receives, depth + longest, 0).astype(np.int64)


# ---------------------------------------------------------------- queues


@kernel
def q_head_time(S, qi):
    return S.qtime[S.qoff[qi] + S.qhead[qi]]


@kernel
def q_pop(S, qi, now):
    """Take the oldest wavelet at time now; wake senders blocked on this queue."""
    base = S.qoff[qi]
    h = S.qhead[qi]
    payload = S.qpay[base + h]
    S.qhead[qi] = (h + 1) % (S.qoff[qi + 1] - base)
    S.qcount[qi] -= 1
    if S.qwaiter[qi] >= 0:
        wake_senders(S, qi, now)
    return payload


@kernel
def wake_senders(S, qi, now):
    """A slot of queue qi was freed at cycle now: the senders waiting for it go on then."""
    w = S.qwaiter[qi]
    S.qwaiter[qi] = -1
    while w >= 0:
        nxt = S.pe[w, P_NEXTW]
        S.pe[w, P_NEXTW] = -1
        if S.pe[w, P_CLOCK] < now:
            S.pe[w, P_STALL] += now - S.pe[w, P_CLOCK]
            S.pe[w, P_CLOCK] = now
        make_runnable(S, w, S.pe[w, P_CLOCK])
        w = nxt


@inlined
def dest_room(S, p, color, n):
    """(free slots, PE) of the fullest destination queue of p's walked tree (n entries). A
    queue holds queue_depth wavelets plus those in flight to it: one per pipeline stage of
    the path (routers buffer them hop by hop), so a stream is not throttled by distance."""
    nc = S.cfg[CFG_NCOLORS]
    stages = S.cfg[CFG_QDEPTH] + S.cfg[CFG_RAMP_ON] + S.cfg[CFG_RAMP_OFF]
    hop = S.cfg[CFG_HOP]
    room = 1 << 40
    fullest = -1
    for e in range(n):
        if S.wdeliver[e]:
            q = S.wnode[e]
            qi = q * nc + color
            limit = min(S.qoff[qi + 1] - S.qoff[qi], stages + S.whops[e] * hop)
            free = limit - S.qcount[qi]
            if free < room:
                room = free
                fullest = q
    return room, fullest


@kernel
def color_event(S, p, q, color, payload, t):
    """Debugger: a wavelet from p landed in q's queue for color; stop if that is watched."""
    for w in range(S.cwatch.shape[0]):
        if S.cwatch[w, 0] == q and S.cwatch[w, 1] == color:
            _event(S, STOP_COLOR, q, payload, p, t, color)


@kernel
def link_event(S, p, link, color, wait):
    """Debugger: a wavelet of p's waited `wait` cycles for link (-1: backpressure)."""
    for w in range(S.lwatch.shape[0]):
        if S.lwatch[w] == link:
            _event(S, STOP_LINK, p, link, p, wait, color)


@kernel
def _event(S, why, pe, a, b, c, d):
    if S.misc[M_PENDING] == 0:  # the first event of an instruction is reported
        S.misc[M_PENDING] = why
        S.misc[M_STOP_PE] = pe
        S.misc[M_EV_A] = a
        S.misc[M_EV_B] = b
        S.misc[M_EV_C] = c
        S.misc[M_EV_D] = d


@kernel
def block_sender(S, p, color, q):
    if S.misc[M_DEBUG]:  # a watched link on the way to the full queue is backpressured
        for e in range(S.misc[M_WALK_N]):
            if S.wnode[e] == q and S.wdeliver[e]:
                while S.wparent[e] >= 0:
                    link_event(S, p, S.wlink[e], color, -1)
                    e = S.wparent[e]
                break
    qi = q * S.cfg[CFG_NCOLORS] + color
    S.pe[p, P_STATE] = S_SEND
    S.pe[p, P_WAIT] = color
    S.pe[p, P_WAITPE] = q
    S.pe[p, P_NEXTW] = S.qwaiter[qi]
    S.qwaiter[qi] = p


@inlined
def send_wavelet(S, p, color, payload, t, n):
    """Deliver one wavelet leaving p at cycle t down its walked tree (n entries); the caller
    has checked dest_room. Each link carries one wavelet per cycle: the wavelet takes it at
    max(ready, link free), then needs the hop latency to reach the next router."""
    nc = S.cfg[CFG_NCOLORS]
    hop = S.cfg[CFG_HOP]
    ramp_off = S.cfg[CFG_RAMP_OFF]
    n_pe = S.pe.shape[0]
    for e in range(n):
        par = S.wparent[e]
        if par < 0:
            ready = t + S.cfg[CFG_RAMP_ON]
        else:
            link = S.wlink[e]
            depart = max(S.tready[par], S.link_free[link])
            if S.misc[M_DEBUG] and depart > S.tready[par]:
                link_event(S, p, link, color, depart - S.tready[par])
            S.link_free[link] = depart + 1
            ready = depart + hop
            S.pe[p, P_HOPS] += 1
        S.tready[e] = ready
        if S.wdeliver[e]:
            q = S.wnode[e]
            ramp = n_pe * 4 + q  # the link from q's router down its ramp
            depart = max(ready, S.link_free[ramp])
            S.link_free[ramp] = depart + 1
            # insert into q's input queue (a ring in the pool), kept in arrival order
            qi = q * nc + color
            t_land = depart + ramp_off
            base = S.qoff[qi]
            cap = S.qoff[qi + 1] - base
            h = S.qhead[qi]
            j = S.qcount[qi]
            while j > 0:
                prev = base + (h + j - 1) % cap
                if S.qtime[prev] <= t_land:
                    break
                cur = base + (h + j) % cap
                S.qtime[cur] = S.qtime[prev]
                S.qpay[cur] = S.qpay[prev]
                j -= 1
            slot = base + (h + j) % cap
            S.qtime[slot] = t_land
            S.qpay[slot] = payload
            S.qcount[qi] += 1
            if S.misc[M_DEBUG]:
                color_event(S, p, q, color, payload, t_land)
            state = S.pe[q, P_STATE]
            if state == S_RECV or state == S_IDLE:
                wake_receiver(S, q, color, t_land)
    S.pe[p, P_SENT] += 1


@kernel
def route_fault(r):
    """Fault code for a negative walk result."""
    return ROUTE_FAULTS[-r]


@kernel
def wake_receiver(S, q, color, land):
    state = S.pe[q, P_STATE]
    if state == S_RECV and S.pe[q, P_WAIT] == color:
        make_runnable(S, q, max(S.pe[q, P_CLOCK], land))
    elif state == S_IDLE:
        img = S.pe[q, P_IMG]
        task = S.color_task[img, color]
        if task >= 0 and not (S.pe[q, P_TBLK] >> task) & 1:
            S.pe[q, P_PICK] = 1
            make_runnable(S, q, max(S.pe[q, P_CLOCK], land))
