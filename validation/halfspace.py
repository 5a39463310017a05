"""Homogeneous isotropic half-space under a potentiostatic Lorentzian tip (PHYSICS.md sec. 5, item 7).

The numerical path (finite-volume operator on a graded grid, tip condition,
frequency-domain solve, exact box quadrature of the Mindlin kernel) must give

    u3(0) = (1 + nu) beta C0 d F(Omega),  Omega = omega d^2 / D,

within 2 % in amplitude and 1 degree in phase at Omega = 0.01, 1, 100 and 1e4.
The tip sits at the corner of a quarter domain with no-flux symmetry planes,
so the full response is four times the quarter's. The grid is uniform (h0)
within 2 d of the tip and grows geometrically (ratio 1.2) out to 100 d
laterally and in depth; the first z cell is min(h0, h0 L / d) with
L = sqrt(D / omega). Refining h0 (d/4 -> d/8 -> d/16) shows the convergence;
what is left at the finest level is the truncation at 100 d and the fixed
growth ratio.

Contact averaging: a rigid tip in contact senses the surface displacement averaged
with the Hertz pressure over its contact disk (radius a). The closed form takes the
Hankel transform of that weight, 3 (sin x - x cos x) / x^3 with x = k a, inside
F(Omega) (esmsim.analytic). Checked at Omega = 1, a/d = 0.3 (0.985 of the point
value) and Omega = 100, a/d = 1 (0.764), same tolerances.
"""

from __future__ import annotations

import numpy as np

from esmsim.analytic import halfspace_lorentzian_u3
from esmsim.materials import get_material
from esmsim.mechanics import box_kernel
from esmsim.microstructure import Grid, graded_widths
from esmsim.transport import assemble, solve_frequency, tip_rhs

from ._common import CaseResult, new_figure, save

OMEGAS = (0.01, 1.0, 100.0, 1e4)
WIDTH = 10e-9  # Lorentzian width d (m)
D = 5.387e-15  # LiCoO2 D_ab (m^2/s), used isotropically
AMP_TOL = 0.02
PHASE_TOL = 1.0


def quarter_grid(Omega: float, h0_over_d: float, *, growth: float = 1.2, extent: float = 100.0) -> Grid:
    """Graded quarter-domain grid for dimensionless frequency ``Omega`` (tip at the origin corner)."""
    d = WIDTH
    h0 = h0_over_d * d
    n_core = int(round(2.0 / h0_over_d))
    lateral = np.concatenate([np.full(n_core, h0), graded_widths(h0 * growth, growth, (extent - 2.0) * d)])
    L = d / np.sqrt(Omega)
    dz = graded_widths(min(h0, h0_over_d * L), growth, extent * d)
    return Grid(lateral, lateral, dz)


def response(Omega: float, h0_over_d: float, *, method: str = "auto", contact: float = 0.0) -> complex:
    """Numerical u3 (m per volt) for LiCoO2 constants, isotropic D: at the tip, or averaged over a Hertz
    contact of radius ``contact * d``.

    The quarter domain's field is mirrored: a point p sees the four mirror images of every box, i.e. the
    original boxes from the four mirrored points ``(+-p_x, +-p_y)`` (the same point four times at the tip).
    """
    from esmsim.mechanics import hertz_average_points

    mat = get_material("LiCoO2")
    grid = quarter_grid(Omega, h0_over_d)
    system = assemble(grid, np.full(grid.shape + (3,), D))
    diag, b = tip_rhs(system, (0.0, 0.0), profile="lorentzian", width=WIDTH)
    c = solve_frequency(system, Omega * D / WIDTH ** 2, diag, b, method=method)[0]
    points: dict[tuple[float, float], float] = {}
    for (px, py), wq in zip(*hertz_average_points(contact * WIDTH)):
        for sx in (1, -1):
            for sy in (1, -1):
                key = (sx * px, sy * py)
                points[key] = points.get(key, 0.0) + wq
    w = sum(wq * box_kernel(system.boxes, p) for p, wq in points.items())
    return complex((1 + mat["nu"]) / np.pi * mat.beta_isotropic / mat.dU_dc * (w @ c))


def expected(Omega: float, contact: float = 0.0) -> complex:
    """Closed form (1 + nu) beta C0 d F(Omega; a/d) (m per volt)."""
    mat = get_material("LiCoO2")
    return halfspace_lorentzian_u3(frequency=Omega * D / WIDTH ** 2 / (2 * np.pi), D=D, width=WIDTH,
                                   C0=1.0 / mat.dU_dc, beta=mat.beta_isotropic, nu=mat["nu"],
                                   contact_radius=contact * WIDTH)


def errors(Omega: float, h0_over_d: float) -> tuple[float, float]:
    """(relative amplitude error, phase error in degrees) at one resolution."""
    num, ref = response(Omega, h0_over_d), expected(Omega)
    return abs(num) / abs(ref) - 1.0, float(np.degrees(np.angle(num / ref)))


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    levels = (0.25, 0.125) if fast else (0.25, 0.125, 0.0625)
    table = {O: [errors(O, h) for h in levels] for O in OMEGAS}
    fig, (a1, a2) = new_figure()
    for O, errs in table.items():
        a1.loglog(levels, [max(abs(e[0]), 1e-6) for e in errs], "o-", label=f"Omega = {O:g}")
        a2.semilogx(levels, [e[1] for e in errs], "o-", label=f"Omega = {O:g}")
    a1.axhline(AMP_TOL, color="k", ls="--", lw=0.8)
    a1.set(xlabel="h0 / d", ylabel="|amplitude error|", title="convergence of |u3(0)|")
    a2.axhline(PHASE_TOL, color="k", ls="--", lw=0.8)
    a2.axhline(-PHASE_TOL, color="k", ls="--", lw=0.8)
    a2.set(xlabel="h0 / d", ylabel="phase error (deg)", title="convergence of arg u3(0)")
    a1.legend()
    fig_path = save(fig, out_dir, "halfspace_lorentzian")
    results = []
    for O, errs in table.items():
        ea, ep = errs[-1]
        converging = abs(errs[-1][0]) < abs(errs[0][0])
        results.append(CaseResult(
            f"halfspace_lorentzian[Omega={O:g}]",
            abs(ea) <= AMP_TOL and abs(ep) <= PHASE_TOL and converging,
            f"|u3| error {ea:+.2%}, phase error {ep:+.2f} deg at h0=d/{1 / levels[-1]:g} "
            f"(d/{1 / levels[0]:g}: {errs[0][0]:+.2%})",
            f"(1+nu) beta C0 d F(Omega) = {abs(expected(O)) * 1e12:.4g} pm/V at {np.degrees(np.angle(expected(O))):.2f} deg",
            "2 % amplitude, 1 deg phase, error decreasing with h0", fig_path))
    for O, a in ((1.0, 0.3), (100.0, 1.0)):
        num, ref = response(O, levels[-1], contact=a), expected(O, a)
        ea, ep = abs(num) / abs(ref) - 1, float(np.degrees(np.angle(num / ref)))
        results.append(CaseResult(
            f"halfspace_contact[Omega={O:g}, a/d={a:g}]", abs(ea) <= AMP_TOL and abs(ep) <= PHASE_TOL,
            f"|u3| error {ea:+.2%}, phase error {ep:+.2f} deg at h0=d/{1 / levels[-1]:g}",
            f"Hertz-weighted mean over the contact: {abs(ref) * 1e12:.4g} pm/V "
            f"({abs(ref) / abs(expected(O)):.3f} of the point value)", "2 % amplitude, 1 deg phase", fig_path))
    return results
