"""Dimension-general power (Laguerre) and Voronoi tessellations on voxel grids.

A point ``p`` belongs to the seed ``i`` minimising the power ``|p - s_i|^2 - w_i``
(Voronoi when all weights are equal). Lifting every seed to one extra
coordinate ``sqrt(max(w) - w_i)`` turns the power nearest seed into the
ordinary Euclidean nearest neighbour, so one k-d tree query labels the grid.
Axes 0 and 1 (x, y) may be periodic; axis 2 (z, into the film) never is.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["power_labels", "label_centroids", "fit_power_diagram", "equivalent_radius", "drop_empty"]

_CHUNK = 1 << 18  # points per k-d tree query: bounds the coordinate buffer to a few MB


def _lift(points, weights):
    """Points with one extra coordinate ``sqrt(max(w) - w)`` (Euclidean NN = power NN)."""
    w = np.zeros(len(points)) if weights is None else np.asarray(weights, float)
    return np.column_stack([points, np.sqrt(np.max(w) - w)])


def power_tree(seeds, weights, extent, periodic) -> cKDTree:
    """k-d tree of the lifted seeds; periodic in x and y when ``periodic``.

    Axes that do not wrap get a box three times their range, which no
    minimum-image distance can cross.
    """
    seeds = np.asarray(seeds, float)
    d = seeds.shape[1]
    extent = np.asarray(extent, float)
    if periodic:
        seeds = seeds.copy()
        seeds[:, :2] = np.mod(seeds[:, :2], extent[:2])
    lifted = _lift(seeds, weights)
    if not periodic:
        return cKDTree(lifted)
    box = [extent[0], extent[1]] + [3 * extent[k] for k in range(2, d)] + [3 * lifted[:, -1].max() + 1.0]
    # k-d tree boxes need data in [0, box): a lifted coordinate equal to the box is impossible here
    return cKDTree(lifted, boxsize=box)


def _centres(n, h):
    return (np.arange(n) + 0.5) * h


def power_labels(seeds, weights, shape, spacing, periodic, *, workers: int = -1) -> np.ndarray:
    """Label of every voxel centre of a grid: the index of the power-nearest seed.

    Parameters
    ----------
    seeds : ndarray, shape (n, d)
        Seed positions (m), d = len(shape) (2 or 3).
    weights : ndarray, shape (n,), or None
        Power weights (m^2); None for a Voronoi tessellation.
    shape : tuple of int
        Grid shape ``(nx, ny[, nz])``.
    spacing : tuple of float
        Voxel size per axis (m).
    periodic : bool
        Whether x and y wrap.
    workers : int
        Threads for the k-d tree query (-1: all cores).

    Returns
    -------
    ndarray of int32, shape ``shape``
    """
    shape = tuple(int(s) for s in shape)
    extent = np.array(shape) * np.asarray(spacing, float)
    tree = power_tree(seeds, weights, extent, periodic)
    axes = [_centres(n, h) for n, h in zip(shape, spacing)]
    out = np.empty(shape, np.int32)
    rest = int(np.prod(shape[1:]))
    step = max(1, _CHUNK // rest)
    tail = np.meshgrid(*axes[1:], indexing="ij")
    tail = np.column_stack([t.ravel() for t in tail])
    for i0 in range(0, shape[0], step):
        xs = axes[0][i0:i0 + step]
        pts = np.empty((len(xs) * rest, len(shape) + 1))
        pts[:, 0] = np.repeat(xs, rest)
        pts[:, 1:-1] = np.tile(tail, (len(xs), 1))
        pts[:, -1] = 0.0
        out[i0:i0 + len(xs)] = tree.query(pts, workers=workers)[1].reshape((len(xs),) + shape[1:])
    return out


def label_centroids(labels, spacing, periodic, n: int | None = None) -> np.ndarray:
    """Centroid (m) of the voxels of labels 0 .. n-1, shape (n, d); circular means along periodic x and y.

    Negative labels (void) are ignored. A label without voxels gets 0 along
    periodic axes and NaN along the others.
    """
    lab = np.asarray(labels)
    d = lab.ndim
    n = int(lab.max()) + 1 if n is None else int(n)
    cen = []
    count = None
    for ax in range(d):
        # voxels of each label in each slice normal to ``ax``: (n, n_ax); then moments are small products
        m = lab.shape[ax]
        sl = np.moveaxis(lab, ax, 0).reshape(m, -1)
        keep = sl >= 0
        code = (sl.astype(np.int64) * m + np.arange(m)[:, None])[keep]
        per = np.bincount(code, minlength=n * m).reshape(n, m).astype(float)
        if count is None:
            count = per.sum(axis=1)
            count[count == 0] = np.nan
        coord = _centres(m, spacing[ax])
        length = m * spacing[ax]
        if periodic and ax < 2:
            ang = 2 * np.pi * coord / length
            cen.append(np.mod(np.arctan2(per @ np.sin(ang), per @ np.cos(ang)), 2 * np.pi) * length / (2 * np.pi))
        else:
            cen.append(per @ coord / count)
    return np.stack(cen, -1)


def equivalent_radius(measure, d: int) -> np.ndarray:
    """Radius (m) of the disk (d = 2) or sphere (d = 3) of the given area or volume."""
    measure = np.asarray(measure, float)
    return np.sqrt(measure / np.pi) if d == 2 else np.cbrt(3 * measure / (4 * np.pi))


def fit_power_diagram(target, extent, shape, periodic, rng, *, iterations: int = 40,
                      voxels_per_grain: float = 64.0):
    """Seeds and weights of a centroidal power diagram whose cells have the target sizes.

    Each iteration labels a grid, moves every seed to its cell's centroid and
    raises its weight by ``r_target^2 - r_cell^2`` (r the equivalent radius),
    which grows cells that are too small and shrinks the others. The fit runs
    on a grid coarsened by an integer factor so that a grain has about
    ``voxels_per_grain`` voxels; the caller labels the full grid once with
    the result.

    Parameters
    ----------
    target : ndarray, shape (n,)
        Target cell areas (2-D) or volumes (3-D) in m^2 or m^3, summing to the domain's.
    extent : sequence of float
        Domain size per axis (m).
    shape : tuple of int
        Full grid shape; the coarse grid is derived from it.
    periodic : bool
        x and y wrap.
    rng : numpy.random.Generator
        Draws the initial seeds.

    Returns
    -------
    seeds : ndarray, shape (n, d)
    weights : ndarray, shape (n,)
    """
    extent = np.asarray(extent, float)
    d = len(shape)
    n = len(target)
    factor = max(1, int(np.floor((np.prod(shape) / n / voxels_per_grain) ** (1.0 / d))))
    coarse = tuple(max(1, int(np.ceil(s / factor))) for s in shape)
    h = extent / np.array(coarse)
    seeds = rng.uniform(0.0, 1.0, size=(n, d)) * extent
    r_target = equivalent_radius(target, d)
    weights = r_target ** 2
    cell = float(np.prod(h))
    for _ in range(int(iterations)):
        labels = power_labels(seeds, weights, coarse, h, periodic)
        vol = np.bincount(labels.ravel(), minlength=n) * cell
        has = vol > 0
        centroid = label_centroids(labels, h, periodic, n)
        seeds = np.where(has[:, None], centroid, seeds)
        weights = weights + r_target ** 2 - equivalent_radius(vol, d) ** 2
    return seeds, weights


def drop_empty(labels, *per_grain):
    """Remove grains that own no voxel: relabel 0 .. m-1 in order and subset the per-grain arrays.

    A tiny power cell can vanish when the fitted diagram is labelled at a
    different resolution; the ground truth must only list grains that exist.
    Negative labels (void) are kept as they are. Returns ``(labels, *per_grain)``.
    """
    lab = np.asarray(labels)
    n = len(per_grain[0])
    present = np.bincount(lab[lab >= 0].ravel(), minlength=n) > 0
    if present.all():
        return (lab, *per_grain)
    new = np.cumsum(present) - 1
    out = np.where(lab >= 0, new[np.maximum(lab, 0)], lab).astype(np.int32)
    return (out, *(None if a is None else np.asarray(a)[present] for a in per_grain))


def bisector_point(seeds, weights, displacement, g1, g2, points) -> np.ndarray:
    """The point of the power bisector ``|x - s1|^2 - w1 = |x - s2|^2 - w2`` of seeds ``g1`` and ``g2`` nearest
    to each of ``points`` (m, any dimension), with the seed images next to each point (``displacement``:
    the map's minimum-image displacement)."""
    p = np.asarray(points, float)
    g1, g2 = np.asarray(g1), np.asarray(g2)
    w = np.zeros(len(seeds)) if weights is None else np.asarray(weights, float)
    s1 = p + displacement(seeds[g1] - p)
    s2 = p + displacement(seeds[g2] - p)
    d = s2 - s1
    excess = (np.sum((p - s1) ** 2, -1) - w[g1]) - (np.sum((p - s2) ** 2, -1) - w[g2])
    return p - (excess / (2 * np.sum(d * d, -1)))[..., None] * d

