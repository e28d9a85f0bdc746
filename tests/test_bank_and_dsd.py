"""The SRAM bank model, multi-dimensional memory DSDs (ddim), the DSD offset increment
(dinc), and their errors. Expected cycles come from a step-by-step reference of the cost
table's [bank] rule written here (the engine sums residue classes instead); results from
NumPy."""

import itertools
import math

import numpy as np
import pytest
from conftest import pair_layout, run_program, timed_run
from hypothesis import given, settings
from hypothesis import strategies as st

from wse_emu import AsmError, Mesh, RunError, assemble
from wse_emu.arch import ArchProfile

SIZE = {"f16": 2, "f32": 4, "i16": 2}


def stride_width(prof, stride, size, width):
    """The [bank] stride rule: a step of one operand in fewer banks than bank groups reads
    one element per bank per cycle; element strides +-1 mod 8 (not 1) cap the width."""
    if stride in (0, 1):
        return width
    banks = prof["banks"]
    if stride % banks in (1, banks - 1):
        width = min(width, prof["stride_pm1_width"])
    touched = {(j * stride * size // prof["bank_bytes"]) % banks for j in range(width)}
    if len(touched) < prof["bank_groups"]:
        width = min(width, len(touched))
    return width


def ref_cycles(prof, width, shape, operands, cpe=1):
    """Start-up plus, for every SIMD step of every innermost row, max(cpe, SRAM cycles).
    operands: (byte base, element size, read?, element strides innermost first)."""
    for _, size, _, strides in operands:
        width = stride_width(prof, strides[0], size, width)
    bb, groups, ports = prof["bank_bytes"], prof["bank_groups"], prof["read_ports"]
    total = 0
    for outer in itertools.product(*(range(e) for e in shape[1:])):
        for j in range(math.ceil(shape[0] / width)):
            idx = (j * width, *outer)
            reads = [
                (base + sum(i * s for i, s in zip(idx, strides)) * size, size)
                for base, size, read, strides in operands
                if read
            ]
            cost = max(1, math.ceil(len(reads) / ports))
            for g in range(groups):
                hits = sum(
                    (g - (a // bb) % groups) % groups < min(groups, max(1, size // bb))
                    for a, size in reads
                )
                cost = max(cost, hits)
            total += max(cpe, cost)
    return prof["vector_startup"] + total + prof["vector_drain"]  # one op alone (pipeline.py)


def alone(prof):
    """Start-up and drain of one vector op timed alone (pipeline.py)."""
    return prof["vector_startup"] + prof["vector_drain"]


def timed(body, data, arch="wse3", inputs=None, check=True):
    """Run body, timing what follows its TIMED mark; returns (mesh, cycles, result)."""
    setup, _, rest = body.partition("TIMED")
    m, res, cycles = timed_run(data, setup, "    " + rest, arch, inputs=inputs, check=check)
    return m, cycles, res


def two_source_op(op, dt, n, offset_bytes, arch, stride=1):
    """Cycles of op.dt d0, d0, d1 with d0 = a (at byte 0) and d1 = b, which starts
    offset_bytes after a's end."""
    size = SIZE[dt]
    pad = f".data pad {dt}[{offset_bytes // size}]\n" if offset_bytes else ""
    data = f".data a {dt}[{n * stride}]\n{pad}.data b {dt}[{n * stride}]"
    body = f"""    dmem d0, a, {n}, {stride}
    dmem d1, b, {n}, {stride}
    TIMED{op}.{dt} d0, d0, d1"""
    return timed(body, data, arch)[1]


def load_pair(src, inputs):
    """Run a two-PE program; inputs go to the PE at (0, 0)."""
    m = Mesh(2, 1)
    m.load(assemble(src, 2, 1, m.arch))
    for sym, arr in inputs.items():
        m.memcpy_h2d(sym, arr, 0, 0, 1, 1)
    m.launch()
    m.run()
    return m


# ---------------------------------------------------------------- bank rules


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("op,cls", [("vmul", "fp32_mul"), ("vadd", "fp32_basic")])
def test_two_fp32_sources_aligned_alike_run_at_half_speed(arch, op, cls):
    prof = ArchProfile(arch)
    n = 64
    aligned = two_source_op(op, "f32", n, 0, arch)  # b = a + 256 bytes: same bank group
    apart = two_source_op(op, "f32", n, 4, arch)  # one 32-bit word further
    for cycles, base_b in ((aligned, n * 4), (apart, n * 4 + 4)):
        ops = [(0, 4, True, (1,)), (base_b, 4, True, (1,))]
        assert cycles == ref_cycles(prof, prof[cls], (n,), ops)
    steps = math.ceil(n / prof[cls])
    assert apart == alone(prof) + steps
    assert aligned == alone(prof) + 2 * steps  # the conflict: twice the steps


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_fp16_simd_keeps_its_width_when_sources_do_not_conflict(arch):
    prof = ArchProfile(arch)
    n = 64
    apart = two_source_op("vadd", "f16", n, 4, arch)  # b two 16-bit banks further
    assert apart == alone(prof) + math.ceil(n / prof["fp16_basic"])
    aligned = two_source_op("vadd", "f16", n, 0, arch)
    ops = [(0, 2, True, (1,)), (128, 2, True, (1,))]
    assert aligned == ref_cycles(prof, prof["fp16_basic"], (n,), ops)
    assert aligned == alone(prof) + 2 * math.ceil(n / prof["fp16_basic"])


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("dt,stride", [("f16", 8), ("f16", 16), ("f32", 4), ("f32", 8), ("f16", 4)])
def test_a_stride_that_keeps_every_element_in_one_bank_is_slow(arch, dt, stride):
    prof = ArchProfile(arch)
    n = 32
    cls = "fp16_basic" if dt == "f16" else "fp32_basic"
    src = f".data a {dt}[{n * stride}]"
    body = f"    dmem d0, a, {n}, {stride}\n    TIMEDvadd.{dt} d0, d0, d0"
    _, cycles, _ = timed(body, src, arch)
    assert cycles == ref_cycles(prof, prof[cls], (n,), [(0, SIZE[dt], True, (stride,))])
    _, unit, _ = timed(f"    dmem d0, a, {n}\n    TIMEDvadd.{dt} d0, d0, d0", src, arch)
    one_bank = stride * SIZE[dt] % (prof["banks"] * prof["bank_bytes"]) == 0
    if one_bank:  # one element per cycle: the facts' "stride mod 8 = 0 gives width 1"
        assert cycles == alone(prof) + n
    assert cycles > unit


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("offset", [0, 4])
def test_fmac_destination_read_back_takes_a_port_and_can_collide(arch, offset):
    prof = ArchProfile(arch)
    n = 48
    pad = ".data pad f32[1]\n" if offset else ""
    data = f".data c f32[{n}]\n{pad}.data a f32[{n}]"
    base_a = n * 4 + offset
    body = f"    dmem d0, c, {n}\n    dmem d1, a, {n}\n    TIMEDvfmacs.f32 d0, d1, 1.5"
    _, cycles, _ = timed(body, data, arch)
    ops = [(0, 4, True, (1,)), (base_a, 4, True, (1,))]
    assert cycles == ref_cycles(prof, prof["fp32_mul"], (n,), ops)
    assert cycles == alone(prof) + n * (2 if offset == 0 else 1)
    # three vector reads (C += A * B) need two cycles a step even without a conflict
    data3 = data + f"\n.data pad2 f32[1]\n.data b f32[{n}]"
    body3 = f"    dmem d0, c, {n}\n    dmem d1, a, {n}\n    dmem d2, b, {n}\n"
    body3 += "    TIMEDvfmac.f32 d0, d1, d2"
    _, cycles3, _ = timed(body3, data3, arch)
    base_b = base_a + n * 4 + 4
    ops3 = ops + [(base_b, 4, True, (1,))]
    assert cycles3 == ref_cycles(prof, prof["fp32_mul"], (n,), ops3)
    assert cycles3 >= alone(prof) + 2 * n


def test_fabric_operands_take_no_bank_slot_but_memory_ones_do():
    prof = ArchProfile("wse3")
    n = 16
    src = f""".program snd
.data a f32[{n}]
.data b f32[{n}]
.data pad f32[1]
.data c f32[{n}]
.data t i32[4]
main:
    dmem d0, a, {n}
    dmem d1, b, {n}
    dmem d2, c, {n}
    dfout d3, 2, {n}
    mov r1, %cycle
    vadd.f32 d3, d0, d1       ; a and b in the same bank group: 2 cycles an element
    mov r2, %cycle
    vadd.f32 d3, d0, d2       ; c one word off: 1 cycle an element
    mov r3, %cycle
    st.i32 [t], r1
    st.i32 [t + 4], r2
    st.i32 [t + 8], r3
    halt
.program rcv
.data out f32[{2 * n}]
main:
    dmem d0, out, {2 * n}
    dfin d1, 2, {2 * n}
    vmov.f32 d0, d1
    halt
""" + pair_layout("snd", "rcv", 2)
    a = np.arange(n, dtype=np.float32)
    m = load_pair(src, {"a": a, "b": a, "c": 2 * a})
    t = m.memcpy_d2h("t", 0, 0, 1, 1)[0, 0]
    assert t[1] - t[0] - 1 == alone(prof) + 2 * n
    assert t[2] - t[1] - 1 == alone(prof) + n
    out = m.memcpy_d2h("out", 1, 0, 1, 1)[0, 0]
    assert np.array_equal(out, np.concatenate([2 * a, 3 * a]))


# ---------------------------------------------------------------- multi-dimensional DSDs

N_BUF = 2048  # elements of each buffer the generated DSDs walk (3 x 8 KB of f32)


@st.composite
def layouts(draw):
    """(base element, extents innermost first, element strides): a dense box (no element
    twice) in any order and direction, inside N_BUF elements, for destinations."""
    nd = draw(st.integers(1, 4))
    ext = [draw(st.integers(1, 5)) for _ in range(nd)]
    order = draw(st.permutations(range(nd)))
    strides = [0] * nd
    step = draw(st.integers(1, 3))
    for k in order:
        strides[k] = step * draw(st.sampled_from([1, -1]))
        step *= ext[k]
    return fit_base(draw, ext, strides), ext, strides


def indices(layout):
    """Element indices of a DSD in its access order (row-major, dimension 0 innermost)."""
    base, ext, strides = layout
    grids = np.indices(ext[::-1]).reshape(len(ext), -1)  # outermost first
    return base + sum(g * s for g, s in zip(grids, strides[::-1]))


def setup(d, sym, size, layout):
    base, ext, strides = layout
    lines = [f"    dmem d{d}, {sym} + {base * size}, {ext[0]}, {strides[0]}"]
    lines += [
        f"    ddim d{d}, {k}, {e}, {s}" for k, (e, s) in enumerate(zip(ext[1:], strides[1:]), 1)
    ]
    return "\n".join(lines)


OPS = {  # mnemonic: (class, sources, NumPy of (dst before, a, b))
    "vneg.f32 d0, d1 ;": ("vun", 1, lambda c, a, b: -a),
    "vfill.f32 d0, 2.5 ;": ("vfill", 0, lambda c, a, b: np.full_like(c, 2.5)),
    "vadd.f32": ("vbin", 2, lambda c, a, b: a + b),
    "vmuls.f32 d0, d1, 3 ;": ("vbins", 1, lambda c, a, b: a * 3),
    "vfmac.f32": ("vfma", 2, lambda c, a, b: c + a * b),
    "vfmacs.f32 d0, d1, 1.5 ;": ("vfmas", 1, lambda c, a, b: c + a * np.float32(1.5)),
}


def fit_base(draw, ext, strides):
    lo = sum(min(0, (e - 1) * s) for e, s in zip(ext, strides))
    hi = sum(max(0, (e - 1) * s) for e, s in zip(ext, strides))
    return draw(st.integers(-lo, N_BUF - 1 - hi))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(OPS)), layouts(), st.data())
def test_multi_dim_elementwise_ops_match_numpy_and_the_bank_rule(op, dl, data):
    """Destination: any dense layout; source a: the same extents, any strides; source b: the
    same, or 1-D (its elements then follow the op's row-major order)."""
    cls, nsrc, ref = OPS[op]
    ext = dl[1]
    n = int(np.prod(ext))
    a_str = [data.draw(st.integers(-9, 9)) for _ in ext]
    al = (fit_base(data.draw, ext, a_str), ext, a_str)
    if data.draw(st.booleans()):
        b_str = [data.draw(st.integers(-9, 9)) for _ in ext]
        bl = (fit_base(data.draw, ext, b_str), ext, b_str)
    else:
        reach = min(4, (N_BUF - 1) // max(n - 1, 1))
        s = data.draw(st.integers(-reach, reach))
        bl = (fit_base(data.draw, [n], [s]), [n], [s])
    rng = np.random.default_rng(0)
    bufs = {s: rng.integers(-8, 8, N_BUF).astype(np.float32) for s in "cab"}
    text = op if op.endswith(";") else f"{op} d0, d1, d2"
    body = "\n".join([setup(0, "c", 4, dl), setup(1, "a", 4, al), setup(2, "b", 4, bl)])
    decl = "\n".join(f".data {s} f32[{N_BUF}]" for s in "cab")
    m, cycles, _ = timed(body + "\n    TIMED" + text, decl, inputs=bufs)
    want = bufs["c"].copy()
    ci, ai, bi = indices(dl), indices(al), indices(bl)
    want[ci] = ref(bufs["c"][ci], bufs["a"][ai], bufs["b"][bi])
    assert np.array_equal(m.memcpy_d2h("c")[0, 0], want)
    prof = ArchProfile("wse3")
    width = prof["fp32_mul" if op.startswith(("vmul", "vfma")) else "fp32_basic"]
    operands = [(dl[0] * 4, 4, cls in ("vfma", "vfmas"), dl[2])]
    if nsrc >= 1:
        operands.append((N_BUF * 4 + al[0] * 4, 4, True, al[2]))
    if nsrc == 2:
        flat = [bl[2][0] * int(np.prod(ext[:k])) for k in range(len(ext))]
        operands.append((2 * N_BUF * 4 + bl[0] * 4, 4, True, bl[2] if bl[1] == ext else flat))
    assert cycles == ref_cycles(prof, width, ext, operands)


def test_multi_dim_convert_reduce_and_fabric_streams_match_numpy():
    """vcvt, vsum, vdot over 3-D DSDs; a 2-D DSD streamed out to the fabric and a 4-D one
    filled from it."""
    src = """.program snd
.data a f32[64]
.data h f16[64]
.data r f32[2]
main:
    dmem d0, h + 2, 4, 2        ; h[1 + 2 i + 10 j + 20 k]: 4 x 2 x 2 elements
    ddim d0, 1, 2, 10
    ddim d0, 2, 2, 20
    dmem d1, a + 252, 4, -1     ; a[63 - i - 8 j - 16 k]: backwards
    ddim d1, 1, 2, -8
    ddim d1, 2, 2, -16
    vcvt.f16.f32 d0, d1
    vsum.f32 r1, d1
    dmem d2, a, 4, 3            ; a[3 i + 17 j + 5 k]
    ddim d2, 1, 2, 17
    ddim d2, 2, 2, 5
    vdot.f32 r2, d1, d2
    st.f32 [r], r1
    st.f32 [r + 4], r2
    dmem d3, a, 8, 2            ; a[2 i + 20 j]: 8 x 3
    ddim d3, 1, 3, 20
    dfout d4, 2, 24
    vmov.f32 d4, d3
    halt
.program rcv
.data out f32[128]
main:
    dmem d0, out + 4, 2, 1      ; out[1 + i + 3 j + 7 k + 40 l]: 2 x 2 x 3 x 2
    ddim d0, 1, 2, 3
    ddim d0, 2, 3, 7
    ddim d0, 3, 2, 40
    dfin d1, 2, 24
    vmov.f32 d0, d1
    halt
""" + pair_layout("snd", "rcv", 2)
    a = np.random.default_rng(3).integers(-8, 8, 64).astype(np.float32)
    m = load_pair(src, {"a": a})
    d1 = indices((63, [4, 2, 2], [-1, -8, -16]))
    d0 = indices((1, [4, 2, 2], [2, 10, 20]))
    d2 = indices((0, [4, 2, 2], [3, 17, 5]))
    h = m.memcpy_d2h("h", 0, 0, 1, 1)[0, 0]
    assert np.array_equal(h[d0], a[d1].astype(np.float16))
    r = m.memcpy_d2h("r", 0, 0, 1, 1)[0, 0]
    assert r[0] == a[d1].sum() and r[1] == np.dot(a[d1], a[d2])
    out = m.memcpy_d2h("out", 1, 0, 1, 1)[0, 0]
    want = np.zeros(128, np.float32)
    want[indices((1, [2, 2, 3, 2], [1, 3, 7, 40]))] = a[indices((0, [8, 3], [2, 20]))]
    assert np.array_equal(out, want)


def test_multi_dim_op_pays_one_start_up_and_dlen_sets_the_innermost_extent():
    prof = ArchProfile("wse3")
    src = ".data a f16[256]\n.data b f16[2]"
    body = "    dmem d0, a, 16\n    ddim d0, 1, 8, 16\n    TIMEDvneg.f16 d0, d0"
    _, cycles, _ = timed(body, src)
    assert cycles == alone(prof) + 8 * math.ceil(16 / prof["fp16_basic"])
    body = "    dmem d0, a, 16\n    ddim d0, 1, 8, 32\n    dlen d0, 4\n    TIMEDvfill.f16 d0, 1"
    m, _, _ = timed(body, src)
    got = m.memcpy_d2h("a")[0, 0]
    want = np.zeros(256, np.float16)
    want[indices((0, [4, 8], [1, 32]))] = 1
    assert np.array_equal(got, want)


def test_dinc_moves_the_base_in_place():
    prof = ArchProfile("wse3")
    src = """.data a f32[32]
.data t i32[2]
main:
    dmem d0, a, 4
    mov r1, 0
row:
    vadds.f32 d0, d0, 1
    dinc.f32 d0, 4               ; next row of 4
    add r1, r1, 1
    blt r1, 8, row
    dinc.i16 d0, -2              ; back one f32 (two i16)
    mov r2, %cycle
    dinc.f32 d0, r1              ; by a register
    mov r3, %cycle
    st.i32 [t], r2
    st.i32 [t + 4], r3
    dinc.f32 d0, -12
    vfill.f32 d0, 7
    halt
"""
    m, _ = run_program(src)
    got = m.memcpy_d2h("a")[0, 0]
    want = np.ones(32, np.float32)
    want[27:31] = 7
    assert np.array_equal(got, want)
    t = m.memcpy_d2h("t")[0, 0]
    assert t[1] - t[0] - 1 == prof["scalar"]  # a DSD register write, as the cost table says


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "setup_text,where",
    [
        ("dmem d3, a, 4\n    ddim d3, 1, 3, -8", "-"),  # an outer dimension below 0
        ("dmem d3, a + 32, 4\n    ddim d3, 2, 2, 12300", "49244"),  # past the end of SRAM
        ("dmem d3, a + 12, 4, -2\n    ddim d3, 1, 2, 1", "-"),  # innermost, backwards
    ],
)
def test_a_dsd_running_past_sram_in_any_dimension_is_a_located_fault(setup_text, where):
    src = f".data a f32[16]\nmain:\n    {setup_text}\n    vfill.f32 d3, 1\n    halt\n"
    _, res = run_program(src, check=False)
    assert res.status == "fault"
    assert "a memory DSD runs past SRAM" in res.report and "DSD register d3" in res.report
    assert "PE (0,0) pc" in res.report and "vfill.f32 d3, 1" in res.report
    assert f"byte address {where}" in res.report


@pytest.mark.parametrize(
    "line,message",
    [
        ("ddim d0, 4, 2, 1", "outside 1-3"),
        ("ddim d0, 0, 2, 1", "outside 1-3"),
        ("ddim d0, 1, 70000, 1", "outside 0-65535"),
        ("dmem d0, a, -1", "outside 0-65535"),
    ],
)
def test_bad_dimension_or_extent_is_an_assembly_error(line, message):
    src = f".data a f32[16]\nmain:\n    dmem d0, a, 4\n    {line}\n    halt\n"
    with pytest.raises(AsmError, match=message) as e:
        assemble(src, 1, 1)
    assert ":4:" in str(e.value) and "^" in str(e.value)


@pytest.mark.parametrize(
    "lines,message",
    [
        ("mov r1, 70000\n    ddim d0, 1, r1, 1", "length 70000"),
        ("mov r1, 20000\n    ddim d0, 1, r1, 1", "length 80000"),  # 4 x 20000 elements
        ("ddim d5, 1, 2, 1", "used before it was set up"),
        ("dfin d6, 1, 4\n    ddim d6, 1, 2, 1", "bad DSD kind"),
        ("dinc.f32 d7, 1", "used before it was set up"),
    ],
)
def test_bad_dsd_set_up_from_registers_is_a_located_fault(lines, message):
    src = f".data a f32[16]\nmain:\n    dmem d0, a, 4\n    {lines}\n    halt\n"
    m = Mesh(1, 1)
    with pytest.raises(RunError, match=message) as e:
        m.load(assemble(src, 1, 1, m.arch))
        m.launch()
        m.run()
    assert "PE (0,0) pc" in str(e.value)


def test_write_watch_and_dsd_display_know_dimensions():
    from wse_emu.debug.session import Session

    src = """.data a f32[64]
main:
    dmem d0, a + 4, 4, 1
    ddim d0, 1, 3, 16          ; rows a[1:5], a[17:21], a[33:37]
    vfill.f32 d0, 2
    halt
"""
    m = Mesh(1, 1)
    m.load(assemble(src, 1, 1, m.arch))
    m.launch()
    s = Session(m)
    s.set_focus(0, 0)
    s.watch_symbol("a[36]")  # written only by the last row
    out = s.cont()
    assert any("a[36]" in line for line in out)
    dsds = s.dsds()
    assert any("extents 3 x 4  strides 16, 1" in line for line in dsds), dsds


def test_every_bank_number_names_its_source_per_arch():
    from wse_emu import isa
    from wse_emu.arch import ARCHS

    for key, row in isa.costs()["bank"].items():
        assert row["source"].startswith(("facts:", "assumed:", "calibrated:")), key
        assert set(ARCHS) <= set(row), key


def test_a_loop_of_like_ops_is_costed_from_each_ones_operands():
    """The engine remembers the last op's cost while its operands stay alike: moving a source
    by one word each turn must still alternate conflict and no conflict."""
    prof = ArchProfile("wse2")
    n = 16
    src = f""".data a f32[{n}]
.data b f32[{n + 4}]
.data t i32[5]
main:
    dmem d0, a, {n}
    dmem d1, b, {n}
    mov r1, 0
turn:
    mov r2, %cycle
    shl r3, r1, 2
    st.i32 [r3 + t], r2
    vmul.f32 d0, d0, d1
    vmul.f32 d0, d0, d1          ; a second, like op at another pc
    dinc.f32 d1, 1
    add r1, r1, 1
    blt r1, 4, turn
    mov r2, %cycle
    st.i32 [t + 16], r2
    halt
"""
    m, _ = run_program(src, arch="wse2")
    t = m.memcpy_d2h("t")[0, 0]
    fixed = prof["vector_startup"] + prof["vector_drain"]
    for turn in range(4):
        ops = [(0, 4, True, (1,)), (n * 4 + 4 * turn, 4, True, (1,))]
        steps = ref_cycles(prof, prof["fp32_mul"], (n,), ops) - fixed
        # mov (the %cycle read), shl, st, then the two vmuls back to back (the second a gap
        # after the first); dinc, add, blt hide under them; the next %cycle read waits
        expect = 3 * prof["scalar"] + prof["vector_startup"] + steps + prof["vector_gap"] + steps
        assert t[turn + 1] - t[turn] == expect + prof["vector_drain"]
    assert t[1] - t[0] != t[2] - t[1]
