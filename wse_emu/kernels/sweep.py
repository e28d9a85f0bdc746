"""Dense against sparse GEMM over a range of sparsities: the rows of `wse-emu bench gemm`."""

from __future__ import annotations

import numpy as np

from . import gemm


def load_matrix_market(path, p: int):
    """A sparse matrix from a Matrix Market file, zero-padded so both sides divide by p."""
    import scipy.io

    A = scipy.io.mmread(path)
    A = A.tocsr() if hasattr(A, "tocsr") else np.asarray(A)
    m, k = A.shape
    pm, pk = -(-m // p) * p, -(-k // p) * p
    dense = np.zeros((pm, pk), np.float16)
    dense[:m, :k] = A.toarray() if hasattr(A, "toarray") else A
    return dense


def run_sweep(m, k, n, p, arch, sparsities, pattern="random", seed=0, matrix=None, progress=None):
    """One dense run (its cycles do not depend on the values) and one sparse run per
    sparsity, on the same B. With matrix (an fp16 array) it is A and sparsities is ignored.
    Returns (dense GemmResult, [(sparsity, sparse GemmResult)])."""
    rng = np.random.default_rng(seed + 1)
    if matrix is not None:
        m, k = matrix.shape
        mats = [(1.0 - np.count_nonzero(matrix) / matrix.size, matrix)]
    else:
        mats = [(s, gemm.sparse_matrix(m, k, s, pattern, seed)) for s in sparsities]
    B = rng.standard_normal((k, n)).astype(np.float16)
    total = 1 + len(mats)
    _, dense = gemm.dense(mats[0][1], B, p, arch)
    if progress:
        progress(1, total)
    rows = []
    for i, (s, A) in enumerate(mats):
        _, res = gemm.sparse(A, B, p, arch)
        rows.append((s, res))
        if progress:
            progress(i + 2, total)
    return dense, rows


COLUMNS = (
    "sparsity",
    "dense cycles",
    "sparse cycles",
    "speedup",
    "util",
    "MACs skipped",
    "eff TFLOP/s",
    "host s",
    "verified",
)


def table_rows(dense, rows):
    """Printable rows: effective TFLOP/s counts the dense product's 2*M*K*N FLOPs over the
    sparse run's time at the arch clock."""
    out = []
    flops = 2 * dense.m * dense.k * dense.n
    for s, r in rows:
        out.append(
            (
                f"{s:.2f}",
                str(dense.cycles),
                str(r.cycles),
                f"{dense.cycles / r.cycles:.2f}x",
                f"{r.utilisation * 100:.1f}%",
                f"{r.macs_skipped / (r.macs + r.macs_skipped) * 100:.1f}%"
                if r.macs + r.macs_skipped
                else "-",
                f"{flops / r.seconds_at_clock / 1e12:.2f}",
                f"{r.host_seconds:.2f}",
                "yes" if (r.verified and dense.verified) else "NO",
            )
        )
    return out


def plot(dense, rows, path):
    """Cycles (dense and sparse, log scale) and speedup against sparsity, as a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [s for s, _ in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(xs, [dense.cycles] * len(xs), "o--", label="dense (SUMMA)")
    ax.plot(xs, [r.cycles for _, r in rows], "o-", label="sparse (dataflow)")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity of A (fraction of zeros)")
    ax.set_ylabel("emulated cycles")
    ax2 = ax.twinx()
    ax2.plot(
        xs, [dense.cycles / r.cycles for _, r in rows], "s:", color="tab:green", label="speedup"
    )
    ax2.set_ylabel("speedup of sparse over dense")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center left")
    ax.set_title(
        f"{dense.m}x{dense.k}x{dense.n} GEMM on {dense.mesh}x{dense.mesh} PEs, {dense.arch}"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
