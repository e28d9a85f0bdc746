"""The decorators for engine kernels.

Kernels only index arrays the host allocated; none allocates. So they are compiled without
Numba's reference counting (_nrt=False): with it, every array a non-inlined call passes or
takes out of the state tuple costs atomic increments and decrements, measured at about
90 ns per call with six array arguments, against 4 ns without. error_model="numpy" gives
IEEE results (inf, nan) for float division by zero instead of exceptions.

`inlined` is for the big kernels on the hot path that have a single call site (the
per-instruction vector op, its loops): LLVM will not inline them, and a call copies the
whole state tuple (some 2.6 KB) as its argument, about 100 ns a vector instruction."""

from numba import njit


def kernel(fn):
    return njit(cache=True, _nrt=False, error_model="numpy")(fn)


def inlined(fn):
    return njit(cache=True, _nrt=False, error_model="numpy", inline="always")(fn)
