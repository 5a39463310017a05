"""Figures of ESM datasets (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._dataset import atomic_path

__all__ = ["map_figure", "microstructure_figure"]


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


def orientation_colors(ms) -> np.ndarray:
    """RGB per grain from its c axis in the sample frame: hue = azimuth, saturation = inclination (0 white)."""
    from matplotlib.colors import hsv_to_rgb

    c = ms.rotations[:, :, 2] * np.sign(ms.rotations[:, 2, 2] + 1e-300)[:, None]  # c and -c are the same axis
    hue = np.mod(np.arctan2(c[:, 1], c[:, 0]) / (2 * np.pi), 1.0)
    sat = np.clip(ms.c_axis_inclination / (np.pi / 2), 0, 1)
    return hsv_to_rgb(np.stack([hue, sat, np.full_like(hue, 0.95)], -1))


def microstructure_figure(ms, height, path, *, title: str | None = None) -> Path:
    """Surface orientation map (c-axis colouring, boundaries black, pores and cracks dark grey), an x-z
    section through the middle (the voxel volume's own, or the extruded columns), and the topography."""
    from matplotlib.figure import Figure
    from skimage.segmentation import find_boundaries

    from ..microstructure import Microstructure

    colors = orientation_colors(ms)
    volume = isinstance(ms, Microstructure)
    surf = ms.surface_labels if volume else ms.labels
    rgb = colors[surf]
    rgb[find_boundaries(surf, mode="inner", connectivity=1)] = 0.1
    if volume:
        rgb[ms.void[:, :, 0]] = 0.35
    Lx, Ly = ms.extent[0] * 1e9, ms.extent[1] * 1e9
    fig = Figure(figsize=(14, 4.4), layout="constrained")
    a0, a1, a2 = fig.subplots(1, 3)
    a0.imshow(np.transpose(rgb, (1, 0, 2)), origin="lower", extent=[0, Lx, 0, Ly], interpolation="nearest")
    a0.set(title="orientation (hue: c-axis azimuth, colour depth: tilt)", xlabel="x (nm)", ylabel="y (nm)")
    j = ms.shape[1] // 2
    if volume:
        sect = colors[ms.labels[:, j, :]].transpose(1, 0, 2)
        sect[find_boundaries(ms.labels[:, j, :], mode="inner", connectivity=1).T] = 0.1
        sect[ms.void[:, j, :].T] = 0.35
        kind = "voxel volume"
    else:
        sect = np.repeat(colors[ms.labels[:, j]][None, :, :], 50, axis=0)
        kind = "columnar"
    a1.imshow(sect, origin="upper", extent=[0, Lx, ms.thickness * 1e9, 0], aspect="auto", interpolation="nearest")
    a1.set(title=f"x-z section at y = {(j + 0.5) * ms.spacing[1] * 1e9:.0f} nm ({kind})", xlabel="x (nm)",
           ylabel="depth z (nm)")
    im = a2.imshow(np.asarray(height).T * 1e9, origin="lower", extent=[0, Lx, 0, Ly], cmap="copper")
    fig.colorbar(im, ax=a2, label="height (nm)")
    a2.set(title="topography", xlabel="x (nm)", ylabel="y (nm)")
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
