import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import integrate

from esmsim.mechanics import box_kernel, box_kernel_lateral, nucleus_of_strain, surface_displacement_points


def _quad(box, p, numerator=lambda dx, dy, z: z):
    """scipy's adaptive cubature of ``numerator / r^3`` over the box, ``(dx, dy) = point - source``."""
    x0, x1, y0, y1, z0, z1 = box

    def f(z, y, x):
        return numerator(p[0] - x, p[1] - y, z) / ((x - p[0]) ** 2 + (y - p[1]) ** 2 + z ** 2) ** 1.5

    return integrate.tplquad(f, x0, x1, y0, y1, z0, z1, epsrel=1e-10, epsabs=0)[0]


QUAD_CASES = [  # boxes away from the singular point, and the surface point
    ((1.0, 2.0, -0.5, 0.7, 0.5, 1.5), (0.0, 0.0)),
    ((-3.0, -1.0, 2.0, 2.5, 0.1, 0.2), (0.3, -0.2)),
    ((10.0, 11.0, 10.0, 11.0, 3.0, 4.0), (0.0, 0.0)),
]


@pytest.mark.parametrize("box,p", QUAD_CASES)
def test_box_kernel_matches_numerical_quadrature(box, p):
    # independent reference: scipy's adaptive cubature of z / r^3 (boxes away from the singular point)
    assert box_kernel(np.array([box]), p)[0] == pytest.approx(_quad(box, p), rel=1e-7)


def test_box_under_the_point_is_finite_and_exact():
    # a thin layer under the point: Int z/r^3 over the half-space slab 0<z<h equals 2 pi h; large box -> 2 pi h
    h = 1e-3
    k = box_kernel(np.array([[-1e3, 1e3, -1e3, 1e3, 0.0, h]]), (0.0, 0.0))[0]
    assert k == pytest.approx(2 * np.pi * h, rel=2e-6)


@settings(max_examples=60, deadline=None)
@example(x0=-1.0, wx=1.0, y0=2.627170210263083e-296, wy=1.0, z0=0.0, wz=1.0, frac=0.5, axis=0)  # underflow corner
@given(
    x0=st.floats(-5, 5), wx=st.floats(0.05, 3), y0=st.floats(-5, 5), wy=st.floats(0.05, 3),
    z0=st.floats(0.0, 3), wz=st.floats(0.05, 3), frac=st.floats(0.1, 0.9), axis=st.integers(0, 2),
)
def test_box_kernel_is_additive(x0, wx, y0, wy, z0, wz, frac, axis):
    """Splitting a box in two along any axis gives the sum of the halves (checks every corner term)."""
    b = np.array([x0, x0 + wx, y0, y0 + wy, z0, z0 + wz])
    cut = b[2 * axis] + frac * (b[2 * axis + 1] - b[2 * axis])
    left, right = b.copy(), b.copy()
    left[2 * axis + 1] = cut
    right[2 * axis] = cut
    k = box_kernel(np.stack([b, left, right]), (0.0, 0.0))
    assert k[0] == pytest.approx(k[1] + k[2], rel=1e-9, abs=1e-12)


def test_small_cube_is_a_nucleus_of_strain():
    h, a = 40e-9, 0.4e-9
    box = np.array([[-a / 2, a / 2, -a / 2, a / 2, h - a / 2, h + a / 2]])
    for rho in (0.0, 20e-9, 80e-9):
        u = surface_displacement_points(box_kernel(box, (rho, 0.0)), np.array([2.0]), beta=3e-7, nu=0.3)
        assert u == pytest.approx(nucleus_of_strain(rho, h, strength=3e-7 * 2.0 * a ** 3, nu=0.3), rel=1e-4)


def test_expansion_moves_surface_out():
    # sign convention: beta * delta_c > 0 (expansion) -> u3 > 0 (towards the tip)
    box = np.array([[-1e-9, 1e-9, -1e-9, 1e-9, 1e-9, 2e-9]])
    assert surface_displacement_points(box_kernel(box, (0, 0)), np.array([1.0]), beta=1e-7, nu=0.25) > 0


@pytest.mark.parametrize("box,p", QUAD_CASES)
def test_lateral_box_kernel_matches_numerical_quadrature(box, p):
    # independent reference: scipy's adaptive cubature of (x - xi) / r^3 and (y - eta) / r^3
    k = box_kernel_lateral(np.array([box]), p)[:, 0]
    assert k[0] == pytest.approx(_quad(box, p, lambda dx, dy, z: dx), rel=1e-7)
    assert k[1] == pytest.approx(_quad(box, p, lambda dx, dy, z: dy), rel=1e-7)


def test_lateral_kernel_of_a_small_cube_is_mogi_and_odd():
    """A small cube at depth h: u_r = (1 + nu)/pi beta N r / R^3 (Mogi: the factor of the normal component),
    pointing from the source to the surface point for expansion; zero over the source."""
    h, a = 40e-9, 0.4e-9
    box = np.array([[-a / 2, a / 2, -a / 2, a / 2, h - a / 2, h + a / 2]])
    for x, y in ((20e-9, 0.0), (0.0, -30e-9), (25e-9, 25e-9)):
        k = box_kernel_lateral(box, (x, y))[:, 0]
        R3 = (x * x + y * y + h * h) ** 1.5
        assert k == pytest.approx(np.array([x, y]) * a ** 3 / R3, rel=1e-4)
    # over the source: zero up to the cancellation of the closed form for a box 100x its size deep
    assert np.allclose(box_kernel_lateral(box, (0.0, 0.0)), 0.0, atol=1e-6 * a ** 3 / h ** 2)
