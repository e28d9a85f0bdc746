"""Shared helpers. The Numba engine compiles once per machine (cache=True) and is shared by
every test in the session."""

import numpy as np
import pytest

from wse_emu import Mesh, assemble
from wse_emu.arch import ArchProfile


def run_program(
    src,
    mesh=(1, 1),
    arch="wse3",
    inputs=None,
    consts=None,
    max_cycles=None,
    check=True,
    overrides=None,
):
    """Assemble src (text), load, copy inputs {sym: array for the whole mesh}, run.
    Returns (mesh, result)."""
    w, h = mesh
    m = Mesh(w, h, arch, overrides=overrides)
    m.load(assemble(src, w, h, m.arch, consts=consts))
    for sym, arr in (inputs or {}).items():
        m.memcpy_h2d(sym, arr)
    m.launch()
    return m, m.run(max_cycles=max_cycles, check=check)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pair_layout(sender: str, receiver: str, color: int) -> str:
    """A .layout section: sender at (0,0), receiver at (1,0), color routed east between them."""
    return f"""
.layout
.place {sender} at 0, 0 size 1, 1
.place {receiver} at 1, 0 size 1, 1
.route {color} at 0, 0 size 1, 1 rx ramp tx east
.route {color} at 1, 0 size 1, 1 rx west tx ramp
"""


def vector_add_cycles(arch="wse3", n=64):
    """Cycles of programs/vector_add.wsa on one PE by the cost table's rules: three DSD
    writes, the vadd's start-up, elements and drain (halt waits for it), the halt."""
    p = ArchProfile(arch)
    op = p["vector_startup"] + -(-n // p["fp16_basic"]) + p["vector_drain"]
    return 3 * p["dsd_write"] + op + p["scalar"]


def source_line(path, text):
    """Number of the first line of the file at path that contains text (so tests do not
    break when a program gains a line above it)."""
    lines = path.read_text().splitlines()
    return next(i for i, s in enumerate(lines, 1) if text in s)


def timed_run(data, setup, body, arch="wse3", overrides=None, inputs=None, check=True):
    """Run setup, then body between two %cycle reads (the second waits for the datapath).
    Returns (mesh, result, cycles of body: the reads' difference minus the first read's own
    instruction); cycles are 0 when the run did not finish."""
    src = (
        f"{data}\n.data t i32[2]\nmain:\n{setup}\n    mov r14, %cycle\n{body}\n"
        "    mov r15, %cycle\n    st.i32 [t], r14\n    st.i32 [t + 4], r15\n    halt\n"
    )
    m, res = run_program(src, arch=arch, overrides=overrides, inputs=inputs, check=check)
    if res.status != "done":
        return m, res, 0
    t = m.memcpy_d2h("t")[0, 0]
    return m, res, int(t[1] - t[0]) - ArchProfile(arch, overrides or {})["scalar"]
