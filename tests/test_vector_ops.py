"""Every vector op in every dtype against NumPy, on random data with NaN, Inf and
subnormals; fp16 and bf16 bit for bit (NaNs compared as NaN)."""

import ml_dtypes
import numpy as np
import pytest
from conftest import run_program

N = 40
NP = {
    "f16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    "f32": np.float32,
    "i16": np.int16,
    "i8": np.int8,
}
FLOATS = ("f16", "bf16", "f32")
INTS = ("i16", "i8")


def data(dt, rng, positive=False):
    if dt in INTS:
        info = np.iinfo(NP[dt])
        v = rng.integers(info.min, info.max + 1, N)
        v[:4] = [info.min, info.max, 0, -1]
        return v.astype(NP[dt])
    v = rng.standard_normal(N) * 4
    tiny = {"f16": 3e-6, "bf16": 1e-39, "f32": 1e-39}[dt]  # subnormals of each type
    v[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, tiny]
    v[6:9] = [-tiny, 65000.0 if dt == "f16" else 3e38, 1e-3]
    if positive:
        v = np.abs(v)
    return v.astype(NP[dt])


def as_f64(a):
    return np.asarray(a).astype(np.float64)


def same(got, want, dt):
    got, want = np.asarray(got), np.asarray(want)
    if dt in INTS:
        return np.array_equal(got, want)
    g, w = got.astype(np.float64), want.astype(np.float64)
    nan = np.isnan(g) & np.isnan(w)
    bits_eq = got.view(np.uint16 if dt != "f32" else np.uint32) == want.view(
        np.uint16 if dt != "f32" else np.uint32
    )
    return bool(np.all(nan | bits_eq))


def program(op, dt, nsrc, scalar=None):
    srcs = ", ".join(["d0", "d1"][:nsrc])
    if scalar is not None:
        srcs = srcs + (", " if srcs else "") + "r1"
    return f"""
.data a {dt}[{N}]
.data b {dt}[{N}]
.data c {dt}[{N}]
main:
    dmem d0, a, {N}
    dmem d1, b, {N}
    dmem d2, c, {N}
    mov r1, {scalar if scalar is not None else 0}
    {op}.{dt} d2, {srcs}
    halt
"""


def run_op(op, dt, a, b=None, c=None, nsrc=2, scalar=None):
    inputs = {
        "a": a,
        "b": b if b is not None else np.zeros(N, NP[dt]),
        "c": c if c is not None else np.zeros(N, NP[dt]),
    }
    m, _ = run_program(program(op, dt, nsrc, scalar), inputs=inputs)
    return m.memcpy_d2h("c")[0, 0]


def wrap(v, dt):
    return np.asarray(v, np.int64).astype(NP[dt])


def rounded(v, dt):
    with np.errstate(all="ignore"):
        return np.asarray(v, np.float64).astype(NP[dt])


BINARY = {
    "vadd": np.add,
    "vsub": np.subtract,
    "vmul": np.multiply,
    "vmax": lambda a, b: np.where(np.isnan(a) | np.isnan(b), np.nan, np.maximum(a, b)),
    "vmin": lambda a, b: np.where(np.isnan(a) | np.isnan(b), np.nan, np.minimum(a, b)),
}


@pytest.mark.parametrize("dt", FLOATS + INTS)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary(op, dt, rng):
    a, b = data(dt, rng), data(dt, rng)[::-1].copy()
    got = run_op(op, dt, a, b)
    with np.errstate(all="ignore"):
        exact = BINARY[op](as_f64(a), as_f64(b))
    want = wrap(exact, dt) if dt in INTS else rounded(exact, dt)
    assert same(got, want, dt)


@pytest.mark.parametrize("dt", INTS)
@pytest.mark.parametrize(
    "op,fn", [("vand", np.bitwise_and), ("vor", np.bitwise_or), ("vxor", np.bitwise_xor)]
)
def test_bitwise(op, fn, dt, rng):
    a, b = data(dt, rng), data(dt, rng)[::-1].copy()
    assert same(run_op(op, dt, a, b), fn(a, b), dt)


UNARY = {"vmov": lambda a: a, "vneg": lambda a: -a, "vabs": np.abs}


@pytest.mark.parametrize("dt", FLOATS + INTS)
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op, dt, rng):
    a = data(dt, rng)
    got = run_op(op, dt, a, nsrc=1)
    exact = UNARY[op](as_f64(a))
    want = wrap(exact, dt) if dt in INTS else rounded(exact, dt)
    assert same(got, want, dt)


@pytest.mark.parametrize("dt", FLOATS)
def test_fmac_one_rounding(dt, rng):
    a, b, c = data(dt, rng), data(dt, rng)[::-1].copy(), data(dt, rng)
    got = run_op("vfmac", dt, a, b, c)
    with np.errstate(all="ignore"):
        want = rounded(as_f64(c) + as_f64(a) * as_f64(b), dt)
    assert same(got, want, dt)


@pytest.mark.parametrize("dt", FLOATS)
def test_fmacs_vector_times_scalar(dt, rng):
    a, c = data(dt, rng), data(dt, rng)
    s = 1.7
    got = run_op("vfmacs", dt, a, c=c, nsrc=1, scalar=s)
    s_rounded = float(np.asarray(np.float32(s)).astype(NP[dt]).astype(np.float64))
    with np.errstate(all="ignore"):
        want = rounded(as_f64(c) + as_f64(a) * s_rounded, dt)
    assert same(got, want, dt)


@pytest.mark.parametrize("op,fn", [("vadds", np.add), ("vmuls", np.multiply)])
@pytest.mark.parametrize("dt", FLOATS + INTS)
def test_vector_scalar(op, fn, dt, rng):
    a = data(dt, rng)
    s = 3 if dt in INTS else -2.5
    got = run_op(op, dt, a, nsrc=1, scalar=s)
    with np.errstate(all="ignore"):
        exact = fn(as_f64(a), s)
    want = wrap(exact, dt) if dt in INTS else rounded(exact, dt)
    assert same(got, want, dt)


@pytest.mark.parametrize("dt", FLOATS + INTS)
def test_fill(dt):
    value = -7 if dt in INTS else 0.1
    got = run_op("vfill", dt, np.zeros(N, NP[dt]), nsrc=0, scalar=value)
    want = np.full(N, value).astype(NP[dt]) if dt in INTS else rounded(np.float32(value), dt)
    assert same(got, np.broadcast_to(want, (N,)), dt)


def test_mixed_fmach_fp16_in_fp32_accumulate(rng):
    a, b = data("f16", rng), data("f16", rng)[::-1].copy()
    c = rng.standard_normal(N).astype(np.float32)
    src = f"""
.data a f16[{N}]
.data b f16[{N}]
.data c f32[{N}]
main:
    dmem d0, a, {N}
    dmem d1, b, {N}
    dmem d2, c, {N}
    vfmach d2, d0, d1
    mov r1, 0.5
    vfmachs d2, d0, r1
    halt
"""
    m, res = run_program(src, inputs={"a": a, "b": b, "c": c})
    with np.errstate(all="ignore"):
        step = (as_f64(c) + as_f64(a) * as_f64(b)).astype(np.float32)
        want = (as_f64(step) + as_f64(a) * 0.5).astype(np.float32)
    assert same(m.memcpy_d2h("c")[0, 0], want, "f32")
    assert res.stats.flops["f16->f32"] == 4 * N


CONVERSIONS = [(d, s) for d in FLOATS + INTS for s in FLOATS + INTS if d != s]


@pytest.mark.parametrize("dst,src", CONVERSIONS)
def test_convert(dst, src, rng):
    a = data(src, rng)
    prog = f"""
.data a {src}[{N}]
.data c {dst}[{N}]
main:
    dmem d0, a, {N}
    dmem d1, c, {N}
    vcvt.{dst}.{src} d1, d0
    halt
"""
    m, _ = run_program(prog, inputs={"a": a})
    v = as_f64(a)
    if dst in INTS:
        info = np.iinfo(NP[dst])
        with np.errstate(invalid="ignore"):
            want = np.clip(
                np.rint(np.nan_to_num(v, nan=0.0, posinf=np.inf, neginf=-np.inf)),
                info.min,
                info.max,
            ).astype(NP[dst])
    else:
        want = rounded(v, dst)
    assert same(m.memcpy_d2h("c")[0, 0], want, dst)


@pytest.mark.parametrize("dt", FLOATS + INTS)
def test_reductions(dt, rng):
    a = data(dt, rng)
    b = data(dt, rng)[::-1].copy()
    if dt in FLOATS:  # finite data; NaN is tested apart
        a = (rng.standard_normal(N) * 4).astype(NP[dt])
        b = (rng.standard_normal(N) * 4).astype(NP[dt])
    prog = f"""
.data a {dt}[{N}]
.data b {dt}[{N}]
.data out i32[3]
main:
    dmem d0, a, {N}
    dmem d1, b, {N}
    vsum.{dt} r1, d0
    vdot.{dt} r2, d0, d1
    vrmax.{dt} r3, d0
    st.i32 [out], r1
    st.i32 [out + 4], r2
    st.i32 [out + 8], r3
    halt
"""
    m, _ = run_program(prog, inputs={"a": a, "b": b})
    out = m.memcpy_d2h("out")[0, 0]
    if dt in INTS:
        assert out[0] == np.int64(a.astype(np.int64).sum()).astype(np.int32)
        assert out[1] == np.int64((a.astype(np.int64) * b.astype(np.int64)).sum()).astype(np.int32)
        assert out[2] == a.max()
        return
    s = d = np.float32(0)
    for x, y in zip(as_f64(a), as_f64(b)):
        s = np.float32(np.float64(s) + x)
        d = np.float32(np.float64(d) + x * y)
    got = out.view(np.float32)
    assert got[0] == s and got[1] == d and got[2] == np.float32(as_f64(a).max())


def test_reduction_max_propagates_nan(rng):
    a = data("f32", rng)
    prog = f"""
.data a f32[{N}]
.data out f32[1]
main:
    dmem d0, a, {N}
    vrmax.f32 r1, d0
    st.i32 [out], r1
    halt
"""
    m, _ = run_program(prog, inputs={"a": a})
    assert np.isnan(m.memcpy_d2h("out")[0, 0, 0])


def ulp_close(got, want, dt, ulps=1):
    """Nonlinear ops are computed in float64 and rounded once; NumPy's own float64
    functions may differ in the last float64 bit, so allow one ulp of the target type."""
    g, w = as_f64(got), as_f64(want)
    both_nan = np.isnan(g) & np.isnan(w)
    eq = (g == w) | both_nan
    spacing = np.abs(
        np.spacing(np.abs(w).astype(NP[dt]).astype(np.float64) if dt != "bf16" else np.abs(w))
    )
    if dt == "bf16":
        spacing = np.abs(w) * 2.0**-7 + 1e-40
    with np.errstate(invalid="ignore"):
        close = np.abs(g - w) <= ulps * spacing
    return bool(np.all(eq | close))


NONLINEAR = {
    "vexp": np.exp,
    "vtanh": np.tanh,
    "vsigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "vgelu": lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2))),
    "vrelu": lambda x: np.where(np.isnan(x), x, np.maximum(x, 0.0)),
    "vrecip": lambda x: 1 / x,
    "vlog": np.log,
    "vrsqrt": lambda x: 1 / np.sqrt(x),
}


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", sorted(NONLINEAR))
def test_nonlinear(op, dt, rng):
    a = data(dt, rng, positive=op in ("vlog", "vrsqrt"))
    got = run_op(op, dt, a, nsrc=1)
    with np.errstate(all="ignore"):
        want = rounded(NONLINEAR[op](as_f64(a)), dt)
    assert ulp_close(got, want, dt)
