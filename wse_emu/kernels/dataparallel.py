"""One wafer's share of a data-parallel GEMM step, and what the whole step must give.

The batch X (B x K) is split by rows over W wafers; every wafer holds the same weights
W (K x N) and, with the dense SUMMA kernel (kernels/gemm.py) on its own P x P mesh, computes
its slice of the layer's output, Y_i = X_i W, and its weight gradient for a given output
gradient, dW_i = X_i^T dY_i. The step's gradient is the sum over wafers, taken in wafer
order in fp32 (((dW_0 + dW_1) + dW_2) + ...), so the bits do not depend on how the wafers
were spread over processes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import programs
from ..arch import ArchProfile
from ..asm import AsmError, assemble, parse_file
from . import gemm


@dataclass(frozen=True)
class WaferRun:
    wafer: int
    forward_cycles: int  # Y_i = X_i W
    gradient_cycles: int  # dW_i = X_i^T dY_i
    host_seconds: float

    @property
    def cycles(self) -> int:
        return self.forward_cycles + self.gradient_cycles


def check(batch: int, k: int, n: int, wafers: int, p: int, profile: ArchProfile) -> None:
    """ValueError unless every wafer's two GEMMs fit a p x p mesh (the dense program
    assembles for their tiles): B divisible by the wafers, the slice's rows, K and N
    multiples of p."""
    for name, v in (("--batch", batch), ("--k", k), ("--n", n)):
        if v < 1:
            raise ValueError(f"{name} must be at least 1, got {v}")
    if batch % wafers:
        raise ValueError(f"the batch of {batch} rows does not split over {wafers} wafers")
    rows = batch // wafers
    for name, v in ((f"each wafer's batch slice ({batch} / {wafers})", rows), ("K", k), ("N", n)):
        if v % p:
            raise ValueError(
                f"{name} = {v} is not a multiple of the mesh side {p}: the wafer's GEMMs "
                f"tile every dimension over {p}x{p} PEs"
            )
    dense = parse_file(programs.path("gemm_dense"))
    for what, (m_, k_, n_) in (("forward", (rows, k, n)), ("weight gradient", (k, rows, n))):
        consts = {"MT": m_ // p, "KT": k_ // p, "NT": n_ // p, "ACC16": 0}
        try:
            assemble(dense, p, p, profile, consts=consts)
        except AsmError as e:
            raise ValueError(
                f"the {what} GEMM ({m_}x{k_} by {k_}x{n_}) does not fit a wafer of {p}x{p} "
                f"PEs (tiles {m_ // p}x{k_ // p} by {k_ // p}x{n_ // p}); take a larger "
                f"--mesh or smaller shapes. The dense kernel says:\n{e}"
            ) from None


def wafer_step(wafer: int, X_i, W, dY_i, p: int, profile: ArchProfile):
    """(Y_i, dW_i, WaferRun) on one emulated p x p wafer; both fp32 (the kernel's output)."""
    t0 = time.perf_counter()
    Y_i, fwd = gemm.dense(X_i, W, p, profile.name, overrides=profile.overrides)
    dW_i, grad = gemm.dense(X_i.T, dY_i, p, profile.name, overrides=profile.overrides)
    run = WaferRun(wafer, fwd.cycles, grad.cycles, time.perf_counter() - t0)
    return Y_i, dW_i, run


def reduce_in_order(dWs: np.ndarray) -> np.ndarray:
    """sum over axis 0 in index order, rounded to fp32 at every add."""
    total = dWs[0].astype(np.float32)
    for part in dWs[1:]:
        total = total + part.astype(np.float32)
    return total


def reference(X, W, dY, wafers: int):
    """(Y, dW) with the kernel's own order of operations (gemm.reference_dense) per slice
    and the same reduction: what the step must give, bit for bit."""
    Xs, dYs = np.split(X, wafers), np.split(dY, wafers)
    Y = np.concatenate([gemm.reference_dense(x, W) for x in Xs])
    dW = reduce_in_order(np.stack([gemm.reference_dense(x.T, d) for x, d in zip(Xs, dYs)]))
    return Y, dW


def errors(X16, W16, dY16, Y, dW):
    """((max |error|, tolerance, within) for Y and for dW) against float64 NumPy: the GEMM
    bound of kernels/gemm.py, over the whole batch for dW (its B/W + W - 1 fp32 roundings
    are at most B)."""
    out = []
    for got, a, b in ((Y, X16, W16), (dW, X16.T, dY16)):
        exact = a.astype(np.float64) @ b.astype(np.float64)
        tol = gemm.tolerance(a, b, a.shape[1], False)
        err = np.abs(got.astype(np.float64) - exact)
        out.append((float(err.max()), float(tol.max()), bool(np.all(err <= tol))))
    return tuple(out)
