"""Control wavelets and control tasks (`sendctl`, `.task NAME control ID`).

A control wavelet travels the multicast tree of its color resolved from the current switch
positions, taking links like any wavelet (one wavelet of fabric time). Once it has passed,
every router of the tree (the sender's, each one it crosses, each destination's) applies
its action to its own switch position for the color: advance to the next configured
position (wrapping), reset to 0, or keep; later wavelets take the new route. As with
`switch`, the positions move in the order the emulator sends, not in a global time order.

With a control task ID the wavelet lands in each destination's input queue behind the
wavelets that arrived before it, and when it reaches the head the task picker starts the
destination's control task for that ID (r0 = the ID): data tasks run once per data wavelet
ahead of it, then the control task, which is how a sender ends a stream. `recv` and fabric
inputs take data wavelets only; one that meets a control wavelet at the head faults.
Without an ID the wavelet stops at the destination routers and only moves switches."""

import numpy as np

from ..isa import CONTROL_ACTIONS, CONTROL_IDS
from .fabric import (
    CTL_ROUTE,
    CTL_TASK,
    NPOS,
    block_sender,
    ctl_at_head,
    dest_room_for,
    q_head_time,
    route_fault,
    send_kind,
    walk,
)
from .jit import kernel
from .kinds import CFG_NCOLORS, F_CTL_NO_TASK, M_ROUTE_VER, P_CLOCK, P_FARG, P_IMG, P_TBLK

ACT_KEEP = CONTROL_ACTIONS.index("keep")
ACT_RESET = CONTROL_ACTIONS.index("reset")
# send_control's answers besides minus a fault code
CTL_SENT, CTL_BLOCKED = 0, 1
HAS_CONTROL = CONTROL_IDS  # column of MeshState.ctl_task: control tasks the image declares


@kernel
def move_switch(S, i, action):
    """Apply a control action to route entry i (node * colors + color): reset to position
    0, or advance to the next position that has a route (rx or tx set), wrapping."""
    if action == ACT_RESET:
        S.rpos[i] = 0
        return
    cur = S.rpos[i]
    for k in range(1, NPOS + 1):
        j = (cur + k) % NPOS
        if S.rx[i, j] | S.tx[i, j]:
            S.rpos[i] = j
            return


@kernel
def send_control(S, p, color, action, cid):
    """PE p sends a control wavelet on color (cid: control task ID, -1 none). Returns
    CTL_SENT, CTL_BLOCKED (p waits, as for any send) or minus a fault code (P_FARG: the
    color, or destination PE * CONTROL_IDS + cid for a destination without that task)."""
    nw = walk(S, p, color)
    if nw < 0:
        S.pe[p, P_FARG] = color
        return -route_fault(nw)
    if cid >= 0:
        for e in range(nw):
            if S.wdeliver[e]:
                q = S.wnode[e]
                img = S.pe[q, P_IMG]
                if img < 0 or S.ctl_task[img, cid] < 0:
                    S.pe[p, P_FARG] = q * CONTROL_IDS + cid
                    return -F_CTL_NO_TASK
    room, q = dest_room_for(S, p, p, color, nw, cid >= 0)
    if room <= 0:
        block_sender(S, p, color, q)
        return CTL_BLOCKED
    kind = CTL_TASK if cid >= 0 else CTL_ROUTE
    send_kind(S, p, color, max(cid, 0), S.pe[p, P_CLOCK], nw, kind)
    if action != ACT_KEEP:
        nc = S.cfg[CFG_NCOLORS]
        for e in range(nw):
            move_switch(S, S.wnode[e] * nc + color, action)
        S.misc[M_ROUTE_VER] += 1  # the cached tree (fabric.walk) is stale
    return CTL_SENT


@kernel
def control_pick(S, p, best, best_t):
    """The task picker's choice among p's control tasks whose wavelet is at the head of a
    queue, against the best other task so far (best, ready at best_t; ties: lower id).
    Returns (task, ready, color of the control wavelet's queue or -1 if best stays)."""
    img = S.pe[p, P_IMG]
    nc = S.cfg[CFG_NCOLORS]
    color = -1
    for c in range(nc):
        qi = p * nc + c
        if not ctl_at_head(S, qi):
            continue
        t = S.ctl_task[img, S.qpay[S.qoff[qi] + S.qhead[qi]]]
        if (S.pe[p, P_TBLK] >> t) & 1:
            continue
        ready = max(S.pe[p, P_CLOCK], q_head_time(S, qi), S.task_at[p, t])
        if best < 0 or ready < best_t or (ready == best_t and t < best):
            best = t
            best_t = np.int64(ready)
            color = c
    return best, best_t, color
