"""Every instruction of the table is exercised by some test or program; the README's
example program runs; fp16 arithmetic holds for arbitrary bit patterns (Hypothesis)."""

import re
from pathlib import Path

import numpy as np
from conftest import pair_layout, run_program
from hypothesis import given, settings
from hypothesis import strategies as st

from wse_emu import isa

ROOT = Path(__file__).resolve().parents[1]


def test_every_instruction_is_exercised():
    text = "".join(
        p.read_text()
        for p in sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "programs").glob("*.wsa"))
    )
    missing = [
        row.mnemonic
        for row in isa.table()
        if not re.search(rf"(?<![\w.]){row.mnemonic}(\.|\s|\"|')", text)
    ]
    assert not missing, f"instructions without a test: {missing}"


def test_readme_example_program_runs():
    readme = (ROOT / "README.md").read_text()
    src = re.findall(r"```\n(\.mesh .*?)```", readme, re.S)[0]
    h = 2
    data = np.arange(h * 32, dtype=np.float32).reshape(h, 1, 32)
    from wse_emu import Mesh, assemble

    m = Mesh(4, h)
    m.load(assemble(src, 4, h))  # the example declares 8x4; any mesh the layout fits works
    m.memcpy_h2d("src", data, 0, 0, 1, h)
    m.launch()
    m.run()
    # each leaf of a row summed the 32 values its row's root streamed
    sums = m.memcpy_d2h("sum", 1, 0, 3, h)[..., 0]
    assert np.array_equal(sums, np.repeat(data.sum(axis=2), 3, axis=1))


def test_nop_dlen_and_sendx_index_value_wavelets():
    src = """.program snd
.data vals f16[4]
main:
    mov r1, 0
    mov r5, vals
next:
    ld.i16 r2, [r5]
    sendx 2, r1, r2          ; index in the high half, fp16 bits in the low half
    add r1, r1, 1
    add r5, r5, 2
    blt r1, 4, next
    halt
.program rcv
.data out f16[8]
.data pad f16[8]
main:
    mov r4, 0
    dmem d0, pad, 8
    dlen d0, 3                ; only the first 3 elements
    vfill.f16 d0, 2.5
    nop
    ret
.task got color 2
    shr r1, r0, 16            ; index
    shl r1, r1, 1
    st.i16 [r1 + out], r0     ; value bits to out[index]
    add r4, r4, 1
    blt r4, 4, back
    halt
back:
    ret
""" + pair_layout("snd", "rcv", 2)
    vals = np.array([1.5, -2.0, 0.125, 65504.0], np.float16)
    from wse_emu import Mesh, assemble

    m = Mesh(2, 1)
    m.load(assemble(src, 2, 1))
    m.memcpy_h2d("vals", vals, 0, 0, 1, 1)
    m.launch()
    m.run()
    assert np.array_equal(m.memcpy_d2h("out", 1, 0, 1, 1)[0, 0, :4], vals)
    assert list(m.memcpy_d2h("pad", 1, 0, 1, 1)[0, 0]) == [2.5] * 3 + [0.0] * 5


F16_BITS = st.integers(0, 0xFFFF).map(lambda b: np.uint16(b).view(np.float16))


@settings(max_examples=30, deadline=None)
@given(st.lists(F16_BITS, min_size=1, max_size=24), st.sampled_from(["vadd", "vmul", "vsub"]))
def test_fp16_arithmetic_on_arbitrary_bit_patterns(values, op):
    a = np.array(values, np.float16)
    b = a[::-1].copy()
    n = len(a)
    src = f""".data a f16[{n}]
.data b f16[{n}]
main:
    dmem d0, a, {n}
    dmem d1, b, {n}
    {op}.f16 d0, d0, d1
    halt
"""
    m, _ = run_program(src, inputs={"a": a, "b": b})
    with np.errstate(all="ignore"):
        want = {"vadd": a + b, "vmul": a * b, "vsub": a - b}[op]
    got = m.memcpy_d2h("a")[0, 0]
    both_nan = np.isnan(got) & np.isnan(want)
    assert np.all(both_nan | (got.view(np.uint16) == want.view(np.uint16)))
