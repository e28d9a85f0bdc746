"""fp16 / bf16 encoding against NumPy's float16 and ml_dtypes' bfloat16, bit for bit."""

import ml_dtypes
import numpy as np
from numba import njit

from wse_emu.engine.fp import bf16_bits, decode_tables, f16_bits


@njit(cache=True)
def _encode_all(xs, bf):
    out = np.empty(xs.size, np.int64)
    for i in range(xs.size):
        out[i] = bf16_bits(xs[i]) if bf else f16_bits(xs[i])
    return out & 0xFFFF


def _samples():
    rng = np.random.default_rng(7)
    with np.errstate(all="ignore"):
        f32 = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
        f32 = f32.astype(np.float64)
        f64 = rng.standard_normal(200_000) * 10.0 ** rng.integers(-50, 45, 200_000)
    h = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float64)
    with np.errstate(invalid="ignore"):
        mids = (h[:-1] + h[1:]) / 2  # every f16 rounding midpoint (ties to even)
    specials = np.array(
        [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            65504.0,
            65520.0,
            65519.99,
            6e-8,
            2.0**-25,
            2.0**-24,
            3 * 2.0**-26,
            1e-300,
            -1e-300,
        ]
    )
    xs = np.concatenate([f32, f64, mids[np.isfinite(mids)], specials])
    return xs[~np.isnan(xs)]


def test_f16_matches_numpy_bit_for_bit():
    xs = _samples()
    with np.errstate(over="ignore"):
        ref = xs.astype(np.float16).view(np.uint16)
    assert np.array_equal(_encode_all(xs, False), ref)


def test_bf16_matches_ml_dtypes_bit_for_bit():
    xs = _samples()
    with np.errstate(over="ignore"):
        ref = xs.astype(ml_dtypes.bfloat16).view(np.uint16)
    assert np.array_equal(_encode_all(xs, True), ref)


def test_nan_keeps_sign_and_is_quiet():
    got = _encode_all(np.array([np.nan, -np.nan]), False)
    assert list(got) == [0x7E00, 0xFE00]
    got = _encode_all(np.array([np.nan, -np.nan]), True)
    assert list(got) == [0x7FC0, 0xFFC0]


def test_decode_tables_are_exact():
    f16, bf16 = decode_tables()
    bits = np.arange(65536, dtype=np.uint16)
    ref16 = bits.view(np.float16).astype(np.float32)
    ok = (f16 == ref16) | (np.isnan(f16) & np.isnan(ref16))
    assert ok.all()
    refb = bits.view(ml_dtypes.bfloat16).astype(np.float32)
    ok = (bf16 == refb) | (np.isnan(bf16) & np.isnan(refb))
    assert ok.all()
