"""Single-frequency ESM map of a columnar film: one transport + mechanics solve per tip position.

Each pixel is solved on a window of the film centred on the tip (lateral
half-width ``window``, the full film depth or a few diffusion lengths,
whichever is less); the sides of the window are no-flux. At ESM frequencies
the response under the tip depends only on a neighbourhood of a few tip
widths and diffusion lengths, and pixels whose window holds a single grain
give the same answer for the same grain, so they are solved once per grain.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from ..materials import Material
from ..mechanics._halfspace import box_kernel
from ..mechanics._contact import hertz_average_points
from ..mechanics._points import deviator, tensor_box_weights
from ..microstructure._columnar import ColumnarMicrostructure
from ..microstructure._grid import Grid, graded_widths
from ..microstructure._orientations import rotate_diagonal
from ..microstructure._symmetry import classify_boundaries
from ..transport._boundaries import boundary_network
from ..transport._frequency import solve_frequency, tip_rhs
from ..transport._operator import assemble

__all__ = ["MapSettings", "MapResult", "ScanGrid", "single_frequency_map", "pixel_response"]


@dataclass(frozen=True)
class MapSettings:
    """Numerical and instrument settings of a single-frequency map (SI units).

    Attributes
    ----------
    frequency : float
        Excitation frequency (Hz).
    tip_profile : str
        ``"lorentzian"``, ``"point_charge"`` or ``"disk"``.
    tip_width : float
        Field width d (or disk radius), m.
    pixels : (int, int)
        Map size (nx, ny); tip positions are microstructure pixel centres spread evenly over the film.
    window : float, optional
        Lateral half-width of the solve window (m); default
        ``max(4 d, 4 L_max)`` with ``L_max = sqrt(max(D_gb, D_bulk) / omega)``.
    bottom : str
        ``"blocking"`` or ``"reservoir"``.
    z_growth : float
        Growth ratio of the graded z cells.
    z_first : float
        First z cell as a fraction of the thinnest diffusion length sqrt(D_zz / omega).
    vegard : str
        ``"isotropic"`` (default): trace/3 of the Vegard tensor with the exact Mindlin box kernel.
        ``"tensor"``: each grain's rotated Vegard tensor through the real-space Boussinesq reciprocity
        (:func:`~esmsim.mechanics.tensor_box_weights`): column cells by one table of weights per tile,
        the sub-grid bulk layers beside slabs with their cell's grain, the slab's own Li with the mean of
        its two grains' tensors (an assumption). A (003) LiCoO2 grain responds 1.4x its trace/3 value,
        a (110) grain 0.8x; the demo map takes ~1.6x longer. Not the default while the Vegard strain of
        boundary Li is an assumption (docs/mechanics.md, "In maps").
    contact_radius : float
        Radius a (m) of the tip-surface contact (e.g. from :func:`~esmsim.mechanics.hertz_contact`): the
        displacement is averaged over the contact disk with the Hertz pressure ``sqrt(1 - rho^2/a^2)`` as
        weight (24-point quadrature), which is what a rigid tip in contact senses. 0 (default): the point
        under the tip.
    """

    frequency: float
    tip_profile: str = "lorentzian"
    tip_width: float = 10e-9
    pixels: tuple[int, int] = (32, 32)
    window: float | None = None
    bottom: str = "blocking"
    z_growth: float = 1.3
    z_first: float = 0.125
    vegard: str = "isotropic"
    contact_radius: float = 0.0

    def __post_init__(self):
        if self.vegard not in ("isotropic", "tensor"):
            raise ValueError(f"vegard: got {self.vegard!r}; allowed 'isotropic' or 'tensor'")
        if not (np.isfinite(self.contact_radius) and 0 <= self.contact_radius < self.tip_width * 10):
            raise ValueError(f"contact_radius: got {self.contact_radius!r} m; allowed 0 <= a < 10 tip widths")

    def diffusion_lengths(self, material: Material, Dzz_min: float) -> tuple[float, float]:
        """``(L_min, L_max)`` in m: thinnest surface layer to resolve and deepest penetration."""
        omega = 2 * np.pi * self.frequency
        L_ref = np.sqrt(material.D_reference / omega)
        L_min = max(np.sqrt(Dzz_min / omega), 0.01 * L_ref)
        return L_min, max(np.sqrt(material.D_gb / omega), L_ref)

    def window_for(self, material: Material) -> float:
        """Lateral half-width of the solve window (m)."""
        if self.window is not None:
            return float(self.window)
        return max(4 * self.tip_width, 4 * self.diffusion_lengths(material, material.D_reference)[1])


@dataclass(frozen=True)
class MapResult:
    """Complex response map and the tip positions it was computed at.

    Attributes
    ----------
    response : ndarray, complex, shape (nx, ny)
        Outward surface displacement per volt of AC bias (m/V), ``u3 = Re[response V exp(i omega t)]``.
    ix, iy : ndarray of int
        Microstructure pixel indices of the tip positions along x and y (of the voxel-centred solves that a
        rotated or offset scan interpolates).
    n_solves : int
        Number of factorised windows (tiles; single-grain tiles share one solve per grain).
    seconds : float
        Wall time of the map (s).
    positions : ndarray (nx, ny, 2), optional
        Film coordinates of the tips of a :class:`ScanGrid` scan (m).
    scan_x, scan_y : ndarray, optional
        Scan-frame pixel coordinates (m).
    """

    response: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    n_solves: int
    seconds: float
    positions: np.ndarray | None = None
    scan_x: np.ndarray | None = None
    scan_y: np.ndarray | None = None

    def tip_positions(self, ms) -> np.ndarray:
        """Film coordinates (m) of the tip at every map pixel, shape (nx, ny, 2)."""
        if self.positions is not None:
            return self.positions
        xv, yv = ms.pixel_centers()
        X, Y = np.meshgrid(xv[self.ix], yv[self.iy], indexing="ij")
        return np.stack([X, Y], -1)

    def scan_axes(self, ms) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (m) along x and y: film coordinates of the voxel-centred default scan, the
        scan frame (from its corner) otherwise."""
        if self.scan_x is not None:
            return self.scan_x, self.scan_y
        xv, yv = ms.pixel_centers()
        return xv[self.ix], yv[self.iy]


_WEIGHT_CACHE = 128  # displacement weights kept per window engine (windows of identical geometry reuse them)


def contact_average(weights_at, tip, offsets, weights):
    """``weights_at`` (a function of a surface point) averaged over the contact quadrature
    (:func:`~esmsim.mechanics.hertz_average_points`) around ``tip``."""
    total = None
    for (dx, dy), w in zip(offsets, weights):
        term = w * weights_at((tip[0] + dx, tip[1] + dy))
        total = term if total is None else total + term
    return total


def grain_diffusivities(ms: ColumnarMicrostructure, material: Material) -> np.ndarray:
    """Diagonal sample-frame diffusivities ``(D_xx, D_yy, D_zz)`` of each grain, m^2/s, shape (n, 3)."""
    T = rotate_diagonal(ms.rotations, material.principal_diffusivities())
    return np.stack([T[:, 0, 0], T[:, 1, 1], T[:, 2, 2]], -1)


def boundary_factors(ms: ColumnarMicrostructure, material: Material) -> np.ndarray:
    """D_gb multiplier for every grain pair from its boundary class, shape (n_grains, n_grains).

    Low-angle boundaries get ``gb_factor_low_angle``, twins ``gb_factor_twin``,
    high-angle boundaries 1 (classes from the disorientation under the
    material's crystal symmetry, see :func:`esmsim.microstructure.classify_boundaries`).
    """
    n = ms.n_grains
    f = np.ones((n, n))
    low, twin = material["gb_factor_low_angle"], material["gb_factor_twin"]
    if low == 1.0 and twin == 1.0:
        return f
    q = ms.quaternions
    _, cls = classify_boundaries(q[:, None, :], q[None, :, :], material.symmetry)
    f[cls == 1] = low
    f[cls == 2] = twin
    return f


def _z_widths(ms, material, settings, Dg):
    """Graded z cells: first cell ``z_first * L_min``, down to 10 L_max or the film bottom."""
    L_min, L_max = settings.diffusion_lengths(material, Dg[:, 2].min())
    depth = min(ms.thickness, 10 * L_max)
    first = min(settings.z_first * L_min, depth / 10)
    return graded_widths(first, settings.z_growth, depth, max_width=min(ms.spacing))


def window_range(lo: int, hi: int, hw: int, n: int, periodic: bool):
    """Pixel indices of a window covering tip pixels lo..hi plus ``hw`` on each side, and the offset of lo
    in it. Periodic films wrap (a window that would overlap itself is the whole film, once)."""
    if periodic:
        r = np.arange(lo - hw, hi + hw + 1)
        if r.size >= n:
            r = np.arange(lo - (n - (hi - lo + 1)) // 2, lo - (n - (hi - lo + 1)) // 2 + n)
        return r % n, lo - r[0]
    r = np.arange(max(lo - hw, 0), min(hi + hw + 1, n))
    return r, lo - r[0]


class _Window:
    """Everything needed to solve a tile of tip positions; shared by all tiles of a map."""

    def __init__(self, ms: ColumnarMicrostructure, material: Material, settings: MapSettings):
        self.ms, self.material, self.settings = ms, material, settings
        self.Dg = grain_diffusivities(ms, material)
        self.dz = _z_widths(ms, material, settings, self.Dg)
        h = ms.spacing[0]
        self.window = settings.window_for(material)
        self.hw = int(np.ceil(self.window / h))
        self.C0 = 1.0 / material.dU_dc  # mol/m^3 per volt (PHYSICS.md sec. 2: C0 = V / |dU/dc|)
        self.mindlin = (1 + material["nu"]) / np.pi * material.beta_isotropic  # m^3/mol
        self.pref = self.mindlin * self.C0
        self._bulk_weights: OrderedDict = OrderedDict()  # (box geometry, tip) -> weights; bounded
        self.contact_offsets, self.contact_weights = hertz_average_points(settings.contact_radius)
        if settings.vegard == "tensor":
            B = rotate_diagonal(ms.rotations, material.principal_vegard())  # (n_grains, 3, 3), m^3/mol
            self.beta_dev = deviator(B)
        self.gb_factor = boundary_factors(ms, material)
        # tiles share one LU across their tips; a single tip on a large window (low-frequency spectroscopy)
        # is better served by solve_frequency's choice (z-line or AMG preconditioned GMRES above 40 000)
        self.method = "direct"

    def _averaged(self, weights_at, tip):
        return contact_average(weights_at, tip, self.contact_offsets, self.contact_weights)

    def _range(self, lo, hi, n):
        return window_range(lo, hi, self.hw, n, self.ms.periodic)

    def _labels(self, ix, iy, indices=False):
        """Grain labels of the window of tips ``ix x iy`` and the offsets of ``(ix[0], iy[0])`` in it
        (and the film's column indices of the window when ``indices``)."""
        xi, ox = self._range(ix[0], ix[-1], self.ms.shape[0])
        yi, oy = self._range(iy[0], iy[-1], self.ms.shape[1])
        lab = self.ms.labels[np.ix_(xi, yi)]
        return (lab, ox, oy, xi, yi) if indices else (lab, ox, oy)

    def _boundary_position(self, net, xi, yi) -> np.ndarray | None:
        """Exact boundary points of the window's faces, in the window frame (None without seeds)."""
        if self.ms.seeds is None or not net.n_faces:
            return None
        h = self.ms.spacing[0]
        shift = np.array([xi[0] * h, yi[0] * h])  # window frame -> film frame (unwrapped near the window)
        film = net.face_centres(h, h) + shift
        return self.ms.boundary_point(net.grains[:, 0], net.grains[:, 1], film) - shift

    def solve_tile(self, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        """Complex response (m/V) at every tip position ``(ix[a], iy[b])``; one factorisation for all.

        ``ix`` and ``iy`` are increasing microstructure pixel indices spanning
        less than the film.
        """
        st = self.settings
        ix, iy = np.asarray(ix), np.asarray(iy)
        lab, ox, oy, grid, net, system = self.system(ix, iy, omega=2 * np.pi * st.frequency)
        h = self.ms.spacing[0]
        tips = [((ox + a - ix[0] + 0.5) * h, (oy + b - iy[0] + 0.5) * h) for a in ix for b in iy]
        # Tips whose surface condition (where it applies) is the same share one factorisation: all tips
        # for profiles that apply everywhere (Lorentzian, point charge), one group per tip for a disk.
        rhs = np.empty((system.n, len(tips)))
        groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
        for t, tip in enumerate(tips):
            d_t, rhs[:, t] = tip_rhs(system, tip, profile=st.tip_profile, width=st.tip_width)
            groups.setdefault(d_t.tobytes(), (d_t, []))[1].append(t)
        c = np.empty((system.n, len(tips)), complex)
        for diag, members in groups.values():
            c[:, members] = solve_frequency(system, 2 * np.pi * st.frequency, diag, rhs[:, members],
                                            method=self.method)[0]
        out = np.empty(len(tips), complex)
        if st.vegard == "tensor":
            dev = self._deviatoric(lab, grid, system, ix, iy, ox, oy, c)
            dev += self._deviatoric_boundaries(lab, net, system, tips, c)
        for t, tip in enumerate(tips):
            out[t] = self.C0 * self.isotropic_displacement(system, tip, c[:, t]) + (
                dev[t] if st.vegard == "tensor" else 0.0)
        return out.reshape(ix.size, iy.size)

    def system(self, ix, iy, *, omega):
        """The window of tips ``ix x iy`` (increasing pixel indices) and its assembled diffusion system.

        Parameters
        ----------
        omega : float or None
            Angular frequency (rad/s) of the sub-grid boundary layers; None: time domain (quasi-static).

        Returns
        -------
        lab, ox, oy, grid, net, system
            Labels of the window, offsets of ``(ix[0], iy[0])`` in it, the grid, the boundary network and
            the :class:`~esmsim.transport.DiffusionSystem`.
        """
        ms = self.ms
        lab, ox, oy, xi, yi = self._labels(np.atleast_1d(ix), np.atleast_1d(iy), indices=True)
        h = ms.spacing[0]
        grid = Grid(np.full(lab.shape[0], h), np.full(lab.shape[1], h), self.dz)
        D = np.broadcast_to(self.Dg[lab][:, :, None, :], grid.shape + (3,))
        net = boundary_network(lab, h, h, periodic=False, normal=ms.boundary_normal)
        D_gb = self.material.D_gb * self.gb_factor[net.grains[:, 0], net.grains[:, 1]]
        system = assemble(grid, D, bottom=self.settings.bottom, boundaries=net, D_gb=D_gb,
                          gb_width=self.material["gb_width"], omega=omega,
                          boundary_position=self._boundary_position(net, xi, yi))
        return lab, ox, oy, grid, net, system

    def isotropic_displacement(self, system, tip, c):
        """Outward surface displacement (m per mol/m^3 of ``c``) at ``tip`` from concentration ``c`` (real or
        complex, all unknowns of ``system``) with the isotropic Vegard coefficient trace(beta)/3, averaged
        over the contact when the settings give a contact radius."""
        nb = system.n_bulk
        # the column boxes depend on where slabs sit, not only on the window's shape: key on their geometry
        key = (hashlib.sha1(system.boxes[:nb].tobytes()).digest(), tip)
        if key not in self._bulk_weights:
            self._bulk_weights[key] = self._averaged(lambda p: box_kernel(system.boxes[:nb], p), tip)
            if len(self._bulk_weights) > _WEIGHT_CACHE:
                self._bulk_weights.popitem(last=False)
        self._bulk_weights.move_to_end(key)
        u = self._bulk_weights[key] @ c[:nb]
        u += self._averaged(lambda p: box_kernel(system.boxes[nb:], p), tip) @ c[nb:]
        if system.extra_boxes is not None:  # bulk boundary layers beside the slabs
            u += self._averaged(lambda p: box_kernel(system.extra_boxes, p), tip) @ (system.extra_map @ c)
        return self.mindlin * u

    def _deviatoric(self, lab, grid, system, ix, iy, ox, oy, c):
        """Deviatoric Vegard part of u at every tip of a tile, m/V: ``C0 sum W_dev : beta_dev c`` over the
        column cells (the trace part is the Mindlin kernel, done with the isotropic weights).

        The lateral grid is uniform, so W_dev of a full column cell depends only on its offset from the
        tip: one table over all offsets (and layers) serves every tip of the tile. Columns shrunk beside a
        slab break that: within ``NEAR`` columns of the tip their own boxes are integrated (an asymmetric
        box under the tip has odd components a full one lacks: up to 13 % of the largest weight); farther
        out they take the table's value scaled by their volume fraction.
        """
        NEAR = 3
        nxw, nyw = lab.shape
        nz = grid.shape[2]
        h = grid.dx[0]
        ze = grid.edges(2)
        di, dj = np.arange(-(nxw - 1), nxw), np.arange(-(nyw - 1), nyw)
        DI, DJ, K = np.meshgrid(di, dj, np.arange(nz), indexing="ij")
        boxes = np.stack([(DI - 0.5) * h, (DI + 0.5) * h, (DJ - 0.5) * h, (DJ + 0.5) * h, ze[K], ze[K + 1]],
                         -1).reshape(-1, 6)
        W = deviator(self._averaged(lambda p: tensor_box_weights(boxes, p, self.material["nu"]), (0.0, 0.0)))
        table = W.reshape(di.size, dj.size, nz, 3, 3)
        beta = self.beta_dev[lab]  # (nxw, nyw, 3, 3)
        nb = system.n_bulk
        full = h * h * np.diff(ze)
        b = system.boxes[:nb]
        frac = ((b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2]) * (b[:, 5] - b[:, 4])).reshape(nxw, nyw, nz) / full
        shrunk = np.any(frac < 1 - 1e-9, axis=2)
        I, J = np.arange(nxw), np.arange(nyw)
        out = np.empty(len(ix) * len(iy), complex)
        t = 0
        for a in ix:
            for bb in iy:
                ti, tj = ox + a - ix[0], oy + bb - iy[0]
                Wt = table[np.ix_(I - ti + nxw - 1, J - tj + nyw - 1)]  # (nxw, nyw, nz, 3, 3)
                w = np.einsum("ijkab,ijab->ijk", Wt, beta) * frac
                ci, cj = np.nonzero(shrunk & (np.abs(I[:, None] - ti) <= NEAR) & (np.abs(J[None, :] - tj) <= NEAR))
                if ci.size:
                    cells = ((ci * nyw + cj)[:, None] * nz + np.arange(nz)[None, :]).ravel()
                    tip = ((ti + 0.5) * h, (tj + 0.5) * h)
                    Wn = deviator(self._averaged(lambda p: tensor_box_weights(b[cells], p, self.material["nu"]), tip))
                    bc = np.repeat(beta[ci, cj], nz, axis=0)
                    w.reshape(-1)[cells] = np.einsum("nab,nab->n", Wn, bc)
                out[t] = self.C0 * (w.ravel() @ c[:nb, t])
                t += 1
        return out

    def _deviatoric_boundaries(self, lab, net, system, tips, c):
        """Deviatoric Vegard part of u from the boundary slabs and their sub-grid bulk layers, m/V.

        A layer's Li (and the negative copy of its cell) is bulk Li of that cell's grain: the grain's
        tensor. The slab's own Li takes the mean of its two grains' tensors, an assumption: what lattice
        strain Li in a grain boundary causes is not known (docs/mechanics.md). Integrated on every tip's
        own boxes (they are not on the uniform grid).
        """
        nb, nz = system.n_bulk, self.dz.size
        out = np.zeros(len(tips), complex)
        if system.n == nb:
            return out
        flat = lab.ravel()
        slab_beta = 0.5 * (self.beta_dev[net.grains[:, 0]] + self.beta_dev[net.grains[:, 1]])
        slab_beta = np.repeat(slab_beta, nz, axis=0)  # slab unknowns: faces x layers
        boxes, beta, amounts = [system.boxes[nb:]], [slab_beta], [None]
        if system.extra_boxes is not None:
            boxes.append(system.extra_boxes)
            beta.append(self.beta_dev[flat[system.extra_cells // nz]])
            amounts.append(system.extra_map)
        for t, tip in enumerate(tips):
            for bx, be, amap in zip(boxes, beta, amounts):
                W = deviator(self._averaged(lambda p: tensor_box_weights(bx, p, self.material["nu"]), tip))
                conc = c[nb:, t] if amap is None else amap @ c[:, t]
                out[t] += self.C0 * (np.einsum("nab,nab->n", W, be) @ conc)
        return out

    def solve(self, ix: int, iy: int) -> complex:
        """Complex response (m/V) with the tip at microstructure pixel ``(ix, iy)``."""
        return complex(self.solve_tile(np.array([ix]), np.array([iy]))[0, 0])

    def single_grain(self, ix, iy) -> int | None:
        """Grain id if the windows of all tips ``ix x iy`` hold one grain only (periodic films)."""
        if not self.ms.periodic:
            return None
        lab = self._labels(np.atleast_1d(ix), np.atleast_1d(iy))[0]
        g = lab.flat[0]
        return int(g) if np.all(lab == g) else None


def pixel_response(ms, material, settings: MapSettings, ix: int, iy: int) -> complex:
    """Complex response (m/V) with the tip at microstructure pixel ``(ix, iy)``."""
    return _Window(ms, material, settings).solve(ix, iy)


_WORKER = {}


def pin_threads():
    """Worker-process initialiser: numerical libraries use one thread (the processes share the cores)."""
    try:
        from threadpoolctl import threadpool_limits

        _WORKER["limits"] = threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


def default_workers(workers: int | None) -> int:
    """Worker processes: ``workers``, or one per CPU (at most 8) when None."""
    return min(os.cpu_count() or 1, 8) if workers is None else max(1, int(workers))


def _init_worker(ms, material, settings, factory=None):
    pin_threads()
    _WORKER["window"] = (factory or _Window)(ms, material, settings)


def _run_task(task, window=None):
    w = window if window is not None else _WORKER["window"]
    key, ix, iy = task
    if key[0] == "grain":
        return key, w.solve(ix[0], iy[0])
    return key, w.solve_tile(ix, iy)


def _dask_task(task, token, ms, material, settings, factory=None):
    """A tile on a Dask worker: one window engine per (map, worker thread), built on first use."""
    import threading

    key = (token, threading.get_ident())
    w = _DASK_WINDOWS.get(key)
    if w is None:
        if len(_DASK_WINDOWS) > 16:
            _DASK_WINDOWS.clear()
        w = _DASK_WINDOWS[key] = (factory or _Window)(ms, material, settings)
    return _run_task(task, w)


_DASK_WINDOWS: dict = {}


def map_pixels(shape, pixels):
    """Microstructure pixel indices of ``pixels`` tip positions spread evenly over ``shape``."""
    out = []
    for n, m in zip(shape, pixels):
        if m < 1 or m > n:
            raise ValueError(f"pixels: {m} tip positions do not fit {n} microstructure pixels")
        out.append(np.floor((np.arange(m) + 0.5) * n / m).astype(int))
    return out


def single_frequency_map(
    ms: ColumnarMicrostructure,
    material: Material,
    settings: MapSettings,
    *,
    workers: int | None = None,
    tile: int = 8,
    progress: bool = False,
    scan: "ScanGrid | None" = None,
    client=None,
) -> MapResult:
    """Compute the complex ESM response at every pixel of a map.

    Parameters
    ----------
    ms : ColumnarMicrostructure
    material : Material
    settings : MapSettings
    workers : int, optional
        Worker processes (default: number of CPUs, at most 8); 1 runs in this process.
    tile : int
        Tip positions are solved in tiles of ``tile x tile`` map pixels that
        share one window and one LU factorisation (one right-hand side per tip).
    progress : bool
        Show a progress bar with ETA (tqdm) on stderr.
    client : distributed.Client, optional
        Run the tiles on this Dask cluster (the film, material and settings are scattered to the workers
        once) instead of local processes; the result is the same bit for bit.
    scan : ScanGrid, optional
        A scan of given physical size, centre and rotation (:class:`ScanGrid`). Default: ``settings.pixels``
        tip positions spread evenly over the film, each on a voxel centre.

    Returns
    -------
    MapResult
    """
    t0 = time.perf_counter()
    if scan is not None and not scan.on_voxels:
        P = scan.positions(ms)
        ix, iy, needed, interp = _voxel_stencil(ms, P)
        resp, n = _grid_response(ms, material, settings, ix, iy, needed=needed, workers=workers, tile=tile,
                                 progress=progress, client=client)
        return MapResult(interp(resp), ix, iy, n, time.perf_counter() - t0, positions=P,
                         scan_x=scan.axis(0, ms), scan_y=scan.axis(1, ms))
    ix, iy = map_pixels(ms.shape, scan.pixels if scan is not None else settings.pixels)
    resp, n = _grid_response(ms, material, settings, ix, iy, workers=workers, tile=tile, progress=progress,
                             client=client)
    return MapResult(resp, ix, iy, n, time.perf_counter() - t0)


def _grid_response(ms, material, settings, ix, iy, *, needed=None, workers=None, tile=8, progress=False,
                   client=None, factory=None, desc="ESM map"):
    """Responses at the tip pixels ``ix x iy`` (NaN where ``needed`` is False and its whole tile is unneeded)
    and the number of solves.

    ``factory(ms, material, settings)`` makes the window engine (default :class:`_Window`; picklable); its
    ``solve_tile(ix, iy)`` gives one value (or one array of values) per tip, ``solve(ix, iy)`` one tip's.
    """
    win = (factory or _Window)(ms, material, settings)
    T = max(1, int(tile))
    tasks, tiles = [], []
    for a0 in range(0, ix.size, T):
        for b0 in range(0, iy.size, T):
            sa, sb = slice(a0, a0 + T), slice(b0, b0 + T)
            if needed is not None and not needed[sa, sb].any():
                continue
            g = win.single_grain(ix[sa], iy[sb])
            key = ("grain", g) if g is not None else ("tile", a0, b0)
            tiles.append((key, sa, sb))
            if key[0] == "tile" or not any(t[0] == key for t in tasks):
                tasks.append((key, ix[sa], iy[sb]))
    workers = default_workers(workers)
    results = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="solve")
    if client is not None:
        import uuid

        from distributed import as_completed as dask_completed

        data = client.scatter([ms, material, settings], broadcast=True)
        token = uuid.uuid4().hex
        futs = [client.submit(_dask_task, task, token, *data, factory, pure=False, retries=2) for task in tasks]
        for f in dask_completed(futs):
            k, val = f.result()
            results[k] = val
            if bar is not None:
                bar.update(1)
    elif workers == 1 or len(tasks) == 1:
        for task in tasks:
            k, val = _run_task(task, win)
            results[k] = val
            if bar is not None:
                bar.update(1)
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(ms, material, settings, factory)) as pool:
            futs = [pool.submit(_run_task, task) for task in tasks]
            for f in as_completed(futs):
                k, val = f.result()
                results[k] = val
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    k0, v0 = next(iter(results.items()))
    v0 = np.asarray(v0)
    shape = v0.shape if k0[0] == "grain" else v0.shape[2:]  # per tip: a value, or an array of values
    resp = np.full((ix.size, iy.size) + shape, np.nan, dtype=np.result_type(v0.dtype, np.float64))
    for key, sa, sb in tiles:
        resp[sa, sb] = results[key]
    return resp, len(tasks)


@dataclass(frozen=True)
class ScanGrid:
    """A raster scan: pixel grid of given physical size, centre and rotation on the film (SI units).

    Attributes
    ----------
    pixels : (int, int)
        Pixels along the scan's fast (x) and slow (y) axes.
    size : (float, float) or None
        Scan size (m); None: the whole film.
    center : (float, float) or None
        Scan centre on the film (m); None: the film centre.
    rotation : float
        Scan angle (rad): the scan's x axis is the film's x axis rotated counter-clockwise.

    Tip positions off voxel centres take the response interpolated bilinearly between the four
    surrounding voxel-centred solves (the engine resolves the microstructure at voxel size).
    """

    pixels: tuple[int, int]
    size: tuple[float, float] | None = None
    center: tuple[float, float] | None = None
    rotation: float = 0.0

    @property
    def on_voxels(self) -> bool:
        """True for the default scan (whole film, unrotated): tips on voxel centres, no interpolation."""
        return self.size is None and self.center is None and self.rotation == 0.0

    def axis(self, k: int, ms) -> np.ndarray:
        """Scan-frame coordinate (m) of the pixel centres along axis k, from the scan's corner."""
        L = self.size[k] if self.size is not None else ms.extent[k]
        return (np.arange(self.pixels[k]) + 0.5) * L / self.pixels[k]

    def positions(self, ms) -> np.ndarray:
        """Film coordinates (m) of every pixel centre, shape (nx, ny, 2).

        Raises
        ------
        ParameterError
            A pixel off a non-periodic film.
        """
        from .._errors import ParameterError

        ext = np.array(ms.extent[:2], float)
        size = np.array(self.size if self.size is not None else ext, float)
        center = np.array(self.center if self.center is not None else ext / 2, float)
        u = (np.arange(self.pixels[0]) + 0.5) / self.pixels[0] - 0.5
        v = (np.arange(self.pixels[1]) + 0.5) / self.pixels[1] - 0.5
        U, V = np.meshgrid(u * size[0], v * size[1], indexing="ij")
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        P = np.stack([center[0] + c * U - s * V, center[1] + s * U + c * V], -1)
        if ms.periodic:
            return np.mod(P, ext)
        h = np.array(ms.spacing[:2])
        if np.any(P < h / 2 - 1e-12) or np.any(P > ext - h / 2 + 1e-12):
            raise ParameterError("scan.size", f"the scan (size {size.tolist()} m, centre {center.tolist()} m, "
                                              f"rotation {np.degrees(self.rotation):g} deg) leaves the non-periodic "
                                              f"film's voxel centres [{h[0] / 2:g}, {ext[0] - h[0] / 2:g}] m")
        return P


def _voxel_stencil(ms, P):
    """Voxel indices whose responses a bilinear interpolation at positions ``P`` needs, the mask of those
    needed, and the interpolation (a function of the (len(ix), len(iy)) responses)."""
    h = np.array(ms.spacing[:2])
    n = np.array(ms.shape[:2])
    g = P / h - 0.5  # index coordinates of the voxel centres
    i0 = np.floor(g).astype(int)
    w = g - i0
    corners = [(0, 0), (1, 0), (0, 1), (1, 1)]
    idx = []
    for a, b in corners:
        j = i0 + np.array([a, b])
        j = np.mod(j, n) if ms.periodic else np.clip(j, 0, n - 1)
        idx.append(j)
    ix = np.unique(np.concatenate([j[..., 0].ravel() for j in idx]))
    iy = np.unique(np.concatenate([j[..., 1].ravel() for j in idx]))
    pos_x = {v: k for k, v in enumerate(ix)}
    pos_y = {v: k for k, v in enumerate(iy)}
    lx = [np.vectorize(pos_x.get)(j[..., 0]) for j in idx]
    ly = [np.vectorize(pos_y.get)(j[..., 1]) for j in idx]
    needed = np.zeros((ix.size, iy.size), bool)
    for a, b in zip(lx, ly):
        needed[a, b] = True
    wx, wy = w[..., 0], w[..., 1]
    weights = [(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy]

    def interp(values):
        return sum(wk * values[a, b] for wk, a, b in zip(weights, lx, ly))

    return ix, iy, needed, interp
