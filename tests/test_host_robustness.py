"""Bad input at the host boundary (Mesh, memcpy, run, the CLI's files and numbers): a clear
error naming what is wrong, never a traceback, never a silently wrong result."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import vector_add_cycles

from wse_emu import Mesh, RunError, programs
from wse_emu.arch import ArchError
from wse_emu.cli import main
from wse_emu.memory import MeshSizeError

VECTOR_ADD = programs.path("vector_add")


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


def loaded(width=1, height=1, prog=VECTOR_ADD, **kw):
    m = Mesh(width, height, **kw)
    m.load(prog)
    return m


# ---------------------------------------------------------------- output paths


@pytest.mark.parametrize("option", ["--json", "--out"])
def test_output_into_a_missing_directory_fails_before_the_run(tmp_path, option):
    target = tmp_path / "no" / "such" / "x.npy"
    value = f"c={target}" if option == "--out" else target
    r = cli("run", VECTOR_ADD, option, value)
    assert r.exit_code == 2
    assert "does not exist" in r.output and str(tmp_path / "no" / "such") in r.output
    assert "cycles" not in r.output  # refused before running


def test_bench_outputs_into_a_missing_directory(tmp_path):
    for option in ("--json", "--plot"):
        r = cli(
            "bench",
            "gemm",
            "--m",
            "8",
            "--k",
            "8",
            "--n",
            "8",
            "--mesh",
            "2x2",
            option,
            tmp_path / "missing" / "out",
        )
        assert r.exit_code == 2 and "does not exist" in r.output, r.output
        assert "GEMM" not in r.output


# ---------------------------------------------------------------- mesh sizes and memory


@pytest.mark.parametrize(
    "size",
    [
        (0, 1),
        (1, -3),
        ("4", 1),
        (2.0, 2),
        (None, 1),
        (True, 1),
        (np.array(3.0), 2),
        (2, np.float64(2)),
    ],
)
def test_absurd_mesh_sizes_are_refused(size):
    with pytest.raises(MeshSizeError, match="mesh (width|height) must be"):
        Mesh(*size)


def test_numpy_integer_mesh_sizes_are_taken():
    assert (Mesh(np.int64(2), np.array(3)).width, Mesh(2, np.array(3)).height) == (2, 3)


def test_huge_mesh_is_refused_with_the_memory_it_needs():
    with pytest.raises(MeshSizeError, match=r"needs [\d.e+]+ GB .* this machine has [\d.]+ GB"):
        Mesh(100_000, 100_000)
    r = cli("run", VECTOR_ADD, "--mesh", "100000x100000")
    assert r.exit_code == 2 and "needs" in r.output and "GB" in r.output
    for text in ("0x4", "-1x2", "axb", "4"):
        r = cli("run", VECTOR_ADD, "--mesh", text)
        assert r.exit_code == 2 and "--mesh" in r.output


# ---------------------------------------------------------------- cost overrides


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("hop_latency", 2**70, r"hop_latency = \d+ is outside its range \[0, 1000000\]"),
        ("queue_depth", 0, r"queue_depth = 0 is outside its range \[1, 4096\]"),
        ("fp16_basic", 0, r"fp16_basic = 0 is outside its range \[1, 1024\]"),
        ("scalar", -1, r"scalar = -1 is outside"),
        ("lag_window", 0, r"lag_window = 0 is outside"),
        ("sram_bytes", 1001, "multiple of 4"),
        ("scalar", "2", "must be an integer"),
        ("scalar", 1.5, "must be an integer"),
    ],
)
def test_cost_overrides_are_range_checked(key, value, match):
    with pytest.raises(ArchError, match=match):
        Mesh(1, 1, overrides={key: value})


def test_overrides_next_to_a_profile_are_not_ignored():
    from wse_emu.arch import ArchProfile

    with pytest.raises(ValueError, match="overrides go into the ArchProfile"):
        Mesh(1, 1, ArchProfile("wse3"), overrides={"hop_latency": 3})


def test_set_with_absurd_values_is_a_clear_cli_error():
    r = cli("run", VECTOR_ADD, "--set", f"hop_latency={2**70}")
    assert r.exit_code == 2 and "hop_latency" in r.output and "outside its range" in r.output
    r = cli("run", VECTOR_ADD, "--set", "queue_depth=0")
    assert r.exit_code == 2 and "queue_depth = 0" in r.output


# ---------------------------------------------------------------- memcpy


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (("a", None), {}, TypeError, "expected numbers"),
        (("a", "text"), {}, TypeError, "expected numbers"),
        (("a", [object()] * 64), {}, TypeError, "expected numbers"),
        (("a", [[1, 2], [3]]), {}, TypeError, "cannot make an array"),
        ((None, np.ones(64)), {}, TypeError, "symbol must be a name"),
        (("nope", np.ones(64)), {}, ValueError, "has no symbol 'nope'"),
        (("a", np.ones(64)), {"x0": 1}, ValueError, "not inside"),
        (("a", np.ones(64)), {"w": 0}, ValueError, "not inside"),
        (("a", np.ones(64)), {"h": -1}, ValueError, "not inside"),
        (("a", np.ones(64)), {"x0": "0"}, TypeError, "x0 must be an integer"),
        (("a", np.ones(63)), {}, ValueError, "64 values"),
        (("a", np.ones(64)), {"cast": "maybe"}, ValueError, "cast must be"),
    ],
)
def test_memcpy_h2d_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        loaded().memcpy_h2d(*args, **kwargs)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((None,), TypeError, "symbol must be a name"),
        (("c", 0, 0, 2, 1), ValueError, "not inside"),
        (("c", -1), ValueError, "not inside"),
        (("c", 0, 0, None, 1.5), TypeError, "h must be an integer"),
        (("zz",), ValueError, "no symbol 'zz'"),
    ],
)
def test_memcpy_d2h_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        loaded().memcpy_d2h(*args)


PROG_I = """.program main
.data a {dtype}[4]
main:
    halt
"""


@pytest.mark.parametrize(
    "dtype, value, match",
    [
        ("i8", 300, r"'a' \(i8\): value 300 at index \(2,\) is outside \[-128, 127\]"),
        ("i32", 2**40, r"value 1099511627776 at index \(2,\) is outside"),
        ("i16", np.nan, "value nan"),
        ("f16", 1e6, r"value 1000000.0 at index \(2,\) is too large for f16"),
        ("bf16", 1e39, "too large for bf16"),
    ],
)
def test_memcpy_h2d_refuses_values_the_dtype_cannot_hold(dtype, value, match):
    m = Mesh(1, 1)
    m.load(PROG_I.format(dtype=dtype))
    values = np.array([1, 2, value, 4])
    with pytest.raises(ValueError, match=match):
        m.memcpy_h2d("a", values)
    assert not m.memcpy_d2h("a").any()  # nothing was written


def test_memcpy_h2d_unsafe_cast_wraps_on_request():
    m = Mesh(1, 1)
    m.load(PROG_I.format(dtype="i8"))
    m.memcpy_h2d("a", [1, 2, 300, -129], cast="unsafe")
    assert m.memcpy_d2h("a")[0, 0].tolist() == [1, 2, 44, 127]
    m.memcpy_h2d("a", [-128, 127, 0, 5])  # in range: safe is exact
    assert m.memcpy_d2h("a")[0, 0].tolist() == [-128, 127, 0, 5]


# ---------------------------------------------------------------- run


def test_run_without_launch_is_an_error_not_an_empty_done():
    m = loaded()
    m.memcpy_h2d("a", np.ones(64))
    with pytest.raises(RunError, match=r"call mesh.launch\(\)") as e:
        m.run()
    assert e.value.kind == "not-launched"
    m.launch()
    assert m.run().cycles == vector_add_cycles()
    m.load(VECTOR_ADD)  # a new program needs a new launch
    with pytest.raises(RunError, match="nothing was launched"):
        m.run()


@pytest.mark.parametrize(
    "kw",
    [
        {"max_cycles": 0},
        {"max_cycles": -5},
        {"batch": 0},
        {"max_cycles": 2**70},
        {"max_cycles": "10"},
    ],
)
def test_run_refuses_odd_limits(kw):
    m = loaded()
    m.launch()
    with pytest.raises((ValueError, TypeError), match="max_cycles|batch"):
        m.run(**kw)


def test_load_refuses_objects_that_are_not_programs():
    with pytest.raises(TypeError, match="load takes"):
        Mesh(1, 1).load(42)


# ---------------------------------------------------------------- --json and --out


def test_json_records_status_program_arch_mesh_and_version(tmp_path):
    prog = tmp_path / "dead.wsa"
    prog.write_text(".program p\n.data c f32[2]\nmain:\n    recv r1, 1\n    halt\n")
    r = cli(
        "run",
        prog,
        "--json",
        tmp_path / "s.json",
        "--out",
        f"c={tmp_path / 'c.npy'}",
        "--max-cycles",
        1000,
    )
    assert r.exit_code == 3
    rec = json.loads((tmp_path / "s.json").read_text())
    assert rec["status"] in ("deadlock", "fault") and rec["message"]
    assert rec["program"] == str(prog) and rec["arch"] == "wse3" and rec["mesh"] == [1, 1]
    assert rec["max_cycles"] == 1000 and rec["wse_emu_version"] != ""
    r = cli("run", VECTOR_ADD, "--json", tmp_path / "ok.json")
    assert json.loads((tmp_path / "ok.json").read_text())["status"] == "done"


def test_out_records_the_origin_of_the_rectangle_it_saves(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(
        ".program idle\nmain:\n    halt\n"
        ".program work\n.data v f32[2]\nmain:\n    mov r1, 1.0\n    st.f32 [v], r1\n    halt\n"
        ".layout\n.place idle at 0, 0 size 1, 1\n.place work at 1, 0 size 3, 1\n"
    )
    r = cli(
        "run",
        prog,
        "--mesh",
        "4x1",
        "--out",
        f"v={tmp_path / 'v.npy'}",
        "--json",
        tmp_path / "s.json",
    )
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "v.npy").shape == (1, 3, 2)
    assert "v of PEs from (1,0), shape (1, 3, 2)" in r.output
    rec = json.loads((tmp_path / "s.json").read_text())
    assert rec["outputs"]["v"]["origin"] == [1, 0]


def test_out_without_npy_suffix_reports_the_file_written(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(".data v f32[2]\nmain:\n    halt\n")
    r = cli("run", prog, "--out", f"v={tmp_path / 'res'}", "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "res.npy").exists()
    assert f"wrote {tmp_path / 'res.npy'}:" in r.output
    rec = json.loads((tmp_path / "s.json").read_text())
    assert rec["outputs"]["v"]["path"] == str(tmp_path / "res.npy")


def test_out_of_a_symbol_whose_shape_differs_fails_before_the_run(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(
        ".program a\n.data v f32[2]\nmain:\n    halt\n"
        ".program b\n.data v f32[3]\nmain:\n    halt\n"
        ".layout\n.place a at 0, 0 size 1, 1\n.place b at 1, 0 size 1, 1\n"
    )
    r = cli("run", prog, "--mesh", "2x1", "--out", f"v={tmp_path / 'v.npy'}")
    assert r.exit_code == 2, r.output
    assert "error: --out v:" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "v.npy").exists()


def test_in_of_an_array_of_strings_is_a_clear_error(tmp_path):
    prog = tmp_path / "p.wsa"
    prog.write_text(".data v f32[2]\nmain:\n    halt\n")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    r = cli("run", prog, "--in", f"v={tmp_path / 's.npy'}")
    assert r.exit_code == 2, r.output
    assert "error: --in v:" in r.output and "expected numbers" in r.output


# ---------------------------------------------------------------- bench gemm --matrix


def write_mtx(path, A):
    import scipy.io
    import scipy.sparse

    scipy.io.mmwrite(path, scipy.sparse.coo_matrix(A))
    return path


@pytest.mark.parametrize(
    "text",
    [
        "not a matrix market file\n",
        "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1\n",
        "%%MatrixMarket matrix coordinate complex general\n2 2 1\n1 1 1.0 2.0\n",
        "",
    ],
)
def test_bench_gemm_bad_matrix_is_a_clear_error(tmp_path, text):
    path = tmp_path / "bad.mtx"
    path.write_text(text)
    r = cli("bench", "gemm", "--mesh", "2x2", "--n", "4", "--matrix", path)
    assert r.exit_code == 2 and f"error: --matrix {path}" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Warning" not in r.output


def test_bench_gemm_matrix_of_tiny_values_is_reported_and_not_verified(tmp_path):
    rng = np.random.default_rng(3)
    A = np.where(rng.random((6, 6)) < 0.5, rng.standard_normal((6, 6)) * 1e-9, 0.0)
    path = write_mtx(tmp_path / "tiny.mtx", A)
    r = cli(
        "bench",
        "gemm",
        "--mesh",
        "4x4",
        "--n",
        "4",
        "--matrix",
        path,
        "--json",
        tmp_path / "g.json",
    )
    nnz = int(np.count_nonzero(A))
    assert f"6x6 (zero-padded to 8x8 for the mesh), {nnz} nonzeros" in r.output, r.output
    assert f"sparsity {1 - nnz / 36:.4f}" in r.output
    assert f"{nnz} underflowed to 0" in r.output
    assert r.exit_code == 1 and "NO" in r.output  # not "verified": the values were lost
    rec = json.loads((tmp_path / "g.json").read_text())
    assert rec["matrix"]["shape"] == [6, 6] and rec["matrix"]["fp16_underflowed"] == nnz
    assert rec["sparse"][0]["sparsity"] == pytest.approx(1 - nnz / 36)


def test_bench_gemm_matrix_is_verified_against_the_values_given(tmp_path):
    rng = np.random.default_rng(4)
    A = np.where(rng.random((8, 8)) < 0.5, rng.standard_normal((8, 8)), 0.0)
    path = write_mtx(tmp_path / "a.mtx", A)
    r = cli("bench", "gemm", "--mesh", "2x2", "--n", "4", "--matrix", path)
    assert r.exit_code == 0, r.output
    assert "8x8, " in r.output and "values changed by rounding" in r.output
    assert "yes" in r.output


@pytest.mark.parametrize("option", [("--sparsity", "0.5"), ("--pattern", "2:4")])
def test_bench_gemm_matrix_refuses_sparsity_and_pattern(tmp_path, option):
    path = write_mtx(tmp_path / "a.mtx", np.eye(4))
    r = cli("bench", "gemm", "--mesh", "2x2", "--n", "4", "--matrix", path, *option)
    assert r.exit_code == 2 and f"{option[0]} does not apply with --matrix" in r.output


# ---------------------------------------------------------------- disasm


def test_disasm_of_a_corrupt_binary_is_a_clear_error(tmp_path):
    from wse_emu import isa

    np.savez(
        tmp_path / "b.npz",
        code=np.zeros((2, isa.ENCODING_WORDS), np.int32),
        bases=np.array([[0]]),
        names=np.array(["x"]),
    )
    np.savez(
        tmp_path / "f.npz",
        code=np.zeros((2, isa.ENCODING_WORDS)),
        bases=np.array([0]),
        names=np.array(["x"]),
    )
    np.save(tmp_path / "plain.npy", np.zeros(3))
    for name in ("b.npz", "f.npz", "plain.npy"):
        r = cli("disasm", tmp_path / name)
        assert r.exit_code == 2 and f"error: {tmp_path / name}" in r.output, r.output
