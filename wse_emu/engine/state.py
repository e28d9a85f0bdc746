"""The mesh as flat arrays (structure of arrays), bundled in one namedtuple that every
engine kernel takes. No per-PE Python objects."""

from collections import namedtuple

import numpy as np

from .. import isa
from .events import NEVF
from .fp import decode_tables
from .kinds import (
    M_FINISH_PE,
    M_RESUME_PE,
    M_SKIP_PE,
    M_STEP_PE,
    M_STOP_PE,
    M_STREAM0,
    M_WALK_KEY,
    NBANKF,
    NDSDF,
    NMEMO,
    NMISC,
    NPE,
    NSTRF,
    P_HPOS,
    P_IMG,
    P_NEXTW,
    P_STATE,
    P_TSTART,
    P_UTBASE,
    P_UTHOST,
    S_OFF,
)

MeshState = namedtuple(
    "MeshState",
    [
        "code",  # int32[n_insn, NCODE] engine code (all images)
        "pe",  # int64[n_pe + n_ut, NPE] per-PE scalars (kinds.P_*), then microthread rows
        "regs",
        "regf",  # int32[n_pe + n_ut, 16] and its float32 view
        "dsd",  # int64[n_pe + n_ut, 16, NDSDF] (kinds.DSD_*)
        "bank",  # int64[4, NBANKF] scratch: the memory operands of the vector op being costed
        "bmemo",  # int64[n_pe + n_ut, NMEMO] the last vector op each row costed (kinds.NMEMO)
        "stack",  # int64[n_pe, CALL_DEPTH]
        "acc",  # float64[n_pe + n_ut] partial result of a suspended reduction
        "sram8",
        "sram16",
        "sramf",
        "sram32",  # views of one uint8[n_pe, sram_bytes] buffer
        "qpay",
        "qtime",  # uint32 / int64 pool of all input-queue rings
        "qoff",  # int64[n_pe * colors + 1] ring of queue i: qoff[i]..qoff[i+1]-1
        "qhead",
        "qcount",  # int64[n_pe * colors]
        "qwaiter",  # int64[n_pe * colors] first sender blocked on this queue
        "qfree",  # int64 per queue slot: the cycle it was last freed (-1: never used)
        "qctl",  # uint8 per queue slot: 1 if the wavelet there is a control wavelet
        "qnctl",  # int64[n_pe * colors] control wavelets in each queue
        "rx",
        "tx",  # uint8[n_pe * colors, NPOS] route direction bits per switch position
        "rpos",  # int64[n_pe * colors] current switch position
        "wnode",
        "wparent",
        "wlink",
        "whops",
        "wdeliver",
        "wmark",  # the last walked multicast tree (fabric.walk)
        "link_free",  # int64[n_pe * 5] first cycle each link is free
        "link_src",  # int64[n_pe * 5] the one PE whose wavelets can cross it (fabric.py)
        "link_n",  # int64[n_pe * 5] wavelets that took each link (node * 4 + direction, ramps)
        "tready",  # int64[n_pe] scratch: when a wavelet reaches each tree node
        "heap",  # int64[n_pe + n_ut] runnable rows, keyed by pe[:, P_KEY]
        "task_entry",
        "task_color",  # int64[n_img, MAX_TASKS]
        "color_task",  # int64[n_img, colors] data task bound to each color, or -1
        "task_at",  # int64[n_pe, MAX_TASKS] a task starts no earlier (microthread completion)
        "ctl_task",  # int64[n_img, CONTROL_IDS + 1] control task of each ID or -1; last: count
        "flops",  # int64[n_pe, 4] f16, bf16, f32, mixed f16->f32
        "cfg",
        "misc",  # int64[NCFG], int64[NMISC]
        "f16tab",
        "bf16tab",  # float32[65536] decode tables
        "cvt_u",
        "cvt_f",  # uint32[1] and its float32 view: bit casts
        "bp",  # uint8[n_pe, n_insn] breakpoints
        "watch",  # int64[MAX_WATCH, 3] SRAM write watches: pe, first byte, end (pe -1: unused)
        "cwatch",  # int64[MAX_WATCH, 2] fabric watches: pe, color a wavelet lands with
        "lwatch",  # int64[MAX_WATCH] link watches: link id (node * 4 + direction)
        "ev",  # int64[cap, NEVF] trace event buffer (events.py; one row when not tracing)
        "evmask",  # uint8[n_pe] PEs whose events are traced
        "strm",  # int64[n_streams, NSTRF] host streams (stream.py), rows after the PEs'
        "spay",  # uint32 payloads of every host stream, one after the other
    ],
)

# fields that are views of other fields (no memory of their own)
VIEW_FIELDS = ("regf", "sram16", "sramf", "sram32", "cvt_f")

MAX_WATCH = 16


def _misc():
    misc = np.zeros(NMISC, np.int64)
    misc[M_WALK_KEY] = -1  # no tree walked yet
    for slot in (M_SKIP_PE, M_STEP_PE, M_FINISH_PE, M_STOP_PE, M_RESUME_PE):
        misc[slot] = -1
    misc[M_STREAM0] = 1 << 62  # no stream rows
    return misc


def _ctl_table(n_img):
    table = np.full((max(n_img, 1), isa.CONTROL_IDS + 1), -1, np.int64)
    table[:, isa.CONTROL_IDS] = 0  # how many control tasks the image declares
    return table


def blank_rows(n: int) -> np.ndarray:
    """n scheduler rows (S.pe) as a fresh state has them: off, on no heap, in no task, no
    program, no microthreads."""
    pe = np.zeros((n, NPE), np.int64)
    for col in (P_HPOS, P_NEXTW, P_IMG, P_UTBASE, P_UTHOST, P_TSTART):
        pe[:, col] = -1
    pe[:, P_STATE] = S_OFF
    return pe


def new_state(code, n_pe, n_img, cfg, rx, tx, queue_cap, sram_bytes, n_colors, n_ut=0) -> MeshState:
    """n_ut: microthread rows (engine/microthread.py) after the n_pe PE rows."""
    n_all = n_pe + n_ut
    sram8 = np.zeros((n_pe, sram_bytes), np.uint8)
    regs = np.zeros((n_all, isa.N_REGS), np.int32)
    pe = blank_rows(n_all)
    nq = n_pe * n_colors
    qoff = np.zeros(nq + 1, np.int64)
    np.cumsum(queue_cap, out=qoff[1:])
    f16tab, bf16tab = decode_tables()
    cvt_u = np.zeros(1, np.uint32)
    return MeshState(
        code=code,
        pe=pe,
        regs=regs,
        regf=regs.view(np.float32),
        dsd=np.zeros((n_all, isa.N_DSDS, NDSDF), np.int64),
        bank=np.zeros((4, NBANKF), np.int64),
        bmemo=np.full((n_all, NMEMO), -1, np.int64),
        stack=np.zeros((n_pe, isa.CALL_DEPTH), np.int64),
        acc=np.zeros(n_all, np.float64),
        sram8=sram8,
        sram16=sram8.view(np.uint16),
        sramf=sram8.view(np.float32),
        sram32=sram8.view(np.int32),
        qpay=np.zeros(qoff[-1], np.uint32),
        qtime=np.zeros(qoff[-1], np.int64),
        qoff=qoff,
        qhead=np.zeros(nq, np.int64),
        qcount=np.zeros(nq, np.int64),
        qwaiter=np.full(nq, -1, np.int64),
        qfree=np.full(qoff[-1], -1, np.int64),
        qctl=np.zeros(qoff[-1], np.uint8),
        qnctl=np.zeros(nq, np.int64),
        rx=rx.reshape(nq, -1).copy(),
        tx=tx.reshape(nq, -1).copy(),
        rpos=np.zeros(nq, np.int64),
        wnode=np.zeros(n_pe, np.int64),
        wparent=np.zeros(n_pe, np.int64),
        wlink=np.zeros(n_pe, np.int64),
        whops=np.zeros(n_pe, np.int64),
        wdeliver=np.zeros(n_pe, np.uint8),
        wmark=np.zeros(n_pe, np.int64),
        link_free=np.zeros(n_pe * 5, np.int64),
        link_src=np.full(n_pe * 5, -1, np.int64),
        link_n=np.zeros(n_pe * 5, np.int64),
        tready=np.zeros(n_pe, np.int64),
        heap=np.zeros(n_all, np.int64),
        task_entry=np.full((max(n_img, 1), isa.MAX_TASKS), -1, np.int64),
        task_color=np.full((max(n_img, 1), isa.MAX_TASKS), -1, np.int64),
        color_task=np.full((max(n_img, 1), n_colors), -1, np.int64),
        task_at=np.zeros((n_pe, isa.MAX_TASKS), np.int64),
        ctl_task=_ctl_table(n_img),
        flops=np.zeros((n_pe, 4), np.int64),
        cfg=np.asarray(cfg, np.int64),
        misc=_misc(),
        f16tab=f16tab,
        bf16tab=bf16tab,
        cvt_u=cvt_u,
        cvt_f=cvt_u.view(np.float32),
        bp=np.zeros((n_pe, max(len(code), 1)), np.uint8),
        watch=np.full((MAX_WATCH, 3), -1, np.int64),
        cwatch=np.full((MAX_WATCH, 2), -1, np.int64),
        lwatch=np.full(MAX_WATCH, -1, np.int64),
        ev=np.zeros((1, NEVF), np.int64),
        evmask=np.zeros(n_pe, np.uint8),
        strm=np.zeros((0, NSTRF), np.int64),
        spay=np.zeros(0, np.uint32),
    )
