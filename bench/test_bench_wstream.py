"""Host seconds of the weight-streaming GEMM (programs/gemm_wstream.wsa: X resident, W
streamed from the West edge into every row of PEs), at the cost table's host link and at
a slower one, with the emulated cycles, MAC utilisation and the stream's shares of the run
in extra_info.

    python -m pytest bench/test_bench_wstream.py --benchmark-only
"""

import pytest

from wse_emu.kernels import wstream

CASES = [(256, 256, 256, 8, 3), (1024, 512, 512, 16, 1)]  # M, K, N, mesh side, rounds


@pytest.mark.parametrize("gbps", [1200, 100])
@pytest.mark.parametrize("m,k,n,p,rounds", CASES)
def test_wstream(benchmark, m, k, n, p, rounds, gbps):
    X, W = wstream.inputs(m, k, n)
    _, res = benchmark.pedantic(
        wstream.wstream,
        args=(X, W, p, p),
        kwargs={"overrides": {"host_gbps": gbps}},
        rounds=rounds,
    )
    benchmark.extra_info.update(
        cycles=res.cycles,
        macs=res.macs,
        utilisation=round(res.utilisation, 4),
        cycles_per_wavelet=res.cycles_per_wavelet,
        stream_bound=round(res.stream_bound, 4),
        held_share=round(res.held_share, 4),
        verified=res.verified,
    )
    assert res.verified
