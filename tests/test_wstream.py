"""Host -> fabric streams (Mesh.stream_h2d, SdkRuntime.memcpy_h2d(streaming=True)) and the
weight-streaming GEMM (programs/gemm_wstream.wsa): results against NumPy, stream timing
against the host-link rule, backpressure, determinism, and clean errors for bad input."""

import math
import subprocess
import sys

import numpy as np
import pytest
from fuzzkit import fuzz_settings, outcome
from hypothesis import given
from hypothesis import strategies as st

from wse_emu import Mesh
from wse_emu.arch import ArchError, ArchProfile
from wse_emu.kernels import gemm, wstream
from wse_emu.runtime import RunError
from wse_emu.sdk import MemcpyDataType, MemcpyOrder, SdkError, SdkRuntime

FRAC = 1 << 16  # the engine keeps the link's time per wavelet in 1/65536 cycles


def step(gbps: float, streams: int, arch: str = "wse3") -> float:
    """The rule: a stream's cycles per wavelet, its equal share of the host link's bytes a
    cycle, one 4-byte wavelet a cycle at most (kept in 1/65536 cycles, rounded up)."""
    bytes_per_cycle = gbps * 1e9 / 8 / ArchProfile(arch).clock_hz
    return max(FRAC, math.ceil(4 * streams * FRAC / bytes_per_cycle)) / FRAC


# a sink per PE: receives N wavelets of color 3 with one fabric-input op (one a cycle) into
# buf, or, with SLOW = 1, one data task per wavelet that stores it (several cycles each)
SINK = """
.const N = 64
.const SLOW = 0
.program sink
.data buf i32[N]
.data at i32[1]
main:
    mov r5, buf
.if SLOW
    ret
.else
    dfin d0, 3, N
    dmem d1, buf, N
    vmov.i32 d1, d0
    mov r6, %cycle
    st.i32 [at], r6
    halt
.endif
.if SLOW
.task got color 3
    st.i32 [r5], r0
    add r5, r5, 4
    blt r5, buf + N * 4, more
    halt
more:
    ret
.endif
.layout
.place sink at 0, 0 size WIDTH, HEIGHT
.route 3 at 0, 0 size WIDTH - 1, HEIGHT rx west tx east, ramp
.route 3 at WIDTH - 1, 0 size 1, HEIGHT rx west tx ramp
"""


def _sink_source(n, slow=0):
    """SINK taking n wavelets, with a data task per wavelet when slow."""
    return SINK.replace(".const SLOW = 0", f".const SLOW = {slow}").replace(
        ".const N = 64", f".const N = {n}"
    )


def _sink(w, h, payload, slow=0, gbps=None, lag=None):
    overrides = {}
    if gbps is not None:
        overrides["host_gbps"] = gbps
    if lag is not None:
        overrides["lag_window"] = lag
    mesh = Mesh(w, h, overrides=overrides)
    mesh.load(_sink_source(payload.shape[-1], slow))
    mesh.stream_h2d(3, payload)
    mesh.launch()
    return mesh, mesh.run()


def _words(h, n, seed=0):
    return np.random.default_rng(seed).integers(0, 2**32, (h, n), dtype=np.uint32)


# ---------------------------------------------------------------- stream timing


@pytest.mark.parametrize("gbps", [1200, 40, 7])
def test_stream_sends_at_its_share_of_the_host_link(gbps):
    """n wavelets into a consumer faster than the link: wavelet i leaves at ceil(i * step),
    never held back; every PE of the row gets every wavelet, in order."""
    h, n = 2, 48
    data = _words(h, n)
    mesh, res = _sink(3, h, data, gbps=gbps)
    s = step(gbps, h)
    for st_ in mesh.streams():
        assert st_.done and st_.held == 0
        assert st_.cycles_per_wavelet == s
        assert st_.first == 0 and st_.last == math.ceil((n - 1) * s)
        assert st_.paced == st_.last - st_.start
    assert np.array_equal(mesh.memcpy_d2h("buf"), np.repeat(data.view(np.int32)[:, None], 3, 1))
    # the run takes at least the stream's n / rate cycles
    assert res.cycles >= (n - 1) * s


def test_lower_bandwidth_makes_the_gemm_stream_bound_by_the_rule():
    X, W = wstream.inputs(32, 16, 32, seed=1)
    _, fast = wstream.wstream(X, W, 2, 2)
    _, slow = wstream.wstream(X, W, 2, 2, overrides={"host_gbps": 3})
    s = step(3, 2)
    wavelets = 16 * 32
    assert slow.cycles_per_wavelet == s
    assert slow.held == 0  # the mesh never holds a slow stream back
    assert slow.paced == math.ceil((wavelets - 1) * s)
    assert slow.cycles >= slow.paced > fast.cycles
    assert slow.stream_bound > 0.9 > fast.stream_bound
    assert fast.held > 0  # at full speed the mesh sets the pace: backpressure


def test_backpressure_holds_the_host_and_loses_nothing():
    """A consumer slower than the link (a data task per wavelet): the stream is held back
    by the full queue; with one wavelet a cycle its last wavelet leaves at (n - 1) + held."""
    n = 40
    data = _words(1, n, seed=2)
    mesh, res = _sink(2, 1, data, slow=1)
    (st_,) = mesh.streams()
    assert st_.done and st_.held > 0
    assert st_.last - st_.start == (n - 1) + st_.held
    assert st_.paced == n - 1
    assert np.array_equal(mesh.memcpy_d2h("buf")[0, 0], data[0].view(np.int32))


def test_two_streams_share_the_link_and_one_stream_owns_it_alone():
    assert step(10, 2) == pytest.approx(2 * step(10, 1), rel=1e-4)
    mesh, _ = _sink(1, 2, _words(2, 16), gbps=10)
    assert all(s_.cycles_per_wavelet == step(10, 2) for s_ in mesh.streams())


def test_stream_merging_with_a_pe_is_exact_for_every_lag_window():
    """A stream and a PE's sends merge into one queue: decided in emulated time order, so
    the interleaving and cycles do not depend on the lag window."""
    src = """
.program sink
.data buf i32[48]
main:
    mov r5, buf
    ret
.task got color 3
    st.i32 [r5], r0
    add r5, r5, 4
    blt r5, buf + 48 * 4, more
    halt
more:
    ret
.program src
.data v i32[16] = 7
main:
    dfout d0, 3, 16
    dmem d1, v, 16
    vmov.i32 d0, d1
    halt
.layout
.place sink at 1, 0 size 1, 1
.place src at 2, 0 size 1, 1
.route 3 at 0, 0 size 1, 1 rx west tx east
.route 3 at 1, 0 size 1, 1 rx west, east tx ramp
.route 3 at 2, 0 size 1, 1 rx ramp tx west
"""
    seen = set()
    for lag in (1, 3, 256):
        mesh = Mesh(3, 1, overrides={"lag_window": lag})
        mesh.load(src)
        mesh.stream_h2d(3, np.arange(32, dtype=np.int32))
        mesh.launch()
        res = mesh.run()
        got = mesh.memcpy_d2h("buf", 1, 0, 1, 1)
        assert sorted(got.ravel().tolist()) == sorted(list(range(32)) + [7] * 16)
        seen.add((res.cycles, got.tobytes(), mesh.streams()[0].held))
    assert len(seen) == 1


# ---------------------------------------------------------------- the GEMM


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize(
    "m, k, n, w, h", [(4, 8, 8, 1, 1), (16, 12, 20, 2, 2), (24, 8, 6, 3, 1), (8, 5, 3, 1, 4)]
)
def test_wstream_gemm_matches_numpy(arch, m, k, n, w, h):
    X, W = wstream.inputs(m, k, n, seed=m + k + n)
    C, rec = wstream.wstream(X, W, w, h, arch)
    assert rec.verified
    # bit for bit the kernel's order: one fp32 rounding per row of W, k ascending
    assert np.array_equal(C, gemm.reference_dense(X, W))
    assert rec.wavelets_streamed == h * k * n
    assert 0 < rec.utilisation <= 1


def test_wstream_is_deterministic():
    X, W = wstream.inputs(32, 16, 16, seed=4)
    (c1, r1), (c2, r2) = (wstream.wstream(X, W, 2, 2) for _ in range(2))
    assert c1.tobytes() == c2.tobytes()
    assert (r1.cycles, r1.held, r1.paced) == (r2.cycles, r2.held, r2.paced)


def test_a_wrong_result_is_caught():
    X, W = wstream.inputs(8, 8, 8, seed=5)
    C, rec = wstream.wstream(X, W, 2, 1)
    C[0, 0] += 1.0
    assert not np.all(
        np.abs(C - X.astype(np.float16).astype(float) @ W.astype(np.float16)) <= rec.tolerance
    )


# ---------------------------------------------------------------- the SDK path

SDK_SINK = _sink_source(8, slow=1)


@pytest.mark.parametrize(
    "dtype, data_type",
    [(np.float32, MemcpyDataType.MEMCPY_32BIT), (np.float16, MemcpyDataType.MEMCPY_16BIT)],
)
def test_sdk_streaming_memcpy_feeds_the_data_task(dtype, data_type):
    r = SdkRuntime(SDK_SINK, mesh=(2, 2))
    r.load()
    r.run()  # main returns: the device waits for the host
    src = np.random.default_rng(0).standard_normal(16).astype(dtype)
    r.memcpy_h2d(
        3,
        src,
        0,
        0,
        1,
        2,
        8,
        streaming=True,
        data_type=data_type,
        order=MemcpyOrder.ROW_MAJOR,
        nonblock=False,
    )
    out = np.zeros(32, np.int32)
    r.memcpy_d2h(out, "buf", 0, 0, 2, 2, 8, data_type=MemcpyDataType.MEMCPY_32BIT)
    got = out.reshape(2, 2, 8).view(np.uint32)
    want = src.reshape(2, 8).view(np.uint16 if dtype == np.float16 else np.uint32)
    assert np.array_equal(got[:, 0], want) and np.array_equal(got[:, 1], want)
    assert r.last.ok


def test_sdk_streaming_errors():
    r = SdkRuntime(SDK_SINK, mesh=(2, 2))
    r.load()
    r.run()
    src = np.zeros(8, np.float32)
    with pytest.raises(SdkError, match="dest is the color"):
        r.memcpy_h2d("buf", src, 0, 0, 1, 1, 8, streaming=True)
    with pytest.raises(SdkError, match="one edge column"):
        r.memcpy_h2d(3, np.zeros(16, np.float32), 0, 0, 2, 1, 8, streaming=True)
    with pytest.raises(SdkError, match="does not receive color 4 from the west"):
        r.memcpy_h2d(4, src, 0, 0, 1, 1, 8, streaming=True)
    with pytest.raises(RunError, match=r"sent \d+ of 40"):  # more than the program takes
        r.memcpy_h2d(3, np.zeros(40, np.float32), 0, 0, 1, 1, 40, streaming=True)


# ---------------------------------------------------------------- bad input


def _loaded(w=3, h=2):
    mesh = Mesh(w, h)
    mesh.load(SINK)
    return mesh


def test_stream_errors():
    mesh = _loaded()
    good = np.zeros((2, 4), np.uint32)
    with pytest.raises(ValueError, match=r"PE \(1,0\) is not on the east edge"):
        mesh.stream_h2d(3, good, x=1)
    with pytest.raises(ValueError, match="not on the west edge"):
        mesh.stream_h2d(3, good, x=2, side="west")
    with pytest.raises(ValueError, match="side must be"):
        mesh.stream_h2d(3, good, side="north")
    with pytest.raises(RunError, match=r"PE \(2,0\) does not receive color 3 from the east"):
        mesh.stream_h2d(3, good, x=2)
    with pytest.raises(RunError, match="does not receive color 4 from the west"):
        mesh.stream_h2d(4, good)
    with pytest.raises(TypeError, match="float64"):
        mesh.stream_h2d(3, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"shape \(2, 0\)"):
        mesh.stream_h2d(3, np.zeros((2, 0), np.uint32))
    with pytest.raises(ValueError, match="shape"):
        mesh.stream_h2d(3, np.zeros((2, 2, 2), np.uint32))
    with pytest.raises(ValueError, match="not inside the mesh"):
        mesh.stream_h2d(3, np.zeros((3, 4), np.uint32))
    with pytest.raises(ValueError, match="color"):
        mesh.stream_h2d(24, good)
    mesh.stream_h2d(3, good)
    with pytest.raises(ValueError, match="already takes a stream"):
        mesh.stream_h2d(3, good[:1])
    with pytest.raises(RuntimeError, match="no program loaded"):
        Mesh(1, 1).stream_h2d(0, good[:1])


def test_bandwidth_must_be_positive():
    for bad in (0, -5):
        with pytest.raises(ArchError, match="host_gbps"):
            Mesh(1, 1, overrides={"host_gbps": bad})


def test_unfinished_stream_is_a_deadlock_naming_it():
    mesh = Mesh(2, 1)
    mesh.load(_sink_source(4))
    mesh.stream_h2d(3, np.zeros(40, np.uint32))
    mesh.launch()
    with pytest.raises(RunError, match=r"host stream into PE \(0,0\) on color 3: sent \d+ of 40"):
        mesh.run()


def test_gemm_shape_errors():
    X, W = wstream.inputs(10, 8, 8)
    with pytest.raises(ValueError, match="multiple of the 2x2 mesh's 4 PEs"):
        wstream.wstream(X, W, 2, 2)
    with pytest.raises(ValueError, match="does not fit its SRAM"):
        wstream.check_shape(4, 4096, 8192, 2, 2, ArchProfile("wse3"))
    with pytest.raises(ValueError, match="not a matrix product"):
        wstream.wstream(np.zeros((4, 3)), np.zeros((4, 3)), 1, 1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--m", "10", "--mesh", "2x2"], "multiple of the 2x2 mesh"),
        (["--k", "4096", "--n", "8192", "--m", "4", "--mesh", "2x2"], "does not fit its SRAM"),
        (["--host-gbps", "0"], "host_gbps = 0 is outside its range"),
        (["--host-gbps", "fast"], "whole numbers"),
        (["--mesh", "0x2"], "mesh"),
    ],
)
def test_cli_errors_without_traceback(args, message):
    out = subprocess.run(
        [sys.executable, "-m", "wse_emu.cli", "bench", "wstream", *args],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_cli_bench_wstream_runs():
    args = "bench wstream --m 32 --k 8 --n 8 --mesh 2x2 --host-gbps 1200,5".split()
    out = subprocess.run(
        [sys.executable, "-m", "wse_emu.cli", *args],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.split()[:1] == ["1200"] and line.endswith("yes") for line in lines)
    assert any(line.split()[:1] == ["5"] and line.endswith("yes") for line in lines)
    assert "W resident (dense SUMMA" in out.stdout


@fuzz_settings(40)
@given(
    rows=st.integers(0, 3),
    n=st.integers(0, 5),
    x=st.integers(-1, 3),
    y0=st.integers(-1, 2),
    color=st.integers(-1, 25),
    dtype=st.sampled_from(["float16", "float32", "int32", "uint32", "float64", "int8", "bool"]),
)
def test_fuzz_stream_h2d_input(rows, n, x, y0, color, dtype):
    mesh = _loaded()
    arr = np.zeros((rows, n), dtype)
    try:
        mesh.stream_h2d(color, arr, x=x, y0=y0)
    except (TypeError, ValueError, RunError) as e:
        assert str(e)
        outcome("stream.error")
        return
    outcome("stream.ok")
    assert mesh.streams()[-1].wavelets == n
