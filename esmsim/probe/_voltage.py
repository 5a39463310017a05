"""Voltage spectroscopy: hysteresis loops under a DC staircase with the nonlinear Butler-Volmer tip.

The DC bias steps through a triangle ``0 -> +V_max -> -V_max -> 0`` (BEPS-style): each step ``V_k`` is held
for ``step_time`` (on field), then the bias returns to 0 for ``off_time`` (off field) with the tip still in
contact. The surface displacement under the tip is read at the end of each on and off step; the off-field
loop is the remanent response of the Li moved by the bias.

Under the tip each surface cell exchanges Li through the Butler-Volmer law of PHYSICS.md sec. 2 (the same
discrete model as :func:`esmsim.transport.integrate_butler_volmer`): an inward flux density
``N = (j0 / F) [exp(alpha_a F eta / RT) - exp(-alpha_c F eta / RT)]``, ``eta = V f(rho) - |dU/dc| c_s``, with
the surface value ``c_s`` tied to its cell through the half cell's conductance. The rest of the surface is
no-flux. The nonlinearity sits on those surface cells only, so the bulk is reduced once: a block rational
Krylov space of ``K`` driven by unit fluxes into the tip cells (the relaxation engine's shifts, three vectors
per shift and cell), projected and diagonalised; the reduced nonlinear system (a few hundred unknowns) is
integrated with Radau IIA (scipy, analytic Jacobian). Cells where the profile is below ``f_min`` (default
0.2; the Lorentzian beyond 2 d) are no-flux: the exponential law makes their share small above threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from .._errors import ParameterError
from ..transport._frequency import contact_profile, symmetric_lu
from ..transport._time import F_CONST, R_CONST
from ._relaxation import RelaxationPulse, _reduced, _RelaxationWindow, point_values, relaxation_shifts

__all__ = ["VoltageSweep", "voltage_spectroscopy", "loop_metrics"]


@dataclass(frozen=True)
class VoltageSweep:
    """A triangular DC staircase and the tip kinetics (SI units).

    Attributes
    ----------
    amplitude : float
        Largest DC bias V_max (V).
    steps : int
        Steps per cycle (a multiple of 4: the triangle's quarters).
    cycles : int
        Cycles.
    step_time, off_time : float
        Duration of each on step and of the off step after it (s).
    j0 : float
        Exchange current density (A/m^2).
    alpha_a, alpha_c : float
        Transfer coefficients.
    temperature : float
        K.
    f_min : float
        Surface cells with the profile below this are no-flux.
    """

    amplitude: float
    steps: int = 32
    cycles: int = 1
    step_time: float = 1e-3
    off_time: float = 1e-3
    j0: float = 1.0
    alpha_a: float = 0.5
    alpha_c: float = 0.5
    temperature: float = 298.15
    f_min: float = 0.2

    def __post_init__(self):
        checks = {"voltage.amplitude": (self.amplitude, np.isfinite(self.amplitude) and self.amplitude > 0, "> 0 V"),
                  "voltage.steps": (self.steps, int(self.steps) >= 4 and int(self.steps) % 4 == 0,
                                    "a multiple of 4, at least 4"),
                  "voltage.cycles": (self.cycles, int(self.cycles) >= 1, ">= 1"),
                  "voltage.step_time": (self.step_time, self.step_time > 0, "> 0 s"),
                  "voltage.off_time": (self.off_time, self.off_time > 0, "> 0 s"),
                  "voltage.j0": (self.j0, np.isfinite(self.j0) and self.j0 > 0, "> 0 A/m^2"),
                  "voltage.alpha_a": (self.alpha_a, 0 < self.alpha_a < 1, "between 0 and 1"),
                  "voltage.alpha_c": (self.alpha_c, 0 < self.alpha_c < 1, "between 0 and 1"),
                  "voltage.temperature": (self.temperature, self.temperature > 0, "> 0 K"),
                  "voltage.f_min": (self.f_min, 0 < self.f_min <= 1, "in (0, 1]")}
        for name, (value, ok, allowed) in checks.items():
            if not ok:
                raise ParameterError(name, f"got {value!r}; allowed {allowed}")

    def voltages(self) -> np.ndarray:
        """DC bias of every on step (V): ``0 -> +V_max -> -V_max -> 0`` per cycle, first step above 0."""
        ph = (np.arange(self.steps * self.cycles) % self.steps + 1) / self.steps
        tri = np.where(ph < 0.25, 4 * ph, np.where(ph < 0.75, 2 - 4 * ph, 4 * ph - 4))
        return self.amplitude * tri

    @property
    def t_min(self) -> float:
        return float(min(self.step_time, self.off_time))

    @property
    def t_max(self) -> float:
        return float(self.steps * self.cycles * (self.step_time + self.off_time))


class _VoltageWindow(_RelaxationWindow):
    """The relaxation engine's time-domain window, driven through Butler-Volmer tip cells."""

    def __init__(self, ms, material, settings, sweep: VoltageSweep, dz=None):
        # the z cells and window follow the sweep's shortest and longest times
        pulse = RelaxationPulse(1.0, sweep.t_min, [sweep.t_max - sweep.t_min])
        super().__init__(ms, material, settings, pulse, dz)
        self.sweep = sweep
        self.repeats = 2  # block vectors per shift and tip cell (3: 7e-6 -> see tests/test_voltage.py)

    def solve_tile(self, ix, iy) -> np.ndarray:
        """Loops of every tip of a tile: shape (nx, ny, 3, n_steps): on-field and off-field displacement (m)
        and the Li under the tip at the end of each off step (mol)."""
        sw = self.sweep
        ix, iy = np.atleast_1d(ix), np.atleast_1d(iy)
        lab, ox, oy, grid, net, system = self.system(ix, iy, omega=None)
        h = self.ms.spacing[0]
        K, V = system.K.tocsc(), system.volume
        shifts = relaxation_shifts(self.pulse)
        lus = [symmetric_lu(K + sp.diags(s * V)) for s in shifts]
        out = np.empty((ix.size * iy.size, 3, sw.steps * sw.cycles))
        t = 0
        for a in ix:
            for c in iy:
                tip = ((ox + a - ix[0] + 0.5) * h, (oy + c - iy[0] + 0.5) * h)
                out[t] = self._loop(system, tip, K, V, lus)
                t += 1
        return out.reshape(ix.size, iy.size, 3, -1)

    def _loop(self, system, tip, K, V, lus):
        st, sw = self.settings, self.sweep
        f, mask = contact_profile(system, tip, st.tip_profile, st.tip_width)
        sel = mask & (system.top_area > 0) & (f >= sw.f_min)
        if not sel.any():
            raise ParameterError("voltage.f_min", f"no surface cell under the tip has a profile >= {sw.f_min}")
        cells, f, area, g = system.top_index[sel], f[sel], system.top_area[sel], system.top_conductance[sel]
        m = cells.size
        B = np.zeros((system.n, m))
        B[cells, np.arange(m)] = 1.0  # unit Li flux (mol/s) into each tip cell
        W = _block_basis(lus, V, B, repeats=self.repeats)
        lam, Q = _reduced(K, W)
        WQ = W @ Q  # modal basis: c = WQ z, z' = -lam z + WQ[cells]^T flux
        Pc = WQ[cells]  # (m, r): tip-cell concentrations
        y = np.array([self.isotropic_displacement(system, tip, WQ[:, k]) for k in range(WQ.shape[1])])
        total = V @ WQ
        fr = F_CONST / (R_CONST * sw.temperature)
        dU = self.material.dU_dc

        def bv(eta):
            return (sw.j0 / F_CONST) * (np.exp(sw.alpha_a * fr * eta) - np.exp(-sw.alpha_c * fr * eta))

        def dbv(eta):
            return (sw.j0 / F_CONST) * fr * (sw.alpha_a * np.exp(sw.alpha_a * fr * eta)
                                             + sw.alpha_c * np.exp(-sw.alpha_c * fr * eta))

        def surface(c, volt):
            """Surface values: g (c_s - c) = area N(volt f - dU c_s), monotone in c_s; bisection then Newton."""
            lo, hi = np.minimum(c, volt * f / dU), np.maximum(c, volt * f / dU)
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                phi = g * (mid - c) - area * bv(volt * f - dU * mid)
                lo, hi = np.where(phi < 0, mid, lo), np.where(phi < 0, hi, mid)
            cs = 0.5 * (lo + hi)
            for _ in range(3):
                eta = volt * f - dU * cs
                cs = cs - (g * (cs - c) - area * bv(eta)) / (g + area * dU * dbv(eta))
            return cs

        def rhs(_, z, volt):
            c = Pc @ z
            return -lam * z + Pc.T @ (g * (surface(c, volt) - c))

        def jac(_, z, volt):
            c = Pc @ z
            k = area * dU * dbv(volt * f - dU * surface(c, volt))
            return -np.diag(lam) - Pc.T @ ((g * k / (g + k))[:, None] * Pc)

        z = np.zeros(WQ.shape[1])
        res = np.empty((3, sw.steps * sw.cycles))
        atol = 1e-9 * sw.amplitude / dU * np.sqrt(V[cells].sum())  # z ~ c sqrt(volume) (V-orthonormal basis)
        for k, volt in enumerate(sw.voltages()):
            for j, (dur, v) in enumerate(((sw.step_time, volt), (sw.off_time, 0.0))):
                sol = solve_ivp(rhs, (0.0, dur), z, method="Radau", jac=jac, args=(v,), rtol=1e-8, atol=atol)
                if not sol.success:
                    raise RuntimeError(f"voltage spectroscopy: step {k} ({v:g} V) failed: {sol.message}")
                z = sol.y[:, -1]
                res[j, k] = y @ z
            res[2, k] = total @ z
        return res

def _block_basis(lus, V, B, repeats):
    """V-orthonormal basis of the block rational Krylov space ``{(K + s V)^-k B}`` (two passes of block
    Gram-Schmidt, columns that add less than 1e-10 of their norm dropped)."""
    sq = np.sqrt(V)
    Ws = np.zeros((V.size, 0))  # sqrt(V) W: orthonormal in the Euclidean product
    for lu in lus:
        X = B
        for _ in range(repeats):
            X = lu.solve(np.asarray(X, float))
            Y = sq[:, None] * X
            norms = np.linalg.norm(Y, axis=0)
            for _ in range(2):
                Y = Y - Ws @ (Ws.T @ Y)
            U, s, _ = np.linalg.svd(Y, full_matrices=False)
            keep = s > 1e-10 * max(norms.max(), 1e-300)
            if not keep.any():
                break
            Ws = np.hstack([Ws, U[:, keep]])
            X = V[:, None] * (U[:, keep] / sq[:, None])
    return Ws / sq[:, None]


def loop_metrics(voltages, off_field):
    """Threshold, remanence and loop area of an off-field loop (first cycle).

    Parameters
    ----------
    voltages : (n,) array
        On-step biases (V) of :meth:`VoltageSweep.voltages`.
    off_field : (..., n) array
        Off-field displacement (m).

    Returns
    -------
    dict of arrays
        ``threshold`` (V): first bias of the rising branch where the off-field response departs from 0 by
        10 % of its largest magnitude; ``remanent`` (m): off-field response after the bias has come back
        to 0 from +V_max minus the one after -V_max (half the loop's opening at zero bias, times 2);
        ``area`` (V m): the loop's signed area ``oint u dV``.
    """
    v = np.asarray(voltages, float)
    u = np.asarray(off_field, float)
    n = v.size
    q = n // 4
    rise = u[..., :q]
    big = np.max(np.abs(u), axis=-1, keepdims=True)
    over = np.abs(rise) >= 0.1 * big
    first = np.where(over.any(-1), np.argmax(over, -1), -1)
    thr = np.where(first >= 0, v[:q][np.clip(first, 0, q - 1)], np.nan)
    rem = u[..., 2 * q - 1] - u[..., n - 1] if n >= 4 else np.full(u.shape[:-1], np.nan)
    vv = np.concatenate([[0.0], v])
    uu = np.concatenate([np.zeros(u.shape[:-1] + (1,)), u], -1)
    area = 0.5 * np.sum((uu[..., 1:] + uu[..., :-1]) * np.diff(vv), -1)
    return {"threshold": thr, "remanent": rem, "area": area}


def voltage_spectroscopy(ms, material, settings, sweep: VoltageSweep, *, points=None, pixels=None, workers=None,
                         tile: int = 4, progress: bool = False, client=None):
    """Hysteresis loops at chosen tip pixels or over a coarse map.

    Parameters
    ----------
    ms : ColumnarMicrostructure
    material : Material
    settings : MapSettings
        Tip profile and width, z grading, bottom (its frequency is not used).
    sweep : VoltageSweep
    points : (n, 2) int array, optional
        Microstructure pixel indices; otherwise a map over ``pixels`` (default ``settings.pixels``).
    workers, tile, progress, client
        As for :func:`relaxation_spectroscopy`; the tips of a tile share the window's factorisations.

    Returns
    -------
    voltages : ndarray, shape (n_steps,)
    loops : ndarray, shape (n_points, 3, n_steps) or (nx, ny, 3, n_steps)
        On-field and off-field displacement (m) and the Li added under the tip (mol) per step.
    ix, iy : ndarray of int
        Tip pixels.
    """
    from functools import partial

    from ._scan import _grid_response, map_pixels

    factory = partial(_VoltageWindow, sweep=sweep)
    if points is not None:
        loops, ix, iy = point_values(ms, material, settings, points, factory)
        return sweep.voltages(), loops, ix, iy
    ix, iy = map_pixels(ms.shape, pixels if pixels is not None else settings.pixels)
    loops, _ = _grid_response(ms, material, settings, ix, iy, workers=workers, tile=tile, progress=progress,
                              client=client, factory=factory, desc="voltage loops")
    return sweep.voltages(), loops, ix, iy
