"""Host seconds of dense and sparse GEMM (every static form, the dynamic one) and of the
transformer block's FFN on the emulated mesh (load, run and gather), with
the emulated cycles, MACs and utilisation in extra_info and NumPy's matmul of the same
shapes timed in the same run, so the emulator's cost shows as a ratio.

    python -m pytest bench/test_bench_gemm.py --benchmark-only
"""

import time

import numpy as np
import pytest

from wse_emu.kernels import activation, gemm, transformer

CASES = [(256, 8, 5), (1024, 32, 3)]  # size, mesh side, rounds


def _numpy_seconds(A, B, repeats=20):
    a = A.astype(np.float32)
    b = B.astype(np.float32)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _record(benchmark, res, A, B):
    numpy_s = _numpy_seconds(A, B)
    benchmark.extra_info.update(
        cycles=res.cycles,
        macs=res.macs,
        macs_skipped=res.macs_skipped,
        utilisation=round(res.utilisation, 4),
        tflops_at_clock=round(res.tflops_at_clock, 3),
        verified=res.verified,
        numpy_matmul_seconds=numpy_s,
        host_over_numpy=round(benchmark.stats.stats.median / numpy_s, 1),
    )
    assert res.verified


@pytest.mark.parametrize("size,p,rounds", CASES)
def test_dense(benchmark, size, p, rounds):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size)).astype(np.float16)
    B = rng.standard_normal((size, size)).astype(np.float16)
    _, res = benchmark.pedantic(gemm.dense, args=(A, B, p), rounds=rounds)
    _record(benchmark, res, A, B)


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("size,p,rounds", CASES)
def test_sparse(benchmark, size, p, rounds, sparsity):
    rng = np.random.default_rng(0)
    A = gemm.sparse_matrix(size, size, sparsity, "random", seed=0)
    B = rng.standard_normal((size, size)).astype(np.float16)
    _, res = benchmark.pedantic(gemm.sparse, args=(A, B, p), rounds=rounds)
    _record(benchmark, res, A, B)


@pytest.mark.parametrize("pattern", ["2:4", "block", "moe"])
def test_sparse_structured(benchmark, pattern):
    # the structured forms at 75% zeros, 512^3 on 16x16 (README "Structured sparsity")
    rng = np.random.default_rng(0)
    A = gemm.sparse_matrix(512, 512, 0.75, pattern, seed=0)
    B = rng.standard_normal((512, 512)).astype(np.float16)
    _, res = benchmark.pedantic(gemm.sparse, args=(A, B, 16), rounds=3)
    _record(benchmark, res, A, B)


def test_ffn_layernorm(benchmark):
    # LayerNorm(GELU(X W + b)): 256 tokens, D 64, F 512 on 16x8 PEs (32 tokens per row)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 64)) * 0.5
    W = rng.standard_normal((64, 512)) / 8
    b = rng.standard_normal(512) * 0.1
    _, res = benchmark.pedantic(transformer.ffn_layernorm, args=(X, W, b, 16, 8), rounds=3)
    benchmark.extra_info.update(
        cycles=res.cycles,
        cycles_per_token=res.cycles_per_token,
        utilisation=round(res.utilisation, 4),
        max_abs_error=res.max_abs_error,
        verified=res.verified,
    )
    assert res.verified


@pytest.mark.parametrize("filtered", [False, True])
def test_activation_sparsity(benchmark, filtered):
    # C = ReLU(X W1 + b) B at 256^3 on 8x8, 90% of the ReLU's outputs zero, with the sender's
    # filter and without it (kernels/activation.py)
    args = activation.inputs(256, 256, 256, activation.D, 0.9)
    _, res = benchmark.pedantic(
        activation.run, args=(*args, 8), kwargs={"filtered": filtered}, rounds=3
    )
    benchmark.extra_info.update(
        cycles=res.cycles,
        layer1_cycles=res.layer1_cycles,
        macs=res.macs,
        wavelets=res.wavelets,
        verified=res.verified,
    )
    assert res.verified
