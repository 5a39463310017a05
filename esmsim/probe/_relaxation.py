"""Relaxation spectroscopy: a DC pulse under the tip, then the surface displacement as the Li spreads.

The window problem of the map engine is solved in the time domain by a reduced model instead of time
stepping. The finite-volume system ``V dc/dt = -A c + b u(t)`` (``A = K + G``: conductances and the
tip's surface terms) is projected onto a rational Krylov space

    span{ (A + s_j V)^-k r_0 },  k = 1 .. repeats,  s_j real shifts log-spaced over 1/t_max .. 1/t_min,

with a V-orthonormal basis W (``W^T V W = I``). The projected ``A_r = W^T A W`` is symmetric positive
definite, so its eigen-decomposition gives the reduced state at any time in closed form: the pulse
``c_r(T) = Q diag((1 - exp(-lambda T)) / lambda) Q^T W^T b`` and the relaxation
``c_r(t) = Q' diag(exp(-lambda' t)) Q'^T c_r'(0)``. One sparse LU per shift (a few per pixel, real
and symmetric) replaces hundreds of implicit steps; rational Krylov spaces with log-spaced real poles
converge geometrically for parabolic problems (Druskin, Knizhnerman and Zaslavsky, SIAM J. Sci.
Comput. 31, 3760 (2009)). Measured against adaptive implicit time stepping (rtol 1e-6) on the same
system: 1.1e-5 with the defaults (1.5 shifts per decade, 4 vectors each), 2.3e-4 with 1 and 3
(tests/test_relaxation.py).

During the pulse the tip is potentiostatic (``c = C0 f V_p`` on the surface, PHYSICS.md sec. 2); after
it the tip is either open circuit (no flux anywhere on the surface: the injected Li only spreads, the
relaxation of PHYSICS.md sec. 5, item 8) or grounded (``c = 0`` under the tip: the Li is also drawn
back out).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._errors import ParameterError
from ..microstructure import graded_widths
from ..microstructure._voxel import Microstructure
from ..transport._frequency import symmetric_lu, tip_rhs
from ..transport._threads import one_blas_thread
from ._scan import MapSettings, _Window

__all__ = ["RelaxationPulse", "RelaxationResult", "relaxation_spectroscopy", "RelaxationCalibration",
           "relaxation_calibration", "single_crystal_curves", "fit_relaxation"]

AFTER = ("open_circuit", "grounded")


@dataclass(frozen=True)
class RelaxationPulse:
    """A DC pulse and the times the relaxation is read at (SI units).

    Attributes
    ----------
    voltage : float
        Pulse amplitude V_p (V); the surface under the tip is held at ``C0 f V_p``.
    duration : float
        Pulse length T (s).
    times : array_like
        Read-out times after the end of the pulse (s), increasing, > 0 (e.g. ``np.geomspace(1e-4, 1, 25)``).
    after : {"open_circuit", "grounded"}
        Tip condition after the pulse: no flux, or ``c = 0`` under the tip.
    shifts_per_decade : float
        Real shifts of the rational Krylov space per decade of time (default 1.5).
    repeats : int, optional
        Krylov vectors per shift; default 4 for columnar films, 6 for voxel volumes (their rotated tensors
        make the operator nonsymmetric, and with 4 the curve of a 3-D polycrystal was 4.1e-4 off implicit
        time stepping at the first read-out, with 6 1.3e-6; tests/test_relaxation.py).
    """

    voltage: float
    duration: float
    times: np.ndarray = field(default_factory=lambda: np.geomspace(1e-4, 1.0, 25))
    after: str = "open_circuit"
    shifts_per_decade: float = 1.5
    repeats: int | None = None

    def __post_init__(self):
        t = np.atleast_1d(np.asarray(self.times, float))
        object.__setattr__(self, "times", t)
        if not (np.isfinite(self.voltage) and self.voltage != 0):
            raise ParameterError("relaxation.voltage", f"got {self.voltage!r} V; needs a finite, non-zero pulse")
        if not (np.isfinite(self.duration) and self.duration > 0):
            raise ParameterError("relaxation.duration", f"got {self.duration!r} s; needs a positive pulse length")
        if t.ndim != 1 or t.size == 0 or np.any(~(t > 0)) or np.any(np.diff(t) <= 0):
            raise ParameterError("relaxation.times", "must be increasing positive times after the pulse (s)")
        if self.after not in AFTER:
            raise ParameterError("relaxation.after", f"got {self.after!r}; allowed {', '.join(AFTER)}")
        if not (self.shifts_per_decade > 0 and (self.repeats is None or int(self.repeats) >= 2)):
            raise ParameterError("relaxation.repeats", "needs shifts_per_decade > 0 and repeats >= 2")

    @property
    def t_min(self) -> float:
        """Shortest time scale to resolve (s)."""
        return float(min(self.times[0], self.duration))

    @property
    def t_max(self) -> float:
        """Longest time the Li has to spread (s)."""
        return float(self.duration + self.times[-1])


def _time_settings(settings: MapSettings, pulse: RelaxationPulse) -> MapSettings:
    """Map settings whose frequency stands for the shortest time (z cells) of the pulse and read-out."""
    return replace(settings, frequency=1.0 / (2 * np.pi * pulse.t_min))


def _time_cells(ms, material, settings: MapSettings, pulse: RelaxationPulse, Dzz_min: float):
    """z cells (m) graded from the thinnest layer of the shortest time ``first = z_first L_min``,
    ``L_min = max(sqrt(Dzz_min t_min), 0.01 sqrt(D_ref t_min))``, down to ``10 sqrt(D_ref t_max)`` or the film
    bottom, and the lateral half-width (m): ``settings.window``, or ``max(4 d, 4 sqrt(D_ref t_max))`` (bulk Li
    spreads sqrt(D t_max); boundary Li farther, but a thin slab holds little of it)."""
    L_min = max(np.sqrt(Dzz_min * pulse.t_min), 0.01 * np.sqrt(material.D_reference * pulse.t_min))
    L_bulk = np.sqrt(material.D_reference * pulse.t_max)
    depth = min(ms.thickness, 10 * L_bulk)
    first = min(settings.z_first * L_min, depth / 10)
    dz = graded_widths(first, settings.z_growth, depth, max_width=min(ms.spacing))
    window = settings.window if settings.window is not None else max(4 * settings.tip_width, 4 * L_bulk)
    return dz, float(window)


class _RelaxationWindow(_Window):
    """The map engine's window, graded in z and sized for time scales ``t_min .. t_max``."""

    FAR_FIELD = False  # the whole response comes from the window (no frequency-domain far field)

    def __init__(self, ms, material, settings: MapSettings, pulse: RelaxationPulse, dz=None):
        super().__init__(ms, material, _time_settings(settings, pulse))
        self.pulse = pulse
        auto_dz, self.window = _time_cells(ms, material, settings, pulse, self.Dg[:, 2].min())
        self.dz = auto_dz if dz is None else np.asarray(dz, float)
        self.hw = int(np.ceil(self.window / ms.spacing[0]))

    def solve_tile(self, ix, iy) -> np.ndarray:
        """Relaxation of every tip ``(ix[a], iy[b])`` of a tile (increasing pixel indices), sharing the
        window and each shift's factorisation.

        Returns
        -------
        ndarray, shape (nx, ny, n_times + 2)
            Outward displacement (m) at the read-out times, then at the end of the pulse, then the Li the
            pulse added (mol).
        """
        st, p = self.settings, self.pulse
        ix, iy = np.atleast_1d(ix), np.atleast_1d(iy)
        lab, ox, oy, grid, net, system = self.system(ix, iy, omega=None)
        h = self.ms.spacing[0]
        tips = [((ox + a - ix[0] + 0.5) * h, (oy + c - iy[0] + 0.5) * h) for a in ix for c in iy]
        terms = [tip_rhs(system, tip, profile=st.tip_profile, width=st.tip_width) for tip in tips]
        out = _relax(system.K, system.volume, terms, lambda t, c: self.isotropic_displacement(system, tips[t], c),
                     p, self.C0)
        return out.reshape(ix.size, iy.size, -1)

    def solve(self, ix: int, iy: int) -> np.ndarray:
        """:meth:`solve_tile` for one tip: shape (n_times + 2,)."""
        return self.solve_tile(np.array([ix]), np.array([iy]))[0, 0]


def point_values(ms, material, settings, points, factory):
    """Values of the window engine ``factory(ms, material, settings)`` at tip pixels ``points``, each on its own
    window (points are few), and their pixel indices."""
    from ._spectroscopy import _points

    pts = _points(ms, points)
    engine = factory(ms, material, settings)
    return np.array([engine.solve(int(i), int(j)) for i, j in pts]), pts[:, 0], pts[:, 1]


def relaxation_shifts(pulse: RelaxationPulse) -> np.ndarray:
    """Real shifts (1/s) of the rational Krylov spaces: log-spaced over ``0.3 / t_max .. 3 / t_min``."""
    decades = np.log10(pulse.t_max / pulse.t_min)
    n_s = max(2, int(np.ceil(decades * pulse.shifts_per_decade)) + 1)
    return np.geomspace(0.3 / pulse.t_max, 3.0 / pulse.t_min, n_s)


def _relax(K, V, terms, output, pulse: RelaxationPulse, C0: float, symmetric: bool = True,
           repeats: int = 4, rest: float = 0.0) -> np.ndarray:
    """Pulse and relaxation of every tip of one window by the reduced model.

    ``terms``: each tip's surface terms ``(g, b)`` for unit C0 (:func:`tip_rhs`); ``output(t, c)``: tip t's
    displacement (m) for the unknowns ``c``; ``symmetric``: ``K`` is symmetric (columnar windows: symmetric
    LUs and the eigen-decomposition of the projected operator), else general LUs and matrix exponentials
    (volumes: rotated tensors); ``repeats``: Krylov vectors per shift unless the pulse gives them; ``rest``:
    the pulse space's lowest shift (1/s; 0: the steady state, which a volume whose pores cut off a pocket of
    material from the tip cannot take: its block is singular without a shift). Tips with the same surface terms (all of them for profiles applied
    everywhere) share the LUs. Returns shape (n_tips, n_times + 2): the displacement at the read-out times,
    at the end of the pulse, and the Li the pulse added (mol)."""
    shifts = relaxation_shifts(pulse)
    repeats = int(pulse.repeats or repeats)
    pulse_shifts = np.concatenate([[rest], shifts[shifts > 0.1 / pulse.duration]])
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for t, (g, _) in enumerate(terms):
        groups.setdefault(g.tobytes(), (g, []))[1].append(t)
    factor = symmetric_lu if symmetric else general_lu
    out = np.empty((len(terms), pulse.times.size + 2))
    for g, members in groups.values():
        A0 = (K + sp.diags(g)).tocsc()
        A1 = A0 if pulse.after == "grounded" else K.tocsc()
        bases = [_Basis(V, terms[t][1] * C0 * pulse.voltage, symmetric=symmetric) for t in members]
        _extend(bases, A0, V, pulse_shifts, repeats, factor)
        c_end = [bs.pulse_state(A0, pulse.duration) for bs in bases]
        relax = [_Basis(V, V * cT, first=cT, symmetric=symmetric) for cT in c_end]
        _extend(relax, A1, V, shifts, repeats, factor)
        for t, br, cT in zip(members, relax, c_end):
            y = np.array([output(t, w) for w in br.cols])
            out[t, :-2] = br.relaxation(A1, y, cT, pulse.times)
            out[t, -2] = output(t, cT)
            out[t, -1] = V @ cT
    return out


@one_blas_thread
def general_lu(A):
    """Sparse LU with partial pivoting (COLAMD ordering) of a nonsymmetric ``A + s V``."""
    return spla.splu(sp.csc_matrix(A), permc_spec="COLAMD")


class _Basis:
    """A V-orthonormal rational Krylov basis grown from ``r0`` (optionally holding ``first`` as its first
    vector). With ``symmetric`` the projected operator is symmetric (eigen-decomposition); otherwise its
    exponential is taken (``scipy.linalg.expm``): a Galerkin projection of ``V dc/dt = -A c + b`` onto the
    basis W is ``dc_r/dt = -W^T A W c_r + W^T b`` for any A, since ``W^T V W = I``."""

    def __init__(self, V, r0, first=None, symmetric: bool = True):
        self.V, self.r0, self.symmetric = V, r0, symmetric
        self.cols: list[np.ndarray] = []
        if first is not None:
            self.add(np.asarray(first, float))

    def add(self, v) -> bool:
        ref = np.sqrt(v @ (self.V * v))
        for _ in range(2):  # modified Gram-Schmidt, twice (V inner product)
            for w in self.cols:
                v = v - (w @ (self.V * v)) * w
        nrm = np.sqrt(v @ (self.V * v))
        if ref == 0 or nrm <= 1e-10 * ref:
            return False  # the space is exhausted in this direction
        self.cols.append(v / nrm)
        return True

    def pulse_state(self, A, duration):
        """Full state at the end of a pulse of ``duration`` s driven by ``r0`` from rest."""
        W = np.stack(self.cols, 1)
        if not self.symmetric:  # int_0^T exp(-A_r s) b_r ds from the exponential of [[-A_r, b_r], [0, 0]] T
            Ar, br = W.T @ (A @ W), W.T @ self.r0
            k = br.size
            M = np.zeros((k + 1, k + 1))
            M[:k, :k], M[:k, k] = -Ar * duration, br * duration
            return W @ sla.expm(M)[:k, k]
        lam, Q = _reduced(A, W)
        gain = np.where(lam * duration > 1e-12, -np.expm1(-lam * duration) / np.maximum(lam, 1e-300), duration)
        return W @ (Q @ (gain * (Q.T @ (W.T @ self.r0))))

    def relaxation(self, A, y, start, times):
        """Output ``y . c(t)`` of the free relaxation from ``start`` (``y``: output of each basis vector)."""
        W = np.stack(self.cols, 1)
        r0 = W.T @ (self.V * start)
        if not self.symmetric:
            Ar = W.T @ (A @ W)
            return np.array([y @ (sla.expm(-Ar * t) @ r0) for t in times])
        lam, Q = _reduced(A, W)
        r0 = Q.T @ r0
        return (y @ Q) @ (np.exp(-np.outer(lam, times)) * r0[:, None])


def _extend(bases, A, V, shifts, repeats, factor):
    """Grow every basis by ``repeats`` vectors per shift; one factorisation per shift (``factor(A + s V)``)
    serves all."""
    for s in shifts:
        lu = factor(A + sp.diags(s * V))
        for bs in bases:
            rhs = bs.r0
            for _ in range(repeats):
                if not bs.add(lu.solve(rhs)):
                    break
                rhs = V * bs.cols[-1]


def _reduced(A, W):
    """Eigen-decomposition of the projected symmetric operator ``W^T A W`` (``W^T V W = I``)."""
    Ar = W.T @ (A @ W)
    lam, Q = sla.eigh(0.5 * (Ar + Ar.T))
    return np.maximum(lam, 0.0), Q


class _VolumeRelaxation:
    """Relaxation windows of a voxel volume (3-D grains, pores, cracks): the volume engine's windows
    (:func:`~esmsim.probe.volume_response`: full tensors with their off-diagonal terms, boundary slabs on the
    tessellation's planes, the Li rebuilt inside the cells for the mechanics) assembled for the time domain,
    with the z cells and the half-width of the columnar relaxation windows (:class:`_RelaxationWindow`), and
    the reduced model of their nonsymmetric operator (:func:`_relax`). The tips of a map tile share one
    window. The map engine's window interface, picklable."""

    FAR_FIELD = False

    def __init__(self, ms, material, settings: MapSettings, pulse: RelaxationPulse):
        from ..transport._tensor import grain_tensors
        from ._volume import _VolumeSolver

        grains = np.unique(ms.labels[~ms.void])
        Dzz = grain_tensors(ms.rotations[grains], material.principal_diffusivities())[:, 2, 2]
        dz, window = _time_cells(ms, material, settings, pulse, Dzz.min())
        self.solver = _VolumeSolver(ms, material, replace(_time_settings(settings, pulse), window=window,
                                                          lateral=False), dz=dz)
        self.ms, self.pulse = ms, pulse

    def solve_points(self, tips) -> np.ndarray:
        """Relaxation at film points ``tips`` (m, shape (m, 2)), all on one window: shape (m, n_times + 2) as
        :meth:`_RelaxationWindow.solve_tile` gives per tip."""
        sol, st = self.solver, self.solver.settings
        win = sol.assemble(np.asarray(tips, float).reshape(-1, 2), None)
        systems = win.systems
        terms = [tip_rhs(s, t, profile=st.tip_profile, width=st.tip_width, average=True)
                 for s, t in zip(systems, win.local)]
        rows = {}

        def output(t, c):  # (the engine's rows are per unit C0)
            if t not in rows:
                rows[t] = sol.rows(systems[t], win.local[t], win.lab, win.origin)[0] / sol.C0
            return rows[t] @ c

        K = systems[0].K
        # (pores can cut pockets of material off the tip: the pulse space starts at a small shift, not at rest)
        return _relax(K, systems[0].volume, terms, output, self.pulse, sol.C0, symmetric=_is_symmetric(K),
                      repeats=6, rest=1e-3 / self.pulse.t_max)

    def solve_tile(self, ix, iy) -> np.ndarray:
        """Relaxation with the tip at the voxel centres ``ix x iy`` (one window), shape (nx, ny, n_times + 2)."""
        xv, yv = self.ms.pixel_centers()
        X, Y = np.meshgrid(xv[np.atleast_1d(ix)], yv[np.atleast_1d(iy)], indexing="ij")
        return self.solve_points(np.stack([X.ravel(), Y.ravel()], -1)).reshape(X.shape + (-1,))

    def solve(self, ix: int, iy: int) -> np.ndarray:
        """:meth:`solve_tile` for one tip: shape (n_times + 2,)."""
        return self.solve_tile([ix], [iy])[0, 0]

    def single_grain(self, ix, iy) -> None:
        """Never one solve for a tile: a volume's grains change with depth."""
        return None


def _is_symmetric(K) -> bool:
    """``K`` equal to its transpose to rounding (columnar operators and volumes with diagonal tensors),
    relative to its largest link (off-diagonal entry): void rows carry a diagonal 1, far above the
    conductances (m^3/s), which would hide any asymmetry."""
    d = abs(K - K.T)
    links = abs(K - sp.diags(K.diagonal()))
    return d.nnz == 0 or d.max() <= 1e-12 * links.max()


@dataclass(frozen=True)
class RelaxationResult:
    """Relaxation curves over a map or at points.

    Attributes
    ----------
    times : ndarray, shape (n_times,)
        Read-out times after the end of the pulse (s).
    u : ndarray, shape (nx, ny, n_times) or (n_points, n_times)
        Outward surface displacement under the tip (m) at the read-out times.
    u_end : ndarray
        Outward displacement at the end of the pulse (m).
    injected : ndarray
        Li added by the pulse under each tip position (mol).
    ix, iy : ndarray of int
        Microstructure pixel indices of the tips.
    n_solves : int
        Windows solved (tiles; single-grain tiles share one).
    seconds : float
        Wall time (s).
    """

    times: np.ndarray
    u: np.ndarray
    u_end: np.ndarray
    injected: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    n_solves: int
    seconds: float


def relaxation_spectroscopy(ms, material, settings: MapSettings, pulse: RelaxationPulse, *, points=None,
                            pixels=None, workers=None, tile: int = 4, progress: bool = False,
                            client=None) -> RelaxationResult:
    """Relaxation after a DC pulse at chosen tip pixels or over a map.

    Parameters
    ----------
    ms : ColumnarMicrostructure or Microstructure
        A columnar film, or a voxel volume (grains that change with depth, pores, cracks): the volume
        engine's windows (:func:`~esmsim.probe.volume_response`; full tensors with their off-diagonal terms,
        boundaries on their true planes, no far field) in the time domain, the tip profile averaged over the
        surface cells and the Li rebuilt inside the cells near the tip for the mechanics.
    material : Material
    settings : MapSettings
        Tip profile and width, z grading (``z_first``, ``z_growth``), ``bottom``; its ``frequency`` is not
        used (the z cells follow the shortest time, the window the longest: ``max(4 d, 4 sqrt(D t_max))``
        unless ``settings.window`` is given). The Vegard strain is isotropic (trace/3); volumes take
        ``settings.vegard = "tensor"`` too.
    pulse : RelaxationPulse
    points : (n, 2) int array, optional
        Microstructure pixel indices of the tip; otherwise a map.
    pixels : (int, int), optional
        Map size (tip positions spread evenly over the film); default ``settings.pixels``.
    workers : int, optional
        Processes (default: CPUs, at most 8).
    tile : int
        Map tips solved together on one window sharing its factorisations.
    progress : bool
        Progress bar with ETA.
    client : distributed.Client, optional
        Run the tiles on a Dask cluster.

    Returns
    -------
    RelaxationResult
    """
    import time
    from functools import partial

    from ._scan import _grid_response, map_pixels

    t0 = time.perf_counter()
    factory = partial(_VolumeRelaxation if isinstance(ms, Microstructure) else _RelaxationWindow, pulse=pulse)
    if points is not None:
        vals, ix, iy = point_values(ms, material, settings, points, factory)
        n = ix.size
    else:
        ix, iy = map_pixels(ms.shape, pixels if pixels is not None else settings.pixels)
        vals, n = _grid_response(ms, material, settings, ix, iy, workers=workers, tile=tile, progress=progress,
                                 client=client, factory=factory, desc="relaxation map")
    return RelaxationResult(pulse.times, vals[..., :-2], vals[..., -2], vals[..., -1], np.asarray(ix),
                            np.asarray(iy), n, time.perf_counter() - t0)


@dataclass(frozen=True)
class RelaxationCalibration:
    """Relaxation curves of homogeneous isotropic films, the reference the fit matches curve shapes to.

    Attributes
    ----------
    D : ndarray, shape (m,)
        Diffusivities (m^2/s), increasing.
    times : ndarray, shape (n_times,)
        Read-out times (s).
    curves : ndarray, shape (m, n_times)
        Outward displacement (m) under the tip.
    """

    D: np.ndarray
    times: np.ndarray
    curves: np.ndarray

    def curve(self, D) -> np.ndarray:
        """Reference curves (m) at diffusivities ``D`` (cubic in log D; NaN outside the range), shape
        ``D.shape + (n_times,)``."""
        from scipy.interpolate import CubicSpline

        D = np.asarray(D, float)
        x = np.log(np.where(np.isfinite(D) & (D > 0), D, self.D[0]))
        out = CubicSpline(np.log(self.D), self.curves, axis=0)(np.clip(x, np.log(self.D[0]), np.log(self.D[-1])))
        bad = ~(np.isfinite(D) & (D >= self.D[0] * (1 - 1e-12)) & (D <= self.D[-1] * (1 + 1e-12)))
        out[bad] = np.nan
        return out


def relaxation_calibration(ms, material, settings: MapSettings, pulse: RelaxationPulse, *, D=None,
                           workers=None) -> RelaxationCalibration:
    """Relaxation curves of a homogeneous isotropic film for a range of diffusivities.

    Each film has the thickness, voxel size, bottom, tip and pulse of the map it calibrates and the same
    window (``settings.window``, or the map's automatic one from ``material``), so the grid and the window
    walls affect map and reference alike.

    Parameters
    ----------
    ms : ColumnarMicrostructure or Microstructure
        The film of the map (thickness, voxel size); the references are columnar films (the columnar
        window engine) for volumes too.
    material : Material
    settings : MapSettings
    pulse : RelaxationPulse
    D : array_like, optional
        Diffusivities (m^2/s); default 13 values over ``D_reference / 30 .. 10 D_reference``.
    workers : int, optional
        Processes.

    Returns
    -------
    RelaxationCalibration
    """
    D = np.geomspace(material.D_reference / 30, 10 * material.D_reference, 13) if D is None \
        else np.sort(np.asarray(D, float))
    if D.ndim != 1 or D.size < 3 or np.any(~(D > 0)):
        raise ParameterError("D", "needs at least 3 positive diffusivities (m^2/s)")
    variants = [(material.replace(D_ab=float(d), D_c_over_D_ab=1.0), (0.0, 0.0, 0.0)) for d in D]
    return RelaxationCalibration(D, pulse.times, _reference_curves(ms, material, settings, pulse, variants, workers))


def single_crystal_curves(ms, material, settings: MapSettings, pulse: RelaxationPulse, grains, *,
                          workers=None) -> np.ndarray:
    """Relaxation curves (m) of single crystals with the orientations of ``grains`` of ``ms``: what the map
    would show far from any boundary. Fitted, they give the ground truth of the fitted map.

    Returns
    -------
    ndarray, shape (len(grains), n_times)
    """
    variants = [(material, tuple(ms.euler_bunge[int(g)])) for g in np.atleast_1d(grains)]
    return _reference_curves(ms, material, settings, pulse, variants, workers)


def _reference_curves(ms, material, settings, pulse, variants, workers):
    """Curves of single-grain periodic films with the map's voxel size, thickness, window and z cells, for
    each ``(material, Bunge angles)`` of ``variants``."""
    from ..microstructure import columnar_seeded
    from ._spectroscopy import _pool_map

    if isinstance(ms, Microstructure):  # a volume's references: columnar films of its voxels and thickness
        ms = ms.surface()
    h = ms.spacing[0]
    ref = _RelaxationWindow(ms, material, settings, pulse)
    n = min(2 * ref.hw + 1, max(ms.shape))  # the map's window (a periodic film caps it at the film)
    st = replace(settings, window=ref.window)
    tasks = []
    for mat, euler in variants:
        film = columnar_seeded([[n * h / 2, n * h / 2]], (n * h, n * h), spacing=h, thickness=ms.thickness,
                               periodic=True, euler_angles=[list(euler)])
        tasks.append((film, mat, st, pulse, ref.dz))  # the map's z cells too (graded from its slowest D_zz)
    return np.array(_pool_map(_reference_task, tasks, workers))


def _reference_task(args):
    film, material, st, pulse, dz = args
    return _RelaxationWindow(film, material, st, pulse, dz).solve(film.shape[0] // 2, film.shape[1] // 2)[:-2]


def fit_relaxation(u, calibration: RelaxationCalibration, *, fine: int = 400):
    """Local diffusivity from the shape of relaxation curves.

    Each curve is matched, with a free amplitude, to the calibration curves interpolated in log D
    (cubic, on ``fine`` values); the best D is refined by a parabola through the misfit around the
    minimum. The amplitude absorbs what does not change the shape (Vegard coefficient, C0, the
    pulse's injected amount); the time scale of the decay gives D.

    Parameters
    ----------
    u : ndarray, shape (..., n_times)
        Relaxation curves (m) at ``calibration.times``.
    calibration : RelaxationCalibration
    fine : int
        Interpolated diffusivities.

    Returns
    -------
    D : ndarray, shape (...)
        Apparent diffusivity (m^2/s); NaN where the best match is at an end of the calibration range.
    amplitude : ndarray
        Scale of the matched calibration curve.
    residual : ndarray
        ``|u - amplitude m| / |u|`` of the match.
    """
    u = np.asarray(u, float)
    if u.shape[-1] != calibration.times.size:
        raise ParameterError("u", f"last axis has {u.shape[-1]} times; the calibration has {calibration.times.size}")
    xf = np.linspace(np.log(calibration.D[0]), np.log(calibration.D[-1]), fine)
    M = calibration.curve(np.exp(xf))  # (fine, nt)
    flat = u.reshape(-1, u.shape[-1])
    mm = np.einsum("kt,kt->k", M, M)
    um = flat @ M.T  # (p, fine)
    uu = np.einsum("pt,pt->p", flat, flat)
    mis = np.clip(1 - um ** 2 / (mm[None, :] * np.maximum(uu[:, None], 1e-300)), 0, None)  # relative residual^2
    k = np.argmin(mis, axis=1)
    inner = (k > 0) & (k < fine - 1)
    kk = np.clip(k, 1, fine - 2)
    p = np.arange(flat.shape[0])
    y0, y1, y2 = mis[p, kk - 1], mis[p, kk], mis[p, kk + 1]
    den = y0 - 2 * y1 + y2
    off = np.where(den > 0, 0.5 * (y0 - y2) / np.where(den > 0, den, 1), 0.0)
    xbest = xf[kk] + np.clip(off, -1, 1) * (xf[1] - xf[0])
    D = np.where(inner, np.exp(xbest), np.nan)
    amp = um[p, k] / mm[k]
    res = np.sqrt(mis[p, k])
    shape = u.shape[:-1]
    return D.reshape(shape), amp.reshape(shape), res.reshape(shape)
