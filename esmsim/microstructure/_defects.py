"""Defects cut into a voxel microstructure: pores and intergranular cracks.

Both return a new :class:`Microstructure` whose ``pores`` or ``cracks`` mask
marks the void voxels; the grain labels underneath are kept, and the exact
geometry (pore spheres, cracked grain pairs) goes into ``truth``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.spatial import cKDTree

from .._errors import ParameterError
from ._tessellation import _centres
from ._voxel import Microstructure, voxel_faces

__all__ = ["add_pores", "add_cracks"]


def add_pores(ms: Microstructure, *, volume_fraction: float, radius: float, radius_sigma: float = 0.0,
              rng=None) -> Microstructure:
    """Cut spherical pores until their voxels make up ``volume_fraction`` of the volume.

    Pore centres are uniform in the volume (pores may overlap and may cut the
    surface, as in a porous electrode); radii are lognormal with mean
    ``radius`` and log-standard deviation ``radius_sigma``. Pores are added
    one at a time until the void fraction reaches the target, so the result
    exceeds it by at most one pore.

    Parameters
    ----------
    ms : Microstructure
    volume_fraction : float
        Target pore volume fraction, in (0, 0.6].
    radius : float
        Mean pore radius (m), at least the largest voxel size.
    radius_sigma : float
        Standard deviation of ln(radius), in [0, 1.5].
    rng : int or numpy.random.Generator

    Returns
    -------
    Microstructure
        With ``pores`` set and ``truth["pore_centres"]`` (m), ``truth["pore_radii"]`` (m).
    """
    if not (np.isfinite(volume_fraction) and 0 < volume_fraction <= 0.6):
        raise ParameterError("microstructure.pore_fraction", f"got {volume_fraction!r}; allowed (0, 0.6]")
    if not (np.isfinite(radius) and radius >= max(ms.spacing)):
        raise ParameterError("microstructure.pore_radius", f"got {radius!r} m; must be at least the voxel size "
                                                           f"{max(ms.spacing):g} m so a pore is resolved")
    if not (np.isfinite(radius_sigma) and 0 <= radius_sigma <= 1.5):
        raise ParameterError("microstructure.pore_radius_sigma", f"got {radius_sigma!r}; allowed [0, 1.5]")
    rng = np.random.default_rng(rng)
    pores = np.zeros(ms.shape, bool) if ms.pores is None else ms.pores.copy()
    L = np.asarray(ms.extent)
    h = np.asarray(ms.spacing)
    axes = [_centres(n, h) for n, h in zip(ms.shape, ms.spacing)]
    target = int(np.ceil(volume_fraction * pores.size))
    count = int(pores.sum())
    centres, radii = [], []
    while count < target and len(radii) < 1_000_000:
        c = rng.uniform(0.0, 1.0, 3) * L
        r = radius * np.exp(radius_sigma * rng.standard_normal() - radius_sigma ** 2 / 2)
        idx, d2 = [], []
        for ax in range(3):
            lo, hi = int(np.floor((c[ax] - r) / h[ax])), int(np.ceil((c[ax] + r) / h[ax]))
            i = np.arange(lo, hi + 1)
            if ms.periodic and ax < 2:
                i = i[: ms.shape[ax]]  # a pore wider than the box covers it once
                coord = i * h[ax] + 0.5 * h[ax]
                i = np.mod(i, ms.shape[ax])
            else:
                i = i[(i >= 0) & (i < ms.shape[ax])]
                coord = axes[ax][i]
            idx.append(i)
            d2.append((coord - c[ax]) ** 2)
        inside = (d2[0][:, None, None] + d2[1][None, :, None] + d2[2][None, None, :]) <= r * r
        block = np.ix_(*idx)
        count += int(np.count_nonzero(inside & ~pores[block]))
        pores[block] |= inside
        centres.append(c)
        radii.append(r)
    truth = dict(ms.truth, pore_centres=np.asarray(centres).tolist(), pore_radii=list(map(float, radii)),
                 pore_fraction=float(pores.mean()))
    recipe = dict(ms.recipe, pore_fraction=float(volume_fraction), pore_radius=float(radius),
                  pore_radius_sigma=float(radius_sigma))
    return replace(ms, pores=pores, truth=truth, recipe=recipe)


def add_cracks(ms: Microstructure, *, opening: float, pairs=None, fraction: float | None = None,
               rng=None) -> Microstructure:
    """Open intergranular cracks along chosen grain boundaries.

    The void of a crack is the set of voxels of the two grains whose centre
    lies within ``opening / 2`` of the pair's shared voxel faces: the lower
    grain id takes the closed bound and the higher the open one, so a
    boundary along a voxel plane opens by exactly ``opening`` when that is a
    whole number of voxels. Cracks are voxel-resolved, so ``opening`` must be
    at least the voxel size.

    Parameters
    ----------
    ms : Microstructure
    opening : float
        Crack opening (m).
    pairs : array_like, shape (m, 2), optional
        Grain pairs to crack; each must share a boundary.
    fraction : float, optional
        Otherwise, the fraction of all boundaries to crack, chosen at random (seeded by ``rng``).

    Returns
    -------
    Microstructure
        With ``cracks`` set and ``truth["crack_pairs"]``, ``truth["crack_opening"]`` (m).
    """
    if not (np.isfinite(opening) and opening >= min(ms.spacing)):
        raise ParameterError("microstructure.crack_opening", f"got {opening!r} m; must be at least the voxel size "
                                                             f"{min(ms.spacing):g} m (cracks are voxel-resolved)")
    faces = voxel_faces(ms.labels, ms.periodic)
    n = ms.n_grains
    sorted_pairs = np.sort(faces["grains"], axis=1).astype(np.int64)
    code = sorted_pairs[:, 0] * n + sorted_pairs[:, 1]
    existing = np.unique(code)
    if (pairs is None) == (fraction is None):
        raise ParameterError("microstructure.crack_fraction", "give either crack pairs or a crack fraction")
    if pairs is not None:
        p = np.sort(np.atleast_2d(np.asarray(pairs, dtype=np.int64)), axis=1)
        chosen = p[:, 0] * n + p[:, 1]
        missing = ~np.isin(chosen, existing)
        if p.shape[1] != 2 or missing.any():
            raise ParameterError("microstructure.crack_boundaries",
                                 f"{p[missing].tolist() if p.shape[1] == 2 else p.shape} are not boundaries "
                                 "between adjacent grains")
    else:
        if not (np.isfinite(fraction) and 0 < fraction <= 1):
            raise ParameterError("microstructure.crack_fraction", f"got {fraction!r}; allowed (0, 1]")
        rng = np.random.default_rng(rng)
        k = max(1, int(round(fraction * len(existing))))
        chosen = np.sort(rng.choice(existing, size=k, replace=False))
    sel = np.isin(code, chosen)
    h = np.asarray(ms.spacing)
    L = np.asarray(ms.extent)
    centre = (faces["index"][sel] + 0.5) * h
    centre[np.arange(sel.sum()), faces["axis"][sel]] += 0.5 * h[faces["axis"][sel]]
    face_pair = sorted_pairs[sel]
    if ms.periodic:
        centre[:, :2] = np.mod(centre[:, :2], L[:2])
        tree = cKDTree(centre, boxsize=(L[0], L[1], 3 * L[2]))
    else:
        tree = cKDTree(centre)
    grains = np.unique(face_pair)
    cand = np.argwhere(np.isin(ms.labels, grains))
    pts = (cand + 0.5) * h
    half = 0.5 * opening
    d, j = tree.query(pts, distance_upper_bound=half * (1 + 1e-9) + 1e-300)
    hit = np.isfinite(d)
    g = ms.labels[tuple(cand[hit].T)]
    fp = face_pair[j[hit]]
    tol = 1e-9 * half
    keep = ((g == fp[:, 0]) & (d[hit] <= half + tol)) | ((g == fp[:, 1]) & (d[hit] < half - tol))
    cracks = np.zeros(ms.shape, bool) if ms.cracks is None else ms.cracks.copy()
    cracks[tuple(cand[hit][keep].T)] = True
    cp = np.column_stack([chosen // n, chosen % n]).astype(int)
    truth = dict(ms.truth, crack_pairs=cp.tolist(), crack_opening=float(opening))
    recipe = dict(ms.recipe, crack_opening=float(opening),
                  crack_fraction=None if fraction is None else float(fraction),
                  crack_boundaries=None if pairs is None else cp.tolist())
    return replace(ms, cracks=cracks, truth=truth, recipe=recipe)
