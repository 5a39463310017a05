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
    cache: dict[float, object] = {}
    count = {"lu": 0}

    def solver(dt):
        key = float(dt)
        if key not in cache:
            if len(cache) > 24:
                cache.clear()
            cache[key] = _StepSolver((sp.diags(V / dt) + A0).tocsr(), direct=n <= direct_limit)
            count["lu"] += 1
        return cache[key]

    def be(c_old, t_new, dt):
        return solver(dt).solve(V / dt * c_old + s(t_new - 0.5 * dt) * b, c_old)

    times, out, steps, rejected = _adaptive(be, c, times, breakpoints, rtol, atol, dt0)
    return TimeResult(times, out, steps, rejected, count["lu"])


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


F_CONST = 96485.33212  # C/mol
R_CONST = 8.314462618  # J/(mol K)


def integrate_butler_volmer(system: DiffusionSystem, times, *, tip_xy, profile: str, width: float, voltage,
                            j0: float, temperature: float = 298.15, alpha_a: float = 0.5,
                            alpha_c: float = 0.5, ocv_shift=None, dU_dc: float | None = None, rtol: float = 1e-3,
                            dt0: float | None = None, breakpoints=(), newton_tol: float = 1e-10) -> TimeResult:
    """Time-domain solve with the nonlinear Butler-Volmer tip condition (PHYSICS.md sec. 2).

    The inward Li flux density at a surface point under the tip is
    ``N = (j0 / F) [exp(alpha_a F eta / (R T)) - exp(-alpha_c F eta / (R T))]`` with the overpotential
    ``eta = V(t) f(rho) - ocv_shift(c_s)``, where ``c_s`` is the surface concentration change and
    ``ocv_shift(c) = U(c_rest) - U(c_rest + c)`` the fall of the open-circuit potential as Li goes in
    (default linear, ``|dU/dc| c``). Where the profile does not apply (outside a contact disk) the
    surface is no-flux. Each surface cell gets one more unknown, ``c_s``, tied to its cell by the half
    cell's conductance; each implicit step is solved by Newton's method (sparse LU of the Jacobian). For
    small V it reduces to the linearised (Robin) condition with ``kappa = j0 |dU/dc| / (R T)``.

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

    Returns
    -------
    TimeResult
        ``c`` holds the cell unknowns (not the surface values).
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
    # coupling between each cell and its surface unknown: flux g (c_s - c_P) into the cell
    Gc = sp.csr_matrix((g_half, (cells, np.arange(m))), shape=(n, m))
    P = sp.csr_matrix((np.ones(m), (np.arange(m), cells)), shape=(m, n))
    dG = sp.diags(g_half)
    Kc = system.K + sp.csr_matrix((np.bincount(cells, g_half, n), (np.arange(n), np.arange(n))), shape=(n, n))

    def flux(cs, t):
        eta = voltage(t) * f - ocv_shift(cs)
        return (j0 / F_CONST) * (np.exp(alpha_a * fr * eta) - np.exp(-alpha_c * fr * eta)), eta

    def be(state, t_new, dt):
        c_old = state[:n]
        x = state.copy()
        for _ in range(50):
            c, cs = x[:n], x[n:]
            N, eta = flux(cs, t_new)
            h = 1e-7 * (np.abs(cs) + 1e-3)
            dN = (flux(cs + h, t_new)[0] - N) / h
            r1 = V / dt * (c - c_old) + Kc @ c - Gc @ cs
            r2 = g_half * (cs - c[cells]) - area * N
            J = sp.bmat([[sp.diags(V / dt) + Kc, -Gc], [-dG @ P, sp.diags(g_half - area * dN)]]).tocsc()
            dx = spla.spsolve(J, -np.concatenate([r1, r2]))
            x = x + dx
            if np.abs(dx).max() <= newton_tol * max(np.abs(x).max(), 1e-30):
                break
        else:
            raise RuntimeError("Butler-Volmer step: Newton did not converge in 50 iterations")
        return x

    times, out, steps, rejected = _adaptive(be, np.zeros(n + m), times, breakpoints, rtol, None, dt0)
    return TimeResult(times, out[:, :n], steps, rejected, 0)


class _StepSolver:
    """Solves ``(V / dt + K) x = r``: sparse LU, or AMG-preconditioned GMRES warm-started from the last state."""

    def __init__(self, A, *, direct: bool):
        self.A = A
        if direct:
            self.lu = spla.splu(A.tocsc())
        else:
            import pyamg  # core dependency, imported lazily

            self.lu = None
            sym = (0.5 * (A + A.T)).tocsr()
            self.M = pyamg.smoothed_aggregation_solver(sym, max_coarse=500).aspreconditioner(cycle="V")

    def solve(self, r, x0):
        if self.lu is not None:
            return self.lu.solve(r)
        x, info = spla.gmres(self.A, r, x0=x0, M=self.M, rtol=1e-11, atol=0.0, restart=40, maxiter=200)
        if info != 0:
            raise RuntimeError(f"time step: AMG-GMRES did not converge (info={info})")
        return x
