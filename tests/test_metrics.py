"""Image comparison metrics: identities, analytic spectra and boundary profiles, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, ndimage, stats

from esmsim._errors import ParameterError
from esmsim.compare._metrics import (boundary_contrast, boundary_profile, compare_metrics, histogram_distance, ncc,
                                     psd_distance, radial_psd, ssim)


def _field(shape=(128, 128), sigma=2.0, rng=0):
    """Gaussian-correlated random field (periodic), sigma in pixels."""
    return ndimage.gaussian_filter(np.random.default_rng(rng).normal(size=shape), sigma, mode="wrap")


# ---------------------------------------------------------------- identities


def test_identical_images_give_perfect_scores():
    img = _field() + 3.0
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ncc(img, img) == pytest.approx(1.0, abs=1e-12)
    assert psd_distance(img, img, spacing=1e-8) == 0.0
    assert histogram_distance(img, img) == 0.0
    assert histogram_distance(img, img, method="jensen-shannon") == 0.0


def test_negative_image_gives_ncc_minus_one():
    img = _field()
    assert ncc(img, -img) == pytest.approx(-1.0, abs=1e-12)
    assert ncc(img, 5.0 - 2.0 * img) == pytest.approx(-1.0, abs=1e-12)
    assert ssim(img, 5.0 - img) < 0.05  # structure inverted, means apart: no similarity


def test_ncc_is_pearson_correlation_of_finite_pixels():
    # reference: numpy.corrcoef on the pixels finite in both images
    a, b = _field(rng=1), _field(rng=1) + 0.5 * _field(rng=2)
    a[:5, :] = np.nan
    b[:, -3:] = np.nan
    ok = np.isfinite(a) & np.isfinite(b)
    assert ncc(a, b) == pytest.approx(np.corrcoef(a[ok], b[ok])[0, 1], rel=1e-12)


def test_ssim_matches_scikit_image_without_nan():
    from skimage.metrics import structural_similarity

    a, b = _field(rng=1), _field(rng=1) + 0.3 * _field(rng=2)
    rng_ = max(a.max(), b.max()) - min(a.min(), b.min())
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, data_range=rng_), rel=1e-12)


def test_ssim_ignores_nan_border():
    a, b = _field(rng=1), _field(rng=1) + 0.3 * _field(rng=2)
    a2 = a.copy()
    a2[:10] = np.nan  # like the border of a registered image
    s = ssim(a2, b)
    assert np.isfinite(s)
    # the same statistic restricted to the rows away from the NaN border (and the half-window)
    assert s == pytest.approx(ssim(a[13:], b[13:]), rel=0.02)


@settings(max_examples=40)
@given(arrays(np.float64, (8, 9), elements=st.floats(-1e3, 1e3)),
       st.floats(0.1, 10.0), st.floats(-100.0, 100.0))
def test_ncc_properties(a, gain, offset):
    if np.ptp(a) < 1e-6:
        return
    assert ncc(a, gain * a + offset) == pytest.approx(1.0, abs=1e-9)
    assert ncc(a, -gain * a + offset) == pytest.approx(-1.0, abs=1e-9)
    b = np.roll(a, 1, axis=1)
    if np.ptp(b) > 1e-6:
        r = ncc(a, b)
        assert -1.0 <= r <= 1.0
        assert r == pytest.approx(ncc(b, a), abs=1e-12)


# ---------------------------------------------------------------- power spectra


@pytest.mark.parametrize("axis", [0, 1])
def test_radial_psd_of_a_sinusoid_peaks_at_its_frequency(axis):
    spacing = (2e-9, 3e-9)  # (dy, dx), anisotropic: checks the axis bookkeeping
    wavelength = 37e-9
    y, x = np.mgrid[0:96, 0:128] * np.array(spacing)[:, None, None]
    img = np.sin(2 * np.pi * (y if axis == 0 else x) / wavelength + 0.3)
    k, psd = radial_psd(img, spacing=spacing)
    dk = k[1] - k[0]
    assert abs(k[np.argmax(psd)] - 1 / wavelength) <= dk  # within one bin (1/m)


def test_radial_psd_of_white_noise_is_flat_at_the_pixel_area():
    spacing = 2e-9
    k, psd = radial_psd(np.random.default_rng(3).normal(size=(256, 256)), spacing=spacing)
    slope = np.polyfit(np.log10(k), np.log10(psd), 1)[0]
    # tolerance: over 20 seeds the fitted log-log slope was 0.03 +- 0.06 (256 x 256 pixels)
    assert abs(slope) < 0.2
    # unit-variance white noise: two-sided 2-D PSD = pixel area (integral over the k plane = variance)
    assert np.mean(psd) == pytest.approx(spacing ** 2, rel=0.05)


def test_radial_psd_of_smoothed_noise_follows_the_gaussian_transfer_function():
    spacing, sigma = 2e-9, 3.0
    white = np.random.default_rng(4).normal(size=(256, 256))
    smooth = ndimage.gaussian_filter(white, sigma, mode="wrap")
    k, p_white = radial_psd(white, spacing=spacing)
    _, p_smooth = radial_psd(smooth, spacing=spacing)
    slope = np.polyfit(np.log10(k), np.log10(p_smooth), 1)[0]
    assert slope < -2  # decays (white noise: ~0)
    # same noise realisation: the ratio is |G(k)|^2 = exp(-(2 pi sigma k)^2) times a constant (the variance)
    g2 = np.exp(-(2 * np.pi * sigma * spacing * k) ** 2)
    band = g2 > 1e-3  # above the window's leakage floor
    r = p_smooth[band] / p_white[band] / g2[band]
    np.testing.assert_allclose(r / np.median(r), 1.0, rtol=0.15)


def test_psd_distance_ignores_gain_and_offset_but_sees_correlation_length():
    a = _field(sigma=2.0, rng=1)
    assert psd_distance(a, 7.0 * a - 3.0, spacing=1e-8) < 1e-12
    same = psd_distance(a, _field(sigma=2.0, rng=2), spacing=1e-8)  # another realisation, same process
    longer = psd_distance(a, _field(sigma=3.0, rng=2), spacing=1e-8)
    assert same < 0.3
    assert longer > 1.0
    assert longer > 5 * same


# ---------------------------------------------------------------- histograms


def test_histogram_distance_ignores_gain_and_offset():
    a = _field(rng=5)
    assert histogram_distance(a, 4.0 * a + 1.0) == pytest.approx(0.0, abs=1e-12)
    assert histogram_distance(a, 4.0 * a + 1.0, method="jensen-shannon") == pytest.approx(0.0, abs=1e-12)


def test_histogram_distance_of_normal_and_uniform_values():
    # reference: W1 of N(0,1) and the unit-variance uniform U(-sqrt 3, sqrt 3), by quadrature of the
    # quantile functions, W1 = int_0^1 |Phi^-1(u) - sqrt(3) (2u - 1)| du (scipy.integrate.quad)
    w1, _ = integrate.quad(lambda u: abs(stats.norm.ppf(u) - np.sqrt(3) * (2 * u - 1)), 0, 1, limit=200)
    g = np.random.default_rng(6)
    a = g.normal(size=(256, 256))
    b = g.uniform(size=(256, 256))
    assert histogram_distance(a, b) == pytest.approx(w1, rel=0.1)
    js = histogram_distance(a, b, method="jensen-shannon")
    assert 0.05 < js < 1.0
    assert histogram_distance(a, g.normal(size=(256, 256))) < 0.1 * w1


# ---------------------------------------------------------------- boundaries


def test_boundary_profile_recovers_a_function_of_distance():
    spacing = (5e-9, 4e-9)  # (dy, dx)
    lam = 20e-9

    def f(d):
        return 1.0 + 2.0 * np.exp(-d / lam)

    shape = (40, 121)
    cols = (0, 60, 120)
    b = np.zeros(shape, bool)
    b[:, list(cols)] = True
    j = np.arange(shape[1])
    d_exact = np.min([np.abs(j - c) for c in cols], axis=0) * spacing[1]  # distance along x only
    img = np.tile(f(d_exact), (shape[0], 1))
    d, mean, std, count = boundary_profile(img, b, spacing=spacing, max_distance=100e-9, bins=10)
    width = d[1] - d[0]
    assert count.sum() == np.sum(d_exact < 100e-9) * shape[0]
    # the bin mean lies within the range of f over the bin: |mean - f(centre)| <= max|f'| * width / 2
    slope_max = 2.0 / lam * np.exp(-(d - width / 2) / lam)
    assert np.all(np.abs(mean - f(d)) <= slope_max * width / 2)
    assert np.all(std <= slope_max * width)


def test_boundary_profile_uses_the_spacing_of_each_axis():
    spacing = (3e-9, 7e-9)
    b = np.zeros((41, 31), bool)
    b[20, 15] = True  # a single boundary pixel: the distance is the distance to it
    i, j = np.mgrid[0:41, 0:31]
    r = np.hypot((i - 20) * spacing[0], (j - 15) * spacing[1])
    img = r ** 2
    edges = np.linspace(0, 60e-9, 7)
    d, mean, std, count = boundary_profile(img, b, spacing=spacing, bins=edges)
    for k in range(6):
        sel = (r >= edges[k]) & (r < edges[k + 1])
        assert count[k] == sel.sum()
        assert mean[k] == pytest.approx(img[sel].mean(), rel=1e-12)
        assert std[k] == pytest.approx(img[sel].std(), rel=1e-9, abs=1e-30)


def test_boundary_profile_empty_bins_and_nan_pixels():
    b = np.zeros((10, 10), bool)
    b[:, 0] = True
    img = np.ones((10, 10))
    img[:, 9] = np.nan
    d, mean, std, count = boundary_profile(img, b, spacing=1.0, bins=[0.0, 0.5, 0.9, 9.5, 20.0])
    assert count.tolist() == [10, 0, 80, 0]
    assert np.isnan(mean[1]) and np.isnan(std[3])
    assert mean[2] == 1.0


def test_boundary_contrast_of_a_bright_boundary():
    h = 1e-8
    b = np.zeros((32, 64), bool)
    b[:, 32] = True
    j = np.arange(64)
    img = np.where(np.abs(j - 32) <= 1, 1.5, 1.0) * np.ones((32, 1))  # 50 % brighter within one pixel
    assert boundary_contrast(img, b, spacing=h) == pytest.approx(0.5, rel=1e-12)
    assert boundary_contrast(img, b, spacing=h, far=10 * h) == pytest.approx(0.5, rel=1e-12)
    assert np.isnan(boundary_contrast(img, b, spacing=h, far=1e-6))  # nothing that far


# ---------------------------------------------------------------- compare_metrics


def test_compare_metrics_collects_the_scalar_metrics():
    a = _field(rng=7) + 2.0
    b = a + 0.2 * _field(rng=8)
    b[:4] = np.nan
    bd = np.zeros(a.shape, bool)
    bd[:, 40] = True
    m = compare_metrics(a, b, spacing=1e-8, boundaries_a=bd)
    assert m["ncc"] == pytest.approx(ncc(a, b))
    assert m["ssim"] == pytest.approx(ssim(a, b))
    assert m["psd_distance"] == pytest.approx(psd_distance(a, b, spacing=1e-8))
    assert m["histogram_distance"] == pytest.approx(histogram_distance(a, b))
    assert m["histogram_js"] == pytest.approx(histogram_distance(a, b, method="jensen-shannon"))
    assert m["valid_fraction"] == pytest.approx(1 - 4 / 128)
    assert m["boundary_contrast_a"] == pytest.approx(boundary_contrast(a, bd, spacing=1e-8))
    assert m["boundary_contrast_b"] == pytest.approx(boundary_contrast(b, bd, spacing=1e-8))
    assert all(isinstance(v, float) for v in m.values())


# ---------------------------------------------------------------- errors


def test_errors_name_the_argument():
    a = _field()
    with pytest.raises(ParameterError, match=r"^b: got shape \(64, 64\)"):
        ncc(a, a[:64, :64])
    with pytest.raises(ParameterError, match="^spacing: "):
        psd_distance(a, a, spacing=0.0)
    with pytest.raises(ParameterError, match="^spacing: "):
        radial_psd(a, spacing=(1e-9, -1e-9))
    with pytest.raises(ParameterError, match="^method: got 'kl'"):
        histogram_distance(a, a, method="kl")
    with pytest.raises(ParameterError, match="^bins: "):
        histogram_distance(a, a, method="jensen-shannon", bins=1)
    with pytest.raises(ParameterError, match="^boundaries: .*bool"):
        boundary_profile(a, np.zeros(a.shape, int), spacing=1e-9)
    with pytest.raises(ParameterError, match="^boundaries: has no boundary pixel"):
        boundary_contrast(a, np.zeros(a.shape, bool), spacing=1e-9)
    with pytest.raises(ParameterError, match="^win_size: "):
        ssim(a, a, win_size=4)
    with pytest.raises(ParameterError, match="^a: "):
        ncc(np.ones(5), np.ones(5))
    with pytest.raises(ParameterError, match="^boundaries_b: "):
        compare_metrics(a, a, spacing=1e-9, boundaries_a=a > 0, boundaries_b=np.zeros(a.shape, bool))
