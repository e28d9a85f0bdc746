"""Reverse execution for the Session: record, reverse-stepi, reverse-continue, goto. Every
target is a point of the recording (reached by exact replay, record.py) or a forward run
from the last point before it, so what you see going back is what a forward run showed."""

from __future__ import annotations

import copy

import numpy as np

from ..engine import kinds as K
from ..runtime import RunResult
from .record import DEFAULT_INTERVAL, DebugError, Mark, Recording, pe_columns, restore

NO_RECORD = "reverse execution needs a recording: type 'record' first (from then on the mesh is "
NO_RECORD += "copied every few units, so you can go back to any point after it)"


def _size(n: int) -> str:
    if n < 2**10:
        return f"{n} bytes"
    return (f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB") + f" ({n} bytes)"


class ReverseMixin:
    """Session methods for the recording (the Session holds rec, _replaying, focus, ...)."""

    # ------------------------------------------------------------------ bookkeeping
    def _config(self):
        """The breakpoints and watchpoints as they are now, copied once per change."""
        version, cfg = self._config_cache
        if version != self._config_version:
            cfg = copy.deepcopy((self.breakpoints, self.watches))
            self._config_cache = (self._config_version, cfg)
        return cfg

    def _mark(self) -> Mark:
        instr, clock = pe_columns(self.S)
        hits = {n: o.hits for n, o in [*self.breakpoints.items(), *self.watches.items()]}
        status = self.last.status if self.last is not None else "none"
        return Mark(self._at_break, hits, status, instr, clock, int(instr.sum()))

    def _need_rec(self) -> Recording:
        if self.rec is None:
            raise DebugError(NO_RECORD)
        return self.rec

    # ------------------------------------------------------------------ commands
    def record_start(self, interval: int | None = None) -> list[str]:
        if self.rec is not None:
            raise DebugError("already recording (record stop ends it)")
        n = DEFAULT_INTERVAL if interval is None else interval
        self.rec = Recording(self.S, self._mark(), n)
        return [f"Recording from here: a snapshot of the mesh every {n} units."]

    def record_stop(self) -> list[str]:
        self._need_rec()
        self.rec = None
        return ["Recording stopped; its snapshots are freed."]

    def record_interval(self, n: int) -> list[str]:
        if n < 1:
            raise DebugError("the snapshot interval must be at least 1")
        if self.rec is not None:
            self.rec.interval = n
        return [f"Snapshot interval: {n} units."]

    def record_info(self) -> list[str]:
        rec = self.rec
        if rec is None:
            return ["Not recording (type 'record' to start)."]
        snap, log = rec.nbytes()
        p = self.fp
        first, last = int(rec.marks[0].clock[p]), int(self.S.pe[p, K.P_CLOCK])
        return [
            f"Recording since tile {self.focus}'s cycle {first} (now {last}): {rec.now} units "
            "logged (a unit: one instruction of a tile, or a continue)",
            f"a snapshot every {rec.interval} units: {len(rec.snaps)} snapshot"
            f"{'s' if len(rec.snaps) > 1 else ''}, {_size(snap)}; log {_size(log)}",
        ]

    # ------------------------------------------------------------------ replay
    def _goto_point(self, k: int):
        """The state at point k of the recording, replayed from the snapshot before it."""
        rec = self.rec
        base = rec.base(k)
        restore(self.S, rec.snaps[base])
        current = (self.breakpoints, self.watches, self.focus)
        self._replaying = True
        try:
            for i, e in enumerate(rec.entries[base:k], base):
                self.breakpoints, self.watches = copy.deepcopy(e.config)
                self.focus, self._at_break = e.focus, e.at_break
                self._advance(e.kind, e.arg)
                if self._interrupted:  # the recording ends here, where the replay stopped
                    rec.truncate(i)
                    rec.add(e, self._mark(), replayable=False)
                    raise DebugError("interrupted: the recording now ends where it stopped")
        finally:
            self._replaying = False
            self.breakpoints, self.watches, self.focus = current
        m = rec.marks[k]
        self._at_break = m.at_break
        for n, o in [*self.breakpoints.items(), *self.watches.items()]:
            o.hits = m.hits.get(n, 0)
        self.last = RunResult(m.status, self.mesh.stats()) if m.status != "none" else None
        self._sync()

    def _back_to(self, k: int):
        self._goto_point(k)
        self.rec.truncate(k)

    # ------------------------------------------------------------------ reverse commands
    def reverse_stepi(self, n: int = 1) -> list[str]:
        """Back to where the focused tile had run n fewer instructions: the last recorded
        point where it had run at most that many, then forward by single steps."""
        rec = self._need_rec()
        p = self.fp
        target = int(self.S.pe[p, K.P_INSTR]) - n
        start = int(rec.marks[0].instr[p])
        if target < start:
            ran = int(self.S.pe[p, K.P_INSTR]) - start
            self._back_to(0)
            return [
                f"reached the start of the recording (tile {self.focus} has run {ran} "
                f"instruction{'s' if ran != 1 else ''} since): no more history to go back into",
                self.status_line(),
            ]
        k = int(np.flatnonzero(rec.column("instr", p) <= target)[-1])
        self._back_to(k)
        left = target - int(self.S.pe[p, K.P_INSTR])
        return self.stepi(left) if left > 0 else [self.status_line()]

    def reverse_continue(self) -> list[str]:
        """Back to the last stop before this point that a forward continue, with the
        breakpoints and watchpoints set now, makes. Found by continuing from snapshots (the
        latest first); reached by continuing from the last recorded point before it (for
        a breakpoint or a write watchpoint; from the snapshot for a wavelet or link
        watchpoint), so it does not depend on the snapshot interval."""
        rec = self._need_rec()
        now = self.S.pe[:, [K.P_INSTR, K.P_SENT]].copy()
        horizon = int(rec.marks[-1].clock.max()) + 1  # no stop before now lies past it
        for base in sorted((j for j in rec.snaps if j < rec.now), reverse=True):
            stops = self._scan(base, now, horizon)
            if not stops:
                continue
            tile, col, value = stops[-1][1]
            k = base
            if col == 0:  # the last point before that tile's instruction count got there
                before = np.flatnonzero(rec.column("instr", tile)[: rec.now] < value)
                k = max(base, int(before[-1])) if len(before) else base
                from_k = self._scan(k, now, horizon) if k > base else stops
                if from_k and from_k[-1][1] == (tile, col, value):
                    stops = from_k
                else:
                    k = base
            self._back_to(k)
            out = []
            for _ in range(stops[-1][0]):  # the stops found, as a forward run makes them
                out = self.cont()
            return out
        self._back_to(0)
        return [
            "no breakpoint or watchpoint stops between the start of the recording and "
            "here; at its start",
            self.status_line(),
        ]

    def _scan(self, base: int, now: np.ndarray, horizon: int) -> list[tuple[int, tuple]]:
        """Continue from point base to the horizon; the stops that lie before the current
        point: (how many stops from base to it, its key). A stop's key is (tile, column,
        value): the instructions of the tile that stopped, or for a wavelet or link
        watchpoint the wavelets its sender had sent (column 0 or 1 of `now`). A stop lies
        before the current point when that tile had not got as far then as it has now:
        a tile's own instructions and sends are the same however the mesh interleaves."""
        config = copy.deepcopy((self.breakpoints, self.watches))
        focus = self.focus
        self._goto_point(base)
        self._replaying = True  # a search: nothing of it is logged
        stops, n = [], 0
        try:
            while True:
                self.cont(max_cycles=horizon)
                if self.last.status != "stopped" or self._interrupted:
                    return stops
                n += 1
                key = self._stop_key()
                if key[2] < now[key[0], key[1]]:
                    stops.append((n, key))
        finally:
            self._replaying = False
            self.breakpoints, self.watches = config
            self.focus = focus

    def _stop_key(self) -> tuple[int, int, int]:
        misc = self.S.misc
        if int(misc[K.M_STOP_WHY]) in (K.STOP_COLOR, K.STOP_LINK):
            src = int(misc[K.M_EV_B])
            return src, 1, int(self.S.pe[src, K.P_SENT])
        p = int(misc[K.M_STOP_PE])  # a breakpoint, or the step that ran a watched write
        return p, 0, int(self.S.pe[p, K.P_INSTR])

    def goto(self, cycle: int) -> list[str]:
        """To the first point where the focused tile's clock is >= cycle: back to the last
        recorded point before it (if it lies behind), then single steps of the tile with
        breakpoints off."""
        rec = self._need_rec()
        p = self.fp
        clocks = rec.column("clock", p)
        note = []
        if cycle < clocks[0]:
            note = [f"cycle {cycle} is before the start of the recording (cycle {clocks[0]})"]
        if cycle <= int(self.S.pe[p, K.P_CLOCK]):
            before = np.flatnonzero(clocks < cycle)
            self._back_to(int(before[-1]) if len(before) else 0)
        out = [self.status_line()]
        kept = (self.breakpoints, self.watches)
        self.breakpoints, self.watches = {}, {}
        self._config_version += 1
        try:
            while int(self.S.pe[p, K.P_CLOCK]) < cycle:
                state = int(self.S.pe[p, K.P_STATE])
                if state in (K.S_HALT, K.S_FAULT, K.S_OFF):
                    out = [f"tile {self.focus} is {K.STATE_NAMES[state]} before cycle {cycle}"]
                    out.append(self.status_line())
                    break
                out = self.stepi(1)
                if self._interrupted or not self._stepped(p):
                    break
        finally:
            self.breakpoints, self.watches = kept
            self._config_version += 1
            self._sync()
        return note + out
