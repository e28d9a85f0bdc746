"""Timelines of a run for Perfetto (https://ui.perfetto.dev) and chrome://tracing, in the
Chrome trace-event JSON format.

The engine records events into a flat buffer only while a trace is on (engine/events.py),
filtered there by a rectangle of PEs and a cycle window; the run pauses whenever the
buffer is three quarters full, and Tracer.drain copies it out as one NumPy block. At the
end the blocks are sorted by track and time and written to the file in chunks.

Layout: one process per PE, "PE (x,y)", sorted by position; in it the threads `thread`
(tasks; stalls and idle nested in them or between them), `datapath` (vector ops: a memory
op from when it enters the datapath to its last element, a fabric op or reduction on the
thread from its start to its last element), `fabric` (instants: each wavelet sent and each
one landing in an input queue, with color and payload) and `microthread U` (its ops and
stalls); a counter per input queue ("queue cN": wavelets in it). Time: `ts` and `dur`
count emulated cycles, so 1 us on the timeline is 1 cycle (`otherData` says so and gives
the arch clock)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine import kinds as K
from .engine.events import (
    E_A,
    E_KIND,
    E_ROW,
    E_T0,
    E_T1,
    EV_IDLE,
    EV_LAND,
    EV_POP,
    EV_SENT,
    EV_STALL,
    EV_TASK,
    EV_VOP,
    NEVF,
)
from .paths import unwritable

DEFAULT_MAX_EVENTS = 1_000_000  # engine events kept: 56 B each in memory, ~145 B in the file
DEFAULT_BUFFER = 1 << 16  # engine buffer rows (at least: Tracer.start)
EV_HALT = 100  # written from the final state, not by the engine
THREAD, DATAPATH, FABRIC, MICROTHREAD = range(4)  # tids; microthread u is MICROTHREAD + u
CHUNK = 1 << 15
TOP = (1 << 62) - 1  # the last cycle there is (int64 clocks)
STALL_NAMES = (
    "stall: receive (queue empty)",
    "stall: send (queue full)",
    "stall: waiting for a microthread",
    "wait: datapath (start-up, results, load)",
)
STALL_ARGS = ("color", "color", "microthread", "")


THREAD_NAMES = ("thread", "datapath", "fabric")


def _meta(what: str, pid: int, tid: int, key: str, value) -> str:
    """A metadata event (names and sort order of processes and threads)."""
    where = f'"ph": "M", "ts": 0, "pid": {pid}, "tid": {tid}'
    return f'{{"name": "{what}", {where}, "args": {{"{key}": {value}}}}}'


class TraceError(ValueError):
    """A trace option that cannot be honoured: a bad filter or an unwritable path."""


@dataclass
class TraceOptions:
    """What Mesh.run(trace=...) records. pes: a rectangle "X,Y,WxH" (or "X,Y": one PE) or a
    tuple (x, y, w, h), default the whole mesh; cycles: "A:B" (either end may be left
    out) or a tuple (A, B), the cycles A..B inclusive, default the whole run; max_events:
    engine events kept, after which recording stops (the summary says where); buffer:
    engine buffer rows between drains."""

    path: str | os.PathLike
    pes: str | tuple | None = None
    cycles: str | tuple | None = None
    max_events: int = DEFAULT_MAX_EVENTS
    buffer: int = DEFAULT_BUFFER


@dataclass
class TraceSummary:
    path: str
    events: int  # engine events written (slices, instants, queue changes)
    bytes: int
    cut_at: int | None  # the cycle near which max_events stopped recording, or None
    lost: int  # events a full buffer could not take (0 unless one instruction overflowed it)

    def message(self) -> str:
        text = f"trace: wrote {self.path} ({self.events:,} events, {self.bytes:,} B)"
        if self.cut_at is not None:
            text += (
                f"; stopped at the event cap near cycle {self.cut_at:,}: narrow it with "
                "--trace-pes / --trace-cycles or raise --trace-max-events"
            )
        if self.lost:
            text += f"; {self.lost:,} events lost to a full buffer (raise the buffer)"
        return text


def parse_rect(spec, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) from "X,Y,WxH", "X,Y" or a tuple; TraceError unless inside the mesh."""
    if isinstance(spec, str):
        m = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*(\d+)\s*[xX]\s*(\d+)\s*)?", spec)
        if not m:
            raise TraceError(f"PE rectangle must look like X,Y,WxH (e.g. 0,0,4x4), got {spec!r}")
        x, y = int(m[1]), int(m[2])
        w, h = (int(m[3]), int(m[4])) if m[3] else (1, 1)
    else:
        try:
            x, y, w, h = (int(v) for v in spec)
        except (TypeError, ValueError):
            raise TraceError(f"PE rectangle must be (x, y, w, h), got {spec!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise TraceError(
            f"PE rectangle at ({x},{y}) size {w}x{h} is not inside the {width}x{height} mesh"
        )
    return x, y, w, h


def parse_window(spec) -> tuple[int, int]:
    """(first, last) cycle from "A:B" (an end may be left out) or a tuple; A < B."""
    top = TOP
    if isinstance(spec, str):
        m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", spec)
        if not m:
            raise TraceError(f"cycle window must look like A:B (e.g. 0:5000), got {spec!r}")
        lo, hi = int(m[1] or 0), int(m[2] or top)
    else:
        try:
            lo, hi = (int(v) for v in spec)
        except (TypeError, ValueError):
            raise TraceError(f"cycle window must be (first, last), got {spec!r}") from None
    if lo < 0 or hi > top or hi <= lo:
        raise TraceError(f"cycle window {lo}:{hi} is empty: it needs 0 <= A < B")
    return lo, hi


def check_path(path) -> Path:
    """Refuse, before the run, a trace path that cannot be written."""
    problem = unwritable(path)
    if problem:
        raise TraceError(problem)
    return Path(path)


def _count(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise TraceError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class Tracer:
    """One traced Mesh.run: start() turns the engine's recording on, drain() after every
    engine call empties its buffer, stop() turns it off, write() writes the file."""

    def __init__(self, mesh, options: TraceOptions | str | os.PathLike):
        if not isinstance(options, TraceOptions):
            options = TraceOptions(options)
        self.mesh = mesh
        self.path = check_path(options.path)
        self.rect = parse_rect(options.pes, mesh.width, mesh.height) if options.pes else None
        self.window = parse_window(options.cycles) if options.cycles else (0, TOP)
        self.max_events = _count(options.max_events, "max_events", 1)
        self.buffer = _count(options.buffer, "buffer", 16)
        self.blocks: list[np.ndarray] = []
        self.kept = 0
        self.cut_at = None
        self.lost = 0

    def mask(self) -> np.ndarray:
        grid = np.zeros((self.mesh.height, self.mesh.width), np.uint8)
        x, y, w, h = self.rect or (0, 0, self.mesh.width, self.mesh.height)
        grid[y : y + h, x : x + w] = 1
        return grid.reshape(-1) & (self.mesh.program.pe_image >= 0)

    def start(self):
        """Give the engine its buffer. The run pauses for a drain only between instructions,
        so the buffer keeps room for the most one instruction can record: a stream op
        handles at most one input queue's capacity of elements per call, each element
        sending a wavelet (one event, plus one landing per traced destination) and taking
        up to two (a take and a stall each)."""
        mask = self.mask()
        S = self.mesh.state
        qcap = int(np.diff(S.qoff).max()) if len(S.qoff) > 1 else 0
        headroom = qcap * (int(mask.sum()) + 5) + 64
        rows = max(self.buffer, 2 * headroom)
        S = S._replace(ev=np.zeros((rows, NEVF), np.int64), evmask=mask.astype(np.uint8))
        misc = S.misc
        misc[K.M_EV_N] = 0
        misc[K.M_EV_LOST] = 0
        misc[K.M_EV_LO], misc[K.M_EV_HI] = self.window
        misc[K.M_EV_SOFT] = rows - headroom
        misc[K.M_TRACE] = 1
        self.mesh.state = S

    def drain(self):
        misc = self.mesh.state.misc
        n = int(misc[K.M_EV_N])
        take = min(n, self.max_events - self.kept)
        if take > 0:
            self.blocks.append(self.mesh.state.ev[:take].copy())
            self.kept += take
        misc[K.M_EV_N] = 0
        if misc[K.M_TRACE] and self.kept >= self.max_events:
            misc[K.M_TRACE] = 0  # the cap: recording stops, the run goes on
            self.cut_at = int(max(b[:, E_T0].max() for b in self.blocks))

    def stop(self):
        S = self.mesh.state
        self.lost = int(S.misc[K.M_EV_LOST])
        S.misc[K.M_TRACE] = 0
        n_pe = S.evmask.shape[0]
        self.mesh.state = S._replace(
            ev=np.zeros((1, NEVF), np.int64), evmask=np.zeros(n_pe, np.uint8)
        )
        self._final = self._final_events(S, n_pe)

    def _final_events(self, S, n_pe) -> np.ndarray:
        """Halts, and the tasks still open when the run ended, as event rows."""
        pe = S.pe[:n_pe]
        traced = np.flatnonzero(S.evmask)
        lo, hi = self.window
        rows = []
        if self.cut_at is None:
            for p in traced:
                clock, state = int(pe[p, K.P_CLOCK]), int(pe[p, K.P_STATE])
                if state == K.S_HALT and lo <= pe[p, K.P_HALTCLK] <= hi:
                    t = int(pe[p, K.P_HALTCLK])
                    rows.append((EV_HALT, p, t, t, 0, 0, 0))
                start = int(pe[p, K.P_TSTART])
                if state not in (K.S_HALT, K.S_IDLE, K.S_OFF) and 0 <= start <= hi and clock >= lo:
                    task = int(pe[p, K.P_TASK])
                    rows.append((EV_TASK, p, max(start, lo), min(clock, hi), task, 0, 1))
        return np.array(rows, np.int64).reshape(-1, NEVF)

    def write(self, program_name: str = "") -> TraceSummary:
        events = np.concatenate(self.blocks + [self._final]) if self.blocks else self._final
        self.blocks = []
        rect = self.rect or (0, 0, self.mesh.width, self.mesh.height)
        lo, hi = self.window
        meta = {
            "program": program_name,
            "mesh": f"{self.mesh.width}x{self.mesh.height}",
            "arch": self.mesh.arch.name,
            "clock_hz": self.mesh.arch.clock_hz,
            "time_unit": "ts and dur are emulated cycles: 1 us on the timeline = 1 cycle",
            "pes": "x,y,w,h = %d,%d,%d,%d" % rect,
            "cycles": [lo, hi if hi < TOP else None],
            "cut_at_cycle": self.cut_at,
            "events_lost": self.lost,
        }
        with open(self.path, "w") as f:
            _Writer(f, self.mesh, self.mask()).write(events, meta)
        return TraceSummary(
            str(self.path), len(events), self.path.stat().st_size, self.cut_at, self.lost
        )


class _Writer:
    """Formats event rows as trace-event JSON, streamed in chunks."""

    def __init__(self, f, mesh, mask):
        self.f = f
        self.mesh = mesh
        self.mask = mask
        self.first = True
        self.names: dict = {}

    def emit(self, lines):
        if not lines:
            return
        sep = ",\n"
        self.f.write(("" if self.first else sep) + sep.join(lines))
        self.first = False

    def write(self, events: np.ndarray, meta: dict):
        head = '{"displayTimeUnit": "ns", "otherData": %s,\n"traceEvents": [\n'
        self.f.write(head % json.dumps(meta))
        S = self.mesh.state
        n_pe = self.mesh.n_pe
        rows = events[:, E_ROW]
        ut = rows >= n_pe
        pid = np.where(ut, S.pe[rows, K.P_UTHOST], rows)
        kind = events[:, E_KIND]
        tid = np.where(kind == EV_VOP, DATAPATH, THREAD)
        tid = np.where((kind == EV_SENT) | (kind == EV_LAND), FABRIC, tid)
        tid = np.where(ut, MICROTHREAD + S.pe[rows, K.P_UTID], tid)
        self.emit(self._metadata(pid, tid))
        keep = kind != EV_POP
        dur = events[:, E_T1] - events[:, E_T0]
        order = np.lexsort((-dur[keep], events[keep, E_T0], tid[keep], pid[keep]))
        ev, pid_k, tid_k = events[keep][order], pid[keep][order], tid[keep][order]
        for s in range(0, len(ev), CHUNK):
            self.emit(
                [
                    self._event(r, p, t)
                    for r, p, t in zip(
                        ev[s : s + CHUNK].tolist(),
                        pid_k[s : s + CHUNK].tolist(),
                        tid_k[s : s + CHUNK].tolist(),
                    )
                ]
            )
        self._counters(events)
        self.f.write("\n]}\n")

    def _metadata(self, pid, tid) -> list[str]:
        width = self.mesh.width
        used = {}
        for p in np.flatnonzero(self.mask).tolist():
            used[p] = {THREAD, DATAPATH, FABRIC}
        for p, t in set(zip(pid.tolist(), tid.tolist())):
            used.setdefault(p, set()).add(t)
        out = []
        for p in sorted(used):
            out.append(_meta("process_name", p, 0, "name", f'"PE ({p % width},{p // width})"'))
            out.append(_meta("process_sort_index", p, 0, "sort_index", p))
            for t in sorted(used[p]):
                name = THREAD_NAMES[t] if t < MICROTHREAD else f"microthread {t - MICROTHREAD}"
                out.append(_meta("thread_name", p, t, "name", f'"{name}"'))
                out.append(_meta("thread_sort_index", p, t, "sort_index", t))
        return out

    def _task_name(self, p: int, task: int) -> str:
        key = ("task", p, task)
        if key not in self.names:
            image = self.mesh.program.images[self.mesh.program.pe_image[p]]
            name = "main" if task < 0 else image.tasks[task][0]
            self.names[key] = json.dumps(name)
        return self.names[key]

    def _op(self, pc: int) -> tuple[str, str]:
        if pc not in self.names:
            from .asm.disasm import disassemble

            prog = self.mesh.program
            text = disassemble(prog.code[pc])
            self.names[pc] = (json.dumps(text.split()[0]), json.dumps(prog.where(pc)))
        return self.names[pc]

    def _event(self, r, pid: int, tid: int) -> str:
        kind, row, t0, t1, a, b, c = r
        where = f'"ts": {t0}, "pid": {pid}, "tid": {tid}'
        span = f'"ph": "X", {where}, "dur": {t1 - t0}'
        if kind == EV_TASK:
            name = self._task_name(pid, a)
            if c:
                name = name[:-1] + ' (unfinished)"'
            return f'{{"name": {name}, "cat": "task", {span}}}'
        if kind == EV_VOP:
            name, source = self._op(a)
            args = f'{{"pc": {a}, "elements": {b}, "source": {source}}}'
            return f'{{"name": {name}, "cat": "vector", {span}, "args": {args}}}'
        if kind == EV_STALL:
            key = STALL_ARGS[a]
            args = f', "args": {{"{key}": {b}}}' if key else ""
            return f'{{"name": "{STALL_NAMES[a]}", "cat": "stall", {span}{args}}}'
        if kind == EV_IDLE:
            return f'{{"name": "idle (no task ready)", "cat": "idle", {span}}}'
        instant = f'"ph": "i", "s": "t", {where}'
        if kind == EV_HALT:
            return f'{{"name": "halt", "cat": "task", {instant}}}'
        verb = "send" if kind == EV_SENT else "arrive"
        what = "control " if c else ""
        args = f'{{"color": {a}, "payload": "0x{b & 0xFFFFFFFF:08x}"}}'
        return f'{{"name": "{verb} {what}c{a}", "cat": "wavelet", {instant}, "args": {args}}}'

    def _counters(self, events: np.ndarray):
        """Each input queue's depth after every landing and every take, as a counter. The
        depth before the window opened is not known: each queue's count starts at the
        smallest value that keeps it from going negative."""
        kind = events[:, E_KIND]
        sel = (kind == EV_LAND) | (kind == EV_POP)
        if not sel.any():
            return
        nc = self.mesh.arch["colors"]
        q = events[sel, E_ROW] * nc + events[sel, E_A]
        t = events[sel, E_T0]
        delta = np.where(kind[sel] == EV_LAND, 1, -1)
        order = np.lexsort((-delta, t, q))
        q, t, delta = q[order], t[order], delta[order]
        depth = np.cumsum(delta)
        starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
        sizes = np.diff(np.r_[starts, len(q)])
        depth -= np.repeat(depth[starts] - delta[starts], sizes)
        low = np.minimum.reduceat(depth, starts)
        depth -= np.repeat(np.minimum(low, 0), sizes)
        last = np.r_[(q[1:] != q[:-1]) | (t[1:] != t[:-1]), True]  # one value per (queue, cycle)
        q, t, depth = q[last], t[last], depth[last]
        for s in range(0, len(q), CHUNK):
            self.emit(
                [
                    f'{{"name": "queue c{qq % nc}", "ph": "C", "ts": {tt}, "pid": {qq // nc}, '
                    f'"tid": 0, "args": {{"wavelets": {d}}}}}'
                    for qq, tt, d in zip(
                        q[s : s + CHUNK].tolist(),
                        t[s : s + CHUNK].tolist(),
                        depth[s : s + CHUNK].tolist(),
                    )
                ]
            )
