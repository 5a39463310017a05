"""Grain-boundary contrast of ESM maps against frequency and D_gb/D_ab, from a sweep store.

    esmsim sweep examples/gb_contrast_sweep.toml --out gb_store
    python examples/plot_gb_contrast.py gb_store --out gb_contrast.png

For every point of ``STORE/sweep.nc`` the contrast is

    C = <A>_near / <A>_far - 1,

the mean ESM amplitude ``A`` (m/V) of the tips within one pixel of a ground-truth grain-boundary pixel,
over the mean of the tips farther than ``far`` from every boundary pixel
(:func:`esmsim.compare.boundary_contrast`). The boundaries are the dataset's ``boundary_mask``
(the voxel grid ``y_voxel, x_voxel``), carried onto the tips (``y, x``): a tip is a boundary tip when
a boundary voxel centre is within half a tip pitch of it, which on the default scan
(one tip per voxel centre) is the mask itself. The mask is completed from ``grain_labels``: as
stored it leaves out grain 0's side of its boundaries (``find_boundaries`` takes label 0 for
background) and, on a periodic film, the boundaries across the periodic seam. On a periodic film
the distances wrap around.

The figure has the contrast against frequency (one line per D_gb/D_ab), against D_gb/D_ab (one line
per frequency) and the amplitude map of the highest-contrast point with its boundary tips. The
dashed marks in the first panel are the frequencies ``f* = D_gb / (2 pi d^2)`` where Li runs down a
boundary as far as the tip width ``d`` in one period (``sqrt(D_gb/omega) = d``). The table is
printed and, with ``--csv``, written.

What to expect (the model's answer on the example's 100 nm film with 5 grains, tip width d = 10 nm,
boundary width delta = 1 nm): C grows with D_gb/D_ab at every frequency (0.4-0.6, 0.7-2.0 and
0.8-4.8 for 1e2, 1e3 and 1e4 over 1 kHz - 1 MHz) and with frequency: it is lowest at the lowest
frequencies, rises through ``f*`` and levels off about two decades above it, where
``sqrt(D_gb/omega)`` is down to ~d/10 (a check to 10 MHz: 1e2 flat at 0.60 from 100 kHz, 1e3 at
2.0-2.1 from 1 MHz, 1e4 still rising, 6.3 at 10 MHz). The plateaus scale as sqrt(D_gb/D_ab), about
0.6 (delta/d) sqrt(D_gb/D_ab): both the boundary's and the grains' Li layers then scale as
omega^-1/2. The contrast is a kinetic effect: in the static limit (omega d^2 / D -> 0) the ESM
response does not depend on D at all, so C must vanish as f -> 0. Below the plateau the boundary's
Li runs deeper than the tip width, the film thickness and the boundary spacing, where it adds
little to the surface displacement (Mindlin weighting ~ 1/depth^2), while the grain interiors keep
gaining as omega^-1/2: the contrast falls as the diffusion length grows past the tip width and the
boundary spacing. With D_gb = D_ab the contrast is -0.03 to -0.02: orientation contrast between
the grains (which grains hold the tips far from every boundary), not transport.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

FREQUENCY = "excitation.frequency"
ENHANCEMENT = "material.gb_enhancement"


# ---------------------------------------------------------------------------------------- ground truth on tips


def _coord(point, name: str) -> np.ndarray:
    """A coordinate of one point: shared (``x_voxel``) or stacked per point (``x_voxel_of_point``)."""
    for key in (name, f"{name}_of_point"):
        if key in point.variables:
            return np.asarray(point[key].values, float)
    raise KeyError(f"{name!r} is not in the dataset")


def provenance(store, run: str) -> dict:
    """The provenance JSON of one run of a store (``STORE/runs/<run>.json``); {} if missing."""
    path = Path(store) / "runs" / f"{run}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def is_periodic(store, run: str) -> bool:
    """Whether the run's film is periodic in x and y (from its provenance; False if unknown)."""
    prov = provenance(store, run)
    return bool(prov.get("config_si", {}).get("microstructure", {}).get("periodic", False))


def distance_to(mask, spacing, *, wrap: bool) -> np.ndarray:
    """Distance (m) of every pixel centre to the nearest True pixel centre, periodic if ``wrap``."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if not wrap:
        return ndimage.distance_transform_edt(~mask, sampling=spacing)
    ny, nx = mask.shape
    return ndimage.distance_transform_edt(~np.tile(mask, (3, 3)), sampling=spacing)[ny:2 * ny, nx:2 * nx]


def voxel_boundaries(point, *, periodic: bool) -> np.ndarray:
    """The ground-truth boundary voxels (``y_voxel, x_voxel``): every voxel with a neighbour (4-connected) in
    another grain, on a periodic film across the periodic seam too.

    This is the dataset's ``boundary_mask`` completed from ``grain_labels``: ``boundary_mask`` is
    ``skimage.segmentation.find_boundaries(labels, mode="inner")``, which takes label 0 for background
    and so leaves out grain 0's side of its boundaries, and does not wrap around a periodic film.
    """
    from skimage.segmentation import find_boundaries

    mask = np.asarray(point["boundary_mask"].values, bool)
    labels = np.asarray(point["grain_labels"].values)
    ny, nx = labels.shape
    if periodic:
        full = find_boundaries(np.tile(labels, (3, 3)), mode="inner", connectivity=1, background=-1)
        full = full[ny:2 * ny, nx:2 * nx]
    else:
        full = find_boundaries(labels, mode="inner", connectivity=1, background=-1)
    return mask | full


def tip_pitch(point) -> tuple[float, float]:
    """Distance (m) between neighbouring tips along the image's y and x (any scan rotation)."""
    xf, yf = _coord(point, "x_film"), _coord(point, "y_film")
    dx = np.hypot(xf[0, 1] - xf[0, 0], yf[0, 1] - yf[0, 0]) if xf.shape[1] > 1 else np.nan
    dy = np.hypot(xf[1, 0] - xf[0, 0], yf[1, 0] - yf[0, 0]) if xf.shape[0] > 1 else np.nan
    dx = dy if np.isnan(dx) else dx
    dy = dx if np.isnan(dy) else dy
    return float(dy), float(dx)


def boundaries_on_tips(point, *, periodic: bool) -> tuple[np.ndarray, tuple[float, float], bool]:
    """The ground-truth boundary tips of one point of a sweep.

    Parameters
    ----------
    point : xarray.Dataset
        One point of ``sweep.nc`` (``ds.isel(point=i)``) or one run's dataset.
    periodic : bool
        The film is periodic in x and y.

    Returns
    -------
    mask : ndarray of bool, shape (ny, nx)
        On the tip grid (``y, x``): True where a boundary voxel centre is within half a tip pitch of the
        tip (on a voxel-centred scan: the boundary voxels themselves).
    pitch : (float, float)
        Tip pitch (dy, dx) in m.
    wraps : bool
        The image is the whole periodic film (unrotated): its distances wrap around.
    """
    from scipy.spatial import cKDTree

    vox = voxel_boundaries(point, periodic=periodic)
    xv, yv = _coord(point, "x_voxel"), _coord(point, "y_voxel")
    hx = float(xv[1] - xv[0]) if xv.size > 1 else float(2 * xv[0])
    hy = float(yv[1] - yv[0]) if yv.size > 1 else float(2 * yv[0])
    ny_v, nx_v = vox.shape
    size = (nx_v * hx, ny_v * hy)
    iy, ix = np.nonzero(vox)
    centres = np.column_stack([xv[ix], yv[iy]])
    xf, yf = _coord(point, "x_film"), _coord(point, "y_film")
    tips = np.column_stack([xf.ravel(), yf.ravel()])
    if periodic:
        tips = np.mod(tips, size)
    tree = cKDTree(centres, boxsize=size if periodic else None)
    dist = tree.query(tips)[0].reshape(xf.shape) if len(centres) else np.full(xf.shape, np.inf)
    pitch = tip_pitch(point)
    mask = dist <= 0.5 * max(pitch) * (1 + 1e-9)
    ny, nx = mask.shape
    unrotated = np.allclose(yf, yf[:, :1]) and np.allclose(xf, xf[:1, :])
    wraps = bool(periodic and unrotated and np.isclose(nx * pitch[1], nx_v * hx, rtol=1e-6)
                 and np.isclose(ny * pitch[0], ny_v * hy, rtol=1e-6))
    return mask, pitch, wraps


def contrast(image, mask, *, pitch, far: float, wraps: bool) -> float:
    """:func:`esmsim.compare.boundary_contrast` of a tip image, with periodic distances if ``wraps``.

    For a periodic image the image is surrounded by copies of its mask whose pixels are NaN: the
    distances to the boundaries wrap around, and only the image's own pixels are averaged.
    """
    from esmsim.compare import boundary_contrast

    image = np.asarray(image, float)
    if not wraps:
        return boundary_contrast(image, mask, spacing=pitch, far=far)
    ny, nx = image.shape
    big = np.full((3 * ny, 3 * nx), np.nan)
    big[ny:2 * ny, nx:2 * nx] = image
    return boundary_contrast(big, np.tile(mask, (3, 3)), spacing=pitch, far=far)


# ------------------------------------------------------------------------------------------------------ table


def _per_point(ds, name: str, fallback: str | None = None) -> np.ndarray:
    for key in (name, fallback):
        if key is not None and key in ds.variables:
            return np.asarray(ds[key].values, float)
    raise KeyError(name)


def crossover_frequency(store, run: str, tip_width: float) -> float:
    """``f* = D_gb / (2 pi d^2)`` (Hz) of a run: Li runs down a boundary ``d`` deep in one period."""
    from esmsim.config import parse_config

    material = provenance(store, run).get("config_si", {}).get("material")
    if material is None:
        return float("nan")
    mat = parse_config({"material": material}).material()
    if "D_ab" not in mat:
        return float("nan")
    return float(mat["gb_enhancement"] * mat["D_ab"] / (2 * np.pi * tip_width ** 2))


def contrast_table(store, *, far: float | None = None, image: str = "amplitude") -> list[dict]:
    """The grain-boundary contrast of every point of ``STORE/sweep.nc``.

    Parameters
    ----------
    store : path
        A sweep store whose points vary ``excitation.frequency`` and/or ``material.gb_enhancement``.
    far : float, optional
        Tips farther than this from every boundary tip are "far" (m); default the larger of the tip
        width and two tip pitches.
    image : str
        The image variable (default ``amplitude``, m/V; ``sho_amplitude`` for band excitation).

    Returns
    -------
    list of dict
        One row per point: ``point``, ``run``, ``frequency_Hz``, ``gb_enhancement``, ``contrast``,
        ``n_near``, ``n_far``, ``far_m``, ``f_star_Hz``, ``mean_amplitude``.
    """
    from esmsim.io import read_netcdf

    store = Path(store)
    ds = read_netcdf(store / "sweep.nc")
    if image not in ds:
        raise KeyError(f"{image!r} is not in {store / 'sweep.nc'}; variables: {', '.join(ds.data_vars)}")
    if ENHANCEMENT not in ds.coords:
        raise KeyError(f"{store / 'sweep.nc'} has no {ENHANCEMENT!r} coordinate: sweep material.gb_enhancement")
    freq = _per_point(ds, FREQUENCY, "band_center_Hz" if "band_center_Hz" in ds else "frequency_Hz")
    enh = _per_point(ds, ENHANCEMENT)
    widths = _per_point(ds, "tip_width_m")
    rows = []
    for i in range(ds.sizes["point"]):
        point = ds.isel(point=i)
        run = str(point["run"].values)
        mask, pitch, wraps = boundaries_on_tips(point, periodic=is_periodic(store, run))
        f = far if far is not None else max(widths[i], 2 * max(pitch))
        if f < max(pitch) * (1 - 1e-9):
            raise ValueError(f"far: got {f:g} m; expected at least one tip pitch ({max(pitch):g} m), or the near "
                             "tips (within one pitch of a boundary) would count as far too")
        f *= 1 + 1e-6  # a tip exactly `far` away is not far (distances are multiples of the pitch up to rounding)
        img = np.asarray(point[image].values, float)
        dist = distance_to(mask, pitch, wrap=wraps)
        rows.append({
            "point": int(point["point"].values), "run": run, "frequency_Hz": float(freq[i]),
            "gb_enhancement": float(enh[i]), "contrast": contrast(img, mask, pitch=pitch, far=f, wraps=wraps),
            "n_near": int((dist <= max(pitch) * (1 + 1e-9)).sum()), "n_far": int((dist > f).sum()), "far_m": f,
            "f_star_Hz": crossover_frequency(store, run, widths[i]), "mean_amplitude": float(np.nanmean(img)),
            "pitch_m": max(pitch),
        })
    return rows


# ----------------------------------------------------------------------------------------------------- figure


def plot(rows: list[dict], out, *, store=None, image: str = "amplitude"):
    """Contrast against frequency and against D_gb/D_ab, and the amplitude map of the highest-contrast point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freqs = sorted({r["frequency_Hz"] for r in rows})
    enhs = sorted({r["gb_enhancement"] for r in rows})
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    ax = axes[0]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(enhs)))
    for e, c in zip(enhs, colors):
        sel = sorted((r for r in rows if r["gb_enhancement"] == e), key=lambda r: r["frequency_Hz"])
        ax.plot([r["frequency_Hz"] for r in sel], [r["contrast"] for r in sel], "o-", color=c,
                label=f"$D_{{gb}}/D_{{ab}}$ = {e:g}")
        fs = sel[0]["f_star_Hz"]
        if np.isfinite(fs) and freqs[0] <= fs <= freqs[-1]:
            ax.axvline(fs, color=c, ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("excitation frequency f (Hz)")
    ax.set_ylabel(r"contrast $\langle A\rangle_{near}/\langle A\rangle_{far} - 1$ (dimensionless)")
    ax.set_title("against frequency (dashed: $f^* = D_{gb}/2\\pi d^2$)")
    ax.legend(fontsize=8)
    ax = axes[1]
    colors = plt.cm.plasma(np.linspace(0, 0.85, len(freqs)))
    for f, c in zip(freqs, colors):
        sel = sorted((r for r in rows if r["frequency_Hz"] == f), key=lambda r: r["gb_enhancement"])
        ax.plot([r["gb_enhancement"] for r in sel], [r["contrast"] for r in sel], "s-", color=c,
                label=f"f = {f / 1e3:g} kHz")
    ax.set_xscale("log")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel(r"$D_{gb}/D_{ab}$ (dimensionless)")
    ax.set_ylabel("contrast (dimensionless)")
    ax.set_title("against grain-boundary enhancement")
    ax.legend(fontsize=8)
    ax = axes[2]
    finite = [r for r in rows if np.isfinite(r["contrast"])]
    if store is not None and finite:
        from esmsim.io import read_netcdf

        best = max(finite, key=lambda r: r["contrast"])
        ds = read_netcdf(Path(store) / "sweep.nc")
        point = ds.sel(point=best["point"])
        mask, pitch, _ = boundaries_on_tips(point, periodic=is_periodic(store, best["run"]))
        img = np.asarray(point[image].values, float)
        ny, nx = img.shape
        ext = [0, nx * pitch[1] * 1e9, ny * pitch[0] * 1e9, 0]
        scale, unit = (1e12, "pm/V") if point[image].attrs.get("units") == "m/V" else \
            (1.0, point[image].attrs.get("units", ""))
        im = ax.imshow(img * scale, extent=ext, cmap="magma")
        yy, xx = np.nonzero(mask)
        ax.plot((xx + 0.5) * pitch[1] * 1e9, (yy + 0.5) * pitch[0] * 1e9, ".", color="cyan", ms=2.5,
                label="ground-truth boundary tips")
        fig.colorbar(im, ax=ax, label=f"{image} ({unit})")
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
        ax.set_title(f"f = {best['frequency_Hz'] / 1e3:g} kHz, $D_{{gb}}/D_{{ab}}$ = {best['gb_enhancement']:g}: "
                     f"C = {best['contrast']:.2f}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.axis("off")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def format_table(rows: list[dict]) -> str:
    lines = [f"{'point':>5} {'f (Hz)':>10} {'D_gb/D_ab':>10} {'contrast':>9} {'near':>5} {'far':>4} "
             f"{'<A> (m/V)':>10} {'f* (Hz)':>10}"]
    for r in rows:
        lines.append(f"{r['point']:>5} {r['frequency_Hz']:>10.4g} {r['gb_enhancement']:>10.4g} {r['contrast']:>9.3f} "
                     f"{r['n_near']:>5} {r['n_far']:>4} {r['mean_amplitude']:>10.3g} {r['f_star_Hz']:>10.3g}")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    """Command line: ``plot_gb_contrast.py STORE [--out FIG.png] [--far NM] [--csv TABLE.csv]``; returns the rows."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store", help="sweep store (esmsim sweep ... --out STORE)")
    p.add_argument("--out", default="gb_contrast.png", help="figure (PNG); default gb_contrast.png")
    p.add_argument("--far", type=float, default=None,
                   help="'far' tips are farther than this from every boundary tip, in nm (default: the larger of "
                        "the tip width and two tip pitches)")
    p.add_argument("--image", default="amplitude", help="image variable (default amplitude, m/V)")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")
    args = p.parse_args(argv)
    rows = contrast_table(args.store, far=None if args.far is None else args.far * 1e-9, image=args.image)
    print(format_table(rows))
    if any(not np.isfinite(r["contrast"]) for r in rows):
        print("contrast NaN: no tip is farther than `far` from every boundary (or none is near one); give a smaller "
              "--far or a film with larger grains")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    path = plot(rows, args.out, store=args.store, image=args.image)
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
