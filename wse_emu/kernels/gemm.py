"""Dense (SUMMA, programs/gemm_dense.wsa; on a W x H mesh) and sparse
(programs/gemm_sparse.wsa; on a P x P mesh) GEMM: tile, load, run, gather, check, and a
record of what it cost."""

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
    mesh: str  # "WxH"
    arch: str
    accumulate: str  # "f32" or "f16"
    cycles: int
    seconds_at_clock: float
    utilisation: float  # busy cycles / (PEs x cycles)
    utilisation_min: float  # of the least busy PE: busy cycles / cycles
    utilisation_max: float  # of the busiest PE
    macs: int  # multiply-adds executed (vector elements of the fmacs)
    macs_skipped: int  # m*k*n - macs: zeros that were never sent
    flops_counted: int  # floating-point operations the engine counted in vector ops
    wavelets: int
    hops: int
    sram_read_bytes: int
    tflops_at_clock: float  # 2 * macs / seconds at the arch clock
    host_seconds: float  # load + run + gather
    verified: bool
    max_abs_error: float
    tolerance: float
    pattern: str = ""  # where a sparse run's zeros were (PATTERNS); "" for dense or a matrix

    def to_dict(self) -> dict:
        return asdict(self)


def _tiles(X, p, q=None):
    """(rows, cols) -> (p, q, rows/p, cols/q): tile (i, j) for PE (x = j, y = i)."""
    q = p if q is None else q
    r, c = X.shape
    return X.reshape(p, r // p, q, c // q).transpose(0, 2, 1, 3)


def _untile(T):
    h, w, r, c = T.shape
    return T.transpose(0, 2, 1, 3).reshape(h * r, w * c)


def _rooted(T, h, w):
    """Tiles (hs, ws, r, c) of the first hs rows and ws columns of an h x w mesh, zero
    elsewhere: a rectangular mesh's SUMMA holds A (B) tiles only where it has K panels."""
    out = np.zeros((h, w, *T.shape[2:]), T.dtype)
    out[: T.shape[0], : T.shape[1]] = T
    return out


def row_pitch(n: int) -> int:
    """Elements per row of B and C in SRAM: n padded to a multiple of 4 (the programs' NP), so
    every row of a buffer starts in the same SRAM bank group."""
    return -(-n // 4) * 4


def _padded(T, pitch):
    """Tiles (..., rows, cols) with their rows zero-padded to pitch elements."""
    out = np.zeros((*T.shape[:-1], pitch), T.dtype)
    out[..., : T.shape[-1]] = T
    return out


def _check_shapes(A, B, w, h=None, steps=None):
    """(m, k, n) of A @ B cut for a w x h mesh: M over the h rows, N over the w columns, K
    into steps panels (w on a square mesh)."""
    h = w if h is None else h
    steps = w if steps is None else steps
    (m, k), (k2, n) = A.shape, B.shape
    if k != k2:
        raise ValueError(f"A is {m}x{k} and B is {k2}x{n}: inner dimensions differ")
    square = w == h == steps
    cuts = (
        ("M", m, h, "mesh side" if square else "mesh height"),
        ("K", k, steps, "mesh side" if square else "number of K panels"),
        ("N", n, w, "mesh side" if square else "mesh width"),
    )
    for name, v, d, what in cuts:
        if v <= 0:
            raise ValueError(f"{name} = {v} must be positive")
        if v % d:
            raise ValueError(f"{name} = {v} is not a multiple of the {what} {d}")
    return m, k, n


def tolerance(A16, B16, k, acc16):
    """Elementwise bound on |C - A @ B| for fp16 inputs: k roundings of the accumulator
    (unit roundoff of fp32 or fp16) times sum |a| |b|, plus one fp16 rounding of the result."""
    u = 2.0**-11 if acc16 else 2.0**-24
    mag = np.abs(A16.astype(np.float64)) @ np.abs(B16.astype(np.float64))
    return (k * u + 2.0**-11) * mag + 1e-30


def _run(kind, A16, B16, shape, arch, acc16, load_inputs, overrides):
    """shape: (w, h, steps), the mesh and the number of K panels (w = h = steps for sparse)."""
    w, h, steps = shape
    m, k, n = A16.shape[0], A16.shape[1], B16.shape[1]
    t0 = time.perf_counter()
    mesh = Mesh(w, h, arch, overrides=overrides)
    consts = {"MT": m // h, "KT": k // steps, "NT": n // w}
    if kind == "dense":
        consts["ACC16"] = int(acc16)
        consts["STEPS"] = steps
    name = "gemm_dense" if kind == "dense" else "gemm_sparse"
    mesh.load(assemble(parse_file(programs.path(name)), w, h, mesh.arch, consts=consts))
    load_inputs(mesh, consts)
    b_tiles = _padded(_tiles(B16, steps, w), row_pitch(n // w))
    mesh.memcpy_h2d("b", _rooted(b_tiles, h, w))
    mesh.launch()
    result = mesh.run()
    c_tiles = mesh.memcpy_d2h("c16" if acc16 else "c")[..., : n // w]
    C = _untile(c_tiles).astype(np.float32)
    host = time.perf_counter() - t0
    return C, result, host


def _exact(kind, A16, B16):
    """The product in float64: NumPy for dense, SciPy's sparse matrix product for sparse."""
    if kind == "sparse":
        import scipy.sparse

        return np.asarray(scipy.sparse.csr_matrix(A16.astype(np.float64)) @ B16.astype(np.float64))
    return A16.astype(np.float64) @ B16.astype(np.float64)


def _record(kind, C, result, host, A16, B16, shape, arch, acc16, macs):
    m, k = A16.shape
    n = B16.shape[1]
    exact = _exact(kind, A16, B16)
    tol = tolerance(A16, B16, k, acc16)
    err = np.abs(C.astype(np.float64) - exact)
    s = result.stats
    seconds = s.seconds
    rec = GemmResult(
        kind=kind,
        m=m,
        k=k,
        n=n,
        mesh=f"{shape[0]}x{shape[1]}",
        arch=arch,
        accumulate="f16" if acc16 else "f32",
        cycles=s.cycles,
        seconds_at_clock=seconds,
        utilisation=s.utilisation,
        utilisation_min=float(s.busy.min() / s.cycles) if s.cycles else 0.0,
        utilisation_max=float(s.busy.max() / s.cycles) if s.cycles else 0.0,
        macs=macs,
        macs_skipped=m * k * n - macs,
        flops_counted=int(sum(s.flops.values())),
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


def dense(A, B, p, arch: str = "wse3", acc16: bool = False, overrides=None, steps=None):
    """C = A @ B with SUMMA on a p x p mesh, or on a w x h mesh with p = (w, h): M is cut
    over the h rows, N over the w columns and K into steps panels (default min(w, h); at most
    that, as the first steps columns and rows are the roots). overrides: cost-table entries,
    as for Mesh. Returns (C as float32, GemmResult)."""
    w, h = (p, p) if np.isscalar(p) else p
    steps = min(w, h) if steps is None else steps
    if not 1 <= steps <= min(w, h):
        raise ValueError(f"steps = {steps} must be in 1 .. min(width, height) = {min(w, h)}")
    A16 = np.asarray(A, np.float16)
    B16 = np.asarray(B, np.float16)
    m, k, n = _check_shapes(A16, B16, w, h, steps)

    def load(mesh, consts):
        mesh.memcpy_h2d("a", _rooted(_tiles(A16, h, steps), h, w))

    shape = (w, h, steps)
    C, result, host = _run("dense", A16, B16, shape, arch, acc16, load, overrides)
    return C, _record("dense", C, result, host, A16, B16, shape, arch, acc16, m * k * n)


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


# a nonzero's row in its tile and its row of the program's two B panels take 8 bits each
MAX_SPARSE_ROWS, MAX_SPARSE_COLS = 255, 128


def pack_nonzeros(A16: np.ndarray, p: int):
    """Per tile (i, j) of A: its nonzeros as 32-bit words (row << 24 | col << 16 | fp16 bits)
    in row-major order, padded to MT*KT + 1 (the program writes the end-of-panel word after
    them and sends them all with one vector op), and their count. col is kk, plus kt for
    odd j: tile (i, j) travels at step j, whose B panel the program keeps in the second
    half of its double buffer. Returns (words, counts)."""
    m, k = A16.shape
    mt, kt = m // p, k // p
    if mt > MAX_SPARSE_ROWS or kt > MAX_SPARSE_COLS:
        raise ValueError(
            f"sparse tiles are at most {MAX_SPARSE_ROWS}x{MAX_SPARSE_COLS}, got {mt}x{kt}: "
            "use a larger mesh"
        )
    tiles = _tiles(A16, p)  # (p, p, mt, kt)
    words = np.zeros((p, p, mt * kt + 1), np.uint32)
    counts = np.zeros((p, p, 1), np.int32)
    rows = np.arange(mt, dtype=np.uint32)[:, None] << 24
    for i in range(p):
        for j in range(p):
            cols = (np.arange(kt, dtype=np.uint32)[None, :] + (j % 2) * kt) << 16
            t = tiles[i, j]
            mask = t != 0
            packed = (rows | cols | t.view(np.uint16).astype(np.uint32))[mask]
            words[i, j, : packed.size] = packed
            counts[i, j, 0] = packed.size
    return words.view(np.int32), counts


def sparse(A, B, p: int, arch: str = "wse3", overrides=None):
    """C = A @ B with only A's nonzeros sent (programs/gemm_sparse.wsa); A may be a NumPy
    array or a SciPy sparse matrix; overrides as for dense. Returns (C as float32,
    GemmResult)."""
    if hasattr(A, "toarray"):
        A = A.toarray()
    A16 = np.asarray(A, np.float16)
    B16 = np.asarray(B, np.float16)
    m, k, n = _check_shapes(A16, B16, p)
    words, counts = pack_nonzeros(A16, p)

    def load(mesh, consts):
        mesh.memcpy_h2d("anz", words)
        mesh.memcpy_h2d("nnz", counts)

    C, result, host = _run("sparse", A16, B16, (p, p, p), arch, False, load, overrides)
    macs = int(counts.sum()) * n  # each nonzero: one AXPY of N/P on each of P PEs
    return C, _record("sparse", C, result, host, A16, B16, (p, p, p), arch, False, macs)


PATTERNS = ("random", "2:4", "block", "moe")
MOE_EXPERTS = 8  # the moe pattern's experts: K is split into this many blocks


def sparse_matrix(
    m: int, k: int, sparsity: float, pattern: str = "random", seed: int = 0, block: int = 4
) -> np.ndarray:
    """An m x k fp16 matrix with the given fraction of zeros. For one seed the nonzeros at a
    higher sparsity are a subset of those at a lower one (same values), so work can only
    fall as sparsity rises. random: unstructured; 2:4: in every 4 consecutive elements of a
    row keep max(1, round(4 (1 - sparsity))) of the largest (so at most 75% zeros); block:
    block x block tiles dropped whole; moe: K split into MOE_EXPERTS expert blocks, each
    row (a token) routed to max(1, round(experts x (1 - sparsity))) of them, chosen at
    random per row, and dense inside them (a mixture-of-experts FFN; the sparsity is
    quantised to steps of 1/experts)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; choose one of {', '.join(PATTERNS)}")
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((m, k)).astype(np.float16)
    values[values == 0] = np.float16(1.0)
    if pattern == "random":
        keep = rng.random((m, k)) >= sparsity
    elif pattern == "2:4":
        if k % 4:
            raise ValueError(f"the 2:4 pattern needs K divisible by 4, got {k}")
        groups = np.abs(values.astype(np.float32)).reshape(m, k // 4, 4)
        rank = np.argsort(np.argsort(-groups, axis=2), axis=2)  # 0 = largest in its group
        keep = (rank < max(1, int(round(4 * (1.0 - sparsity))))).reshape(m, k)
    elif pattern == "moe":
        if k % MOE_EXPERTS:
            raise ValueError(f"the moe pattern needs K divisible by {MOE_EXPERTS} experts, got {k}")
        active = max(1, int(round(MOE_EXPERTS * (1.0 - sparsity))))
        order = np.argsort(rng.random((m, MOE_EXPERTS)), axis=1)  # each row's routing order
        chosen = np.zeros((m, MOE_EXPERTS), bool)
        np.put_along_axis(chosen, order[:, :active], True, axis=1)
        keep = np.repeat(chosen, k // MOE_EXPERTS, axis=1)
    else:
        if m % block or k % block:
            raise ValueError(f"the block pattern needs M and K divisible by {block}")
        blocks = rng.random((m // block, k // block)) >= sparsity
        keep = np.repeat(np.repeat(blocks, block, axis=0), block, axis=1)
    return np.where(keep, values, np.float16(0))
