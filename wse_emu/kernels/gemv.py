"""GEMV y = A x on a row of PEs (programs/gemv.wsa): split K across the PEs, reduce east."""

from __future__ import annotations

import numpy as np

from .. import programs
from ..asm import assemble, parse_file
from ..runtime import Mesh, RunResult


def gemv(A, x, pes: int = 4, arch: str = "wse3") -> tuple[np.ndarray, RunResult]:
    """y (fp32) and the run's result. A (M x K) and x (K) are rounded to fp16; K must be a
    multiple of pes."""
    A = np.asarray(A, np.float16)
    x = np.asarray(x, np.float16)
    m, k = A.shape
    if x.shape != (k,) or k % pes:
        raise ValueError(f"need x of length K = {k} and K a multiple of {pes} PEs")
    kp = k // pes
    linked = assemble(parse_file(programs.path("gemv")), pes, 1, arch, consts={"M": m, "KP": kp})
    mesh = Mesh(pes, 1, arch)
    mesh.load(linked)
    # PE j: a[kk, :] = A[:, j*kp + kk]
    mesh.memcpy_h2d("a", A.T.reshape(1, pes, kp, m))
    mesh.memcpy_h2d("x", x.reshape(1, pes, kp))
    mesh.launch()
    result = mesh.run()
    return mesh.memcpy_d2h("y", pes - 1, 0, 1, 1)[0, 0], result


def reference(A, x, pes: int = 4) -> np.ndarray:
    """The kernel's arithmetic, step for step: per PE, y = fp32(y + a * x) column by column
    (fp16 operands), then partial sums added west to east in fp32."""
    A = np.asarray(A, np.float16).astype(np.float64)
    x = np.asarray(x, np.float16).astype(np.float64)
    m, k = A.shape
    kp = k // pes
    total = None
    for j in range(pes):
        y = np.zeros(m, np.float32)
        for kk in range(j * kp, (j + 1) * kp):
            y = (y.astype(np.float64) + A[:, kk] * x[kk]).astype(np.float32)
        total = y if total is None else (total.astype(np.float64) + y).astype(np.float32)
    return total
