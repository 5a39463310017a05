"""Registration of a measured (or simulated) image onto another: resampling, rotation, scale and shift.

Fourier-Mellin registration (scikit-image): rotation and scale from the
log-polar transform of the Fourier magnitudes, sub-pixel translation by
cross-correlation, then an optional local refinement of the normalised
cross-correlation (scipy.optimize, Nelder-Mead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import ParameterError

__all__ = ["Registration", "register", "resample"]


def _spacing2(spacing, name: str) -> tuple[float, float]:
    """Pixel size (dy, dx) in m from a scalar or a pair; validated."""
    h = np.atleast_1d(np.asarray(spacing, dtype=float))
    if h.ndim != 1 or h.size not in (1, 2) or not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise ParameterError(name, f"got {spacing!r}; expected a positive pixel size (m) or two of them "
                                   "(dy, dx) = (row, column)")
    if h.size == 1:
        h = np.repeat(h, 2)
    return float(h[0]), float(h[1])


def _image2(image, name: str, *, finite: bool = False) -> np.ndarray:
    img = np.asarray(image, dtype=float)
    if img.ndim != 2 or min(img.shape) < 8:
        raise ParameterError(name, f"got shape {img.shape}; expected a 2-D image of at least 8 x 8 pixels")
    if finite and not np.any(np.isfinite(img)):
        raise ParameterError(name, "has no finite pixel")
    return img


def _grid_matrix(shape, spacing) -> np.ndarray:
    """3 x 3 matrix: pixel (x = column, y = row, 1) -> physical (X, Y, 1) in m, origin at the image centre."""
    (ny, nx), (hy, hx) = shape, spacing
    return np.array([[hx, 0.0, -hx * (nx - 1) / 2],
                     [0.0, hy, -hy * (ny - 1) / 2],
                     [0.0, 0.0, 1.0]])


def _similarity_matrix(angle_deg: float, scale: float, shift) -> np.ndarray:
    """3 x 3 matrix in (x, y) = (column, row) coordinates of the map moving -> fixed about the origin.

    A positive angle turns the image counter-clockwise as displayed with row 0 at
    the top (the sense of ``skimage.transform.rotate``): in (x, y) coordinates with
    y pointing down this is the matrix of a rotation by ``-angle``.
    """
    t = np.deg2rad(angle_deg)
    c, s = scale * np.cos(t), scale * np.sin(t)
    dy, dx = shift
    return np.array([[c, s, dx], [-s, c, dy], [0.0, 0.0, 1.0]])


def resample(image, spacing_from, spacing_to, shape=None) -> np.ndarray:
    """Resample an image onto a grid of another pixel size with the same centre.

    Anti-aliased as ``skimage.transform.resize`` does (a Gaussian of
    ``sigma = (factor - 1) / 2`` pixels along each axis that is downsampled by
    ``factor``), then interpolated (bilinear, ``skimage.transform.warp``) at the
    new pixel centres. Output pixels whose centre lies outside the input field
    (beyond the outer pixel edges) are NaN, and so are those next to NaN input
    pixels.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Image; rows are y, columns are x. NaN marks missing pixels.
    spacing_from : float or (float, float)
        Pixel size of ``image`` in m, one value or (dy, dx).
    spacing_to : float or (float, float)
        Pixel size of the output in m, one value or (dy, dx).
    shape : (int, int), optional
        Output shape; default ``round(rows * dy_from / dy_to)`` by
        ``round(cols * dx_from / dx_to)``, the same physical extent. A larger
        shape pads with NaN, a smaller one crops, both about the centre.

    Returns
    -------
    ndarray of float, shape ``shape``
        The image on the new grid: pixel ``(i, j)`` is centred at
        ``((i - (rows' - 1) / 2) dy_to, (j - (cols' - 1) / 2) dx_to)`` m from the image centre,
        as is input pixel ``(i, j)`` with the input's shape and spacing.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(16.0).reshape(4, 4)
    >>> resample(img, 1e-9, 2e-9).shape
    (2, 2)
    >>> bool(np.allclose(resample(img, 1e-9, 1e-9), img))
    True
    """
    img = np.asarray(image, dtype=float)
    if img.ndim != 2 or min(img.shape) < 1:
        raise ParameterError("image", f"got shape {img.shape}; expected a 2-D image (rows, cols)")
    h_from = _spacing2(spacing_from, "spacing_from")
    h_to = _spacing2(spacing_to, "spacing_to")
    if shape is None:
        shape = tuple(max(1, int(round(n * a / b))) for n, a, b in zip(img.shape, h_from, h_to))
    else:
        try:
            shape = tuple(int(v) for v in shape)
        except (TypeError, ValueError):
            shape = ()
        if len(shape) != 2 or min(shape) < 1:
            raise ParameterError("shape", f"got {shape!r}; expected two positive integers (rows, cols)")
    # output pixel (x, y) -> input pixel (x, y): through physical coordinates
    m = np.linalg.solve(_grid_matrix(img.shape, h_from), _grid_matrix(shape, h_to))
    if np.allclose(m, np.eye(3), rtol=0, atol=1e-12) and tuple(shape) == img.shape:
        return img.copy()
    sigma = [max(0.0, (b / a - 1) / 2) for a, b in zip(h_from, h_to)]
    return _warp_nan(img, m, shape, sigma=sigma, order=1)


def _warp_nan(img: np.ndarray, inverse: np.ndarray, shape, *, sigma, order: int) -> np.ndarray:
    """``img`` sampled at ``inverse @ (x, y, 1)`` of each output pixel (skimage.transform.warp).

    Anti-aliased first by a Gaussian of ``sigma`` = (rows, cols) pixels. NaN
    where the output pixel centre falls outside the input's outer pixel edges
    or next to a NaN input pixel; within half a pixel of the edge the edge
    value is held.
    """
    from skimage.filters import gaussian
    from skimage.transform import AffineTransform, warp

    nan = ~np.isfinite(img)
    if nan.all():
        return np.full(shape, np.nan)
    src = np.where(nan, img[~nan].mean(), img)
    if max(sigma) > 0:
        src = gaussian(src, sigma=sigma, mode="nearest", preserve_range=True)
    tform = AffineTransform(matrix=inverse)
    out = warp(src, tform, output_shape=shape, order=order, mode="edge", clip=False, preserve_range=True)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    xi = inverse[0, 0] * xx + inverse[0, 1] * yy + inverse[0, 2]
    yi = inverse[1, 0] * xx + inverse[1, 1] * yy + inverse[1, 2]
    bad = (xi < -0.5) | (xi > img.shape[1] - 0.5) | (yi < -0.5) | (yi > img.shape[0] - 0.5)
    if nan.any():
        bad |= warp(nan.astype(float), tform, output_shape=shape, order=1, mode="edge", clip=False,
                    preserve_range=True) > 0
    out[bad] = np.nan
    return out


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register`: the similarity transform that maps ``moving`` onto ``fixed``.

    Convention: ``fixed`` is ``moving`` turned by ``rotation`` about its centre,
    magnified by ``scale`` and its centre moved to the centre of ``fixed`` plus
    ``shift``. A positive rotation turns the image counter-clockwise as it is
    displayed with row 0 at the top (``matplotlib.pyplot.imshow`` default), the
    sense of ``skimage.transform.rotate(image, angle)``. A positive shift moves
    the content to larger row (dy) and column (dx) indices, the sense of
    ``scipy.ndimage.shift``.

    Attributes
    ----------
    shift : (float, float)
        Translation (dy, dx) of the moving image's centre in m.
    shift_px : (float, float)
        The same translation in pixels of the fixed grid.
    rotation : float
        Rotation in degrees, counter-clockwise positive (as above), in (-180, 180].
    scale : float
        Magnification of ``moving`` (physical lengths in ``fixed`` / lengths in ``moving``).
    error : float
        ``1 - NCC`` of the registered moving image against ``fixed`` over their
        overlap: 0 for a perfect match, 1 for no correlation, up to 2.
    transform : skimage.transform.ProjectiveTransform
        Map of moving pixel coordinates (x = column, y = row) to fixed pixel
        coordinates: a ``SimilarityTransform`` when both grids have square pixels,
        otherwise an ``AffineTransform`` (a similarity in physical coordinates).
        In scikit-image's (x, y) frame, whose y axis points down,
        ``transform.rotation == -np.deg2rad(rotation)`` for square pixels.
    moving_shape, fixed_shape : (int, int)
        Shapes of the two images.
    spacing_moving, spacing_fixed : (float, float)
        Pixel sizes (dy, dx) of the two images in m.
    """

    shift: tuple[float, float]
    shift_px: tuple[float, float]
    rotation: float
    scale: float
    error: float
    transform: object
    moving_shape: tuple[int, int]
    fixed_shape: tuple[int, int]
    spacing_moving: tuple[float, float]
    spacing_fixed: tuple[float, float]

    def apply(self, moving, *, order: int = 1) -> np.ndarray:
        """Resample ``moving`` (or any image on its grid) onto the fixed grid.

        Parameters
        ----------
        moving : array_like, shape ``moving_shape``
            Image on the moving grid (e.g. another channel of the same scan).
        order : int
            Spline interpolation order (0 to 5); 1 is bilinear.

        Returns
        -------
        ndarray of float, shape ``fixed_shape``
            NaN where the fixed pixel maps outside the moving image. Anti-aliased
            (Gaussian, as ``skimage.transform.resize``) when the fixed grid is coarser.
        """
        img = np.asarray(moving, dtype=float)
        if img.shape != tuple(self.moving_shape):
            raise ParameterError("moving", f"got shape {img.shape}; expected the registered moving shape "
                                           f"{tuple(self.moving_shape)}")
        if order not in range(6):
            raise ParameterError("order", f"got {order!r}; allowed integers 0 to 5")
        a = self.transform.params[:2, :2]
        # moving pixels per fixed pixel along each moving axis (> 1: downsampling)
        factor = 1.0 / np.linalg.norm(a, axis=0)  # (x, y)
        sigma = [max(0.0, (factor[1] - 1) / 2), max(0.0, (factor[0] - 1) / 2)]
        return _warp_nan(img, np.linalg.inv(self.transform.params), self.fixed_shape, sigma=sigma, order=order)


def _ncc_masked(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 16:
        return -1.0
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def _highpass(shape) -> np.ndarray:
    """Reddy-Chatterji emphasis filter on an fftshift-ed spectrum: 0 at DC, rising to the Nyquist frequency."""
    fy = np.fft.fftshift(np.fft.fftfreq(shape[0]))
    fx = np.fft.fftshift(np.fft.fftfreq(shape[1]))
    x = np.outer(np.cos(np.pi * fy), np.cos(np.pi * fx))
    return (1.0 - x) * (2.0 - x)


def _prepare(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """NaN -> mean, mean removed, Hann-windowed."""
    ok = np.isfinite(img)
    z = np.where(ok, img - img[ok].mean(), 0.0)
    return z * window


def _logpolar_spectrum(z: np.ndarray, radius: float, n_angle: int, n_rad: int) -> np.ndarray:
    from skimage.transform import warp_polar

    mag = np.abs(np.fft.fftshift(np.fft.fft2(z))) * _highpass(z.shape)
    lp = warp_polar(mag, radius=radius, output_shape=(n_angle, n_rad), scaling="log", order=1)
    return lp[: n_angle // 2]  # the magnitude is symmetric: half a turn holds everything


def _smooth(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (pixels) that keeps NaN pixels NaN."""
    from skimage.filters import gaussian

    ok = np.isfinite(img)
    out = gaussian(np.where(ok, img, img[ok].mean()), sigma=sigma, mode="nearest", preserve_range=True)
    return np.where(ok, out, np.nan)


def _warp_common(img: np.ndarray, mat: np.ndarray, shape, order: int = 1) -> np.ndarray:
    """``img`` (common grid) mapped by the pixel matrix ``mat`` (moving -> fixed) onto ``shape``; NaN outside."""
    from skimage.transform import AffineTransform, warp

    return warp(img, AffineTransform(matrix=np.linalg.inv(mat)), output_shape=shape, order=order, mode="constant",
                cval=np.nan, clip=False, preserve_range=True)


def register(moving, fixed, *, spacing_moving, spacing_fixed, rotation: bool = True, scale: bool = True,
             upsample: int = 20, refine: bool = True) -> Registration:
    """Find the rotation, scale and shift that bring ``moving`` onto ``fixed``.

    Both images are resampled (:func:`resample`) to a common square pixel (the
    coarser of the two images' finest pixel sizes) on a common square grid with
    the same centre. Rotation and scale come from the shift between the
    log-polar transforms of the Fourier magnitudes (Hann window, mean removed,
    high-pass emphasis filter) found by ``skimage.registration.phase_cross_correlation``.
    The Fourier magnitude cannot tell ``angle`` from ``angle + 180``: both are
    tried, and the one with the higher normalised cross-correlation (NCC) after
    the translation step is kept. The translation is the sub-pixel peak
    (``upsample_factor=upsample``) of the cross-correlation of the windowed
    ``fixed`` with the windowed, de-rotated, de-scaled ``moving``
    (``phase_cross_correlation(..., normalization=None)``: whitening the
    spectra lets the window's edges decide the peak for smooth images). With
    ``refine`` the NCC over the overlap of copies smoothed by a 1-pixel
    Gaussian is then maximised locally over (angle, log scale, dy, dx) by
    Nelder-Mead (``scipy.optimize.minimize``); the smoothing keeps bilinear
    interpolation from pulling the optimum to whole or half pixels.

    Parameters
    ----------
    moving : array_like, shape (rows, cols)
        Image to be moved (rows are y, columns are x). NaN marks missing pixels.
    fixed : array_like, shape (rows', cols')
        Reference image.
    spacing_moving : float or (float, float)
        Pixel size of ``moving`` in m, one value or (dy, dx).
    spacing_fixed : float or (float, float)
        Pixel size of ``fixed`` in m, one value or (dy, dx).
    rotation : bool
        Estimate a rotation (otherwise 0).
    scale : bool
        Estimate a magnification (otherwise 1).
    upsample : int
        Sub-pixel precision of the phase correlations: 1 / ``upsample`` pixel.
    refine : bool
        Polish the estimate by a local NCC maximisation (Nelder-Mead).

    Returns
    -------
    Registration
        Shift (m and fixed pixels), rotation (degrees, counter-clockwise as
        displayed with row 0 at the top, the sense of ``skimage.transform.rotate``),
        scale, error (``1 - NCC``) and the pixel transform; ``.apply(moving)``
        resamples ``moving`` onto the fixed grid.

    Notes
    -----
    The model is ``x_f = s R(theta) x_m + t`` in physical coordinates with the
    origin at each image's centre. A rotation by ``theta`` and magnification
    ``s`` of the image turn its Fourier magnitude by ``theta`` and shrink it by
    ``1 / s``; in log-polar coordinates ``(angle, log k)`` both are shifts
    [1]_, [2]_. On 128 x 128 grain images with noise of SNR 5, all rotations
    and scales from 0.65 to 1.6 were recovered within 0.05 deg, 0.1 % and
    0.06 pixel; scales further from 1, or images with little structure
    between 2 cycles per field and 3/4 of the Nyquist frequency (the band
    used for rotation and scale), may need a rough pre-alignment.

    References
    ----------
    .. [1] B. S. Reddy and B. N. Chatterji, "An FFT-based technique for
       translation, rotation, and scale-invariant image registration", IEEE
       Trans. Image Process. 5, 1266 (1996). doi:10.1109/83.506761
    .. [2] M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient
       subpixel image registration algorithms", Opt. Lett. 33, 156 (2008).
       doi:10.1364/OL.33.000156

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> field = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(128, 128)), 3)
    >>> fixed = field[16:112, 16:112]
    >>> moving = ndimage.shift(field, (-2.5, 4.0))[16:112, 16:112]  # fixed is moving moved by (2.5, -4)
    >>> reg = register(moving, fixed, spacing_moving=1e-8, spacing_fixed=1e-8)
    >>> [round(v, 1) for v in reg.shift_px], abs(round(reg.rotation, 1)), round(reg.scale, 2)
    ([2.5, -4.0], 0.0, 1.0)
    >>> round(reg.shift[1] * 1e9)  # nm
    -40
    """
    from scipy.optimize import minimize
    from skimage.filters import window
    from skimage.registration import phase_cross_correlation
    from skimage.transform import AffineTransform, SimilarityTransform

    mov = _image2(moving, "moving", finite=True)
    fix = _image2(fixed, "fixed", finite=True)
    h_m = _spacing2(spacing_moving, "spacing_moving")
    h_f = _spacing2(spacing_fixed, "spacing_fixed")
    if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) or upsample < 1:
        raise ParameterError("upsample", f"got {upsample!r}; expected an integer >= 1 (1 / pixel precision)")

    # common square grid with pixel h, large enough for both fields
    h = max(min(h_m), min(h_f))
    ext = max(n * a for img, sp in ((mov, h_m), (fix, h_f)) for n, a in zip(img.shape, sp))
    n = int(np.ceil(ext / h))
    n += n % 2
    cm = resample(mov, h_m, h, shape=(n, n))
    cf = resample(fix, h_f, h, shape=(n, n))
    win = window("hann", (n, n))
    zm, zf = _prepare(cm, win), _prepare(cf, win)

    # rotation and scale (common-grid pixels, about the common centre)
    angle, mag = 0.0, 1.0
    if rotation or scale:
        radius = n / 2.0
        n_angle, n_rad = 2 * n, n
        lf = _logpolar_spectrum(zf, radius, n_angle, n_rad)
        lm = _logpolar_spectrum(zm, radius, n_angle, n_rad)
        # keep the band between a few cycles per field and well below Nyquist (noise)
        k = n_rad / np.log(radius)
        lo, hi = int(np.ceil(k * np.log(2.0))), int(k * np.log(radius * 0.75))
        lf, lm = lf[:, lo:hi], lm[:, lo:hi]
        w = window("hann", lf.shape[1])[None, :]
        sh, _, _ = phase_cross_correlation(lf * w, lm * w, upsample_factor=upsample, normalization=None)
        if rotation:
            angle = -float(sh[0]) * 360.0 / n_angle
        if scale:
            mag = float(np.exp(-sh[1] / k))
            if not 0.25 < mag < 4.0:
                mag = 1.0

    c = (n - 1) / 2.0
    centre = np.array([[1.0, 0.0, -c], [0.0, 1.0, -c], [0.0, 0.0, 1.0]])
    uncentre = np.linalg.inv(centre)

    def pixel_matrix(theta, s, dy, dx):
        return uncentre @ _similarity_matrix(theta, s, (dy, dx)) @ centre

    def ncc_of(theta, s, dy, dx, moving_img=cm, fixed_img=cf):
        return _ncc_masked(_warp_common(moving_img, pixel_matrix(theta, s, dy, dx), (n, n)), fixed_img)

    best = None
    for theta in ((angle, angle + 180.0) if rotation else (angle,)):
        theta = (theta + 180.0) % 360.0 - 180.0
        rs = _warp_common(cm, pixel_matrix(theta, mag, 0.0, 0.0), (n, n))
        zr = _prepare(rs, win)
        # plain (not phase-normalised) correlation: whitening the windowed spectra lets the window's edges win
        t, _, _ = phase_cross_correlation(zf, zr, upsample_factor=upsample, normalization=None)
        t = [((v + n / 2) % n) - n / 2 for v in t]  # the shorter way round
        cand = (ncc_of(theta, mag, t[0], t[1]), theta, mag, float(t[0]), float(t[1]))
        if best is None or cand[0] > best[0]:
            best = cand
    score, theta, s, dy, dx = best

    if refine:
        # NCC of lightly smoothed copies (Gaussian, 1 pixel): bilinear interpolation then smooths noise and
        # structure alike at every sub-pixel position, and the optimum does not lock to (half-)pixels
        sm, sf = _smooth(cm, 1.0), _smooth(cf, 1.0)
        free = np.array([rotation, scale, True, True])
        start = np.array([theta, np.log(s), dy, dx])
        x0 = start[free]
        step = np.array([0.5, 0.005, 0.5, 0.5])[free]

        def full(x):
            v = start.copy()
            v[free] = x
            return v

        def cost(x):
            v = full(x)
            return -ncc_of(v[0], np.exp(v[1]), v[2], v[3], sm, sf)

        res = minimize(cost, x0, method="Nelder-Mead",
                       options={"initial_simplex": np.vstack([x0, x0 + np.diag(step)]),
                                "xatol": 1e-3, "fatol": 1e-7, "maxiter": 100 * x0.size})
        if res.fun < cost(x0):
            v = full(res.x)
            theta, s, dy, dx = float(v[0]), float(np.exp(v[1])), float(v[2]), float(v[3])
            score = ncc_of(theta, s, dy, dx)

    # compose: moving pixel -> physical -> common pixel (moving) -> common pixel (fixed) -> physical -> fixed pixel
    g_m, g_f = _grid_matrix(mov.shape, h_m), _grid_matrix(fix.shape, h_f)
    g_c = _grid_matrix((n, n), (h, h))
    phys = g_c @ pixel_matrix(theta, s, dy, dx) @ np.linalg.inv(g_c)  # physical moving -> physical fixed
    # (the common grid has the same centre as both images, so this is the similarity about the origin)
    mat = np.linalg.inv(g_f) @ phys @ g_m
    if h_m[0] == h_m[1] and h_f[0] == h_f[1]:
        tform = SimilarityTransform(matrix=mat)
    else:
        tform = AffineTransform(matrix=mat)
    shift_m = (float(phys[1, 2]), float(phys[0, 2]))
    theta = float((theta + 180.0) % 360.0 - 180.0)
    if theta == -180.0:
        theta = 180.0
    return Registration(shift=shift_m, shift_px=(shift_m[0] / h_f[0], shift_m[1] / h_f[1]), rotation=theta,
                        scale=float(s), error=float(1.0 - score), transform=tform,
                        moving_shape=tuple(mov.shape), fixed_shape=tuple(fix.shape),
                        spacing_moving=h_m, spacing_fixed=h_f)
