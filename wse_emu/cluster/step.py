"""A data-parallel GEMM step on a cluster of W wafers (kernels/dataparallel.py), over a
comm (comm.py): rank 0, the weight store's side, broadcasts W and scatters the batch; every
rank runs its W/R wafers one after the other; rank 0 gathers Y, every dW_i and the wafers'
cycles, reduces dW in wafer order and times the step with the SwarmX model (swarmx.py):

    step = broadcast of W + the slowest wafer + reduce of dW

The batch's slices (X_i, dY_i) reach the wafers untimed: in a real cluster they come from
input workers, not through SwarmX. Cycles and bits do not depend on the number of ranks."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

import numpy as np

from ..arch import ArchProfile
from ..kernels import dataparallel
from .swarmx import SwarmX

WEIGHT_BYTES = 2  # W is broadcast in fp16, the kernel's input type
GRADIENT_BYTES = 4  # dW_i is reduced in fp32, the kernel's accumulator

# A hidden fault hook for the tests: WSE_EMU_CLUSTER_FAULT=MODE:RANK makes that rank raise
# (raise), stop answering (hang) or exit at once (exit) after the broadcast.
FAULT_VARIABLE = "WSE_EMU_CLUSTER_FAULT"


@dataclass
class StepResult:
    batch: int
    k: int
    n: int
    wafers: int
    ranks: int
    mesh: int
    arch: str
    swarmx: SwarmX
    runs: list  # dataparallel.WaferRun per wafer, in wafer order
    broadcast_bytes: int  # W, to each wafer
    reduce_bytes: int  # dW_i, from each wafer
    broadcast_cycles: int
    reduce_cycles: int
    Y: np.ndarray
    dW: np.ndarray
    checks: tuple  # dataparallel.errors: ((max error, tolerance, within) of Y, of dW)
    host_seconds: float

    @property
    def slowest_cycles(self) -> int:
        return max(r.cycles for r in self.runs)

    @property
    def total_cycles(self) -> int:
        return self.broadcast_cycles + self.slowest_cycles + self.reduce_cycles

    @property
    def verified(self) -> bool:
        return all(c[2] for c in self.checks)


def digest(a: np.ndarray) -> str:
    """A short fingerprint of an array's bits (equal output lines mean equal bits)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _fault(rank: int) -> None:
    mode, _, who = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if not mode or who != str(rank):
        return
    if mode == "raise":
        raise RuntimeError(f"fault injected by {FAULT_VARIABLE}")
    if mode == "hang":
        while True:
            time.sleep(1)
    if mode == "exit":
        os._exit(7)


def run(comm, shape, wafers: int, p: int, profile: ArchProfile, fabric: SwarmX, inputs=None):
    """The step; inputs = (X, W, dY) on rank 0 (float16-rounded here), None elsewhere.
    shape = (B, K, N), known to every rank; dataparallel.check it first. Returns the
    StepResult on rank 0, None on the others."""
    t0 = time.perf_counter()
    batch, k, n = shape
    per, rows = wafers // comm.size, batch // wafers
    root = comm.rank == 0
    X16, W16, dY16 = (
        [np.ascontiguousarray(a, np.float16) for a in inputs] if root else (None, None, None)
    )
    W = W16 if root else np.empty((k, n), np.float16)
    comm.bcast(W)
    X = np.empty((per * rows, k), np.float16)
    dY = np.empty((per * rows, n), np.float16)
    comm.scatter(X16, X)
    comm.scatter(dY16, dY)
    _fault(comm.rank)
    Y = np.empty((per * rows, n), np.float32)
    dW = np.empty((per, k, n), np.float32)
    figures = np.empty((per, 3), np.float64)  # forward, gradient cycles; host seconds
    for j in range(per):
        part = slice(j * rows, (j + 1) * rows)
        Y[part], dW[j], r = dataparallel.wafer_step(
            comm.rank * per + j, X[part], W, dY[part], p, profile
        )
        figures[j] = r.forward_cycles, r.gradient_cycles, r.host_seconds
    Y_all, dW_all, figures_all = (
        (
            np.empty((batch, n), np.float32),
            np.empty((wafers, k, n), np.float32),
            np.empty((wafers, 3), np.float64),
        )
        if root
        else (None, None, None)
    )
    comm.gather(Y, Y_all)
    comm.gather(dW, dW_all)
    comm.gather(figures, figures_all)
    if not root:
        return None
    runs = [
        dataparallel.WaferRun(i, int(f), int(g), float(s))
        for i, (f, g, s) in enumerate(figures_all)
    ]
    dW_sum = dataparallel.reduce_in_order(dW_all)
    w_bytes, g_bytes = k * n * WEIGHT_BYTES, k * n * GRADIENT_BYTES
    return StepResult(
        batch=batch,
        k=k,
        n=n,
        wafers=wafers,
        ranks=comm.size,
        mesh=p,
        arch=profile.name,
        swarmx=fabric,
        runs=runs,
        broadcast_bytes=w_bytes,
        reduce_bytes=g_bytes,
        broadcast_cycles=fabric.cycles(w_bytes, wafers),
        reduce_cycles=fabric.cycles(g_bytes, wafers),
        Y=Y_all,
        dW=dW_sum,
        checks=dataparallel.errors(X16, W16, dY16, Y_all, dW_sum),
        host_seconds=time.perf_counter() - t0,
    )


def report(r: StepResult) -> list[str]:
    """The lines rank 0 prints: all of them but the last ('host ...') are the same for one
    process and for any number of ranks."""
    f = r.swarmx
    levels = f.levels(r.wafers)
    us = r.total_cycles / f.clock_mhz
    lines = [
        f"data-parallel GEMM step: X {r.batch}x{r.k} (batch x K), W {r.k}x{r.n}, over "
        f"{r.wafers} wafers of {r.mesh}x{r.mesh} PEs, {r.arch}",
        f"SwarmX: {f.links} x {f.link_gbit_s} Gb/s a wafer, {levels} level"
        f"{'s' if levels > 1 else ''} of {f.fanout}-way switches, {f.latency_cycles()} "
        f"cycles a level, at {f.clock_mhz} MHz",
        "",
    ]
    rows = [("wafer", "batch rows", "forward", "gradient", "cycles")]
    slice_rows = r.batch // r.wafers
    for w in r.runs:
        first = w.wafer * slice_rows
        rows.append(
            (
                str(w.wafer),
                f"{first}-{first + slice_rows - 1}",
                f"{w.forward_cycles:,}",
                f"{w.gradient_cycles:,}",
                f"{w.cycles:,}",
            )
        )
    lines += _table(rows)
    lines += [""] + _table(
        [
            ("step", "bytes", "cycles"),
            (
                "SwarmX broadcast of W (fp16)",
                f"{r.broadcast_bytes:,} to each wafer",
                f"{r.broadcast_cycles:,}",
            ),
            ("slowest wafer (forward + gradient)", "", f"{r.slowest_cycles:,}"),
            (
                "SwarmX reduce of dW (fp32)",
                f"{r.reduce_bytes:,} from each wafer",
                f"{r.reduce_cycles:,}",
            ),
            (
                "total",
                f"{r.wafers * (r.broadcast_bytes + r.reduce_bytes):,} over the links",
                f"{r.total_cycles:,}",
            ),
        ],
        names_first=True,
    )
    lines.append(f"step time at the clock: {us:,.2f} us")
    for name, arr, (err, tol, ok) in (("Y", r.Y, r.checks[0]), ("dW", r.dW, r.checks[1])):
        lines.append(
            f"{name}: max |error| against NumPy {err:.2e} (tolerance {tol:.2e}): "
            + ("verified" if ok else "NOT verified")
            + f"; bits {digest(arr)}"
        )
    where = "in one process" if r.ranks == 1 else f"over {r.ranks} MPI ranks"
    lines.append(f"host {r.host_seconds:.2f} s: {r.wafers} wafers {where}")
    return lines


def _table(rows, names_first: bool = False) -> list[str]:
    """Right-aligned columns; with names_first, the first column left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    first = str.ljust if names_first else str.rjust
    return [
        "  ".join([first(row[0], widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])
        for row in rows
    ]
