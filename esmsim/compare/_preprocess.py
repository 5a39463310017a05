"""SPM image preprocessing: the corrections a measured map needs before it meets a simulation.

Every function takes a numpy array or an :class:`xarray.DataArray` and returns
the same kind (a DataArray keeps its dimensions, coordinates and attributes).
Images are 2-D ``(y, x)``: for a DataArray the dimensions named ``x`` and
``y`` are used whatever their order; a plain array is taken as ``(y, x)``,
rows are scan lines along x. Values are in the image's own units (m, V,
deg); the fits work in pixel index units, so the pixel size never matters.
NaN marks missing pixels: fits ignore them and they stay NaN.
"""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError

__all__ = ["level_plane", "level_lines", "find_scars", "remove_scars", "remove_outliers", "wrap_phase",
           "volts_to_metres"]

#: sigma of a normal distribution over its median absolute deviation
_MAD_TO_SIGMA = 1.482602218505602
_DEGREES = {"deg", "degree", "degrees", "°"}
_RADIANS = {"rad", "radian", "radians"}


def _unwrap(img, field: str, *, ndim: int | None = 2):
    """(float values, function giving back the caller's type); checks shape and dtype."""
    is_da = hasattr(img, "dims") and hasattr(img, "copy") and hasattr(img, "values")
    values = img.values if is_da else img
    try:
        arr = np.asarray(values)
    except Exception as e:  # pragma: no cover - an object numpy cannot hold
        raise ParameterError(field, f"expected an array, got {type(img).__name__} ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise ParameterError(field, f"expected a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ParameterError(field, f"expected a {ndim}-D image (y, x), got shape {arr.shape}")
    arr = arr.astype(float)
    if is_da:
        return arr, lambda v: img.copy(data=v)
    return arr, lambda v: v


def _line_axis(img, axis: str) -> int:
    """Array axis along which the scan lines run (``axis="x"``: lines along x)."""
    if axis not in ("x", "y"):
        raise ParameterError("axis", f"got {axis!r}: expected 'x' (lines along x, the fast scan axis) or 'y'")
    dims = getattr(img, "dims", None)
    if dims is not None and "x" in dims and "y" in dims:
        return list(dims).index(axis)
    return 1 if axis == "x" else 0


def _robust_sigma(values) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0
    return float(_MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def level_plane(img, *, mask=None):
    """Subtract the least-squares plane ``a + b x + c y``.

    Parameters
    ----------
    img : (ny, nx) array or xarray.DataArray
        Image, any units (e.g. height in m).
    mask : (ny, nx) bool array, optional
        True on the pixels the plane is fitted to (e.g. a flat substrate); all finite pixels by
        default. The plane is subtracted everywhere.

    Returns
    -------
    array or DataArray
        ``img`` minus the plane, float, same units; NaN stays NaN.

    Raises
    ------
    ParameterError
        Not a 2-D real image, ``mask`` of another shape, or fewer than 3 usable pixels.

    Notes
    -----
    Ordinary least squares on the pixel indices: the plane minimises
    ``sum (z - a - b i_x - c i_y)^2`` over the masked finite pixels, so the result does not
    depend on the pixel size.

    Examples
    --------
    >>> y, x = np.mgrid[0:4, 0:5]
    >>> np.allclose(level_plane(2.0 + 0.5 * x - 0.25 * y), 0)
    True
    """
    z, wrap = _unwrap(img, "img")
    use = np.isfinite(z)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != z.shape or m.dtype != bool:
            raise ParameterError("mask", f"expected a bool array of shape {z.shape}, got {m.dtype} {m.shape}")
        use &= m
    iy, ix = np.indices(z.shape, dtype=float)
    if use.sum() < 3:
        raise ParameterError("mask", f"{int(use.sum())} usable pixels: expected at least 3 for a plane")
    cx, cy = ix[use].mean(), iy[use].mean()  # centred for conditioning
    A = np.stack([np.ones(use.sum()), ix[use] - cx, iy[use] - cy], axis=1)
    coef, *_ = np.linalg.lstsq(A, z[use], rcond=None)
    return wrap(z - (coef[0] + coef[1] * (ix - cx) + coef[2] * (iy - cy)))


def level_lines(img, *, order: int = 0, method: str = "median", axis: str = "x"):
    """Remove each scan line's offset (``order=0``) or offset and slope (``order=1``).

    Parameters
    ----------
    img : (ny, nx) array or xarray.DataArray
        Image, any units.
    order : {0, 1}
        0: subtract a constant per line; 1: a straight line per line.
    method : {"median", "mean"}
        ``"mean"``: the line's mean (order 0) or least-squares line (order 1). ``"median"``: the
        line's median (order 0), or the median of the pixel-to-pixel differences as slope and the
        median of what is left as offset (order 1); robust to features covering part of a line.
    axis : {"x", "y"}
        Direction of the scan lines: ``"x"`` (the fast scan axis, rows of a ``(y, x)`` array).

    Returns
    -------
    array or DataArray
        Levelled image, float, same units; every line has zero median (or mean) and, for order 1,
        zero slope by the chosen estimator.

    Raises
    ------
    ParameterError
        Bad ``order``, ``method``, ``axis`` or image.

    Notes
    -----
    Both estimators are equivariant: adding ``a_j + b_j i`` to line ``j`` changes nothing in the
    result (up to round-off), which is what removes the line-to-line jumps of a real scan.

    Examples
    --------
    >>> z = np.array([[1.0, 2.0, 3.0], [10.0, 11.0, 13.0]])
    >>> level_lines(z)
    array([[-1.,  0.,  1.],
           [-1.,  0.,  2.]])
    """
    if order not in (0, 1) or isinstance(order, bool):
        raise ParameterError("order", f"got {order!r}: expected 0 (offset) or 1 (offset and slope)")
    if method not in ("median", "mean"):
        raise ParameterError("method", f"got {method!r}: expected 'median' or 'mean'")
    z, wrap = _unwrap(img, "img")
    ax = _line_axis(img, axis)
    lines = np.moveaxis(z, ax, -1)  # (n_lines, n_along)
    out = np.full_like(lines, np.nan)
    t = np.arange(lines.shape[1], dtype=float)
    for j, line in enumerate(lines):
        ok = np.isfinite(line)
        if not ok.any():
            continue
        tt, zz = t[ok], line[ok]
        slope = 0.0
        if order == 1 and ok.sum() >= 2:
            if method == "mean":
                tc = tt - tt.mean()
                slope = float(np.dot(tc, zz - zz.mean()) / np.dot(tc, tc))
            else:
                d = np.diff(line)
                d = d[np.isfinite(d)]
                slope = float(np.median(d)) if d.size else float((zz[-1] - zz[0]) / (tt[-1] - tt[0]))
        r = zz - slope * tt
        offset = np.median(r) if method == "median" else r.mean()
        out[j] = line - offset - slope * t
    return wrap(np.moveaxis(out, -1, ax))


def find_scars(img, *, threshold: float = 3.0, min_length: int = 8, axis: str = "x"):
    """Pixels of line scars: one-line-wide streaks that stand out from the lines above and below.

    Parameters
    ----------
    img : (ny, nx) array or xarray.DataArray
        Image, any units.
    threshold : float
        In robust standard deviations (1.4826 x MAD) of the line-to-line differences.
    min_length : int
        Fewest consecutive pixels along a line that make a scar (shorter runs are noise or
        outliers: see :func:`remove_outliers`).
    axis : {"x", "y"}
        Direction of the scan lines.

    Returns
    -------
    (ny, nx) bool ndarray
        True on scar pixels. The first and last lines are never flagged.

    Notes
    -----
    With ``d_up = z[j] - z[j-1] - m`` and ``d_down = z[j] - z[j+1] + m`` (``m`` the median
    line-to-line difference, which takes out a slope across lines), a pixel is a scar candidate
    when both exceed ``threshold * sigma`` with the same sign. Scars two or more lines wide are not
    found.

    Examples
    --------
    >>> z = np.zeros((5, 10)); z[2, 1:9] = 1.0
    >>> z += 0.01 * np.random.default_rng(0).standard_normal(z.shape)
    >>> np.argwhere(find_scars(z))[[0, -1]]
    array([[2, 1],
           [2, 8]])
    """
    if not (np.isfinite(threshold) and threshold > 0):
        raise ParameterError("threshold", f"got {threshold!r}: expected a positive number of sigmas")
    if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or min_length < 1:
        raise ParameterError("min_length", f"got {min_length!r}: expected an integer >= 1 (pixels)")
    z, _ = _unwrap(img, "img")
    ax = _line_axis(img, axis)
    lines = np.moveaxis(z, ax, -1)
    found = np.zeros(lines.shape, dtype=bool)
    if lines.shape[0] >= 3:
        diff = np.diff(lines, axis=0)
        finite = diff[np.isfinite(diff)]
        m = float(np.median(finite)) if finite.size else 0.0
        limit = threshold * _robust_sigma(diff)
        up = lines[1:-1] - lines[:-2] - m
        down = lines[1:-1] - lines[2:] + m
        with np.errstate(invalid="ignore"):
            cand = ((up > limit) & (down > limit)) | ((up < -limit) & (down < -limit))
        if min_length > 1:
            cand = _long_runs(cand, min_length)
        found[1:-1] = cand
    return np.moveaxis(found, -1, ax)


def _long_runs(mask, n: int):
    """Keep the runs of True along the last axis that are at least ``n`` long."""
    out = np.zeros_like(mask)
    for j, row in enumerate(mask):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            if stop - start >= n:
                out[j, start:stop] = True
    return out


def remove_scars(img, *, threshold: float = 3.0, min_length: int = 8, axis: str = "x"):
    """Replace line-scar pixels (:func:`find_scars`) by the mean of the pixels above and below.

    Parameters
    ----------
    img : (ny, nx) array or xarray.DataArray
        Image, any units.
    threshold : float
        In robust standard deviations of the line-to-line differences.
    min_length : int
        Fewest consecutive pixels along a line that make a scar.
    axis : {"x", "y"}
        Direction of the scan lines.

    Returns
    -------
    array or DataArray
        The image with its scars replaced, float, same units.

    Examples
    --------
    >>> z = np.tile(np.arange(20.0)[:, None], (1, 10)); z[5, :] += 100
    >>> remove_scars(z)[5, :3]
    array([5., 5., 5.])
    """
    found = find_scars(img, threshold=threshold, min_length=min_length, axis=axis)
    z, wrap = _unwrap(img, "img")
    ax = _line_axis(img, axis)
    lines, f = np.moveaxis(z, ax, -1).copy(), np.moveaxis(found, -1, ax)
    j, i = np.nonzero(f)
    lines[j, i] = 0.5 * (lines[j - 1, i] + lines[j + 1, i])
    return wrap(np.moveaxis(lines, -1, ax))


def remove_outliers(img, *, sigma: float = 6.0, size: int = 3):
    """Replace isolated spikes by the median of their neighbourhood.

    Parameters
    ----------
    img : (ny, nx) array or xarray.DataArray
        Image, any units.
    sigma : float
        A pixel is an outlier when it differs from the ``size x size`` median filter by more than
        ``sigma`` robust standard deviations of that difference over the image (1.4826 x MAD of the
        non-zero differences: a pixel that is its neighbourhood's median gives an exact zero, which
        would shrink the MAD). White noise alone reaches about 5 in a 256 x 256 image.
    size : int
        Odd width of the median filter in pixels (>= 3).

    Returns
    -------
    array or DataArray
        The image with the outliers replaced by the median-filtered value, float, same units.
        NaN pixels stay NaN (they are filled with the image median for filtering only).

    Examples
    --------
    >>> z = np.zeros((5, 5)); z[2, 2] = 7.0
    >>> float(remove_outliers(z)[2, 2])
    0.0
    """
    from scipy.ndimage import median_filter

    if not (np.isfinite(sigma) and sigma > 0):
        raise ParameterError("sigma", f"got {sigma!r}: expected a positive number of sigmas")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise ParameterError("size", f"got {size!r}: expected an odd integer >= 3 (pixels)")
    z, wrap = _unwrap(img, "img")
    bad = ~np.isfinite(z)
    if bad.all():
        return wrap(z)
    filled = np.where(bad, np.median(z[~bad]), z)
    med = median_filter(filled, size=size, mode="reflect")
    r = filled - med
    rr = r[~bad & (r != 0)]
    s = _robust_sigma(rr)
    out = filled.copy()
    hit = (np.abs(r - np.median(r[~bad])) > sigma * s) & ~bad
    out[hit] = med[hit]
    out[bad] = np.nan
    return wrap(out)


def wrap_phase(phase, *, units: str | None = None, center: float = 0.0):
    """Wrap a phase into one period centred on ``center``: ``[center - 180, center + 180)`` deg.

    Parameters
    ----------
    phase : array or xarray.DataArray
        Phase, any shape.
    units : {"deg", "rad"}, optional
        The unit of ``phase`` (and ``center``); by default the DataArray's ``units`` attribute,
        required for plain arrays.
    center : float
        Middle of the output interval, in ``units`` (e.g. 90 for Asylum's -90..270 deg).

    Returns
    -------
    array or DataArray
        Phase in ``[center - half, center + half)``, ``half`` = 180 deg or pi rad; same units.

    Examples
    --------
    >>> wrap_phase(np.array([190.0, -270.0, 45.0]), units="deg")
    array([-170.,   90.,   45.])
    """
    if units is None:
        units = getattr(phase, "attrs", {}).get("units")
        if units is None:
            raise ParameterError("units", "the phase states no unit: expected units='deg' or units='rad'")
    u = str(units).strip().lower()
    if u not in _DEGREES | _RADIANS:
        raise ParameterError("units", f"got {units!r}: expected 'deg' or 'rad'")
    if not np.isfinite(center):
        raise ParameterError("center", f"got {center!r}: expected a finite phase in {units}")
    half = 180.0 if u in _DEGREES else np.pi
    p, wrap = _unwrap(phase, "phase", ndim=None)
    return wrap(np.mod(p - center + half, 2 * half) - half + center)


def volts_to_metres(data, invols: float):
    """Detector volts to metres of cantilever deflection: ``data * invols``.

    Parameters
    ----------
    data : array or xarray.DataArray
        Signal in V (a DataArray with another ``units`` attribute is refused).
    invols : float
        Inverse optical lever sensitivity in m/V (e.g. ``ds.attrs["invols"]`` from
        :func:`esmsim.io.read_measurement`).

    Returns
    -------
    array or DataArray
        Deflection in m (a DataArray's ``units`` becomes ``"m"``).

    Examples
    --------
    >>> volts_to_metres(np.array([0.5, 2.0]), 50e-9)
    array([2.5e-08, 1.0e-07])
    """
    try:
        k = float(invols)
    except (TypeError, ValueError):
        raise ParameterError("invols", f"got {invols!r}: expected a positive number in m/V") from None
    if not (np.isfinite(k) and k > 0):
        raise ParameterError("invols", f"got {invols!r}: expected a positive number in m/V")
    attrs = getattr(data, "attrs", None)
    if attrs is not None and attrs.get("units") not in (None, "", "V"):
        raise ParameterError("data", f"units are {attrs['units']!r}: expected 'V' (volts)")
    v, wrap = _unwrap(data, "data", ndim=None)
    out = wrap(v * k)
    if attrs is not None:
        out.attrs = {**attrs, "units": "m"}
    return out
