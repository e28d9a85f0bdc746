"""A cluster of wafers (wse_emu/cluster): the data-parallel GEMM step against NumPy, the SwarmX
cycle model against its formula and the cost table, and the same command in one process and
under `mpiexec -n 2` / `-n 4` (same output, same bits); bad input and failing ranks end
every rank with a message and a non-zero exit, never a hang or a traceback."""

import math
import os
import subprocess
import sys
import time
from fractions import Fraction
from itertools import count
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from wse_emu import isa
from wse_emu.arch import ArchError, ArchProfile
from wse_emu.cli import main
from wse_emu.cluster import comm as comms
from wse_emu.cluster import step
from wse_emu.cluster.command import make_inputs
from wse_emu.cluster.swarmx import SwarmX, split_overrides
from wse_emu.kernels import dataparallel, gemm

P, BATCH, K, N, WAFERS = 2, 16, 8, 8, 4  # tiny: each wafer a 2x2 mesh, 4 rows of the batch
ARGS = ["cluster", "gemm", "--mesh", f"{P}x{P}", "--batch", BATCH, "--k", K, "--n", N]
ARGS = [str(a) for a in ARGS]
RUN_TIMEOUT = 240  # seconds for one subprocess; the runs themselves take a few
MPIEXEC = Path(sys.executable).with_name("mpiexec")


@pytest.fixture(scope="module")
def serial_step():
    """The step in this process (which also warms the engine's cache for the subprocesses)."""
    profile = ArchProfile("wse3")
    fabric = SwarmX.load(profile)
    X, W, dY = make_inputs(BATCH, K, N, seed=0)  # the command's, as --seed 0
    result = step.run(comms.Serial(), (BATCH, K, N), WAFERS, P, profile, fabric, (X, W, dY))
    return result, (X, W, dY)


def test_step_matches_numpy_bit_for_bit(serial_step):
    r, (X, W, dY) = serial_step
    X16, W16, dY16 = (np.asarray(a, np.float16) for a in (X, W, dY))
    Y_ref, dW_ref = dataparallel.reference(X16, W16, dY16, WAFERS)
    assert r.Y.dtype == r.dW.dtype == np.float32
    assert np.array_equal(r.Y, Y_ref) and np.array_equal(r.dW, dW_ref)
    # and within the GEMM bound of float64 NumPy, as the step itself says
    assert r.verified
    exact = X16.astype(np.float64).T @ dY16.astype(np.float64)
    assert np.abs(r.dW - exact).max() <= gemm.tolerance(X16.T, dY16, BATCH, False).max()
    # the gradient is really summed over the wafers: one wafer's share is far from it
    first = gemm.reference_dense(X16[: BATCH // WAFERS].T, dY16[: BATCH // WAFERS])
    assert not np.allclose(first, r.dW)


def test_step_cycles_follow_the_model(serial_step):
    r, (X, W, _) = serial_step
    rows = BATCH // WAFERS
    _, fwd = gemm.dense(X[:rows], W, P)
    assert [w.wafer for w in r.runs] == list(range(WAFERS))
    assert all(w.forward_cycles == fwd.cycles for w in r.runs)
    assert all(w.cycles == w.forward_cycles + w.gradient_cycles > 0 for w in r.runs)
    f = r.swarmx
    assert r.broadcast_bytes == K * N * 2 and r.reduce_bytes == K * N * 4
    assert r.broadcast_cycles == f.cycles(K * N * 2, WAFERS)
    assert r.reduce_cycles == f.cycles(K * N * 4, WAFERS)
    assert r.total_cycles == (r.broadcast_cycles + max(w.cycles for w in r.runs) + r.reduce_cycles)


def _expected_cycles(table, arch, nbytes, wafers, clock_mhz):
    """The README's rule, from isa/costs.toml: levels x latency + bytes at the bandwidth,
    each rounded up to whole cycles (exact fractions, no float rounding)."""
    row = {key: v[arch] for key, v in table.items()}
    levels = next(lv for lv in count(1) if row["fanout"] ** lv >= wafers)
    clock_hz = clock_mhz * 10**6
    latency = math.ceil(Fraction(row["hop_ns"], 10**9) * clock_hz)
    seconds = Fraction(8 * nbytes, row["links"] * row["link_gbit_s"] * 10**9)
    return levels * latency + math.ceil(seconds * clock_hz)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("wafers", [1, 2, 16, 17, 256, 257])
@pytest.mark.parametrize("nbytes", [0, 1, 2048, 10**6, 3 * 10**9])
def test_swarmx_model_is_the_cost_table_rule(arch, wafers, nbytes):
    table = isa.costs()["swarmx"]
    profile = ArchProfile(arch)
    got = SwarmX.load(profile).cycles(nbytes, wafers)
    assert got == _expected_cycles(table, arch, nbytes, wafers, profile["clock_mhz"])


def test_swarmx_overrides_and_sources():
    for key, row in isa.costs()["swarmx"].items():
        assert row["source"].startswith("assumed:"), key
    base = SwarmX.load(ArchProfile("wse3"))
    fast = SwarmX.load(ArchProfile("wse3"), {"link_gbit_s": 2 * base.link_gbit_s})
    n = 10**8
    assert fast.transfer_cycles(n) == math.ceil(base.transfer_cycles(n) / 2)
    # the wafer clock moves the conversion to cycles
    slow = SwarmX.load(ArchProfile("wse3", {"clock_mhz": 425}))
    assert slow.latency_cycles() == math.ceil(base.latency_cycles() / 2)
    assert split_overrides({"swarmx.fanout": 4, "links": 2, "hop_latency": 3}) == (
        {"fanout": 4, "links": 2},
        {"hop_latency": 3},
    )
    with pytest.raises(ArchError, match="fanout = 1 is outside"):
        SwarmX.load(ArchProfile("wse3"), {"fanout": 1})
    with pytest.raises(ArchError, match="unknown SwarmX parameter"):
        split_overrides({"swarmx.speed": 1})


def test_launcher_detection(monkeypatch):
    for name in comms.SIZE_VARIABLES + comms.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert comms.launched() is None and isinstance(comms.connect(), comms.Serial)
    monkeypatch.setenv("PMI_SIZE", "1")
    assert comms.launched() is None  # mpiexec -n 1: one process, no MPI needed
    monkeypatch.setenv("PMI_SIZE", "3")
    monkeypatch.setenv("PMI_RANK", "2")
    assert comms.launched() == ("PMI_SIZE", 3) and comms.env_rank() == 2
    monkeypatch.delenv("PMI_SIZE")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert comms.launched() == ("OMPI_COMM_WORLD_SIZE", 4)


def test_a_pending_exchange_times_out():
    class Never:
        def Test(self):
            return False

    ranks = comms.Ranks.__new__(comms.Ranks)
    ranks.timeout = 0.05
    t0 = time.monotonic()
    with pytest.raises(comms.ClusterError, match="no gather from the other ranks within 0.05 s"):
        ranks._wait(Never(), "gather")
    assert time.monotonic() - t0 < 2


def _run(*args, ranks=0, env=None, timeout=RUN_TIMEOUT):
    """`wse-emu ARGS`, under mpiexec -n ranks when ranks > 0: (exit code, stdout, stderr)."""
    cmd = [sys.executable, "-m", "wse_emu.cli", *map(str, args)]
    if ranks:
        cmd = [str(MPIEXEC), "-n", str(ranks), *cmd]
    clean = {k: v for k, v in os.environ.items() if k not in comms.SIZE_VARIABLES}
    clean.pop(step.FAULT_VARIABLE, None)
    p = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**clean, **(env or {})}
    )
    return p.returncode, p.stdout, p.stderr


def _same_lines(out: str) -> list[str]:
    """All but the last line ('host N s: ...', the only one that may differ)."""
    lines = out.strip().splitlines()
    assert lines[-1].startswith("host ")
    return lines[:-1]


def test_mpi_ranks_give_the_same_output_and_bits(serial_step, tmp_path):
    r, _ = serial_step
    runs = {}
    for ranks in (0, 2, 4):
        path = tmp_path / f"{ranks}.json"
        code, out, err = _run(*ARGS, "--json", path, ranks=ranks)
        assert code == 0, err
        runs[ranks] = out, path.read_text()
    lines = _same_lines(runs[0][0])
    assert f"bits {step.digest(r.Y)}" in lines[-2] and f"bits {step.digest(r.dW)}" in lines[-1]
    assert f"{r.total_cycles:,}" in "\n".join(lines)
    for ranks in (2, 4):
        assert _same_lines(runs[ranks][0]) == lines
        assert runs[ranks][0].strip().endswith(f"{WAFERS} wafers over {ranks} MPI ranks")
    assert runs[0][0].strip().endswith(f"{WAFERS} wafers in one process")


BAD = [
    (["--wafers", "0"], "--wafers 0: a cluster has 1 to 2048 wafers"),
    (["--wafers", "4096"], "--wafers 4096: a cluster has 1 to 2048 wafers"),
    (["--wafers", "3"], "the batch of 16 rows does not split over 3 wafers"),
    (["--k", "7"], "K = 7 is not a multiple of the mesh side 2"),
    (["--wafers", "16"], "batch slice (16 / 16) = 1 is not a multiple of the mesh side 2"),
    (["--k", "1024", "--n", "1024"], "the forward GEMM (4x1024 by 1024x1024) does not fit"),
    (["--mesh", "2x4"], "--mesh must be square"),
    (["--set", "swarmx.fanout=1"], "fanout = 1 is outside its range"),
    (["--timeout", "0"], "--timeout must be positive"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_input_in_one_process(extra, message):
    r = CliRunner().invoke(main, ARGS + extra)
    assert isinstance(r.exception, SystemExit) and r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.output


def test_bad_input_under_mpi_ends_every_rank():
    code, out, err = _run(*ARGS, "--batch", "24", "--wafers", "3", ranks=2)
    assert code == 2 and out == "" and "Traceback" not in err
    for rank in (0, 1):
        line = f"rank {rank}: error: --wafers 3 is not a multiple of the 2 MPI ranks: every "
        assert line + "rank runs the same number of wafers\n" in err


@pytest.mark.parametrize(
    "fault, message",
    [
        ("raise:1", "rank 1: error: RuntimeError: fault injected by WSE_EMU_CLUSTER_FAULT"),
        ("hang:1", "rank 0: error: no gather from the other ranks within 3 s"),
        ("exit:1", ""),  # dies without a word: the launcher ends the job, exit code non-zero
    ],
)
def test_a_failing_rank_ends_every_rank(fault, message):
    t0 = time.monotonic()
    env = {step.FAULT_VARIABLE: fault}
    code, out, err = _run(*ARGS, "--timeout", "3", ranks=2, env=env, timeout=120)
    assert code != 0 and "Traceback" not in err
    assert message in err
    assert "verified" not in out
    assert time.monotonic() - t0 < 120


def test_mpi4py_missing_names_the_install_command(tmp_path):
    fake = tmp_path / "mpi4py"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named mpi4py')\n")
    env = {"PYTHONPATH": str(tmp_path), "PMI_SIZE": "2", "PMI_RANK": "1"}
    code, out, err = _run(*ARGS, env=env, timeout=120)
    assert code == 2 and out == "" and "Traceback" not in err
    assert "rank 1: error: started by an MPI launcher (PMI_SIZE)" in err
    assert comms.INSTALL_HINT in err
