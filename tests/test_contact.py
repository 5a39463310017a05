"""Hertz contact (PHYSICS.md sec. 3)."""

import numpy as np
import pytest

from esmsim._errors import ParameterError
from esmsim.mechanics import hertz_contact


def test_physics_md_example():
    """E* ~ 97 GPa, F = 100 nN, R_tip = 10-30 nm -> a = 2-3 nm (PHYSICS.md): a silicon tip on E_s = 200 GPa
    (the nanoindentation range of LiCoO2) gives that E*."""
    c = hertz_contact(100e-9, np.array([10e-9, 30e-9]), 200e9, 0.2)
    assert c.reduced_modulus == pytest.approx(97.5e9, rel=5e-3)
    assert np.all((c.radius > 1.9e-9) & (c.radius < 3e-9))


def test_hertz_relations():
    """a^3 = 3 F R / (4 E*), k* = 2 a E*, indentation a^2 / R, and k* = dF/d(indentation) (numerical derivative)."""
    E, nu, R = 150e9, 0.25, 20e-9
    F = np.array([50e-9, 100e-9, 100.001e-9])
    c = hertz_contact(F, R, E, nu, tip_modulus=1e20, tip_nu=0.0)  # ~rigid tip: E* = E / (1 - nu^2)
    assert c.reduced_modulus == pytest.approx(E / (1 - nu ** 2), rel=1e-8)  # tip compliance 1e-20 vs 6e-12
    assert np.allclose(c.radius ** 3, 3 * F * R / (4 * c.reduced_modulus), rtol=1e-12, atol=0)
    assert np.allclose(c.stiffness, 2 * c.radius * c.reduced_modulus, atol=0)
    dFdh = (F[2] - F[1]) / (c.indentation[2] - c.indentation[1])
    assert dFdh == pytest.approx(c.stiffness[1], rel=1e-4)


@pytest.mark.parametrize("kw,field", [(dict(force=-1e-9), "force"), (dict(tip_radius=0.0), "tip_radius"),
                                      (dict(sample_nu=0.5), "sample_nu"), (dict(sample_modulus=np.nan), "sample_modulus")])
def test_bad_input(kw, field):
    args = dict(force=1e-7, tip_radius=2e-8, sample_modulus=1e11, sample_nu=0.2)
    args.update(kw)
    with pytest.raises(ParameterError, match=field):
        hertz_contact(**args)
