"""Time-domain solution of ``V dc/dt = -(K + diag) c + s(t) b``: implicit steps with adaptive size.

Each step is backward Euler taken twice: once with ``dt`` and once as two
steps of ``dt / 2``; their difference estimates the local error, and the
Richardson combination ``2 c_half - c_full`` (second order, L-stable enough
for the stiff boundary layer under a tip) is kept. Step sizes are powers of
two times the first step, so a handful of sparse LU factorisations serve the
whole run; steps end exactly on the requested output times and on the
switching times of the source (a DC pulse switching off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._operator import DiffusionSystem

__all__ = ["integrate", "integrate_butler_volmer", "TimeResult"]


@dataclass(frozen=True)
class TimeResult:
    """Concentrations at the output times.

    Attributes
    ----------
    times : ndarray
        Output times (s).
    c : ndarray, shape (n_times, n)
        Concentration change (mol/m^3) at each output time.
    steps : int
        Accepted steps; ``rejected``: rejected ones; ``factorisations``: step operators set up
        (LU or AMG hierarchy).
    """

    times: np.ndarray
    c: np.ndarray
    steps: int
    rejected: int
    factorisations: int


def integrate(system: DiffusionSystem, times, *, diag=None, b=None, source=None, c0=None,
              rtol: float = 1e-3, atol: float | None = None, dt0: float | None = None,
              breakpoints=(), direct_limit: int = 5000) -> TimeResult:
    """Integrate ``V dc/dt = -(K + diag) c + s(t) b`` from ``t = 0`` and return c at ``times``.

    Parameters
    ----------
    system : DiffusionSystem
    times : array_like
        Increasing output times (s), > 0.
    diag : ndarray, optional
        Extra diagonal conductances of the surface condition (m^3/s), e.g. from :func:`tip_terms`.
    b : ndarray, optional
        Source vector (mol/s at s = 1).
    source : callable, optional
        ``s(t)``, piecewise constant between ``breakpoints`` (default 1: a step switched on at 0).
    c0 : ndarray, optional
        Initial concentration (default 0).
    rtol, atol : float
        Local error tolerance per step: ``max |err| <= atol + rtol max |c|`` (atol default
        ``1e-6 * rtol`` times the largest value reached so far, floored at 1e-30).
    dt0 : float, optional
        First step (s); default ``times[0] / 1000``.
    breakpoints : sequence of float
        Times where ``source`` switches; steps stop on them.
    direct_limit : int
        Up to this many unknowns each step size gets a sparse LU; above it, GMRES preconditioned
        with smoothed-aggregation AMG of the operator's symmetric part (3-D LU fill grows too fast).

    Returns
    -------
    TimeResult
    """
    n = system.n
    A0 = system.K if diag is None else (system.K + sp.diags(diag)).tocsr()
    V = system.volume
    b = np.zeros(n) if b is None else np.asarray(b, float)
    s = (lambda t: 1.0) if source is None else source
    c = np.zeros(n) if c0 is None else np.asarray(c0, float).copy()
    solver = _PerStepSize(lambda dt: _StepSolver((sp.diags(V / dt) + A0).tocsr(), direct=n <= direct_limit))

    def be(c_old, t_new, dt):
        return solver(dt).solve(V / dt * c_old + s(t_new - 0.5 * dt) * b, c_old)

    times, out, steps, rejected = _adaptive(be, c, times, breakpoints, rtol, atol, dt0)
    return TimeResult(times, out, steps, rejected, solver.count)


def _adaptive(be, c, times, breakpoints, rtol, atol, dt0):
    """Step-doubling driver: ``be(c_old, t_new, dt)`` is one implicit Euler step; returns the checked
    output times, the states there (Richardson-extrapolated), accepted and rejected step counts.
    The first step is ``dt0`` (default ``times[0] / 1000``)."""
    times = np.asarray(times, float)
    if times.ndim != 1 or times.size == 0 or np.any(times <= 0) or np.any(np.diff(times) <= 0):
        raise ValueError("times: must be increasing positive times (s)")
    dt_base = float(dt0) if dt0 is not None else float(times[0]) / 1000.0
    stops = np.unique(np.concatenate([times, [t for t in breakpoints if 0 < t < times[-1]]]))
    out = []
    t = 0.0
    k = 0  # dt = dt_base * 2**k
    steps = rejected = 0
    scale = max(np.abs(c).max(), 1e-30)
    for stop in stops:
        while t < stop * (1 - 1e-12):
            dt = dt_base * 2.0 ** k
            exact = t + dt >= stop * (1 - 1e-9)
            if exact:
                dt = stop - t
            full = be(c, t + dt, dt)
            half = be(be(c, t + 0.5 * dt, 0.5 * dt), t + dt, 0.5 * dt)
            new = 2 * half - full
            scale = max(scale, np.abs(new).max())
            tol = (atol if atol is not None else 1e-6 * rtol * scale) + rtol * scale
            err = np.abs(half - full).max() / tol
            if err > 1.0 and dt > 1e-9 * dt_base:
                rejected += 1
                k -= 1 if err < 16 else 2
                continue
            c, t = new, (stop if exact else t + dt)
            steps += 1
            if err < 0.25 and not exact:
                k += 1
        if np.isin(stop, times):
            out.append(c.copy())
    return times, np.asarray(out), steps, rejected


#: Surface unknowns up to which :func:`integrate_butler_volmer` runs Newton on their Schur complement (dense,
#: m x m); above, a sparse LU of the whole Jacobian per iteration.
SCHUR_MAX = 2000

F_CONST = 96485.33212  # C/mol
R_CONST = 8.314462618  # J/(mol K)


def integrate_butler_volmer(system: DiffusionSystem, times, *, tip_xy, profile: str, width: float, voltage,
                            j0: float, temperature: float = 298.15, alpha_a: float = 0.5,
                            alpha_c: float = 0.5, ocv_shift=None, dU_dc: float | None = None, rtol: float = 1e-3,
                            dt0: float | None = None, breakpoints=(), newton_tol: float = 1e-10,
                            direct_limit: int = 5000) -> TimeResult:
    """Time-domain solve with the nonlinear Butler-Volmer tip condition (PHYSICS.md sec. 2).

    The inward Li flux density at a surface point under the tip is
    ``N = (j0 / F) [exp(alpha_a F eta / (R T)) - exp(-alpha_c F eta / (R T))]`` with the overpotential
    ``eta = V(t) f(rho) - ocv_shift(c_s)``, where ``c_s`` is the surface concentration change and
    ``ocv_shift(c) = U(c_rest) - U(c_rest + c)`` the fall of the open-circuit potential as Li goes in
    (default linear, ``|dU/dc| c``). Where the profile does not apply (outside a contact disk) the
    surface is no-flux. Each surface cell gets one more unknown, ``c_s``, tied to its cell by the half
    cell's conductance; each implicit step is solved by Newton's method. The nonlinearity sits on the
    surface unknowns only, so Newton runs on the Schur complement there: the bulk block ``V / dt + K`` is
    factorised once per step size (as :func:`integrate` does; AMG-GMRES above ``direct_limit`` unknowns)
    with its response to each surface unknown, and each iteration costs two solves with it and a dense
    solve of the surface unknowns (up to ``SCHUR_MAX`` of them; above, and before, a sparse LU of the whole
    Jacobian every iteration: the same steps to 1e-15, 6-14x slower on 800-2800 unknowns). For small V
    it reduces to the linearised (Robin) condition with ``kappa = j0 |dU/dc| / (R T)``.

    With rotated grains (``system.top_cross``) the flux through a surface face under the tip has the cross
    part ``A (D_zx dc_s/dx + D_zy dc_s/dy)``, taken from the surface unknowns by centred differences
    (:func:`surface_cross`); the Li the Butler-Volmer law lets in is the whole normal flux, so the cell and
    its surface unknown both see it. The linearised condition of :func:`tip_terms` keeps only the tip's
    share of that gradient, so at small V the two differ by the rest, ``g / (g + kappa A)`` of it.

    Parameters
    ----------
    system : DiffusionSystem
    times : array_like
        Output times (s).
    tip_xy, profile, width
        Tip position (m), field profile and its width (m).
    voltage : callable
        ``V(t)`` in volts (piecewise smooth; list switching times in ``breakpoints``).
    j0 : float
        Exchange current density (A/m^2).
    temperature, alpha_a, alpha_c : float
        T (K) and the transfer coefficients.
    ocv_shift : callable, optional
        ``c -> U(rest) - U(rest + c)`` (V), vectorised, with derivative estimated numerically.
    dU_dc : float, optional
        ``|dU/dc|`` (V m^3/mol) for the default linear OCV.
    rtol, dt0, breakpoints
        As for :func:`integrate`.
    newton_tol : float
        Newton stops when the largest update is below this fraction of the largest value.
    direct_limit : int
        Up to this many unknowns the bulk block gets a sparse LU, above it AMG-preconditioned GMRES.

    Returns
    -------
    TimeResult
        ``c`` holds the cell unknowns (not the surface values); ``factorisations``: step sizes set up.
    """
    from ._frequency import contact_profile

    if ocv_shift is None:
        if dU_dc is None or not dU_dc > 0:
            raise ValueError("dU_dc: give |dU/dc| > 0 (V m^3/mol) or an ocv_shift function")
        ocv_shift = lambda c: dU_dc * c  # noqa: E731
    if not (np.isfinite(j0) and j0 > 0):
        raise ValueError(f"j0: got {j0!r}; the exchange current density must be positive (A/m^2)")
    f, mask = contact_profile(system, tip_xy, profile, width)
    sel = mask & (system.top_area > 0)
    cells, f, area, g_half = system.top_index[sel], f[sel], system.top_area[sel], system.top_conductance[sel]
    n, m = system.n, cells.size
    fr = F_CONST / (R_CONST * temperature)
    V = system.volume
    # each surface unknown's cell, and the flux g (c_s - c_P) between them
    P = sp.csr_matrix((np.ones(m), (np.arange(m), cells)), shape=(m, n))
    Kc = (system.K + sp.csr_matrix((np.bincount(cells, g_half, n), (np.arange(n), np.arange(n))),
                                   shape=(n, n))).tocsr()
    # rotated grains: the cross part of the flux through the surface, from the surface values' gradient
    X = surface_cross(system, np.flatnonzero(sel))
    B = (P.T @ (X - sp.diags(g_half))).tocsc()  # the cells' rows of the Jacobian in the surface unknowns
    schur = m <= SCHUR_MAX
    Xd = X.toarray() if schur else None
    C = None if schur else -sp.diags(g_half) @ P  # the surface rows in the cells' unknowns (whole Jacobian)

    def bulk_block(dt):
        """The bulk block ``V / dt + Kc`` (factorised) and its inverse times ``B`` at the tip cells."""
        solver = _StepSolver((sp.diags(V / dt) + Kc).tocsr(), direct=n <= direct_limit)
        Zc = np.empty((m, m))
        for a in range(0, m, 64):  # A^-1 B by blocks of columns, kept at the tip cells only
            Zc[:, a:a + 64] = solver.solve_many(B[:, a:a + 64].toarray())[cells]
        return solver, Zc

    step_operator = _PerStepSize(bulk_block)

    def flux(cs, t):
        eta = voltage(t) * f - ocv_shift(cs)
        return (j0 / F_CONST) * (np.exp(alpha_a * fr * eta) - np.exp(-alpha_c * fr * eta)), eta

    def be(state, t_new, dt):
        # Newton on [[A, B], [C, D_s]] by its Schur complement on the surface unknowns: A = V / dt + Kc is
        # factorised once per step size, C = -g P (the cells' values), D_s = diag(g - area dN/dc_s) - X
        solver, Zc = step_operator(dt) if schur else (None, None)
        c_old = state[:n]
        x = state.copy()
        for _ in range(50):
            c, cs = x[:n], x[n:]
            N, eta = flux(cs, t_new)
            h = 1e-7 * (np.abs(cs) + 1e-3)
            dN = (flux(cs + h, t_new)[0] - N) / h
            r1 = V / dt * (c - c_old) + Kc @ c + B @ cs
            r2 = g_half * (cs - c[cells]) - X @ cs - area * N
            if schur:
                y = solver.solve(-r1, None)
                S = np.diag(g_half - area * dN) - Xd + g_half[:, None] * Zc
                dcs = np.linalg.solve(S, -r2 + g_half * y[cells])
                dx = np.concatenate([solver.solve(-r1 - B @ dcs, y), dcs])
            else:  # many surface unknowns: a sparse LU of the whole Jacobian
                J = sp.bmat([[sp.diags(V / dt) + Kc, B], [C, sp.diags(g_half - area * dN) - X]]).tocsc()
                dx = spla.spsolve(J, -np.concatenate([r1, r2]))
            x = x + dx
            if np.abs(dx).max() <= newton_tol * max(np.abs(x).max(), 1e-30):
                break
        else:
            raise RuntimeError("Butler-Volmer step: Newton did not converge in 50 iterations")
        return x

    times, out, steps, rejected = _adaptive(be, np.zeros(n + m), times, breakpoints, rtol, None, dt0)
    return TimeResult(times, out[:, :n], steps, rejected, step_operator.count)


def surface_cross(system: DiffusionSystem, contacts) -> sp.csr_matrix:
    """Cross outflow through the top faces of ``contacts`` (indices into ``system.top_index``) as a linear map
    of the surface values there: row ``i`` gives ``A (D_zx dc/dx + D_zy dc/dy)`` (m^3/s per mol/m^3) of
    contact ``i`` from the values of the contacts beside it (centred difference between the neighbours on
    both sides, one-sided where one of them is not among ``contacts``, zero where neither is; slabs and
    contacts without cross terms give zero rows).

    Parameters
    ----------
    system : DiffusionSystem
    contacts : array_like of int
        The top contacts that carry a surface value.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (m, m)
    """
    contacts = np.asarray(contacts, dtype=np.intp)
    m = contacts.size
    if system.top_cross is None or not m:
        return sp.csr_matrix((m, m))
    cells = system.top_index[contacts]
    box = system.boxes[cells]
    bulk = np.flatnonzero(cells < system.n_bulk)
    tick = 1e-12  # m: box corners as integers (voxel edges are multiples of far more)
    corner = np.round(box[:, [0, 2]] / tick).astype(np.int64)
    span = np.round((box[:, [1, 3]] - box[:, [0, 2]]) / tick).astype(np.int64)
    on = bulk[np.any(system.top_cross[contacts[bulk]] != 0, axis=1)]
    if not on.size:
        return sp.csr_matrix((m, m))
    code = lambda xy: xy[:, 0] * (1 << 32) + xy[:, 1]  # noqa: E731 (|x|, |y| < 2 mm in picometres)
    order = bulk[np.argsort(code(corner[bulk]))]
    known = code(corner[order])

    def find(xy):  # the bulk contact whose box starts at xy, or -1
        k = np.minimum(np.searchsorted(known, code(xy)), known.size - 1)
        return np.where(known[k] == code(xy), order[k], -1)

    rows, cols, vals = [], [], []
    for a in (0, 1):
        step = np.zeros((on.size, 2), np.int64)
        step[:, a] = span[on, a]
        lo, hi = find(corner[on] - step), find(corner[on] + step)
        ok = (lo >= 0) | (hi >= 0)
        lo, hi, i = np.where(lo >= 0, lo, on)[ok], np.where(hi >= 0, hi, on)[ok], on[ok]
        coef = system.top_cross[contacts[i], a] / (system.top_xy[contacts[hi], a] - system.top_xy[contacts[lo], a])
        rows += [i, i]
        cols += [hi, lo]
        vals += [coef, -coef]
    rows, cols, vals = (np.concatenate(v) for v in (rows, cols, vals))
    return sp.csr_matrix((vals, (rows, cols)), shape=(m, m))


class _PerStepSize:
    """``build(dt)`` once per step size (the stepper's sizes are powers of two of the first, so a few serve
    a whole run; at most 25 kept), with the number built in ``count``."""

    def __init__(self, build):
        self.build, self.cache, self.count = build, {}, 0

    def __call__(self, dt):
        key = float(dt)
        if key not in self.cache:
            if len(self.cache) > 24:
                self.cache.clear()
            self.cache[key] = self.build(key)
            self.count += 1
        return self.cache[key]


class _StepSolver:
    """Solves ``(V / dt + K) x = r``: sparse LU, or AMG-preconditioned GMRES warm-started from the last state."""

    def __init__(self, A, *, direct: bool):
        self.A = A
        if direct:
            self.lu = spla.splu(A.tocsc())
        else:
            from ._frequency import amg_hierarchy

            self.lu = None
            sym = (0.5 * (A + A.T)).tocsr()
            self.M = amg_hierarchy(sym, max_coarse=500).aspreconditioner(cycle="V")

    def solve_many(self, R):
        """Solutions for the columns of ``R`` (one LU solve for all, or GMRES column by column)."""
        if self.lu is not None:
            return self.lu.solve(np.asarray(R, float))
        return np.stack([self.solve(R[:, k], None) for k in range(R.shape[1])], 1)

    def solve(self, r, x0):
        if self.lu is not None:
            return self.lu.solve(r)
        x, info = spla.gmres(self.A, r, x0=x0, M=self.M, rtol=1e-11, atol=0.0, restart=40, maxiter=200)
        if info != 0:
            raise RuntimeError(f"time step: AMG-GMRES did not converge (info={info})")
        return x
