"""The recording behind reverse execution. From `record` on, every forward unit the session
runs (one instruction of a tile, or a continue/until with its breakpoints) is logged with
the breakpoints it ran under, and the mesh's run state is copied every `interval` units.
Going back to point k restores the nearest copy at or before k and re-runs the logged units
after it: the engine is deterministic, so the replay is bit for bit the recorded run.
Points between logged units are reached by stepping forward from the last point before
them, which is exactly what a forward run from there would do."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import kinds as K
from ..engine.state import VIEW_FIELDS

# MeshState fields a run never writes: views of other arrays (state.VIEW_FIELDS), constants
# of the load, and the debugger's own breakpoint tables (the session re-syncs those after a
# restore)
CONSTANT = ("code", "f16tab", "bf16tab", "cfg")
DEBUG_TABLES = ("bp", "watch", "cwatch", "lwatch")
DEFAULT_INTERVAL = 64


class DebugError(Exception):
    """A command the session cannot carry out; the message says why."""


def run_fields(S) -> list[str]:
    """The MeshState fields that hold a run's mutable state (everything but the above)."""
    skip = VIEW_FIELDS + CONSTANT + DEBUG_TABLES
    return [f for f in S._fields if f not in skip]


def snapshot(S, previous: dict | None = None) -> dict:
    """Copies of S's run state; an array equal to the previous snapshot's is shared. SRAM,
    most of the state, is kept per PE without its trailing zeros (a row equal to the
    previous snapshot's is shared too)."""
    snap = {}
    for f in run_fields(S):
        a = getattr(S, f)
        old = previous.get(f) if previous else None
        if f == "sram8":
            snap[f] = _rows(a, old)
        else:
            snap[f] = old if old is not None and np.array_equal(old, a) else a.copy()
    return snap


def _rows(a: np.ndarray, old: list | None) -> list:
    nonzero = a != 0
    ends = np.where(nonzero.any(axis=1), a.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
    rows = []
    for i, end in enumerate(ends.tolist()):
        row = a[i, :end]
        if old is not None and np.array_equal(old[i], row):
            rows.append(old[i])
        else:
            rows.append(row.copy())
    return rows


def restore(S, snap: dict) -> None:
    for f, a in snap.items():
        if f == "sram8":
            S.sram8[...] = 0
            for i, row in enumerate(a):
                S.sram8[i, : len(row)] = row
        else:
            getattr(S, f)[...] = a


def _arrays(snap: dict):
    for f, a in snap.items():
        yield from a if f == "sram8" else [a]


@dataclass
class Mark:
    """A point of the recording: what the session needs besides the arrays."""

    at_break: int | None
    hits: dict  # breakpoint/watchpoint number -> hits at this point
    status: str  # the last run's status
    instr: np.ndarray  # instructions and clock of every PE row at this point
    clock: np.ndarray
    total: int  # instructions of the whole mesh: grows with every forward unit


@dataclass
class Entry:
    """A forward unit: kind "step" (one instruction of tile `focus`) or "cont" (run to the
    next stop, or to cycle `arg` when arg > 0), under the breakpoints in `config`."""

    kind: str
    arg: int
    focus: tuple
    at_break: int | None
    config: tuple  # (breakpoints, watches) as they were, copied


class Recording:
    def __init__(self, S, mark: Mark, interval: int = DEFAULT_INTERVAL):
        self.S = S
        self.interval = interval
        self.marks = [mark]  # marks[k]: point k; point 0 is where recording started
        self.entries: list[Entry] = []  # entries[k] leads from point k to point k + 1
        self.snaps = {0: snapshot(S)}

    @property
    def now(self) -> int:
        return len(self.entries)

    def add(self, entry: Entry, mark: Mark, replayable: bool = True):
        """Log a unit; one that cannot be replayed (interrupted) gets a snapshot after it."""
        self.entries.append(entry)
        self.marks.append(mark)
        k = self.now
        if not replayable or k % self.interval == 0:
            last = self.snaps[max(self.snaps)]
            self.snaps[k] = snapshot(self.S, last)

    def truncate(self, k: int):
        """Forget the points after k (going forward from k makes a new history)."""
        del self.entries[k:]
        del self.marks[k + 1 :]
        for j in [j for j in self.snaps if j > k]:
            del self.snaps[j]

    def base(self, k: int) -> int:
        """The snapshot to replay point k from."""
        return max(j for j in self.snaps if j <= k)

    def nbytes(self) -> tuple[int, int]:
        """(bytes of the snapshots, each shared array once; bytes of the log's marks)."""
        seen, snap = set(), 0
        for s in self.snaps.values():
            for a in _arrays(s):
                if id(a) not in seen:
                    seen.add(id(a))
                    snap += a.nbytes
        log = sum(m.instr.nbytes + m.clock.nbytes for m in self.marks)
        return snap, log

    def column(self, field: str, p: int) -> np.ndarray:
        """instr or clock of row p at every point."""
        return np.array([getattr(m, field)[p] for m in self.marks], np.int64)


def pe_columns(S) -> tuple[np.ndarray, np.ndarray]:
    return S.pe[:, K.P_INSTR].copy(), S.pe[:, K.P_CLOCK].copy()
