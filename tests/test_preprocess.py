"""SPM preprocessing: known planes, line offsets, scars and spikes added to an image are removed exactly."""

import doctest

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from esmsim._errors import ParameterError
from esmsim.compare import (find_scars, level_lines, level_plane, remove_outliers, remove_scars, volts_to_metres,
                            wrap_phase)
from esmsim.compare import _preprocess

NY, NX = 40, 56  # not square: a transposed axis shows


def smooth_image(seed=0, noise=1.0):
    """A smooth random 'topography' (about +-10) plus white noise of the given sigma."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.standard_normal((NY, NX)), 4) * 100
    return base + noise * rng.standard_normal((NY, NX))


def as_dataarray(z):
    return xr.DataArray(z, dims=("y", "x"), coords={"y": 5e-9 * np.arange(NY), "x": 5e-9 * np.arange(NX)},
                        attrs={"units": "m", "long_name": "height"})


def test_level_plane_removes_a_known_plane_to_round_off():
    z = smooth_image()
    iy, ix = np.mgrid[0:NY, 0:NX]
    plane = 3.0 + 0.7 * ix - 1.3 * iy
    scale = np.abs(plane).max()
    np.testing.assert_allclose(level_plane(plane), 0, atol=1e-12 * scale)
    np.testing.assert_allclose(level_plane(z + plane), level_plane(z), atol=1e-12 * scale)
    # the result has no plane left: its own least-squares plane is zero
    out = level_plane(z)
    A = np.stack([np.ones(z.size), ix.ravel(), iy.ravel()], 1)
    np.testing.assert_allclose(np.linalg.lstsq(A, out.ravel(), rcond=None)[0], 0, atol=1e-12 * np.abs(z).max())


def test_level_plane_fits_only_the_masked_pixels():
    iy, ix = np.mgrid[0:NY, 0:NX]
    z = 2e-9 + 1e-10 * ix + 3e-11 * iy
    island = (ix > 20) & (ix < 35) & (iy > 10) & (iy < 25)
    z[island] += 5e-9  # a grain standing 5 nm proud
    out = level_plane(z, mask=~island)
    np.testing.assert_allclose(out[~island], 0, atol=1e-12 * 5e-9)
    np.testing.assert_allclose(out[island], 5e-9, rtol=1e-9)
    z[0, 0] = np.nan  # missing pixels are left out of the fit and stay missing
    out = level_plane(z, mask=~island)
    assert np.isnan(out[0, 0]) and np.allclose(out[island], 5e-9, rtol=1e-9, atol=0)


def test_dataarrays_keep_coords_and_attrs():
    da = as_dataarray(smooth_image())
    for f in (level_plane, level_lines, remove_scars, remove_outliers):
        out = f(da)
        assert isinstance(out, xr.DataArray) and out.dims == ("y", "x") and out.attrs == da.attrs
        np.testing.assert_array_equal(out["x"], da["x"])
    np.testing.assert_array_equal(level_lines(da).values, level_lines(da.values))
    # dimensions in the other order: lines still run along x
    np.testing.assert_allclose(level_lines(da.transpose("x", "y")).transpose("y", "x").values, level_lines(da.values))


@pytest.mark.parametrize("method", ["median", "mean"])
@pytest.mark.parametrize("order", [0, 1])
def test_level_lines_removes_added_line_offsets_and_slopes(order, method):
    rng = np.random.default_rng(3)
    z = smooth_image()
    t = np.arange(NX)
    offsets = rng.uniform(-50, 50, (NY, 1))
    slopes = rng.uniform(-2, 2, (NY, 1)) if order == 1 else 0
    scale = np.abs(z).max() + 50 + 2 * NX
    out = level_lines(z + offsets + slopes * t, order=order, method=method)
    np.testing.assert_allclose(out, level_lines(z, order=order, method=method), atol=1e-12 * scale)
    # what each line is left with, against an independent computation
    if method == "mean" and order == 1:
        ref = np.array([row - np.polyval(np.polyfit(t, row, 1), t) for row in z])
    elif method == "mean":
        ref = z - z.mean(axis=1, keepdims=True)
    elif order == 0:
        ref = z - np.median(z, axis=1, keepdims=True)
    else:
        s = np.median(np.diff(z, axis=1), axis=1, keepdims=True)
        ref = z - s * t - np.median(z - s * t, axis=1, keepdims=True)
    np.testing.assert_allclose(out, ref, atol=1e-12 * scale)


def test_level_lines_along_y_is_level_lines_of_the_transpose():
    z = smooth_image()
    np.testing.assert_allclose(level_lines(z, order=1, axis="y"), level_lines(z.T, order=1).T, rtol=0, atol=1e-13)


def test_level_lines_skips_missing_pixels_and_empty_lines():
    z = smooth_image() + np.arange(NY)[:, None] * 10.0
    z[4, :] = np.nan
    z[7, 3:9] = np.nan
    out = level_lines(z, order=1, method="mean")  # warnings are errors: an all-NaN line must not warn
    assert np.isnan(out[4]).all() and np.isnan(out[7, 3:9]).all() and np.isfinite(out[7, 9:]).all()
    ok = np.isfinite(out[7])
    assert abs(out[7][ok].mean()) < 1e-12 * np.abs(z[np.isfinite(z)]).max()


def inject_scars(z):
    """Add three one-line scars (10 sigma of the line-to-line noise, both signs) and return their mask."""
    truth = np.zeros(z.shape, bool)
    for j, i0, i1, h in [(5, 10, 30, 15.0), (17, 0, NX, -12.0), (30, 40, 52, 20.0)]:
        z[j, i0:i1] += h
        truth[j, i0:i1] = True
    return truth


def test_injected_scars_are_found_exactly_and_replaced_by_their_neighbours():
    z = smooth_image(noise=1.0)
    clean = z.copy()
    truth = inject_scars(z)
    np.testing.assert_array_equal(find_scars(z), truth)
    out = remove_scars(z)
    j, i = np.nonzero(truth)
    np.testing.assert_array_equal(out[j, i], 0.5 * (z[j - 1, i] + z[j + 1, i]))
    np.testing.assert_array_equal(out[~truth], z[~truth])
    assert np.abs(out - clean)[truth].max() < 6.0  # back to the noise level, not 12-20 off
    assert not find_scars(clean).any()
    # the same along y
    np.testing.assert_array_equal(find_scars(z.T, axis="y"), truth.T)


def test_scars_shorter_than_min_length_are_left_alone():
    z = smooth_image(noise=0.5)
    z[12, 20:24] += 30.0
    assert not find_scars(z).any()
    found = find_scars(z, min_length=4)
    assert found.sum() == 4 and found[12, 20:24].all()


def test_injected_spikes_are_replaced_by_the_local_median():
    z = smooth_image(noise=1.0)
    clean = z.copy()
    spikes = [(3, 4), (20, 30), (39, 55), (0, 17)]
    for k, (j, i) in enumerate(spikes):
        z[j, i] += (-1) ** k * 40.0
    truth = np.zeros(z.shape, bool)
    truth[tuple(np.array(spikes).T)] = True
    out = remove_outliers(z)
    np.testing.assert_array_equal(out != z, truth)
    med = ndimage.median_filter(z, size=3, mode="reflect")
    np.testing.assert_array_equal(out[truth], med[truth])
    assert (remove_outliers(clean) == clean).all()


def test_remove_outliers_keeps_missing_pixels_missing():
    z = smooth_image()
    z[5, 5] = np.nan
    z[10, 10] += 80
    out = remove_outliers(z)
    assert np.isnan(out[5, 5]) and abs(out[10, 10] - z[10, 10]) > 50
    assert np.isfinite(np.delete(out.ravel(), 5 * NX + 5)).all()


@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=20),
       st.floats(-720, 720, allow_nan=False), st.sampled_from(["deg", "rad"]))
def test_wrap_phase_lands_in_one_period_and_differs_by_whole_periods(values, center, units):
    period = 360.0 if units == "deg" else 2 * np.pi
    if units == "rad":
        center = center / 180 * np.pi
    p = np.array(values)
    w = wrap_phase(p, units=units, center=center)
    half = period / 2
    tol = 1e-9 * max(1.0, np.abs(p).max(), abs(center))
    assert np.all(w >= center - half - tol) and np.all(w < center + half + tol)
    k = (p - w) / period
    np.testing.assert_allclose(k, np.round(k), atol=1e-9 * max(1.0, np.abs(p).max()))


def test_wrap_phase_of_asylum_degrees_and_dataarrays():
    np.testing.assert_allclose(wrap_phase(np.array([-90.0, 0.0, 269.9, 270.0]), units="deg"),
                               [-90.0, 0.0, -90.1, -90.0], atol=1e-12)
    np.testing.assert_allclose(wrap_phase(np.array([-100.0, 275.0]), units="deg", center=90), [260.0, -85.0])
    da = xr.DataArray([3.5, -3.5], dims="x", attrs={"units": "rad"})
    out = wrap_phase(da)
    assert out.attrs["units"] == "rad"
    np.testing.assert_allclose(out.values, [3.5 - 2 * np.pi, 2 * np.pi - 3.5])


def test_volts_to_metres():
    da = xr.DataArray([[0.5, 2.0]], dims=("y", "x"), attrs={"units": "V"})
    out = volts_to_metres(da, 50e-9)
    assert out.attrs["units"] == "m" and da.attrs["units"] == "V"
    np.testing.assert_allclose(out.values, [[25e-9, 100e-9]], rtol=1e-15)
    with pytest.raises(ParameterError, match="expected 'V'") as err:
        volts_to_metres(out, 50e-9)  # already in metres: no double conversion
    assert err.value.field == "data"


@pytest.mark.parametrize("call,field", [
    (lambda z: level_plane(z[0]), "img"),
    (lambda z: level_plane(z.astype(complex)), "img"),
    (lambda z: level_plane(z, mask=np.ones(3, bool)), "mask"),
    (lambda z: level_plane(z, mask=np.zeros(z.shape, bool)), "mask"),
    (lambda z: level_lines(z, order=2), "order"),
    (lambda z: level_lines(z, method="mode"), "method"),
    (lambda z: level_lines(z, axis="z"), "axis"),
    (lambda z: find_scars(z, threshold=-1), "threshold"),
    (lambda z: remove_scars(z, min_length=0), "min_length"),
    (lambda z: remove_outliers(z, sigma=0), "sigma"),
    (lambda z: remove_outliers(z, size=4), "size"),
    (lambda z: wrap_phase(z), "units"),
    (lambda z: wrap_phase(z, units="grad"), "units"),
    (lambda z: wrap_phase(z, units="deg", center=np.inf), "center"),
    (lambda z: volts_to_metres(z, -1.0), "invols"),
    (lambda z: volts_to_metres(z, "a lot"), "invols"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ParameterError) as err:
        call(smooth_image())
    assert err.value.field == field and "expected" in err.value.message


def test_docstring_examples():
    assert doctest.testmod(_preprocess, raise_on_error=False).failed == 0
