"""Pictures of a run: per-PE busy, stalled and idle fractions of the run's cycles over the
mesh, one panel each with its colour bar, and below them the wavelets that crossed each
link, headless (matplotlib's Agg backend). The fractions are Stats' per-PE arrays divided
by the run's cycles (unplaced PEs are blank); the links are Stats.links, one arrow per
link that carried any wavelet, from a PE towards the neighbour it feeds, coloured by its
count (links with none are not drawn)."""

from __future__ import annotations

import numpy as np

PANELS = (("busy", "Greens"), ("stalled", "Reds"), ("idle", "Blues"))
# unit steps per Stats.links direction (north east south west); y grows southwards
STEP = np.array([(0, -1), (1, 0), (0, 1), (-1, 0)], np.float64)
SIDE = 0.12  # arrows of opposite directions between two PEs are drawn this far apart


def fractions(stats) -> dict:
    """{panel: float[h, w]} of each PE's cycles over the run's, NaN where nothing is placed."""
    cycles = max(stats.cycles, 1)
    out = {}
    for name, _ in PANELS:
        frac = getattr(stats, name) / cycles
        out[name] = np.where(stats.placed, frac, np.nan)
    return out


def link_arrows(stats):
    """(x, y, u, v, count) of each link that carried wavelets: the arrow's tail and vector
    (from 0.2 to 0.8 of the way to the neighbour, shifted to its right-hand side)."""
    ys, xs, ds = np.nonzero(stats.links)
    step = STEP[ds]
    right = np.stack([-step[:, 1], step[:, 0]], axis=1)  # clockwise normal (y down)
    tail = np.stack([xs, ys], axis=1) + 0.2 * step + SIDE * right
    vec = 0.6 * step
    return tail[:, 0], tail[:, 1], vec[:, 0], vec[:, 1], stats.links[ys, xs, ds]


def _links_panel(fig, ax, stats):
    from matplotlib.ticker import MaxNLocator
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    ax.imshow(
        np.where(stats.placed, 0.12, np.nan), cmap="Greys", vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_xticks(np.arange(stats.width + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(stats.height + 1) - 0.5, minor=True)
    scale = scale_of(stats)
    ax.grid(which="minor", color="white", linewidth=1.5 if scale <= 16 else 0.3)
    ax.tick_params(which="minor", length=0)
    x, y, u, v, count = link_arrows(stats)
    arrows = ax.quiver(
        x,
        y,
        u,
        v,
        count,
        cmap="viridis",
        angles="xy",
        scale_units="xy",
        scale=1,
        width=0.05 / scale,
        headwidth=3.5,
        headlength=4,
        headaxislength=3.5,
    )
    if len(count):
        arrows.set_clim(0, count.max())
    ax.set_xlim(-0.5, stats.width - 0.5)
    ax.set_ylim(stats.height - 0.5, -0.5)
    ax.set_title(f"wavelets per link ({int(stats.links.sum()):,} link crossings)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bar = make_axes_locatable(ax).append_axes("right", size="2.5%", pad=0.1)
    fig.colorbar(arrows, cax=bar, label="wavelets")
    return arrows


def scale_of(stats) -> int:
    return max(stats.width, stats.height)


def draw(stats, path=None, title: str = ""):
    """Write the three panels to path (PNG, or any format matplotlib infers from it); with
    no path, return the matplotlib Figure (a notebook shows it)."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("a heatmap needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = fractions(stats)
    aspect = stats.height / max(stats.width, 1)
    row = max(3.0, 4.0 * min(aspect, 2.5))
    fig = plt.figure(figsize=(13, 2.2 * row + 1.2))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.2])
    axes = [fig.add_subplot(grid[0, k]) for k in range(3)]
    _links_panel(fig, fig.add_subplot(grid[1, :]), stats)
    for ax, (name, cmap) in zip(axes, PANELS):
        im = ax.imshow(data[name], cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"{name} fraction")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    head = title + "\n" if title else ""
    fig.suptitle(
        f"{head}{stats.width}x{stats.height} PEs, {stats.cycles:,} cycles, "
        f"utilisation {100 * stats.utilisation:.1f}%"
    )
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
