"""Ground truth of a columnar film as data: grain and boundary tables, triple junctions, topography."""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ._columnar import ColumnarMicrostructure, label_centroids

__all__ = ["topography", "grain_table", "boundary_table", "triple_junctions"]


def topography(ms: ColumnarMicrostructure, *, grain_height_rms: float = 1e-9, groove_depth: float = 2e-9,
               groove_width: float = 5e-9, rng=None) -> np.ndarray:
    """Surface height map (m) the probe sees: a height per grain plus grooves along the boundaries.

    ``h(x) = h_g - groove_depth * exp(-(d(x) / groove_width)^2)`` with ``h_g ~ N(0, grain_height_rms)``
    per grain and ``d`` the exact distance to the nearest boundary; positive heights point out of the
    sample (towards the tip).

    Returns
    -------
    ndarray, shape (nx, ny)
        Height at every pixel centre (m).
    """
    for name, v in (("grain_height_rms", grain_height_rms), ("groove_depth", groove_depth)):
        if not (np.isfinite(v) and v >= 0):
            raise ParameterError(f"microstructure.{name}", f"got {v!r}; must be a length >= 0 (m)")
    if not (np.isfinite(groove_width) and groove_width > 0):
        raise ParameterError("microstructure.groove_width", f"got {groove_width!r}; must be a positive length (m)")
    rng = np.random.default_rng(rng)
    base = rng.normal(0.0, grain_height_rms, ms.n_grains) if grain_height_rms > 0 else np.zeros(ms.n_grains)
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    return base[ms.labels] - groove_depth * np.exp(-(ms.boundary_distance(X, Y) / groove_width) ** 2)


def grain_table(ms: ColumnarMicrostructure) -> dict[str, np.ndarray]:
    """Per grain: volume (m^3), equivalent-circle diameter (m) and centroid (m; circular mean if periodic)."""
    area = np.bincount(ms.labels.ravel(), minlength=ms.n_grains) * ms.spacing[0] * ms.spacing[1]
    cen = label_centroids(ms.labels, ms.spacing, ms.periodic, ms.n_grains)
    return {"volume": area * ms.thickness, "equivalent_diameter": np.sqrt(4 * area / np.pi),
            "centroid": cen}


def boundary_table(ms: ColumnarMicrostructure, symmetry: str) -> dict[str, np.ndarray]:
    """Per adjacent grain pair: the pair, disorientation (rad), class code and area (m^2, staircase-corrected)."""
    from ..transport._boundaries import boundary_network
    from ._symmetry import classify_boundaries

    net = boundary_network(ms.labels, ms.spacing[0], ms.spacing[1], periodic=ms.periodic, normal=ms.boundary_normal)
    pairs = np.sort(net.grains, axis=1)
    h_t = np.where(net.axis == 0, ms.spacing[1], ms.spacing[0])
    uniq, inv = np.unique(pairs.reshape(-1, 2), axis=0, return_inverse=True)
    area = np.bincount(inv.ravel(), weights=net.weight * h_t * ms.thickness, minlength=len(uniq))
    q = ms.quaternions
    mis, cls = classify_boundaries(q[uniq[:, 0]], q[uniq[:, 1]], symmetry)
    return {"grains": uniq, "misorientation": mis, "class": cls.astype(np.int8), "area": area}


def triple_junctions(ms: ColumnarMicrostructure) -> np.ndarray:
    """Pixel corners where three or more grains meet: integer array (m, 2) of the pixel (i, j) whose
    upper corner (i + 1/2, j + 1/2) it is (periodic films wrap)."""
    lab = ms.labels
    quad = np.stack([lab, np.roll(lab, -1, 0), np.roll(lab, -1, 1), np.roll(np.roll(lab, -1, 0), -1, 1)], -1)
    q = np.sort(quad, axis=-1)
    distinct = 1 + np.sum(q[..., 1:] != q[..., :-1], axis=-1)
    mask = distinct >= 3
    if not ms.periodic:
        mask[-1, :] = False
        mask[:, -1] = False
    return np.argwhere(mask)
