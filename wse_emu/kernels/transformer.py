"""The feed-forward half of a transformer block with a layer norm, Y = LayerNorm(GELU(X W +
b)), on a mesh (programs/ffn_layernorm.wsa): W's columns split along each row of PEs, each
row of PEs its own tokens, the per-token statistics summed with the collectives library's
row allreduce. The host splits the operands, runs, gathers Y and checks it against NumPy."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import erf

import numpy as np

from .. import programs
from ..asm import assemble, parse_file
from ..runtime import Mesh

EPS = 1e-5


@dataclass
class FfnResult:
    tokens: int
    d: int
    f: int
    mesh: tuple
    arch: str
    cycles: int
    cycles_per_token: float  # the run's cycles over the tokens of one row of PEs
    tokens_per_second: float  # all rows' tokens over the run's time at the arch clock
    utilisation: float
    max_abs_error: float  # against the float64 reference
    tolerance: float
    verified: bool

    def to_dict(self) -> dict:
        return asdict(self)


def reference(X, W, b) -> np.ndarray:
    """LayerNorm(GELU(X W + b)) in float64 from the fp16 X and W and fp32 b the kernel gets
    (exact GELU, biased variance, EPS inside the square root, no scale or shift)."""
    h = np.asarray(X, np.float16).astype(np.float64) @ np.asarray(W, np.float16).astype(
        np.float64
    ) + np.asarray(b, np.float32).astype(np.float64)
    g = h * 0.5 * (1.0 + np.vectorize(erf)(h / np.sqrt(2.0)))
    mean = g.mean(axis=1, keepdims=True)
    return (g - mean) / np.sqrt(g.var(axis=1, keepdims=True) + EPS)


def ffn_layernorm(X, W, b, width: int = 4, height: int = 1, arch: str = "wse3"):
    """Y (fp32, tokens x F) and an FfnResult. X has height x T rows (T tokens per row of
    PEs), W is D x F with F a multiple of width, b has F values."""
    X = np.asarray(X, np.float16)
    W = np.asarray(W, np.float16)
    b = np.asarray(b, np.float32)
    if X.ndim != 2 or W.ndim != 2 or b.shape != (W.shape[1],) or X.shape[1] != W.shape[0]:
        raise ValueError(f"need X (N x D), W (D x F), b (F): got {X.shape}, {W.shape}, {b.shape}")
    n, d = X.shape
    f = W.shape[1]
    if width < 1 or height < 1 or f % width or n % height or n == 0:
        raise ValueError(
            f"F = {f} must be a multiple of the mesh width {width}, and the {n} tokens a "
            f"positive multiple of its height {height}"
        )
    t, fp = n // height, f // width
    consts = {"T": t, "D": d, "FP": fp}
    linked = assemble(
        parse_file(programs.path("ffn_layernorm")), width, height, arch, consts=consts
    )
    mesh = Mesh(width, height, arch)
    mesh.load(linked)
    xs = X.reshape(height, 1, t, d)
    mesh.memcpy_h2d("x", np.broadcast_to(xs, (height, width, t, d)).copy())
    ws = W.reshape(d, width, fp).transpose(1, 0, 2)
    mesh.memcpy_h2d("w", np.broadcast_to(ws, (height, width, d, fp)).copy())
    bs = b.reshape(width, fp)
    mesh.memcpy_h2d("b", np.broadcast_to(bs, (height, width, fp)).copy())
    mesh.launch()
    result = mesh.run()
    Y = mesh.memcpy_d2h("h").transpose(0, 2, 1, 3).reshape(n, f)
    exact = reference(X, W, b)
    err = float(np.abs(Y - exact).max())
    # fp32 rounding of sums of D products and F squares, then a division by a standard
    # deviation that can be small: relative to the row's scale, with room for the ops
    tol = 1e-4 * max(1.0, float(np.abs(exact).max()))
    stats = result.stats
    return Y, FfnResult(
        tokens=n,
        d=d,
        f=f,
        mesh=(width, height),
        arch=arch,
        cycles=stats.cycles,
        cycles_per_token=stats.cycles / t,
        tokens_per_second=n / stats.seconds if stats.seconds else 0.0,
        utilisation=stats.utilisation,
        max_abs_error=err,
        tolerance=tol,
        verified=err <= tol,
    )
