"""Host time of whole runs (load excluded) for the shipped programs; emulated cycles,
wavelets and utilisation go to extra_info. Compare medians, not single runs."""

import numpy as np
import pytest

from wse_emu import Mesh, assemble, parse_file, programs
from wse_emu.kernels.gemv import gemv


def _prepared(name, w, h, inputs, consts=None):
    m = Mesh(w, h)
    linked = assemble(parse_file(programs.path(name)), w, h, m.arch, consts=consts)

    def setup():
        m.load(linked)
        for sym, (arr, rect) in inputs.items():
            m.memcpy_h2d(sym, arr, *rect)
        m.launch()
        return (), {}

    return m, setup


def _record(benchmark, result, m):
    s = result.stats
    benchmark.extra_info.update(
        cycles=s.cycles,
        wavelets=int(s.wavelets_sent.sum()),
        hops=int(s.hops.sum()),
        utilisation=round(s.utilisation, 4),
        instructions=int(s.instructions.sum()),
        pes=m.n_pe,
    )


@pytest.mark.parametrize("side,rounds", [(16, 5), (64, 5), (256, 3)])
def test_row_broadcast(benchmark, side, rounds):
    """Also the fabric's rate: wavelet-hops per host second (median run)."""
    rng = np.random.default_rng(0)
    src = rng.standard_normal((side, 1, 32)).astype(np.float32)
    m, setup = _prepared("row_broadcast", side, side, {"src": (src, (0, 0, 1, side))})
    result = benchmark.pedantic(m.run, setup=setup, rounds=rounds)
    _record(benchmark, result, m)
    hops = benchmark.extra_info["hops"]
    benchmark.extra_info["hops_per_second"] = round(hops / benchmark.stats.stats.median)


@pytest.mark.parametrize("pes,rows,cols", [(4, 64, 256), (16, 128, 2048)])
def test_gemv(benchmark, pes, rows, cols):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((rows, cols))
    x = rng.standard_normal(cols)
    y, result = benchmark.pedantic(gemv, args=(A, x, pes), rounds=5)
    benchmark.extra_info.update(
        cycles=result.cycles, utilisation=round(result.stats.utilisation, 4)
    )
    t0 = __import__("time").perf_counter()
    for _ in range(100):
        A.astype(np.float16).astype(np.float32) @ x.astype(np.float16).astype(np.float32)
    benchmark.extra_info["numpy_seconds"] = (__import__("time").perf_counter() - t0) / 100
