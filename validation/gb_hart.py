"""Harrison regime A: Hart's effective diffusivity (PHYSICS.md 5.5).

Lamellar grains 10 nm wide (2L) separated by boundaries of width delta = 1 nm with D_gb = 100 D
(boundary volume fraction f = delta / 2L = 0.1) run into the depth from a surface stepped to c0.
When the bulk diffusion length is much longer than the grain width (Lambda = 2L / sqrt(D t) <= 0.4),
grains and boundaries equilibrate sideways and the laterally averaged concentration follows erfc with
Hart's D_eff = f D_gb + (1 - f) D (= 10.9 D here). The slab engine is integrated in time to
Lambda = 0.1 and 0.33; D_eff is recovered from the Li content, Int cbar dz = 2 sqrt(D_eff t / pi),
and must be within 5 % of Hart's value at Lambda = 0.1 (at 0.33, the edge of regime A, it is reported).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from esmsim.microstructure import Grid, graded_widths
from esmsim.transport import assemble, boundary_network, integrate, tip_rhs

from ._common import CaseResult, new_figure, save

D, RATIO, DELTA, WIDTH = 1e-14, 100.0, 1e-9, 10e-9
H = 2.5e-9


def simulate(lambdas=(0.33, 0.1)):
    per = int(round(WIDTH / H))
    n_grains = 4
    lab = np.repeat(np.arange(n_grains), per)[:, None].astype(np.int32)
    times = np.array(sorted((WIDTH / lam) ** 2 / D for lam in lambdas))
    f = DELTA / WIDTH
    d_eff = f * RATIO * D + (1 - f) * D
    depth = 8 * np.sqrt(d_eff * times[-1])
    dz = graded_widths(0.5e-9, 1.08, depth, max_width=depth / 200)
    grid = Grid(np.full(lab.shape[0], H), [H], dz)
    s = assemble(grid, np.full(grid.shape + (3,), D), periodic=(True, False),
                 boundaries=boundary_network(lab, H, H, periodic=True), D_gb=RATIO * D, gb_width=DELTA)
    diag, b = tip_rhs(s, (0.0, 0.0), profile="disk", width=1.0)
    res = integrate(s, times, diag=diag, b=b, rtol=1e-4, dt0=times[0] / 1e4, direct_limit=10 ** 6)
    area = lab.shape[0] * H * H
    content = res.c @ s.volume / area  # Li per surface area / c0 (m)
    cbar = np.array([(c[:s.n_bulk].reshape(grid.shape[0], -1) * 1.0).mean(0) for c in res.c])
    return times, content, d_eff, grid.centers(2), cbar


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    times, content, d_eff, z, cbar = simulate()
    measured = np.pi * content ** 2 / (4 * times)
    lam = WIDTH / np.sqrt(D * times)
    err = measured / d_eff - 1
    fig, (a1, a2) = new_figure()
    for t, cb, lm in zip(times, cbar, lam):
        a1.plot(z * 1e9, cb, "o", ms=2, label=f"Lambda = {lm:.2f}")
        a1.plot(z * 1e9, erfc(z / (2 * np.sqrt(d_eff * t))), "k-", lw=0.8)
    a1.set(xlabel="depth (nm)", ylabel="mean c / c0 (bulk columns)", title="Hart D_eff erfc (lines)")
    a1.legend()
    a2.semilogx(lam, measured / D, "o-", label="from Li content")
    a2.axhline(d_eff / D, color="k", lw=0.8, label="Hart f D_gb + (1 - f) D")
    a2.set(xlabel="Lambda = 2L / sqrt(D t)", ylabel="D_eff / D", title="effective diffusivity")
    a2.legend()
    path = save(fig, out_dir, "gb_hart")
    i = int(np.argmin(lam))
    return [CaseResult("hart_regime_A[D_eff]", abs(err[i]) <= 0.05,
                       f"{measured[i] / D:.2f} D at Lambda = {lam[i]:.2f} ({err[i]:+.2%}; {err[1 - i]:+.2%} at "
                       f"Lambda = {lam[1 - i]:.2f})", f"{d_eff / D:.2f} D", "5 %", path)]
