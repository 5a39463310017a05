"""1-D periodic surface concentration (PHYSICS.md sec. 5, item 2) on the graded z grid.

A column held at c0 on its top at angular frequency omega has
c = c0 exp(-(1+i) z / l), l = sqrt(2 D / omega), and Li content per area
Int c dz = c0 l / (1 + i). Under an ESM tip whose width d >> sqrt(D/omega) the
bulk response is this 1-D layer (u3 -> 2 (1 + nu) beta * content), so the
content error on the map's own z grid (first cell z_first * sqrt(D/omega),
growth z_growth) is the bulk discretisation error of the map. Checked at the
demo's settings (z_first = 0.125, growth 1.3; tolerance 1 %) and refined twice
(halving z_first and growth - 1) to show second-order convergence.
"""

from __future__ import annotations

import numpy as np

from esmsim.microstructure import Grid, graded_widths
from esmsim.transport import assemble, solve_frequency, tip_rhs

from ._common import CaseResult, new_figure, save

D = 5.387e-15
FREQ = 350e3
TOL = 0.01


def content_error(z_first: float, growth: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Relative error of the Li content per area, and the profile (z, c)."""
    omega = 2 * np.pi * FREQ
    L = np.sqrt(D / omega)
    dz = graded_widths(z_first * L, growth, 40 * L)
    grid = Grid([1e-9], [1e-9], dz)
    system = assemble(grid, np.full(grid.shape + (3,), D))
    diag, b = tip_rhs(system, (0.0, 0.0), profile="disk", width=1.0)
    c = solve_frequency(system, omega, diag, b)[0]
    l = np.sqrt(2 * D / omega)
    exact = l / (1 + 1j)
    num = np.sum(c * dz)
    return abs(num / exact - 1), grid.centers(2), c


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    settings = [(0.125, 1.3), (0.0625, 1.15), (0.03125, 1.075)]
    errs = [content_error(*s) for s in settings]
    omega = 2 * np.pi * FREQ
    l = np.sqrt(2 * D / omega)
    fig, (a1, a2) = new_figure()
    z, c = errs[0][1], errs[0][2]
    zz = np.linspace(0, z.max(), 400)
    a1.plot(zz / l, np.exp(-zz / l) * np.cos(zz / l), "k-", label="Re exact")
    a1.plot(zz / l, -np.exp(-zz / l) * np.sin(zz / l), "k--", label="Im exact")
    a1.plot(z / l, c.real, "o", ms=3, label="Re FV (demo grid)")
    a1.plot(z / l, c.imag, "s", ms=3, label="Im FV (demo grid)")
    a1.set(xlim=(0, 6), xlabel="z / l", ylabel="c / c0", title="periodic surface concentration")
    a1.legend()
    a2.loglog([s[0] for s in settings], [e[0] for e in errs], "o-")
    a2.set(xlabel="z_first (units of sqrt(D/omega))", ylabel="content error", title="convergence")
    path = save(fig, out_dir, "transport_1d_periodic")
    order = np.log2(errs[1][0] / errs[2][0])
    return [
        CaseResult("transport_1d_periodic[demo grid]", errs[0][0] <= TOL, f"content error {errs[0][0]:.3%}",
                   "c0 l/(1+i)", "1 %", path),
        CaseResult("transport_1d_periodic[order]", order > 1.8, f"observed order {order:.2f}", "2", "> 1.8", path),
    ]
