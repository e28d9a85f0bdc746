"""DSD registers: setting them up (dmem, ddim, dlen, fabric DSDs), the address of a memory
DSD's i-th element, and the bytes its first n elements span. A memory DSD has up to 4
dimensions (extent and stride each, dimension 0 innermost); its elements go in row-major
order, so a 1-D DSD is the special case of extents (length, 1, 1, 1). Kernels here take the
dsd array alone: a kernel call that takes the whole state tuple copies it."""

import numpy as np

from ..isa import MAX_DSD_LEN
from .jit import kernel
from .kinds import (
    DK_MEM,
    DSD_ADDR,
    DSD_EXT,
    DSD_KIND,
    DSD_LEN,
    DSD_STRIDE,
    F_BAD_DSD,
    F_DSD_KIND,
    F_DSD_UNSET,
    MAX_DIMS,
)

BIG = np.int64(1) << 62


@kernel
def set_1d(dsd, p, d, kind, addr, length, stride):
    """dmem / dfin / dfout: a 1-D DSD (outer extents 1, strides 0)."""
    dsd[p, d, DSD_KIND] = kind
    dsd[p, d, DSD_ADDR] = addr
    dsd[p, d, DSD_LEN] = length
    for k in range(MAX_DIMS):
        dsd[p, d, DSD_EXT + k] = length if k == 0 else 1
        dsd[p, d, DSD_STRIDE + k] = stride if k == 0 else 0


@kernel
def set_extent(dsd, p, d, k, extent, stride):
    """Dimension k of DSD d gets extent (and stride, for a memory DSD); the length becomes the
    product of the extents. Returns 0, or (fault code, argument) as (code, arg) with code > 0:
    an unset DSD, a fabric DSD given an outer dimension, or a length or extent over 65535."""
    kind = dsd[p, d, DSD_KIND]
    if kind == 0:
        return F_DSD_UNSET, d
    if k > 0 and kind != DK_MEM:
        return F_DSD_KIND, d
    if extent < 0 or extent > MAX_DSD_LEN:
        return F_BAD_DSD, extent
    total = np.int64(1)
    for j in range(MAX_DIMS):
        total *= extent if j == k else dsd[p, d, DSD_EXT + j]
    if total > MAX_DSD_LEN:
        return F_BAD_DSD, total
    dsd[p, d, DSD_EXT + k] = extent
    if k > 0:
        dsd[p, d, DSD_STRIDE + k] = stride
    dsd[p, d, DSD_LEN] = total
    return 0, 0


@kernel
def ndims(dsd, p, d):
    """Dimensions in use: 1 + the outermost dimension whose extent is not 1."""
    for k in range(MAX_DIMS - 1, 0, -1):
        if dsd[p, d, DSD_EXT + k] != 1:
            return k + 1
    return 1


@kernel
def elem_addr(dsd, p, d, i, size):
    """Byte address of element i (row-major, dimension 0 innermost) of memory DSD d."""
    if dsd[p, d, DSD_EXT + 1] == 1 and dsd[p, d, DSD_EXT + 2] == 1 and dsd[p, d, DSD_EXT + 3] == 1:
        return dsd[p, d, DSD_ADDR] + i * dsd[p, d, DSD_STRIDE] * size
    off = np.int64(0)
    for k in range(MAX_DIMS - 1):
        e = max(dsd[p, d, DSD_EXT + k], 1)
        off += (i % e) * dsd[p, d, DSD_STRIDE + k]
        i //= e
    off += i * dsd[p, d, DSD_STRIDE + MAX_DIMS - 1]
    return dsd[p, d, DSD_ADDR] + off * size


@kernel
def span(dsd, p, d, n, size):
    """(first byte, end) of the first n elements of memory DSD d, exactly: the elements before
    flat index n are, level by level from the outermost dimension, those with a smaller index
    in that dimension (all of every inner one) under the same outer indices as element n-1."""
    base = dsd[p, d, DSD_ADDR]
    if n <= 0:
        return base, base + size
    if dsd[p, d, DSD_EXT + 1] == 1 and dsd[p, d, DSD_EXT + 2] == 1 and dsd[p, d, DSD_EXT + 3] == 1:
        last = base + (n - 1) * dsd[p, d, DSD_STRIDE] * size  # 1-D
        return min(base, last), max(base, last) + size
    lo = BIG
    hi = -BIG
    prefix = np.int64(0)
    for kk in range(MAX_DIMS):
        k = MAX_DIMS - 1 - kk
        inner = np.int64(1)
        for t in range(k):
            inner *= max(dsd[p, d, DSD_EXT + t], 1)
        s = dsd[p, d, DSD_STRIDE + k]
        j = ((n - 1) // inner) % max(dsd[p, d, DSD_EXT + k], 1)
        top = j if k == 0 else j - 1
        if top >= 0:
            plo = prefix + min(0, top * s)
            phi = prefix + max(0, top * s)
            for t in range(k):
                reach = (dsd[p, d, DSD_EXT + t] - 1) * dsd[p, d, DSD_STRIDE + t]
                plo += min(0, reach)
                phi += max(0, reach)
            lo = min(lo, plo)
            hi = max(hi, phi)
        prefix += j * s
    return base + lo * size, base + hi * size + size
