"""Host time of a whole-mesh allreduce (programs/lib/collectives.wsa) on 16x16 and 64x64 PEs
for N = 64 and 1024 fp32 per PE; emulated cycles and the textbook model's cycles
(wse_emu.kernels.collectives.model_cycles) go to extra_info. Assembly and load excluded.
`python bench/collectives_table.py` prints the same runs as the README's table."""

import numpy as np
import pytest

from wse_emu.kernels import collectives as coll


@pytest.mark.parametrize("n", [64, 1024])
@pytest.mark.parametrize("side", [16, 64])
def test_allreduce(benchmark, side, n):
    x = np.random.default_rng(0).standard_normal((side, side, n)).astype(np.float32)
    mesh = coll.load("allreduce", "mesh", x)
    linked = mesh.program

    def setup():
        mesh.load(linked)
        mesh.memcpy_h2d("buf", x)
        mesh.launch()
        return (), {}

    result = benchmark.pedantic(mesh.run, setup=setup, rounds=3)
    assert np.array_equal(mesh.memcpy_d2h("buf"), coll.reference("allreduce", "mesh", x))
    benchmark.extra_info.update(
        cycles=result.cycles,
        model_cycles=coll.model_cycles("allreduce", "mesh", side, side, n),
        wavelets=int(result.stats.wavelets_sent.sum()),
        pes=mesh.n_pe,
    )
