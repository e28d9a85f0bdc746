"""`wse-emu cluster gemm`, the same on one process and on every rank of `mpiexec -n R`.

Every rank checks the input itself and then all agree on it, so a refusal ends every rank
with a message and exit code 2. Once the step runs, any exception on a rank is printed as
`rank r: error: ...` and ends the whole job (MPI_Abort), so no rank is left waiting; the
collectives time out (--timeout) if a rank dies without a word."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..arch import ArchError, ArchProfile
from ..asm import AsmError
from ..kernels import dataparallel
from ..memory import check_memory
from ..paths import unwritable
from ..progress import COMPILE_NOTE, engine_is_cold
from ..runtime import parse_mesh
from ..stats import version
from . import comm as comms
from . import step
from .swarmx import SwarmX, split_overrides

EXIT_UNVERIFIED, EXIT_USAGE, EXIT_RUNTIME = 1, 2, 3  # as the rest of the command line


def _say(prefix: str, message: str) -> None:
    """One write per message, so the ranks' lines do not interleave in mpiexec's output."""
    sys.stderr.write(f"{prefix}error: {message}\n")
    sys.stderr.flush()


def _setup(opts: dict, size: int):
    """(profile, SwarmX, mesh side) for the options, or ValueError / ArchError / AsmError
    saying what is wrong with them."""
    fabric_over, wafer_over = split_overrides(opts["overrides"])
    profile = ArchProfile(opts["arch"], wafer_over)
    fabric = SwarmX.load(profile, fabric_over)
    wafers = opts["wafers"]
    if not 1 <= wafers <= fabric.max_wafers:
        raise ValueError(
            f"--wafers {wafers}: a cluster has 1 to {fabric.max_wafers} wafers on "
            f"{profile.name} (swarmx.max_wafers in isa/costs.toml)"
        )
    if wafers % size:
        raise ValueError(
            f"--wafers {wafers} is not a multiple of the {size} MPI ranks: every rank runs "
            "the same number of wafers"
        )
    w, h = parse_mesh(opts["mesh"])
    if w != h:
        raise ValueError(f"--mesh must be square (P x P) for the dense GEMM, got {opts['mesh']}")
    check_memory(w, h, profile)
    if opts["timeout"] <= 0:
        raise ValueError(f"--timeout must be positive, got {opts['timeout']:g}")
    problem = unwritable(opts["json_path"]) if opts["json_path"] else None
    if problem:
        raise ValueError(f"--json {problem}")
    dataparallel.check(opts["batch"], opts["k"], opts["n"], wafers, w, profile)
    return profile, fabric, w


def make_inputs(batch: int, k: int, n: int, seed: int):
    """X, W, dY of the step, from the seed (on rank 0 only: the others receive them)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, k))
    W = rng.standard_normal((k, n)) / np.sqrt(k)
    dY = rng.standard_normal((batch, n)) / np.sqrt(batch)
    return X, W, dY


def _record(r: step.StepResult) -> dict:
    return {
        "shape": {"batch": r.batch, "k": r.k, "n": r.n},
        "wafers": r.wafers,
        "ranks": r.ranks,
        "mesh": r.mesh,
        "arch": r.arch,
        "swarmx": vars(r.swarmx),
        "per_wafer": [dict(vars(w), cycles=w.cycles) for w in r.runs],
        "broadcast_bytes": r.broadcast_bytes,
        "reduce_bytes": r.reduce_bytes,
        "broadcast_cycles": r.broadcast_cycles,
        "slowest_wafer_cycles": r.slowest_cycles,
        "reduce_cycles": r.reduce_cycles,
        "total_cycles": r.total_cycles,
        "Y": dict(
            zip(("max_abs_error", "tolerance", "verified"), r.checks[0]), bits=step.digest(r.Y)
        ),
        "dW": dict(
            zip(("max_abs_error", "tolerance", "verified"), r.checks[1]), bits=step.digest(r.dW)
        ),
        "host_seconds": r.host_seconds,
        "wse_emu_version": version(),
    }


def gemm(**opts) -> int:
    """Run the command with the CLI's options; the exit code (every rank returns one, or the
    job is aborted)."""
    prefix = f"rank {comms.env_rank()}: " if comms.launched() else ""
    try:
        comm = comms.connect(opts["timeout"])
    except comms.ClusterError as e:
        _say(prefix, str(e))
        return EXIT_USAGE
    problem = None
    try:
        profile, fabric, p = _setup(opts, comm.size)
    except (ValueError, ArchError, AsmError) as e:
        problem = str(e)
    except Exception as e:  # not expected; still refused on every rank, not left hanging
        problem = f"{type(e).__name__}: {e}"
    try:
        if not comm.agree(problem is None):
            _say(prefix, problem or "another rank refused the input (see its message)")
            return EXIT_USAGE
        shape = (opts["batch"], opts["k"], opts["n"])
        inputs = None
        if comm.rank == 0:
            inputs = make_inputs(*shape, opts["seed"])
            if engine_is_cold():
                print(COMPILE_NOTE, file=sys.stderr, flush=True)
        result = step.run(comm, shape, opts["wafers"], p, profile, fabric, inputs)
    except Exception as e:  # any failure on a rank ends the job, never leaves it waiting
        known = isinstance(e, comms.ClusterError)
        _say(prefix, str(e) if known else f"{type(e).__name__}: {e}")
        comm.abort(EXIT_RUNTIME)
        return EXIT_RUNTIME
    if result is None:
        return 0
    print("\n".join(step.report(result)), flush=True)
    if opts["json_path"]:
        Path(opts["json_path"]).write_text(json.dumps(_record(result), indent=1))
    return 0 if result.verified else EXIT_UNVERIFIED
