"""Anisotropic and in-plane surface displacement against an independent finite-element solve (issue 5).

A Gaussian Li bump (width w = 4 nm, centre 11 nm deep, offset (6, -3) nm from the surface point) in one
LiCoO2 grain rotated by 0.9 rad about (1, 2, 0.5), so every component of the Vegard tensor
beta = R diag(beta_a, beta_a, beta_c) R^T is non-zero. esmsim: the Fourier reciprocity path
(``SurfaceKernel.displacement_vector``) on a 128 nm periodic grid of 1 nm cells. Reference:
scikit-fem, trilinear hexahedra on a tensor mesh graded from h0 at the bump (growth 1.3) out to a
200 x 200 x 100 nm box clamped on its sides and bottom, eigenstrain load ``Int C : eps* : eps(v)``,
smoothed-aggregation AMG conjugate gradients (pyamg). Two FE meshes (h0 = 2 and 1.5 nm) are
Richardson-extrapolated (second order); u_x, u_y and u_out are checked within 3 % (the issue's
tolerance). Measured: -0.8 % in u_x and u_y and -0.25 % in u_out after extrapolation (-2.9 %, -3.7 %,
-1.5 % on the coarse mesh alone; -1.3 %, -1.6 %, -0.6 % with h0 = 1 nm in a 300 nm box): what is left is the clamped box (in-plane motion decays only as 1/r^2, so the
in-plane components feel the box most) and the FE discretisation.

Second part, a film on a much stiffer substrate (issue 5, item 3): the same bump in a film of thickness
H = 15 nm bonded to a rigid substrate (the FE box clamped at z = H), against esmsim's exact Fourier
solution of the film (``SurfaceKernel(..., film_thickness=H)``), within 3 %. Measured: -0.1 %, -0.0 %,
+0.2 %; the half-space formula would be off by -20 %, -18 % and -0.3 % (the in-plane motion feels the
substrate most), which the report also lists.

Needs scikit-fem (``pip install "esmsim[test]"``).
"""

from __future__ import annotations

import numpy as np

from esmsim.mechanics import SurfaceKernel

from ._common import CaseResult, new_figure, save

TOL = 0.03
NU = 0.25
WIDTH = 4e-9
OFFSET = np.array([6e-9, -3e-9, 11e-9])  # bump centre relative to the surface point (x, y, depth)
BETA_CRYSTAL = (9.6e-8, 9.6e-8, -9.3e-7)


def rotation(axis=(1.0, 2.0, 0.5), angle=0.9):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def beta_tensor():
    R = rotation()
    return R @ np.diag(BETA_CRYSTAL) @ R.T


def gaussian_cells(shape, h, centre, w):
    """Cell averages of exp(-|x - centre|^2 / w^2) on cubic cells of side h (exact, via erf)."""
    from scipy.special import erf

    out = 1.0
    for a in range(3):
        e = np.arange(shape[a] + 1) * h - centre[a]
        m = np.sqrt(np.pi) / 2 * w * np.diff(erf(e / w)) / h
        out = np.multiply.outer(out, m) if a else m
    return out


def esmsim_displacement(h=1e-9, n=128, nz=40, film_thickness=None):
    """(u_x, u_y, u_out) in m per (mol/m^3) of bump amplitude, by the Fourier reciprocity path."""
    x0 = (n // 2 + 0.5) * h  # the centre of pixel n // 2 is the surface point
    c = gaussian_cells((n, n, nz), h, np.array([x0 + OFFSET[0], x0 + OFFSET[1], OFFSET[2]]), WIDTH)
    u = SurfaceKernel((n, n), (h, h), np.full(nz, h), nu=NU, film_thickness=film_thickness).displacement_vector(
        c, beta_tensor())
    return u[:, n // 2, n // 2]


def _graded(h0, core, growth, length):
    x, h = [0.0], h0
    while x[-1] < core:
        x.append(x[-1] + h0)
    while x[-1] < length:
        h *= growth
        x.append(x[-1] + h)
    return np.array(x)


def fem_displacement(h0=2e-9, growth=1.3, half_width=100e-9, depth=100e-9):
    """(u_x, u_y, u_out) in m per (mol/m^3) at the surface point, by scikit-fem (lengths in nm inside)."""
    try:
        import pyamg
        from skfem import Basis, ElementHex1, ElementVector, LinearForm, MeshHex, asm, condense
        from skfem.helpers import ddot, sym_grad
        from skfem.models.elasticity import lame_parameters, linear_elasticity
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the finite-element reference needs scikit-fem: pip install \"esmsim[test]\"") from exc

    nm = 1e9
    xs = _graded(h0 * nm, 20.0, growth, half_width * nm)
    x = np.concatenate([-xs[::-1], xs[1:]])
    z = _graded(h0 * nm, 25.0, growth, depth * nm)
    z = np.append(z[z < depth * nm - 0.25 * h0 * nm], depth * nm)  # the bottom exactly at ``depth``
    mesh = MeshHex.init_tensor(x, x, z)
    basis = Basis(mesh, ElementVector(ElementHex1()), intorder=3)
    lam, mu = lame_parameters(1.0, NU)  # the displacement does not depend on E
    K = asm(linear_elasticity(lam, mu), basis)
    beta = beta_tensor()
    centre, w = OFFSET * nm, WIDTH * nm

    @LinearForm
    def load(v, q):
        X = q.x
        c = np.exp(-((X[0] - centre[0]) ** 2 + (X[1] - centre[1]) ** 2 + (X[2] - centre[2]) ** 2) / w ** 2)
        eps = beta[:, :, None, None] * c
        tr = eps[0, 0] + eps[1, 1] + eps[2, 2]
        return ddot(2 * mu * eps + lam * tr * np.eye(3)[:, :, None, None], sym_grad(v))

    f = asm(load, basis)
    xmax, zmax = x.max(), z.max()
    clamped = mesh.facets_satisfying(lambda p: (np.abs(p[0]) >= xmax - 1e-9) | (np.abs(p[1]) >= xmax - 1e-9)
                                     | (p[2] >= zmax - 1e-9))
    A, b, u, inner = condense(K, f, D=basis.get_dofs(clamped).all())
    ml = pyamg.smoothed_aggregation_solver(A.tocsr())
    u[inner] = ml.solve(b, tol=1e-10, accel="cg", maxiter=1000)
    node = np.flatnonzero((np.abs(mesh.p[0]) < 1e-9) & (np.abs(mesh.p[1]) < 1e-9) & (mesh.p[2] < 1e-9))[0]
    ux, uy, uz = u[basis.nodal_dofs[:, node]]
    # eigenstrain per (mol/m^3) and lengths in nm: displacements come out in nm per (mol/m^3)
    return np.array([ux, uy, -uz]) / nm


FILM = 15e-9


def _fem_extrapolated(depth):
    coarse, fine = fem_displacement(2e-9, depth=depth), fem_displacement(1.5e-9, depth=depth)
    return coarse, fine, fine + (fine - coarse) * 1.5 ** 2 / (2.0 ** 2 - 1.5 ** 2)


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    ours = esmsim_displacement()
    coarse, fine, extrap = _fem_extrapolated(100e-9)
    err = extrap / ours - 1
    film = esmsim_displacement(nz=int(round(FILM / 1e-9)), film_thickness=FILM)
    film_fe = _fem_extrapolated(FILM)[2]
    film_err = film_fe / film - 1
    half_err = esmsim_displacement(nz=int(round(FILM / 1e-9))) / film_fe - 1
    fig, (a1, a2) = new_figure()
    labels = ["u_x", "u_y", "u_out"]
    xs = np.arange(3)
    a1.bar(xs - 0.3, ours * 1e18, 0.2, label="esmsim (Fourier reciprocity)")
    for k, (lab, val) in enumerate((("FE h0 = 2 nm", coarse), ("FE h0 = 1.5 nm", fine), ("FE extrapolated", extrap))):
        a1.bar(xs - 0.1 + 0.2 * k, val * 1e18, 0.2, label=lab)
    a1.set_xticks(xs, labels)
    a1.axhline(0, color="k", lw=0.8)
    a1.set(ylabel="u (am per mol/m^3)", title="rotated LiCoO2 grain, Gaussian Li bump")
    a1.legend(fontsize=7)
    a2.bar(xs - 0.25, err * 100, 0.25, label="half-space")
    a2.bar(xs, film_err * 100, 0.25, label=f"film H = {FILM * 1e9:g} nm on rigid substrate")
    a2.bar(xs + 0.25, half_err * 100, 0.25, label="half-space formula for that film")
    a2.axhspan(-TOL * 100, TOL * 100, color="0.9")
    a2.set_xticks(xs, labels)
    a2.set(ylabel="FE / esmsim - 1 (%)", title="difference")
    a2.legend(fontsize=7)
    path = save(fig, out_dir, "mechanics_fem")
    out = [CaseResult(f"mechanics_fem[{lab}]", bool(abs(e) <= TOL), f"esmsim {o:.4e} m, FE {x:.4e} m ({e:+.2%})",
                      "scikit-fem (extrapolated from h0 = 2, 1.5 nm)", "3 %", path)
           for lab, o, x, e in zip(labels, ours, extrap, err)]
    out += [CaseResult(f"mechanics_fem_film[{lab}, H = {FILM * 1e9:g} nm]", bool(abs(e) <= TOL),
                       f"esmsim {o:.4e} m, FE {x:.4e} m ({e:+.2%}; half-space formula {hf:+.1%})",
                       "scikit-fem, box clamped at z = H", "3 %", path)
            for lab, o, x, e, hf in zip(labels, film, film_fe, film_err, half_err)]
    return out
