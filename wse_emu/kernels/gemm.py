"""Dense (SUMMA, programs/gemm_dense.wsa) and sparse (programs/gemm_sparse.wsa) GEMM on a
P x P mesh: tile, load, run, gather, check, and a record of what it cost."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from .. import programs
from ..asm import assemble, parse_file
from ..runtime import Mesh

END_OF_PANEL = 0xFFFF  # index half of the wavelet that closes a sparse A panel


@dataclass
class GemmResult:
    kind: str  # "dense" or "sparse"
    m: int
    k: int
    n: int
    mesh: int  # P of the P x P mesh
    arch: str
    accumulate: str  # "f32" or "f16"
    cycles: int
    seconds_at_clock: float
    utilisation: float  # busy cycles / (PEs x cycles)
    macs: int  # multiply-adds executed (vector elements of the fmacs)
    macs_skipped: int  # m*k*n - macs: zeros that were never sent
    wavelets: int
    hops: int
    sram_read_bytes: int
    tflops_at_clock: float  # 2 * macs / seconds at the arch clock
    host_seconds: float  # load + run + gather
    verified: bool
    max_abs_error: float
    tolerance: float

    def to_dict(self) -> dict:
        return asdict(self)


def _tiles(X, p):
    """(rows, cols) -> (p, p, rows/p, cols/p): tile (i, j) for PE (x = j, y = i)."""
    r, c = X.shape
    return X.reshape(p, r // p, p, c // p).transpose(0, 2, 1, 3)


def _untile(T):
    p, _, r, c = T.shape
    return T.transpose(0, 2, 1, 3).reshape(p * r, p * c)


def _check_shapes(A, B, p):
    (m, k), (k2, n) = A.shape, B.shape
    if k != k2:
        raise ValueError(f"A is {m}x{k} and B is {k2}x{n}: inner dimensions differ")
    for name, v in (("M", m), ("K", k), ("N", n)):
        if v % p:
            raise ValueError(f"{name} = {v} is not a multiple of the mesh side {p}")
    return m, k, n


def _tolerance(A16, B16, k, acc16):
    """Elementwise bound on |C - A @ B| for fp16 inputs: k roundings of the accumulator
    (unit roundoff of fp32 or fp16) times sum |a| |b|, plus one fp16 rounding of the result."""
    u = 2.0**-11 if acc16 else 2.0**-24
    mag = np.abs(A16.astype(np.float64)) @ np.abs(B16.astype(np.float64))
    return (k * u + 2.0**-11) * mag + 1e-30


def _run(kind, A16, B16, p, arch, acc16, load_inputs):
    m, k, n = A16.shape[0], A16.shape[1], B16.shape[1]
    t0 = time.perf_counter()
    mesh = Mesh(p, p, arch)
    consts = {"MT": m // p, "KT": k // p, "NT": n // p, "ACC16": int(acc16)}
    name = "gemm_dense" if kind == "dense" else "gemm_sparse"
    mesh.load(assemble(parse_file(programs.path(name)), p, p, mesh.arch, consts=consts))
    load_inputs(mesh, consts)
    mesh.memcpy_h2d("b", _tiles(B16, p))
    mesh.launch()
    result = mesh.run()
    c_tiles = mesh.memcpy_d2h("c16" if acc16 else "c")
    C = _untile(c_tiles).astype(np.float32)
    host = time.perf_counter() - t0
    return C, result, host


def _record(kind, C, result, host, A16, B16, p, arch, acc16, macs):
    m, k = A16.shape
    n = B16.shape[1]
    exact = A16.astype(np.float64) @ B16.astype(np.float64)
    tol = _tolerance(A16, B16, k, acc16)
    err = np.abs(C.astype(np.float64) - exact)
    s = result.stats
    seconds = s.seconds
    rec = GemmResult(
        kind=kind,
        m=m,
        k=k,
        n=n,
        mesh=p,
        arch=arch,
        accumulate="f16" if acc16 else "f32",
        cycles=s.cycles,
        seconds_at_clock=seconds,
        utilisation=s.utilisation,
        macs=macs,
        macs_skipped=m * k * n - macs,
        wavelets=int(s.wavelets_sent.sum()),
        hops=int(s.hops.sum()),
        sram_read_bytes=int(s.sram_read.sum()),
        tflops_at_clock=2 * macs / seconds / 1e12 if seconds else 0.0,
        host_seconds=host,
        verified=bool(np.all(err <= tol)),
        max_abs_error=float(err.max()) if err.size else 0.0,
        tolerance=float(tol.max()) if tol.size else 0.0,
    )
    return rec


def dense(A, B, p: int, arch: str = "wse3", acc16: bool = False):
    """C = A @ B with SUMMA on a p x p mesh. Returns (C as float32, GemmResult)."""
    A16 = np.asarray(A, np.float16)
    B16 = np.asarray(B, np.float16)
    m, k, n = _check_shapes(A16, B16, p)

    def load(mesh, consts):
        mesh.memcpy_h2d("a", _tiles(A16, p))

    C, result, host = _run("dense", A16, B16, p, arch, acc16, load)
    return C, _record("dense", C, result, host, A16, B16, p, arch, acc16, m * k * n)


def reference_dense(A, B, acc16: bool = False) -> np.ndarray:
    """The kernels' arithmetic, step for step: C[r, :] = round(C[r, :] + a[r, kk] * B[kk, :])
    for kk = 0 .. K-1 in order, with one rounding per step to the accumulator type."""
    A64 = np.asarray(A, np.float16).astype(np.float64)
    B64 = np.asarray(B, np.float16).astype(np.float64)
    acc = np.float16 if acc16 else np.float32
    C = np.zeros((A64.shape[0], B64.shape[1]), acc)
    for kk in range(A64.shape[1]):
        C = (C.astype(np.float64) + A64[:, kk : kk + 1] * B64[kk : kk + 1, :]).astype(acc)
    return C.astype(np.float32)
