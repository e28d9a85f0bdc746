"""Run statistics: totals and per-PE cycle accounting, printable and JSON-serialisable."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from .engine import kinds as K

FLOP_KINDS = ("f16", "bf16", "f32", "f16->f32")
LINK_DIRECTIONS = ("north", "east", "south", "west")  # Stats.links' last axis


def html_table(rows) -> str:
    """An HTML table of (name, value) rows, escaped."""
    from html import escape

    cells = "".join(
        f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>"
        f"{escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


def duration(seconds: float) -> str:
    """seconds in the unit that keeps 1-999 before the point (ns, us, ms, s)."""
    for unit, scale in (("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3)):
        if seconds < scale * 999.5:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


@dataclass
class Stats:
    width: int
    height: int
    clock_hz: float
    cycles: int  # the run's length: the latest PE clock
    busy: np.ndarray  # int64[h, w] cycles spent executing
    stalled: np.ndarray  # int64[h, w] cycles waiting for wavelets or queue space
    idle: np.ndarray  # int64[h, w] the rest: waiting for tasks, after halt
    instructions: np.ndarray  # int64[h, w]
    wavelets_sent: np.ndarray  # int64[h, w]
    wavelets_received: np.ndarray  # int64[h, w] taken by recv, data tasks (not fabric DSDs)
    hops: np.ndarray  # int64[h, w] link traversals of wavelets sent by the PE
    sram_read: np.ndarray  # int64[h, w] bytes
    sram_written: np.ndarray  # int64[h, w] bytes
    flops: dict  # dtype -> total FLOPs
    placed: np.ndarray  # bool[h, w] PEs with a program
    links: np.ndarray  # int64[h, w, 4] wavelets out of each PE's router, per LINK_DIRECTIONS
    delivered: np.ndarray  # int64[h, w] wavelets down each PE's ramp into its input queues

    @classmethod
    def from_state(cls, S, width, height, clock_hz) -> "Stats":
        pe = S.pe[: width * height]  # the PE rows (microthread rows follow)
        placed = (pe[:, K.P_IMG] >= 0).reshape(height, width)

        def col(c):
            return pe[:, c].reshape(height, width).copy()

        clocks = np.where(placed, col(K.P_CLOCK), 0)
        cycles = int(clocks.max()) if placed.any() else 0
        busy, stalled = col(K.P_BUSY), col(K.P_STALL)
        idle = np.where(placed, cycles - busy - stalled, 0)
        flops = {k: int(S.flops[:, i].sum()) for i, k in enumerate(FLOP_KINDS)}
        n = width * height
        links = S.link_n[: n * 4].reshape(height, width, 4).copy()
        delivered = S.link_n[n * 4 :].reshape(height, width).copy()
        return cls(
            width,
            height,
            clock_hz,
            cycles,
            busy,
            stalled,
            idle,
            col(K.P_INSTR),
            col(K.P_SENT),
            col(K.P_RECVD),
            col(K.P_HOPS),
            col(K.P_RD),
            col(K.P_WR),
            flops,
            placed,
            links,
            delivered,
        )

    def heatmap(self, path=None, title: str = ""):
        """Draw per-PE busy / stalled / idle fractions and per-link wavelet counts to an
        image file, or return the matplotlib Figure when no path is given (heatmap.py)."""
        from .heatmap import draw

        return draw(self, path, title)

    def _repr_html_(self) -> str:
        """A notebook shows the summary as a table."""
        return html_table(
            re.split(r"\s{2,}", line, maxsplit=1) for line in self.summary().splitlines()
        )

    @property
    def seconds(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def utilisation(self) -> float:
        """Busy cycles over placed-PE cycles."""
        n = int(self.placed.sum())
        return float(self.busy.sum()) / (n * self.cycles) if n and self.cycles else 0.0

    def to_dict(self, per_pe: bool = True) -> dict:
        out = {
            "mesh": [self.width, self.height],
            "cycles": self.cycles,
            "seconds_at_clock": self.seconds,
            "clock_hz": self.clock_hz,
            "placed_pes": int(self.placed.sum()),
            "utilisation": self.utilisation,
            "instructions": int(self.instructions.sum()),
            "wavelets_sent": int(self.wavelets_sent.sum()),
            "hops": int(self.hops.sum()),
            "sram_read_bytes": int(self.sram_read.sum()),
            "sram_written_bytes": int(self.sram_written.sum()),
            "flops": self.flops,
            "busy_cycles": int(self.busy.sum()),
            "stalled_cycles": int(self.stalled.sum()),
            "idle_cycles": int(self.idle.sum()),
        }
        if per_pe:
            out["per_pe"] = {
                name: getattr(self, name).tolist()
                for name in (
                    "busy",
                    "stalled",
                    "idle",
                    "instructions",
                    "wavelets_sent",
                    "hops",
                    "links",
                    "delivered",
                )
            }
            out["per_pe"]["links_order"] = list(LINK_DIRECTIONS)
        return out

    def to_json(self, per_pe: bool = True) -> str:
        return json.dumps(self.to_dict(per_pe), indent=1)

    def summary(self) -> str:
        d = self.to_dict(per_pe=False)
        flops = ", ".join(f"{k} {v}" for k, v in self.flops.items() if v) or "none"
        return "\n".join(
            [
                f"cycles          {d['cycles']:,}  ({duration(d['seconds_at_clock'])} at "
                f"{self.clock_hz / 1e9:.2f} GHz)",
                f"PEs             {d['placed_pes']} placed on {self.width}x{self.height}, "
                f"utilisation {d['utilisation'] * 100:.1f}%",
                f"PE cycles       busy {d['busy_cycles']}, stalled {d['stalled_cycles']}, "
                f"idle {d['idle_cycles']}",
                f"instructions    {d['instructions']:,}",
                f"wavelets        {d['wavelets_sent']:,} sent, {d['hops']:,} hops",
                f"SRAM            {d['sram_read_bytes']} B read, "
                f"{d['sram_written_bytes']} B written",
                f"FLOPs           {flops}",
            ]
        )


def version() -> str:
    """The installed wse-emu version, for records that must say what produced them."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("wse-emu")
    except PackageNotFoundError:
        return "unknown"


def run_record(
    result, program: str, profile, linked, max_cycles, outputs: dict, host: dict | None = None
) -> dict:
    """What `wse-emu run --json` writes: how the run ended (a faulted or deadlocked run is
    recorded with its status and report, never as a plausible plain stats file), what ran
    where, what it cost the host (host_seconds: the run phase, wall clock, including a
    first compile; peak_rss_bytes: the process's peak), then the statistics."""
    return {
        "status": result.status,
        "message": result.report,
        "program": str(program),
        "arch": profile.name,
        "overrides": dict(profile.overrides),
        "mesh": [linked.width, linked.height],
        "max_cycles": max_cycles,
        "wse_emu_version": version(),
        "outputs": outputs,
        **(host or {}),
        **result.stats.to_dict(),
    }
