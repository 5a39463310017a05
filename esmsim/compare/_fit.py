"""Estimating model parameters (D_gb/D_bulk, D_bulk, tip width, ...) from a measured ESM map.

A caller-given forward model ``forward(params) -> map`` is compared with the
measured map by a misfit, and the misfit is minimised over a box of parameters
with a few tens of forward simulations: a Latin-hypercube start in (log-)
parameter space, a radial-basis-function surrogate of the log misfit
(``scipy.interpolate.RBFInterpolator``, Regis and Shoemaker's stochastic RBF
method) for the global search, then Levenberg-Marquardt on the residuals
(least-squares misfits) or trust-region steps on a quadratic model.
:func:`map_forward` builds the forward model from a config (an esmsim
single-frequency map), optionally aligned on a registered measured scan.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .._errors import ParameterError

__all__ = ["FitResult", "MapForward", "fit_parameters", "map_forward", "misfit", "scan_from_registration",
           "MISFITS"]

MISFITS = ("relative_l2", "gain_l2", "ncc", "psd", "profile")

# short parameter names -> config fields; anything else is a material parameter (material.overrides.NAME)
_ALIASES = {
    "tip_width": ("tip", "width"),
    "contact_radius": ("tip", "contact_radius"),
    "frequency": ("excitation", "frequency"),
}


# --------------------------------------------------------------------------------------------------------------
# misfits


def _finite_pair(sim, meas):
    s = np.asarray(sim)
    m = np.asarray(meas)
    if s.shape != m.shape:
        raise ParameterError("forward", f"returned a map of shape {s.shape}; expected the measured map's shape "
                                        f"{m.shape} (register and resample the measurement onto the forward grid)")
    ok = np.isfinite(s) & np.isfinite(m)
    if ok.sum() < 4:
        raise ParameterError("measured_map", f"only {int(ok.sum())} pixels are finite in both maps; at least 4 "
                                             "needed")
    return s, m, ok


def _profile(img, boundaries, spacing, edges):
    from ._metrics import boundary_profile

    _, mean, _, count = boundary_profile(img, boundaries, spacing=spacing, bins=edges)
    far = mean[-1] if np.isfinite(mean[-1]) and mean[-1] != 0 else np.nanmean(mean[len(mean) // 2:])
    return mean / far, count


def misfit(simulated, measured, *, metric: str = "relative_l2", spacing=None, boundaries=None) -> float:
    """Misfit between a simulated and a measured map on the same grid (0 for a perfect match).

    Parameters
    ----------
    simulated, measured : array_like, shape (..., rows, cols)
        Maps on the same grid (real amplitudes in m/V, or complex responses in
        m/V); NaN marks missing pixels (e.g. outside a registered field).
    metric : str
        ``"relative_l2"``: ``||s - m|| / ||m||`` over the common pixels, for
        calibrated data (m/V); on complex maps this weighs amplitude and phase.
        ``"gain_l2"``: the same after the best real gain ``g`` (least squares,
        ``||g s - m|| / ||m||``), for data whose calibration (InvOLS, drive) is
        unknown but whose zero is right; keeps the contrast ratios.
        ``"ncc"``: ``1 - NCC`` of the amplitudes, blind to gain and offset.
        ``"psd"``: :func:`~esmsim.compare.psd_distance` of the amplitudes (needs ``spacing``).
        ``"profile"``: RMS difference of the boundary-contrast profiles (mean
        amplitude against the distance to the nearest boundary, 0 to 6 pixels
        in 1-pixel bins, each divided by its farthest bin), blind to gain
        (needs ``spacing`` and ``boundaries``).
    spacing : float or (float, float), optional
        Pixel size in m (``"psd"``, ``"profile"``).
    boundaries : ndarray of bool, shape (rows, cols), optional
        Boundary pixels (``"profile"``).

    Returns
    -------
    float
        The misfit (dimensionless, >= 0).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> misfit(m, m), round(misfit(2 * m, m), 6), round(misfit(2 * m, m, metric="gain_l2"), 6)
    (0.0, 1.0, 0.0)
    """
    s, m, ok = _finite_pair(simulated, measured)
    if metric == "relative_l2":
        den = np.sum(np.abs(m[ok]) ** 2)
        return float(np.sqrt(np.sum(np.abs(s[ok] - m[ok]) ** 2) / den)) if den > 0 else float("inf")
    if metric == "gain_l2":
        a, b = s[ok], m[ok]
        ss = np.sum(np.abs(a) ** 2)
        g = float(np.real(np.vdot(a, b)) / ss) if ss > 0 else 0.0
        den = np.sum(np.abs(b) ** 2)
        return float(np.sqrt(np.sum(np.abs(g * a - b) ** 2) / den)) if den > 0 else float("inf")
    if metric in ("ncc", "psd", "profile"):
        if s.ndim != 2:
            raise ParameterError("metric", f"{metric!r} compares 2-D images; got maps of shape {s.shape}")
        a = np.where(ok, np.abs(s), np.nan)
        b = np.where(ok, np.abs(m), np.nan)
        if metric == "ncc":
            from ._metrics import ncc

            v = ncc(a, b)
            return 1.0 - v if np.isfinite(v) else 1.0
        if spacing is None:
            raise ParameterError("spacing", f"required by metric {metric!r}: the pixel size in m")
        if metric == "psd":
            from ._metrics import psd_distance

            return psd_distance(a, b, spacing=spacing)
        if boundaries is None:
            raise ParameterError("boundaries", "required by metric 'profile': a bool mask of boundary pixels")
        from ._register import _spacing2

        px = max(_spacing2(spacing, "spacing"))
        edges = (np.arange(8) - 0.5) * px
        edges[0] = 0.0
        pa, ca = _profile(a, boundaries, spacing, edges)
        pb, cb = _profile(b, boundaries, spacing, edges)
        use = np.isfinite(pa) & np.isfinite(pb) & (ca > 0) & (cb > 0)
        if not use.any():
            raise ParameterError("boundaries", "no pixel within 6 pixels of a boundary")
        return float(np.sqrt(np.mean((pa[use] - pb[use]) ** 2)))
    raise ParameterError("metric", f"got {metric!r}; allowed {MISFITS} or a function (simulated, measured) -> float")


# --------------------------------------------------------------------------------------------------------------
# forward models from a config


def _override(name: str, value) -> dict:
    """Config overrides ``{section: {field: value}}`` for one fitted parameter name."""
    if name in _ALIASES:
        sec, key = _ALIASES[name]
        return {sec: {key: value}}
    parts = name.split(".")
    if len(parts) == 1:
        return {"material": {"overrides": {name: value}}}
    if len(parts) == 3 and parts[:2] == ["material", "overrides"]:
        return {"material": {"overrides": {parts[2]: value}}}
    if len(parts) == 2:
        return {parts[0]: {parts[1]: value}}
    raise ParameterError("parameters", f"got the name {name!r}; expected a material parameter (e.g. 'D_ab'), "
                                       f"one of {sorted(_ALIASES)} or a config field 'section.field'")


def _merge(base: dict, extra: Mapping) -> dict:
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), Mapping):
            base[k] = _merge(dict(base[k]), v)
        else:
            base[k] = v
    return base


class MapForward:
    """A forward model ``params -> simulated map`` built on a config (see :func:`map_forward`).

    Attributes
    ----------
    config : esmsim.config.Config
        The base config; every call applies its parameters on top of it.
    film : esmsim.microstructure.ColumnarMicrostructure or Microstructure
        The film every call simulates (the same grains and orientations): a columnar film, or a voxel volume
        (3-D grains, pores, cracks) that the volume engine maps (slower: no far-field split, full tensors).
    output : str
        ``"amplitude"`` (m/V), ``"complex"`` (m/V) or ``"phase"`` (deg).
    n_calls : int
        Simulations run so far.
    seconds : float
        Their total wall time (s).
    scans : list of dict
        With ``align_to``: the scan geometry each call aligned to (``pixels``,
        ``size`` m, ``center`` m, ``rotation`` rad), as ``[scan]`` config values.
    """

    def __init__(self, config, film=None, *, output: str = "amplitude", workers: int = 1, tile: int | None = None,
                 align_to=None, align_metric: str = "relative_l2"):
        from ..microstructure import Microstructure
        from ..simulation import build_microstructure

        if output not in ("amplitude", "complex", "phase"):
            raise ParameterError("output", f"got {output!r}; allowed 'amplitude', 'complex', 'phase'")
        if config["excitation"]["mode"] != "single_frequency":
            raise ParameterError("config", f"excitation.mode is {config['excitation']['mode']!r}; a map forward "
                                           "model needs 'single_frequency'")
        self.config = config
        ms = film if film is not None else build_microstructure(config)
        if isinstance(ms, Microstructure):
            try:  # a columnar volume as the columnar film it is (the map engine's windows with their far field)
                ms = ms.as_columnar()
            except ParameterError:  # 3-D grains, pores, cracks: maps of the volume engine
                pass
        self.film = ms
        self.output = output
        self.workers = workers
        self._tile = tile
        self.n_calls = 0
        self.seconds = 0.0
        self.scans: list[dict] = []
        self.align_to = None
        if align_to is not None:
            a = np.asarray(align_to)
            px = tuple(config["scan"]["pixels"])
            if a.shape != (px[1], px[0]):
                raise ParameterError("align_to", f"got shape {a.shape}; expected the scan's (rows, cols) = "
                                                 f"{(px[1], px[0])} (scan.pixels = [nx, ny])")
            if align_metric not in MISFITS:
                raise ParameterError("align_metric", f"got {align_metric!r}; allowed {MISFITS}")
            self.align_to = a
            self.align_metric = align_metric

    def config_for(self, params: Mapping[str, float]):
        """The config of one simulation: the base config with ``params`` applied (values in SI)."""
        extra: dict = {}
        for name, value in params.items():
            _merge(extra, _override(name, float(value)))
        return self.config.with_overrides(_merge(_source_copy(self.config), extra))

    def _out(self, resp):
        if self.output == "complex":
            return resp
        return np.abs(resp) if self.output == "amplitude" else np.degrees(np.angle(resp))

    def __call__(self, params: Mapping[str, float]) -> np.ndarray:
        """Simulate the map with ``params`` (names as in :func:`fit_parameters`, values in SI).

        Returns
        -------
        ndarray, shape (rows, cols) = (y, x)
            Amplitude (m/V), complex response (m/V) or phase (deg), as ``output`` says.
        """
        from threadpoolctl import threadpool_limits

        from ..probe import ScanGrid, single_frequency_map
        from ..simulation import map_settings, scan_grid

        cfg = self.config_for(params)
        t0 = time.perf_counter()
        if self.align_to is None:
            scan, px = scan_grid(cfg), cfg["scan"]["pixels"]
        else:  # the whole film on its voxel centres, sampled below on the aligned scan
            scan, px = ScanGrid(pixels=tuple(self.film.shape[:2])), self.film.shape[:2]
        tile = self._tile if self._tile is not None else _tile_for(cfg, self.film, px)
        # one BLAS thread: many small dense operations run several times slower with threads on a shared machine
        with threadpool_limits(1 if self.workers == 1 else None):
            res = single_frequency_map(self.film, cfg.material(), map_settings(cfg), workers=self.workers,
                                       tile=tile, scan=scan)
        self.n_calls += 1
        if self.align_to is None:
            self.seconds += time.perf_counter() - t0
            return self._out(res.response.T)  # (y, x)
        resp, geo = self._align(res.response, cfg)
        self.scans.append(geo)
        self.seconds += time.perf_counter() - t0
        return self._out(resp)

    def _align(self, voxels, cfg):
        """Sample the voxel-centred response (nx, ny) on the scan geometry (rotation, scale, centre) that
        minimises the misfit against ``align_to``, starting from the config's scan; bilinear interpolation
        between voxel centres as the engine does for scans off the voxel centres."""
        from scipy import ndimage
        from scipy.optimize import minimize

        ms = self.film
        h = np.asarray(ms.spacing[:2], float)
        ext = np.asarray(ms.extent[:2], float)
        sc = cfg["scan"]
        nx, ny = sc["pixels"]
        size0 = np.asarray(sc["size"] if sc["size"] is not None else ext, float)
        c0 = np.asarray(sc["center"] if sc["center"] is not None else ext / 2, float)
        rot0 = float(sc["rotation"])
        u = (np.arange(nx) + 0.5) / nx - 0.5
        v = (np.arange(ny) + 0.5) / ny - 0.5
        mode = "grid-wrap" if ms.periodic else "nearest"
        re, im = np.ascontiguousarray(voxels.real), np.ascontiguousarray(voxels.imag)
        out_kind = self.output

        def sample(x):
            rot, scale = rot0 + x[0], math.exp(x[1])
            cx, cy = c0[0] + x[2] * h[0], c0[1] + x[3] * h[1]
            U, V = np.meshgrid(u * size0[0] * scale, v * size0[1] * scale, indexing="ij")
            c, s_ = math.cos(rot), math.sin(rot)
            gx = (cx + c * U - s_ * V) / h[0] - 0.5
            gy = (cy + s_ * U + c * V) / h[1] - 0.5
            coords = np.stack([gx, gy])
            z = ndimage.map_coordinates(re, coords, order=1, mode=mode) \
                + 1j * ndimage.map_coordinates(im, coords, order=1, mode=mode)
            return z.T  # (y, x)

        def cost(x):
            z = sample(x)
            sim = z if out_kind == "complex" else (np.abs(z) if out_kind == "amplitude" else np.degrees(np.angle(z)))
            return misfit(sim, self.align_to, metric=self.align_metric)

        x0 = np.zeros(4)
        step = np.array([math.radians(0.5), 0.005, 0.5, 0.5])
        r = minimize(cost, x0, method="Nelder-Mead", options={
            "initial_simplex": np.vstack([x0, x0 + np.diag(step)]), "xatol": 1e-4, "fatol": 1e-9, "maxiter": 800})
        x = r.x if r.fun < cost(x0) else x0
        geo = {"pixels": [int(nx), int(ny)], "size": (size0 * math.exp(x[1])).tolist(),
               "center": [float(c0[0] + x[2] * h[0]), float(c0[1] + x[3] * h[1])], "rotation": float(rot0 + x[0])}
        return sample(x), geo


def auto_tile(config, film) -> int:
    """Tips per tile side for the config's scan: the whole map in one tile when a tile's solve window (tile
    plus the window half-width on each side) would cover the film anyway, else ``numerics.tile``."""
    return _tile_for(config, film, config["scan"]["pixels"])


def _tile_for(config, film, pixels) -> int:
    from ..simulation import map_settings

    tile = int(config["numerics"]["tile"])
    hw = int(np.ceil(map_settings(config).window_for(config.material()) / film.spacing[0]))
    return int(max(pixels)) if tile + 2 * hw >= min(film.shape[:2]) else tile


def _source_copy(config) -> dict:
    import copy

    return copy.deepcopy(config.source)


def map_forward(config, film=None, *, output: str = "amplitude", workers: int = 1, tile: int | None = None,
                align_to=None, align_metric: str = "relative_l2") -> MapForward:
    """A forward model for :func:`fit_parameters`: the config's single-frequency map as a function of parameters.

    Parameters
    ----------
    config : esmsim.config.Config
        Base config (``excitation.mode = "single_frequency"``): material, tip,
        frequency, scan (pixels, size, centre, rotation) and numerics.
    film : ColumnarMicrostructure or Microstructure, optional
        The film to simulate (e.g. segmented from the measured scan, see
        :func:`esmsim.compare.microstructure_from_scan`); default the config's
        microstructure, built once. A voxel volume that is not columnar is mapped
        by the volume engine.
    output : {"amplitude", "complex", "phase"}
        What the model returns: ``|u3|`` per volt (m/V), the complex response
        (m/V) or its phase (deg).
    workers : int
        Worker processes per map (1: in this process, with one BLAS thread).
    tile : int, optional
        Tips per tile side (one LU factorisation per tile); default
        ``numerics.tile``, or the whole map when a tile's window would cover
        the film anyway. A smaller ``scan.window`` (e.g. twice the tip width)
        makes small tiles cheaper.
    align_to : array_like, shape (rows, cols), optional
        The measured map on the config's scan grid (``scan.pixels``, and the
        size, centre and rotation a registration found, see
        :func:`scan_from_registration`). Each call then simulates the whole
        film on its voxel centres and samples it (bilinearly, as the engine
        does off voxel centres) on the scan geometry, within a few pixels and
        degrees of the config's, that fits ``align_to`` best (Nelder-Mead over
        rotation, scale and centre; ``align_metric``). Sub-pixel errors of an
        image registration matter on maps whose boundaries are 1-2 pixels
        wide; this removes them. The geometries are kept in ``forward.scans``.
    align_metric : str
        Misfit of the alignment (see :func:`misfit`).

    Returns
    -------
    MapForward
        Callable ``forward(params) -> ndarray (rows, cols)`` on the scan grid
        (row = y). Parameter names: any material parameter (``"gb_enhancement"``,
        ``"D_ab"``, ``"gb_width"``, ...), ``"tip_width"`` (``tip.width``),
        ``"contact_radius"``, ``"frequency"``, or a config field
        ``"section.field"``; values in SI.

    Examples
    --------
    >>> from esmsim.config import parse_config
    >>> cfg = parse_config({"microstructure": {"size": ["40 nm", "40 nm"], "grain_size": "30 nm"},
    ...                     "scan": {"pixels": [8, 8]}})
    >>> forward = map_forward(cfg)
    >>> forward({"gb_enhancement": 300.0, "D_ab": 2e-15}).shape
    (8, 8)
    """
    return MapForward(config, film, output=output, workers=workers, tile=tile, align_to=align_to,
                      align_metric=align_metric)


def scan_from_registration(registration, *, film_extent) -> dict:
    """Config overrides of the scan a registration found: simulate the measured scan itself.

    ``register(measured, simulated, ...)`` with ``simulated`` a voxel-centred
    map of the whole film (``scan.size = "auto"``) gives where the measured
    field lies on the film. The returned ``[scan]`` table (size, centre and
    rotation on the film, pixels of the measured image) makes the forward
    model simulate the measured tip positions, so that simulated and measured
    maps are compared pixel for pixel without resampling either (tips off the
    voxel centres interpolate the voxel solves, see ``scan.rotation``).

    Parameters
    ----------
    registration : esmsim.compare.Registration
        Moving = the measured map, fixed = the simulated whole-film map.
    film_extent : (float, float)
        Film size ``(Lx, Ly)`` in m (``film.extent``).

    Returns
    -------
    dict
        ``{"scan": {"pixels": [nx, ny], "size": [Lx, Ly], "center": [x, y], "rotation": angle}}`` in SI
        (m, rad), for :meth:`esmsim.config.Config.with_overrides`.

    Notes
    -----
    A scan rotated by ``theta`` (its x axis the film's x turned counter-clockwise
    with y up) appears in :func:`~esmsim.compare.register`'s convention (row 0
    at the top) as a rotation of ``-theta``; its centre is the film centre plus
    the registered shift.
    """
    reg = registration
    (ny, nx), (hy, hx) = reg.moving_shape, reg.spacing_moving
    Lx, Ly = (float(v) for v in film_extent)
    dy, dx = reg.shift
    return {"scan": {"pixels": [int(nx), int(ny)], "size": [nx * hx * reg.scale, ny * hy * reg.scale],
                     "center": [Lx / 2 + dx, Ly / 2 + dy], "rotation": -math.radians(reg.rotation)}}


# --------------------------------------------------------------------------------------------------------------
# the fit


@dataclass(frozen=True)
class FitResult:
    """Result of :func:`fit_parameters`.

    Attributes
    ----------
    params : dict
        Best parameters found (SI), the simulation with the lowest misfit.
    misfit : float
        Its misfit.
    n_evaluations : int
        Forward simulations run (cached repeats not counted).
    history : tuple of (dict, float)
        Every simulation's parameters and misfit, in the order run.
    near_optimal : dict
        Per parameter, (min, max) over the simulations whose misfit is within
        ``tolerance`` (relative) of the best: a wide range flags a parameter the
        data do not pin down (with few simulations near the optimum it is a
        lower bound of the true spread).
    seconds : float
        Wall time (s).
    metric : str
        The misfit used.
    bounds : dict
        The searched box: name -> (low, high, scale).
    standard_error : dict
        Least-squares misfits: per parameter the standard error (SI) from the
        Gauss-Newton covariance ``s^2 (J^T J)^-1`` at the best point, with
        ``s^2`` the residual variance: what white noise of the residual's size
        allows. Systematic model error (registration, numerics) is not in it.
        Empty for other misfits.
    correlation : ndarray, shape (d, d), or None
        The correlation matrix of the same covariance (order of ``params``):
        values near +-1 mark a valley in which two parameters trade off.
    """

    params: dict
    misfit: float
    n_evaluations: int
    history: tuple
    near_optimal: dict
    seconds: float
    metric: str
    bounds: dict = field(default_factory=dict)
    standard_error: dict = field(default_factory=dict)
    correlation: object = None

    def table(self) -> str:
        """The result as lines of text: parameter, best value, near-optimal range, bounds."""
        rows = [f"misfit ({self.metric}) {self.misfit:.4g} after {self.n_evaluations} simulations, "
                f"{self.seconds:.1f} s"]
        for k, v in self.params.items():
            lo, hi = self.near_optimal[k]
            b = self.bounds.get(k)
            se = self.standard_error.get(k)
            rows.append(f"  {k:16s} {v:<12.4g}" + (f" +- {se:<10.2g}" if se is not None else "")
                        + f" near-optimal {lo:.4g} .. {hi:.4g}"
                        + (f"   (searched {b[0]:.4g} .. {b[1]:.4g}, {b[2]})" if b else ""))
        if self.correlation is not None and len(self.params) > 1:
            names = list(self.params)
            pairs = [f"{names[i]}/{names[j]} {self.correlation[i, j]:+.2f}" for i in range(len(names))
                     for j in range(i + 1, len(names))]
            rows.append("  correlation: " + ", ".join(pairs))
        return "\n".join(rows)


def _bounds(parameters) -> dict:
    if not isinstance(parameters, Mapping) or not parameters:
        raise ParameterError("parameters", f"got {parameters!r}; expected a dict name -> (low, high[, 'log'|'linear'])")
    out = {}
    for name, spec in parameters.items():
        try:
            lo, hi, *rest = spec
            lo, hi = float(lo), float(hi)
            scale = rest[0] if rest else "log"
        except (TypeError, ValueError):
            raise ParameterError(f"parameters.{name}", f"got {spec!r}; expected (low, high) or (low, high, "
                                                       "'log'|'linear')") from None
        if len(rest) > 1 or scale not in ("log", "linear"):
            raise ParameterError(f"parameters.{name}", f"got {spec!r}; the third item must be 'log' or 'linear'")
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ParameterError(f"parameters.{name}", f"got low {lo!r}, high {hi!r}; need finite low < high")
        if scale == "log" and lo <= 0:
            raise ParameterError(f"parameters.{name}", f"got low {lo!r}; a 'log' range needs low > 0")
        out[name] = (lo, hi, scale)
    return out


def _to_params(u, bounds) -> dict:
    p = {}
    for x, (name, (lo, hi, scale)) in zip(u, bounds.items()):
        x = float(np.clip(x, 0.0, 1.0))
        p[name] = float(math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo)))) if scale == "log" \
            else float(lo + x * (hi - lo))
    return p


def _latin_hypercube(n, d, rng):
    from scipy.stats import qmc

    try:
        sampler = qmc.LatinHypercube(d, rng=rng)
    except TypeError:  # pragma: no cover - SciPy < 1.15
        sampler = qmc.LatinHypercube(d, seed=rng)
    return sampler.random(n)


def _surrogate(U, y):
    from scipy.interpolate import RBFInterpolator

    # thin-plate spline with a linear tail; a whisker of smoothing keeps near-duplicate points harmless
    return RBFInterpolator(U, y, kernel="thin_plate_spline", degree=1, smoothing=1e-8)


def _surrogate_minimum(s, U, y, rng):
    from scipy.optimize import minimize

    d = U.shape[1]
    starts = [U[i] for i in np.argsort(y)[:3]] + list(rng.uniform(size=(3, d)))
    best = None
    for x0 in starts:
        r = minimize(lambda x: float(s(x[None, :])[0]), x0, method="L-BFGS-B", bounds=[(0.0, 1.0)] * d)
        if best is None or r.fun < best.fun:
            best = r
    return np.clip(best.x, 0.0, 1.0)


def _residual_function(meas, metric):
    """Residual vector r(sim) (real) with ``||r|| = misfit(sim, meas, metric)`` for the least-squares misfits."""
    ok = np.isfinite(meas)
    m = meas[ok]
    norm = float(np.sqrt(np.sum(np.abs(m) ** 2))) or 1.0

    def residual(sim):
        a = np.asarray(sim)[ok]
        a = np.where(np.isfinite(a), a, m)  # a pixel the simulation lacks counts as a match
        if metric == "gain_l2":
            ss = np.sum(np.abs(a) ** 2)
            a = a * (float(np.real(np.vdot(a, m)) / ss) if ss > 0 else 0.0)
        r = (a - m) / norm
        return np.concatenate([r.real, r.imag]) if np.iscomplexobj(r) else r.astype(float)

    return residual


def _global_search(U, y, n_global, evaluate, rng, d) -> float:
    """RBF-surrogate steps (stochastic RBF, Regis and Shoemaker) until ``n_global`` simulations; returns sigma."""
    sigma, fails, weights, step = 0.2, 0, (0.3, 0.5, 0.8, 0.95), 0
    while len(y) < n_global:
        Ua = np.array(U)
        ly = np.log(np.maximum(np.array(y), 1e-300))
        s = _surrogate(Ua, ly)
        ib = int(np.argmin(ly))
        best_before = ly[ib]
        if step % 5 == 4:
            cand = _surrogate_minimum(s, Ua, ly, rng)[None, :]
            w = 1.0
        else:
            n = 100 * d
            local = np.clip(Ua[ib] + sigma * rng.standard_normal((n, d)), 0.0, 1.0)
            cand = np.vstack([local, rng.uniform(size=(n, d))])
            w = weights[step % 5]
        sv = s(cand)
        dist = np.min(np.linalg.norm(cand[:, None, :] - Ua[None, :, :], axis=-1), axis=1)
        if w < 1.0:
            vs = (sv - sv.min()) / (np.ptp(sv) or 1.0)
            vd = 1.0 - (dist - dist.min()) / (np.ptp(dist) or 1.0)
            total = w * vs + (1 - w) * vd
            total[dist < 1e-4] = np.inf  # already simulated
            pick = cand[int(np.argmin(total))]
        else:
            pick = cand[0]
            if dist[0] < 1e-4:  # the surrogate's minimum was simulated: a local step instead
                pick = np.clip(Ua[ib] + sigma * rng.standard_normal(d), 0.0, 1.0)
        v = evaluate(pick)
        if math.log(max(v, 1e-300)) < best_before - 1e-3 * abs(best_before):
            fails = 0
        else:
            fails += 1
            if fails >= 3:
                sigma, fails = max(sigma / 2, 0.005), 0
        step += 1
    return sigma


_FD_STEP = 0.01  # finite-difference step in unit-box coordinates (1 % of the log range)
_STEP_TOL = 1e-3  # LM stops at steps below this (unit box: 0.1 % of the range, ~0.5 % of s over 10 .. 3000)


def _levenberg_marquardt(U, y, R, budget, evaluate, d):
    """Levenberg-Marquardt from the best simulation so far on the residual vectors, in unit-box coordinates.

    The Jacobian comes from forward differences (``d`` simulations) and is updated by Broyden's rank-one
    formula after each accepted step; a rejected step with an updated (not fresh) Jacobian recomputes it by
    differences, a rejected step with a fresh one raises the damping tenfold. Stops at ``budget``
    simulations, or when, with a fresh Jacobian, the step is below ``_STEP_TOL``, promises less than 1e-6 of
    the squared misfit, or the damping passes 1e3. Returns the last Jacobian (None if none was computed).
    """
    ib = int(np.argmin(y))
    u, r, f = U[ib].copy(), R[ib], y[ib]
    jac, last, fresh, lam = None, None, False, 1e-3

    def differences():
        cols = []
        for j in range(d):
            h = _FD_STEP if u[j] + _FD_STEP <= 1.0 else -_FD_STEP
            e = u.copy()
            e[j] += h
            evaluate(e)
            cols.append((R[-1] - r) / h)
        return np.stack(cols, axis=1)

    while len(y) < budget:
        if jac is None:
            if len(y) + d >= budget:
                break  # no room for a Jacobian and a step
            jac = last = differences()
            fresh, lam = True, max(lam, 1e-3)
            k = int(np.argmin(y))  # a difference point may itself be the best so far
            if y[k] < f:
                u, r, f = U[k].copy(), R[k], y[k]
        g = jac.T @ r
        A = jac.T @ jac
        dA = np.diag(np.diag(A)) + 1e-12 * np.trace(A) * np.eye(d)
        try:
            step = np.linalg.solve(A + lam * dA, -g)
        except np.linalg.LinAlgError:
            step = -g / (np.linalg.norm(g) or 1.0) * 0.01
        new = np.clip(u + step, 0.0, 1.0)
        moved = new - u
        predicted = float(r @ r) - float(np.sum((r + jac @ moved) ** 2))
        if not np.all(np.isfinite(moved)) or np.max(np.abs(moved)) < _STEP_TOL or predicted < 1e-6 * float(r @ r):
            if fresh:
                break  # converged: the model, with a Jacobian just computed, promises nothing more
            jac = None  # check with a fresh Jacobian first
            continue
        v = evaluate(new)
        if v < f:
            r_new = R[-1]
            jac = last = jac + np.outer((r_new - r) - jac @ moved, moved) / float(moved @ moved)  # Broyden
            u, r, f = new, r_new, v
            lam, fresh = max(lam / 3, 1e-6), False
        elif not fresh:
            jac = None  # the updated Jacobian misled: recompute it
        else:
            lam *= 10
            if lam > 1e3:
                break  # a fresh Jacobian and still no descent: as good as the model allows
    return last


def _standard_errors(jac, r, u, bounds):
    """Standard errors of the parameters and their correlation from the Gauss-Newton covariance
    ``s^2 (J^T J)^-1``, ``s^2 = |r|^2 / (N - d)`` (white, independent residuals; model error inflates it)."""
    n, d = jac.shape
    try:
        cov = (float(r @ r) / max(n - d, 1)) * np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return {}, None
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    corr = cov / np.outer(sd, sd) if np.all(sd > 0) else None
    out = {}
    for j, (name, (lo, hi, scale)) in enumerate(bounds.items()):
        if scale == "log":
            value = _to_params(u, bounds)[name]
            out[name] = float(value * sd[j] * (math.log(hi) - math.log(lo)))  # relative sd of ln p, times p
        else:
            out[name] = float(sd[j] * (hi - lo))
    return out, corr


def _quadratic_step(U, y, ib, radius, rng):
    """Minimiser of a quadratic model of ``misfit^2`` within the box of half-width ``radius`` about point ``ib``.

    The model is a weighted least-squares fit to the simulations nearest the best (at least twice as many as
    the model's coefficients; weights fall off beyond the trust radius); a point already simulated is
    replaced by a random one inside half the radius.
    """
    from scipy.optimize import minimize

    n, d = U.shape
    best = U[ib]
    iu = np.triu_indices(d)

    def features(X):
        X = np.atleast_2d(X) - best
        quad = (X[:, :, None] * X[:, None, :])[:, iu[0], iu[1]]
        return np.hstack([np.ones((len(X), 1)), X, quad])

    n_coef = 1 + d + len(iu[0])
    r = np.max(np.abs(U - best), axis=1)
    k = min(n, max(2 * n_coef, n_coef + 4))
    near = np.argsort(r)[:k]
    w = 1.0 / (1.0 + (r[near] / (2 * radius)) ** 2)
    A = features(U[near]) * w[:, None]
    coef = np.linalg.lstsq(A, (y[near] ** 2) * w, rcond=None)[0]
    lo, hi = np.maximum(best - radius, 0.0), np.minimum(best + radius, 1.0)
    res = minimize(lambda x: float((features(x) @ coef)[0]), best, method="L-BFGS-B", bounds=list(zip(lo, hi)))
    pick = np.clip(res.x, lo, hi)
    if np.min(np.max(np.abs(U - pick), axis=1)) < 1e-4:
        pick = np.clip(best + 0.5 * radius * rng.uniform(-1, 1, d), 0.0, 1.0)
    return pick


def fit_parameters(measured_map, forward: Callable, *, parameters: Mapping, metric="relative_l2", budget: int = 30,
                   rng=0, spacing=None, boundaries=None, tolerance: float = 0.05,
                   callback: Callable | None = None) -> FitResult:
    """Estimate model parameters from a measured map with a few tens of forward simulations.

    The misfit between ``forward(params)`` and ``measured_map`` is minimised
    over a box of parameters, searched in log space for ``"log"`` ranges:

    1. a Latin hypercube of ``n0 = min(max(2 d + 2, 10), budget // 2)``
       simulations (``d`` parameters);
    2. global search, one simulation at a time, for a fifth of the rest of
       the budget (a third for misfits that are not least squares): a
       thin-plate-spline RBF surrogate of ``log(misfit)`` over
       all simulations so far (``scipy.interpolate.RBFInterpolator``) scores
       candidates: the surrogate's own minimum (L-BFGS-B) every fifth step,
       otherwise ``200 d`` random candidates (Gaussian steps of ``sigma``
       around the best point, and uniform ones) weighed between a low
       surrogate value and the distance to points already simulated (weights
       cycling 0.3, 0.5, 0.8, 0.95: exploration to local search) [1]_.
       ``sigma`` starts at 0.2 of the box and halves after 3 steps without
       improvement;
    3. local search for the rest. Least-squares misfits (``"relative_l2"``,
       ``"gain_l2"``): Levenberg-Marquardt on the residual vector from the
       best point, the Jacobian by forward differences (1 % of the box,
       ``d`` simulations) and Broyden updates after accepted steps [2]_;
       it stops early when, with a fresh Jacobian, a step is below 0.1 % of
       the box or promises less than 1e-6 of ``misfit^2``. Gauss-Newton
       resolves the narrow valleys of correlated parameters (D_gb/D_bulk
       against D_bulk) that an RBF surrogate of few points does not. Other
       misfits: trust-region steps to the minimum of a quadratic model of
       ``misfit^2`` (least squares on the simulations nearest the best).

    ``budget`` is therefore an upper bound; the Gauss-Newton covariance at
    the best point gives standard errors and correlations.

    Parameters
    ----------
    measured_map : array_like, shape (..., rows, cols)
        The measurement on the forward model's grid (register it first, e.g.
        with :func:`scan_from_registration`); NaN pixels are left out. Complex
        (m/V) to fit amplitude and phase, or real amplitudes.
    forward : callable
        ``forward(params: dict) -> ndarray`` of the measured map's shape, e.g.
        :func:`map_forward`. Parameter values are SI.
    parameters : dict
        ``name -> (low, high)`` or ``(low, high, "log" | "linear")`` (default
        log), in SI units, e.g. ``{"gb_enhancement": (10, 1e4, "log"),
        "D_ab": (5e-16, 1e-14, "log"), "tip_width": (5e-9, 20e-9, "log")}``.
    metric : str or callable
        ``"relative_l2"`` (calibrated data, m/V), ``"gain_l2"`` (unknown gain),
        ``"ncc"``, ``"psd"``, ``"profile"`` (see :func:`misfit`) or a function
        ``(simulated, measured) -> float``.
    budget : int
        Largest number of forward simulations, at least ``4 (d + 1)``.
    rng : int or numpy.random.Generator
        Seed of the Latin hypercube and the candidates; the same seed and the
        same forward model give the same fit.
    spacing : float or (float, float), optional
        Pixel size in m (metrics ``"psd"`` and ``"profile"``).
    boundaries : ndarray of bool, optional
        Boundary pixels (metric ``"profile"``).
    tolerance : float
        Relative misfit margin of :attr:`FitResult.near_optimal`.
    callback : callable, optional
        Called as ``callback(params, misfit)`` after every simulation.

    Returns
    -------
    FitResult
        Best parameters, misfit, the simulations run, near-optimal ranges
        and (least squares) standard errors and correlations.

    Notes
    -----
    Identifiability at one frequency (PHYSICS.md 5.7): for a potentiostatic
    tip the in-grain response at high ``Omega = omega d^2 / D`` is
    ``u3 ~ (1 + nu) beta C0 d * 2 / sqrt(i Omega)``, i.e. proportional to
    ``sqrt(D_zz / omega)`` and independent of the tip width ``d``: a
    calibrated amplitude pins ``D_bulk`` (through each grain's ``D_zz``), and
    the excess at the boundaries over the interiors pins ``D_gb / D_bulk``.
    The two trade off along a valley (correlation about -0.9 on a film of
    50 nm grains), which one frequency still resolves. An uncalibrated map
    (``"gain_l2"``, ``"ncc"``, ``"profile"``) loses ``D_bulk`` and keeps the
    ratio. The tip width shows only in the width of the boundary profiles
    (about 5 % standard error on 32 x 32 pixels of 5 nm at SNR 12); a
    second, low frequency where ``Omega ~ 1`` would pin it (see
    docs/compare_fit.md).

    References
    ----------
    .. [1] R. G. Regis and C. A. Shoemaker, "A stochastic radial basis
       function method for the global optimization of expensive functions",
       INFORMS J. Comput. 19, 497 (2007). doi:10.1287/ijoc.1060.0182
    .. [2] J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and
       theory", in Numerical Analysis, Lecture Notes in Mathematics 630, 105
       (1978). doi:10.1007/BFb0067700

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 16)
    >>> def forward(p):  # a toy model: an exponential decay of rate k and height a
    ...     return p["a"] * np.exp(-p["k"] * x)[None, :] * np.ones((4, 1))
    >>> meas = forward({"a": 2.0, "k": 3.0})
    >>> fit = fit_parameters(meas, forward, parameters={"a": (0.5, 8.0), "k": (0.3, 30.0)}, budget=30)
    >>> abs(fit.params["a"] / 2 - 1) < 0.05, abs(fit.params["k"] / 3 - 1) < 0.05
    (True, True)
    """
    t0 = time.perf_counter()
    bounds = _bounds(parameters)
    meas = np.asarray(measured_map)
    if meas.ndim < 2 or not np.isfinite(meas).any():
        raise ParameterError("measured_map", f"got shape {meas.shape}; expected a map (rows, cols) with finite pixels")
    residual = None
    if callable(metric):
        score = metric
        metric_name = getattr(metric, "__name__", "custom")
    elif metric in MISFITS:
        def score(s, m):
            return misfit(s, m, metric=metric, spacing=spacing, boundaries=boundaries)
        metric_name = metric
        score(meas, meas)  # validate spacing / boundaries now, before any simulation
        if metric in ("relative_l2", "gain_l2"):
            residual = _residual_function(meas, metric)
    else:
        raise ParameterError("metric", f"got {metric!r}; allowed {MISFITS} or a function (simulated, measured) -> "
                                       "float")
    d = len(bounds)
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 4 * (d + 1):
        raise ParameterError("budget", f"got {budget!r}; expected an integer >= {4 * (d + 1)} (simulations) for "
                                       f"{d} parameter{'s' if d > 1 else ''}")
    n0 = min(max(2 * d + 2, 10), budget // 2)
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ParameterError("tolerance", f"got {tolerance!r}; expected a relative margin >= 0")
    rng = np.random.default_rng(rng)

    U: list[np.ndarray] = []
    y: list[float] = []
    R: list = []
    history: list[tuple[dict, float]] = []

    def evaluate(u):
        u = np.clip(np.asarray(u, float), 0.0, 1.0)
        p = _to_params(u, bounds)
        sim = forward(p)
        v = float(score(sim, meas))
        if not np.isfinite(v):
            raise ParameterError("forward", f"the misfit of {p} is {v!r}; the forward model returned no usable map")
        U.append(u)
        y.append(v)
        R.append(residual(sim) if residual is not None else None)
        history.append((p, v))
        if callback is not None:
            callback(p, v)
        return v

    for u in _latin_hypercube(n0, d, rng):
        evaluate(u)
    n_global = n0 + ((budget - n0) // 5 if residual is not None else (budget - n0) // 3)
    sigma = _global_search(U, y, n_global, evaluate, rng, d)

    jac = None
    if residual is not None:  # least squares: Levenberg-Marquardt with a finite-difference / Broyden Jacobian
        jac = _levenberg_marquardt(U, y, R, budget, evaluate, d)
    else:  # any misfit: trust-region steps on a quadratic model of misfit^2
        radius = max(2 * sigma, 0.05)
        while len(y) < budget:
            Ua = np.array(U)
            ya = np.array(y)
            ib = int(np.argmin(ya))
            pick = _quadratic_step(Ua, ya, ib, radius, rng)
            v = evaluate(pick)
            if v < ya[ib] * (1 - 1e-6):
                step_len = float(np.max(np.abs(pick - Ua[ib])))
                radius = min(max(radius, 2 * step_len), 0.5)
            else:
                radius = max(radius / 2, 1e-3)

    ib = int(np.argmin(y))
    best = history[ib][0]
    near = {}
    for name in bounds:
        vals = [p[name] for p, v in history if v <= y[ib] * (1 + tolerance)]
        near[name] = (float(min(vals)), float(max(vals)))
    errors, corr = {}, None
    if jac is not None and R[ib] is not None:
        errors, corr = _standard_errors(jac, R[ib], U[ib], bounds)
    return FitResult(params=dict(best), misfit=float(y[ib]), n_evaluations=len(y), history=tuple(history),
                     near_optimal=near, seconds=time.perf_counter() - t0, metric=metric_name, bounds=dict(bounds),
                     standard_error=errors, correlation=corr)
