"""Mechanics quadrature against closed forms (PHYSICS.md sec. 3 and 5, item 6).

- Nucleus of strain (Mogi): a small cube of volume change at depth h gives
  u3(rho) = (1 + nu)/pi * beta N h / (rho^2 + h^2)^(3/2); checked within 1 %
  for rho/h in [0, 3] (the cube's finite size is an O((a/h)^2) effect, 1e-4 here).
- Thin surface layer: a square plate of half-side R and thickness h with
  eigenstrain eps gives u3 -> 2 (1 + nu) eps h at its centre; within 1 % at
  R/h = 1000 (the finite-size correction is ~ h/R), which also exercises the
  closed-form box integral at an extreme aspect ratio.
- The same with the FFT path (laterally periodic) on a true disk: R = 1 um, h = 1 nm (R/h = 1000) on
  10 nm pixels, period 5.12 um; within 1 % of 2 (1 + nu) eps h, and within 1e-3 of the finite disk's
  exact centre value 2 (1 + nu) eps [h - (sqrt(R^2 + h^2) - R)] (what is left: the staircase rim and the
  periodic images).
"""

from __future__ import annotations

import numpy as np

from esmsim.mechanics import box_kernel, nucleus_of_strain, surface_displacement_fft, surface_displacement_points

from ._common import CaseResult, new_figure, save

TOL = 0.01


def fft_disk(R=1e-6, t=1e-9, h=10e-9, n=512, eps=1e-3, nu=0.2):
    """Centre displacement of a thin surface disk by the FFT path, over 2 (1 + nu) eps t; and the finite
    disk's exact value on the same scale."""
    x = (np.arange(n) + 0.5) * h - n * h / 2
    X, Y = np.meshgrid(x, x, indexing="ij")
    c = (np.hypot(X, Y) <= R).astype(float)[..., None]
    u = surface_displacement_fft(c, (h, h), [t], beta=eps, nu=nu)
    centre = u[n // 2 - 1:n // 2 + 1, n // 2 - 1:n // 2 + 1].mean() / (2 * (1 + nu) * eps * t)
    return float(centre), 1 - (np.hypot(R, t) - R) / t


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    nu, beta, c = 0.2, -2.46e-7, 1000.0
    h, a = 50e-9, 0.5e-9
    box = np.array([[-a / 2, a / 2, -a / 2, a / 2, h - a / 2, h + a / 2]])
    rho = np.linspace(0, 3 * h, 31)
    num = np.array([surface_displacement_points(box_kernel(box, (r, 0.0)), np.array([c]), beta=beta, nu=nu) for r in rho])
    ref = nucleus_of_strain(rho, h, strength=beta * c * a ** 3, nu=nu)
    err_point = float(np.max(np.abs(num / ref - 1)))
    ratios = np.array([10, 30, 100, 300, 1000])
    t = 1e-9
    plate = [float(surface_displacement_points(box_kernel(np.array([[-R * t, R * t, -R * t, R * t, 0, t]]), (0.0, 0.0)),
                                               np.array([1.0]), beta=1e-3, nu=nu)) / (2 * (1 + nu) * 1e-3 * t) for R in ratios]
    err_plate = abs(plate[-1] - 1)
    disk, disk_exact = fft_disk()
    err_disk = abs(disk - 1)
    fig, (a1, a2) = new_figure()
    a1.plot(rho / h, ref * 1e15, "k-", label="Mogi")
    a1.plot(rho / h, num * 1e15, "o", ms=3, label="box quadrature")
    a1.set(xlabel="rho / h", ylabel="u3 (fm)", title="nucleus of strain")
    a1.legend()
    a2.semilogx(ratios, plate, "o-")
    a2.semilogx([1000], [disk], "s", label="FFT, true disk")
    a2.axhline(1, color="k", lw=0.8)
    a2.legend()
    a2.set(xlabel="R / h", ylabel="u3 / (2 (1+nu) eps h)", title="thin surface layer")
    path = save(fig, out_dir, "mechanics_point")
    return [
        CaseResult("mechanics_nucleus_of_strain", err_point <= TOL, f"max error {err_point:.2e}", "Mogi", "1 %", path),
        CaseResult("mechanics_thin_layer[R/h=1000]", err_plate <= TOL, f"{plate[-1]:.5f}", "1 (2 (1+nu) eps h)", "1 %", path),
        CaseResult("mechanics_thin_disk_fft[R/h=1000]", bool(err_disk <= TOL and abs(disk / disk_exact - 1) <= 1e-3),
                   f"{disk:.5f} (finite disk exact {disk_exact:.5f})", "1 (2 (1+nu) eps h)",
                   "1 %; 1e-3 vs the finite disk", path),
    ]
