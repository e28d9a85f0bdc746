"""Where a cluster's wafers run: all in this process (Serial), or spread over the ranks of
an MPI job started with `mpiexec -n R` (Ranks). Both offer the same few collectives on NumPy
arrays, so the step's code is one; under MPI they move the arrays' bytes with buffer-based
nonblocking calls (no pickling) and poll them against a deadline, so a rank that died or
hangs makes the others fail with a message instead of waiting forever.

mpi4py is imported only when the environment says an MPI launcher started this process with
more than one rank (PMI_SIZE from MPICH's and Intel's launchers and Slurm's PMI, or
OMPI_COMM_WORLD_SIZE from Open MPI's, PMIX_RANK from a PMIx one)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
INSTALL_HINT = "pip install 'wse-emu[mpi]' (or: pip install mpi4py mpich)"
DEFAULT_TIMEOUT = 3600.0  # seconds a rank waits for the others at one collective
POLL_FIRST, POLL_MAX = 1e-4, 0.05  # seconds between tests of a pending request


class ClusterError(RuntimeError):
    """The cluster could not run: MPI missing or misconfigured, a timeout, a failed rank."""


def launched() -> tuple[str, int] | None:
    """(variable, ranks) when an MPI launcher started this process as one of several ranks;
    None for a plain process (or `mpiexec -n 1`). ranks is 0 when only a PMIx rank says so
    (MPI tells the size)."""
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return (name, int(value)) if int(value) > 1 else None
    if os.environ.get("PMIX_RANK", "").isdigit():
        return "PMIX_RANK", 0
    return None


def env_rank() -> int:
    """This process's rank as the launcher's environment gives it (0 if none): for messages
    printed before, or without, MPI."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def connect(timeout: float = DEFAULT_TIMEOUT):
    """Serial() in a plain process; Ranks over MPI.COMM_WORLD under an MPI launcher."""
    found = launched()
    if found is None:
        return Serial()
    name, size = found
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ClusterError(
            f"started by an MPI launcher ({name}) but mpi4py cannot be imported ({e}): "
            f"{INSTALL_HINT}"
        ) from None
    comm = MPI.COMM_WORLD
    if size and comm.Get_size() != size:
        raise ClusterError(
            f"the launcher started {size} ranks ({name}) but MPI sees {comm.Get_size()}: "
            "mpiexec belongs to another MPI library than mpi4py's (use the one installed "
            "with it, e.g. the mpich wheel's mpiexec)"
        )
    return Ranks(comm, MPI, timeout)


class Serial:
    """One process, every wafer: the collectives are copies."""

    rank, size = 0, 1

    def agree(self, ok: bool) -> bool:
        return ok

    def bcast(self, buf: np.ndarray) -> None:
        pass

    def scatter(self, send: np.ndarray | None, recv: np.ndarray) -> None:
        recv[...] = send

    def gather(self, send: np.ndarray, recv: np.ndarray | None) -> None:
        recv[...] = send

    def abort(self, code: int):
        sys.exit(code)


def _bytes(a: np.ndarray | None):
    """a's bytes as a view (so MPI writes into a itself)."""
    if a is None:
        return None
    assert a.flags.c_contiguous, "MPI buffers must be C-contiguous"
    return a.reshape(-1).view(np.uint8)


class Ranks:
    """The ranks of an MPI job; rank 0 is the weight store's side (it holds the inputs and
    gets the results). Arrays move as bytes, so any dtype goes and nothing is pickled."""

    def __init__(self, comm, mpi, timeout: float):
        self.comm, self.mpi, self.timeout = comm, mpi, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def _wait(self, request, what: str) -> None:
        """Poll request until done; ClusterError after timeout seconds."""
        deadline = time.monotonic() + self.timeout
        pause = POLL_FIRST
        while not request.Test():
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"no {what} from the other ranks within {self.timeout:g} s: a rank died "
                    "or is stuck (raise --timeout if its wafers need longer)"
                )
            time.sleep(pause)
            pause = min(2 * pause, POLL_MAX)

    def agree(self, ok: bool) -> bool:
        """True when every rank is ok: input refused on one rank is refused on all."""
        mine = np.array([int(ok)], np.int32)
        every = np.zeros(1, np.int32)
        self._wait(self.comm.Iallreduce(mine, every, op=self.mpi.MIN), "agreement on the input")
        return bool(every[0])

    def bcast(self, buf: np.ndarray) -> None:
        """buf (contiguous, same shape on every rank) from rank 0 to all, in place."""
        self._wait(self.comm.Ibcast([_bytes(buf), self.mpi.BYTE], root=0), "broadcast")

    def scatter(self, send: np.ndarray | None, recv: np.ndarray) -> None:
        """Rank 0's send split into size equal consecutive parts, part r into rank r's recv."""
        data = [_bytes(send), self.mpi.BYTE] if self.rank == 0 else None
        self._wait(self.comm.Iscatter(data, [_bytes(recv), self.mpi.BYTE], root=0), "scatter")

    def gather(self, send: np.ndarray, recv: np.ndarray | None) -> None:
        """Every rank's send, in rank order, into rank 0's recv."""
        out = [_bytes(recv), self.mpi.BYTE] if self.rank == 0 else None
        self._wait(self.comm.Igather([_bytes(send), self.mpi.BYTE], out, root=0), "gather")

    def abort(self, code: int):
        """End every rank of the job (after this rank's message is out)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)
