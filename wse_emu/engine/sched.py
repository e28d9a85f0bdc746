"""The scheduler's heap of runnable PEs, keyed by (clock, PE index) for determinism, and
the turn rule that keeps cross-PE decisions in time order whatever the lag window."""

from .jit import kernel
from .kinds import M_HEAP, P_HPOS, P_KEY, P_STATE, S_RUN


@kernel
def _less(pe, a, b):
    ka = pe[a, P_KEY]
    kb = pe[b, P_KEY]
    return ka < kb or (ka == kb and a < b)


@kernel
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


@kernel
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


@kernel
def make_runnable(S, p, key):
    S.pe[p, P_STATE] = S_RUN
    S.pe[p, P_KEY] = key
    if S.pe[p, P_HPOS] < 0:
        heap_push(S, p)


@kernel
def must_wait(S, p, t):
    """Would an action of the running PE p at cycle t come after another PE's turn? Every
    runnable PE is on the heap and a woken PE resumes no earlier than its waker, so nothing
    can still happen before the heap's smallest (key, index): p acts at t in time order
    (ties: lower index first) only if (t, p) comes before it. Used where the order of
    actions of different PEs decides timing or results (shared links, task choice)."""
    if S.misc[M_HEAP] == 0:
        return False
    q = S.heap[0]
    k = S.pe[q, P_KEY]
    return k < t or (k == t and q < p)
