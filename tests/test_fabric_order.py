"""Contention in time order: where several PEs' wavelets meet (one input queue, one link,
one PE's choice of task), the outcome follows emulated time, never the order the emulator
happens to run the PEs in. So results and cycles are the same for every lag window, and
for every queue depth where no queue fills."""

import sys
from pathlib import Path

import numpy as np
import pytest

from wse_emu import Mesh, assemble

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "calibration"))

from ports import C2  # noqa: E402

LAGS = (1, 2, 16, 256, 4096)
DEPTHS = (1, 2, 4, 8)
N = 24  # wavelets per sender

# Each sender stamps its wavelets with the cycle it read just before sending and its id
# (payload = cycle * 4 + id), with a different pace per sender, so the streams interleave
# unevenly. Both paths are one hop long, so time order predicts the arrival order: by send
# cycle, and on a tie the lower PE index first (sender 0 sits at x = 0, sender 1 at x = 2):
# the received payloads must be strictly increasing.
SENDER = """
.program src
.param ID = 0
.param PAD = 1
main:
    mov r2, 0
loop:
    mov r1, %cycle
    shl r1, r1, 2
    add r1, r1, ID
    send 0, r1
    mov r4, 0
pad:
    add r4, r4, 1
    blt r4, PAD, pad
    add r2, r2, 1
    blt r2, N, loop
    halt
"""

MERGE_LAYOUT = """
.layout
.place src at 0, 0 size 1, 1 with ID = 0, PAD = 5
.place sink at 1, 0 size 1, 1
.place src at 2, 0 size 1, 1 with ID = 1, PAD = 8
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 2, 0 size 1, 1 rx ramp tx west
"""

QUEUE_SINK = """
.program sink
.data got i32[2 * N]
main:
    mov r3, got
    add r4, r3, 8 * N
loop:
    recv r1, 0
    st.i32 [r3], r1
    add r3, r3, 4
    blt r3, r4, loop
    halt
"""

# the same two streams on two colors, each bound to a data task of the sink that appends
# its wavelet to one log: which task runs first is the PE's choice, made in time order
TASK_SINK = """
.program sink
.data got i32[2 * N]
.data n i32[1]
main:
    ret
.task a color 0
    call log
    ret
.task b color 1
    call log
    ret
log:
    ld.i32 r2, [n]
    st.i32 [r2 + got], r0
    add r2, r2, 4
    st.i32 [n], r2
    blt r2, 8 * N, more
    halt
more:
    ret
"""


def _source(sink, layout):
    return f".const N = {N}\n" + SENDER + sink + layout


def _run(source, width, lag, depth=4, arch="wse3"):
    m = Mesh(width, 1, arch, overrides={"lag_window": lag, "queue_depth": depth})
    m.load(assemble(source, width, 1, arch))
    m.launch()
    res = m.run(max_cycles=1_000_000)
    return m, res


def _arrivals(m):
    got = m.memcpy_d2h("got", 1, 0, 1, 1).ravel().astype(np.int64)
    return got >> 2, got & 3  # send cycle, sender id


def _in_time_order(m):
    cycles, ids = _arrivals(m)
    assert sorted(ids.tolist()) == [0] * N + [1] * N
    key = cycles * 4 + ids
    assert np.all(np.diff(key) > 0), list(zip(cycles.tolist(), ids.tolist()))
    runs = np.count_nonzero(np.diff(ids)) + 1
    assert runs > 4  # the streams really interleave
    return key


@pytest.mark.parametrize("depth", DEPTHS)
def test_two_senders_into_one_queue_arrive_in_time_order_for_every_lag(depth):
    src = _source(QUEUE_SINK, MERGE_LAYOUT + ".route 0 at 1, 0 size 1, 1 rx west, east tx ramp\n")
    outcomes = set()
    for lag in LAGS:
        m, res = _run(src, 3, lag, depth)
        outcomes.add((res.cycles, _in_time_order(m).tobytes(), m.state.sram8.tobytes()))
    assert len(outcomes) == 1


def test_the_merge_does_not_depend_on_queue_depth_when_no_queue_fills():
    src = _source(QUEUE_SINK, MERGE_LAYOUT + ".route 0 at 1, 0 size 1, 1 rx west, east tx ramp\n")
    runs = {_run(src, 3, 256, d)[1].cycles for d in DEPTHS}
    assert len(runs) == 1


@pytest.mark.parametrize("pads, idle", [((12, 17), True), ((5, 8), False)])
def test_the_choice_between_data_tasks_is_made_in_time_order_for_every_lag(pads, idle):
    """With the sink idle between wavelets, each task starts at its wavelet's arrival, so
    the log is in time order; with the sink backed up (pads 5, 8), several wavelets are
    ready when a task ends and the lower task id goes first; either way the same log for
    every lag window."""
    layout = (
        MERGE_LAYOUT.replace(".route 0 at 2, 0 size 1, 1 rx ramp tx west", "")
        .replace("ID = 0, PAD = 5", f"ID = 0, PAD = {pads[0]}")
        .replace("ID = 1, PAD = 8", f"ID = 1, PAD = {pads[1]}, COLOR = 1")
        + ".route 1 at 2, 0 size 1, 1 rx ramp tx west\n"
        + ".route 0 at 1, 0 size 1, 1 rx west tx ramp\n"
        + ".route 1 at 1, 0 size 1, 1 rx east tx ramp\n"
    )
    src = _source(TASK_SINK, layout).replace("send 0, r1", "send COLOR, r1")
    src = src.replace(".param PAD = 1", ".param PAD = 1\n.param COLOR = 0")
    outcomes = set()
    for lag in LAGS:
        m, res = _run(src, 3, lag)
        assert res.status == "done"
        if idle:
            _in_time_order(m)
        outcomes.add((res.cycles, m.state.sram8.tobytes()))
    assert len(outcomes) == 1


# Two streams of different colors share the link from x = 1 to x = 2: PE 0 streams color 0
# to PE 3 through the routers of PEs 1 and 2, PE 1 streams color 1 to PE 2. Both sinks
# take their stream at once and stamp the cycle they finish; the shared link carries one
# wavelet a cycle, so together they need at least 2N cycles.
SHARED_LINK = """
.const N = 64
.program stream
.param COLOR = 0
.data v f32[N]
main:
    dmem d0, v, N
    dfout d1, COLOR, N
    vmov.f32 d1, d0
    halt
.program sink
.param COLOR = 0
.data got f32[N]
.data t i32[1]
main:
    dmem d0, got, N
    dfin d1, COLOR, N
    vmov.f32 d0, d1
    mov r1, %cycle
    st.i32 [t], r1
    halt
.layout
.place stream at 0, 0 size 1, 1 with COLOR = 0
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 1, 0 size 2, 1 rx west tx east
.place stream at 1, 0 size 1, 1 with COLOR = 1
.route 1 at 1, 0 size 1, 1 rx ramp tx east
.place sink at 2, 0 size 1, 1 with COLOR = 1
.route 1 at 2, 0 size 1, 1 rx west tx ramp
.place sink at 3, 0 size 1, 1 with COLOR = 0
.route 0 at 3, 0 size 1, 1 rx west tx ramp
"""


def test_a_link_shared_by_two_colors_gives_the_same_cycles_for_every_lag():
    outcomes = set()
    for lag in LAGS:
        m = Mesh(4, 1, overrides={"lag_window": lag})
        m.load(SHARED_LINK)
        v = np.arange(2 * 64, dtype=np.float32).reshape(1, 2, 64)
        m.memcpy_h2d("v", v, 0, 0, 2, 1)
        m.launch()
        res = m.run(max_cycles=1_000_000)
        got = m.memcpy_d2h("got", 2, 0, 2, 1)[0]
        assert np.array_equal(got, v[0, ::-1])
        t = m.memcpy_d2h("t", 2, 0, 2, 1).ravel()
        assert max(t) >= 2 * 64  # the link carried 2N wavelets, one a cycle
        outcomes.add((res.cycles, tuple(t.tolist()), m.state.pe.tobytes()))
    assert len(outcomes) == 1


def test_links_are_marked_by_how_many_sources_reach_them():
    from wse_emu.engine.fabric import MANY, NO_SOURCE

    m = Mesh(4, 1)
    m.load(SHARED_LINK)
    link_src = m.state.link_src
    east = 1  # D_EAST
    assert link_src[0 * 4 + east] == 0  # only PE 0 uses the link out of x = 0
    assert link_src[1 * 4 + east] == MANY  # PE 0's and PE 1's streams share x = 1 -> 2
    assert link_src[2 * 4 + east] == 0  # then only PE 0's stream goes on to x = 3
    ramp = m.n_pe * 4
    assert link_src[ramp + 2] == 1 and link_src[ramp + 3] == 0 and link_src[ramp] == NO_SOURCE


C2_CONSTS = {"NX": 256}


def _c2(depth, lag):
    linked = assemble(C2.source(), 16, 1, "wse2", consts=C2_CONSTS)
    m = Mesh(16, 1, "wse2", overrides={"queue_depth": depth, "lag_window": lag})
    m.load(linked)
    ctx = C2.fill(m, np.random.default_rng(0), C2_CONSTS)
    m.launch()
    m.run()
    assert C2.check(m, ctx, C2_CONSTS)
    start = m.memcpy_d2h("tstart").astype(np.int64)
    end = m.memcpy_d2h("tend").astype(np.int64)
    return int(end.max() - start.min())


@pytest.mark.parametrize("depth", DEPTHS)
def test_chain_reduction_cycles_do_not_depend_on_queue_depth_or_lag(depth):
    """C2 (calibration row): a westward chain of fadds, one stream through 16 PEs. Every
    link has one source, so the stream runs at one wavelet a cycle whatever the queue depth
    (tolerance 0: the cycles are equal), and the lag window changes nothing."""
    assert {_c2(depth, lag) for lag in (1, 256, 4096)} == {_c2(4, 256)}
