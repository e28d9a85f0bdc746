"""The transformer FFN block with a layer norm (programs/ffn_layernorm.wsa): Y against NumPy
on small shapes and meshes, its use of the collectives library, cycles that grow with the
work, and clear errors for shapes that do not fit."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from wse_emu.cli import main
from wse_emu.kernels.transformer import ffn_layernorm, reference


def operands(n, d, f, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, d)) * 0.5,
        rng.standard_normal((d, f)) / np.sqrt(d),
        (rng.standard_normal(f) * 0.1),
    )


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("n,d,f,w,h", [(4, 8, 16, 4, 1), (6, 4, 8, 2, 2), (3, 8, 4, 1, 1)])
def test_matches_numpy(n, d, f, w, h, arch):
    X, W, b = operands(n, d, f)
    Y, r = ffn_layernorm(X, W, b, w, h, arch)
    exact = reference(X, W, b)
    assert Y.shape == (n, f) and r.verified
    assert np.abs(Y - exact).max() < 1e-4
    # normalised: every token's row has mean ~0 and variance ~1 (a wrong allreduce would not)
    assert np.abs(Y.mean(axis=1)).max() < 1e-4
    assert np.abs(Y.var(axis=1) - 1).max() < 1e-2


def test_the_reference_is_layernorm_of_gelu():
    X, W, b = operands(3, 4, 6)
    h = X.astype(np.float16).astype(np.float64) @ W.astype(np.float16).astype(np.float64)
    h += b.astype(np.float32)
    g = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))  # tanh GELU
    want = (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + 1e-5)
    assert np.abs(reference(X, W, b) - want).max() < 1e-2  # exact and tanh GELU agree so far


def test_cycles_are_deterministic_and_grow_with_tokens_and_width():
    runs = {}
    for n, d in ((4, 8), (8, 8), (8, 16)):
        X, W, b = operands(n, d, 16)
        runs[n, d] = ffn_layernorm(X, W, b, 4, 1)[1].cycles
    assert ffn_layernorm(*operands(4, 8, 16), 4, 1)[1].cycles == runs[4, 8]
    assert runs[4, 8] < runs[8, 8] < runs[8, 16]


@pytest.mark.parametrize(
    "shape,mesh,message",
    [
        ((4, 8, 10), (4, 1), "F = 10 must be a multiple of the mesh width 4"),
        ((5, 8, 16), (4, 2), "5 tokens a positive multiple of its height 2"),
        ((4000, 8, 16), (4, 1), "bytes of SRAM per PE but a PE has 49152"),
    ],
)
def test_shapes_that_do_not_fit_are_clear_errors(shape, mesh, message):
    with pytest.raises(Exception, match=message):
        ffn_layernorm(*operands(*shape), *mesh)


def test_bench_ffn_command(tmp_path):
    out = tmp_path / "r.json"
    args = ["bench", "ffn", "--tokens", "8", "--d", "8", "--f", "16", "--mesh", "4x2"]
    r = CliRunner().invoke(main, [*args, "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["verified"] and data["cycles_per_token"] == data["cycles"] / 4
    assert f"cycles {data['cycles']:,}, {data['cycles_per_token']:,.1f} per token" in r.output
    r = CliRunner().invoke(main, ["bench", "ffn", "--f", "10", "--mesh", "4x1"])
    assert r.exit_code == 2 and "multiple of the mesh width" in r.output
    assert "Traceback" not in r.output
