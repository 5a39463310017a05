"""Tensor Vegard coefficients at surface points (real-space Boussinesq reciprocity)."""

import numpy as np
import pytest
from scipy import integrate

from esmsim.mechanics import box_kernel
from esmsim.mechanics._points import boussinesq_stress, tensor_box_weights
from esmsim_validation.mechanics_fem import NU, OFFSET, WIDTH, beta_tensor, esmsim_displacement, gaussian_cells


def test_boussinesq_stress_is_in_equilibrium_with_the_unit_force():
    """div sigma = 0 (finite differences) and the normal stress on any plane z = const carries the unit
    force: Int sigma_zz dA = -1 (compressive)."""
    rng = np.random.default_rng(0)
    pts = rng.uniform([-2, -2, 0.3], [2, 2, 2], (20, 3))
    h = 1e-5
    for p in pts:
        div = np.zeros(3)
        for j in range(3):
            dp = np.zeros(3)
            dp[j] = h
            Sp, Sm = boussinesq_stress(*(p + dp), NU), boussinesq_stress(*(p - dp), NU)
            div += (Sp[:, j] - Sm[:, j]) / (2 * h)
        assert np.abs(div).max() < 1e-5 * np.abs(boussinesq_stress(*p, NU)).max()  # FD error ~ h^2
    z = 0.7
    F = integrate.quad(lambda r: 2 * np.pi * r * boussinesq_stress(r, 0.0, z, NU)[2, 2], 0, np.inf)[0]
    assert F == pytest.approx(-1.0, rel=1e-8)


def test_trace_is_the_mindlin_kernel():
    rng = np.random.default_rng(1)
    lo = rng.uniform([-5, -5, 0], [5, 5, 3], (30, 3))
    boxes = np.column_stack([lo[:, 0], lo[:, 0] + 1.5, lo[:, 1], lo[:, 1] + 0.7, lo[:, 2], lo[:, 2] + 0.4]) * 1e-9
    W = tensor_box_weights(boxes, (0.3e-9, -0.2e-9), NU)
    assert np.allclose(np.trace(W, axis1=1, axis2=2), (1 + NU) / np.pi * box_kernel(boxes, (0.3e-9, -0.2e-9)),
                       rtol=1e-12, atol=0)
    assert np.allclose(W, W.transpose(0, 2, 1), atol=0)


def test_point_path_matches_the_fourier_path():
    """The Gaussian bump under a rotated LiCoO2 grain (validation/mechanics_fem.py): real-space quadrature
    at the point on a 48 x 48 nm window against the Fourier reciprocity path (an independent derivation) on
    the 128 nm periodic film. Within 0.5 %: measured -0.12 % with the default quadrature, -0.23 % with it
    refined to convergence (ratio 5, far 16, depth 9); what is left is the Fourier path's periodic images
    and alias sums."""
    h, n, nz = 1e-9, 128, 40
    x0 = (n // 2 + 0.5) * h
    c = gaussian_cells((n, n, nz), h, np.array([x0 + OFFSET[0], x0 + OFFSET[1], OFFSET[2]]), WIDTH)
    sl = slice(n // 2 - 24, n // 2 + 24)
    e = np.arange(n + 1) * h
    xe, ze = e[n // 2 - 24:n // 2 + 25], np.arange(nz + 1) * h
    X0, Y0, Z0 = np.meshgrid(xe[:-1], xe[:-1], ze[:-1], indexing="ij")
    boxes = np.stack([X0.ravel(), X0.ravel() + h, Y0.ravel(), Y0.ravel() + h, Z0.ravel(), Z0.ravel() + h], -1)
    W = tensor_box_weights(boxes, (x0, x0), NU)
    u = np.einsum("nij,ij,n->", W, beta_tensor(), c[sl, sl, :].ravel())
    assert u == pytest.approx(esmsim_displacement()[2], rel=5e-3)
    iso_only = np.einsum("nij,ij,n->", W, np.trace(beta_tensor()) / 3 * np.eye(3), c[sl, sl, :].ravel())
    assert abs(u - iso_only) > 0.01 * abs(u)  # the deviatoric part matters here
