"""A roofline model of a GPU running the same GEMMs as `wse-emu bench gemm`, to put the
wafer's emulated figures beside it (`--compare gpu`). Not an emulator: a GEMM takes the
longer of its FLOPs at the data sheet's peak and its memory traffic at the data sheet's
bandwidth. What it ignores, so that every GPU figure is a lower bound on the time: launch
overheads, tiling and cache misses beyond what is counted below, clocks below boost,
and the efficiency of real sparse libraries (they reach a fraction of peak).

Per form of A (M x K, nnz nonzeros; B is K x N fp16, C is M x N fp32):
- dense on tensor cores: 2MKN FLOPs at the fp16 tensor peak; A, B and C cross HBM once;
- 2:4 on sparse tensor cores: half the FLOPs at the same peak (the data sheet's "with
  sparsity" figure is twice the dense one), A's nonzeros plus 2 bits of metadata each;
- any other sparsity (unstructured, block, ...), as a sparse library runs it on the CUDA
  cores at the fp32 peak: 2 nnz N FLOPs; the memory traffic lies between the rows of B
  read once (min(K, nnz) rows, reused from cache: `best`) and a row of B per nonzero (no reuse:
  `worst`, the case the wafer's sparsity argument rests on); nonzeros carry a 4-byte
  column index. The GPU may also ignore the zeros and run the dense GEMM, so its time is
  never above the dense one."""

from __future__ import annotations

from dataclasses import dataclass

from ..stats import duration


@dataclass(frozen=True)
class Gpu:
    name: str
    tensor_fp16: float  # FLOP/s, dense fp16 tensor cores (fp32 accumulate)
    fp32: float  # FLOP/s, CUDA cores
    hbm: float  # bytes/s
    source: str


GPUS = {
    "A100": Gpu(
        "A100",
        312e12,
        19.5e12,
        2039e9,
        "NVIDIA A100 Tensor Core GPU data sheet, A100 80GB SXM column: FP16 Tensor Core "
        "312 TFLOPS (624 with sparsity), FP32 19.5 TFLOPS, GPU memory bandwidth 2,039 GB/s",
    ),
    "H100": Gpu(
        "H100",
        989.4e12,
        66.9e12,
        3350e9,
        "NVIDIA H100 Tensor Core GPU data sheet, H100 SXM column: FP16 Tensor Core "
        "1,979 TFLOPS with sparsity (989 dense), FP32 67 TFLOPS, GPU memory bandwidth "
        "3.35 TB/s",
    ),
}


@dataclass(frozen=True)
class GpuGemm:
    gpu: str
    dense_s: float
    sparse_best_s: float  # min(dense, the sparse kernel with B read once)
    sparse_worst_s: float  # min(dense, the sparse kernel with a B row per nonzero)
    sparse_bound: str  # what bounds the sparse kernel in the worst case: "memory"/"compute"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _roof(flops: float, rate: float, nbytes: float, bw: float) -> tuple[float, str]:
    compute, memory = flops / rate, nbytes / bw
    return (memory, "memory") if memory >= compute else (compute, "compute")


def gemm(gpu: Gpu, m: int, k: int, n: int, nnz: int, pattern: str) -> GpuGemm:
    """Roofline times (seconds) of C = A @ B with nnz nonzeros in A, as the module says."""
    dense, _ = _roof(2 * m * k * n, gpu.tensor_fp16, 2 * m * k + 2 * k * n + 4 * m * n, gpu.hbm)
    if pattern == "2:4":
        a_bytes = 2 * nnz + nnz / 4
        t, bound = _roof(m * k * n, gpu.tensor_fp16, a_bytes + 2 * k * n + 4 * m * n, gpu.hbm)
        return GpuGemm(gpu.name, dense, min(dense, t), min(dense, t), bound)
    a_bytes = 6 * nnz
    rows_of_b = min(k, nnz)  # at most K rows of B are needed, at most one per nonzero
    best, _ = _roof(2 * nnz * n, gpu.fp32, a_bytes + 2 * rows_of_b * n + 4 * m * n, gpu.hbm)
    worst, bound = _roof(2 * nnz * n, gpu.fp32, a_bytes + 2 * nnz * n + 4 * m * n, gpu.hbm)
    return GpuGemm(gpu.name, dense, min(dense, best), min(dense, worst), bound)


def compare(dense, rows, pattern: str) -> dict:
    """{gpu name: [GpuGemm per sparsity row]} for a sweep's dense result and its rows."""
    out = {}
    for gpu in GPUS.values():
        out[gpu.name] = [
            gemm(gpu, r.m, r.k, r.n, r.macs // r.n if r.n else 0, pattern) for _, r in rows
        ]
    return out


COLUMNS = ("sparsity", "wafer", "speedup", "GPU", "dense", "sparse", "speedup", "bound")


def table_rows(dense, rows, models: dict) -> list[tuple]:
    """Printable rows: the wafer's emulated time (its P x P PEs) and speedup over its own
    dense run, beside each GPU's roofline times and its speedup over its own dense GEMM
    (a range when the sparse kernel's memory traffic is)."""
    out = []
    for i, (s, r) in enumerate(rows):
        for name, per_row in models.items():
            g = per_row[i]
            best, worst = g.dense_s / g.sparse_best_s, g.dense_s / g.sparse_worst_s
            same = abs(best - worst) < 0.005
            out.append(
                (
                    f"{s:.2f}",
                    duration(r.seconds_at_clock),
                    f"{dense.cycles / r.cycles:.2f}x",
                    name,
                    duration(g.dense_s),
                    duration(g.sparse_best_s)
                    + ("" if same else f" - {duration(g.sparse_worst_s)}"),
                    f"{best:.2f}x" if same else f"{worst:.2f}-{best:.2f}x",
                    g.sparse_bound,
                )
            )
    return out
