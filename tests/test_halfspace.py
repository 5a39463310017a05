"""Issue 2, item 7: homogeneous isotropic half-space under the potentiostatic Lorentzian tip.

u3(0) = (1 + nu) beta C0 d F(Omega) within 2 % in amplitude and 1 degree in
phase at Omega = 0.01, 1, 100 and 1e4, with mesh convergence (see
validation/halfspace.py for the grid and the sources of the residual error).
"""

import numpy as np
import pytest

from esmsim_validation import halfspace


@pytest.mark.parametrize("Omega", halfspace.OMEGAS)
def test_halfspace_response_matches_closed_form(Omega):
    coarse = halfspace.errors(Omega, 0.25)
    fine = halfspace.errors(Omega, 0.125)
    assert abs(fine[0]) < halfspace.AMP_TOL
    assert abs(fine[1]) < halfspace.PHASE_TOL
    # mesh convergence: halving h0 reduces the amplitude error (by ~2.5-3x, close to second order)
    assert abs(fine[0]) < 0.6 * abs(coarse[0])


@pytest.mark.slow
@pytest.mark.parametrize("Omega", halfspace.OMEGAS)
def test_halfspace_converges_further(Omega):
    errs = [abs(halfspace.errors(Omega, h)[0]) for h in (0.25, 0.125, 0.0625)]
    assert errs[2] < errs[1] < errs[0]
    assert errs[2] < 0.01


@pytest.mark.parametrize("contact", [0.0, 1.0])
def test_map_engine_reproduces_the_closed_form_in_one_grain(contact):
    """The scan engine (window, graded z, tip tiles) in a single isotropic grain at Omega = 100; with a
    contact of radius a = d the Hertz-weighted mean over the contact (0.76 of the point value)."""
    from esmsim.analytic import halfspace_lorentzian_u3
    from esmsim.materials import get_material
    from esmsim.microstructure import ColumnarMicrostructure
    from esmsim.probe import MapSettings, pixel_response

    d, D = 10e-9, 5.387e-15
    # an isotropic Vegard tensor (beta_c = beta_a), so that the closed form applies with the default tensor
    # mechanics, which then reduces to the Mindlin kernel exactly
    mat = get_material("LiCoO2", D_c_over_D_ab=1.0, gb_enhancement=1.0, beta_c=9.6e-8)
    f = 100 * D / d ** 2 / (2 * np.pi)
    ms = ColumnarMicrostructure(np.zeros((64, 64), int), (2.5e-9, 2.5e-9), 200e-9,
                                np.array([[1.0, 0, 0, 0]]), np.array([[0.0, 0.0]]))
    st = MapSettings(frequency=f, tip_width=d, window=60e-9, contact_radius=contact * d)
    num = pixel_response(ms, mat, st, 32, 32)
    ref = halfspace_lorentzian_u3(frequency=f, D=D, width=d, C0=1 / mat.dU_dc, beta=mat.beta_isotropic, nu=mat["nu"],
                                  contact_radius=contact * d)
    # uniform 2.5 nm (d/4) lateral cells: the validation shows ~2.4 % at h0 = d/4; allow 3 %
    assert abs(num) / abs(ref) - 1 == pytest.approx(0, abs=0.03)
    assert np.degrees(np.angle(num / ref)) == pytest.approx(0, abs=1.0)


@pytest.mark.slow
def test_point_injection_relaxation_two_decades():
    """u3(0, t) = (1 + nu) beta N / (4 pi D t) within 2 % for t = 10 - 1000 a^2 / D (transport + mechanics;
    validation/relaxation.py explains the tolerance: what is left is the stepper's accumulated error)."""
    from esmsim_validation.relaxation import relaxation

    t, num, ref = relaxation([10, 100, 1000], rtol=1e-6)
    assert np.all(np.abs(num / ref - 1) < 0.02)
    assert np.all(num < 0)  # beta < 0: Li injection pulls the surface in
