"""Metrics that compare two images on the same grid (a simulated and a measured ESM map, say).

Every function takes two arrays of the same shape and ignores pixels that are
NaN in either (e.g. the border of a registered image, see
:meth:`esmsim.compare.Registration.apply`).
"""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ._register import _spacing2

__all__ = ["boundary_contrast", "boundary_profile", "compare_metrics", "histogram_distance", "ncc",
           "psd_distance", "radial_psd", "ssim"]


def _image(image, name: str, *, min_size: int = 2) -> np.ndarray:
    img = np.asarray(image, dtype=float)
    if img.ndim != 2 or min(img.shape) < min_size:
        raise ParameterError(name, f"got shape {img.shape}; expected a 2-D image of at least {min_size} x "
                                   f"{min_size} pixels")
    if np.isinf(img).any():
        raise ParameterError(name, "contains +-inf; expected finite values (NaN marks missing pixels)")
    return img


def _pair(a, b, *, min_size: int = 2, min_valid: int = 2):
    """Validated float arrays and the mask of pixels finite in both."""
    x = _image(a, "a", min_size=min_size)
    y = _image(b, "b", min_size=min_size)
    if x.shape != y.shape:
        raise ParameterError("b", f"got shape {y.shape}; expected the shape of a, {x.shape} (register and "
                                  "resample first, see esmsim.compare.register)")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < min_valid:
        raise ParameterError("a", f"only {int(ok.sum())} pixels are finite in both images; at least {min_valid} "
                                  "needed")
    return x, y, ok


def ssim(a, b, *, win_size: int = 7) -> float:
    """Mean structural similarity (SSIM) of two images.

    ``skimage.metrics.structural_similarity`` with ``data_range`` the range of
    values in the pair (max of both minus min of both). Pixels that are NaN in
    either image are filled with that image's mean and the SSIM map is averaged
    over the windows that hold no such pixel (and, as scikit-image does, not
    over the border half-window).

    Parameters
    ----------
    a, b : array_like, shape (rows, cols)
        Images; NaN marks missing pixels.
    win_size : int
        Side of the (uniform) window in pixels, odd, >= 3.

    Returns
    -------
    float
        SSIM in [-1, 1]: 1 for identical images, about 0 for unrelated ones.
        Not a correlation: the local means count too (SSIM's luminance term),
        so an image and its negative need not score below 0; :func:`ncc`
        gives the sign.

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
    assessment: from error visibility to structural similarity", IEEE Trans.
    Image Process. 13, 600 (2004). doi:10.1109/TIP.2003.819861

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(32, 32))
    >>> round(ssim(img, img), 6)
    1.0
    """
    from scipy import ndimage
    from skimage.metrics import structural_similarity

    if isinstance(win_size, bool) or not isinstance(win_size, (int, np.integer)) or win_size < 3 \
            or win_size % 2 == 0:
        raise ParameterError("win_size", f"got {win_size!r}; expected an odd integer >= 3 (pixels)")
    x, y, ok = _pair(a, b, min_size=win_size)
    lo = min(x[ok].min(), y[ok].min())
    hi = max(x[ok].max(), y[ok].max())
    if hi == lo:
        return 1.0  # both constant and equal
    x = np.where(ok, x, x[ok].mean())
    y = np.where(ok, y, y[ok].mean())
    _, smap = structural_similarity(x, y, win_size=win_size, data_range=hi - lo, full=True)
    pad = (win_size - 1) // 2
    use = ndimage.binary_erosion(ok, np.ones((win_size, win_size), bool), border_value=1)
    use[:pad], use[-pad:], use[:, :pad], use[:, -pad:] = False, False, False, False
    if not use.any():
        raise ParameterError("a", f"no {win_size} x {win_size} window away from the border is free of NaN "
                                  "pixels; use a smaller win_size")
    return float(smap[use].mean())


def ncc(a, b) -> float:
    """Zero-mean normalised cross-correlation (Pearson correlation of the pixel values).

    Parameters
    ----------
    a, b : array_like, shape (rows, cols)
        Images; NaN marks missing pixels.

    Returns
    -------
    float
        NCC in [-1, 1]: 1 for images equal up to an offset and a positive gain,
        0 for uncorrelated, -1 for an image and its negative. NaN if either
        image is constant over the common pixels.

    Notes
    -----
    .. math:: \\mathrm{NCC} = \\frac{\\sum (a - \\bar a)(b - \\bar b)}
              {\\sqrt{\\sum (a - \\bar a)^2 \\sum (b - \\bar b)^2}}

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(16, 16))
    >>> round(ncc(img, 3 - 2 * img), 6)
    -1.0
    """
    x, y, ok = _pair(a, b)
    u, v = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    den = np.sqrt(np.dot(u, u) * np.dot(v, v))
    return float(np.clip(np.dot(u, v) / den, -1.0, 1.0)) if den > 0 else float("nan")


def _standardised(img: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Mean removed and unit variance over ``ok``; 0 elsewhere (a constant image stays 0)."""
    z = np.where(ok, img - img[ok].mean(), 0.0)
    sd = z[ok].std()
    return z / sd if sd > 0 else z


def _radial(z: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    from skimage.filters import window

    hy, hx = spacing
    ny, nx = z.shape
    w = window("hann", z.shape)
    f = np.fft.fft2(z * w)
    p = (np.abs(f) ** 2) * (hy * hx) / np.sum(w * w)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny, d=hy), np.fft.fftfreq(nx, d=hx), indexing="ij"))
    dk = max(1.0 / (ny * hy), 1.0 / (nx * hx))
    k_max = min(0.5 / hy, 0.5 / hx)
    nbin = int(np.floor(k_max / dk + 1e-9))
    idx = np.rint(k / dk).astype(int)
    use = (idx >= 1) & (idx <= nbin)
    s = np.bincount(idx[use], weights=p[use], minlength=nbin + 1)[1:]
    c = np.bincount(idx[use], minlength=nbin + 1)[1:]
    return dk * np.arange(1, nbin + 1), s / np.maximum(c, 1)


def radial_psd(image, *, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of the standardised image.

    The image is standardised (mean removed, unit variance over its finite
    pixels, NaN pixels set to 0), multiplied by a 2-D Hann window, Fourier
    transformed, and ``|F|^2`` averaged over annuli of width ``dk`` centred on
    ``j dk``, ``j = 1 .. floor(k_Nyquist / dk)``, with ``dk`` the coarser of the
    two axes' frequency steps ``1 / (n h)`` and ``k_Nyquist = 1 / (2 h)`` of the
    coarser axis.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Image; NaN marks missing pixels.
    spacing : float or (float, float)
        Pixel size in m, one value or (dy, dx).

    Returns
    -------
    k : ndarray, shape (nbins,)
        Spatial frequency 1 / wavelength at the bin centres, in 1/m (cycles per
        m; multiply by 2 pi for the angular wavenumber).
    psd : ndarray, shape (nbins,)
        Two-sided 2-D power spectral density in m^2 (per unit variance of the
        image): its integral over the (k_y, k_x) plane is about 1, the image
        variance, less the window's loss. White noise gives a flat
        ``psd = dy dx``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(64) * 1e-8
    >>> img = np.sin(2 * np.pi * x / 16e-8)[None, :] * np.ones((64, 1))
    >>> k, psd = radial_psd(img, spacing=1e-8)
    >>> float(k[np.argmax(psd)]) * 16e-8
    1.0
    """
    img = _image(image, "image", min_size=4)
    h = _spacing2(spacing, "spacing")
    ok = np.isfinite(img)
    if ok.sum() < 2:
        raise ParameterError("image", "has fewer than 2 finite pixels")
    return _radial(_standardised(img, ok), h)


def psd_distance(a, b, *, spacing) -> float:
    """Distance between the radially averaged power spectra of two images.

    The RMS over the common frequency bins of ``log10(psd_a / psd_b)``, with
    each spectrum that of the standardised image (:func:`radial_psd`; pixels
    that are NaN in either image are zeroed in both). Standardising makes the
    distance blind to gain and offset: it compares the *shape* of the spectra,
    i.e. correlation lengths, grain sizes and roughness exponents.

    Parameters
    ----------
    a, b : array_like, shape (rows, cols)
        Images; NaN marks missing pixels.
    spacing : float or (float, float)
        Pixel size in m, one value or (dy, dx).

    Returns
    -------
    float
        Distance in decades, >= 0: 0 for identical spectral shapes, 0.1 for
        spectra about 26 % apart on average, 1 for an order of magnitude.
        Two independent realisations of the same random process give about
        0.1 to 0.2 on 128 x 128 pixels, not 0: the lowest-frequency bins hold
        few pixels (a bin's log10 PSD scatters by about ``0.43 / sqrt(pixels)``).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(32, 32))
    >>> psd_distance(img, 5 * img + 2, spacing=1e-8) < 1e-12
    True
    """
    x, y, ok = _pair(a, b, min_size=4)
    h = _spacing2(spacing, "spacing")
    _, pa = _radial(_standardised(x, ok), h)
    _, pb = _radial(_standardised(y, ok), h)
    use = (pa > 0) & (pb > 0)
    if not use.any():
        return float("nan")
    return float(np.sqrt(np.mean(np.log10(pa[use] / pb[use]) ** 2)))


def histogram_distance(a, b, *, method: str = "wasserstein", bins: int = 64) -> float:
    """Distance between the value distributions of two images, after standardising each.

    Each image's values (over the pixels finite in both) are standardised to
    zero mean and unit variance, so the distance compares the *shape* of the
    distributions (skewness, tails, several modes) and not gain or offset.

    Parameters
    ----------
    a, b : array_like, shape (rows, cols)
        Images; NaN marks missing pixels.
    method : {"wasserstein", "jensen-shannon"}
        ``"wasserstein"`` (primary): the Wasserstein-1 (earth mover's) distance
        of the standardised values (``scipy.stats.wasserstein_distance``), in
        units of the standard deviation, in [0, 2]; no binning.
        ``"jensen-shannon"``: the Jensen-Shannon distance (base 2,
        ``scipy.spatial.distance.jensenshannon``) of ``bins``-bin histograms on
        common edges, in [0, 1].
    bins : int
        Number of histogram bins (``"jensen-shannon"`` only).

    Returns
    -------
    float
        0 for identical distributions (up to offset and gain); larger is more
        different (2 or 1 at most, see ``method``).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(32, 32))
    >>> histogram_distance(img, 3 * img + 1) < 1e-12
    True
    """
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    allowed = ("wasserstein", "jensen-shannon")
    if method not in allowed:
        raise ParameterError("method", f"got {method!r}; allowed {allowed}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ParameterError("bins", f"got {bins!r}; expected an integer >= 2")
    x, y, ok = _pair(a, b)
    za, zb = _standardised(x, ok)[ok], _standardised(y, ok)[ok]
    if method == "wasserstein":
        return float(wasserstein_distance(za, zb))
    lo, hi = min(za.min(), zb.min()), max(za.max(), zb.max())
    if hi == lo:
        return 0.0
    edges = np.linspace(lo, hi, bins + 1)
    p, _ = np.histogram(za, edges)
    q, _ = np.histogram(zb, edges)
    return float(jensenshannon(p, q, base=2))


def _boundary_distance(image, boundaries, spacing):
    from scipy import ndimage

    img = _image(image, "image")
    h = _spacing2(spacing, "spacing")
    b = np.asarray(boundaries)
    if b.shape != img.shape or b.dtype != bool:
        raise ParameterError("boundaries", f"got {b.dtype} array of shape {b.shape}; expected a bool mask of the "
                                           f"image's shape {img.shape}")
    if not b.any():
        raise ParameterError("boundaries", "has no boundary pixel (all False)")
    return img, ndimage.distance_transform_edt(~b, sampling=h), h


def boundary_profile(image, boundaries, *, spacing, max_distance: float | None = None, bins=16):
    """Mean image value against the distance to the nearest boundary pixel.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Image (e.g. ESM amplitude); NaN pixels are left out.
    boundaries : ndarray of bool, shape (rows, cols)
        Boundary pixels (e.g. ``skimage.segmentation.find_boundaries(labels)``).
    spacing : float or (float, float)
        Pixel size in m, one value or (dy, dx).
    max_distance : float, optional
        Largest distance binned, in m; default the largest distance in the image.
    bins : int or array_like
        Number of equal bins over [0, ``max_distance``], or the bin edges in m
        (increasing).

    Returns
    -------
    distance : ndarray, shape (nbins,)
        Bin centres in m. The distance of a pixel centre to the nearest
        boundary pixel centre (``scipy.ndimage.distance_transform_edt`` with
        ``sampling=spacing``): boundary pixels are at 0.
    mean, std : ndarray, shape (nbins,)
        Mean and standard deviation of the image values in each bin (units of
        the image); NaN for empty bins.
    count : ndarray of int, shape (nbins,)
        Pixels in each bin.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.zeros((8, 32), bool); b[:, 0] = True
    >>> img = np.tile(np.arange(32.0), (8, 1))
    >>> d, mean, std, n = boundary_profile(img, b, spacing=1.0, max_distance=32.0, bins=4)
    >>> mean.tolist()
    [3.5, 11.5, 19.5, 27.5]
    """
    img, dist, h = _boundary_distance(image, boundaries, spacing)
    if max_distance is None:
        max_distance = float(dist.max()) * (1 + 1e-12) if dist.max() > 0 else max(h)
    elif not (np.isfinite(max_distance) and max_distance > 0):
        raise ParameterError("max_distance", f"got {max_distance!r}; expected a positive distance (m)")
    if np.ndim(bins) == 0:
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ParameterError("bins", f"got {bins!r}; expected a positive integer or increasing edges (m)")
        edges = np.linspace(0.0, float(max_distance), int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0) or not np.all(np.isfinite(edges)):
            raise ParameterError("bins", f"got {bins!r}; expected a positive integer or increasing edges (m)")
    ok = np.isfinite(img) & (dist >= edges[0]) & (dist < edges[-1])
    idx = np.searchsorted(edges, dist[ok], side="right") - 1
    nb = edges.size - 1
    v = img[ok]
    count = np.bincount(idx, minlength=nb)[:nb]
    s1 = np.bincount(idx, weights=v, minlength=nb)[:nb]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, s1 / np.maximum(count, 1), np.nan)
        dev = v - mean[idx]
        var = np.bincount(idx, weights=dev * dev, minlength=nb)[:nb] / np.maximum(count, 1)
    std = np.where(count > 0, np.sqrt(var), np.nan)
    return 0.5 * (edges[:-1] + edges[1:]), mean, std, count.astype(int)


def boundary_contrast(image, boundaries, *, spacing, far: float | None = None) -> float:
    """Relative excess of the image near boundaries: ``mean(near) / mean(far) - 1``.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Image with a positive mean away from boundaries (e.g. ESM amplitude);
        NaN pixels are left out.
    boundaries : ndarray of bool, shape (rows, cols)
        Boundary pixels.
    spacing : float or (float, float)
        Pixel size in m, one value or (dy, dx).
    far : float, optional
        Pixels farther than this from any boundary pixel are "far", in m;
        default 5 pixels (5 times the larger spacing).

    Returns
    -------
    float
        Contrast (dimensionless): 0 when boundaries look like grain interiors,
        0.5 for boundaries 50 % brighter, -1 for boundaries at zero. "Near" is
        within one pixel of a boundary pixel (distance <= the larger spacing,
        the boundary pixels included). NaN if there are no near or far pixels
        or the far mean is 0.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.zeros((16, 16), bool); b[:, 0] = True
    >>> img = np.where(np.arange(16) <= 1, 3.0, 2.0) * np.ones((16, 1))
    >>> boundary_contrast(img, b, spacing=1e-8)
    0.5
    """
    img, dist, h = _boundary_distance(image, boundaries, spacing)
    px = max(h)
    if far is None:
        far = 5 * px
    elif not (np.isfinite(far) and far > px * (1 + 1e-9)):
        # "near" is within one pixel: a shorter "far" would count the same pixels as both
        raise ParameterError("far", f"got {far!r} m; expected a distance longer than one pixel ({px:g} m)")
    ok = np.isfinite(img)
    near_v = img[ok & (dist <= px * (1 + 1e-9))]
    far_v = img[ok & (dist > far)]
    if near_v.size == 0 or far_v.size == 0 or far_v.mean() == 0:
        return float("nan")
    return float(near_v.mean() / far_v.mean() - 1.0)


def compare_metrics(a, b, *, spacing, boundaries_a=None, boundaries_b=None) -> dict:
    """All scalar metrics of a pair of images, for one row of a comparison table.

    Parameters
    ----------
    a, b : array_like, shape (rows, cols)
        Images on the same grid (e.g. simulated and registered measured maps);
        NaN marks missing pixels.
    spacing : float or (float, float)
        Pixel size in m, one value or (dy, dx).
    boundaries_a, boundaries_b : ndarray of bool, optional
        Boundary masks of each image; when only one is given it serves both.

    Returns
    -------
    dict
        ``"ssim"`` (:func:`ssim`, [-1, 1]), ``"ncc"`` (:func:`ncc`, [-1, 1]),
        ``"psd_distance"`` (:func:`psd_distance`, decades),
        ``"histogram_distance"`` (:func:`histogram_distance`, Wasserstein-1 of
        standardised values), ``"histogram_js"`` (Jensen-Shannon distance,
        [0, 1]), ``"valid_fraction"`` (pixels finite in both / all), and with
        boundaries ``"boundary_contrast_a"``, ``"boundary_contrast_b"``
        (:func:`boundary_contrast`).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(size=(32, 32))
    >>> m = compare_metrics(img, img, spacing=1e-8)
    >>> sorted(m)
    ['histogram_distance', 'histogram_js', 'ncc', 'psd_distance', 'ssim', 'valid_fraction']
    """
    x, y, ok = _pair(a, b, min_size=7)
    _spacing2(spacing, "spacing")
    out = {
        "ssim": ssim(x, y),
        "ncc": ncc(x, y),
        "psd_distance": psd_distance(x, y, spacing=spacing),
        "histogram_distance": histogram_distance(x, y),
        "histogram_js": histogram_distance(x, y, method="jensen-shannon"),
        "valid_fraction": float(ok.mean()),
    }
    if boundaries_a is None and boundaries_b is not None:
        boundaries_a = boundaries_b
    if boundaries_a is not None:
        if boundaries_b is None:
            boundaries_b = boundaries_a
        for key, img, mask in (("a", x, boundaries_a), ("b", y, boundaries_b)):
            try:
                out[f"boundary_contrast_{key}"] = boundary_contrast(img, mask, spacing=spacing)
            except ParameterError as err:
                if err.field != "boundaries":
                    raise
                raise ParameterError(f"boundaries_{key}", err.message) from None
    return out
