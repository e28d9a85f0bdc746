"""Host side of the host -> fabric streams (stream.py): adding streams to a loaded state.

A stream is added before it runs, in one step per call: its scheduler row goes after the
existing rows, its payloads after the other streams' (S.spay), and the two load-time tables
the fabric's time order rests on are brought up to date for a source that is not a PE:
the links and ramps its tree can cross get it as one more source (a link two sources can
cross is taken in time order: fabric.mark_link_sources), and each input queue it can
deliver to gets a ring long enough for the wavelets it may put in flight there
(fabric.queue_storage). Rings only grow, and only empty ones may (checked here)."""

from __future__ import annotations

import numpy as np

from .fabric import DX, DY, MANY, NO_SOURCE, NSIDE, RAMP_BIT, delivery_hops
from .kinds import (
    CFG_HOP,
    CFG_QDEPTH,
    CFG_RAMP_OFF,
    CFG_RAMP_ON,
    M_STREAM0,
    M_WALK_KEY,
    NMEMO,
    NSTRF,
    ST_COLOR,
    ST_LEN,
    ST_OFF,
    ST_PE,
    ST_SENT,
    ST_SIDE,
    ST_STEP,
    STREAM_FRAC,
)
from .state import blank_rows

WAVELET_BYTES = 4  # wse-facts.md Fabric: a wavelet carries a 32-bit payload


class StreamError(ValueError):
    """A stream the mesh cannot take as it is (its queues hold wavelets already)."""


def wavelet_step(bytes_per_cycle: float, sharing: int) -> int:
    """Cycles per wavelet of one of `sharing` streams on a host link of bytes_per_cycle, in
    1/2**STREAM_FRAC cycles: at least one cycle (a link moves one wavelet a cycle)."""
    one = 1 << STREAM_FRAC
    return max(one, int(np.ceil(WAVELET_BYTES * sharing * one / bytes_per_cycle)))


def add_streams(S, streams, bytes_per_cycle: float, width: int, height: int):
    """S with `streams` added: a list of (edge PE, color, side (a direction), uint32
    payloads). Every stream not yet done shares the host link equally. Returns (the new
    state, the new streams' indices)."""
    n_rows = S.pe.shape[0]
    first = int(S.misc[M_STREAM0]) if len(S.strm) else n_rows
    old = len(S.strm)
    strm = np.zeros((old + len(streams), NSTRF), np.int64)
    strm[:old] = S.strm
    off = len(S.spay)
    for i, (p, color, side, payload) in enumerate(streams):
        row = strm[old + i]
        row[[ST_PE, ST_COLOR, ST_SIDE, ST_OFF, ST_LEN]] = (p, color, side, off, len(payload))
        off += len(payload)
    spay = np.concatenate([S.spay] + [np.asarray(s[3], np.uint32) for s in streams])
    running = strm[:, ST_SENT] < strm[:, ST_LEN]
    strm[running, ST_STEP] = wavelet_step(bytes_per_cycle, int(running.sum()))
    nc = S.rx.shape[0] // (width * height)
    rx, tx = _union(S.rx, nc), _union(S.tx, nc)
    trees = [_tree(rx, tx, p, color, width, height) for p, color, _, _ in streams]
    S = _grow_rings(S, streams, trees, width, height)
    S = _grow_rows(S, len(streams))
    S.misc[M_STREAM0] = first
    S.misc[M_WALK_KEY] = -1  # the walk scratch is reused below: no tree stays cached
    for k, (links, ends) in enumerate(trees):  # each stream: one more source of its links
        for i in links + [width * height * 4 + q for q in ends]:
            a = S.link_src[i]
            S.link_src[i] = first + old + k if a in (NO_SOURCE, first + old + k) else MANY
    return S._replace(strm=strm, spay=spay), list(range(old, old + len(streams)))


def _grow_rows(S, n):
    """S with n more scheduler rows (stream rows: off, on no heap)."""
    rows = blank_rows(n)
    regs = np.concatenate([S.regs, np.zeros((n, S.regs.shape[1]), S.regs.dtype)])
    return S._replace(
        pe=np.concatenate([S.pe, rows]),
        regs=regs,
        regf=regs.view(np.float32),
        dsd=np.concatenate([S.dsd, np.zeros((n, *S.dsd.shape[1:]), S.dsd.dtype)]),
        bmemo=np.concatenate([S.bmemo, np.full((n, NMEMO), -1, np.int64)]),
        acc=np.concatenate([S.acc, np.zeros(n)]),
        heap=np.concatenate([S.heap, np.zeros(n, np.int64)]),
    )


def _union(table, nc):
    """Route bits of every switch position or-ed: [n_pe, colors]."""
    return np.bitwise_or.reduce(table, axis=1).reshape(-1, nc)


def _tree(rx, tx, p, color, width, height):
    """(links, PEs delivered to) of every tree a stream entering p's router on color can
    take, at any switch positions (rx, tx: their union)."""
    links, ends = [], []
    seen, todo = {p}, [p]
    while todo:
        node = todo.pop()
        t = int(tx[node, color])
        if t & RAMP_BIT:
            ends.append(node)
        x, y = node % width, node // width
        for d in range(4):
            nx, ny = x + int(DX[d]), y + int(DY[d])
            m = ny * width + nx
            if not t & (1 << d) or not (0 <= nx < width and 0 <= ny < height):
                continue
            if rx[m, color] & (1 << ((d + 2) % 4)):
                links.append(node * 4 + d)
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
    return links, ends


def _grow_rings(S, streams, trees, width, height):
    """S with each queue a stream can deliver to holding what the stream may put in flight
    to it (fabric.queue_storage's rule, from the stream's entry router: the paths from it
    are those of a wavelet entering its router from the stream's side)."""
    n_pe = width * height
    nc = S.rx.shape[0] // n_pe
    seeds = np.zeros(n_pe, np.uint8)
    seeded = S.rx & ~np.uint8(RAMP_BIT)  # no PE sends: only the streams' entry routers
    reached = np.zeros(n_pe * nc, bool)
    for (p, color, side, _), (_, ends) in zip(streams, trees):
        seeds[p] = 1
        enters = (S.rx[p * nc + color] & (1 << side)) != 0
        seeded[p * nc + color, enters] |= RAMP_BIT  # a source that goes where `side` goes
        reached[np.asarray(ends, np.int64) * nc + color] = True
    hops = np.zeros(n_pe * nc, np.int64)
    scratch = np.zeros((3, n_pe * NSIDE), np.int64)
    delivery_hops(seeded, S.tx, seeds, width, height, scratch, hops)
    cfg = S.cfg
    hop = int(cfg[CFG_HOP])
    diameter = hop * (width + height - 2)
    path = np.where(hops < 0, diameter, np.minimum(hops * hop, diameter))
    need = int(cfg[CFG_QDEPTH] + cfg[CFG_RAMP_ON] + cfg[CFG_RAMP_OFF]) + path
    cap = np.diff(S.qoff)
    want = np.where(reached, np.maximum(cap, need), cap)
    grow = want > cap
    if not grow.any():
        return S
    busy = grow & ((S.qcount > 0) | (S.qwaiter >= 0))
    if busy.any():
        q = int(np.flatnonzero(busy)[0])
        raise StreamError(
            f"the input queue of color {q % nc} at PE ({q // nc % width},{q // nc // width}) "
            "holds wavelets: add streams while the queues they reach are empty"
        )
    qoff = np.zeros(len(want) + 1, np.int64)
    np.cumsum(want, out=qoff[1:])
    ring = dict(
        qpay=np.zeros(qoff[-1], np.uint32),
        qtime=np.zeros(qoff[-1], np.int64),
        qfree=np.full(qoff[-1], -1, np.int64),
        qctl=np.zeros(qoff[-1], np.uint8),
    )
    owner = np.repeat(np.arange(len(cap)), cap)  # the queue of each old slot
    kept = ~grow[owner]  # rings kept are copied as they are
    to = (qoff[owner] + np.arange(len(owner)) - S.qoff[owner])[kept]
    for name, arr in ring.items():
        arr[to] = getattr(S, name)[kept]
    qhead = S.qhead.copy()
    qhead[grow] = 0
    return S._replace(qoff=qoff, qhead=qhead, **ring)
