"""LiCoO2 orientation contrast of the ESM response: (003) vs (104) vs (110) grains (docs/mechanics.md).

One grain fills a laterally periodic film (128 nm period, 2 nm pixels, graded z to 300 nm); a
potentiostatic Lorentzian tip (d = 10 nm, 1 V) at the centre, 10 kHz. For each orientation the Li
field is solved with the grain's rotated diffusivity tensor (full-tensor operator), and the surface
displacement with (a) the grain's rotated Vegard tensor (Fourier reciprocity, PHYSICS.md sec. 3) and
(b) the isotropic trace(beta)/3 that the map engine uses. A second pass uses the same isotropic-D Li
field for all orientations, so that only the mechanics differs.

    python docs/scripts/orientation_contrast.py      (about a minute; writes docs/images/orientation_contrast.png)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from esmsim.materials import get_material  # noqa: E402
from esmsim.mechanics import SurfaceKernel  # noqa: E402
from esmsim.microstructure import Grid, graded_widths  # noqa: E402
from esmsim.transport import solve_frequency  # noqa: E402
from esmsim.transport._frequency import tip_terms  # noqa: E402
from esmsim.transport._tensor import assemble_tensor  # noqa: E402

N, H, FREQ, WIDTH = 64, 2e-9, 10e3, 10e-9
# angle between the c axis and the surface normal: (003) 0, (104) 55.2 deg (a = 2.816, c = 14.05 A), (110) 90
ORIENTATIONS = {"(003)": 0.0, "(104)": 55.2, "(110)": 90.0}


def tilt(deg):
    t = np.radians(deg)
    return np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])


def response(mat, R, *, isotropic_D=False):
    """(u vector with the tensor beta, u_out with the isotropic beta) at the tip, m/V."""
    omega = 2 * np.pi * FREQ
    Dp = mat.principal_diffusivities()
    Dt = np.full(3, Dp[0]) if isotropic_D else Dp
    T = R @ np.diag(Dt) @ R.T
    dz = graded_widths(0.125 * np.sqrt(Dt.min() / omega), 1.25, 300e-9, max_width=8e-9)
    grid = Grid(np.full(N, H), np.full(N, H), dz)
    s = assemble_tensor(grid, np.broadcast_to(T, grid.shape + (3, 3)), periodic=(True, True))
    tip = (N * H / 2, N * H / 2)
    c = solve_frequency(s, omega, *tip_terms(s, tip, profile="lorentzian", width=WIDTH))[0].reshape(grid.shape)
    c = c / mat.dU_dc  # mol/m^3 per volt
    K = SurfaceKernel((N, N), (H, H), dz, nu=mat["nu"])
    beta = R @ np.diag(mat.principal_vegard()) @ R.T
    u = K.displacement_vector(c, beta)
    u_iso = K.displacement(c, mat.beta_isotropic)
    i = N // 2  # pixel whose lower corner is the tip: average the four pixels around it
    at = lambda f: f[..., i - 1:i + 1, i - 1:i + 1].mean(axis=(-1, -2))  # noqa: E731
    return at(u), at(u_iso)


def main(out=Path(__file__).resolve().parents[1] / "images" / "orientation_contrast.png"):
    mat = get_material("LiCoO2")
    rows = []
    for name, deg in ORIENTATIONS.items():
        for iso_D in (False, True):
            u, ui = response(mat, tilt(deg), isotropic_D=iso_D)
            rows.append((name, iso_D, u, ui))
            print(f"{name:6s} D {'isotropic ' if iso_D else 'anisotropic'}: u_out {abs(u[2]) * 1e12:7.3f} pm/V at "
                  f"{np.degrees(np.angle(u[2])):7.1f} deg, u_x {abs(u[0]) * 1e12:6.3f} pm/V; isotropic beta: "
                  f"{abs(ui) * 1e12:7.3f} pm/V at {np.degrees(np.angle(ui)):7.1f} deg")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, iso_D in zip(axes, (False, True)):
        sel = [r for r in rows if r[1] == iso_D]
        x = np.arange(len(sel))
        ax.bar(x - 0.2, [r[2][2].real * 1e12 for r in sel], 0.4, label="tensor beta (grain)")
        ax.bar(x + 0.2, [r[3].real * 1e12 for r in sel], 0.4, label="isotropic trace(beta)/3")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [r[0] for r in sel])
        ax.set(ylabel="Re u_out (pm/V), + = surface out",
               title=("grain's own D tensor" if not iso_D else "same isotropic D (mechanics only)")
               + f", {FREQ / 1e3:g} kHz")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
