"""Fabric: routes with switch positions, multicast trees resolved when a wavelet is sent
(cached until a switch moves), input queues kept in arrival order, and sending with
per-link contention and backpressure.

Time order: PEs run out of step (up to the lag window apart), so whatever several PEs
contend for must be decided in time order, not in the order the emulator runs them.
A link that wavelets of only one source PE can cross (found at load time over every
switch position) is claimed in that PE's clock order anyway; a tree crossing a link
that several sources can reach (a merge, or a ramp fed by two senders) sends only in
its turn (sched.must_wait). Backpressure reads the time each queue slot was freed, so a
sender sees the room there was at its own cycle, however far the consumer has run."""

import numpy as np

from ..isa import SWITCH_POSITIONS
from .events import EV_LAND, EV_POP, EV_SENT, STALL_SEND, record, stall
from .jit import entry, kernel
from .kinds import (
    C_CPE,
    C_F0,
    C_F1,
    C_F2,
    C_FN,
    C_SEM,
    CFG_HEIGHT,
    CFG_HOP,
    CFG_MICROTHREADS,
    CFG_NCOLORS,
    CFG_QDEPTH,
    CFG_RAMP_OFF,
    CFG_RAMP_ON,
    CFG_WIDTH,
    D_RAMP,
    DK_FIN,
    DK_MEM,
    F_NO_ROUTE,
    F_ROUTE_LOOP,
    F_ROUTE_NOT_RECEIVED,
    F_ROUTE_NOWHERE,
    F_ROUTE_OFF_MESH,
    FN_DOT,
    M_DEBUG,
    M_EV_A,
    M_EV_B,
    M_EV_C,
    M_EV_D,
    M_HEAP,
    M_PENDING,
    M_ROUTE_VER,
    M_STOP_PE,
    M_STREAM0,
    M_TRACE,
    M_WALK_ERR,
    M_WALK_KEY,
    M_WALK_N,
    M_WALK_STAMP,
    M_WALK_VER,
    P_CLOCK,
    P_HOPS,
    P_IMG,
    P_KEY,
    P_NEXTW,
    P_PC,
    P_PICK,
    P_SENT,
    P_STALL,
    P_STATE,
    P_TBLK,
    P_UTBASE,
    P_VPROG,
    P_WAIT,
    P_WAITPE,
    S_IDLE,
    S_RECV,
    S_SEND,
    SEM_VBIN,
    SEM_VFILL,
    SEM_VFMA,
    SEM_VRED,
    SEM_VUN,
    STOP_COLOR,
    STOP_LINK,
)
from .sched import make_runnable, must_wait

NPOS = SWITCH_POSITIONS
RAMP_BIT = 1 << D_RAMP
# (dx, dy) per direction; y grows southwards
DX = np.array([0, 1, 0, -1], np.int64)
DY = np.array([-1, 0, 1, 0], np.int64)

# walk results (negated when returned by walk)
ROUTE_OK, ROUTE_OFF_MESH, ROUTE_NOT_RECEIVED, ROUTE_LOOP, ROUTE_NO_RAMP, ROUTE_NOWHERE = range(6)
# link_src: no source reaches the link, or several do (else the one source PE)
NO_SOURCE, MANY = -1, -2
# dest_room's answer when p may not send now but need not wait on a queue: resume at
# pe[p, P_KEY], in turn (clock unchanged) or after a slot freed later (clock moves there)
WAIT_TURN, WAIT_FREED = -1, -2
# what send_kind sends: a data wavelet, a control wavelet that lands in the destination
# queues (it starts a control task there), or one that stops at the destination routers
DATA, CTL_TASK, CTL_ROUTE = range(3)
ROUTE_FAULTS = np.array(
    [0, F_ROUTE_OFF_MESH, F_ROUTE_NOT_RECEIVED, F_ROUTE_LOOP, F_NO_ROUTE, F_ROUTE_NOWHERE],
    np.int64,
)


@kernel
def n_pes(S):
    """PEs in the mesh (S.pe has microthread rows after them; SRAM has one row per PE)."""
    return S.sram8.shape[0]


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


@kernel
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
    return grow_tree(S, p, color)


@kernel
def grow_tree(S, p, color):
    """walk_tree's breadth-first walk from p's router (its entry checked by the caller)."""
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


@entry
def check_routes(S, active):
    """Load-time check of every tree a placed PE can send at its initial switch positions.
    Returns (source key, ROUTE_* error, node * 4 + direction), or (-1, 0, 0)."""
    nc = S.cfg[CFG_NCOLORS]
    for p in range(n_pes(S)):
        if not active[p]:
            continue
        for c in range(nc):
            if route_rx(S, p, c) & RAMP_BIT:
                r = walk(S, p, c)
                if r < 0 and -r != ROUTE_NOWHERE:
                    return p * nc + c, -r, S.misc[M_WALK_ERR]
    mark_link_sources(S, active)
    return -1, 0, 0


@kernel
def _any_position(table, i):
    bits = 0
    for k in range(NPOS):
        bits |= table[i, k]
    return bits


@kernel
def _merge(a, b):
    if a == NO_SOURCE or a == b:
        return b
    if b == NO_SOURCE:
        return a
    return MANY


@kernel
def mark_link_sources(S, active):
    """Load time: S.link_src[l] = the one placed PE whose wavelets can cross link l (mesh
    links node * 4 + direction, then each node's ramp down to its PE) at any switch
    positions, NO_SOURCE or MANY. Per color, source labels spread over the union of all
    positions' routes; a label changes at most twice (none, one, many), so the work is
    linear in the mesh. Uses the walk scratch (tready: labels, wnode: work ring, whops:
    queued flags)."""
    n_pe = n_pes(S)
    nc, width, height = S.cfg[CFG_NCOLORS], S.cfg[CFG_WIDTH], S.cfg[CFG_HEIGHT]
    label, work, queued = S.tready, S.wnode, S.whops
    S.link_src[:] = NO_SOURCE
    for c in range(nc):
        head = 0
        size = 0
        for p in range(n_pe):
            label[p] = NO_SOURCE
            queued[p] = 0
            if active[p] and _any_position(S.rx, p * nc + c) & RAMP_BIT:
                label[p] = p
                work[size] = p
                queued[p] = 1
                size += 1
        while size > 0:
            node = work[head]
            head = (head + 1) % n_pe
            size -= 1
            queued[node] = 0
            src = label[node]
            t = _any_position(S.tx, node * nc + c)
            if t & RAMP_BIT:
                S.link_src[n_pe * 4 + node] = _merge(S.link_src[n_pe * 4 + node], src)
            x = node % width
            y = node // width
            for d in range(4):
                nx = x + DX[d]
                ny = y + DY[d]
                if not t & (1 << d) or nx < 0 or ny < 0 or nx >= width or ny >= height:
                    continue
                m = ny * width + nx
                if not _any_position(S.rx, m * nc + c) & (1 << ((d + 2) % 4)):
                    continue
                S.link_src[node * 4 + d] = _merge(S.link_src[node * 4 + d], src)
                new = _merge(label[m], src)
                if new != label[m]:
                    label[m] = new
                    if not queued[m]:
                        queued[m] = 1
                        work[(head + size) % n_pe] = m
                        size += 1
    S.misc[M_WALK_KEY] = -1  # the scratch held the last walked tree


def queue_storage(rx, tx, active, depth, hop, ramp_on, ramp_off, width, height):
    """Ring size of each input queue (rx, tx: uint8[n_pe, colors, positions] route bits;
    active: the placed PEs, the only senders). dest_room lets a sender fill a queue up to
    queue_depth plus one wavelet per pipeline stage of its path to it (ramps and hops), so
    the ring holds that for the longest path that can deliver into it: over every switch
    position a router can take (the union of their routes), from any placed PE that can send
    on the color. Where that union has a cycle, the longest shortest path of the mesh bounds
    it (longer trees than that are bounded by it too: dest_room's limit is the smaller of
    the two). 0 where nothing is ever delivered."""
    n_pe, n_colors = tx.shape[:2]
    tx_any = np.bitwise_or.reduce(tx, axis=2)
    hops = np.zeros(n_pe * n_colors, np.int64)
    scratch = np.zeros((3, n_pe * NSIDE), np.int64)
    flat = (a.reshape(n_pe * n_colors, -1) for a in (rx, tx))  # the state's layout
    delivery_hops(*flat, active, width, height, scratch, hops)
    diameter = hop * (width + height - 2)
    path = np.where(hops < 0, diameter, np.minimum(hops * hop, diameter))
    receives = (tx_any & RAMP_BIT).reshape(-1) != 0
    return np.where(receives, depth + ramp_on + ramp_off + path, 0).astype(np.int64)


NSIDE = 5  # the side a wavelet enters a router from: a direction (N, E, S, W) or its ramp


@entry
def delivery_hops(rx, tx, active, width, height, scratch, out):
    """out[q * colors + c] = the most hops a wavelet of color c can take from a placed sender
    to PE q's router; -1 where that is unbounded (a cycle upstream). rx, tx: uint8[n_pe *
    colors, positions], as in the state. A wavelet entering a router from side i leaves on
    the directions tx has at a position whose rx has i (one position for both: the router's
    position when it passes), so the graph is over (PE, side entered): a route that turns
    back only at another switch position (a broadcast whose root moves, as in SUMMA) is no
    cycle, while the union of all positions' routes would be one. Longest paths in a DAG,
    in topological order (Kahn); scratch: int64[3, n_pe * NSIDE]."""
    n_pe = width * height
    nc = tx.shape[0] // n_pe
    depth, indeg, work = scratch[0], scratch[1], scratch[2]
    for c in range(nc):
        n = 0
        for v in range(n_pe * NSIDE):  # the part of the graph the senders reach
            depth[v] = -1
            indeg[v] = 0
        for p in range(n_pe):
            if active[p] and _any_position(rx, p * nc + c) & RAMP_BIT:
                v = p * NSIDE + D_RAMP
                depth[v] = 0
                work[n] = v
                n += 1
        i = 0
        while i < n:
            v = work[i]
            i += 1
            for d in range(4):
                m = _side_edge(rx, tx, v, c, d, width, height)
                if m >= 0 and depth[m] < 0:
                    depth[m] = 0
                    work[n] = m
                    n += 1
        for k in range(n):
            for d in range(4):
                m = _side_edge(rx, tx, work[k], c, d, width, height)
                if m >= 0:
                    indeg[m] += 1
        size = 0
        for k in range(n):
            if indeg[work[k]] == 0:
                work[size] = work[k]  # sources of the DAG (size <= k: no overwrite ahead)
                size += 1
        for k in range(n_pe):
            out[k * nc + c] = 0  # unreached: nothing lands there
        i = 0
        while i < size:
            v = work[i]
            i += 1
            for d in range(4):
                m = _side_edge(rx, tx, v, c, d, width, height)
                if m >= 0:
                    depth[m] = max(depth[m], depth[v] + 1)
                    indeg[m] -= 1
                    if indeg[m] == 0:
                        work[size] = m
                        size += 1
        for v in range(n_pe * NSIDE):
            q = v // NSIDE
            if depth[v] == -1:
                continue
            if indeg[v] > 0 or out[q * nc + c] < 0:  # never ordered: on or after a cycle
                out[q * nc + c] = -1
            else:
                out[q * nc + c] = max(out[q * nc + c], depth[v])


@kernel
def _side_edge(rx, tx, v, c, d, width, height):
    """The (PE, side) that a wavelet of color c entering PE v // NSIDE from side v % NSIDE
    reaches in direction d at some switch position, or -1."""
    p, side = v // NSIDE, v % NSIDE
    nc = tx.shape[0] // (width * height)
    i = p * nc + c
    out = 0
    for k in range(NPOS):
        if rx[i, k] & (1 << side):
            out |= tx[i, k]
    if not out & (1 << d):
        return -1
    x = p % width + DX[d]
    y = p // width + DY[d]
    if x < 0 or y < 0 or x >= width or y >= height:
        return -1
    m = y * width + x
    back = (d + 2) % 4
    if not _any_position(rx, m * nc + c) & (1 << back):
        return -1
    return m * NSIDE + back


# ---------------------------------------------------------------- queues


@kernel
def q_head_time(S, qi):
    return S.qtime[S.qoff[qi] + S.qhead[qi]]


@kernel
def ctl_at_head(S, qi):
    """Is the oldest wavelet of queue qi a control wavelet?"""
    return S.qnctl[qi] > 0 and S.qcount[qi] > 0 and S.qctl[S.qoff[qi] + S.qhead[qi]] == 1


@kernel
def data_before_ctl(S, qi):
    """Data wavelets of queue qi ahead of its oldest control wavelet (a fabric input or
    recv takes no further); the whole queue when it holds none (no scan)."""
    n = S.qcount[qi]
    if S.qnctl[qi] == 0:
        return n
    base = S.qoff[qi]
    cap = S.qoff[qi + 1] - base
    for j in range(n):
        if S.qctl[base + (S.qhead[qi] + j) % cap]:
            return j
    return n


@kernel
def q_pop(S, qi, now):
    """Take the oldest wavelet at time now; wake senders blocked on this queue."""
    payload = S.qpay[S.qoff[qi] + S.qhead[qi]]
    q_advance(S, qi, now)
    return payload


@kernel
def q_advance(S, qi, now):
    """The oldest wavelet was taken at time now: free its slot, noting when (room_at reads
    it), and wake the senders blocked on this queue."""
    base = S.qoff[qi]
    h = S.qhead[qi]
    S.qfree[base + h] = now
    if S.qctl[base + h]:
        S.qctl[base + h] = 0
        S.qnctl[qi] -= 1
    S.qhead[qi] = (h + 1) % (S.qoff[qi + 1] - base)
    S.qcount[qi] -= 1
    if S.misc[M_TRACE]:
        nc = S.cfg[CFG_NCOLORS]
        record(S, EV_POP, qi // nc, now, now, qi % nc, 0, 0)
    if S.qwaiter[qi] >= 0:
        wake_senders(S, qi, now)


@kernel
def room_at(S, qi, limit, t):
    """(room, cycle) of queue qi, holding at most limit, for a sender at cycle t. A slot
    freed after t (the consumer has run ahead) was still taken at t. Slots are freed in
    the consumer's clock order, so the j most recent frees (j = limit - count) are read
    newest first. room <= 0 with cycle > t: a slot frees at that cycle; cycle 0: the
    sender must wait for the consumer."""
    j = limit - S.qcount[qi]
    if j <= 0:
        return j, 0
    base = S.qoff[qi]
    cap = S.qoff[qi + 1] - base
    h = S.qhead[qi] + cap
    if S.qfree[base + (h - 1) % cap] <= t:
        return j, 0
    lo = 1  # qfree[h - lo] > t; find the largest k <= j with qfree[h - k] > t
    hi = j + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if S.qfree[base + (h - mid) % cap] > t:
            lo = mid
        else:
            hi = mid
    if lo == j:
        return 0, S.qfree[base + (h - j) % cap]
    return j - lo, 0


@kernel
def wake_senders(S, qi, now):
    """A slot of queue qi was freed at cycle now: the senders waiting for it go on then."""
    w = S.qwaiter[qi]
    S.qwaiter[qi] = -1
    while w >= 0:
        nxt = S.pe[w, P_NEXTW]
        S.pe[w, P_NEXTW] = -1
        if S.pe[w, P_CLOCK] < now:
            if S.misc[M_TRACE]:
                stall(S, w, now, STALL_SEND, S.pe[w, P_WAIT])
            S.pe[w, P_STALL] += now - S.pe[w, P_CLOCK]
            S.pe[w, P_CLOCK] = now
        make_runnable(S, w, S.pe[w, P_CLOCK])
        w = nxt


@kernel
def dest_room(S, p, h, color, n):
    """dest_room_for wavelets that land in the destinations' queues."""
    return dest_room_for(S, p, h, color, n, True)


@kernel
def dest_room_for(S, p, h, color, n, queues):
    """(room, PE): how many wavelets context p (PE h's thread, p == h, or a microthread of h)
    may send now down h's walked tree (n entries); with queues False they stop at the
    destination routers (control.py), so only links count. Each
    destination queue holds queue_depth wavelets plus those in flight to it, one per
    pipeline stage of the path (routers buffer them hop by hop), so a stream is not
    throttled by distance. room <= 0: PE is the full queue to wait on, or WAIT_TURN /
    WAIT_FREED (resume at pe[p, P_KEY]). A tree over a shared link sends only in its turn,
    and no further than the next PE's turn or the first wake its wavelets could cause."""
    nc = S.cfg[CFG_NCOLORS]
    stages = S.cfg[CFG_QDEPTH] + S.cfg[CFG_RAMP_ON] + S.cfg[CFG_RAMP_OFF]
    hop = S.cfg[CFG_HOP]
    ramps = n_pes(S) * 4
    t = S.pe[p, P_CLOCK]
    room = 1 << 40
    fullest = -1
    freed = 0
    shared = False
    wake = 1 << 40  # the soonest a wavelet of p's can wake a destination PE
    for e in range(n):
        if S.wparent[e] >= 0 and S.link_src[S.wlink[e]] == MANY:
            shared = True
        if S.wdeliver[e] and queues:
            q = S.wnode[e]
            if S.link_src[ramps + q] == MANY:
                shared = True
            state = S.pe[q, P_STATE]
            land = S.cfg[CFG_RAMP_ON] + S.whops[e] * hop + S.cfg[CFG_RAMP_OFF]
            if state == S_IDLE or (state == S_RECV and S.pe[q, P_WAIT] == color):
                wake = min(wake, land + quiet_after_wake(S, q, color))
            if S.pe[q, P_UTBASE] >= 0 and microthread_waiting(S, q, color) >= 0:
                wake = min(wake, land)
            qi = q * nc + color
            limit = min(S.qoff[qi + 1] - S.qoff[qi], stages + S.whops[e] * hop)
            free, at = room_at(S, qi, limit, t)
            if free < room:
                room = free
                fullest = q
                freed = at
    if room <= 0:
        if freed > t:
            S.pe[p, P_KEY] = freed
            return 0, WAIT_FREED
        return room, fullest
    if shared:
        t_send, step = send_time(S, p, h)
        if must_wait(S, p, t_send):
            S.pe[p, P_KEY] = t_send
            return 0, WAIT_TURN
        if step == 0:
            return 1, fullest
        # sends at t_send + i * step, before anything another PE can still do: the next
        # runnable PE's turn, or a PE these wavelets wake
        horizon = t_send + min(wake, 1 << 40)
        if S.misc[M_HEAP] > 0:
            horizon = min(horizon, S.pe[S.heap[0], P_KEY])
        room = min(room, max(1, (horizon - t_send + step - 1) // step))
    return room, fullest


@kernel
def vector_operands(S, pc):
    """(destination, source 0, source 1) DSD registers of the vector op at pc, -1 where the
    op has none (the same reading as vector.vector_op's)."""
    code = S.code
    sem = code[pc, C_SEM]
    dst = code[pc, C_F0] if sem != SEM_VRED else -1
    s0 = code[pc, C_F1] if sem != SEM_VFILL else -1
    two = sem == SEM_VBIN or sem == SEM_VFMA or (sem == SEM_VRED and code[pc, C_FN] == FN_DOT)
    return dst, s0, code[pc, C_F2] if two else -1


@kernel
def quiet_after_wake(S, q, color):
    """Cycles after a wavelet of color wakes PE q in which q can do nothing another PE could
    notice: q streams from that queue alone into memory or a reduction, and nobody else
    waits on the queue, so it only takes wavelets, which land one a cycle at most, until
    its op ends. 0 otherwise (a task starts, or the op sends or takes other colors)."""
    pc = S.pe[q, P_PC]
    sem = S.code[pc, C_SEM]
    nc = S.cfg[CFG_NCOLORS]
    qi = q * nc + color
    if S.pe[q, P_STATE] != S_RECV or sem < SEM_VUN or sem > SEM_VRED or S.qwaiter[qi] >= 0:
        return 0
    dst, s0, s1 = vector_operands(S, pc)
    if dst >= 0 and S.dsd[q, dst, 0] != DK_MEM:
        return 0
    per = 0  # wavelets of color per element
    for d in (s0, s1):
        if d >= 0 and S.dsd[q, d, 0] == DK_FIN:
            if S.dsd[q, d, 1] != color:
                return 0
            per += 1
    n = S.dsd[q, dst if dst >= 0 else s0, 2]
    return max(0, (n - S.pe[q, P_VPROG]) * per - S.qcount[qi] - 1)


@kernel
def send_time(S, p, h):
    """(cycle, step) of context p's next send (from PE h): a scalar send now (step 0: one
    wavelet); a vector op
    streaming from memory now, then every `step` cycles; one with a fabric input when its
    next input wavelet has arrived (step 0: later ones are not known yet)."""
    t = S.pe[p, P_CLOCK]
    if p >= S.misc[M_STREAM0]:  # a host stream (stream.py): one wavelet at its clock
        return t, 0
    pc = S.pe[p, P_PC]
    code = S.code
    sem = code[pc, C_SEM]
    if sem < SEM_VUN or sem > SEM_VRED:
        return t, 0
    _, s0, s1 = vector_operands(S, pc)
    step = code[pc, C_CPE]
    nc = S.cfg[CFG_NCOLORS]
    taken = -1  # the color s0 takes its wavelet from
    for d in (s0, s1):
        if d < 0 or S.dsd[p, d, 0] != DK_FIN:
            continue
        step = 0
        color = S.dsd[p, d, 1]
        qi = h * nc + color
        k = 1 if color == taken else 0  # both sources on one color: the second wavelet
        taken = color
        if S.qcount[qi] > k:
            base = S.qoff[qi]
            cap = S.qoff[qi + 1] - base
            t = max(t, S.qtime[base + (S.qhead[qi] + k) % cap])
    return t, step


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
    """p cannot send on color now (dest_room said room <= 0 and why)."""
    if q < 0:
        at = S.pe[p, P_KEY]
        if q == WAIT_FREED and at > S.pe[p, P_CLOCK]:
            if S.misc[M_TRACE]:
                stall(S, p, at, STALL_SEND, color)
            S.pe[p, P_STALL] += at - S.pe[p, P_CLOCK]
            S.pe[p, P_CLOCK] = at
        make_runnable(S, p, at)
        return
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


@kernel
def send_wavelet(S, p, color, payload, t, n):
    """send_kind for a data wavelet."""
    send_kind(S, p, color, payload, t, n, DATA)


@kernel
def send_kind(S, p, color, payload, t, n, kind):
    """Deliver one wavelet leaving p at cycle t down its walked tree (n entries); the caller
    has checked dest_room. Each link carries one wavelet per cycle: the wavelet takes it at
    max(ready, link free), then needs the hop latency to reach the next router. kind: DATA,
    CTL_TASK (a control wavelet, marked in the queue; payload = its control task ID) or
    CTL_ROUTE (a control wavelet that stops at the destination routers)."""
    nc = S.cfg[CFG_NCOLORS]
    hop = S.cfg[CFG_HOP]
    ramp_off = S.cfg[CFG_RAMP_OFF]
    n_pe = n_pes(S)
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
            S.link_n[link] += 1
            ready = depart + hop
            S.pe[p, P_HOPS] += 1
        S.tready[e] = ready
        if S.wdeliver[e] and kind != CTL_ROUTE:
            q = S.wnode[e]
            ramp = n_pe * 4 + q  # the link from q's router down its ramp
            depart = max(ready, S.link_free[ramp])
            S.link_free[ramp] = depart + 1
            S.link_n[ramp] += 1
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
                S.qctl[cur] = S.qctl[prev]
                j -= 1
            slot = base + (h + j) % cap
            S.qtime[slot] = t_land
            S.qpay[slot] = payload
            S.qctl[slot] = 0
            if kind == CTL_TASK:
                S.qctl[slot] = 1
                S.qnctl[qi] += 1
            S.qcount[qi] += 1
            if S.misc[M_DEBUG]:
                color_event(S, p, q, color, payload, t_land)
            if S.misc[M_TRACE]:
                record(S, EV_LAND, q, t_land, t_land, color, payload, kind)
            state = S.pe[q, P_STATE]
            if state == S_RECV or state == S_IDLE or S.pe[q, P_UTBASE] >= 0:
                wake_receiver(S, q, color, t_land, payload if kind == CTL_TASK else -1)
    S.pe[p, P_SENT] += 1
    if S.misc[M_TRACE]:
        record(S, EV_SENT, p, t, t, color, payload, kind)


@kernel
def route_fault(r):
    """Fault code for a negative walk result."""
    return ROUTE_FAULTS[-r]


@kernel
def microthread_waiting(S, q, color):
    """The microthread row of PE q whose op waits for a wavelet of color, or -1."""
    base = S.pe[q, P_UTBASE]
    for e in range(base, base + S.cfg[CFG_MICROTHREADS]):
        if S.pe[e, P_STATE] == S_RECV and S.pe[e, P_WAIT] == color:
            return e
    return -1


@kernel
def wake_receiver(S, q, color, land, ctl_id):
    """A wavelet of color landed in q's queue at cycle land (ctl_id >= 0: a control wavelet
    for that control task): wake q, or its microthread, if it waits for it or for a task it
    can start."""
    if S.pe[q, P_UTBASE] >= 0:
        e = microthread_waiting(S, q, color)
        if e >= 0:
            make_runnable(S, e, max(S.pe[e, P_CLOCK], land))
    state = S.pe[q, P_STATE]
    if state == S_RECV and S.pe[q, P_WAIT] == color:
        make_runnable(S, q, max(S.pe[q, P_CLOCK], land))
    elif state == S_IDLE:
        img = S.pe[q, P_IMG]
        task = S.color_task[img, color] if ctl_id < 0 else S.ctl_task[img, ctl_id]
        if task >= 0 and not (S.pe[q, P_TBLK] >> task) & 1:
            S.pe[q, P_PICK] = 1
            make_runnable(S, q, max(S.pe[q, P_CLOCK], land))
