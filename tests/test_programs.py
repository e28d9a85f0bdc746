"""The shipped programs against NumPy."""

import numpy as np
import pytest
from conftest import vector_add_cycles

from wse_emu import Mesh, assemble, parse_file, programs
from wse_emu.arch import ArchProfile
from wse_emu.kernels.gemv import gemv, reference


def load(name, w, h, arch="wse3", consts=None):
    m = Mesh(w, h, arch)
    m.load(assemble(parse_file(programs.path(name)), w, h, m.arch, consts=consts))
    return m


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_vector_add(arch, rng):
    m = load("vector_add", 1, 1, arch)
    a = rng.standard_normal(64).astype(np.float16)
    b = rng.standard_normal(64).astype(np.float16)
    m.memcpy_h2d("a", a)
    m.memcpy_h2d("b", b)
    m.launch()
    res = m.run()
    assert np.array_equal(m.memcpy_d2h("c")[0, 0].view(np.uint16), (a + b).view(np.uint16))
    assert res.cycles == vector_add_cycles(arch)


@pytest.mark.parametrize("w,h", [(2, 1), (5, 3), (64, 64)])
def test_row_broadcast_reaches_every_pe_of_every_row(w, h, rng):
    m = load("row_broadcast", w, h)
    src = rng.standard_normal((h, 1, 32)).astype(np.float32)
    m.memcpy_h2d("src", src, 0, 0, 1, h)
    m.launch()
    res = m.run()
    got = m.memcpy_d2h("buf", 1, 0, w - 1, h)
    assert np.array_equal(got, np.broadcast_to(src, (h, w - 1, 32)))
    # one send per value reaches w - 1 PEs: multicast, not w - 1 sends
    assert res.stats.wavelets_sent.sum() == h * 32
    assert res.stats.hops.sum() == h * 32 * (w - 1)


@pytest.mark.parametrize("w", [2, 16, 64])
@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_multicast_streams_one_wavelet_per_cycle_whatever_the_distance(w, arch):
    """Routers buffer wavelets in flight, so a stream is not throttled by the round trip to
    its farthest receiver: the last of N values lands (N - 1) cycles after the first."""
    prof = ArchProfile(arch)
    m = load("row_broadcast", w, 1, arch)
    m.launch()
    res = m.run()
    n = 32
    first_send = 2 * prof["dsd_write"] + prof["vector_startup"]  # after dmem and dfout
    last_land = first_send + (n - 1) + prof["ramp_on"] + (w - 1) * prof["hop_latency"]
    last_land += prof["ramp_off"]
    # take the last element, write it (the drain, which halt waits for), halt
    assert res.cycles == last_land + prof["wavelet"] + prof["vector_drain"] + 1


@pytest.mark.parametrize("pes", [2, 4, 8])
@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_gemv_matches_numpy(pes, arch, rng):
    A = rng.standard_normal((32, 16 * pes))
    x = rng.standard_normal(16 * pes)
    y, res = gemv(A, x, pes, arch)
    assert np.array_equal(y, reference(A, x, pes))  # same arithmetic, bit for bit
    exact = A.astype(np.float16).astype(np.float64) @ x.astype(np.float16).astype(np.float64)
    assert np.allclose(y, exact, rtol=1e-5, atol=1e-4)
    assert res.stats.flops["f16->f32"] == 2 * A.size


def test_gemv_takes_fewer_cycles_on_wse3(rng):
    A = rng.standard_normal((32, 64))
    x = rng.standard_normal(64)
    _, r2 = gemv(A, x, 4, "wse2")
    _, r3 = gemv(A, x, 4, "wse3")
    assert r3.cycles < r2.cycles


def test_nonlinear_program(rng):
    m = load("nonlinear", 1, 1)
    x = (rng.standard_normal(64) * 3).astype(np.float16)
    m.memcpy_h2d("x", x)
    m.launch()
    m.run()
    xf = x.astype(np.float64)
    ax = np.abs(xf)
    import math as _m

    refs = {
        "exp": np.exp(xf),
        "tanh": np.tanh(xf),
        "sigmoid": 1 / (1 + np.exp(-xf)),
        "gelu": 0.5 * xf * (1 + np.array([_m.erf(v / np.sqrt(2)) for v in xf])),
        "relu": np.maximum(xf, 0),
        "recip": 1 / xf,
        "log": np.log(ax),
        "rsqrt": 1 / np.sqrt(ax),
    }
    for name, ref in refs.items():
        got = m.memcpy_d2h(name)[0, 0].astype(np.float64)
        with np.errstate(over="ignore"):
            want = ref.astype(np.float16).astype(np.float64)
        spacing = np.spacing(np.abs(want).astype(np.float16)).astype(np.float64)
        assert np.all((got == want) | (np.abs(got - want) <= spacing)), name
