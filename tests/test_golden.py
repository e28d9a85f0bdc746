"""Golden runs: every shipped program, on fixed inputs, gives the recorded cycles, counters
and output bits. A change that moves any of them must say why and re-record them:

    WSE_GOLDEN_UPDATE=1 python -m pytest tests/test_golden.py

(tests/data/golden.json holds the values; the update rewrites it and the test then passes.)"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from wse_emu import Mesh, assemble, parse_file, programs
from wse_emu.kernels import activation, gemm, wstream
from wse_emu.kernels.gemv import gemv
from wse_emu.sdk import SdkRuntime

GOLDEN = Path(__file__).parent / "data" / "golden.json"
UPDATE = os.environ.get("WSE_GOLDEN_UPDATE") == "1"


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()[:16]


def _summary(result, *outputs) -> dict:
    s = result.stats
    return {
        "cycles": int(s.cycles),
        "instructions": int(np.sum(s.instructions)),
        "wavelets": int(np.sum(s.wavelets_sent)),
        "hops": int(np.sum(s.hops)),
        "busy": int(np.sum(s.busy)),
        "outputs": _digest(*outputs),
    }


def _program(name, w, h, arch, inputs, outputs):
    rng = np.random.default_rng(7)
    m = Mesh(w, h, arch)
    m.load(assemble(parse_file(programs.path(name)), w, h, m.arch))
    for sym, (dtype, shape, rect) in inputs.items():
        m.memcpy_h2d(sym, (rng.standard_normal(shape) * 2).astype(dtype), *rect)
    m.launch()
    res = m.run()
    return _summary(res, *(m.memcpy_d2h(sym, *rect) for sym, rect in outputs.items()))


def _gemm(kind, arch, sparsity):
    rng = np.random.default_rng(11)
    A = rng.standard_normal((64, 64))
    if sparsity:
        A = gemm.sparse_matrix(64, 64, sparsity, seed=5).astype(np.float64)
    B = rng.standard_normal((64, 64))
    C, rec = getattr(gemm, kind)(A, B, 4, arch)
    assert rec.verified
    return {
        "cycles": rec.cycles,
        "wavelets": rec.wavelets,
        "hops": rec.hops,
        "macs": rec.macs,
        "outputs": _digest(C),
    }


def _gemm_relu(arch):
    Y, rec = activation.run(*activation.inputs(32, 32, 32, 8, 0.75, seed=5), 4, arch)
    assert rec.verified
    return {"cycles": rec.cycles, "wavelets": rec.wavelets, "hops": rec.hops, "outputs": _digest(Y)}


def _gemv(arch):
    A = np.random.default_rng(3).standard_normal((32, 64))
    x = np.random.default_rng(4).standard_normal(64)
    y, res = gemv(A, x, 4, arch)
    return _summary(res, y)


def _gemv_sdk(arch):
    r = SdkRuntime(programs.path("gemv_sdk"), arch=arch)
    r.load()
    r.run()
    A = np.random.default_rng(5).standard_normal(24).astype(np.float32)
    x = np.random.default_rng(6).standard_normal(6).astype(np.float32)
    b = np.random.default_rng(7).standard_normal(4).astype(np.float32)
    for sym, v in (("A", A), ("x", x), ("b", b)):
        r.memcpy_h2d(sym, v, 0, 0, 1, 1, v.size)
    res = r.launch("compute")
    y = np.zeros(4, np.float32)
    r.memcpy_d2h(y, "y", 0, 0, 1, 1, 4)
    assert np.allclose(y, A.reshape(4, 6) @ x + b, rtol=1e-5, atol=1e-5)
    return _summary(res, y)


def _gemm_wstream(arch):
    X, W = wstream.inputs(32, 16, 12, seed=13)
    C, rec = wstream.wstream(X, W, 2, 2, arch)
    assert rec.verified
    return {
        "cycles": rec.cycles,
        "wavelets": rec.wavelets_streamed,
        "held": rec.held,
        "paced": rec.paced,
        "outputs": _digest(C),
    }


CASES = {
    "vector_add": lambda arch: _program(
        "vector_add",
        1,
        1,
        arch,
        {"a": (np.float16, 64, ()), "b": (np.float16, 64, ())},
        {"c": ()},
    ),
    "row_broadcast": lambda arch: _program(
        "row_broadcast",
        8,
        4,
        arch,
        {"src": (np.float32, (4, 1, 32), (0, 0, 1, 4))},
        {"buf": (1, 0, 7, 4)},
    ),
    "nonlinear": lambda arch: _program(
        "nonlinear",
        1,
        1,
        arch,
        {"x": (np.float16, 64, ())},
        {s: () for s in ("exp", "tanh", "sigmoid", "gelu", "relu", "recip", "log", "rsqrt")},
    ),
    "allreduce": lambda arch: _program(
        "allreduce",
        4,
        4,
        arch,
        {"x": (np.float32, (4, 4, 64), ())},
        {"x": ()},
    ),
    "ffn_layernorm": lambda arch: _program(
        "ffn_layernorm",
        4,
        1,
        arch,
        {
            "x": (np.float16, (1, 4, 8, 32), ()),
            "w": (np.float16, (1, 4, 32, 16), ()),
            "b": (np.float32, (1, 4, 16), ()),
        },
        {"h": ()},
    ),
    "gemv": lambda arch: _gemv(arch),
    "gemv_sdk": lambda arch: _gemv_sdk(arch),
    "gemm_dense": lambda arch: _gemm("dense", arch, 0.0),
    "gemm_sparse": lambda arch: _gemm("sparse", arch, 0.8),
    "gemm_sparse_relu": lambda arch: _gemm_relu(arch),
    "gemm_wstream": lambda arch: _gemm_wstream(arch),
}


def _recorded() -> dict:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_program_matches_golden(name, arch):
    got = CASES[name](arch)
    key = f"{name}/{arch}"
    if UPDATE:
        data = _recorded()
        data[key] = got
        GOLDEN.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
    want = _recorded().get(key)
    assert want is not None, f"no golden values for {key}: run with WSE_GOLDEN_UPDATE=1"
    assert got == want


def test_every_shipped_program_has_a_golden_case():
    shipped = {p.stem for p in programs.DIR.glob("*.wsa")}
    assert shipped <= set(CASES)
