"""Dynamic activation sparsity: Y = ReLU(X W1 + b) W2 with the hidden layer made on the mesh
and its zeros filtered out by the PEs that hold them, before they are sent
(programs/gemm_sparse.wsa with RELU = 1, programs/lib/relu_filter.wsa). The host picks b so
that about a fraction S of the pre-activations is negative; it never tells the mesh which.
Each level runs twice, with the filter and without (every element sent, zeros included),
on the same inputs, and both are checked bit for bit against a NumPy model of the kernel."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from .. import programs
from ..asm import assemble, parse_file
from ..runtime import Mesh
from . import gemm

D = 64  # the benchmark's first-layer input width: columns of X, rows of W1


@dataclass
class ActivationResult:
    filtered: bool  # the filter on: only nonzeros sent
    m: int
    k: int  # hidden width: columns of H, rows of W2
    n: int
    d: int  # columns of X, rows of W1
    mesh: str  # "PxP"
    arch: str
    sparsity_asked: float
    sparsity: float  # zeros of H after the ReLU, as the mesh made them
    cycles: int
    layer1_cycles: int  # until the last PE has its tile of H made and packed
    macs: int  # second-layer multiply-adds executed (AXPY elements)
    macs_skipped: int  # m*k*n - macs
    wavelets: int
    hops: int
    utilisation: float
    host_seconds: float
    verified: bool  # H and Y bit for bit as the NumPy model, Y within the fp32 bound
    max_abs_error: float  # |Y - H @ W2| in float64, H as the model makes it

    def to_dict(self) -> dict:
        return asdict(self)


def relu_bias(pre: np.ndarray, sparsity: float) -> np.ndarray:
    """A bias per column of the pre-activations `pre` (M x K) that makes round(S M) of each
    column's M values negative (at most M - 1): minus the midpoint between the two order
    statistics the cut falls between, so that no value sits on it."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"activation sparsity must be in [0, 1), got {sparsity}")
    m = pre.shape[0]
    s = min(int(round(sparsity * m)), m - 1)
    v = np.sort(pre, axis=0)
    low = v[s - 1] if s else v[0] - 2.0
    return (-(low + v[s]) / 2).astype(np.float32)


def reference(X, W1, b, W2):
    """The kernel's arithmetic in NumPy: H = b, then H = fp32(H + x[:, d] W1[d, :]) for each
    d in order, ReLU, rounded to fp16 as sent; Y as the GEMM kernels accumulate.
    Returns (H as fp32 after the ReLU, H as fp16, Y)."""
    X64 = np.asarray(X, np.float16).astype(np.float64)
    W64 = np.asarray(W1, np.float16).astype(np.float64)
    H = np.broadcast_to(np.asarray(b, np.float32), (X64.shape[0], W64.shape[1])).copy()
    for d in range(X64.shape[1]):
        H = (H.astype(np.float64) + X64[:, d : d + 1] * W64[d : d + 1, :]).astype(np.float32)
    H = np.maximum(H, np.float32(0))
    H16 = H.astype(np.float16)
    return H, H16, gemm.reference_dense(H16, W2)


def run(X, W1, b, W2, p: int, arch: str = "wse3", filtered: bool = True, sparsity=float("nan")):
    """Y = ReLU(X W1 + b) W2 on a p x p mesh. Returns (Y as float32, ActivationResult)."""
    X16, W1_16, W2_16 = (np.asarray(a, np.float16) for a in (X, W1, W2))
    b32 = np.asarray(b, np.float32)
    (m, d), (d2, k), (k2, n) = X16.shape, W1_16.shape, W2_16.shape
    if d != d2 or k != k2 or b32.shape != (k,):
        raise ValueError(
            f"need X (M x D), W1 (D x K), b (K), W2 (K x N): got {X16.shape}, "
            f"{W1_16.shape}, {b32.shape}, {W2_16.shape}"
        )
    gemm._check_shapes(np.empty((m, k)), W2_16, p)
    mt, kt, nt = m // p, k // p, n // p
    if mt > gemm.MAX_SPARSE_ROWS or kt > gemm.MAX_SPARSE_COLS:
        raise ValueError(
            f"sparse tiles are at most {gemm.MAX_SPARSE_ROWS}x{gemm.MAX_SPARSE_COLS}, got "
            f"{mt}x{kt}: use a larger mesh"
        )
    t0 = time.perf_counter()
    consts = {"MT": mt, "KT": kt, "NT": nt, "RELU": 1, "D": d, "FILTER": int(filtered)}
    mesh = Mesh(p, p, arch)
    mesh.load(assemble(parse_file(programs.path("gemm_sparse")), p, p, mesh.arch, consts=consts))
    mesh.memcpy_h2d("x", np.broadcast_to(X16.reshape(p, 1, mt, d), (p, p, mt, d)).copy())
    w1 = gemm._padded(W1_16.reshape(d, p, kt).transpose(1, 0, 2), gemm.row_pitch(kt))
    mesh.memcpy_h2d("w1", np.broadcast_to(w1, (p, p, *w1.shape[1:])).copy())
    mesh.memcpy_h2d("bias", np.broadcast_to(b32.reshape(p, kt), (p, p, kt)).copy())
    mesh.memcpy_h2d("b", gemm._padded(gemm._tiles(W2_16, p), gemm.row_pitch(nt)))
    mesh.launch()
    result = mesh.run()
    Y = gemm._untile(mesh.memcpy_d2h("c")[..., :nt]).astype(np.float32)
    H = gemm._untile(mesh.memcpy_d2h("h")[..., :kt])
    made = int(mesh.memcpy_d2h("t_made").max())
    host = time.perf_counter() - t0
    H_ref, H16, Y_ref = reference(X16, W1_16, b32, W2_16)
    exact = H16.astype(np.float64) @ W2_16.astype(np.float64)
    err = np.abs(Y.astype(np.float64) - exact)
    within = bool(np.all(err <= gemm.tolerance(H16, W2_16, k, False)))
    nnz = int(np.count_nonzero(H))
    s = result.stats
    return Y, ActivationResult(
        filtered=filtered,
        m=m,
        k=k,
        n=n,
        d=d,
        mesh=f"{p}x{p}",
        arch=arch,
        sparsity_asked=float(sparsity),
        sparsity=1.0 - nnz / H.size,
        cycles=s.cycles,
        layer1_cycles=made,
        macs=(nnz if filtered else H.size) * n,
        macs_skipped=(H.size - nnz) * n if filtered else 0,
        wavelets=int(s.wavelets_sent.sum()),
        hops=int(s.hops.sum()),
        utilisation=s.utilisation,
        host_seconds=host,
        verified=bool(np.array_equal(H, H_ref) and np.array_equal(Y, Y_ref) and within),
        max_abs_error=float(err.max()) if err.size else 0.0,
    )


def inputs(m, k, n, d, sparsity, seed=0):
    """X, W1, b, W2 for one level: random fp16 X, W1 and W2 (the same for every level of a
    seed), and b from relu_bias on the pre-activations X W1 (float64)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)).astype(np.float16)
    W1 = (rng.standard_normal((d, k)) / np.sqrt(d)).astype(np.float16)
    W2 = rng.standard_normal((k, n)).astype(np.float16)
    pre = X.astype(np.float64) @ W1.astype(np.float64)
    return X, W1, relu_bias(pre, sparsity), W2


def run_sweep(m, k, n, p, arch, levels, d=D, seed=0, progress=None):
    """Per level, the program without the filter and with it, on the same inputs.
    Returns [(level, unfiltered ActivationResult, filtered ActivationResult)]."""
    rows = []
    for i, s in enumerate(levels):
        args = inputs(m, k, n, d, s, seed)
        _, off = run(*args, p, arch, filtered=False, sparsity=s)
        _, on = run(*args, p, arch, filtered=True, sparsity=s)
        rows.append((s, off, on))
        if progress:
            progress(i + 1, len(levels))
    return rows


COLUMNS = (
    "asked",
    "zeros",
    "unfiltered",
    "filtered",
    "speedup",
    "layer 2",
    "MACs skipped",
    "wavelets",
    "saved",
    "hops saved",
    "verified",
)


def _saved(before, after):
    """The fraction saved, as a percentage; '-' where nothing was there to save (a 1x1 mesh
    sends no wavelets)."""
    return f"{(1 - after / before) * 100:.1f}%" if before else "-"


def table_rows(rows):
    """Printable rows: cycles of the whole program without and with the filter, its speedup,
    the speedup of the second layer alone (cycles after the last PE made its tile of H),
    second-layer MACs skipped, wavelets sent (unfiltered -> filtered) and the fraction of
    wavelets and of hops the filter saved."""
    out = []
    for s, off, on in rows:
        layer2 = (off.cycles - off.layer1_cycles) / max(1, on.cycles - on.layer1_cycles)
        out.append(
            (
                f"{s:.2f}",
                f"{on.sparsity:.3f}",
                str(off.cycles),
                str(on.cycles),
                f"{off.cycles / on.cycles:.2f}x",
                f"{layer2:.2f}x",
                _saved(on.macs + on.macs_skipped, on.macs),
                f"{off.wavelets} -> {on.wavelets}",
                _saved(off.wavelets, on.wavelets),
                _saved(off.hops, on.hops),
                "yes" if off.verified and on.verified else "NO",
            )
        )
    return out
