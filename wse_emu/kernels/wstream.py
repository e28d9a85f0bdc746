"""Weight-streaming GEMM (programs/gemm_wstream.wsa): C = X W with X resident on the mesh (its
rows split over every PE) and W streamed in by the host from the West edge of every row of
PEs (Mesh.stream_h2d), each wavelet used as it passes. The host splits X, streams W, runs,
gathers C, checks it, and reports how much of the time the stream set the pace."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from .. import isa, programs
from ..arch import ArchProfile
from ..asm import AsmError, assemble, parse_file
from ..runtime import Mesh
from .gemm import row_pitch, tolerance

COLOR = 0  # the program's stream color (S)
BUFFERED_ROWS = 2  # rows of W a PE holds at once (wb)
_FMACHS = next(r for r in isa.table() if r.mnemonic == "vfmachs")  # the kernel's MAC op


@dataclass
class WstreamResult:
    m: int
    k: int
    n: int
    width: int
    height: int
    arch: str
    host_gbps: int  # the host link (cost table host_gbps, or its override)
    cycles: int
    seconds_at_clock: float
    macs: int
    utilisation: float  # MACs / (PEs x cycles x vfmachs elements a cycle)
    busy: float  # the threads' busy cycles over PEs x cycles (Stats.utilisation)
    tflops_at_clock: float
    wavelets_streamed: int  # into all rows together
    cycles_per_wavelet: float  # each stream's share of the host link
    stream_cycles: int  # the longest stream's life: from its start to its last wavelet
    paced: int  # of those, the cycles the host link set the pace (the longest stream's)
    held: int  # the cycles the mesh held the host back with full queues (backpressure)
    host_seconds: float
    verified: bool
    max_abs_error: float
    tolerance: float

    @property
    def stream_bound(self) -> float:
        """The fraction of the run in which the host link set the pace."""
        return self.paced / self.cycles if self.cycles else 0.0

    @property
    def held_share(self) -> float:
        """The fraction of the run in which the mesh held the stream back."""
        return self.held / self.cycles if self.cycles else 0.0

    def to_dict(self) -> dict:
        return dict(asdict(self), stream_bound=self.stream_bound, held_share=self.held_share)


def sram_bytes(m_tile: int, k: int, n: int) -> int:
    """SRAM a PE's data takes (the program's .data, in order, 4-byte aligned): C's tile
    (fp32, rows padded), a pad word, two rows of W and X's tile (fp16)."""
    npitch = row_pitch(n)
    return m_tile * npitch * 4 + 4 + BUFFERED_ROWS * npitch * 2 + ((m_tile * k * 2 + 3) & ~3)


def check_shape(m: int, k: int, n: int, width: int, height: int, arch) -> int:
    """X's rows per PE, or ValueError saying why the shape does not fit the mesh."""
    pes = width * height
    for name, v in (("M", m), ("K", k), ("N", n)):
        if v <= 0:
            raise ValueError(f"{name} = {v} must be positive")
    if m % pes:
        raise ValueError(f"M = {m} must be a multiple of the {width}x{height} mesh's {pes} PEs")
    if n > isa.MAX_DSD_LEN:
        raise ValueError(f"N = {n}: a row of W is one DSD, at most {isa.MAX_DSD_LEN} elements")
    mt = m // pes
    need, have = sram_bytes(mt, k, n), arch["sram_bytes"]
    if need > have:
        raise ValueError(
            f"a PE's share does not fit its SRAM: {mt} rows of X (x {k}, fp16) and of C "
            f"(x {n}, fp32) and two rows of W take {need} bytes, a PE has {have}: use more "
            "PEs or a smaller K or N"
        )
    return mt


def wstream(X, W, width: int, height: int, arch: str = "wse3", overrides=None):
    """C = X @ W with W streamed (programs/gemm_wstream.wsa) on a width x height mesh;
    overrides: cost-table entries, as for Mesh (host_gbps: the host link). Returns (C as
    float32, WstreamResult)."""
    X16 = np.asarray(X, np.float16)
    W16 = np.asarray(W, np.float16)
    if X16.ndim != 2 or W16.ndim != 2 or X16.shape[1] != W16.shape[0]:
        raise ValueError(f"X is {X16.shape} and W is {W16.shape}: not a matrix product")
    (m, k), n = X16.shape, W16.shape[1]
    t0 = time.perf_counter()
    mesh = Mesh(width, height, arch, overrides=overrides)
    mt = check_shape(m, k, n, width, height, mesh.arch)
    consts = {"MT": mt, "K": k, "N": n}
    mesh.load(
        assemble(parse_file(programs.path("gemm_wstream")), width, height, mesh.arch, consts=consts)
    )
    mesh.memcpy_h2d("x", X16.reshape(height, width, mt, k))
    mesh.stream_h2d(COLOR, np.tile(W16.reshape(1, -1), (height, 1)))
    mesh.launch()
    result = mesh.run()
    C = mesh.memcpy_d2h("c")[..., :n].reshape(m, n).astype(np.float32)
    host = time.perf_counter() - t0
    return C, _record(mesh, result, X16, W16, C, host)


def _record(mesh, result, X16, W16, C, host) -> WstreamResult:
    (m, k), n = X16.shape, W16.shape[1]
    s = result.stats
    streams = mesh.streams()
    width = mesh.arch.simd_width(_FMACHS.cost_class(None))
    pes = mesh.width * mesh.height
    exact = X16.astype(np.float64) @ W16.astype(np.float64)
    tol = tolerance(X16, W16, k, False)
    err = np.abs(C.astype(np.float64) - exact)
    macs = m * k * n
    return WstreamResult(
        m=m,
        k=k,
        n=n,
        width=mesh.width,
        height=mesh.height,
        arch=mesh.arch.name,
        host_gbps=mesh.arch["host_gbps"],
        cycles=s.cycles,
        seconds_at_clock=s.seconds,
        macs=macs,
        utilisation=macs / (pes * s.cycles * width) if s.cycles else 0.0,
        busy=s.utilisation,
        tflops_at_clock=2 * macs / s.seconds / 1e12 if s.seconds else 0.0,
        wavelets_streamed=sum(st.sent for st in streams),
        cycles_per_wavelet=streams[0].cycles_per_wavelet,
        stream_cycles=max(st.last - st.start for st in streams),
        paced=max(st.paced for st in streams),
        held=max(st.held for st in streams),
        host_seconds=host,
        verified=bool(np.all(err <= tol)),
        max_abs_error=float(err.max()),
        tolerance=float(tol.max()),
    )


def inputs(m: int, k: int, n: int, seed: int = 0):
    """X (m x k) and W (k x n), standard normal, as the bench uses them."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)), rng.standard_normal((k, n))


def resident(X, W, width: int, height: int, arch: str = "wse3"):
    """The same GEMM with W resident: the dense SUMMA kernel (kernels/gemm.py) on the same
    mesh, or None when it cannot run there (it needs a square mesh whose side divides M, K
    and N, and tiles that fit its SRAM and DSDs). Returns (GemmResult, its MAC utilisation
    as WstreamResult.utilisation counts it)."""
    p = width
    if width != height or any(v % p for v in (*np.shape(X), np.shape(W)[1])):
        return None
    from .gemm import dense

    try:
        _, rec = dense(X, W, p, arch)
    except (ValueError, AsmError):  # its tiles do not fit where the streamed GEMM's do
        return None
    simd = ArchProfile(arch).simd_width(_FMACHS.cost_class(None))
    return rec, rec.macs / (p * p * rec.cycles * simd)


COLUMNS = (
    "host Gb/s",
    "cyc/wavelet",
    "cycles",
    "MAC util",
    "link paced",
    "held",
    "vs resident",
    "host s",
    "verified",
)


def table_rows(rows, dense_cycles: int | None) -> list[tuple[str, ...]]:
    """One line per run: the link, its share per stream, cycles, MAC utilisation, the shares
    of the run in which the link set the pace and the mesh held the host back, the cycles
    over the resident-W (dense) run's."""
    out = []
    for r in rows:
        vs = f"{r.cycles / dense_cycles:.2f}x" if dense_cycles else "-"
        out.append(
            (
                f"{r.host_gbps}",
                f"{r.cycles_per_wavelet:.2f}",
                f"{r.cycles}",
                f"{r.utilisation * 100:.1f}%",
                f"{r.stream_bound * 100:.1f}%",
                f"{r.held_share * 100:.1f}%",
                vs,
                f"{r.host_seconds:.2f}",
                "yes" if r.verified else "NO",
            )
        )
    return out
