"""The calibration ports: for each .wsa, how to fill its inputs, what NumPy says the result
must be, and how its timestamps turn into one cycle count. Shared by run.py (the report)
and tests/test_calibration_ports.py (the numerical checks), so both run the same code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wse_emu import Mesh, assemble, parse_file

HERE = Path(__file__).resolve().parent


def _chain_sum(vectors: np.ndarray) -> np.ndarray:
    """v[0] + (v[1] + (... + v[-1])) in fp32, the order a westward chain adds in."""
    s = vectors[-1].copy()
    for v in vectors[-2::-1]:
        s = v + s
    return s


def _fmacs_ref(y: np.ndarray, a: np.ndarray, s: np.float32) -> np.ndarray:
    """y + a * s with one rounding: the product of two fp32 is exact in fp64, and the
    fp64 sum is rounded once to fp32 (equal to a fused multiply-add except in the rare
    double-rounding tie, which the tolerance check below absorbs)."""
    return (y.astype(np.float64) + a.astype(np.float64) * np.float64(s)).astype(np.float32)


@dataclass
class Port:
    """One .wsa kernel. `fill(mesh, rng, c)` loads inputs and returns what `check` needs;
    `check(mesh, ctx, c) -> bool` compares the output with NumPy; `timing` says how the
    original turns per-PE timestamps into one number ("per_pe": max over PEs of end -
    start, as the kernel's host script does; "span": max(end) - min(start))."""

    wsa: str
    fill: object
    check: object
    timing: str
    approximations: str

    def source(self):
        return parse_file(HERE / self.wsa)


# ---------------------------------------------------------------------------- C1
def _c1_fill(mesh, rng, c):
    pm = c["PM"]
    b = rng.standard_normal((mesh.width, pm)).astype(np.float32)
    cc = rng.standard_normal((mesh.height, mesh.width, pm + 1)).astype(np.float32)
    mesh.memcpy_h2d("B", b, 0, 0, mesh.width, 1)  # the first row; bcast_B sends it south
    mesh.memcpy_h2d("C", cc)
    return b, cc


def _c1_check(mesh, ctx, c):
    b, cc = ctx
    pm, off = c["PM"], c["OFF"]
    exp = cc.copy()
    exp[:, :, off : off + pm] *= b[np.newaxis, :, :]
    row_sum = _chain_sum(np.moveaxis(exp[:, ::-1, :pm], 1, 0))  # east sums west's first
    got = mesh.memcpy_d2h("C", mesh.width - 1, 0, 1, mesh.height)[:, 0, :pm]
    return np.array_equal(got, row_sum) and np.array_equal(
        mesh.memcpy_d2h("B"), np.broadcast_to(b, (mesh.height, mesh.width, pm))
    )


C1 = Port(
    "c1_fmuls.wsa",
    _c1_fill,
    _c1_check,
    "per_pe",
    "async fmovs/fadds (B broadcast, C row reduction) run synchronously outside the timed "
    "region; middle rows (none on 2x2) forward B before, not during, the timed fmuls",
)


# ---------------------------------------------------------------------------- C2
def _c2_fill(mesh, rng, c):
    d = rng.standard_normal((1, mesh.width, c["NX"])).astype(np.float32)
    mesh.memcpy_h2d("data", d)
    return d


def _c2_check(mesh, d, c):
    return np.array_equal(mesh.memcpy_d2h("data", 0, 0, 1, 1)[0, 0], _chain_sum(d[0]))


C2 = Port(
    "c2_chain_reduce.wsa",
    _c2_fill,
    _c2_check,
    "span",
    "none in the timed path (random data instead of constants 1.0)",
)


# ---------------------------------------------------------------------------- C3
def _c3_fill(mesh, rng, c):
    nb = c["NB"]
    pnb = -(-nb // 4) * 4
    a = rng.random((nb, nb)).astype(np.float32)
    x = rng.random(nb).astype(np.float32)
    image = np.zeros(nb * pnb + 1, np.float32)  # column-major, one word in, as run.py does
    for j in range(nb):
        image[1 + j * pnb : 1 + j * pnb + nb] = a[:, j]
    mesh.memcpy_h2d("A", np.tile(image, (mesh.height, mesh.width, 1)))
    mesh.memcpy_h2d("x", np.tile(x, (mesh.height, mesh.width, 1)))
    return a, x, image


def _c3_check(mesh, ctx, c):
    a, x, image = ctx
    nb, iters = c["NB"], c["ITERS"]
    pnb = -(-nb // 4) * 4
    y = np.zeros(pnb, np.float32)
    for _ in range(iters):
        for j in range(nb):
            y = _fmacs_ref(y, image[1 + j * pnb : 1 + (j + 1) * pnb], x[j])
    got = mesh.memcpy_d2h("y")
    return np.allclose(got, y, rtol=1e-6, atol=0) and np.allclose(
        got[..., :nb], iters * (a.astype(np.float64) @ x), rtol=1e-5
    )


C3 = Port(
    "c3_matvec.wsa",
    _c3_fill,
    _c3_check,
    "per_pe",
    "no DSD save_address: each column rebuilds the A DSD (dmem) and advances its base "
    "(add); the @map loop is scalar ld/add/blt",
)


# ---------------------------------------------------------------------------- C4
def _stream_fill(name):
    def fill(mesh, rng, c):
        v = rng.standard_normal((mesh.height, mesh.width, c["K"])).astype(np.float32)
        mesh.memcpy_h2d(name, v)
        return v

    return fill


def _copy_check(mesh, v, c):
    return np.array_equal(mesh.memcpy_d2h("out"), v)


def _vertical_check(mesh, v, c):
    exp = v.copy()
    for k in range(1, c["K"]):
        exp[..., k] = v[..., k] - np.float32(0.5) * exp[..., k - 1]
    return np.array_equal(mesh.memcpy_d2h("out"), exp)


def _reduce_check(mesh, v, c):
    return np.array_equal(mesh.memcpy_d2h("out", 0, 0, 1, 1)[0, 0], _chain_sum(v[0]))


def _laplacian_check(mesh, v, c):
    """Interior PEs: -4 * in + (((east + west) + south) + north), SPADA's receive order."""
    t = v[1:-1, 2:] + v[1:-1, :-2]
    t = t + v[2:, 1:-1]
    t = t + v[:-2, 1:-1]
    exp = np.float32(-4.0) * v[1:-1, 1:-1] + t
    got = mesh.memcpy_d2h("out", 1, 1, mesh.width - 2, mesh.height - 2)
    return np.array_equal(got, exp)


# The C4 ports follow the CSL that SPADA's lowering (spcl/spada, spada/lowering/
# spatial_ir_to_csl.py) emits in memcpy mode; each .wsa header names the passes.
_SPADA_TASKS = (
    "the kernel function's @activate of the first task is activate + ret; CSL DSDs "
    "(compile-time constants) are dmem before each op; "
)
_ASYNC = "async fabric ops run on microthreads (async U, T: completion activates T); "
C4_COPY = Port(
    "c4_copy.wsa",
    _stream_fill("a"),
    _copy_check,
    "per_pe",
    _SPADA_TASKS + "copy elision leaves one memory @fmovs(out, a)",
)
C4_VERTICAL = Port(
    "c4_pure_vertical.wsa",
    _stream_fill("inp"),
    _vertical_check,
    "per_pe",
    _SPADA_TASKS + "the two CSL for loops as counter/shl/ld/fmul/fsub/st/add/blt; g[k] "
    "(k >= 1, uninitialised in the .sptl) read from the input",
)
C4_REDUCE = Port(
    "c4_reduce.wsa",
    _stream_fill("inp"),
    _reduce_check,
    "per_pe",
    _SPADA_TASKS + _ASYNC + "local and PE 0's rcv_val alias the host buffers",
)
C4_REDUCE_PIPE = Port(
    "c4_reduce_pipelined.wsa",
    _stream_fill("a_in"),
    _reduce_check,
    "per_pe",
    _SPADA_TASKS + _ASYNC + "a aliases a_in (no phase-1 copy); the relay foreach is "
    "one streaming fadds(out_fabric, a_in, in_fabric)",
)

C4_LAPLACIAN = Port(
    "c4_laplacian.wsa",
    _stream_fill("inp"),
    _laplacian_check,
    "per_pe",
    _SPADA_TASKS + _ASYNC + "each stage's receive and send stream at once; "
    "parameterised sends cost a mov + beq",
)


@dataclass
class Row:
    """One published number: which port, on what mesh, arch and constants."""

    id: str
    case: str
    arch: str
    published: int
    port: Port
    width: int
    height: int
    consts: dict = field(default_factory=dict)


@dataclass
class Measured:
    cycles: int  # as the original measures (Port.timing)
    verified: bool
    run_cycles: int  # the whole run, for reference
    seconds: float  # host time: assemble, load, run, check


def measure(
    port: Port, width: int, height: int, arch: str, consts: dict, overrides=None, seed: int = 0
):
    """Assemble and run one port; return its measured cycles and whether NumPy agrees.
    consts must name every .const the port's fill and check read (they are not read back
    from the program); overrides are cost-table parameters."""
    t0 = time.perf_counter()
    linked = assemble(port.source(), width, height, arch, consts=consts)
    mesh = Mesh(width, height, arch, overrides=overrides)
    mesh.load(linked)
    ctx = port.fill(mesh, np.random.default_rng(seed), consts)
    mesh.launch()
    result = mesh.run()
    start = mesh.memcpy_d2h("tstart").astype(np.int64).ravel()
    end = mesh.memcpy_d2h("tend").astype(np.int64).ravel()
    if port.timing == "per_pe":
        cycles = int((end - start).max())
    else:
        cycles = int(end.max() - start.min())
    ok = bool(port.check(mesh, ctx, consts))
    return Measured(cycles, ok, int(result.cycles), time.perf_counter() - t0)


_C3_SWEEP = [1698, 4588, 10298, 16788, 26928, 37018, 51528, 65218, 84128, 101448]

ROWS = [
    Row("C1", "fmuls n=1028, C off by 1 word", "wse2", 1034, C1, 2, 2, {"PM": 1028, "OFF": 1}),
    Row("C1", "fmuls n=5124, C off by 1 word", "wse2", 5130, C1, 2, 2, {"PM": 5124, "OFF": 1}),
    Row("C1", "fmuls n=1028, C aligned like B", "wse2", 2062, C1, 2, 2, {"PM": 1028, "OFF": 0}),
    Row("C1", "fmuls n=5124, C aligned like B", "wse2", 10254, C1, 2, 2, {"PM": 5124, "OFF": 0}),
    Row("C2", "chain reduce 512x1, 4096 fp32", "wse2", 7218, C2, 512, 1, {"NX": 4096}),
    Row("C3", "matvec 2x2, N=25, iters=1", "wse2", 772, C3, 2, 2, {"NB": 25, "ITERS": 1}),
    *[
        Row("C3", f"matvec 10x10, N={n}, iters=10", "wse2", pub, C3, 10, 10, {"NB": n, "ITERS": 10})
        for n, pub in zip(range(10, 101, 10), _C3_SWEEP)
    ],
    Row("C4", "copy N=4 K=4", "wse2", 22, C4_COPY, 4, 4, {"K": 4}),
    Row("C4", "copy N=4 K=4", "wse3", 21, C4_COPY, 4, 4, {"K": 4}),
    Row("C4", "pure_vertical 4x4x4", "wse2", 35, C4_VERTICAL, 4, 4, {"K": 4}),
    Row("C4", "pure_vertical 4x4x4", "wse3", 32, C4_VERTICAL, 4, 4, {"K": 4}),
    Row("C4", "laplacian 4x4x4 (6x6 PEs)", "wse2", 153, C4_LAPLACIAN, 6, 6, {"K": 4}),
    Row("C4", "reduce N=15 K=128", "wse2", 3920, C4_REDUCE, 15, 1, {"K": 128}),
    Row("C4", "reduce N=15 K=128", "wse3", 3090, C4_REDUCE, 15, 1, {"K": 128}),
    Row("C4", "reduce_pipelined N=15 K=128", "wse2", 317, C4_REDUCE_PIPE, 15, 1, {"K": 128}),
    Row("C4", "reduce_pipelined N=15 K=128", "wse3", 343, C4_REDUCE_PIPE, 15, 1, {"K": 128}),
]

SKIPPED: dict[str, str] = {}  # rows of the calibration set not ported, and why
