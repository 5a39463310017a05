"""Figures of ESM datasets (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._dataset import atomic_path

__all__ = ["map_figure", "band_figure", "spectroscopy_figure", "relaxation_figure", "loop_figure",
           "microstructure_figure"]


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
    return _write_png(fig, path, title, dpi=110)


def _write_png(fig, path, title, dpi=100) -> Path:
    """Give the figure its title and write it atomically as PNG."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _scan_extent(ds):
    """Scan-frame axes (nm), pixel steps and the imshow extent of a map dataset."""
    x = ds["x"].values * 1e9
    y = ds["y"].values * 1e9
    dx = x[1] - x[0] if x.size > 1 else 1.0
    dy = y[1] - y[0] if y.size > 1 else 1.0
    return x, y, dx, dy, [x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2]


def _scale_bar(ax, width_nm):
    """A physical scale bar (a round length near 1/4 of the image width) in the lower right corner."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    target = width_nm / 4
    length = max(v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if v <= max(target, 1))
    ax.add_artist(AnchoredSizeBar(ax.transData, length, f"{length} nm", "lower right", pad=0.4, color="white",
                                  frameon=False, size_vertical=width_nm / 120))


def band_figure(ds, path, *, title: str | None = None) -> Path:
    """Six panels of a band-excitation map: height, SHO amplitude, phase and resonance (fits of the recorded
    spectra) with the true boundaries overlaid, ground-truth grains and the true Li response; physical scale
    bars and colour bars with units. Written atomically as PNG."""
    import matplotlib
    from matplotlib.figure import Figure

    x, y, dx, dy, ext = _scan_extent(ds)
    # ground truth in the scan frame (rotated or offset scans too): boundaries within half a pixel
    dist = ds["boundary_distance"].values * 1e9
    half = 0.5 * max(abs(dx), abs(dy))
    bmask = dist < half
    fit = "sho_amplitude" in ds
    sfx = "" if fit else "_true"
    panels = [
        ("height", ds["height"].values * 1e9, "height (nm)", "copper", "height channel"),
        ("amp", ds[f"sho_amplitude{sfx}"].values * 1e3, "SHO amplitude A (mV)", "inferno",
         "BE amplitude" + (" (fit)" if fit else " (truth)")),
        ("phase", np.degrees(ds[f"sho_phase{sfx}"].values), "SHO phase (deg)", "twilight_shifted", "BE phase"),
        ("f0", ds[f"sho_frequency{sfx}"].values / 1e3, "resonance f0 (kHz)", "viridis", "contact resonance"),
        ("grains", None, None, None, f"grains ({ds.sizes['grain']}) and boundaries (ground truth)"),
        ("true", ds["amplitude"].values * 1e12, "|u3| (pm/V)", "inferno", "Li response |u3| (ground truth)"),
    ]
    fig = Figure(figsize=(14, 8.6), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for ax, (key, data, label, cmap, name) in zip(axes, panels):
        if key == "grains":
            rgb = matplotlib.colormaps["tab20"](np.mod(ds["grain_id"].values, 20))[..., :3]
            rgb[bmask] = 0.15
            ax.imshow(rgb, origin="lower", extent=ext, interpolation="nearest")
        else:
            lo, hi = np.nanpercentile(data, [1, 99]) if key in ("amp", "true", "f0") else (None, None)
            im = ax.imshow(data, origin="lower", extent=ext, cmap=cmap, interpolation="nearest", vmin=lo, vmax=hi)
            fig.colorbar(im, ax=ax, label=label, shrink=0.85)
            if key in ("amp", "phase", "f0"):
                ax.contour(x, y, dist, levels=[half], colors="cyan", linewidths=0.5, alpha=0.6)
        _scale_bar(ax, ext[1] - ext[0])
        ax.set(title=name, xlabel="x (nm)", ylabel="y (nm)")
    return _write_png(fig, path, title)


def spectroscopy_figure(ds, path, *, title: str | None = None) -> Path:
    """Bode plot of frequency spectroscopy: amplitude (pm/V, log-log) and phase (deg) per tip position."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    f = ds["frequency"].values
    for p in ds["point"].values:
        label = (f"({ds['x'].values[p] * 1e9:.0f}, {ds['y'].values[p] * 1e9:.0f}) nm, "
                 f"{ds['boundary_distance'].values[p] * 1e9:.0f} nm from a boundary")
        a1.loglog(f, ds["amplitude"].values[p] * 1e12, "o-", ms=3, label=label)
        a2.semilogx(f, ds["phase"].values[p], "o-", ms=3)
    a1.set(xlabel="frequency (Hz)", ylabel="|u3| (pm/V)", title="amplitude")
    a1.legend(fontsize=7)
    a2.set(xlabel="frequency (Hz)", ylabel="phase (deg)", title="phase")
    return _write_png(fig, path, title)


def relaxation_figure(ds, path, *, title: str | None = None) -> Path:
    """Relaxation spectroscopy: curves (|u3| in pm, log-log) with their fitted reference; for a map also the
    fitted D, its single-crystal ground truth (log10 m^2/s) and fit against truth. Written atomically as PNG."""
    from matplotlib.figure import Figure

    is_map = "y" in ds["relaxation_u"].dims
    fig = Figure(figsize=(15, 4.4) if is_map else (6, 4.4), layout="constrained")
    axes = fig.subplots(1, 4 if is_map else 1)
    axes = np.atleast_1d(axes)
    t = ds["time"].values
    u = ds["relaxation_u"].values.reshape(-1, t.size)
    amp = ds["fit_amplitude"].values.ravel()
    model = ds["fit_curve"].values.reshape(-1, t.size)
    pick = np.unique(np.linspace(0, u.shape[0] - 1, min(6, u.shape[0])).astype(int))
    for k in pick:
        line, = axes[0].loglog(t, np.abs(u[k]) * 1e12, "o", ms=3)
        axes[0].loglog(t, np.abs(model[k]) * 1e12, "-", color=line.get_color(), lw=1,
                       label=f"D_fit = {ds['D_fit'].values.ravel()[k]:.2e} m²/s" if np.isfinite(amp[k]) else None)
    axes[0].set(xlabel="time after the pulse (s)", ylabel="|u3| (pm)", title="relaxation (points) and fit (lines)")
    axes[0].legend(fontsize=7)
    if is_map:
        x, y, dx, dy, ext = _scan_extent(ds)
        fit, truth = np.log10(ds["D_fit"].values), np.log10(ds["D_single_crystal"].values)
        both = np.concatenate([fit[np.isfinite(fit)], truth[np.isfinite(truth)]])
        lo, hi = (both.min(), both.max()) if both.size else (None, None)
        for ax, data, name in ((axes[1], fit, "fitted D"), (axes[2], truth, "single-crystal D (ground truth)")):
            im = ax.imshow(data, origin="lower", extent=ext, cmap="viridis", interpolation="nearest", vmin=lo, vmax=hi)
            fig.colorbar(im, ax=ax, label="log10 D (m²/s)", shrink=0.85)
            ax.contour(x, y, ds["boundary_distance"].values * 1e9, levels=[0.5 * max(abs(dx), abs(dy))],
                       colors="white", linewidths=0.6)
            _scale_bar(ax, ext[1] - ext[0])
            ax.set(title=name, xlabel="x (nm)", ylabel="y (nm)")
        sc = axes[3].scatter(truth.ravel(), fit.ravel(), c=ds["boundary_distance"].values.ravel() * 1e9, s=8,
                             cmap="magma")
        fig.colorbar(sc, ax=axes[3], label="distance to a boundary (nm)", shrink=0.85)
        if lo is not None:
            axes[3].plot([lo, hi], [lo, hi], "k--", lw=0.8)
        axes[3].set(xlabel="log10 D single crystal (truth)", ylabel="log10 D fitted", title="fit against truth")
    return _write_png(fig, path, title)


def loop_figure(ds, path, *, title: str | None = None) -> Path:
    """Voltage spectroscopy: off-field and on-field loops (pm against V) at up to six tips; for a map also the
    remanent response and threshold maps with the true boundaries. Written atomically as PNG."""
    from matplotlib.figure import Figure

    is_map = "y" in ds["off_field"].dims
    fig = Figure(figsize=(16, 4.4) if is_map else (11, 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 4 if is_map else 2))
    v = ds["dc_bias"].values
    dist = ds["boundary_distance"].values.ravel() * 1e9
    for ax, key, name in ((axes[0], "off_field", "off field (0 V reads)"), (axes[1], "on_field", "on field")):
        u = ds[key].values.reshape(-1, v.size) * 1e12
        for k in np.unique(np.linspace(0, u.shape[0] - 1, min(6, u.shape[0])).astype(int)):
            ax.plot(np.concatenate([[0.0], v]), np.concatenate([[0.0], u[k]]), "o-", ms=2.5, lw=1,
                    label=f"{dist[k]:.0f} nm from a boundary")
        ax.set(xlabel="DC bias (V)", ylabel="u3 (pm)", title=name)
        ax.axhline(0, color="0.7", lw=0.6)
    axes[0].legend(fontsize=7)
    if is_map:
        x, y, dx, dy, ext = _scan_extent(ds)
        for ax, key, scale, label, cmap in ((axes[2], "remanent", 1e12, "remanent response (pm)", "RdBu_r"),
                                            (axes[3], "threshold_voltage", 1.0, "threshold (V)", "viridis")):
            im = ax.imshow(ds[key].values * scale, origin="lower", extent=ext, cmap=cmap, interpolation="nearest")
            fig.colorbar(im, ax=ax, label=label, shrink=0.85)
            ax.contour(x, y, ds["boundary_distance"].values * 1e9, levels=[0.5 * max(abs(dx), abs(dy))],
                       colors="k", linewidths=0.6)
            _scale_bar(ax, ext[1] - ext[0])
            ax.set(title=label.split(" (")[0], xlabel="x (nm)", ylabel="y (nm)")
    return _write_png(fig, path, title)


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
    return _write_png(fig, path, title)
