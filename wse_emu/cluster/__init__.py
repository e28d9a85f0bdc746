"""A cluster of wafers joined by SwarmX (swarmx.py), each wafer a full emulated mesh, run in
one process or over MPI ranks (comm.py); the data-parallel GEMM step (step.py) and its
command (command.py)."""
