"""Disk of radius a held at c0 on an insulating surface: steady total flux 4 D c0 a (PHYSICS.md 5.4).

Quarter domain (the planes x = 0 and y = 0 are symmetry planes), cells a/8 (a/16 in the full run)
out to 1.5 a, then growing by 1.15; the far sides and the bottom are held at c = 0 at a distance L
standing in for infinity. A finite L adds ~0.6 a/L to the flux, so the flux is computed at L = 20 a and
40 a and extrapolated linearly in a/L. The disk is the set of surface cells whose centre lies inside it
(a staircase), and its edge carries the 1/sqrt singularity of the flux: the error falls only like h/a
(measured -1.5 % at a/8, -1.2 % at a/16, -0.8 % at a/32), hence the 2 % tolerance.
"""

from __future__ import annotations

import numpy as np

from esmsim.microstructure import Grid, graded_widths
from esmsim.transport import assemble_tensor, solve_frequency, tip_terms

from ._common import CaseResult, new_figure, save

D, A = 1e-14, 10e-9


def flux(cells_per_radius: int, extent: float, growth: float = 1.15) -> float:
    """Total flux / (4 D c0 a) with the sinks at ``extent`` radii."""
    h = A / cells_per_radius
    fine = np.full(int(round(1.5 * cells_per_radius)), h)
    w = np.concatenate([fine, graded_widths(h, growth, extent * A - fine.sum())])
    grid = Grid(w, w, graded_widths(h / 2, growth, extent * A))
    T = np.zeros(grid.shape + (3, 3))
    for k in range(3):
        T[..., k, k] = D
    s = assemble_tensor(grid, T, bottom="reservoir", sinks=("x+", "y+"))
    diag, b = tip_terms(s, (0.0, 0.0), profile="disk", width=A)
    c = solve_frequency(s, 0.0, diag, b)[0].real
    on = diag[s.top_index] > 0
    return 4 * np.sum(s.top_conductance[on] * (1.0 - c[s.top_index[on]])) / (4 * D * A)


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    n = 8 if fast else 16
    f20, f40 = flux(n, 20.0), flux(n, 40.0)
    inf = 2 * f40 - f20  # linear in a/L
    err = inf - 1
    fig, (a1, a2) = new_figure()
    a1.plot([1 / 40, 1 / 20], [f40, f20], "o-", label=f"h = a/{n}")
    a1.plot([0.0], [inf], "s", label="extrapolated")
    a1.axhline(1.0, color="k", lw=0.8, label="4 D c0 a")
    a1.set(xlabel="a / L", ylabel="flux / (4 D c0 a)", title="disk at fixed concentration")
    a1.legend()
    a2.axis("off")
    path = save(fig, out_dir, "disk_flux")
    return [CaseResult("disk_flux[steady]", abs(err) <= 0.02, f"{inf:.4f} x 4 D c0 a ({err:+.2%}; L = 20 a: {f20:.4f}, "
                       f"40 a: {f40:.4f})", "4 D c0 a", "2 %", path)]
