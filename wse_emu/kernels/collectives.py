"""2-D collectives from the host: broadcast, reduce (sum) and allreduce of a vector per PE,
along rows, columns or the whole mesh, run with the library programs/lib/collectives.wsa.

Each call writes a small program that includes the library and uses one of its macros,
runs it, and returns every PE's buffer with the run's result. `reference` computes what
the library's chain computes, in its order of roundings, for the tests; `model_cycles`
the textbook cost of the same algorithm from the cost table (README "Collectives")."""

from __future__ import annotations

import numpy as np

from .. import programs
from ..arch import ArchProfile
from ..asm import assemble
from ..runtime import Mesh

KINDS = ("bcast", "reduce", "allreduce")
DIMS = ("row", "col", "mesh")
DTYPES = {"f32": 32, "f16": 16}
# colors: row chain (2), row broadcast, column chain (2), column broadcast
COLORS = {"R0": 0, "R1": 1, "RB": 2, "K0": 3, "K1": 4, "KB": 5}

_CODE = {
    ("row", "bcast"): "row_bcast {dt}, RB, RX, buf, N",
    ("row", "reduce"): "row_reduce {dt}, R0, R1, RX, buf, buf, N",
    ("row", "allreduce"): "row_allreduce {dt}, R0, R1, RB, RX, buf, N",
    ("col", "bcast"): "col_bcast {dt}, KB, RY, buf, N",
    ("col", "reduce"): "col_reduce {dt}, K0, K1, RY, buf, buf, N",
    ("col", "allreduce"): "col_allreduce {dt}, K0, K1, KB, RY, buf, N",
    ("mesh", "bcast"): "mesh_bcast {dt}, KB, RB, RX, RY, buf, N",
    ("mesh", "reduce"): "mesh_reduce {dt}, R0, R1, K0, K1, RX, RY, buf, buf, N",
    ("mesh", "allreduce"): "mesh_allreduce {dt}, R0, R1, RB, K0, K1, KB, RX, RY, buf, N",
}
_ROUTES = {
    "row": "row_allreduce_routes R0, R1, RB, RX",
    "col": "col_allreduce_routes K0, K1, KB, RY",
    "mesh": "mesh_allreduce_routes R0, R1, RB, K0, K1, KB, RX, RY",
}


def program(kind: str, dim: str, dtype: str = "f32") -> str:
    """The text of a program running one collective on `buf` (dtype[N]) of every PE, rooted
    at (RX, RY): consts N, RX, RY, to be given to `assemble`."""
    if kind not in KINDS or dim not in DIMS or dtype not in DTYPES:
        raise ValueError(
            f"kind one of {KINDS}, dim one of {DIMS}, dtype one of {tuple(DTYPES)}; "
            f"got {kind!r}, {dim!r}, {dtype!r}"
        )
    consts = "".join(f".const {n} = {v}\n" for n, v in COLORS.items())
    return (
        ".const N = 1\n.const RX = 0\n.const RY = 0\n"
        + consts
        + '.include "lib/collectives.wsa"\n'
        + f".program pe\ncoll_params\n.data buf {dtype}[N]\nmain:\n"
        + "    "
        + _CODE[dim, kind].format(dt=DTYPES[dtype])
        + "\n    halt\n"
        + ".layout\ncoll_place pe\n"
        + _ROUTES[dim]
        + "\n"
    )


def load(kind: str, dim: str, x, root=(0, 0), arch: str = "wse3", dtype=None) -> Mesh:
    """A mesh with the collective loaded, x (H, W, N) in every PE's `buf` (PE (x, y) holds
    x[y, x]) and launched: `.run()` runs it. dtype: float32 or float16 (default: x's, if it
    is one of them)."""
    x = np.asarray(x)
    dtype = np.dtype(dtype or (x.dtype if x.dtype in (np.float16, np.float32) else np.float32))
    name = {np.dtype(np.float32): "f32", np.dtype(np.float16): "f16"}.get(dtype)
    if name is None or x.ndim != 3 or x.shape[2] < 1:
        raise ValueError("x must be (H, W, N) with N >= 1; dtype float32 or float16")
    h, w, n = x.shape
    rx, ry = root
    if not (0 <= rx < w and 0 <= ry < h):
        raise ValueError(f"root {tuple(root)} outside the {w}x{h} mesh")
    linked = assemble(
        program(kind, dim, name),
        w,
        h,
        arch,
        # named as if in programs/, so that the .include finds the library
        filename=str(programs.DIR / f"{dim}_{kind}.wsa"),
        consts={"N": n, "RX": rx, "RY": ry},
    )
    mesh = Mesh(w, h, arch)
    mesh.load(linked)
    mesh.memcpy_h2d("buf", x.astype(dtype))
    mesh.launch()
    return mesh


def run(kind: str, dim: str, x, root=(0, 0), arch: str = "wse3", dtype=None):
    """Run one collective (see `load`); every PE's buffer afterwards, shape (H, W, N), and
    the RunResult."""
    mesh = load(kind, dim, x, root, arch, dtype)
    result = mesh.run()
    return mesh.memcpy_d2h("buf"), result


def allreduce(x, root=(0, 0), arch: str = "wse3"):
    """Sum of x (H, W, N) over the whole mesh, on every PE; and the RunResult."""
    return run("allreduce", "mesh", x, root, arch)


def _chain_sum(v, root: int):
    """The library's order along axis 0: (((west end + ...) + root) + east partial), each
    side summed from its far end, rounded to v's dtype at every step."""

    def side(parts):
        acc = None
        for p in parts:
            acc = p if acc is None else (acc + p).astype(v.dtype)
        return acc

    west, east = side(v[:root]), side(v[root + 1 :][::-1])
    acc = v[root] if west is None else (west + v[root]).astype(v.dtype)
    return acc if east is None else (acc + east).astype(v.dtype)


def reference(kind: str, dim: str, x, root=(0, 0)):
    """What the library leaves in every PE's buffer, computed in NumPy with the chain's
    order of additions (so fp32 and fp16 sums match bit for bit)."""
    x = np.asarray(x)
    rx, ry = root
    out = x.copy()
    if dim in ("row", "mesh") and kind != "bcast":
        rows = np.stack([_chain_sum(x[y], rx) for y in range(x.shape[0])])  # (H, N)
        out[:, rx] = rows
    if dim == "col" and kind != "bcast":
        out[ry, :] = np.stack([_chain_sum(x[:, c], ry) for c in range(x.shape[1])])
    if dim == "mesh" and kind != "bcast":
        out[ry, rx] = _chain_sum(out[:, rx], ry)
    if kind == "reduce":
        return out
    if dim == "row":
        return np.broadcast_to(out[:, rx : rx + 1], x.shape).copy()
    if dim == "col":
        return np.broadcast_to(out[ry : ry + 1, :], x.shape).copy()
    return np.broadcast_to(out[ry : ry + 1, rx : rx + 1], x.shape).copy()


def model_cycles(
    kind: str, dim: str, w: int, h: int, n: int, root=(0, 0), arch="wse3", dtype: str = "f32"
) -> int:
    """The textbook cost of the library's algorithms, from the cost table (README
    "Collectives"): a stream of n wavelets takes n cycles (one a cycle through the ramp) plus
    a vector op's start-up and drain; a multicast pays the ramps once and one hop latency per
    router to the farthest PE; a chain pays ramp off + hop + ramp on at every PE it passes
    (each PE takes the stream off the fabric, adds, and puts it back). The phases of a
    whole-mesh collective run one after the other; `halt` ends the run."""
    a = arch if hasattr(arch, "simd_width") else ArchProfile(arch)
    dw, stage = a["dsd_write"], a["ramp_on"] + a["hop_latency"] + a["ramp_off"]
    width = a["fp16_basic" if dtype == "f16" else "fp32_basic"]

    def op(count):  # a vector op streaming count wavelets
        return a["vector_startup"] + count * a["wavelet"] + a["vector_drain"]

    def bcast(p, r):
        if p == 1:
            return dw
        far = max(r, p - 1 - r)
        return 2 * dw + a["ramp_on"] + far * a["hop_latency"] + a["ramp_off"] + op(n)

    def reduce(p, r):
        if p == 1:  # a local copy at the SIMD width
            return 2 * dw + a["vector_startup"] + -(-n // width) + a["vector_drain"]
        west, east = r, p - 1 - r
        t = 2 * dw + max(west, east) * stage + op(n)
        return t + dw + op(n) if west and east else t  # a middle root takes both sides

    rx, ry = root
    row, col = dim in ("row", "mesh"), dim in ("col", "mesh")
    t = 0
    if kind != "bcast":
        t += (reduce(w, rx) if row else 0) + (reduce(h, ry) if col else 0)
    if kind != "reduce":
        t += (bcast(w, rx) if row else 0) + (bcast(h, ry) if col else 0)
    return t + a["scalar"]
