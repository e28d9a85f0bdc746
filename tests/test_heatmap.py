"""Per-link wavelet counts: in Stats and --json, equal to what the routes say, and drawn in
the heatmap's link panel exactly as counted."""

import json

import numpy as np
from click.testing import CliRunner
from matplotlib.quiver import Quiver

from wse_emu import Mesh, assemble, parse_file, programs
from wse_emu.cli import main
from wse_emu.heatmap import SIDE, STEP

ROW = 0  # row_broadcast's color
N = 32  # and its values per row


def row_broadcast(width=8, height=4):
    linked = assemble(parse_file(programs.path("row_broadcast")), width, height)
    m = Mesh(width, height)
    m.load(linked)
    m.launch()
    return linked, m.run().stats


def test_link_counts_follow_the_routes_on_row_broadcast():
    for width, height in ((8, 4), (3, 2)):
        linked, st = row_broadcast(width, height)
        # each row's root sends N wavelets once; every link its route's tx names carries them
        tx = linked.tx[:, ROW, 0].reshape(height, width)
        expected = np.stack([(tx >> d) & 1 for d in range(4)], axis=-1) * N
        assert (st.links == expected).all()
        assert (st.delivered == ((tx >> 4) & 1) * N).all()
        assert st.links.sum() == st.hops.sum() == height * (width - 1) * N


def test_the_heatmap_draws_the_stats_link_counts():
    _, st = row_broadcast()
    fig = st.heatmap()
    (arrows,) = [c for ax in fig.axes for c in ax.collections if isinstance(c, Quiver)]
    counts = np.asarray(arrows.get_array())
    assert len(counts) == np.count_nonzero(st.links)
    drawn = np.zeros_like(st.links)
    for (x, y), u, v, c in zip(arrows.get_offsets(), arrows.U, arrows.V, counts):
        d = int(np.flatnonzero((np.sign([u, v]) == STEP).all(axis=1))[0])
        right = np.array([-STEP[d, 1], STEP[d, 0]])
        px, py = np.rint(np.array([x, y]) - 0.2 * STEP[d] - SIDE * right).astype(int)
        drawn[py, px, d] = c
    assert (drawn == st.links).all()
    lo, hi = arrows.get_clim()
    assert lo == 0 and hi == st.links.max()


def test_json_carries_the_link_counts(tmp_path):
    out, png = tmp_path / "s.json", tmp_path / "h.png"
    r = CliRunner().invoke(
        main,
        ["run", str(programs.path("row_broadcast")), "--json", str(out), "--heatmap", str(png)],
    )
    assert r.exit_code == 0, r.output
    per_pe = json.loads(out.read_text())["per_pe"]
    _, st = row_broadcast()
    assert per_pe["links"] == st.links.tolist()
    assert per_pe["delivered"] == st.delivered.tolist()
    assert per_pe["links_order"] == ["north", "east", "south", "west"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
