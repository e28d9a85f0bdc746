"""Dense against sparse GEMM over a range of sparsities: the rows of `wse-emu bench gemm`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import gemm


@dataclass
class MatrixInput:
    """A matrix the user gave (--matrix): its values as read (float64), the fp16 copy the
    kernels run on (zero-padded so both sides divide by the mesh side), and what the fp16
    conversion did to it, so that nothing about it is silent."""

    path: str
    values: np.ndarray  # float64 (m, k), as in the file
    padded: np.ndarray  # float16 (pm, pk)
    changed: int  # nonzeros whose fp16 value differs from the file's
    underflowed: int  # nonzeros that became 0 in fp16
    overflowed: int  # finite values that became inf in fp16

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    @property
    def nonzeros(self) -> int:
        return int(np.count_nonzero(self.values))

    @property
    def sparsity(self) -> float:
        """Fraction of zeros of the matrix as given (padding not counted)."""
        return 1.0 - self.nonzeros / self.values.size

    def describe(self) -> str:
        (m, k), (pm, pk) = self.shape, self.padded.shape
        pad = f" (zero-padded to {pm}x{pk} for the mesh)" if (pm, pk) != (m, k) else ""
        return (
            f"matrix {self.path}: {m}x{k}{pad}, {self.nonzeros} nonzeros, sparsity "
            f"{self.sparsity:.4f}; converted to fp16: {self.changed} values changed by "
            f"rounding, {self.underflowed} underflowed to 0, {self.overflowed} overflowed to inf"
        )


MAX_MATRIX_ELEMENTS = 1 << 26  # the kernels need it dense on the host; far above any mesh


def load_matrix_market(path, p: int) -> MatrixInput:
    """A matrix from a Matrix Market file, or ValueError saying why it cannot be used."""
    import warnings

    import scipy.io

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a malformed file is an error, not a warning
        try:
            info = scipy.io.mminfo(path)
            rows, cols = int(info[0]), int(info[1])
            if info[4] == "complex":
                raise ValueError("complex matrices are not supported")
            if rows <= 0 or cols <= 0 or rows * cols > MAX_MATRIX_ELEMENTS:
                raise ValueError(f"shape {rows}x{cols}: need 1 to {MAX_MATRIX_ELEMENTS} elements")
            A = scipy.io.mmread(path)
            A = A.toarray() if hasattr(A, "toarray") else np.asarray(A)
            values = np.asarray(A, np.float64)
        except (ValueError, TypeError, IndexError, OverflowError, RuntimeWarning) as e:
            raise ValueError(f"not a usable Matrix Market file: {e}") from None
    if values.ndim != 2 or values.shape != (rows, cols):
        raise ValueError(f"not a usable Matrix Market file: shape {values.shape}")
    m, k = values.shape
    pm, pk = -(-m // p) * p, -(-k // p) * p
    padded = np.zeros((pm, pk), np.float16)
    with np.errstate(over="ignore"):
        padded[:m, :k] = values
    half = padded[:m, :k].astype(np.float64)
    nz = values != 0
    return MatrixInput(
        str(path),
        values,
        padded,
        changed=int(np.count_nonzero(nz & (half != values))),
        underflowed=int(np.count_nonzero(nz & (half == 0))),
        overflowed=int(np.count_nonzero(np.isfinite(values) & ~np.isfinite(half))),
    )


def check_against(matrix: MatrixInput, B16, C, record):
    """Verify C against the matrix as given, in float64: the kernel's own bound plus one
    fp16 rounding of each input (relative, so values lost to underflow or overflow fail)."""
    m, k = matrix.shape
    A = matrix.values
    B = B16[:k].astype(np.float64)
    exact = A @ B
    tol = gemm.tolerance(matrix.padded[:m, :k], B16[:k], k, record.accumulate == "f16")
    tol = tol + 2.0**-11 * (np.abs(A) @ np.abs(B))
    with np.errstate(invalid="ignore"):
        err = np.abs(C[:m].astype(np.float64) - exact)
        record.verified = bool(record.verified and np.all(err <= tol))
    record.max_abs_error = float(np.nanmax(err)) if err.size else 0.0
    record.tolerance = float(tol.max()) if tol.size else 0.0


def run_sweep(m, k, n, p, arch, sparsities, pattern="random", seed=0, matrix=None, progress=None):
    """One dense run (its cycles do not depend on the values) and one sparse run per
    sparsity, on the same B; pattern "all": one per sparsity for every one of
    gemm.PATTERNS, against the same dense run. With matrix (a MatrixInput) A is its fp16
    copy, sparsities is not used, and both results are verified against the matrix as given.
    Returns (dense GemmResult, [(sparsity, sparse GemmResult)]); each sparse result names
    its pattern."""
    rng = np.random.default_rng(seed + 1)
    if matrix is not None:
        k = matrix.padded.shape[1]
        mats = [(matrix.sparsity, "", matrix.padded)]
    else:
        forms = gemm.PATTERNS if pattern == "all" else (pattern,)
        mats = [(s, f, gemm.sparse_matrix(m, k, s, f, seed)) for f in forms for s in sparsities]
    B = rng.standard_normal((k, n)).astype(np.float16)
    total = 1 + len(mats)
    C, dense = gemm.dense(mats[0][2], B, p, arch)
    if matrix is not None:
        check_against(matrix, B, C, dense)
    if progress:
        progress(1, total)
    rows = []
    for i, (s, form, A) in enumerate(mats):
        C, res = gemm.sparse(A, B, p, arch)
        res.pattern = form
        if matrix is not None:
            check_against(matrix, B, C, res)
        rows.append((s, res))
        if progress:
            progress(i + 2, total)
    return dense, rows


COLUMNS = (
    "sparsity",
    "sparse cycles",
    "speedup",
    "util",
    "MACs skipped",
    "eff TFLOP/s",
    "hops saved",
    "host s",
    "verified",
)


def _percent(x: float) -> str:
    return f"{x * 100:.0f}%".replace("-0%", "0%")


def table_rows(dense, rows, forms: bool = False):
    """Printable rows, every column the sparse run's (the dense run's cycles head the
    table); speedup is dense / sparse cycles; effective
    TFLOP/s counts the dense product's 2*M*K*N FLOPs over the sparse run's time at the
    arch clock; hops saved is the fabric traffic (wavelet-hops) the sparse run did not make
    against the dense one (negative: it made more). forms: a first column names each
    row's pattern (COLUMNS then start with "form")."""
    out = []
    flops = 2 * dense.m * dense.k * dense.n
    for s, r in rows:
        out.append(
            ((r.pattern,) if forms else ())
            + (
                f"{s:.2f}",
                str(r.cycles),
                f"{dense.cycles / r.cycles:.2f}x",
                f"{r.utilisation * 100:.1f}%",
                f"{r.macs_skipped / (r.macs + r.macs_skipped) * 100:.1f}%"
                if r.macs + r.macs_skipped
                else "-",
                f"{flops / r.seconds_at_clock / 1e12:.2f}",
                _percent(1 - r.hops / dense.hops) if dense.hops else "-",
                f"{r.host_seconds:.2f}",
                "yes" if (r.verified and dense.verified) else "NO",
            )
        )
    return out


def plot(dense, rows, path, dynamic=None):
    """Two panels against sparsity, on a log(1 - sparsity) axis so that 0.9-0.99 is as
    readable as 0-0.9: cycles (dense and sparse, log scale) with the speedup and its 1x
    break-even line; and the utilisation of every PE (the mean, and the least and most
    busy PE as a band), dense beside sparse. Several patterns, or dynamic activation
    sparsity runs (kernels.activation.run_sweep's rows) beside them: plot_forms."""
    plt = _pyplot()
    if len({r.pattern for _, r in rows}) > 1 or dynamic:
        return plot_forms(plt, dense, rows, path, dynamic)
    xs = [1 - s for s, _ in rows]
    fig, (ax, au) = plt.subplots(
        2, 1, figsize=(6.4, 6.0), dpi=120, sharex=True, height_ratios=(3, 2)
    )
    ax.plot(xs, [dense.cycles] * len(xs), "o--", label="dense (SUMMA)")
    ax.plot(xs, [r.cycles for _, r in rows], "o-", label="sparse (dataflow)")
    ax.set_yscale("log")
    ax.set_ylabel("emulated cycles")
    ax2 = ax.twinx()
    speedup = [dense.cycles / r.cycles for _, r in rows]
    ax2.plot(xs, speedup, "s:", color="tab:green", label="speedup (dense / sparse cycles)")
    _speedup_axis(ax2, "speedup of sparse over dense")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best", fontsize="small")
    ax.set_title(f"{dense.m}x{dense.k}x{dense.n} GEMM on {dense.mesh} PEs, {dense.arch}")
    for rec, style, name in ((dense, "--", "dense"), (None, "-", "sparse")):
        recs = [rec] * len(xs) if rec else [r for _, r in rows]
        line = au.plot(xs, [100 * r.utilisation for r in recs], "o" + style, label=name)[0]
        au.fill_between(
            xs,
            [100 * r.utilisation_min for r in recs],
            [100 * r.utilisation_max for r in recs],
            color=line.get_color(),
            alpha=0.2,
        )
    au.set_ylabel("PE utilisation %\n(mean; band: min-max PE)")
    _finish(plt, fig, au, [s for s, _ in rows], path)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _times():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:g}x")


def _speedup_axis(ax, ylabel, break_even="1x: break-even"):
    """A log speedup axis with "Nx" ticks and the 1x line."""
    ax.axhline(1.0, color="grey", lw=0.8, ls="-.", label=break_even)
    ax.set_yscale("log")
    times = _times()
    ax.yaxis.set_major_formatter(times)
    ax.yaxis.set_minor_formatter(times)
    ax.set_ylabel(ylabel)


def _finish(plt, fig, au, levels, path):
    """The lower panel's utilisation scale and the shared sparsity axis; write the figure."""
    au.set_ylim(0, 100)
    au.legend(loc="lower left", fontsize="small")
    au.set_xscale("log")
    au.invert_xaxis()
    levels = sorted(set(levels))
    au.set_xticks([1 - s for s in levels], [f"{s:g}" for s in levels])
    au.minorticks_off()
    au.set_xlabel("sparsity of A (fraction of zeros; axis: log of the fraction of nonzeros)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _layer2_speedup(off, on):
    """The dynamic form's GEMM (after the last PE has made its tile of A) without the filter
    over with it, as activation.table_rows computes it."""
    return (off.cycles - off.layer1_cycles) / max(1, on.cycles - on.layer1_cycles)


def plot_forms(plt, dense, rows, path, dynamic=None):
    """Every form of sparsity (--pattern all) against the one dense run: the speedup of each
    over dense, with the 1x break-even line, and each one's mean PE utilisation; each point
    at the sparsity its matrix has (2:4 stops at 0.75, moe moves in steps of 1/8). The
    dynamic form (zeros made by a ReLU on the mesh, dropped by the sender), if given: its
    GEMM's speedup over the same GEMM sending the zeros too, at the zeros the mesh made."""
    fig, (ax, au) = plt.subplots(
        2, 1, figsize=(6.4, 6.0), dpi=120, sharex=True, height_ratios=(3, 2)
    )
    levels = [s for s, _ in rows]
    au.plot(
        [1 - s for s in sorted(set(levels))],
        [100 * dense.utilisation] * len(set(levels)),
        "k--",
        label="dense",
    )
    for form in dict.fromkeys(r.pattern for _, r in rows):
        mine = [(s, r) for s, r in rows if r.pattern == form]
        xs = [1 - r.macs_skipped / (r.macs + r.macs_skipped) for _, r in mine]  # as made
        ax.plot(xs, [dense.cycles / r.cycles for _, r in mine], "o-", label=form)
        au.plot(xs, [100 * r.utilisation for _, r in mine], "o-", label=form)
    if dynamic:
        xs = [1 - on.sparsity for _, _, on in dynamic]
        levels += [s for s, _, _ in dynamic]  # ticks at the levels asked
        name = "dynamic (ReLU): over the same GEMM\nsending its zeros"
        ax.plot(xs, [_layer2_speedup(off, on) for _, off, on in dynamic], "D--", label=name)
        au.plot(xs, [100 * on.utilisation for _, _, on in dynamic], "D--", label="dynamic")
    _speedup_axis(ax, f"speedup over dense ({dense.cycles:,} cycles)")
    ax.legend(loc="best", fontsize="small", title="where A's zeros are")
    ax.set_title(
        f"{dense.m}x{dense.k}x{dense.n} GEMM on {dense.mesh} PEs, {dense.arch}: "
        "every form of sparsity"
    )
    au.set_ylabel("PE utilisation % (mean)")
    _finish(plt, fig, au, levels, path)


def plot_dynamic(dynamic, path):
    """Dynamic activation sparsity alone (bench gemm --activation-sparsity --plot): against
    the zeros the mesh made, the speedup of the filter, over the whole program and over the
    GEMM after the ReLU; and the mean PE utilisation with and without the filter."""
    plt = _pyplot()
    fig, (ax, au) = plt.subplots(
        2, 1, figsize=(6.4, 6.0), dpi=120, sharex=True, height_ratios=(3, 2)
    )
    xs = [1 - on.sparsity for _, _, on in dynamic]
    whole = [off.cycles / on.cycles for _, off, on in dynamic]
    ax.plot(xs, whole, "o-", label="whole program (ReLU, filter, GEMM)")
    ax.plot(xs, [_layer2_speedup(off, on) for _, off, on in dynamic], "D--", label="the GEMM")
    _speedup_axis(ax, "speedup of the filter\n(over the same program sending zeros)")
    ax.legend(loc="best", fontsize="small")
    on = dynamic[0][2]
    ax.set_title(
        f"C = ReLU(X W1 + b) B, {on.m}x{on.k}x{on.n} on {on.mesh} PEs, {on.arch}: dynamic sparsity"
    )
    au.plot(xs, [100 * off.utilisation for _, off, _ in dynamic], "o--", label="unfiltered")
    au.plot(xs, [100 * on.utilisation for _, _, on in dynamic], "o-", label="filtered")
    au.set_ylabel("PE utilisation % (mean)")
    _finish(plt, fig, au, [s for s, _, _ in dynamic], path)


def plot_gpu(dense, rows, models: dict, path):
    """Speedup of sparse over each machine's own dense GEMM against sparsity: the emulated
    wafer beside the GPU roofline model (a band between its best and worst memory traffic)."""
    plt = _pyplot()
    xs = [1 - s for s, _ in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(xs, [dense.cycles / r.cycles for _, r in rows], "o-", label="wafer (emulated)")
    for name, per_row in models.items():
        best = [g.dense_s / g.sparse_best_s for g in per_row]
        worst = [g.dense_s / g.sparse_worst_s for g in per_row]
        line = ax.plot(xs, best, "s--", label=f"{name} model, B read once")[0]
        ax.plot(xs, worst, "v:", color=line.get_color(), label=f"{name} model, B row per nonzero")
        ax.fill_between(xs, worst, best, color=line.get_color(), alpha=0.15)
    _speedup_axis(ax, "speedup over the same machine's dense GEMM", None)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xticks(xs, [f"{s:g}" for s, _ in rows])
    ax.minorticks_off()
    ax.set_xlabel("sparsity of A (fraction of zeros)")
    ax.set_title(f"{dense.m}x{dense.k}x{dense.n} GEMM: wafer ({dense.mesh} PEs) vs GPU roofline")
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
