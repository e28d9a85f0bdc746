"""The GPU roofline model beside `wse-emu bench gemm`: each figure from its rule, and the
CLI's --compare gpu table, JSON and plot."""

import json

import pytest
from click.testing import CliRunner

from wse_emu.cli import main
from wse_emu.kernels.gpu import GPUS, gemm


@pytest.mark.parametrize("name", sorted(GPUS))
def test_dense_time_is_the_longer_of_compute_and_memory(name):
    g = GPUS[name]
    for m, k, n in ((64, 64, 64), (4096, 4096, 4096)):
        r = gemm(g, m, k, n, m * k, "random")
        flops, nbytes = 2 * m * k * n, 2 * m * k + 2 * k * n + 4 * m * n
        assert r.dense_s == max(flops / g.tensor_fp16, nbytes / g.hbm)
    assert (
        gemm(g, 64, 64, 64, 64 * 64, "random").dense_s
        == (2 * 64 * 64 + 2 * 64 * 64 + 4 * 64 * 64) / g.hbm
    )
    big = gemm(g, 8192, 8192, 8192, 8192**2, "random")
    assert big.dense_s == 2 * 8192**3 / g.tensor_fp16  # large GEMMs are compute bound


@pytest.mark.parametrize("name", sorted(GPUS))
def test_unstructured_sparse_is_bounded_by_memory_traffic(name):
    g = GPUS[name]
    m = k = n = 8192
    for s in (0.5, 0.9, 0.99, 0.999):
        nnz = int(m * k * (1 - s))
        r = gemm(g, m, k, n, nnz, "random")
        worst = max(2 * nnz * n / g.fp32, (6 * nnz + 2 * nnz * n + 4 * m * n) / g.hbm)
        best = max(2 * nnz * n / g.fp32, (6 * nnz + 2 * min(k, nnz) * n + 4 * m * n) / g.hbm)
        assert r.sparse_worst_s == min(r.dense_s, worst)
        assert r.sparse_best_s == min(r.dense_s, best)
        assert r.sparse_best_s <= r.sparse_worst_s <= r.dense_s
    # with no reuse, each nonzero moves 2N bytes for its 2N FLOPs: memory bound on both
    assert gemm(g, m, k, n, m * k // 100, "random").sparse_bound == "memory"
    # the GPU gains far less from 99% zeros than the 100x fewer FLOPs would give
    r = gemm(g, m, k, n, m * k // 100, "random")
    assert r.dense_s / r.sparse_worst_s < 10


def test_two_to_four_uses_the_sparse_tensor_cores():
    g = GPUS["H100"]
    m = k = n = 8192
    r = gemm(g, m, k, n, m * k // 2, "2:4")
    assert (
        r.sparse_best_s
        == r.sparse_worst_s
        == max(
            m * k * n / g.tensor_fp16, (2 * m * k // 2 + m * k // 8 + 2 * k * n + 4 * m * n) / g.hbm
        )
    )
    assert r.dense_s / r.sparse_best_s == pytest.approx(2.0)


def test_bench_gemm_compare_gpu(tmp_path):
    args = ["bench", "gemm", "--m", "16", "--k", "16", "--n", "16", "--mesh", "4x4"]
    args += ["--sparsity", "0,0.9", "--compare", "gpu", "--json", str(tmp_path / "g.json")]
    args += ["--plot", str(tmp_path / "g.png")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    rows = [ln.split() for ln in r.output.splitlines() if ln.split()[:1] in (["0.00"], ["0.90"])]
    gpu_rows = [row for row in rows if "A100" in row or "H100" in row]
    assert len(gpu_rows) == 4 and {row[4] for row in gpu_rows} == {"A100", "H100"}
    data = json.loads((tmp_path / "g.json").read_text())
    assert set(data["gpu_model"]) == {"A100", "H100"} and len(data["gpu_model"]["H100"]) == 2
    assert (tmp_path / "g-gpu.png").read_bytes()[:4] == b"\x89PNG"
