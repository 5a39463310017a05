import numpy as np
import pytest

from esmsim.analytic import lorentzian_response_factor as F


def test_static_limit_is_pi_over_2():
    assert F(0.0) == pytest.approx(np.pi / 2, rel=1e-9)
    assert abs(F(1e-8) - np.pi / 2) < 1e-3


@pytest.mark.parametrize("Omega", [1e5, 1e7])
def test_high_frequency_limit(Omega):
    # F -> 2 / sqrt(i Omega): amplitude and -45 deg phase
    assert F(Omega) == pytest.approx(2 / np.sqrt(1j * Omega), rel=5e-3)


def test_phase_lags_monotonically_towards_minus_45():
    ph = [np.degrees(np.angle(F(o))) for o in (0.01, 1, 100, 1e4)]
    assert all(a > b for a, b in zip(ph, ph[1:]))
    assert -45 < ph[-1] < -44


def test_negative_omega_rejected():
    with pytest.raises(ValueError, match="Omega"):
        F(-1.0)
