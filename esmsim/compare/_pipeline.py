"""Measured scan -> microstructure -> simulation -> comparison.

:func:`microstructure_from_scan` segments the grains of a measured image and
builds a columnar film on them; :func:`simulate_scan` simulates a small
single-frequency ESM map of that film; :func:`compare` registers the measured
map onto the simulated one, resamples it, and scores the pair (metric table,
grain-boundary contrast profiles); :func:`compare_figure` draws the result.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from .._errors import ParameterError

__all__ = ["ScanSegmentation", "ScanSimulation", "CompareResult", "microstructure_from_scan", "simulate_scan",
           "compare", "compare_figure", "load_map"]


# --------------------------------------------------------------------------------------------------------------
# inputs


def load_map(path):
    """Read either side of a comparison: an esmsim NetCDF dataset (``.nc``) or any measured file.

    Parameters
    ----------
    path : path
        ``.nc``/``.nc4``: :func:`esmsim.io.read_netcdf`; anything else:
        :func:`esmsim.io.read_measurement` (Asylum ``.ibw``, Gwyddion ``.gwy``,
        USID/NSID ``.h5``, ...).

    Returns
    -------
    xarray.Dataset
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    if p.suffix.lower() in (".nc", ".nc4"):
        from ..io import read_netcdf

        ds = read_netcdf(p)
        ds.attrs.setdefault("source_file", str(p))
        return ds
    from ..io import read_measurement

    return read_measurement(p)


def _as_dataset(obj, what: str):
    import xarray as xr

    if isinstance(obj, (str, Path)):
        if not Path(obj).exists():
            raise ParameterError(what, f"no such file: {str(obj)!r}")
        return load_map(obj)
    if isinstance(obj, (xr.Dataset, xr.DataArray)):
        return obj
    raise ParameterError(what, f"got {type(obj).__name__}; expected an xarray Dataset/DataArray or a file path")


def _image_vars(ds) -> list[str]:
    return [k for k, v in ds.data_vars.items() if v.dims == ("y", "x")]


def _channel(ds, name: str | None, what: str, *, prefer: str | None = None):
    """The (y, x) DataArray ``name`` of a dataset (or the DataArray itself)."""
    import xarray as xr

    if isinstance(ds, xr.DataArray):
        da = ds
    else:
        images = _image_vars(ds)
        if name is None:
            if prefer is not None and prefer in images:
                name = prefer
            else:
                amps = [k for k in images if "amplitude" in k.lower()]
                if not amps:
                    raise ParameterError(what, f"no channel given and no amplitude channel among {images}; name one")
                name = amps[0]
        if name not in ds.data_vars:
            import difflib

            close = difflib.get_close_matches(name, list(ds.data_vars), n=3)
            raise ParameterError(what, f"no variable {name!r}" + (f"; did you mean {close}?" if close else "")
                                 + f" Images (y, x) here: {images}")
        da = ds[name]
    if da.dims != ("y", "x"):
        raise ParameterError(what, f"{da.name!r} has dimensions {da.dims}; expected an image on ('y', 'x')")
    return da


def _spacing_of(da, what: str) -> tuple[float, float]:
    """Pixel size (dy, dx) in m from the x and y coordinates."""
    out = []
    for ax in ("y", "x"):
        if ax not in da.coords or da.sizes[ax] < 2:
            raise ParameterError(what, f"needs a '{ax}' coordinate with at least 2 pixels")
        c = da.coords[ax]
        units = c.attrs.get("units", "m")
        if units != "m":
            raise ParameterError(what, f"coordinate '{ax}' is in {units!r}; expected m (a TIFF or numpy file needs "
                                       "read_measurement(..., pixel_size=...))")
        v = np.asarray(c.values, float)
        step = float(np.median(np.diff(v)))
        if not (np.isfinite(step) and step > 0):
            raise ParameterError(what, f"coordinate '{ax}' does not increase in equal steps")
        out.append(step)
    return out[0], out[1]


def _scale_of(ds) -> float:
    """Film length / scan length of an esmsim map simulated on a scaled film (1 otherwise)."""
    v = getattr(ds, "attrs", {}).get("scan_scale", 1.0)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return 1.0
    return v if np.isfinite(v) and v > 0 else 1.0


# --------------------------------------------------------------------------------------------------------------
# segmentation -> film


@dataclass(frozen=True)
class ScanSegmentation:
    """Grains segmented in a measured image and the columnar film built on them.

    Attributes
    ----------
    film : esmsim.microstructure.ColumnarMicrostructure
        The film (labels on axes (x, y), voxel size ``film.spacing`` in m).
    labels : ndarray of int, shape (rows, cols)
        The segmentation at the measured resolution, row = y (0 .. n-1).
    image : ndarray, shape (rows, cols)
        The image that was segmented (after the outlier and line levelling of ``level``).
    spacing : (float, float)
        Measured pixel size (dy, dx) in m.
    scale : float
        Film length / scan length: 1 when the film has the scan's true size
        (large voxels), below 1 when it is the scan scaled down.
    channel : str
        Measured channel segmented.
    boundaries : str
        ``"dark"`` or ``"bright"``: how boundaries look in that channel.
    min_grain_size : float or None
        Smallest grain diameter separated (m, scan scale).
    """

    film: object
    labels: np.ndarray
    image: np.ndarray
    spacing: tuple[float, float]
    scale: float
    channel: str
    boundaries: str
    min_grain_size: float | None

    @property
    def n_grains(self) -> int:
        """Number of grains of the film."""
        return int(self.film.n_grains)


def _clean_labels(lab: np.ndarray, min_pixels: int) -> np.ndarray:
    """Split labels into 4-connected pieces and merge pieces under ``min_pixels`` into the neighbour they share
    most edges with; labels 0 .. n-1."""
    from skimage.measure import label as cc

    comp = cc(lab + 1, background=0, connectivity=1)  # every connected piece its own label (1 ..)
    for _ in range(50):
        ids, counts = np.unique(comp, return_counts=True)
        small = ids[counts < min_pixels]
        if small.size == 0 or ids.size == 1:
            break
        changed = False
        for s in small:
            m = comp == s
            if not m.any():
                continue
            nb = []
            for ax in (0, 1):
                for sh in (1, -1):
                    edge = np.roll(m, sh, axis=ax)  # pixels whose neighbour along ax is in the piece
                    valid = np.ones_like(m)
                    idx = [slice(None)] * 2
                    idx[ax] = slice(0, 1) if sh == 1 else slice(-1, None)
                    valid[tuple(idx)] = False  # no wrap-around
                    sel = edge & valid & ~m
                    nb.append(comp[sel])
            nb = np.concatenate(nb)
            if nb.size:
                vals, cnt = np.unique(nb, return_counts=True)
                comp[m] = vals[np.argmax(cnt)]
                changed = True
        if not changed:
            break
    _, inv = np.unique(comp, return_inverse=True)
    return inv.reshape(lab.shape).astype(np.int32)


def microstructure_from_scan(measurement, *, channel: str | None, boundaries: str = "dark", thickness: float,
                             spacing: float | None = 5e-9, pixels=32, min_grain_size: float | None = None,
                             smoothing: float = 1.0, level: bool = True, texture: str = "random",
                             fibre_axis=(0.0, 0.0, 1.0), fibre_spread: float = 0.0, quaternions=None,
                             rng=None) -> ScanSegmentation:
    """Segment the grains of a measured image and build a columnar film on them.

    The channel (topography with grooves, or an ESM/PFM amplitude with dark or
    bright boundaries) is cleaned of outliers and line offsets
    (``remove_outliers``, ``level_lines``; for the segmentation only), segmented
    by :func:`esmsim.microstructure.segment_grains` at the measured resolution,
    sampled (nearest pixel) onto a film grid of ``pixels`` columns, split into
    connected grains with fragments under 4 pixels merged into their
    neighbours, and extruded through ``thickness`` by
    :func:`esmsim.microstructure.columnar_from_labels` (not periodic).

    Parameters
    ----------
    measurement : xarray.Dataset or xarray.DataArray or path
        A measured scan (:func:`esmsim.io.read_measurement`) with x and y in m.
    channel : str or None
        Variable to segment (e.g. ``"HeightRetrace"``, ``"Amplitude1Retrace"``);
        None for a DataArray.
    boundaries : {"dark", "bright"}
        Boundaries are low (grooves, dark walls) or high in that channel.
    thickness : float
        Film thickness in m.
    spacing : float or None
        Voxel size of the film in m. Default 5 nm: the film is the scan
        *scaled down* to ``pixels x 5 nm`` (a 5 um scan on 32 pixels becomes a
        160 nm film, ``scale = 0.032``): the engine resolves a 10 nm tip and
        nm diffusion lengths, which a um-sized voxel cannot. None: the film
        keeps the scan's true size with voxels of ``scan size / pixels`` (a tip
        then sits half a voxel from any boundary and boundaries barely show).
    pixels : int or (int, int)
        Film pixels along x (the y count follows the aspect ratio), or (nx, ny).
    min_grain_size : float, optional
        Smallest grain diameter to separate (m, scan scale); default 8 measured pixels.
    smoothing : float
        Gaussian smoothing in measured pixels before segmentation.
    level : bool
        Remove outliers and line offsets (median) before segmenting.
    texture : {"random", "fibre"}
        Orientations of the grains: uniform on SO(3), or ``fibre_axis`` along
        the film normal within ``fibre_spread`` (rad).
    fibre_axis, fibre_spread
        Fibre texture (crystal direction, tilt spread in rad).
    quaternions : ndarray, shape (n_grains, 4), optional
        Explicit orientations (overrides ``texture``).
    rng : int or numpy.random.Generator, optional
        Seed of the orientations.

    Returns
    -------
    ScanSegmentation
        The film, the segmentation at the measured resolution and the scale.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> img = np.minimum(np.abs(xx - 32), np.abs(yy - 20)) * 1e-9  # dark lines: x = 32 and y = 20
    >>> da = xr.DataArray(img, dims=("y", "x"), coords={"x": ("x", np.arange(64) * 2e-8, {"units": "m"}),
    ...                                                  "y": ("y", np.arange(64) * 2e-8, {"units": "m"})})
    >>> seg = microstructure_from_scan(da, channel=None, thickness=1e-7, pixels=16, min_grain_size=8e-7, rng=0)
    >>> seg.n_grains, seg.film.shape, round(seg.scale, 4)
    (4, (16, 16), 0.0625)
    """
    from ..microstructure import columnar_from_labels, fibre_quaternions, segment_grains
    from ._preprocess import level_lines, remove_outliers

    ds = _as_dataset(measurement, "measurement")
    da = _channel(ds, channel, "channel")
    dy, dx = _spacing_of(da, "measurement")
    name = str(da.name) if da.name is not None else (channel or "image")
    img = np.asarray(da.values, float)
    if not np.isfinite(img).any():
        raise ParameterError("channel", f"{name!r} has no finite pixel")
    if not (isinstance(thickness, (int, float)) and np.isfinite(thickness) and thickness > 0):
        raise ParameterError("thickness", f"got {thickness!r}; expected a positive length (m)")
    if boundaries not in ("dark", "bright"):
        raise ParameterError("boundaries", f"got {boundaries!r}; allowed 'dark' (grooves, walls) or 'bright'")
    img = np.where(np.isfinite(img), img, np.nanmedian(img))
    if level:
        img = level_lines(remove_outliers(img), order=0, method="median")
    ny_m, nx_m = img.shape
    Lx, Ly = nx_m * dx, ny_m * dy
    if np.ndim(pixels) == 0:
        if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)) or pixels < 4:
            raise ParameterError("pixels", f"got {pixels!r}; expected an integer >= 4 or (nx, ny)")
        nx = int(pixels)
        ny = max(4, int(round(nx * Ly / Lx)))
    else:
        try:
            nx, ny = (int(v) for v in pixels)
        except (TypeError, ValueError):
            nx = ny = 0
        if min(nx, ny) < 4:
            raise ParameterError("pixels", f"got {pixels!r}; expected an integer >= 4 or (nx, ny) >= 4")
    if nx > nx_m or ny > ny_m:
        raise ParameterError("pixels", f"got {nx} x {ny}; the scan has only {nx_m} x {ny_m} pixels")
    if spacing is None:
        h = Lx / nx
    elif np.isfinite(spacing) and spacing > 0:
        h = float(spacing)
    else:
        raise ParameterError("spacing", f"got {spacing!r}; expected a voxel size in m, or None (true scale)")
    lab_m = segment_grains(img, spacing=min(dy, dx), boundaries=boundaries, smoothing=smoothing,
                           min_grain_size=min_grain_size)
    # film pixel centres in scan coordinates -> nearest measured pixel
    cols = np.minimum(((np.arange(nx) + 0.5) * Lx / nx / dx).astype(int), nx_m - 1)
    rows = np.minimum(((np.arange(ny) + 0.5) * Ly / ny / dy).astype(int), ny_m - 1)
    lab = _clean_labels(lab_m[np.ix_(rows, cols)], 4)
    n = int(lab.max()) + 1
    gen = np.random.default_rng(rng)
    if quaternions is None:
        if texture == "fibre":
            quaternions = fibre_quaternions(n, crystal_axis=fibre_axis, spread=fibre_spread, rng=gen)
        elif texture != "random":
            raise ParameterError("texture", f"got {texture!r}; allowed 'random', 'fibre'")
    film = columnar_from_labels(lab.T, spacing=h, thickness=float(thickness), quaternions=quaternions,
                                periodic=False, rng=gen)
    scale = h * nx / Lx
    recipe = dict(film.recipe, generator="scan_segmentation", source_file=str(getattr(ds, "attrs", {}).get(
        "source_file", "")), channel=name, boundaries=boundaries, scale=scale, scan_size=[Lx, Ly],
        min_grain_size=min_grain_size, texture=texture if quaternions is None else "explicit",
        seed=rng if isinstance(rng, (int, np.integer)) else None)
    film = replace(film, recipe=recipe)
    return ScanSegmentation(film=film, labels=lab_m, image=img, spacing=(dy, dx), scale=float(scale), channel=name,
                            boundaries=boundaries, min_grain_size=min_grain_size)


# --------------------------------------------------------------------------------------------------------------
# simulation on the segmented film


@dataclass(frozen=True)
class ScanSimulation:
    """Result of :func:`simulate_scan`.

    Attributes
    ----------
    dataset : xarray.Dataset
        The simulated map (:func:`esmsim.simulation.map_dataset`: ``amplitude``
        in m/V, ``phase``, ground truth) with attributes ``scan_scale`` (film
        length / scan length), ``scan_source_file``, ``scan_channel`` and the
        segmentation settings; its x and y are film coordinates (m).
    segmentation : ScanSegmentation
    config : esmsim.config.Config
        The config that was simulated (film size, spacing, scan pixels, frequency).
    seconds : float
        Wall time of the map (s).
    """

    dataset: object
    segmentation: ScanSegmentation
    config: object
    seconds: float


def simulate_scan(measurement, *, channel: str | None, config=None, overrides: Mapping | None = None,
                  boundaries: str = "dark", thickness: float = 100e-9, spacing: float | None = 5e-9, pixels=32,
                  min_grain_size: float | None = None, smoothing: float = 1.0, level: bool = True,
                  texture: str = "random", frequency: float | None = None, rng=0, workers: int = 1,
                  out_dir=None) -> ScanSimulation:
    """Simulate a single-frequency ESM map of the film segmented from a measured scan.

    The film comes from :func:`microstructure_from_scan` (scaled down to
    ``pixels x spacing`` by default, see there); the config (``config``, or
    the defaults) gets the film's size, voxel size and thickness, one tip per
    voxel, ``excitation.mode = "single_frequency"`` at ``frequency`` (default
    the measurement's ``drive_frequency`` attribute where it has one), then
    ``overrides`` on top. The map is computed in this process with one BLAS
    thread (``workers=1``); a 32 x 32 map takes 5-20 s.

    Parameters
    ----------
    measurement : xarray.Dataset or xarray.DataArray or path
        The measured scan (x, y in m).
    channel : str or None
        The channel to segment.
    config : esmsim.config.Config or dict, optional
        Base config (material, tip, numerics); default all defaults.
    overrides : dict, optional
        Config values applied last, as in TOML, e.g.
        ``{"material": {"overrides": {"gb_enhancement": 300}}, "tip": {"width": "10 nm"}}``.
    boundaries, thickness, spacing, pixels, min_grain_size, smoothing, level, texture
        As in :func:`microstructure_from_scan` (lengths in m).
    frequency : float, optional
        AC frequency in Hz.
    rng : int or numpy.random.Generator
        Seed of the grain orientations.
    workers : int
        Worker processes (1: this process).
    out_dir : path, optional
        Also write the dataset as ``scan_simulation.nc`` there (atomically).

    Returns
    -------
    ScanSimulation
    """
    from threadpoolctl import threadpool_limits

    from ..config import Config, parse_config
    from ..probe import single_frequency_map
    from ..simulation import map_dataset, map_settings
    from ._fit import _merge, auto_tile

    ds = _as_dataset(measurement, "measurement")
    seg = microstructure_from_scan(ds, channel=channel, boundaries=boundaries, thickness=thickness, spacing=spacing,
                                   pixels=pixels, min_grain_size=min_grain_size, smoothing=smoothing, level=level,
                                   texture=texture, rng=rng)
    film = seg.film
    if config is None:
        src: dict = {}
    elif isinstance(config, Config):
        import copy

        src = copy.deepcopy(config.source)
    elif isinstance(config, Mapping):
        import copy

        src = copy.deepcopy(dict(config))
    else:
        raise ParameterError("config", f"got {type(config).__name__}; expected a Config or a dict as in TOML")
    f = frequency if frequency is not None else getattr(ds, "attrs", {}).get("drive_frequency")
    derived = {"microstructure": {"size": [film.extent[0], film.extent[1]], "spacing": film.spacing[0],
                                  "thickness": film.thickness, "periodic": False},
               "excitation": {"mode": "single_frequency"},
               "scan": {"pixels": [film.shape[0], film.shape[1]]}}
    if f is not None:
        derived["excitation"]["frequency"] = float(f)
    src = _merge(src, derived)
    src.get("microstructure", {}).pop("file", None)
    if overrides:
        src = _merge(src, overrides)
    cfg = parse_config(src)
    material = cfg.material()
    settings = map_settings(cfg)
    tile = auto_tile(cfg, film)
    t0 = time.perf_counter()
    with threadpool_limits(1 if workers == 1 else None):
        res = single_frequency_map(film, material, settings, workers=workers, tile=tile)
    seconds = time.perf_counter() - t0
    src_attrs = getattr(ds, "attrs", {})
    out = map_dataset(film, material, settings, res, attrs={
        "config": cfg.source, "config_si": json.loads(json.dumps(cfg.values)), "seed": rng if isinstance(
            rng, (int, np.integer)) else None,
        "scan_scale": seg.scale, "scan_source_file": str(src_attrs.get("source_file", "")),
        "scan_channel": seg.channel, "scan_size_m": [film.extent[0] / seg.scale, film.extent[1] / seg.scale],
        "segmentation_boundaries": seg.boundaries, "segmentation_min_grain_size_m": seg.min_grain_size,
        "title": "synthetic single-frequency ESM map of a film segmented from a measured scan (esmsim)"})
    if out_dir is not None:
        from ..io import write_netcdf

        write_netcdf(out, Path(out_dir) / "scan_simulation.nc")
    return ScanSimulation(dataset=out, segmentation=seg, config=cfg, seconds=seconds)


# --------------------------------------------------------------------------------------------------------------
# comparison


@dataclass(frozen=True)
class CompareResult:
    """A simulated and a measured map on one grid, and how alike they are.

    Attributes
    ----------
    simulated : ndarray, shape (rows, cols)
        The simulated image (row = y).
    measured : ndarray, shape (rows, cols)
        The measured image registered and resampled onto the simulated grid;
        NaN outside the measured field.
    difference : ndarray, shape (rows, cols)
        ``measured - simulated`` in ``units["difference"]``: the plain
        difference when both are in the same units, else the difference of
        the standardised images (zero mean, unit variance; units ``"std"``).
    spacing : (float, float)
        Pixel size (dy, dx) of the common grid in m, at the scan's scale.
    units : dict
        ``"simulated"``, ``"measured"``, ``"difference"``.
    metrics : dict
        :func:`~esmsim.compare.compare_metrics` of (simulated, measured) plus
        registration (``registration_rotation_deg``, ``registration_scale``,
        ``registration_shift_y_m``, ``registration_shift_x_m``,
        ``registration_error``), grain counts, ``boundary_source_*``, the
        ratio of medians ``gain_measured_over_simulated`` (same units only)
        and from the profiles ``profile_contrast_simulated`` and
        ``profile_contrast_measured`` (first bin / interior - 1) and
        ``profile_distance`` (RMS difference of the two profiles).
    registration : Registration or None
        Measured (moving) onto simulated (fixed).
    boundaries_simulated, boundaries_measured : ndarray of bool or None
        Boundary pixels on the common grid: ground truth of a synthetic map
        (``boundary_distance`` within half a pixel), segmentation of a measured one.
    profiles : dict
        ``"distance"`` (bin centres, m), ``"simulated"``, ``"measured"``:
        mean value against the distance to the nearest boundary, divided by
        the interior mean (pixels farther than 4 pixels from a boundary, or 3
        or 2 where too few are: 1 = grain interior).
    names : dict
        ``"simulated"``, ``"measured"``: names and sources of the two images.
    grains : dict
        ``"simulated"``, ``"measured"``: grain label per pixel of the common
        grid where known (the grain under the tip of a synthetic map, a
        segmentation; -1 outside the measured field), else None.
    scale : float
        Film length / scan length of the simulation (1: true scale).
    files : dict
        Paths written (``"figure"``, ``"json"``, ``"csv"``), when ``out_dir`` was given.
    """

    simulated: np.ndarray
    measured: np.ndarray
    difference: np.ndarray
    spacing: tuple[float, float]
    units: dict
    metrics: dict
    registration: object
    boundaries_simulated: np.ndarray | None
    boundaries_measured: np.ndarray | None
    profiles: dict
    names: dict
    grains: dict = field(default_factory=dict)
    scale: float = 1.0
    files: dict = field(default_factory=dict)

    def table(self) -> str:
        """The metric table as aligned text lines."""
        w = max(len(k) for k in self.metrics)
        lines = [f"{'metric':{w}s}  value"]
        for k, v in self.metrics.items():
            lines.append(f"{k:{w}s}  {_fmt(v)}")
        return "\n".join(lines)

    def to_json(self, path) -> Path:
        """Write the metrics and what was compared as JSON (atomically); NaN becomes null."""
        from ..io import atomic_path

        doc = {"simulated": self.names.get("simulated"), "measured": self.names.get("measured"),
               "units": self.units, "spacing_m": list(self.spacing), "scale": self.scale,
               "metrics": {k: _plain(v) for k, v in self.metrics.items()},
               "profiles": {k: [_plain(x) for x in np.asarray(v).tolist()] for k, v in self.profiles.items()}}
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return path

    def to_csv(self, path) -> Path:
        """Write the metric table as CSV (``metric,value``; atomically)."""
        from ..io import atomic_path

        buf = io.StringIO()
        wr = csv.writer(buf, lineterminator="\n")
        wr.writerow(["metric", "value"])
        for k, v in self.metrics.items():
            wr.writerow([k, "" if _plain(v) is None else _plain(v)])
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(buf.getvalue(), encoding="utf-8")
        return path


def _plain(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def _truth_boundaries(ds, shape, spacing):
    """Ground-truth boundary pixels of an esmsim map: tip within half a pixel of a boundary (None if not synthetic)."""
    if not hasattr(ds, "data_vars") or "boundary_distance" not in ds.data_vars:
        return None
    dist = np.asarray(ds["boundary_distance"].values, float)
    if dist.shape != shape:
        return None
    return dist <= 0.5 * max(spacing) * (1 + 1e-6)


def _nearest_on_grid(values, inverse: np.ndarray, shape, fill):
    """``values`` sampled (nearest pixel) at ``inverse @ (col, row, 1)`` of every pixel of ``shape``."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    xi = inverse[0, 0] * xx + inverse[0, 1] * yy + inverse[0, 2]
    yi = inverse[1, 0] * xx + inverse[1, 1] * yy + inverse[1, 2]
    r, c = np.rint(yi).astype(int), np.rint(xi).astype(int)
    ok = (r >= 0) & (r < values.shape[0]) & (c >= 0) & (c < values.shape[1])
    out = np.full(shape, fill, dtype=values.dtype)
    out[ok] = values[r[ok], c[ok]]
    return out


def _grain_ids(ds, shape):
    """The grain under the tip of an esmsim map (``grain_id`` on (y, x)), or None."""
    if not hasattr(ds, "data_vars") or "grain_id" not in ds.data_vars:
        return None
    g = ds["grain_id"]
    return np.asarray(g.values).astype(np.int64) if g.dims == ("y", "x") and g.shape == shape else None


def _edge_lines(ax, labels, dx, dy, **kw):
    """Draw the pixel edges between different labels (>= 0) as line segments (axes units: ``dx``, ``dy`` per
    pixel)."""
    from matplotlib.collections import LineCollection

    lab = np.asarray(labels)
    segs = []
    r, c = np.nonzero((lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] >= 0) & (lab[:, :-1] >= 0))
    for i, j in zip(r, c):  # vertical edge between columns j and j + 1
        segs.append([((j + 1) * dx, i * dy), ((j + 1) * dx, (i + 1) * dy)])
    r, c = np.nonzero((lab[1:, :] != lab[:-1, :]) & (lab[1:, :] >= 0) & (lab[:-1, :] >= 0))
    for i, j in zip(r, c):  # horizontal edge between rows i and i + 1
        segs.append([(j * dx, (i + 1) * dy), ((j + 1) * dx, (i + 1) * dy)])
    if segs:
        ax.add_collection(LineCollection(segs, **kw))


def _mask_from_labels(lab: np.ndarray) -> np.ndarray:
    """Boundary pixels of a label image whose value -1 means 'outside the field' (not a boundary)."""
    from skimage.segmentation import find_boundaries

    b = find_boundaries(lab, mode="inner", connectivity=1)
    outside = lab < 0
    near_out = outside.copy()
    for ax in (0, 1):
        for sh in (1, -1):
            near_out |= np.roll(outside, sh, axis=ax)
    return b & ~near_out


def _relative_profile(img, mask, spacing, edges):
    from ._metrics import boundary_profile

    if mask is None or not mask.any() or not np.isfinite(img).any():
        return np.full(len(edges) - 1, np.nan)
    from scipy import ndimage

    _, mean, _, _ = boundary_profile(img, mask, spacing=spacing, bins=edges)
    dist = ndimage.distance_transform_edt(~mask, sampling=spacing)
    ok = np.isfinite(img)
    ref = np.nan
    for k in (4, 3, 2):  # the grain interior: the farthest pixels that are still 5 % of the map
        far = img[ok & (dist > k * max(spacing))]
        if far.size >= 0.05 * ok.sum():
            ref = float(np.mean(far))
            break
    if not np.isfinite(ref):
        ref = float(np.nanmedian(img[ok & ~mask])) if (ok & ~mask).any() else float(np.nanmedian(img))
    return mean / ref if ref else np.full_like(mean, np.nan)


def _to_metres_per_volt(da, ds, sim_units):
    """A measured amplitude in m divided by the drive amplitude (V) when the simulation is in m/V."""
    img = np.asarray(da.values, float)
    units = da.attrs.get("units", "")
    attrs = getattr(ds, "attrs", {})
    drive = attrs.get("drive_amplitude")
    if sim_units == "m/V" and units == "m" and drive is not None and float(drive) > 0:
        return img / float(drive), "m/V", f"{da.name} / drive amplitude {float(drive):g} V"
    return img, units, str(da.name)


def compare(simulated, measured, *, simulated_var: str = "amplitude", channel: str | None = None, out_dir=None,
            register: bool = True, register_on: str = "auto", boundaries: str | None = None,
            min_grain_size: float | None = None, difference: str = "auto", name: str = "compare") -> CompareResult:
    """Register a measured map onto a simulated one, resample it and score the pair.

    1. Each side is an xarray Dataset (or a file: an esmsim ``.nc`` or any
       measured file, see :func:`load_map`). Pixel sizes come from the x and
       y coordinates; a map simulated on a scaled-down film
       (:func:`simulate_scan`, attribute ``scan_scale``) is put back at the
       scan's scale. A measured amplitude in m is divided by the drive
       amplitude (attribute ``drive_amplitude``, V) to compare with m/V.
    2. Boundaries: the ground truth of a synthetic map (its
       ``boundary_distance`` within half a pixel), else a segmentation
       (:func:`esmsim.microstructure.segment_grains`, ``boundaries`` dark or
       bright; default from the simulation's attributes, else ``"dark"``; a
       reference map without ground truth is segmented as bright boundaries).
       When the simulation was built on this very scan and channel
       (:func:`simulate_scan`), the measured boundaries on the common grid
       are the film's (its segmentation, cleaned on the film grid); the
       scan's own segmentation still serves the registration.
    3. ``register``: :func:`~esmsim.compare.register` of the measured map
       (moving) onto the simulated one (fixed): rotation, scale, sub-pixel
       shift. ``register_on="image"`` registers the maps themselves (negating
       the measured one when its boundaries have the opposite contrast, dark
       domain walls against bright simulated boundaries);
       ``"boundaries"`` registers ``exp(-distance to the nearest boundary /
       one pixel)`` of the two boundary masks, the structure a simulation on
       the measured scan's own segmentation shares with it whatever the
       contrast inside the grains (grain orientation, domains); ``"auto"``:
       boundaries for a map from :func:`simulate_scan` (attribute
       ``scan_scale``), else the image. The measured map is then resampled onto
       the simulated grid (``Registration.apply``; without ``register``,
       :func:`~esmsim.compare.resample` about the common centre). Measured
       labels or truth follow by nearest-pixel sampling.
    4. Metrics: :func:`~esmsim.compare.compare_metrics` with both boundary
       masks, plus the registration and grain counts; boundary-contrast
       profiles (mean against distance to the nearest boundary, 0 to 8
       pixels, each divided by its interior mean).
    5. ``out_dir``: ``NAME.png`` (:func:`compare_figure`), ``NAME_metrics.json``
       and ``NAME_metrics.csv``, each written atomically.

    Parameters
    ----------
    simulated : xarray.Dataset or xarray.DataArray or path
        The simulated map (or any reference map).
    measured : xarray.Dataset or xarray.DataArray or path
        The measured map (or a synthetic measurement).
    simulated_var : str
        Variable of ``simulated`` (default ``"amplitude"``, m/V).
    channel : str, optional
        Variable of ``measured``; default ``simulated_var`` when it has one,
        else its first channel with "amplitude" in the name.
    out_dir : path, optional
        Folder for the figure and the metric files.
    register : bool
        Register (otherwise only resample about the common centre).
    register_on : {"auto", "image", "boundaries"}
        What is registered (see step 3).
    boundaries : {"dark", "bright"}, optional
        How boundaries look in a measured channel that must be segmented.
    min_grain_size : float, optional
        Smallest grain to separate in that segmentation (m); default from the
        simulation's attributes, else 8 pixels.
    difference : {"auto", "absolute", "standardised"}
        The difference map: ``measured - simulated`` in their units, or the
        difference of the standardised images; ``"auto"``: absolute when both
        are in the same units and their median ratio is within 0.5 to 2,
        else standardised.
    name : str
        File stem of the outputs.

    Returns
    -------
    CompareResult
    """
    ds_s = _as_dataset(simulated, "simulated")
    ds_m = _as_dataset(measured, "measured")
    da_s = _channel(ds_s, simulated_var, "simulated_var")
    da_m = _channel(ds_m, channel, "channel", prefer=str(da_s.name) if channel is None else None)
    attrs_s = getattr(ds_s, "attrs", {})
    if register_on not in ("auto", "image", "boundaries"):
        raise ParameterError("register_on", f"got {register_on!r}; allowed 'auto', 'image', 'boundaries'")
    if difference not in ("auto", "absolute", "standardised"):
        raise ParameterError("difference", f"got {difference!r}; allowed 'auto', 'absolute', 'standardised'")
    own_s, own_m = _spacing_of(da_s, "simulated"), _spacing_of(da_m, "measured")  # in each map's own metres
    h_s = tuple(v / _scale_of(ds_s) for v in own_s)  # at the scan's scale
    h_m = tuple(v / _scale_of(ds_m) for v in own_m)
    sim = np.asarray(da_s.values, float)
    u_s = da_s.attrs.get("units", "")
    meas, u_m, m_label = _to_metres_per_volt(da_m, ds_m, u_s)
    if not np.isfinite(sim).any() or not np.isfinite(meas).any():
        raise ParameterError("simulated" if not np.isfinite(sim).any() else "measured", "has no finite pixel")
    if boundaries is None:
        boundaries = attrs_s.get("segmentation_boundaries", "dark")
    if boundaries not in ("dark", "bright"):
        raise ParameterError("boundaries", f"got {boundaries!r}; allowed 'dark' or 'bright'")
    if min_grain_size is None:
        v = attrs_s.get("segmentation_min_grain_size_m")
        min_grain_size = float(v) if isinstance(v, (int, float)) and v and np.isfinite(v) else None

    # boundaries on each side's own grid
    def own_boundaries(ds, img, h, how, h_own):
        truth = _truth_boundaries(ds, img.shape, h_own)
        if truth is not None:
            return truth, None, "ground truth"
        from ..microstructure import segment_grains
        from ._preprocess import level_lines, remove_outliers

        filled = np.where(np.isfinite(img), img, np.nanmedian(img))
        lab = segment_grains(level_lines(remove_outliers(filled)), spacing=min(h), boundaries=how,
                             min_grain_size=min_grain_size)
        return None, lab, "segmentation"

    b_s, lab_s, src_s = own_boundaries(ds_s, sim, h_s, "bright", own_s)
    if b_s is None:
        b_s = _mask_from_labels(lab_s)
    b_m_own, lab_m, src_m = own_boundaries(ds_m, meas, h_m, boundaries, own_m)
    if b_m_own is None:
        b_m_own = _mask_from_labels(lab_m)

    from ._metrics import boundary_contrast, compare_metrics
    from ._register import _grid_matrix, register as _register, resample

    def contrast(img, mask, h):
        try:
            return boundary_contrast(img, mask, spacing=h)
        except ParameterError:
            return float("nan")

    reg = None
    if register_on == "auto":
        register_on = "boundaries" if "scan_scale" in attrs_s else "image"
    if register:
        if register_on == "boundaries":
            from scipy import ndimage

            if not (b_s.any() and b_m_own.any()):
                raise ParameterError("register_on", "'boundaries' needs boundary pixels in both maps; use 'image'")
            ell = max(h_s)
            f_s = np.exp(-ndimage.distance_transform_edt(~b_s, sampling=h_s) / ell)
            f_m = np.exp(-ndimage.distance_transform_edt(~b_m_own, sampling=h_m) / ell)
            reg = _register(f_m, f_s, spacing_moving=h_m, spacing_fixed=h_s)
        else:
            c_s, c_m = contrast(sim, b_s, h_s), contrast(np.abs(meas), b_m_own, h_m)
            sign = -1.0 if (np.isfinite(c_s) and np.isfinite(c_m) and c_s * c_m < 0) else 1.0
            reg = _register(sign * meas, sim, spacing_moving=h_m, spacing_fixed=h_s)
        meas_on = reg.apply(meas)
        inverse = np.linalg.inv(reg.transform.params)
    else:
        meas_on = resample(meas, h_m, h_s, shape=sim.shape)
        inverse = np.linalg.solve(_grid_matrix(meas.shape, h_m), _grid_matrix(sim.shape, h_s))
    same_scan = (lab_m is not None and attrs_s.get("scan_channel") == str(da_m.name)
                 and attrs_s.get("scan_source_file") == str(getattr(ds_m, "attrs", {}).get("source_file")))
    if same_scan:  # the film was built on this scan's segmentation: its boundaries are the measured ones
        b_m = b_s.copy()
        src_m = "film segmentation"
    elif lab_m is not None:
        b_m = _mask_from_labels(_nearest_on_grid(lab_m.astype(np.int64), inverse, sim.shape, -1))
    else:
        b_m = _nearest_on_grid(b_m_own, inverse, sim.shape, False)
    b_m &= np.isfinite(meas_on)

    metrics = compare_metrics(sim, meas_on, spacing=h_s, boundaries_a=b_s if b_s.any() else None,
                              boundaries_b=b_m if b_m.any() else None)
    if reg is not None:
        metrics.update(registration_rotation_deg=reg.rotation, registration_scale=reg.scale,
                       registration_shift_y_m=reg.shift[0], registration_shift_x_m=reg.shift[1],
                       registration_error=reg.error)
    if "grain_labels" in getattr(ds_s, "data_vars", {}):
        metrics["grains_simulated"] = int(np.unique(ds_s["grain_labels"].values).size)
    elif lab_s is not None:
        metrics["grains_simulated"] = int(np.unique(lab_s).size)
    if same_scan:
        metrics["grains_measured"] = metrics.get("grains_simulated")
    elif lab_m is not None:
        metrics["grains_measured"] = int(np.unique(lab_m).size)
    elif "grain_labels" in getattr(ds_m, "data_vars", {}):
        metrics["grains_measured"] = int(np.unique(ds_m["grain_labels"].values).size)
    metrics["boundary_source_simulated"] = src_s
    metrics["boundary_source_measured"] = src_m
    gain = float("nan")
    if u_s == u_m and u_s:
        ok = np.isfinite(sim) & np.isfinite(meas_on)
        med_s = np.median(sim[ok]) if ok.any() else np.nan
        gain = float(np.median(meas_on[ok]) / med_s) if med_s else float("nan")
        metrics["gain_measured_over_simulated"] = gain
    if difference == "auto":
        difference = "absolute" if np.isfinite(gain) and 0.5 <= gain <= 2.0 else "standardised"
    if difference == "absolute":
        if u_s != u_m:
            raise ParameterError("difference", f"'absolute' needs both maps in the same units; got {u_s!r} and "
                                               f"{u_m!r}")
        diff, u_d = meas_on - sim, u_s
    else:
        def z(a):
            ok = np.isfinite(a)
            sd = np.std(a[ok])
            return (a - np.mean(a[ok])) / sd if sd > 0 else a - np.mean(a[ok])
        diff, u_d = z(meas_on) - z(sim), "std"

    px = max(h_s)
    edges = np.concatenate([[0.0], (np.arange(1, 9) - 0.5) * px])
    profiles = {"distance": 0.5 * (edges[:-1] + edges[1:]),
                "simulated": _relative_profile(sim, b_s, h_s, edges),
                "measured": _relative_profile(meas_on, b_m, h_s, edges)}
    use = np.isfinite(profiles["simulated"]) & np.isfinite(profiles["measured"])
    metrics["profile_contrast_simulated"] = float(profiles["simulated"][0] - 1)
    metrics["profile_contrast_measured"] = float(profiles["measured"][0] - 1)
    metrics["profile_distance"] = (float(np.sqrt(np.mean((profiles["simulated"][use] - profiles["measured"][use]) ** 2)))
                                   if use.any() else float("nan"))
    names = {"simulated": f"{da_s.name} ({attrs_s.get('source_file') or 'simulation'})",
             "measured": f"{m_label} ({getattr(ds_m, 'attrs', {}).get('source_file') or 'measurement'})"}
    g_s = _grain_ids(ds_s, sim.shape)
    if g_s is None and lab_s is not None:
        g_s = lab_s
    if same_scan:
        g_m = g_s
    elif lab_m is not None:
        g_m = _nearest_on_grid(lab_m.astype(np.int64), inverse, sim.shape, -1)
    else:
        own = _grain_ids(ds_m, meas.shape)
        g_m = None if own is None else _nearest_on_grid(own.astype(np.int64), inverse, sim.shape, -1)
    result = CompareResult(simulated=sim, measured=meas_on, difference=diff, spacing=h_s,
                           units={"simulated": u_s, "measured": u_m, "difference": u_d}, metrics=metrics,
                           registration=reg, boundaries_simulated=b_s, boundaries_measured=b_m, profiles=profiles,
                           names=names, grains={"simulated": g_s, "measured": g_m}, scale=_scale_of(ds_s))
    if out_dir is not None:
        out = Path(out_dir)
        files = {"figure": compare_figure(result, out / f"{name}.png"),
                 "json": result.to_json(out / f"{name}_metrics.json"),
                 "csv": result.to_csv(out / f"{name}_metrics.csv")}
        result = replace(result, files=files)
    return result


# --------------------------------------------------------------------------------------------------------------
# figure


def _display(units: str, values) -> tuple[float, str]:
    """Factor and unit label to show values of ``units``."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    big = float(np.max(np.abs(v))) if v.size else 0.0
    if units in ("m/V", "m"):
        per = "/V" if units == "m/V" else ""
        return (1e12, f"pm{per}") if big < 1e-9 else (1e9, f"nm{per}")
    return 1.0, units or "a.u."


def _length_unit(extent_m: float) -> tuple[float, str]:
    return (1e6, "µm") if extent_m >= 2e-6 else (1e9, "nm")


def _add_scale_bar(ax, width: float, unit: str):
    """A round-length scale bar near a quarter of the image width (``width`` in ``unit``), lower right."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    target = width / 4
    exp = 10 ** math.floor(math.log10(target))
    length = max(m * exp for m in (1, 2, 5) if m * exp <= target)
    text = f"{length:g} {unit}"
    bar = AnchoredSizeBar(ax.transData, length, text, "lower right", pad=0.3, color="white", frameon=True,
                          size_vertical=width / 100)
    bar.patch.set(facecolor="black", alpha=0.45, edgecolor="none")
    ax.add_artist(bar)


def compare_figure(result: CompareResult, path, *, title: str | None = None) -> Path:
    """Side-by-side simulated, measured (registered) and difference maps, boundary profiles and metrics.

    Top row: the simulated map, the measured map registered onto its grid and
    their difference, each with a physical scale bar (at the scan's scale) and
    a colour bar with units, grain boundaries drawn in cyan (ground truth,
    or a segmentation). Bottom row: the boundary-contrast profiles (mean against
    the distance to the nearest boundary, divided by the grain-interior mean)
    and the metric table. Written atomically as PNG.

    Parameters
    ----------
    result : CompareResult
    path : path
        The PNG file.
    title : str, optional
        Figure title; default names the two images.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.figure import Figure

    from ..io import atomic_path

    ny, nx = result.simulated.shape
    dy, dx = result.spacing
    lf, lu = _length_unit(max(nx * dx, ny * dy))
    ext = [0, nx * dx * lf, 0, ny * dy * lf]
    fig = Figure(figsize=(15, 9.4), layout="constrained")
    gs = fig.add_gridspec(2, 3, height_ratios=[1.0, 0.85])
    panels = [("simulated", result.simulated, result.units["simulated"], "inferno",
               (result.grains.get("simulated"), result.boundaries_simulated)),
              ("measured (registered)", result.measured, result.units["measured"], "inferno",
               (result.grains.get("measured"), result.boundaries_measured)),
              ("measured - simulated" + (" (standardised)" if result.units["difference"] == "std" else ""),
               result.difference, result.units["difference"], "RdBu_r", (None, None))]
    yy = (np.arange(ny) + 0.5) * dy * lf
    xx = (np.arange(nx) + 0.5) * dx * lf
    for k, (name, img, units, cmap, bnd) in enumerate(panels):
        ax = fig.add_subplot(gs[0, k])
        fac, ulabel = _display(units, img) if units != "std" else (1.0, "std")
        data = img * fac
        if cmap == "RdBu_r":
            lim = np.nanpercentile(np.abs(data), 99) if np.isfinite(data).any() else 1.0
            lo, hi = -lim, lim
        else:
            lo, hi = np.nanpercentile(data, [1, 99]) if np.isfinite(data).any() else (None, None)
        im = ax.imshow(data, origin="lower", extent=ext, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label(f"{'difference' if k == 2 else 'amplitude'} ({ulabel})")
        grains, mask = bnd
        if grains is not None:
            _edge_lines(ax, grains, dx * lf, dy * lf, colors="cyan", linewidths=0.6, alpha=0.8)
        elif mask is not None and mask.any():
            ax.contour(xx, yy, mask.astype(float), levels=[0.5], colors="cyan", linewidths=0.6, alpha=0.7)
        _add_scale_bar(ax, ext[1], lu)
        ax.set(title=name, xlabel=f"x ({lu})", ylabel=f"y ({lu})")
    ax = fig.add_subplot(gs[1, 0])
    d = result.profiles["distance"] * lf
    for key, style in (("simulated", "o-"), ("measured", "s-")):
        prof = np.asarray(result.profiles[key], float)
        ok = np.isfinite(prof)
        ax.plot(d[ok], prof[ok], style, label=key)
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax.set(xlabel=f"distance to the nearest boundary ({lu})", ylabel="mean / grain-interior mean",
           title="grain-boundary contrast profiles")
    ax.legend()
    ax = fig.add_subplot(gs[1, 1:])
    ax.axis("off")
    keys = list(result.metrics)
    half = (len(keys) + 1) // 2
    rows = []
    for i in range(half):
        row = [keys[i], _fmt(result.metrics[keys[i]])]
        j = i + half
        row += [keys[j], _fmt(result.metrics[keys[j]])] if j < len(keys) else ["", ""]
        rows.append(row)
    tab = ax.table(cellText=rows, colLabels=["metric", "value", "metric", "value"], loc="center",
                   cellLoc="left", colWidths=[0.3, 0.17, 0.3, 0.17])
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    tab.scale(1.0, 1.25)
    ax.set_title("metrics (simulated = a, measured = b)")
    if title is None:
        title = f"simulated: {result.names.get('simulated')}   vs   measured: {result.names.get('measured')}"
        if result.scale != 1.0:
            title += f"\n(simulated on the segmented film scaled by {result.scale:.3g}; shown at the scan's scale)"
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
