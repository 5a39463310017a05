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

__all__ = ["integrate", "TimeResult"]


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
    times = np.asarray(times, float)
    if times.ndim != 1 or times.size == 0 or np.any(times <= 0) or np.any(np.diff(times) <= 0):
        raise ValueError("times: must be increasing positive times (s)")
    n = system.n
    A0 = system.K if diag is None else (system.K + sp.diags(diag)).tocsr()
    V = system.volume
    b = np.zeros(n) if b is None else np.asarray(b, float)
    s = (lambda t: 1.0) if source is None else source
    c = np.zeros(n) if c0 is None else np.asarray(c0, float).copy()
    dt_base = float(dt0) if dt0 is not None else float(times[0]) / 1000.0
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
    return TimeResult(times, np.asarray(out), steps, rejected, count["lu"])


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
