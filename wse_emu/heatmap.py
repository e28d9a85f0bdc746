"""Pictures of a run: per-PE busy, stalled and idle fractions of the run's cycles over the
mesh, one panel each with its colour bar, headless (matplotlib's Agg backend). The numbers
drawn are Stats' per-PE arrays divided by the run's cycles; unplaced PEs are blank."""

from __future__ import annotations

import numpy as np

PANELS = (("busy", "Greens"), ("stalled", "Reds"), ("idle", "Blues"))


def fractions(stats) -> dict:
    """{panel: float[h, w]} of each PE's cycles over the run's, NaN where nothing is placed."""
    cycles = max(stats.cycles, 1)
    out = {}
    for name, _ in PANELS:
        frac = getattr(stats, name) / cycles
        out[name] = np.where(stats.placed, frac, np.nan)
    return out


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
    fig, axes = plt.subplots(1, 3, figsize=(13, max(3.0, 4.0 * min(aspect, 2.5)) + 0.8))
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
