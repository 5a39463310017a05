"""Registration (rotation, scale, sub-pixel shift) and resampling on synthetic ESM-like grain images."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.segmentation import find_boundaries
from skimage.transform import AffineTransform, SimilarityTransform, rotate, warp

from esmsim._errors import ParameterError
from esmsim.compare._register import Registration, register, resample


def _grain_scene(n: int, rng) -> np.ndarray:
    """ESM-like amplitude: Voronoi grains (random levels), bright boundaries, smooth background noise."""
    g = np.random.default_rng(rng)
    seeds = g.uniform(0, n, size=(n * n // 1100, 2))  # ~30 px grains
    yy, xx = np.mgrid[0:n, 0:n]
    _, labels = cKDTree(seeds).query(np.column_stack([yy.ravel(), xx.ravel()]))
    labels = labels.reshape(n, n)
    level = g.normal(size=len(seeds))[labels]
    bright = ndimage.gaussian_filter(find_boundaries(labels, mode="inner").astype(float), 1.0)
    smooth = ndimage.gaussian_filter(g.normal(size=(n, n)), 6)
    return ndimage.gaussian_filter(0.5 * level + 4.0 * bright + 3.0 * smooth / smooth.std(), 0.7)


def _true_matrix(angle, scale, shift_px, moving_shape, fixed_shape, pixel_ratio=1.0):
    """Moving pixel (x, y) -> fixed pixel (x, y): turn by ``angle`` (counter-clockwise on screen, row 0 on top),
    magnify by ``scale`` about the moving centre, put it on the fixed centre + ``shift_px`` (dy, dx).
    ``pixel_ratio`` = moving pixel size / fixed pixel size."""
    t = np.deg2rad(angle)
    c, s = scale * np.cos(t), scale * np.sin(t)
    dy, dx = shift_px
    cm = (np.array(moving_shape)[::-1] - 1) / 2  # (x, y)
    cf = (np.array(fixed_shape)[::-1] - 1) / 2
    to_centre = np.array([[pixel_ratio, 0, -pixel_ratio * cm[0]], [0, pixel_ratio, -pixel_ratio * cm[1]], [0, 0, 1]])
    turn = np.array([[c, s, dx], [-s, c, dy], [0, 0, 1]])
    back = np.array([[1, 0, cf[0]], [0, 1, cf[1]], [0, 0, 1]])
    return back @ turn @ to_centre


def _pair(angle, scale, shift_px, *, n=128, moving_n=None, pixel_ratio=1.0, snr=5.0, rng=0):
    """(moving, fixed, true matrix): fixed is the centre of a 2n scene, moving the scene seen through the
    inverse transform (cubic interpolation); white noise with std = std(fixed) / snr added to both."""
    moving_n = n if moving_n is None else moving_n
    big = _grain_scene(2 * n, rng)
    off = n // 2
    fixed = big[off:off + n, off:off + n]
    mat = _true_matrix(angle, scale, shift_px, (moving_n, moving_n), (n, n), pixel_ratio)
    shift_scene = np.array([[1, 0, off], [0, 1, off], [0, 0, 1]])
    moving = warp(big, AffineTransform(matrix=shift_scene @ mat), output_shape=(moving_n, moving_n), order=3,
                  preserve_range=True, clip=False)
    g = np.random.default_rng(rng + 1000)
    noise = fixed.std() / snr
    return moving + g.normal(0, noise, moving.shape), fixed + g.normal(0, noise, fixed.shape), mat


def _corner_error(reg: Registration, mat, shape) -> float:
    """Largest distance (fixed pixels) between where the found and the true transform send moving's corners."""
    ny, nx = shape
    corners = np.array([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1]], float)
    true = (mat @ np.column_stack([corners, np.ones(4)]).T).T[:, :2]
    return float(np.max(np.hypot(*(reg.transform(corners) - true).T)))


# ---------------------------------------------------------------- accuracy

CASES = [  # (angle [deg], scale, shift (dy, dx) [fixed px])
    (7.3, 1.0, (3.4, -5.7)),
    (-12.1, 1.0, (-2.2, 4.6)),
    (0.0, 1.0, (3.4, -5.7)),
    (0.0, 1.1, (1.3, 2.7)),
    (-4.2, 1.1, (-3.4, 5.7)),
    (6.5, 0.93, (2.0, 1.5)),
    (163.0, 1.0, (1.5, -0.5)),  # beyond 90 deg: the Fourier magnitude's 180-deg ambiguity
]


@pytest.mark.parametrize("angle, scale, shift", CASES)
def test_recovers_rotation_scale_and_subpixel_shift(angle, scale, shift):
    spacing = 8e-9
    moving, fixed, mat = _pair(angle, scale, shift, rng=int(abs(angle) * 10) + 1)
    reg = register(moving, fixed, spacing_moving=spacing, spacing_fixed=spacing)
    assert abs(reg.rotation - angle) < 0.5
    assert reg.scale == pytest.approx(scale, rel=0.01)
    assert np.hypot(*np.subtract(reg.shift_px, shift)) < 1.0
    np.testing.assert_allclose(reg.shift, np.multiply(reg.shift_px, spacing), rtol=1e-12)
    assert _corner_error(reg, mat, moving.shape) < 1.0
    assert reg.error < 0.06  # 1 - NCC; SNR 5 noise on both images alone costs ~0.04
    assert isinstance(reg.transform, SimilarityTransform)


@pytest.mark.parametrize("angle, scale, shift", [CASES[0], CASES[3], CASES[6]])
def test_fourier_mellin_stage_alone_is_close(angle, scale, shift):
    # without the NCC refinement: measured errors <= 0.55 deg, 2.4 % and 0.34 px on CASES
    moving, fixed, _ = _pair(angle, scale, shift, rng=int(abs(angle) * 10) + 1)
    reg = register(moving, fixed, spacing_moving=8e-9, spacing_fixed=8e-9, refine=False)
    assert abs(reg.rotation - angle) < 1.0
    assert reg.scale == pytest.approx(scale, rel=0.04)
    assert np.hypot(*np.subtract(reg.shift_px, shift)) < 1.0


def test_recovers_physical_scale_across_pixel_sizes():
    # moving: 160 x 160 pixels of 0.8 x the fixed pixel size, same physical magnification
    h_f = 1e-8
    moving, fixed, mat = _pair(5.0, 1.0, (2.0, -3.0), moving_n=160, pixel_ratio=0.8, rng=11)
    reg = register(moving, fixed, spacing_moving=0.8 * h_f, spacing_fixed=h_f)
    assert abs(reg.rotation - 5.0) < 0.5
    assert reg.scale == pytest.approx(1.0, rel=0.01)
    assert np.hypot(*np.subtract(reg.shift_px, (2.0, -3.0))) < 1.0
    assert reg.transform.scale == pytest.approx(0.8, rel=0.01)  # in pixels: 0.8 fixed px per moving px
    assert _corner_error(reg, mat, moving.shape) < 1.0
    out = reg.apply(moving)
    assert out.shape == fixed.shape
    ok = np.isfinite(out)
    assert np.corrcoef(out[ok], fixed[ok])[0, 1] > 0.9


def test_conventions_match_skimage_rotate_and_ndimage_shift():
    big = _grain_scene(256, rng=3)
    crop = (slice(64, 192), slice(64, 192))  # same centre as big: rotate() turns about it
    moving = big[crop]
    fixed = rotate(big, 10.0, order=3, preserve_range=True)[crop]  # counter-clockwise on screen
    reg = register(moving, fixed, spacing_moving=1e-8, spacing_fixed=1e-8, scale=False)
    assert reg.rotation == pytest.approx(10.0, abs=0.1)
    assert reg.transform.rotation == pytest.approx(-np.deg2rad(10.0), abs=0.002)
    assert np.hypot(*reg.shift_px) < 0.2
    assert reg.scale == 1.0

    fixed = ndimage.shift(big, (2.5, -4.0), order=3)[crop]
    reg = register(moving, fixed, spacing_moving=1e-8, spacing_fixed=1e-8, rotation=False, scale=False)
    np.testing.assert_allclose(reg.shift_px, (2.5, -4.0), atol=0.1)
    assert reg.rotation == 0.0 and reg.scale == 1.0


def test_same_image_gives_identity_and_apply_returns_it():
    img = _grain_scene(96, rng=4)
    reg = register(img, img, spacing_moving=1e-8, spacing_fixed=1e-8)
    assert abs(reg.rotation) < 0.05 and reg.scale == pytest.approx(1.0, abs=1e-3)
    assert np.hypot(*reg.shift_px) < 0.05
    assert reg.error < 1e-3
    out = reg.apply(img)
    inner = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(out[inner], img[inner], atol=0.02 * np.ptp(img))


def test_apply_puts_nan_outside_and_checks_the_shape():
    moving, fixed, _ = _pair(0.0, 1.0, (10.0, 0.0), n=96, rng=5)
    reg = register(moving, fixed, spacing_moving=1e-8, spacing_fixed=1e-8, rotation=False, scale=False)
    out = reg.apply(moving)
    assert np.all(np.isnan(out[:9]))  # the top rows were outside the moving image
    assert np.all(np.isfinite(out[11:]))
    with pytest.raises(ParameterError, match=r"^moving: got shape \(95, 96\)"):
        reg.apply(moving[1:])
    with pytest.raises(ParameterError, match="^order: "):
        reg.apply(moving, order=7)


def test_anisotropic_pixels_give_an_affine_pixel_transform():
    # the same 128 x 128 px field seen with 2:1 pixels (rows twice as tall): register recovers identity
    img = _grain_scene(128, rng=6)
    squashed = resample(img, 1e-8, (2e-8, 1e-8))
    assert squashed.shape == (64, 128)
    reg = register(squashed, img, spacing_moving=(2e-8, 1e-8), spacing_fixed=1e-8)
    assert isinstance(reg.transform, AffineTransform) and not isinstance(reg.transform, SimilarityTransform)
    assert abs(reg.rotation) < 0.5 and reg.scale == pytest.approx(1.0, rel=0.01)
    assert np.hypot(*reg.shift_px) < 1.0
    np.testing.assert_allclose(np.diag(reg.transform.params)[:2], (1.0, 2.0), rtol=0.01)  # (x, y)


# ---------------------------------------------------------------- resample


def test_resample_identity_and_linear_field():
    img = np.random.default_rng(7).normal(size=(12, 10))
    np.testing.assert_array_equal(resample(img, 1e-9, 1e-9), img)
    # a linear field is reproduced exactly by bilinear interpolation at the new pixel centres
    h_from, h_to = (3e-9, 2e-9), (1e-9, 1e-9)
    i, j = np.mgrid[0:8, 0:10]
    y, x = (i - 3.5) * h_from[0], (j - 4.5) * h_from[1]
    lin = 2.0 + 3e8 * x - 1e8 * y
    out = resample(lin, h_from, h_to)
    assert out.shape == (24, 20)  # same extent: 24 nm x 20 nm
    ii, jj = np.mgrid[0:24, 0:20]
    expect = 2.0 + 3e8 * (jj - 9.5) * h_to[1] - 1e8 * (ii - 11.5) * h_to[0]
    inner = (slice(2, -2), slice(2, -2))  # beyond the outer input pixel centres the edge value is held
    np.testing.assert_allclose(out[inner], expect[inner], rtol=1e-12, atol=1e-12)


def test_resample_downsampling_keeps_the_mean_and_pads_with_nan():
    img = 5.0 + np.random.default_rng(8).normal(size=(64, 64))
    out = resample(img, 1e-9, 4e-9)
    assert out.shape == (16, 16)
    assert np.nanmean(out) == pytest.approx(5.0, abs=0.05)
    assert out.std() < 0.5 * img.std()  # anti-aliased: averaged over ~4 x 4 pixels
    padded = resample(img, 1e-9, 4e-9, shape=(20, 16))
    assert np.all(np.isnan(padded[:2])) and np.all(np.isnan(padded[-2:]))
    np.testing.assert_allclose(padded[2:-2], out)


def test_resample_propagates_nan_locally():
    img = np.ones((16, 16))
    img[8, 8] = np.nan
    out = resample(img, 1e-9, 0.5e-9)
    assert np.isnan(out[16, 16]) and np.isfinite(out[4, 4])
    assert np.isnan(out).sum() < 20


# ---------------------------------------------------------------- errors


def test_errors_name_the_argument():
    img = np.zeros((32, 32))
    with pytest.raises(ParameterError, match=r"^spacing_moving: got 0\.0"):
        register(img, img, spacing_moving=0.0, spacing_fixed=1e-9)
    with pytest.raises(ParameterError, match="^spacing_fixed: "):
        register(img, img, spacing_moving=1e-9, spacing_fixed=(1e-9, 1e-9, 1e-9))
    with pytest.raises(ParameterError, match=r"^fixed: got shape \(32,\)"):
        register(img, img[0], spacing_moving=1e-9, spacing_fixed=1e-9)
    with pytest.raises(ParameterError, match="^moving: has no finite pixel"):
        register(np.full((32, 32), np.nan), img, spacing_moving=1e-9, spacing_fixed=1e-9)
    with pytest.raises(ParameterError, match="^upsample: "):
        register(img, img, spacing_moving=1e-9, spacing_fixed=1e-9, upsample=0)
    with pytest.raises(ParameterError, match="^spacing_to: "):
        resample(img, 1e-9, -1e-9)
    with pytest.raises(ParameterError, match="^shape: "):
        resample(img, 1e-9, 1e-9, shape=(0, 4))
