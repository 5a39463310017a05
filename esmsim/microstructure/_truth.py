"""Ground truth as data: grain and boundary tables, triple junctions, topography.

Every function takes a columnar film (:class:`ColumnarMicrostructure`) or a
voxel volume (:class:`Microstructure`); surface quantities of a volume come
from its first voxel layer.
"""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ._columnar import ColumnarMicrostructure
from ._tessellation import label_centroids
from ._voxel import Microstructure, voxel_face_centres, voxel_faces

__all__ = ["topography", "grain_table", "boundary_table", "triple_junctions", "triple_lines", "ground_truth",
           "boundary_mask"]


def boundary_mask(labels, *, periodic: bool = False) -> np.ndarray:
    """Pixels of a grain that touch another grain (4-connectivity), as uint8; every label is a grain (label 0
    too) and a periodic map wraps around its edges.

    Parameters
    ----------
    labels : ndarray of int, 2-D
    periodic : bool

    Returns
    -------
    ndarray of uint8, same shape
    """
    from skimage.segmentation import find_boundaries

    lab = np.asarray(labels)
    if periodic:
        padded = np.pad(lab, 1, mode="wrap")
        return find_boundaries(padded, mode="inner", connectivity=1, background=-1)[1:-1, 1:-1].astype(np.uint8)
    return find_boundaries(lab, mode="inner", connectivity=1, background=-1).astype(np.uint8)


def topography(ms: ColumnarMicrostructure, *, grain_height_rms: float = 1e-9, groove_depth: float = 2e-9,
               groove_width: float = 5e-9, rng=None) -> np.ndarray:
    """Surface height map (m) the probe sees: a height per grain plus grooves along the boundaries.

    ``h(x) = h_g - groove_depth * exp(-(d(x) / groove_width)^2)`` with ``h_g ~ N(0, grain_height_rms)``
    per grain and ``d`` the exact distance to the nearest boundary; positive heights point out of the
    sample (towards the tip). Over a pore or crack that opens at the surface of a voxel volume the
    height drops by the depth of the void below the pixel.

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
    hole = 0.0
    if isinstance(ms, Microstructure):
        # a pore or crack open at the surface is a hole as deep as its void column from the top
        hole = np.cumprod(ms.void, axis=2).sum(axis=2) * ms.spacing[2]
        ms = ms.surface()
    rng = np.random.default_rng(rng)
    base = rng.normal(0.0, grain_height_rms, ms.n_grains) if grain_height_rms > 0 else np.zeros(ms.n_grains)
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    return base[ms.labels] - groove_depth * np.exp(-(ms.boundary_distance(X, Y) / groove_width) ** 2) - hole


def grain_table(ms) -> dict[str, np.ndarray]:
    """Per grain: volume (m^3), equivalent diameter (m) and centroid (m; circular mean along periodic axes).

    For a columnar film the diameter is that of the circle of the column's
    area and the centroid is (x, y); for a voxel volume it is that of the
    sphere of the grain's volume (void excluded), the centroid is (x, y, z),
    and ``surface_area`` (m^2) and ``surface_equivalent_diameter`` (m, circle)
    describe the grain's section at the surface (0 for a buried grain).
    """
    if isinstance(ms, Microstructure):
        lab = ms.material_labels
        vol = np.bincount(lab[lab >= 0], minlength=ms.n_grains) * float(np.prod(ms.spacing))
        surf = lab[:, :, 0]
        area = np.bincount(surf[surf >= 0], minlength=ms.n_grains) * ms.spacing[0] * ms.spacing[1]
        return {"volume": vol, "equivalent_diameter": np.cbrt(6 * vol / np.pi),
                "centroid": label_centroids(lab, ms.spacing, ms.periodic, ms.n_grains),
                "surface_area": area, "surface_equivalent_diameter": np.sqrt(4 * area / np.pi)}
    area = np.bincount(ms.labels.ravel(), minlength=ms.n_grains) * ms.spacing[0] * ms.spacing[1]
    cen = label_centroids(ms.labels, ms.spacing, ms.periodic, ms.n_grains)
    return {"volume": area * ms.thickness, "equivalent_diameter": np.sqrt(4 * area / np.pi),
            "centroid": cen}


def boundary_table(ms, symmetry: str) -> dict[str, np.ndarray]:
    """Per adjacent grain pair: the pair, disorientation (rad), class code and area (m^2).

    The area sums the voxel faces the two grains share, each divided by
    ``|n_x| + |n_y| (+ |n_z|)`` for the boundary plane's exact normal ``n``
    where the tessellation gives it (a plane crossed by a voxel staircase
    shows that much more face area); an imported label volume gives the
    plain face area, an overestimate by up to sqrt(3).
    Faces next to pores or cracks are not boundary.
    """
    from ..transport._boundaries import boundary_network
    from ._symmetry import classify_boundaries

    if isinstance(ms, Microstructure):
        return _voxel_boundary_table(ms, symmetry, classify_boundaries)
    net = boundary_network(ms.labels, ms.spacing[0], ms.spacing[1], periodic=ms.periodic, normal=ms.boundary_normal)
    pairs = np.sort(net.grains, axis=1)
    h_t = np.where(net.axis == 0, ms.spacing[1], ms.spacing[0])
    uniq, inv = np.unique(pairs.reshape(-1, 2), axis=0, return_inverse=True)
    area = np.bincount(inv.ravel(), weights=net.weight * h_t * ms.thickness, minlength=len(uniq))
    q = ms.quaternions
    mis, cls = classify_boundaries(q[uniq[:, 0]], q[uniq[:, 1]], symmetry)
    return {"grains": uniq, "misorientation": mis, "class": cls.astype(np.int8), "area": area}


def triple_junctions(ms) -> np.ndarray:
    """Pixel corners of the surface where three or more grains meet: integer array (m, 2) of the pixel
    (i, j) whose upper corner (i + 1/2, j + 1/2) it is (periodic films wrap)."""
    if isinstance(ms, Microstructure):
        ms = ms.surface()
    return np.argwhere(_corner_triples(ms.labels, (ms.periodic, ms.periodic)))


def _voxel_boundary_table(ms: Microstructure, symmetry, classify_boundaries):
    faces = voxel_faces(ms.material_labels, ms.periodic)
    pairs = np.sort(faces["grains"], axis=1).astype(np.int64)
    n = ms.n_grains
    code, inv = np.unique(pairs[:, 0] * n + pairs[:, 1], return_inverse=True)
    uniq = np.column_stack([code // n, code % n]).astype(np.int32)
    hx, hy, hz = ms.spacing
    face_area = np.array([hy * hz, hx * hz, hx * hy])[faces["axis"]]
    if ms.seeds is not None:  # the true area: each face over its plane's staircase factor |n_x| + |n_y| + |n_z|
        nrm = ms.boundary_normal(faces["grains"][:, 0], faces["grains"][:, 1], voxel_face_centres(faces, ms.spacing))
        face_area = face_area / np.abs(nrm).sum(axis=1)
    area = np.bincount(inv.ravel(), weights=face_area, minlength=len(uniq))
    q = ms.quaternions
    mis, cls = classify_boundaries(q[uniq[:, 0]], q[uniq[:, 1]], symmetry)
    return {"grains": uniq, "misorientation": mis, "class": cls.astype(np.int8), "area": area}


def _corner_triples(lab, periodic_axes, *, skip_void: bool = False):
    """Mask of the corners (i + 1/2, j + 1/2) of a label array (axes 0, 1) where >= 3 distinct labels meet.

    With ``skip_void``, corners touching a negative label (void) are left out.
    """
    a = lab
    b = np.roll(lab, -1, 0)
    c = np.roll(lab, -1, 1)
    d = np.roll(b, -1, 1)
    distinct = 1 + (b != a).astype(np.int8)
    distinct += (c != a) & (c != b)
    distinct += (d != a) & (d != b) & (d != c)
    mask = distinct >= 3
    if skip_void:
        mask &= np.minimum(np.minimum(a, b), np.minimum(c, d)) >= 0
    for ax in (0, 1):
        if not periodic_axes[ax]:
            sl = [slice(None)] * mask.ndim
            sl[ax] = -1
            mask[tuple(sl)] = False
    return mask


def triple_lines(ms: Microstructure) -> np.ndarray:
    """Voxel edges inside a volume where three or more grains meet (the triple lines, voxel-resolved).

    Returns
    -------
    ndarray of int, shape (m, 4)
        ``(axis, i, j, k)``: the edge parallel to ``axis`` through the corner shared by voxel (i, j, k)
        and its +1 neighbours along the two other axes. Void voxels count as no grain.
    """
    lab = ms.material_labels
    out = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        moved = np.moveaxis(lab, axis, -1)  # (other0, other1, axis)
        periodic = [ms.periodic and a < 2 for a in others]
        mask = _corner_triples(moved, periodic, skip_void=True)
        idx = np.argwhere(mask)
        ijk = np.empty_like(idx)
        ijk[:, others[0]], ijk[:, others[1]], ijk[:, axis] = idx[:, 0], idx[:, 1], idx[:, 2]
        out.append(np.column_stack([np.full(len(idx), axis), ijk]))
    return np.concatenate(out).astype(np.int32)


def ground_truth(ms, symmetry: str) -> dict[str, np.ndarray]:
    """Every ground-truth table and surface map of a microstructure, in one dict of arrays.

    Keys: the :func:`boundary_table` entries prefixed ``boundary_`` (``boundary_grains``,
    ``boundary_misorientation`` rad, ``boundary_class``, ``boundary_area`` m^2), the
    :func:`grain_table` entries prefixed ``grain_``, and the surface maps (nx, ny):
    ``surface_labels``, ``surface_c_axis_inclination`` (rad), ``boundary_mask`` (one pixel wide, the
    pixels of a grain that touch another grain), ``boundary_distance`` (m, exact where the tessellation is
    known), and ``triple_junction`` (:func:`triple_junctions`); for a volume also ``triple_line``
    (:func:`triple_lines`).
    """
    surf = ms.surface() if isinstance(ms, Microstructure) else ms
    out = {f"boundary_{k}": v for k, v in boundary_table(ms, symmetry).items()}
    out.update({f"grain_{k}": v for k, v in grain_table(ms).items()})
    x, y = surf.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    out.update({
        "surface_labels": surf.labels,
        "surface_c_axis_inclination": surf.c_axis_inclination[surf.labels],
        "boundary_mask": boundary_mask(surf.labels, periodic=surf.periodic),
        "boundary_distance": surf.boundary_distance(X, Y),
        "triple_junction": triple_junctions(surf),
    })
    if isinstance(ms, Microstructure):
        out["triple_line"] = triple_lines(ms)
    return out
