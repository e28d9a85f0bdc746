"""Dense (SUMMA) and sparse (dataflow) GEMM against NumPy, SciPy and the kernels' own
step-for-step arithmetic; the properties the model must show; `wse-emu bench gemm`."""

import json

import numpy as np
import pytest
import scipy.io
import scipy.sparse
from click.testing import CliRunner

from wse_emu import programs
from wse_emu.arch import ArchProfile
from wse_emu.asm import assemble, parse_file
from wse_emu.cli import main
from wse_emu.kernels import gemm

SHAPES = [(8, 8, 8, 1), (8, 8, 8, 2), (16, 8, 12, 4), (12, 24, 8, 4), (32, 32, 32, 4)]


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("m,k,n,p", SHAPES)
def test_dense_matches_numpy(m, k, n, p, arch, rng):
    A = rng.standard_normal((m, k))
    B = rng.standard_normal((k, n))
    C, r = gemm.dense(A, B, p, arch)
    assert np.array_equal(C, gemm.reference_dense(A, B))  # the same arithmetic, bit for bit
    exact = A.astype(np.float16).astype(np.float64) @ B.astype(np.float16).astype(np.float64)
    assert np.allclose(C, exact, rtol=1e-5, atol=1e-5) and r.verified
    assert r.macs == m * k * n and r.macs_skipped == 0
    assert r.flops_counted == 2 * m * k * n  # the engine's own count of fmac work
    assert r.cycles > 0 and 0 < r.utilisation <= 1


@pytest.mark.parametrize("m,k,n,p", [(8, 8, 8, 2), (16, 16, 8, 4)])
def test_dense_fp16_accumulation(m, k, n, p, rng):
    A = rng.standard_normal((m, k))
    B = rng.standard_normal((k, n))
    C, r = gemm.dense(A, B, p, acc16=True)
    assert np.array_equal(C, gemm.reference_dense(A, B, acc16=True))
    assert r.verified and r.accumulate == "f16"
    C32, _ = gemm.dense(A, B, p)
    assert not np.array_equal(C, C32)  # fp16 accumulation really rounds differently


@pytest.mark.parametrize("pattern", ["random", "2:4", "block", "moe"])
@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("m,k,n,p", [(8, 8, 8, 2), (16, 16, 12, 4), (8, 16, 8, 1)])
def test_sparse_matches_scipy(m, k, n, p, arch, pattern, rng):
    A = gemm.sparse_matrix(m, k, 0.5, pattern, seed=5)
    B = rng.standard_normal((k, n)).astype(np.float16)
    C, r = gemm.sparse(scipy.sparse.csr_matrix(A.astype(np.float32)), B, p, arch)
    ref = scipy.sparse.csr_matrix(A.astype(np.float64)) @ B.astype(np.float64)
    assert np.allclose(C, ref, rtol=1e-5, atol=1e-5) and r.verified
    # zeros skipped, so the same sums as the dense kernel in the same order, bit for bit
    assert np.array_equal(C, gemm.reference_dense(A, B))
    assert r.macs == np.count_nonzero(A) * n
    assert r.flops_counted == 2 * np.count_nonzero(A) * n


def test_zero_matrix_sends_no_nonzeros_and_does_no_axpy():
    m = k = n = 16
    p = 4
    B = np.ones((k, n), np.float16)
    C, r = gemm.sparse(np.zeros((m, k)), B, p)
    assert not C.any() and r.macs == 0 and r.macs_skipped == m * k * n
    assert r.flops_counted == 0  # the engine ran no AXPY at all
    # what travels: the dense B panels, one end-of-panel wavelet per A root and step,
    # and one token per root hand-over along rows and columns
    b_panels = p * p * (k // p) * (n // p)
    ends = p * p
    tokens = 2 * p * (p - 1)
    assert r.wavelets == b_panels + ends + tokens
    dense_c, dense_r = gemm.dense(np.zeros((m, k)), B, p)
    assert dense_r.wavelets > r.wavelets  # the dense kernel streams A's zeros too


@pytest.mark.parametrize("pattern", ["random", "block"])
def test_sparse_cycles_do_not_rise_with_sparsity(pattern, rng):
    m = k = n = 32
    B = rng.standard_normal((k, n))
    cycles = [
        gemm.sparse(gemm.sparse_matrix(m, k, s, pattern, seed=9), B, 4)[1].cycles
        for s in (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999)
    ]
    assert cycles == sorted(cycles, reverse=True)
    assert cycles[-1] < cycles[0] / 4


def test_sparse_matrix_patterns_nest_and_hit_their_sparsity():
    for pattern in ("random", "2:4", "block", "moe"):
        a = gemm.sparse_matrix(64, 64, 0.5, pattern, seed=2)
        b = gemm.sparse_matrix(64, 64, 0.75, pattern, seed=2)
        assert np.all((b != 0) <= (a != 0))  # the sparser matrix's nonzeros are a's
        assert np.array_equal(b[b != 0], a[b != 0])
        assert abs(1 - np.count_nonzero(a) / a.size - 0.5) < 0.1
    two_four = gemm.sparse_matrix(8, 16, 0.5, "2:4", seed=1)
    assert np.all(np.count_nonzero(two_four.reshape(8, 4, 4), axis=2) == 2)
    one_four = gemm.sparse_matrix(8, 16, 0.95, "2:4", seed=1)
    assert np.all(np.count_nonzero(one_four.reshape(8, 4, 4), axis=2) == 1)
    for s, active in ((0.0, 8), (0.5, 4), (0.75, 2), (0.9, 1), (0.99, 1)):
        moe = gemm.sparse_matrix(16, 64, s, "moe", seed=3).reshape(16, 8, 8)
        used = np.count_nonzero(moe, axis=2)  # nonzeros per (row, expert block)
        assert np.all(np.isin(used, (0, 8))), "an expert block is used whole or not at all"
        assert np.all((used == 8).sum(axis=1) == active)
    with pytest.raises(ValueError, match="divisible by 8 experts"):
        gemm.sparse_matrix(8, 12, 0.5, "moe")
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        gemm.sparse_matrix(8, 8, 1.0)


def _bank_groups(addr, width_bytes, arch="wse3"):
    """The bank groups a read of width_bytes at addr covers (README "Timing model": bank =
    16-bit word mod banks, group = bank mod bank_groups)."""
    prof = ArchProfile(arch)
    words = range(addr // prof["bank_bytes"], (addr + width_bytes) // prof["bank_bytes"])
    return {w % prof["banks"] % prof["bank_groups"] for w in words}


@pytest.mark.parametrize("name", ["gemm_dense", "gemm_sparse"])
@pytest.mark.parametrize("nt", [1, 3, 4, 6, 32])
def test_layout_keeps_every_c_row_off_every_b_row_bank_group(name, nt):
    # the programs' layout choice: rows padded to a multiple of 4 elements, B one word off C
    consts = {"MT": 5, "KT": 3, "NT": nt}
    syms = assemble(parse_file(programs.path(name)), 2, 2, "wse3", consts=consts).images[0].symbols
    pitch = gemm.row_pitch(nt)
    accumulators = [s for s in ("c", "c16") if s in syms]
    panels = [syms["b"], syms["bp"]]
    # bp holds two received B panels (a double buffer), whose rows are checked too
    assert syms["b"].shape == (3, pitch)
    assert syms["bp"].shape == (6, pitch)
    for acc in accumulators:
        c = syms[acc]
        size = c.nbytes // c.count
        assert c.shape == (5, pitch)
        for r in range(5):
            c_groups = _bank_groups(c.addr + r * pitch * size, size)
            for b in panels:
                for kk in range(b.shape[0]):
                    assert not c_groups & _bank_groups(b.addr + kk * pitch * 2, 2)


@pytest.mark.parametrize("acc16", [False, True])
def test_dense_inner_loop_runs_at_the_datapath_rate(acc16, rng):
    # one PE: each extra row of A adds KT vector x scalar fmacs of NT elements, and each costs
    # its SIMD steps at one cycle (no bank conflict) plus the gap between ops; the loop's
    # scalar work (load, dinc, branch) hides under the running op
    prof = ArchProfile("wse3")
    k, n = 16, 64
    B = rng.standard_normal((k, n))
    cycles = {
        m: gemm.dense(rng.standard_normal((m, k)), B, 1, acc16=acc16)[1].cycles for m in (4, 8)
    }
    width = prof["fp16_basic" if acc16 else "fp32_basic"]
    assert cycles[8] - cycles[4] == 4 * k * (-(-n // width) + prof["vector_gap"])


def test_sparse_root_keeps_pace_and_b_panels_arrive_under_the_axpys(rng):
    # every PE does p panels of AXPYs (one a step), which one PE alone does in `one` cycles;
    # the root sends its nonzeros with one async op while it does their AXPYs, so a step
    # costs about one panel's AXPYs, not two; and step k+1's B panel (t*t wavelets) arrives
    # on a microthread during step k's AXPYs, so only about the first is not hidden (on
    # the thread, the p panels would add p*t*t cycles)
    t = 16
    one = gemm.sparse(rng.standard_normal((t, t)), rng.standard_normal((t, t)), 1)[1].cycles
    for p in (2, 4):
        A = rng.standard_normal((t * p, t * p))
        cycles = gemm.sparse(A, rng.standard_normal((t * p, t * p)), p)[1].cycles
        assert p * one < cycles < p * one + 2 * t * t


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_cycles_and_bits_do_not_depend_on_the_lag_window(kind, rng):
    # the broadcasts run on microthreads, beside the thread: their timing is decided in
    # emulated time, not in the order the emulator runs PEs and microthreads
    A = gemm.sparse_matrix(64, 64, 0.5 if kind == "sparse" else 0.0, seed=4)
    B = rng.standard_normal((64, 64))
    run = getattr(gemm, kind)
    runs = [run(A, B, 4, overrides={"lag_window": w}) for w in (16, 256, 4096)]
    for C, r in runs[1:]:
        assert r.cycles == runs[0][1].cycles
        assert np.array_equal(C, runs[0][0])


def test_dense_is_faster_on_wse3_than_wse2(rng):
    # 32x32 tiles per PE: small tiles are bound by the fabric and the loop, not the SIMD
    A = rng.standard_normal((64, 64))
    B = rng.standard_normal((64, 64))
    _, r2 = gemm.dense(A, B, 2, "wse2")
    _, r3 = gemm.dense(A, B, 2, "wse3")
    assert r3.cycles < r2.cycles
    assert ArchProfile("wse3")["fp32_basic"] > ArchProfile("wse2")["fp32_basic"]  # why


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="not a multiple of the mesh side 3"):
        gemm.dense(np.ones((8, 8)), np.ones((8, 8)), 3)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        gemm.dense(np.ones((8, 8)), np.ones((4, 8)), 2)
    with pytest.raises(ValueError, match="sparse tiles are at most 255x128"):
        gemm.sparse(np.ones((512, 8)), np.ones((8, 8)), 2)
    with pytest.raises(ValueError, match="sparse tiles are at most 255x128, got 4x129"):
        gemm.sparse(np.ones((8, 258)), np.ones((258, 8)), 2)


def test_sparse_tile_of_the_widest_k_is_exact(rng):
    # KT = 128: the odd tile column's nonzeros read the second B panel, rows 128-255 of bp
    A = gemm.sparse_matrix(4, 256, 0.9, seed=3)
    B = rng.standard_normal((256, 4)).astype(np.float16)
    C, r = gemm.sparse(A, B, 2)
    assert np.array_equal(C, gemm.reference_dense(A, B)) and r.verified


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r


def test_bench_gemm_command_prints_table_and_json(tmp_path):
    r = cli(
        "bench",
        "gemm",
        "--m",
        16,
        "--k",
        16,
        "--n",
        16,
        "--mesh",
        "4x4",
        "--sparsity",
        "0,0.5,0.9",
        "--json",
        tmp_path / "g.json",
    )
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "GEMM 16x16x16 on 4x4 PEs, wse3, pattern random"
    head = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["sparsity"])
    assert "speedup" in lines[head] and "verified" in lines[head]
    assert all(len(ln) <= 100 for ln in lines)
    rows = lines[head + 1 : head + 4]
    assert [ln.split()[0] for ln in rows] == ["0.00", "0.50", "0.90"]
    assert all(ln.split()[-1] == "yes" for ln in rows)
    data = json.loads((tmp_path / "g.json").read_text())
    dense = data["dense"]
    assert dense["macs"] == 16**3 and len(data["sparse"]) == 3
    assert [int(ln.split()[1]) for ln in rows] == [r["cycles"] for r in data["sparse"]]
    for ln, rec in zip(rows, data["sparse"]):  # the fabric traffic the sparse run saved
        saved = f"{(1 - rec['hops'] / dense['hops']) * 100:.0f}%"
        assert ln.split()[-3] == saved.replace("-0%", "0%")
    assert lines[1].startswith(
        f"dense: {dense['cycles']} cycles, {dense['tflops_at_clock']:.2f} TFLOP/s at the clock"
    )
    for rec in [dense, *data["sparse"]]:
        assert 0 <= rec["utilisation_min"] <= rec["utilisation"] <= rec["utilisation_max"] <= 1


def test_bench_gemm_every_pattern_in_one_table_against_one_dense_run(tmp_path):
    args = ["--m", 16, "--k", 16, "--n", 16, "--mesh", "2x2", "--sparsity", "0.5,0.9"]
    r = cli("bench", "gemm", *args, "--pattern", "all", "--json", tmp_path / "g.json")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "GEMM 16x16x16 on 2x2 PEs, wse3, every pattern (form)"
    head = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["form"])
    rows = [ln.split() for ln in lines[head + 1 :]]
    forms = ["random", "2:4", "block", "moe"]
    assert [(row[0], row[1]) for row in rows] == [(f, s) for f in forms for s in ("0.50", "0.90")]
    assert all(row[-1] == "yes" for row in rows)
    data = json.loads((tmp_path / "g.json").read_text())
    assert [rec["pattern"] for rec in data["sparse"]] == [f for f in forms for _ in range(2)]
    # each form's run is the one its own --pattern gives, against the same dense run
    r2 = cli("bench", "gemm", *args, "--pattern", "block", "--json", tmp_path / "b.json")
    block = json.loads((tmp_path / "b.json").read_text())
    assert block["dense"]["cycles"] == data["dense"]["cycles"]
    assert [rec["cycles"] for rec in block["sparse"]] == [
        rec["cycles"] for rec in data["sparse"] if rec["pattern"] == "block"
    ]
    assert r2.exit_code == 0
    # 2:4 cannot go past 75% zeros: its 0.9 row skips the MACs of 75%
    two_four = [rec for rec in data["sparse"] if rec["pattern"] == "2:4"][1]
    assert two_four["macs_skipped"] == 16**3 * 3 // 4


def test_bench_gemm_matrix_market_input(tmp_path, rng):
    A = scipy.sparse.random(10, 12, density=0.3, random_state=4, format="coo")
    scipy.io.mmwrite(tmp_path / "a.mtx", A)
    r = cli("bench", "gemm", "--matrix", tmp_path / "a.mtx", "--n", 8, "--mesh", "4x4")
    assert r.exit_code == 0, r.output
    assert "GEMM 12x12x8 on 4x4 PEs" in r.output  # padded to multiples of 4
    assert r.output.splitlines()[-1].split()[-1] == "yes"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--mesh", "4x2"], "must be square"),
        (["--m", 10, "--mesh", "4x4"], "--m = 10 must be a positive multiple of the mesh side 4"),
        (["--sparsity", "0,1.5"], "must lie in [0, 1)"),
        (["--sparsity", "a"], "numbers separated by commas"),
        (["--pattern", "all", "--compare", "gpu"], "--compare gpu takes one --pattern, not all"),
    ],
)
def test_bench_gemm_bad_input(args, message):
    r = cli("bench", "gemm", *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_bench_gemm_plot(tmp_path):
    out = tmp_path / "g.png"
    r = cli(
        "bench",
        "gemm",
        "--m",
        8,
        "--k",
        8,
        "--n",
        8,
        "--mesh",
        "2x2",
        "--sparsity",
        "0,0.9",
        "--plot",
        out,
    )
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    forms = tmp_path / "forms.png"
    r = cli(
        "bench",
        "gemm",
        *["--m", 8, "--k", 8, "--n", 8, "--mesh", "2x2"],
        "--sparsity",
        "0.5",
        "--pattern",
        "all",
        "--plot",
        forms,
    )
    assert r.exit_code == 0, r.output
    assert forms.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- SUMMA on a W x H mesh


@pytest.mark.parametrize(
    "w,h,steps", [(6, 4, None), (3, 5, 2), (5, 2, 1), (1, 3, None), (3, 1, None), (5, 7, 5)]
)
def test_dense_on_a_rectangular_mesh_matches_numpy(w, h, steps, rng):
    # M over the h rows, N over the w columns, K in `steps` panels rooted in the first
    # columns and rows: the same sums in the same order as on a square mesh
    s = min(w, h) if steps is None else steps
    A = rng.standard_normal((2 * h, 3 * s))
    B = rng.standard_normal((3 * s, 5 * w))
    C, r = gemm.dense(A, B, (w, h), steps=steps)
    assert np.array_equal(C, gemm.reference_dense(A, B)) and r.verified
    assert r.mesh == f"{w}x{h}" and r.macs == 2 * h * 3 * s * 5 * w
    assert r.flops_counted == 2 * r.macs
    C2, r2 = gemm.dense(A, B, (w, h), steps=steps)
    assert np.array_equal(C, C2) and r2.cycles == r.cycles  # deterministic


def test_summa_cycles_grow_with_the_steps_not_with_columns_that_only_receive(rng):
    # each step broadcasts one 4x4 panel along the rows and one down the columns; a wider
    # mesh with the same tiles and steps only lengthens the rows' paths, which adds their
    # latency (hops) once, not a panel's time per extra column
    hop = ArchProfile("wse3")["hop_latency"]

    def cycles(w, s):
        A = rng.standard_normal((16, 4 * s))
        return gemm.dense(A, rng.standard_normal((4 * s, 4 * w)), (w, 4), steps=s)[1].cycles

    by_steps = [cycles(8, s) for s in (1, 2, 3, 4)]
    assert all(a < b for a, b in zip(by_steps, by_steps[1:]))
    assert by_steps[3] - by_steps[2] > 16  # a step costs at least its panel's 16 wavelets
    assert 0 <= cycles(16, 4) - cycles(4, 4) <= (16 - 4) * hop


def test_rectangular_shapes_and_steps_are_checked():
    with pytest.raises(ValueError, match="M = 6 is not a multiple of the mesh height 4"):
        gemm.dense(np.ones((6, 8)), np.ones((8, 12)), (6, 4))
    with pytest.raises(ValueError, match="K = 6 is not a multiple of the number of K panels 4"):
        gemm.dense(np.ones((8, 6)), np.ones((6, 12)), (6, 4))
    with pytest.raises(ValueError, match="N = 8 is not a multiple of the mesh width 6"):
        gemm.dense(np.ones((8, 8)), np.ones((8, 8)), (6, 4))
    with pytest.raises(ValueError, match=r"steps = 5 must be in 1 .. min\(width, height\) = 4"):
        gemm.dense(np.ones((8, 10)), np.ones((10, 12)), (6, 4), steps=5)
    with pytest.raises(ValueError, match="M = 0 must be positive"):
        gemm.dense(np.ones((0, 8)), np.ones((8, 12)), (6, 4))


def test_bench_summa_command(tmp_path):
    r = cli(
        "bench",
        "summa",
        "--mesh",
        "6x4",
        "--tile",
        "2x3x2",
        "--steps",
        3,
        "--json",
        tmp_path / "s.json",
    )
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "SUMMA C = A B, 8x9x12 on 6x4 PEs (3 panels of K), wse3, f32 accumulate"
    data = json.loads((tmp_path / "s.json").read_text())
    assert lines[1].startswith(f"cycles {data['cycles']:,}, ")
    assert "verified" in lines[2] and data["verified"] and data["steps"] == 3
    assert (data["m"], data["k"], data["n"], data["mesh"]) == (8, 9, 12, "6x4")
    assert data["host_seconds"] > 0 and data["peak_rss_bytes"] > 0
    assert lines[3].startswith("host: ") and "peak RSS" in lines[3]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--tile", "2x3"], "--tile must be MTxKTxNT (three positive integers), got '2x3'"),
        (["--tile", "2x0x2"], "--tile must be MTxKTxNT"),
        (["--mesh", "6x4", "--steps", 5], "--steps 5 is more than min(W, H) = 4 of 6x4"),
        (["--steps", 0], "Invalid value for '--steps'"),
        (["--mesh", "0x4"], "--mesh"),
    ],
)
def test_bench_summa_bad_input(args, message):
    r = cli("bench", "summa", *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
