"""IEEE binary16 and bfloat16 rounding for Numba, which has no float16 on the CPU.
Values are stored as uint16 bit patterns, decoded through 65,536-entry float32 tables and
encoded here with round-to-nearest-even from float64 in a single rounding."""

import math

import numpy as np

from .jit import entry, kernel


def decode_tables():
    """(f16 table, bf16 table): float32[65536] values of every bit pattern."""
    bits = np.arange(65536, dtype=np.uint32)
    f16 = bits.astype(np.uint16).view(np.float16).astype(np.float32)
    bf16 = (bits << 16).view(np.float32).copy()
    return f16, bf16


@kernel
def encode_small_float(x, exp_bits, man_bits):
    """Bits of x rounded to nearest even in a float with exp_bits/man_bits. NaN keeps its sign
    and becomes the canonical quiet NaN."""
    bias = (1 << (exp_bits - 1)) - 1
    exp_all = (1 << exp_bits) - 1
    sign = 0
    if math.copysign(1.0, x) < 0.0:
        sign = 1 << (exp_bits + man_bits)
        x = -x
    if x != x:
        return sign | (exp_all << man_bits) | (1 << (man_bits - 1))
    # at or beyond the midpoint between the largest finite value and 2^(bias+1): infinity
    if x >= (2.0 - 2.0 ** -(man_bits + 1)) * 2.0**bias:
        return sign | (exp_all << man_bits)
    if x < 2.0 ** (1 - bias):
        q = np.rint(x * 2.0 ** (bias - 1 + man_bits))
        return sign | int(q)
    m, e = math.frexp(x)
    f = np.rint((m * 2.0 - 1.0) * 2.0**man_bits)
    ex = e - 1 + bias
    if f == 2.0**man_bits:
        f = 0.0
        ex += 1
    return sign | (ex << man_bits) | int(f)


@entry
def f16_bits(x):
    return encode_small_float(x, 5, 10)


@entry
def bf16_bits(x):
    # through float32 first, as ml_dtypes (the reference) converts float64 to bfloat16
    return encode_small_float(np.float64(np.float32(x)), 8, 7)
