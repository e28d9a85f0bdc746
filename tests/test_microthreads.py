"""Microthreads (engine/microthread.py): an `async` vector op with a fabric operand runs
beside the thread, shares the datapath with it, serialises with other ops on the same
microthread, and activates or unblocks a task when it completes."""

import numpy as np
import pytest
from conftest import run_program
from hypothesis import given
from hypothesis import strategies as st

from wse_emu import Mesh, assemble
from wse_emu.arch import ArchProfile
from wse_emu.asm import AsmError

N = 64
M = 256  # elements of the thread's own compute


def receiver(recv_prefix: str, body: str, tasks: str = "", data: str = "") -> str:
    """A 2x1 program: PE (0,0) streams src (N fp32) east on color 0; PE (1,0) receives it into
    buf with recv_prefix before the receiving vmov, then runs body. Its `done` task stores
    %cycle in t[1] and halts; t[0] is set by body's caller."""
    return f"""
.const N = {N}
.const M = {M}
.program src
.data v f32[N]
.text
main:
    dmem  d0, v, N
    dfout d1, 0, N
    vmov.f32 d1, d0
    halt

.program dst
.data buf f32[N]
.data x f32[M]
.data pad f32[1]
.data y f32[M]
.data t i32[4]
{data}
.text
main:
    dfin  d0, 0, N
    dmem  d1, buf, N
    dmem  d2, x, M
    dmem  d3, y, M
{recv_prefix}
    vmov.f32 d1, d0
{body}
    ret

.task done
    mov r1, %cycle
    st.i32 [t + 4], r1
    halt
{tasks}
.layout
.place src at 0, 0 size 1, 1
.place dst at 1, 0 size 1, 1
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 1, 0 size 1, 1 rx west tx ramp
"""


COMPUTE = """
    vadd.f32 d2, d2, d3
    vadd.f32 d3, d3, d2
    vadd.f32 d2, d2, d3
"""


def _inputs(rng):
    return {
        "v": (0, rng.standard_normal(N).astype(np.float32)),
        "x": (1, rng.standard_normal(M).astype(np.float32)),
        "y": (1, rng.standard_normal(M).astype(np.float32)),
    }


def _expected(inputs):
    x, y = inputs["x"][1].copy(), inputs["y"][1].copy()
    x = x + y
    y = y + x
    x = x + y
    return x, y


def _run(src, inputs, arch="wse3", overrides=None, width=2):
    """Load src on a width x 1 mesh; inputs: symbol -> (x of the one PE holding it, array),
    or a list of (symbol, x, array)."""
    m = Mesh(width, 1, arch, overrides=overrides)
    m.load(assemble(src, width, 1, m.arch))
    items = inputs if isinstance(inputs, list) else [(k, *v) for k, v in inputs.items()]
    for sym, x, arr in items:
        m.memcpy_h2d(sym, arr, x, 0, 1, 1)
    m.launch()
    return m, m.run(check=False)


def _check_results(m, inputs):
    np.testing.assert_array_equal(_get(m, "buf"), inputs["v"][1])
    x, y = _expected(inputs)
    np.testing.assert_array_equal(_get(m, "x"), x)
    np.testing.assert_array_equal(_get(m, "y"), y)


def _get(m, sym, x=1):
    return m.memcpy_d2h(sym, x, 0, 1, 1)[0, 0]


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_async_receive_overlaps_compute(arch, rng):
    """The same work with the receive on a microthread takes fewer cycles than with it on
    the thread (receive, then compute), and gives the same bits."""
    inputs = _inputs(rng)
    m_async, r_async = _run(receiver("    async 0, done", COMPUTE), inputs, arch)
    m_sync, r_sync = _run(receiver("", COMPUTE + "    activate done"), inputs, arch)
    _check_results(m_async, inputs)
    _check_results(m_sync, inputs)
    assert r_async.cycles < r_sync.cycles
    # the thread's compute alone is a lower bound of the overlapped run
    p = ArchProfile(arch)
    compute = 3 * (M // p["fp32_basic"])
    assert r_async.cycles > compute


def test_completion_task_starts_after_the_last_result():
    """`done` runs no earlier than the op's last element plus the drain: the stream's last
    wavelet cannot land before N cycles after it starts."""
    p = ArchProfile("wse3")
    m, _ = _run(receiver("    async 0, done", ""), _inputs(np.random.default_rng(1)))
    done_at = int(_get(m, "t")[1])
    assert done_at >= N + p["vector_drain"]


def _two_streams(ut_a: int, ut_b: int) -> str:
    """3x1: PE (0,0) streams a east on color 0, PE (2,0) streams b west on color 1; PE (1,0)
    receives both with async ops on microthreads ut_a and ut_b; the task of the second
    stores %cycle and halts."""
    return f"""
.const N = {N}
.program src
.param C = 0
.data v f32[N]
.text
main:
    dmem  d0, v, N
    dfout d1, C, N
    vmov.f32 d1, d0
    halt

.program mid
.data a f32[N]
.data b f32[N]
.data t i32[2]
.text
main:
    dfin d0, 0, N
    dmem d1, a, N
    dfin d2, 1, N
    dmem d3, b, N
    async {ut_a}, first
    vmov.f32 d1, d0
    async {ut_b}, second
    vmov.f32 d3, d2
    ret

.task first
    mov r1, %cycle
    st.i32 [t], r1
    ret

.task second
    mov r1, %cycle
    st.i32 [t + 4], r1
    halt

.layout
.place src at 0, 0 size 1, 1 with C = 0
.place mid at 1, 0 size 1, 1
.place src at 2, 0 size 1, 1 with C = 1
.route 0 at 0, 0 size 1, 1 rx ramp tx east
.route 0 at 1, 0 size 1, 1 rx west tx ramp
.route 1 at 2, 0 size 1, 1 rx ramp tx west
.route 1 at 1, 0 size 1, 1 rx east tx ramp
"""


def test_two_async_ops_on_one_microthread_serialise(rng):
    a, b = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    runs = {}
    for uts in ((0, 0), (0, 1)):
        m, res = _run(_two_streams(*uts), [("v", 0, a), ("v", 2, b)], width=3)
        np.testing.assert_array_equal(_get(m, "a"), a)
        np.testing.assert_array_equal(_get(m, "b"), b)
        t = _get(m, "t")
        runs[uts] = (int(t[0]), int(t[1]), res.cycles)
    first, second, _ = runs[(0, 0)]
    assert second - first >= N  # the second op's N elements come after the first op ends
    assert runs[(0, 1)][1] < second  # on two microthreads they run side by side
    assert runs[(0, 1)][2] < runs[(0, 0)][2]


def test_a_microthread_delays_the_threads_op_it_overlaps(rng):
    """The datapath is shared: the thread's compute takes longer while a microthread streams
    beside it than alone, by at most the microthread's N element cycles."""
    timed = "    mov r5, %cycle\n" + COMPUTE + "    mov r6, %cycle\n"
    timed += "    st.i32 [t + 8], r5\n    st.i32 [t + 12], r6\n"
    inputs = _inputs(rng)
    m_busy, _ = _run(receiver("    async 0, done", timed), inputs)
    m_alone, _ = _run(receiver("", timed + "    activate done"), inputs)  # after the stream
    _check_results(m_busy, inputs)
    tb = _get(m_busy, "t")
    ta = _get(m_alone, "t")
    busy, lone = int(tb[3] - tb[2]), int(ta[3] - ta[2])
    assert lone + N // 2 < busy <= lone + N + 2


def test_utblock_holds_a_microthread_until_utunblock():
    """A microthread blocked before its op is issued takes no wavelet until the thread
    unblocks it after its compute: its task runs at least N cycles after the unblock (the
    sender was held back meanwhile); unblocked, the op is done by the time the task can run."""
    body = COMPUTE + "    mov r5, %cycle\n    st.i32 [t + 8], r5\n    utunblock 0\n"
    m, _ = _run(
        receiver("    utblock 0\n    async 0, done", body), _inputs(np.random.default_rng(2))
    )
    t = _get(m, "t")
    assert int(t[1]) >= int(t[2]) + N
    free = receiver("    async 0, done", body.replace("    utunblock 0\n", ""))
    m2, _ = _run(free, _inputs(np.random.default_rng(2)))
    t2 = _get(m2, "t")
    assert int(t2[1]) < int(t2[2]) + N


def test_async_unblock_unblocks_a_task():
    tasks = ".task gate\n    mov r1, %cycle\n    st.i32 [t + 4], r1\n    halt\n"
    src = receiver("    block gate\n    activate gate\n    async_unblock 0, gate", "", tasks)
    m, res = _run(src, _inputs(np.random.default_rng(3)))
    assert res.status == "done"
    assert int(_get(m, "t")[1]) >= N


def test_halt_waits_for_running_microthreads(rng):
    inputs = _inputs(rng)
    src = receiver("    async 0, done", "    halt").replace("    halt\n    ret", "    halt")
    m, res = _run(src, inputs)
    assert res.status == "done"
    np.testing.assert_array_equal(_get(m, "buf"), inputs["v"][1])
    assert res.cycles >= N


def test_bits_and_cycles_do_not_depend_on_the_lag_window(rng):
    inputs = _inputs(rng)
    src = receiver("    async 0, done", COMPUTE)
    out = []
    for lag in (16, 256, 4096):
        m, res = _run(src, inputs, overrides={"lag_window": lag})
        out.append((res.cycles, _get(m, "buf").tobytes(), _get(m, "t").tobytes()))
    assert out[0] == out[1] == out[2]


@pytest.mark.parametrize("uid", [0, 3])
def test_a_host_pe_gets_rows_for_the_microthread_ids_its_program_names(uid, rng):
    # PE (1,0) alone uses microthreads: ids 0 .. uid, not all the arch's 8, are allocated
    # (state rows after the PE rows), and the op on the highest id still runs there
    inputs = _inputs(rng)
    src = receiver(f"    async {uid}, done", COMPUTE)
    m, res = _run(src, inputs)
    assert res.status == "done"
    assert m.state.pe.shape[0] == m.n_pe + uid + 1 < m.n_pe + ArchProfile("wse3")["microthreads"]
    np.testing.assert_array_equal(_get(m, "buf"), inputs["v"][1])
    assert res.cycles == _run(receiver("    async 0, done", COMPUTE), inputs)[1].cycles


# ------------------------------------------------------------------ errors


def test_a_microthread_that_never_gets_its_wavelets_is_named_in_the_deadlock():
    src = receiver("    async 0, done", "").replace("    vmov.f32 d1, d0\n    halt", "    halt", 1)
    _, res = _run(src, {})
    assert res.status == "deadlock"
    assert "microthread 0 blocked on receive, color 0" in res.report


def test_async_on_an_op_without_fabric_operand_faults_at_its_line():
    src = receiver("", "    async 0, done\n    vadd.f32 d2, d2, d3")
    _, res = run_program(src, mesh=(2, 1), check=False)
    assert res.status == "fault"
    assert "async op without a fabric operand" in res.report
    assert "PE (1,0)" in res.report and "vadd.f32 d2, d2, d3" in res.report


@pytest.mark.parametrize(
    "prefix, follows, message",
    [
        ("async 8, done", "vmov.f32 d1, d0", "microthread id"),
        ("async 0, done", "add r1, r1, 1", "must be followed by the vector op"),
        ("async 0, done", "vsum.f32 r1, d0", "must be followed by the vector op"),
        ("async 0, nosuch", "vmov.f32 d1, d0", "undefined task"),
    ],
)
def test_bad_async_is_an_assembler_error_at_its_line(prefix, follows, message):
    src = f"main:\n    {prefix}\n    {follows}\n    halt\n.task done\n    ret\n"
    with pytest.raises(AsmError) as e:
        run_program(src)
    assert message in str(e.value)
    assert ":2:" in str(e.value)


def test_a_microthread_beyond_the_arch_count_is_a_link_error():
    src = "main:\n    async 5, done\n    vmov.f32 d1, d0\n    halt\n.task done\n    ret\n"
    with pytest.raises(AsmError) as e:
        run_program(src, overrides={"microthreads": 4})
    assert "microthread 5 out of range" in str(e.value) and ":2:" in str(e.value)


@given(st.integers(-(2**40), 2**40))
def test_any_microthread_id_assembles_or_is_refused_at_its_line(u):
    src = f"main:\n    utblock {u}\n    halt\n"
    try:
        m, res = run_program(src)
    except AsmError as e:
        assert not 0 <= u < 8
        assert ":2:" in str(e)
    else:
        assert 0 <= u < 8 and res.status == "done"
