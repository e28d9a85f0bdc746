"""Switch positions: a broadcast whose root moves along the row (as SUMMA's does), route
faults found at send time, and the scalar/vector helpers the sparse kernel relies on."""

import numpy as np
import pytest
from conftest import pair_layout, run_program

from wse_emu import RunError

# Every PE in turn is the root of a row broadcast on color 0. Position 0: the root is to
# the west (receive from west, pass east and keep a copy); 1: this PE is the root; 2: the
# root is to the east. Only the root moves its own switch, before and after sending.
MOVING_ROOT = """
.program row
.data got f32[WIDTH]
main:
    mov r1, 0                 ; k: the root of this step
    mov r9, %x
step:
    bne r1, r9, listen
    switch 0, 1
    itof r3, r9
    fmul r3, r3, 10.0
    send 0, r3                ; the root's value: 10 * x
    switch 0, 2
    jmp next
listen:
    recv r4, 0
    shl r5, r1, 2
    st.i32 [r5 + got], r4
next:
    add r1, r1, 1
    blt r1, WIDTH, step
    halt
.layout
.place row at 0, 0 size WIDTH, 1
.route 0 pos 0 at 1, 0 size WIDTH - 2, 1 rx west tx east, ramp
.route 0 pos 0 at WIDTH - 1, 0 size 1, 1 rx west tx ramp
.route 0 pos 1 at 0, 0 size 1, 1 rx ramp tx east
.route 0 pos 1 at 1, 0 size WIDTH - 2, 1 rx ramp tx east, west
.route 0 pos 1 at WIDTH - 1, 0 size 1, 1 rx ramp tx west
.route 0 pos 2 at 0, 0 size 1, 1 rx east tx ramp
.route 0 pos 2 at 1, 0 size WIDTH - 2, 1 rx east tx west, ramp
"""


@pytest.mark.parametrize("w", [2, 3, 8, 20])
def test_broadcast_root_moves_with_switch_positions(w):
    m, res = run_program(MOVING_ROOT, mesh=(w, 1))
    got = m.memcpy_d2h("got")[0]
    want = np.tile(np.arange(w, dtype=np.float32) * 10, (w, 1))
    np.fill_diagonal(want, 0)  # a root does not receive its own value
    assert np.array_equal(got, want)
    assert res.stats.wavelets_sent.sum() == w  # one multicast per root
    assert res.stats.hops.sum() == w * (w - 1)


def test_switch_to_a_route_that_leaves_the_mesh_faults_at_send():
    src = """main:
    switch 1, 1
    send 1, 5
    halt
.layout
.place main at 0, 0 size 1, 1
.route 1 pos 1 at 0, 0 size 1, 1 rx ramp tx west
"""
    with pytest.raises(RunError) as e:
        run_program(src)
    text = str(e.value)
    assert "PE (0,0) pc 1" in text and "send 1, 5" in text
    assert "the tree leaves the mesh (color 1): PE (0,0) transmits west off the edge" in text


def test_bad_switch_position_faults():
    with pytest.raises(RunError, match=r"switch position outside 0-3 \(position 4\)"):
        run_program("main:\n    mov r1, 4\n    switch 0, r1\n    halt\n")


def test_route_position_out_of_range_is_an_assembler_error():
    from wse_emu import AsmError

    src = "main:\n  halt\n.layout\n.place main at 0, 0 size 1, 1\n"
    src += ".route 0 pos 4 at 0, 0 size 1, 1 rx ramp tx ramp\n"
    with pytest.raises(AsmError, match="switch position 4 out of range 0-3"):
        run_program(src)


def test_h2f_and_f2h_convert_between_fp16_bits_and_fp32():
    src = """.data out i32[4]
main:
    mov r1, 0x3e00            ; fp16 1.5
    h2f r2, r1
    mov r3, 0.1
    f2h r4, r3
    mov r5, 0x12343e00        ; the high half is ignored
    h2f r6, r5
    st.i32 [out], r2
    st.i32 [out + 4], r4
    st.i32 [out + 8], r6
    halt
"""
    m, _ = run_program(src)
    out = m.memcpy_d2h("out")[0, 0]
    assert out[0:1].view(np.float32)[0] == 1.5
    assert out[1] == np.float16(np.float32(0.1)).view(np.uint16)
    assert out[2:3].view(np.float32)[0] == np.float16(1.5)


def test_vmov_i32_streams_raw_words_even_nan_patterns():
    words = np.array([0x7FFF0001, -1, 0x7F800001, 0, 12345, -0x80000000], np.int32)
    n = len(words)
    src = f""".program snd
.data w i32[{n}]
main:
    dmem d0, w, {n}
    dfout d1, 3, {n}
    vmov.i32 d1, d0
    halt
.program rcv
.data w i32[{n}]
main:
    dfin d0, 3, {n}
    dmem d1, w, {n}
    vmov.i32 d1, d0
    halt
""" + pair_layout("snd", "rcv", 3)
    from wse_emu import Mesh, assemble

    m = Mesh(2, 1)
    m.load(assemble(src, 2, 1))
    m.memcpy_h2d("w", words, 0, 0, 1, 1)
    m.launch()
    m.run()
    assert np.array_equal(m.memcpy_d2h("w", 1, 0, 1, 1)[0, 0], words)
