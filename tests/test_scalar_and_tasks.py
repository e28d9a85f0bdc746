"""Scalar ALU, fp32, branches, calls, loads/stores, specials, and the task model."""

import numpy as np
import pytest
from conftest import pair_layout, run_program, timed_run

from wse_emu.arch import ArchProfile

OUT = ".data out i32[16]\n"


def outputs(src, mesh=(1, 1), **kw):
    m, res = run_program(OUT + src, mesh=mesh, **kw)
    return m.memcpy_d2h("out"), res


def store_regs(n):
    return "".join(f"    st.i32 [out + {4 * i}], r{i}\n" for i in range(n))


def test_integer_alu_wraps_at_32_bits():
    src = (
        """main:
    mov r0, 0x7fffffff
    add r1, r0, 1
    sub r2, r1, 1
    mul r3, r0, 2
    and r4, r0, 0xff
    or r5, r4, 0x100
    xor r6, r5, 0x1ff
    shl r7, r5, 4
    mov r8, -16
    shr r9, r8, 28
    sra r10, r8, 2
    min r11, r8, 3
    max r12, r8, 3
    slt r13, r8, 3
    seq r14, r8, -16
"""
        + store_regs(15)
        + "    halt\n"
    )
    out, _ = outputs(src)
    v = out[0, 0]
    i32 = lambda x: np.int64(x).astype(np.int32)  # noqa: E731
    assert list(v[:15]) == [
        0x7FFFFFFF,
        i32(0x80000000),
        0x7FFFFFFF,
        i32(0xFFFFFFFE),
        0xFF,
        0x1FF,
        0,
        0x1FF0,
        -16,
        15,
        -4,
        -16,
        3,
        1,
        1,
    ]


def test_fp32_scalar_ops_match_numpy():
    src = (
        """main:
    mov r1, 1.5
    mov r2, -0.1
    fadd r3, r1, r2
    fsub r4, r1, r2
    fmul r5, r1, r2
    mov r6, 2.0
    fmac r6, r1, r2
    fmax r7, r1, r2
    fmin r8, r1, r2
    fneg r9, r2
    fabs r10, r2
    flt r11, r2, r1
    feq r12, r1, 1.5
    mov r13, -7
    itof r13, r13
    mov r14, -2.75
    ftoi r14, r14
"""
        + store_regs(15)
        + "    halt\n"
    )
    out, _ = outputs(src)
    v = out[0, 0]
    f = v.view(np.float32)
    a, b = np.float32(1.5), np.float32(-0.1)
    assert f[3] == a + b and f[4] == a - b and f[5] == a * b
    assert f[6] == np.float32(2.0 + np.float64(a) * np.float64(b))
    assert f[7] == a and f[8] == b and f[9] == -b and f[10] == -b
    assert v[11] == 1 and v[12] == 1 and f[13] == -7.0 and v[14] == -2


def test_branches_loops_and_calls():
    src = (
        """main:
    mov r1, 0
    mov r2, 0
loop:
    add r2, r2, r1
    add r1, r1, 1
    blt r1, 10, loop
    call double
    bne r2, 90, bad
    beq r2, 90, good
bad:
    mov r3, 1
good:
    bge r2, 100, bad
"""
        + store_regs(4)
        + """    halt
double:
    call plus_r2
    ret
plus_r2:
    add r2, r2, r2
    ret
"""
    )
    out, _ = outputs(src)
    assert list(out[0, 0, :4]) == [0, 10, 90, 0]


@pytest.mark.parametrize(
    "dt,value,bits",
    [
        ("i16", -2, np.int16(-2)),
        ("i8", -3, np.int8(-3)),
        ("f16", 0.1, np.float16(0.1)),
        ("f32", 0.1, np.float32(0.1)),
        ("i32", -123456, np.int32(-123456)),
    ],
)
def test_load_store_each_dtype(dt, value, bits):
    import ml_dtypes  # noqa: F401  (bf16 below)

    src = f""".data buf {dt}[4]
main:
    mov r1, {value}
    mov r2, buf
    st.{dt} [r2 + 2 * 0], r1
    ld.{dt} r3, [buf]
    st.i32 [out], r3
    halt
"""
    m, _ = run_program(OUT + src)
    stored = m.memcpy_d2h("buf")[0, 0, 0]
    assert stored == bits
    loaded = m.memcpy_d2h("out")[0, 0, 0]
    if dt in ("f16", "f32"):
        assert np.int32(loaded).view(np.float32) == np.float32(bits)
    else:
        assert loaded == bits


def test_bf16_store_rounds_to_nearest_even():
    import ml_dtypes

    src = """.data buf bf16[2]
main:
    mov r1, 1.00390625
    st.bf16 [buf], r1
    halt
"""
    m, _ = run_program(src)
    assert m.memcpy_d2h("buf")[0, 0, 0] == np.float32(1.00390625).astype(ml_dtypes.bfloat16)


def test_specials_give_position_and_clock():
    src = (
        """main:
    mov r0, %x
    mov r1, %y
    mov r2, %width
    mov r3, %height
    mov r4, %rx
    mov r5, %ry
    mov r6, %cycle
"""
        + store_regs(7)
        + "    halt\n"
    )
    out, _ = outputs(src, mesh=(3, 2))
    for y in range(2):
        for x in range(3):
            assert list(out[y, x, :6]) == [x, y, 3, 2, x, y]
            assert out[y, x, 6] == 6  # six one-cycle instructions before it


def test_local_tasks_activate_block_unblock():
    src = """main:
    mov r1, 0
    activate second
    activate first
    block second
    activate third
    ret
.task first
    add r1, r1, 1
    st.i32 [out], r1          ; first runs: 1
    unblock second
    ret
.task second
    mul r1, r1, 10
    st.i32 [out + 4], r1      ; then second: 10
    ret
.task third
    add r1, r1, 5
    st.i32 [out + 8], r1      ; third (id 2) runs after second (id 1): 15
    halt
"""
    out, _ = outputs(src)
    assert list(out[0, 0, :3]) == [1, 10, 15]


def test_data_task_runs_once_per_wavelet_with_payload_in_r0():
    # a one-way pair: PE 0 sends twice to PE 1 which runs the task twice
    src2 = """.program snd
main:
    send 1, 7
    send 1, 9
    halt
.program rcv
.data got i32[4]
main:
    mov r2, 0
    ret
.task on_data color 1
    mov r3, got
    shl r4, r2, 2
    add r3, r3, r4
    st.i32 [r3], r0
    add r2, r2, 1
    bne r2, 2, more
    halt
more:
    ret
""" + pair_layout("snd", "rcv", 1)
    m, res = run_program(src2, mesh=(2, 1))
    assert list(m.memcpy_d2h("got", 1, 0, 1, 1)[0, 0, :2]) == [7, 9]
    assert res.stats.wavelets_received[0, 1] == 2


def test_main_that_returns_without_halt_is_reported():
    from wse_emu import RunError

    with pytest.raises(RunError) as e:
        run_program("main:\n    ret\n")
    assert e.value.kind == "deadlock"
    assert "waiting for a task" in str(e.value) and "PE (0,0)" in str(e.value)


SPECIALS = [0.0, -0.0, 1.0, -3.0, 0.1, 3.0e38, 1.0e-45, 1.0e-38, np.inf, -np.inf, np.nan, 7.0]


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_fp32_divide_and_reciprocal_are_correctly_rounded(arch):
    """fdiv and frecip give NumPy's float32 division bit for bit, specials included (x/0 is
    inf, 0/0 NaN), and cost fp_div cycles each."""
    pairs = [(a, b) for a in SPECIALS for b in SPECIALS]
    a = np.array([p[0] for p in pairs], np.float32)
    b = np.array([p[1] for p in pairs], np.float32)
    n = len(pairs)
    src = f""".data a f32[{n}]
.data b f32[{n}]
.data q f32[{n}]
.data r f32[{n}]
main:
    mov r1, 0
loop:
    ld.f32 r2, [a + r1]
    ld.f32 r3, [b + r1]
    fdiv r4, r2, r3
    frecip r5, r3
    st.f32 [q + r1], r4
    st.f32 [r + r1], r5
    add r1, r1, 4
    blt r1, {4 * n}, loop
    halt
"""
    mesh, _ = run_program(src, arch=arch, inputs={"a": a[None, None], "b": b[None, None]})
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        want_q, want_r = a / b, np.float32(1) / b
    got_q, got_r = mesh.memcpy_d2h("q")[0, 0], mesh.memcpy_d2h("r")[0, 0]
    for got, want in ((got_q, want_q), (got_r, want_r)):
        nan = np.isnan(want)
        assert np.array_equal(np.isnan(got), nan)
        assert np.array_equal(got[~nan].view(np.int32), want[~nan].view(np.int32))


@pytest.mark.parametrize("div", [1, 5])
def test_fp_div_costs_its_cycles(div):
    over = {"fp_div": div}
    body = "    fdiv r2, r1, 3.0\n    frecip r3, r1"
    _, _, cycles = timed_run("", "    mov r1, 6.0", body, overrides=over)
    assert cycles == 2 * ArchProfile("wse3", over)["fp_div"]
