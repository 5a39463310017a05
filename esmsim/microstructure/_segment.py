"""Grains from a measured image: segmentation of a topography or ESM amplitude scan (scikit-image)."""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError

__all__ = ["segment_grains"]


def segment_grains(image, *, spacing: float, boundaries: str = "dark", smoothing: float = 1.0,
                   min_grain_size: float | None = None) -> np.ndarray:
    """Label the grains of an image whose grain boundaries are lines (grooves or bright ridges).

    Marker-controlled watershed: the image is smoothed, a top-hat filter (width
    ``min_grain_size / 2``) keeps the boundary lines and removes grain-to-grain
    offsets (heights, orientation contrast), grain interiors are the side of an
    Otsu threshold away from the lines, one marker per peak of their distance
    transform at least ``min_grain_size / 2`` apart, and the watershed of the
    line "elevation" floods from the markers.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Height, amplitude or any map where boundaries differ from grain interiors
        (indexed as instruments and scikit-image store images: row = y, column = x).
    spacing : float
        Pixel size in m.
    boundaries : {"dark", "bright"}
        Boundaries are low (topography grooves) or high (bright ESM boundaries).
    smoothing : float
        Gaussian smoothing in pixels before segmentation.
    min_grain_size : float, optional
        Smallest grain diameter to separate (m); default 8 pixels.

    Returns
    -------
    ndarray of int, shape (rows, cols)
        Labels 0 .. n-1. Build a film with
        ``columnar_from_labels(labels.T, spacing=..., thickness=...)`` (esmsim's axis 0 is x).
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.segmentation import watershed

    img = np.asarray(image, dtype=float)
    if img.ndim != 2 or min(img.shape) < 4 or not np.all(np.isfinite(img)):
        raise ParameterError("image", f"got shape {img.shape}; expected a finite 2-D image of at least 4 x 4 pixels")
    if boundaries not in ("dark", "bright"):
        raise ParameterError("boundaries", f"got {boundaries!r}; allowed 'dark' (grooves) or 'bright'")
    if not (np.isfinite(spacing) and spacing > 0):
        raise ParameterError("spacing", f"got {spacing!r}; must be a positive length (m)")
    min_px = 8.0 if min_grain_size is None else max(min_grain_size / spacing, 2.0)
    smooth = gaussian(img, sigma=smoothing) if smoothing > 0 else img
    from skimage.morphology import black_tophat, disk, white_tophat

    foot = disk(max(1, int(round(min_px / 4))))
    elevation = white_tophat(smooth, foot) if boundaries == "bright" else black_tophat(smooth, foot)  # lines high
    interior = elevation < threshold_otsu(elevation)
    dist = ndimage.distance_transform_edt(interior)
    peaks = peak_local_max(dist, min_distance=max(1, int(min_px / 2)), labels=ndimage.label(interior)[0],
                           exclude_border=False)
    markers = np.zeros(img.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(elevation, markers)
    _, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(img.shape).astype(np.int32)
