"""Figures of ESM datasets (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._dataset import atomic_path

__all__ = ["map_figure"]


def map_figure(ds, path, *, title: str | None = None) -> Path:
    """Three panels: grain map with boundaries, amplitude (pm/V), phase (deg); written atomically as PNG."""
    import matplotlib
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure  # no pyplot: no global state, no screen needed

    x = ds["x"].values * 1e9
    y = ds["y"].values * 1e9
    xv = ds["x_voxel"].values * 1e9
    yv = ds["y_voxel"].values * 1e9
    ext = [xv[0] - (xv[1] - xv[0]) / 2, xv[-1] + (xv[1] - xv[0]) / 2,
           yv[0] - (yv[1] - yv[0]) / 2, yv[-1] + (yv[1] - yv[0]) / 2]
    fig = Figure(figsize=(13.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    labels = ds["grain_labels"].values
    rgb = matplotlib.colormaps["tab20"](np.mod(labels, 20))[..., :3]
    rgb[ds["boundary_mask"].values > 0] = 0.15
    axes[0].imshow(rgb, origin="lower", extent=ext, interpolation="nearest")
    axes[0].set_title(f"grains ({ds.sizes['grain']}) and boundaries (ground truth)")
    mext = [x[0] - (x[1] - x[0]) / 2 if x.size > 1 else ext[0], x[-1] + (x[1] - x[0]) / 2 if x.size > 1 else ext[1],
            y[0] - (y[1] - y[0]) / 2 if y.size > 1 else ext[2], y[-1] + (y[1] - y[0]) / 2 if y.size > 1 else ext[3]]
    amp = ds["amplitude"].values * 1e12
    positive = amp[amp > 0]
    norm = LogNorm(positive.min(), positive.max()) if positive.size and positive.max() > 3 * positive.min() else None
    im = axes[1].imshow(amp, origin="lower", extent=mext, cmap="inferno", interpolation="nearest", norm=norm)
    fig.colorbar(im, ax=axes[1], label="ESM amplitude (pm/V)")
    axes[1].set_title("amplitude" + (" (log scale)" if norm is not None else ""))
    im = axes[2].imshow(ds["phase"].values, origin="lower", extent=mext, cmap="twilight_shifted", interpolation="nearest")
    fig.colorbar(im, ax=axes[2], label="phase (deg)")
    axes[2].set_title("phase")
    for ax in axes:
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
