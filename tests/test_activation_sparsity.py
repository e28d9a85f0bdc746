"""Dynamic activation sparsity (gemm_sparse.wsa with RELU = 1): the ReLU and the filter run on
the mesh; results against the NumPy model bit for bit, what the filter saves against the
same program without it, the host's bias choice, and `wse-emu bench gemm
--activation-sparsity`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from wse_emu import programs
from wse_emu.arch import ArchProfile
from wse_emu.asm import assemble, parse_file
from wse_emu.cli import main
from wse_emu.kernels import activation, gemm


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("m,k,n,d,p,s", [(8, 8, 8, 4, 2, 0.5), (16, 16, 12, 8, 4, 0.75)])
def test_matches_the_numpy_model_with_and_without_the_filter(m, k, n, d, p, s, arch):
    X, W1, b, W2 = activation.inputs(m, k, n, d, s, seed=3)
    H, H16, Y_ref = activation.reference(X, W1, b, W2)
    assert 0 < np.count_nonzero(H) < H.size  # the ReLU really made zeros, and left values
    for filtered in (False, True):
        Y, r = activation.run(X, W1, b, W2, p, arch, filtered=filtered, sparsity=s)
        assert np.array_equal(Y, Y_ref) and r.verified  # H and Y bit for bit
        exact = H16.astype(np.float64) @ W2.astype(np.float64)
        assert np.allclose(Y, exact, rtol=1e-5, atol=1e-5)
        assert r.sparsity == 1 - np.count_nonzero(H) / H.size
        nnz = np.count_nonzero(H) if filtered else H.size
        assert r.macs == nnz * n and r.macs + r.macs_skipped == m * k * n


def test_the_filter_sends_only_nonzeros_and_saves_their_hops():
    p, s = 4, 0.75
    args = activation.inputs(16, 16, 16, 8, s, seed=1)
    _, off = activation.run(*args, p, filtered=False)
    _, on = activation.run(*args, p, filtered=True)
    zeros = round(on.sparsity * 16 * 16)
    assert zeros > 0
    # a zero of A would have been one wavelet from its root, multicast along its row of p PEs
    assert off.wavelets - on.wavelets == zeros
    assert off.hops - on.hops == zeros * (p - 1)
    assert on.cycles < off.cycles


def test_filter_loop_costs_two_tests_an_element_and_saves_four_ops_a_zero():
    # one PE: the filter adds feq and bne on every element and skips f2h, or, st and add on
    # a zero; everything before it (layer 1, ReLU) is the same work in both programs
    prof = ArchProfile("wse3")
    m = k = 16
    args = activation.inputs(m, k, 8, 4, 0.5, seed=2)
    made = {f: activation.run(*args, 1, filtered=f)[1] for f in (False, True)}
    zeros = round(made[True].sparsity * m * k)
    extra = (2 * m * k - 4 * zeros) * prof["scalar"]
    assert made[True].layer1_cycles - made[False].layer1_cycles == extra


def test_cycles_fall_as_the_relu_makes_more_zeros():
    cycles = [
        activation.run(*activation.inputs(16, 16, 16, 4, s, seed=4), 2)[1].cycles
        for s in (0.0, 0.5, 0.9)
    ]
    assert cycles[0] > cycles[1] > cycles[2]


@given(s=st.floats(allow_nan=True, allow_infinity=True), m=st.integers(1, 40))
def test_bias_makes_the_asked_fraction_negative_or_refuses(s, m):
    pre = np.random.default_rng(m).standard_normal((m, 3))
    if not 0.0 <= s < 1.0:
        with pytest.raises(ValueError, match=r"activation sparsity must be in \[0, 1\)"):
            activation.relu_bias(pre, s)
        return
    negative = np.sum(pre + activation.relu_bias(pre, s) < 0, axis=0)
    assert np.all(negative == min(round(s * m), m - 1))


def test_shapes_that_do_not_fit_are_refused():
    X, W1, b, W2 = activation.inputs(8, 8, 8, 4, 0.5)
    with pytest.raises(ValueError, match="not a multiple of the mesh side 3"):
        activation.run(X, W1, b, W2, 3)
    with pytest.raises(ValueError, match="need X"):
        activation.run(X, W1[:, :4], b, W2, 2)
    big = activation.inputs(512, 4, 4, 4, 0.5)
    with pytest.raises(ValueError, match="sparse tiles are at most 255x128"):
        activation.run(*big, 2)


def cli(*args):
    return CliRunner().invoke(main, ["bench", "gemm", *map(str, args)])


def test_bench_gemm_activation_sparsity_prints_and_writes_every_level(tmp_path):
    out = tmp_path / "r.json"
    r = cli(
        *("--m", 8, "--k", 8, "--n", 8, "--mesh", "2x2"),
        *("--activation-sparsity", "0,0.5", "--json", out),
    )
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:1] == ["asked"])
    assert [line.split()[0] for line in lines[head + 1 :]] == ["0.00", "0.50"]
    assert all(line.split()[-1] == "yes" for line in lines[head + 1 :])
    rec = json.loads(out.read_text())["activation_sparsity"]
    assert [row["level"] for row in rec] == [0.0, 0.5]
    assert rec[1]["filtered"]["wavelets"] < rec[1]["unfiltered"]["wavelets"]


PNG = b"\x89PNG\r\n\x1a\n"


def test_bench_gemm_every_form_with_the_dynamic_one_in_one_table_json_and_plot(tmp_path):
    out, png = tmp_path / "r.json", tmp_path / "forms.png"
    r = cli(
        *("--m", 8, "--k", 8, "--n", 8, "--mesh", "2x2", "--pattern", "all"),
        *("--sparsity", "0.5", "--activation-sparsity", "0.5", "--json", out, "--plot", png),
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert {s["pattern"] for s in rec["sparse"]} == {"random", "2:4", "block", "moe"}
    (dyn,) = rec["activation_sparsity"]
    assert dyn["level"] == 0.5 and dyn["filtered"]["sparsity"] == 0.5
    assert "dynamic activation sparsity" in r.output and png.read_bytes()[:8] == PNG


def test_bench_gemm_activation_sparsity_plot(tmp_path):
    png = tmp_path / "d.png"
    r = cli(
        "--m",
        8,
        "--k",
        8,
        "--n",
        8,
        "--mesh",
        "2x2",
        "--activation-sparsity",
        "0,0.5",
        "--plot",
        png,
    )
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == PNG and f"wrote {png}" in r.output


def test_bench_gemm_activation_sparsity_on_one_pe_sends_nothing_and_says_so():
    r = cli("--m", 8, "--k", 8, "--n", 8, "--mesh", "1x1", "--activation-sparsity", "0.5")
    assert r.exit_code == 0, r.output
    row = r.output.splitlines()[-1].split()
    assert row[0] == "0.50" and row[-3:] == ["-", "-", "yes"]  # 0 wavelets: nothing saved


@pytest.mark.parametrize(
    "args,message",
    [
        (("--activation-sparsity", "1.0"), "--activation-sparsity values must lie in [0, 1)"),
        (("--activation-sparsity", "-0.1"), "must lie in [0, 1)"),
        (("--activation-sparsity", "half"), "wants numbers separated by commas"),
        (("--activation-sparsity", "0.5", "--pattern", "2:4"), "--pattern does not apply"),
        (("--activation-sparsity", "0.5", "--compare", "gpu"), "--compare does not apply"),
        (("--activation-sparsity", "0.5", "--sparsity", "0.5"), "--sparsity does not apply"),
        (("--activation-sparsity", "0.5", "--pattern", "all", "--compare", "gpu"), "not all"),
        (("--activation-sparsity", "0.5", "--m", "6"), "--m = 6 must be a positive multiple"),
        (("--activation-sparsity", "0.5", "--m", "1024"), "sparse tiles are at most 255x128"),
        (("--activation-sparsity", "0.5", "--k", "512", "--n", "512"), "bytes of SRAM per PE"),
    ],
)
def test_bench_gemm_activation_sparsity_refuses_bad_input(args, message):
    r = cli("--mesh", "4x4", "--m", 16, "--k", 16, "--n", 16, *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("kt", [1, 3, 4, 6, 32])
def test_layout_keeps_w1_rows_off_the_bank_groups_of_h_rows(kt):
    # as in the GEMM kernels: rows padded to a multiple of 4 elements (8 bytes of fp16, one
    # turn of the 4 bank groups), W1 one 32-bit word after H, so a vfmachs step reads its H
    # row (fp32: two groups) and its W1 row (the other two) without a conflict
    consts = {"MT": 5, "KT": kt, "NT": 4, "RELU": 1, "D": 3}
    linked = assemble(parse_file(programs.path("gemm_sparse")), 2, 2, "wse3", consts=consts)
    syms = linked.images[0].symbols
    pitch = gemm.row_pitch(kt)
    assert syms["h"].shape == (5, pitch) and syms["w1"].shape == (3, pitch)
    assert (syms["w1"].addr - syms["h"].addr) % 8 == 4
