"""The calibration ports (bench/calibration/*.wsa) compute what NumPy says, at small sizes.
Their cycle ratios against the published numbers are a report (bench/calibration/run.py),
not asserted here."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "calibration"))

import ports  # noqa: E402

from wse_emu import Mesh, assemble  # noqa: E402

# (port, mesh width, height, arch, consts): small versions of every published setup, plus
# meshes with middle rows / columns so every branch of each kernel runs.
SMALL = [
    ("c1 off", ports.C1, 2, 2, "wse2", {"PM": 8, "OFF": 1}),
    ("c1 aligned", ports.C1, 2, 2, "wse2", {"PM": 8, "OFF": 0}),
    ("c1 middle row+col", ports.C1, 3, 3, "wse2", {"PM": 12, "OFF": 1}),
    ("c2", ports.C2, 6, 1, "wse2", {"NX": 16}),
    ("c3", ports.C3, 2, 2, "wse2", {"NB": 5, "ITERS": 2}),
    ("c3 padded", ports.C3, 1, 1, "wse2", {"NB": 4, "ITERS": 1}),
    *[
        (f"c4 {name} {arch}", port, w, h, arch, consts)
        for arch in ("wse2", "wse3")
        for name, port, w, h, consts in (
            ("copy", ports.C4_COPY, 2, 2, {"K": 4}),
            ("pure_vertical", ports.C4_VERTICAL, 2, 2, {"K": 4}),
            ("reduce", ports.C4_REDUCE, 5, 1, {"K": 8}),
            ("reduce_pipelined", ports.C4_REDUCE_PIPE, 5, 1, {"K": 8}),
            ("laplacian", ports.C4_LAPLACIAN, 5, 4, {"K": 4}),
        )
    ],
]


@pytest.mark.parametrize("port,w,h,arch,consts", [s[1:] for s in SMALL], ids=[s[0] for s in SMALL])
def test_port_matches_numpy(port, w, h, arch, consts):
    m = ports.measure(port, w, h, arch, consts)
    assert m.verified
    assert 0 < m.cycles <= m.run_cycles


# The symbol each port's check reads its result from, and where (x0, y0) on the mesh.
RESULT = {
    "c1_fmuls.wsa": ("C", -1, 0),
    "c2_chain_reduce.wsa": ("data", 0, 0),
    "c3_matvec.wsa": ("y", 0, 0),
    "c4_copy.wsa": ("out", 0, 0),
    "c4_pure_vertical.wsa": ("out", 0, 0),
    "c4_reduce.wsa": ("out", 0, 0),
    "c4_reduce_pipelined.wsa": ("out", 0, 0),
    "c4_laplacian.wsa": ("out", 1, 1),
}


@pytest.mark.parametrize(
    "port,w,h,arch,consts",
    [s[1:] for s in SMALL if s[4] == "wse2"],
    ids=[s[0] for s in SMALL if s[4] == "wse2"],
)
def test_check_rejects_a_wrong_result(port, w, h, arch, consts):
    """Each check is not vacuous: one result element off by a little fails it."""
    mesh = Mesh(w, h, arch)
    mesh.load(assemble(port.source(), w, h, arch, consts=consts))
    ctx = port.fill(mesh, np.random.default_rng(0), consts)
    mesh.launch()
    mesh.run()
    assert port.check(mesh, ctx, consts)
    sym, x0, y0 = RESULT[port.wsa]
    x0 %= w
    value = mesh.memcpy_d2h(sym, x0, y0, 1, 1)
    value.flat[0] = np.nextafter(value.flat[0], np.float32(np.inf)) * np.float32(1.01)
    mesh.memcpy_h2d(sym, value, x0, y0, 1, 1)
    assert not port.check(mesh, ctx, consts)


def test_rows_cover_every_calibration_id():
    assert {r.id for r in ports.ROWS} == {"C1", "C2", "C3", "C4"}
    assert all(r.published > 0 and r.arch in ("wse2", "wse3") for r in ports.ROWS)
