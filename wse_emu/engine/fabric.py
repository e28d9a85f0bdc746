"""Fabric: multicast route trees precomputed per (PE, color) at load, input queues kept in
arrival order, and sending a wavelet with per-link contention and backpressure."""

import numpy as np
from numba import njit

from .kinds import (
    CFG_HOP,
    CFG_NCOLORS,
    CFG_RAMP_OFF,
    CFG_RAMP_ON,
    D_RAMP,
    M_HEAP,
    P_CLOCK,
    P_HOPS,
    P_HPOS,
    P_IMG,
    P_KEY,
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
    S_RUN,
    S_SEND,
)

RAMP_BIT = 1 << D_RAMP
# (dx, dy) per direction; y grows southwards
DX = np.array([0, 1, 0, -1], np.int64)
DY = np.array([-1, 0, 1, 0], np.int64)

# route-check results of build_trees
ROUTE_OK, ROUTE_OFF_MESH, ROUTE_NOT_RECEIVED, ROUTE_LOOP = range(4)


@njit(cache=True)
def _walk(
    rx,
    tx,
    width,
    height,
    src,
    color,
    mark,
    stamp,
    nodes,
    parents,
    links,
    fill,
    out_node,
    out_parent,
    out_link,
    out_deliver,
    base,
):
    """Breadth-first walk of src's tree for color. Returns (size, error, node, dir)."""
    n = 0
    nodes[0] = src
    parents[0] = -1
    links[0] = -1
    mark[src] = stamp
    n = 1
    i = 0
    while i < n:
        node = nodes[i]
        x = node % width
        y = node // width
        for d in range(4):
            if tx[node, color] & (1 << d):
                nx = x + DX[d]
                ny = y + DY[d]
                if nx < 0 or ny < 0 or nx >= width or ny >= height:
                    return n, ROUTE_OFF_MESH, node, d
                m = ny * width + nx
                back = (d + 2) % 4
                if not rx[m, color] & (1 << back):
                    return n, ROUTE_NOT_RECEIVED, node, d
                if mark[m] == stamp:
                    return n, ROUTE_LOOP, node, d
                mark[m] = stamp
                nodes[n] = m
                parents[n] = i
                links[n] = node * 4 + d
                n += 1
        i += 1
    if fill:
        for k in range(n):
            out_node[base + k] = nodes[k]
            out_parent[base + k] = parents[k]
            out_link[base + k] = links[k]
            out_deliver[base + k] = 1 if tx[nodes[k], color] & RAMP_BIT else 0
    return n, ROUTE_OK, -1, -1


@njit(cache=True)
def build_trees(rx, tx, width, height, active):
    """Trees for every (pe, color) whose rx has ramp, on PEs with a program (active).
    Returns (toff, node, parent, link, deliver, max size, error info[4])."""
    n_pe, n_colors = rx.shape
    mark = np.zeros(n_pe, np.int64)
    nodes = np.zeros(n_pe, np.int64)
    parents = np.zeros(n_pe, np.int64)
    links = np.zeros(n_pe, np.int64)
    toff = np.zeros(n_pe * n_colors + 1, np.int64)
    err = np.full(4, -1, np.int64)
    dummy = np.zeros(1, np.int64)
    dummy8 = np.zeros(1, np.uint8)
    stamp = 0
    max_size = 0
    for p in range(n_pe):
        for c in range(n_colors):
            size = 0
            if active[p] and rx[p, c] & RAMP_BIT:
                stamp += 1
                size, code, node, d = _walk(
                    rx,
                    tx,
                    width,
                    height,
                    p,
                    c,
                    mark,
                    stamp,
                    nodes,
                    parents,
                    links,
                    False,
                    dummy,
                    dummy,
                    dummy,
                    dummy8,
                    0,
                )
                if code != ROUTE_OK:
                    err[0] = code
                    err[1] = p * n_colors + c
                    err[2] = node
                    err[3] = d
                    return toff, dummy, dummy, dummy, dummy8, 0, err
            toff[p * n_colors + c + 1] = toff[p * n_colors + c] + size
            max_size = max(max_size, size)
    total = toff[-1]
    t_node = np.zeros(total, np.int64)
    t_parent = np.zeros(total, np.int64)
    t_link = np.zeros(total, np.int64)
    t_deliver = np.zeros(total, np.uint8)
    for p in range(n_pe):
        for c in range(n_colors):
            start = toff[p * n_colors + c]
            if toff[p * n_colors + c + 1] > start:
                stamp += 1
                _walk(
                    rx,
                    tx,
                    width,
                    height,
                    p,
                    c,
                    mark,
                    stamp,
                    nodes,
                    parents,
                    links,
                    True,
                    t_node,
                    t_parent,
                    t_link,
                    t_deliver,
                    start,
                )
    return toff, t_node, t_parent, t_link, t_deliver, max_size, err


@njit(cache=True)
def queue_capacity(toff, tnode, tparent, tdeliver, n_pe, n_colors, depth, hop, ramp_on, ramp_off):
    """Wavelets each input queue (pe * colors + color) must hold: queue_depth plus one per
    pipeline stage (cycle of latency) of the longest path that delivers to it, since routers
    buffer wavelets in flight hop by hop. Queues that nothing delivers to get 0."""
    cap = np.zeros(n_pe * n_colors, np.int64)
    hops = np.zeros(tnode.shape[0], np.int64)
    for t in range(n_pe * n_colors):
        color = t % n_colors
        for e in range(toff[t], toff[t + 1]):
            par = tparent[e]
            hops[e] = 0 if par < 0 else hops[toff[t] + par] + 1
            if tdeliver[e]:
                q = tnode[e] * n_colors + color
                cap[q] = max(cap[q], depth + ramp_on + hops[e] * hop + ramp_off)
    return cap


# ---------------------------------------------------------------- scheduler heap


@njit(cache=True)
def _less(pe, a, b):
    ka = pe[a, P_KEY]
    kb = pe[b, P_KEY]
    return ka < kb or (ka == kb and a < b)


@njit(cache=True)
def heap_push(S, p):
    heap = S.heap
    pe = S.pe
    i = S.misc[M_HEAP]
    S.misc[M_HEAP] = i + 1
    while i > 0:
        parent = (i - 1) // 2
        q = heap[parent]
        if not _less(pe, p, q):
            break
        heap[i] = q
        pe[q, P_HPOS] = i
        i = parent
    heap[i] = p
    pe[p, P_HPOS] = i


@njit(cache=True)
def heap_pop(S):
    heap = S.heap
    pe = S.pe
    n = S.misc[M_HEAP] - 1
    top = heap[0]
    S.misc[M_HEAP] = n
    pe[top, P_HPOS] = -1
    if n > 0:
        last = heap[n]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and _less(pe, heap[c + 1], heap[c]):
                c += 1
            if not _less(pe, heap[c], last):
                break
            heap[i] = heap[c]
            pe[heap[i], P_HPOS] = i
            i = c
        heap[i] = last
        pe[last, P_HPOS] = i
    return top


@njit(cache=True)
def make_runnable(S, p, key):
    S.pe[p, P_STATE] = S_RUN
    S.pe[p, P_KEY] = key
    if S.pe[p, P_HPOS] < 0:
        heap_push(S, p)


# ---------------------------------------------------------------- queues


@njit(cache=True)
def q_push(S, qi, payload, t):
    """Insert in arrival order into the ring of queue qi (slots qoff[qi] .. qoff[qi+1]-1)."""
    base = S.qoff[qi]
    cap = S.qoff[qi + 1] - base
    h = S.qhead[qi]
    j = S.qcount[qi]
    while j > 0:
        prev = base + (h + j - 1) % cap
        if S.qtime[prev] <= t:
            break
        cur = base + (h + j) % cap
        S.qtime[cur] = S.qtime[prev]
        S.qpay[cur] = S.qpay[prev]
        j -= 1
    slot = base + (h + j) % cap
    S.qtime[slot] = t
    S.qpay[slot] = payload
    S.qcount[qi] += 1
    return t


@njit(cache=True)
def q_head_time(S, qi):
    return S.qtime[S.qoff[qi] + S.qhead[qi]]


@njit(cache=True)
def q_pop(S, qi, now):
    """Take the oldest wavelet at time now; wake senders blocked on this queue."""
    base = S.qoff[qi]
    h = S.qhead[qi]
    payload = S.qpay[base + h]
    S.qhead[qi] = (h + 1) % (S.qoff[qi + 1] - base)
    S.qcount[qi] -= 1
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
    return payload


@njit(cache=True)
def dest_full(S, p, color):
    """First destination PE of p's tree for color whose queue (with the wavelets in flight
    to it) is full, or -1."""
    nc = S.cfg[CFG_NCOLORS]
    t0 = p * nc + color
    for e in range(S.toff[t0], S.toff[t0 + 1]):
        if S.tdeliver[e]:
            q = S.tnode[e]
            qi = q * nc + color
            if S.qcount[qi] >= S.qoff[qi + 1] - S.qoff[qi]:
                return q
    return -1


@njit(cache=True)
def block_sender(S, p, color, q):
    qi = q * S.cfg[CFG_NCOLORS] + color
    S.pe[p, P_STATE] = S_SEND
    S.pe[p, P_WAIT] = color
    S.pe[p, P_WAITPE] = q
    S.pe[p, P_NEXTW] = S.qwaiter[qi]
    S.qwaiter[qi] = p


@njit(cache=True)
def has_route(S, p, color):
    t0 = p * S.cfg[CFG_NCOLORS] + color
    return S.toff[t0 + 1] > S.toff[t0]


@njit(cache=True)
def send_wavelet(S, p, color, payload, t):
    """Deliver one wavelet leaving p at cycle t down its multicast tree. The caller has checked
    dest_full. Each link carries one wavelet per cycle; the wavelet takes max(ready, link free)."""
    nc = S.cfg[CFG_NCOLORS]
    hop = S.cfg[CFG_HOP]
    ramp_off = S.cfg[CFG_RAMP_OFF]
    t0 = p * nc + color
    start = S.toff[t0]
    end = S.toff[t0 + 1]
    n_pe = S.pe.shape[0]
    for e in range(start, end):
        par = S.tparent[e]
        if par < 0:
            ready = t + S.cfg[CFG_RAMP_ON]
        else:
            link = S.tlink[e]
            depart = max(S.tready[par], S.link_free[link])
            S.link_free[link] = depart + 1
            ready = depart + hop
            S.pe[p, P_HOPS] += 1
        S.tready[e - start] = ready
        if S.tdeliver[e]:
            q = S.tnode[e]
            ramp = n_pe * 4 + q
            depart = max(ready, S.link_free[ramp])
            S.link_free[ramp] = depart + 1
            land = q_push(S, q * nc + color, payload, depart + ramp_off)
            wake_receiver(S, q, color, land)
    S.pe[p, P_SENT] += 1


@njit(cache=True)
def wake_receiver(S, q, color, land):
    state = S.pe[q, P_STATE]
    if state == S_RECV and S.pe[q, P_WAIT] == color:
        make_runnable(S, q, max(S.pe[q, P_CLOCK], land))
    elif state == S_IDLE:
        _wake_idle(S, q, color, land)


@njit(cache=True)
def _wake_idle(S, q, color, land):
    img = S.pe[q, P_IMG]
    task = S.color_task[img, color]
    if task >= 0 and not (S.pe[q, P_TBLK] >> task) & 1:
        S.pe[q, P_PICK] = 1
        make_runnable(S, q, max(S.pe[q, P_CLOCK], land))
