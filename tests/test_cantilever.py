"""Cantilever in contact: the contact-mode equation against an independent beam FEM; BGlib's SHO and its fit."""

import numpy as np
import pytest

from esmsim._errors import ParameterError
from esmsim.probe import Cantilever, contact_resonance, contact_wavenumber, fit_sho, sho_parameters, sho_response
from esmsim.probe._cantilever import FREE_ROOTS, PINNED_ROOTS, SHO_FIELDS
from esmsim_validation.cantilever import beam_fem_wavenumbers


def test_limits_are_the_free_and_pinned_beams():
    x = contact_wavenumber([0.0, np.inf])
    np.testing.assert_allclose(x, [FREE_ROOTS[0], PINNED_ROOTS[0]], rtol=1e-12)
    for m in (2, 3):
        np.testing.assert_allclose(contact_wavenumber([0.0, np.inf], m), [FREE_ROOTS[m - 1], PINNED_ROOTS[m - 1]],
                                   rtol=1e-12)
    # the tabulated roots themselves
    x = np.array(FREE_ROOTS)
    np.testing.assert_allclose(1 + np.cos(x) * np.cosh(x), 0, atol=1e-9)
    x = np.array(PINNED_ROOTS)
    np.testing.assert_allclose(np.tan(x) - np.tanh(x), 0, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.1, 1.0, 10.0, 100.0, 1000.0])
def test_contact_modes_match_beam_fem(alpha):
    # 60 Hermite elements: eigenvalue error O(h^4) ~ 1e-8, so 1e-6 tests the equation (a sign error in
    # the spring term or a missing factor 3 moves x by > 1 %).
    fem = beam_fem_wavenumbers(alpha)
    ours = [contact_wavenumber(alpha, 1), contact_wavenumber(alpha, 2)]
    np.testing.assert_allclose(ours, fem, rtol=1e-6)


def test_resonance_scales_as_x_squared_and_rises_with_stiffness():
    c = Cantilever(spring_constant=2.0, free_resonance=70e3)
    k = np.array([0.0, 2.0, 20.0, 200.0, 2e4])
    f = contact_resonance(k, c)
    assert f[0] == pytest.approx(70e3)
    assert np.all(np.diff(f) > 0)
    assert f[-1] == pytest.approx(70e3 * (PINNED_ROOTS[0] / FREE_ROOTS[0]) ** 2, rel=2e-3)
    np.testing.assert_allclose(c.resonance(k), f)
    assert c.transfer(2.0) == pytest.approx(0.5)


def test_sho_convention_of_bglib():
    A, f0, Q, phi = 2e-3, 340e3, 120.0, 0.4
    H0 = sho_response(f0, A, f0, Q, phi)
    assert abs(H0) == pytest.approx(A * Q, rel=1e-12)
    assert np.angle(H0) == pytest.approx(phi + np.pi / 2, rel=1e-12)
    assert sho_response(1e-3, A, f0, Q, phi) == pytest.approx(-A * np.exp(1j * phi), rel=1e-9)
    amp, ph = sho_parameters(-A * np.exp(1j * phi))
    assert amp == pytest.approx(A) and ph == pytest.approx(phi)


def test_fit_recovers_noise_free_parameters():
    rng = np.random.default_rng(0)
    f = np.linspace(320e3, 360e3, 64)
    n = 300
    A = rng.uniform(0.5, 2, n) * 1e-3
    f0 = rng.uniform(328e3, 352e3, n)
    Q = rng.uniform(50, 250, n)
    phi = rng.uniform(-3, 3, n)
    fit = fit_sho(f, sho_response(f, A[:, None], f0[:, None], Q[:, None], phi[:, None]).reshape(15, 20, 64))
    assert fit.shape == (15, 20) and fit.dtype.names == SHO_FIELDS
    fit = fit.ravel()
    # float32 output (BGlib's sho32): round-off 6e-8 relative
    for name, true in zip(SHO_FIELDS, (A, f0, Q)):
        np.testing.assert_allclose(fit[name], true, rtol=1e-5)
    np.testing.assert_allclose(fit["Phase [rad]"], phi, atol=1e-5)
    assert fit["R2 Criterion"].min() > 1 - 1e-6


def test_fit_with_noise_is_unbiased_within_its_scatter():
    rng = np.random.default_rng(1)
    f = np.linspace(320e3, 360e3, 64)
    n = 400
    A, f0, Q, phi = 1e-3, 340e3, 100.0, 0.3
    H = sho_response(f, A, f0, Q, phi)
    noise = 0.03 * A * Q * (rng.normal(size=(n, 64)) + 1j * rng.normal(size=(n, 64))) / np.sqrt(2)
    fit = fit_sho(f, H + noise)
    # 3 % of the peak per bin: the scatter of f0 is ~ f0/Q * 0.03 / sqrt(bins in the peak) ~ 30 Hz; the mean
    # of 400 fits must sit within 5 standard errors of the truth (a biased or wrong fit is off by far more)
    for name, true in zip(SHO_FIELDS, (A, f0, Q)):
        v = fit[name].astype(float)
        assert abs(v.mean() - true) < 5 * v.std() / np.sqrt(n) + 1e-4 * true, name
    assert fit["R2 Criterion"].min() > 0.9


def test_bad_inputs_name_the_field():
    with pytest.raises(ParameterError, match="cantilever.quality_factor"):
        Cantilever(quality_factor=0.0)
    with pytest.raises(ParameterError, match="cantilever.mode"):
        Cantilever(mode=4)
    with pytest.raises(ParameterError, match="alpha"):
        contact_wavenumber(-1.0)
    with pytest.raises(ParameterError, match="spectra"):
        fit_sho(np.linspace(1, 2, 10), np.zeros((3, 9), complex))


def test_fit_sho_flags_runaway_fits_on_noise():
    # noise-only spectra: no warning escapes, and every pixel is either flagged (all fields NaN) or a finite
    # fit with its resonance within half/twice the band (a sweep over noisy images must not carry inf or Q = 0)
    from esmsim.probe import fit_sho

    f = np.linspace(300e3, 340e3, 64)
    rng = np.random.default_rng(0)
    out = fit_sho(f, rng.normal(size=(200, 64)) + 1j * rng.normal(size=(200, 64)))
    amp, f0, q = out["Amplitude [V]"], out["Frequency [Hz]"], out["Quality Factor"]
    flagged = np.isnan(amp)
    assert flagged.any() and not flagged.all()
    assert np.all(np.isnan(f0[flagged])) and np.all(np.isnan(q[flagged]))
    assert np.all(np.isfinite(amp[~flagged])) and np.all(q[~flagged] > 0)
    assert np.all((f0[~flagged] > 150e3) & (f0[~flagged] < 680e3))
