"""Timing rules of the cost table: SIMD widths and stride, hop latency, link bandwidth,
backpressure, fabric stalls, determinism, and results that do not depend on the lag window."""

import math

import numpy as np
import pytest
from conftest import pair_layout, run_program, timed_run

from wse_emu.arch import ArchProfile


def op_cycles(src_op, dt, n, arch, stride=1):
    """Cycles from the vector op's issue to its last result, read from %cycle around it (the
    counter read waits for the datapath)."""
    data = f".data a {dt}[{n * stride}]"
    setup = f"    dmem d0, a, {n}, {stride}"
    return timed_run(data, setup, f"    {src_op}.{dt} d0, d0, d0", arch)[2]


def fixed(prof):
    """Start-up and drain of one vector op alone (pipeline.py)."""
    return prof["vector_startup"] + prof["vector_drain"]


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 100])
@pytest.mark.parametrize("arch,width", [("wse3", 8), ("wse2", 4)])
def test_f16_vector_op_takes_ceil_n_over_width(n, arch, width):
    prof = ArchProfile(arch)
    assert prof["fp16_basic"] == width  # the cost table's row
    assert op_cycles("vadd", "f16", n, arch) == fixed(prof) + math.ceil(n / width)


@pytest.mark.parametrize(
    "op,cls", [("vadd", "fp32_basic"), ("vmul", "fp32_mul"), ("vmax", "fp32_max")]
)
@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_f32_widths_follow_their_class(op, cls, arch):
    prof = ArchProfile(arch)
    n = 48
    assert op_cycles(op, "f32", n, arch) == fixed(prof) + math.ceil(n / prof[cls])


def test_i8_runs_16_wide_on_wse3_and_is_refused_on_wse2():
    prof = ArchProfile("wse3")
    assert op_cycles("vadd", "i8", 64, "wse3") == fixed(prof) + 64 // 16
    from wse_emu import AsmError

    with pytest.raises(AsmError, match="wse2 does not have"):
        op_cycles("vadd", "i8", 64, "wse2")


@pytest.mark.parametrize("stride,expect_width", [(2, 8), (3, 8), (7, 2), (9, 2), (8, 1), (16, 1)])
def test_stride_reduces_width(stride, expect_width):
    """The facts' stride table (fp16, wse3), which the [bank] rule reproduces."""
    prof = ArchProfile("wse3")
    n = 32
    assert op_cycles("vadd", "f16", n, "wse3", stride) == fixed(prof) + math.ceil(n / expect_width)


PING = """.const H = 1
.program src
.data t i32[1]
main:
    mov r1, %cycle
    st.i32 [t], r1
    send 3, 42
    halt
.program dst
.data t i32[2]
main:
    recv r1, 3
    mov r2, %cycle
    st.i32 [t], r1
    st.i32 [t + 4], r2
    halt
.program pass
main:
    halt
.layout
.place src at 0, 0 size 1, 1
.place pass at 1, 0 size H - 1, 1
.place dst at H, 0 size 1, 1
.route 3 at 0, 0 size 1, 1 rx ramp tx east
.route 3 at 1, 0 size H - 1, 1 rx west tx east
.route 3 at H, 0 size 1, 1 rx west tx ramp
"""


@pytest.mark.parametrize("hop", [1, 3])
@pytest.mark.parametrize("hops", [1, 2, 5])
def test_wavelet_over_h_hops_arrives_h_hop_latencies_later(hops, hop):
    prof = ArchProfile("wse3", {"hop_latency": hop})
    m, _ = run_program(PING, mesh=(hops + 1, 1), consts={"H": hops}, overrides={"hop_latency": hop})
    sent_at = int(m.memcpy_d2h("t", 0, 0, 1, 1)[0, 0, 0]) + 2  # after mov and st
    payload, after_recv = m.memcpy_d2h("t", hops, 0, 1, 1)[0, 0]
    assert payload == 42
    arrival = sent_at + prof["ramp_on"] + hops * hop + prof["ramp_off"]
    assert after_recv == arrival + prof["wavelet"]


STREAMS = """.const N = 64
.const TWO = 1
.program first
.data v f32[N]
main:
    dmem d0, v, N
    dfout d1, 1, N
    vmov.f32 d1, d0
    halt
.program second
.data v f32[N]
main:
    mov r1, TWO
    beq r1, 0, done
    dmem d0, v, N
    dfout d1, 2, N
    vmov.f32 d1, d0
done:
    halt
.program sink
.data a f32[N]
.data b f32[N]
main:
    dfin d0, 1, N
    dmem d1, a, N
    vmov.f32 d1, d0
    mov r1, TWO
    beq r1, 0, done
    dfin d0, 2, N
    dmem d1, b, N
    vmov.f32 d1, d0
done:
    halt
.layout
.place first at 0, 0 size 1, 1
.place second at 1, 0 size 1, 1
.place sink at 2, 0 size 1, 1
.route 1 at 0, 0 size 1, 1 rx ramp tx east
.route 1 at 1, 0 size 1, 1 rx west tx east
.route 1 at 2, 0 size 1, 1 rx west tx ramp
.route 2 at 1, 0 size 1, 1 rx ramp tx east
.route 2 at 2, 0 size 1, 1 rx west tx ramp
"""


def test_n_wavelets_over_one_link_take_at_least_n_cycles():
    n = 64
    _, res = run_program(STREAMS, mesh=(3, 1), consts={"N": n, "TWO": 1})
    # both streams cross the link (1,0) -> (2,0): 2n wavelets need 2n cycles on it
    assert res.stats.wavelets_sent.sum() == 2 * n
    assert res.cycles >= 2 * n
    one, _ = run_program(STREAMS, mesh=(3, 1), consts={"N": n, "TWO": 0})
    assert one.stats().cycles >= n
    assert res.cycles - one.stats().cycles >= n - 1


def test_stream_values_arrive_in_order(rng):
    n = 64
    from wse_emu import Mesh, assemble

    m = Mesh(3, 1)
    m.load(assemble(STREAMS, 3, 1, consts={"N": n}))
    v1 = rng.standard_normal(n).astype(np.float32)
    v2 = rng.standard_normal(n).astype(np.float32)
    m.memcpy_h2d("v", v1, 0, 0, 1, 1)
    m.memcpy_h2d("v", v2, 1, 0, 1, 1)
    m.launch()
    m.run()
    assert np.array_equal(m.memcpy_d2h("a", 2, 0, 1, 1)[0, 0], v1)
    assert np.array_equal(m.memcpy_d2h("b", 2, 0, 1, 1)[0, 0], v2)


SLOW_CONSUMER = """.const N = 20
.const DELAY = 500
.program producer
.data t i32[1]
main:
    mov r1, 0
again:
    send 5, r1
    add r1, r1, 1
    blt r1, N, again
    mov r2, %cycle
    st.i32 [t], r2
    halt
.program consumer
.data got i32[N]
.data t i32[1]
main:
    mov r1, 0
spin:
    add r1, r1, 1
    blt r1, DELAY, spin
    mov r2, %cycle
    st.i32 [t], r2
    mov r3, got
    mov r1, 0
take:
    recv r4, 5
    st.i32 [r3], r4
    add r3, r3, 4
    add r1, r1, 1
    blt r1, N, take
    halt
""" + pair_layout("producer", "consumer", 5)


def test_full_queue_stalls_its_sender():
    prof = ArchProfile("wse3")
    m, res = run_program(SLOW_CONSUMER, mesh=(2, 1))
    assert list(m.memcpy_d2h("got", 1, 0, 1, 1)[0, 0]) == list(range(20))
    producer_done = int(m.memcpy_d2h("t", 0, 0, 1, 1)[0, 0, 0])
    consumer_starts = int(m.memcpy_d2h("t", 1, 0, 1, 1)[0, 0, 0])
    # only queue_depth wavelets fit before the consumer takes any: the rest wait for it
    assert producer_done > consumer_starts
    assert res.stats.stalled[0, 0] >= consumer_starts - 3 * prof["queue_depth"] - 10
    # without the delay the producer is never held up for long
    m2, res2 = run_program(SLOW_CONSUMER, mesh=(2, 1), consts={"DELAY": 1})
    assert res2.stats.stalled[0, 0] < res.stats.stalled[0, 0]


def test_vector_op_suspends_when_fabric_runs_dry_and_resumes(rng):
    src = """.const N = 16
.program producer
main:
    mov r1, 0
next:
    mov r2, 0
wait:
    add r2, r2, 1
    blt r2, 30, wait          ; ~60 cycles between wavelets
    itof r3, r1
    send 7, r3
    add r1, r1, 1
    blt r1, N, next
    halt
.program consumer
.data out f32[N]
main:
    dfin d0, 7, N
    dmem d1, out, N
    vmov.f32 d1, d0
    halt
""" + pair_layout("producer", "consumer", 7)
    m, res = run_program(src, mesh=(2, 1))
    assert list(m.memcpy_d2h("out", 1, 0, 1, 1)[0, 0]) == [float(i) for i in range(16)]
    assert res.stats.stalled[0, 1] > 15 * 50  # the consumer waited between elements
    assert res.stats.busy[0, 1] < 100  # but was busy only for its own work


def _gemv_run(lag=None, arch="wse3"):
    from wse_emu import Mesh, assemble, parse_file, programs

    m = Mesh(8, 1, arch, overrides={"lag_window": lag} if lag else None)
    m.load(assemble(parse_file(programs.path("gemv")), 8, 1, m.arch))
    rng = np.random.default_rng(3)
    m.memcpy_h2d("a", rng.standard_normal((1, 8, 16, 32)))
    m.memcpy_h2d("x", rng.standard_normal((1, 8, 16)))
    m.launch()
    res = m.run()
    return m.memcpy_d2h("y", 7, 0, 1, 1), res


def test_runs_are_deterministic():
    y1, r1 = _gemv_run()
    y2, r2 = _gemv_run()
    assert np.array_equal(y1, y2)
    assert r1.cycles == r2.cycles
    assert np.array_equal(r1.stats.busy, r2.stats.busy)
    assert np.array_equal(r1.stats.stalled, r2.stats.stalled)


@pytest.mark.parametrize("lag", [1, 16, 100000])
def test_results_do_not_depend_on_lag_window(lag):
    y_ref, _ = _gemv_run()
    y, _ = _gemv_run(lag)
    assert np.array_equal(y, y_ref)


def test_batched_runs_give_the_same_results_and_report_progress():
    from wse_emu import Mesh, assemble, parse_file, programs

    def gemv_mesh():
        m = Mesh(8, 1)
        m.load(assemble(parse_file(programs.path("gemv")), 8, 1, m.arch))
        rng = np.random.default_rng(3)
        m.memcpy_h2d("a", rng.standard_normal((1, 8, 16, 32)))
        m.memcpy_h2d("x", rng.standard_normal((1, 8, 16)))
        m.launch()
        return m

    whole = gemv_mesh()
    whole.run()
    calls = []
    small = gemv_mesh()
    res = small.run(batch=50, progress=lambda m: calls.append(m.stats().instructions.sum()))
    assert res.ok and len(calls) >= res.stats.instructions.sum() // 50 - 1
    assert calls == sorted(calls)  # progress only moves forward
    assert np.array_equal(small.memcpy_d2h("y", 7, 0, 1, 1), whole.memcpy_d2h("y", 7, 0, 1, 1))
