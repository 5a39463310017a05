"""Grain-boundary network of a columnar film on its pixel grid.

A grain boundary is a slab of width ``delta`` and diffusivity ``D_gb``. In the
voxel model it lies on the vertical faces between pixels of different grains
and carries its own unknowns (one per face and z layer): the slab stores
``delta * area`` of Li, conducts ``delta * D_gb`` along its plane (vertically
and, through the pixel corners, laterally) and exchanges Li with the bulk cells
on both sides. This keeps ``delta`` and ``delta * D_gb`` exact whatever the
voxel size, which a cell-smeared fast path cannot do once ``delta`` is thinner
than the cells (its storage would be a whole cell).

A boundary that is not aligned with the grid is a staircase of faces. Each
face carries the weight ``w = 1 / (|n_x| + |n_y|)`` (true area over staircase
area, from the exact boundary normal ``n``): storage and vertical conduction
are multiplied by ``w``, conduction along the staircase by ``1 / w``, so both
match the flat boundary they represent. A segment whose two grains' pixels
touch only at a corner gets a diagonal face (:func:`place_on_boundaries`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._arrays import unique_rows
from ..microstructure._symmetry import classify_boundaries

__all__ = ["BoundaryNetwork", "boundary_network", "VolumeBoundaries", "edge_factor", "slab_roles", "steep",
           "volume_boundaries", "with_diagonals", "diagonal_pixels", "diagonal_corner"]


@dataclass(frozen=True, eq=False)
class BoundaryNetwork:
    """Boundary faces of a 2-D label map and their connectivity.

    Attributes
    ----------
    axis : ndarray of int, shape (nf,)
        0 for a face normal to x (between pixels (i, j) and (i+1, j)), 1 for y; 2 and 3 for a diagonal
        face (:func:`place_on_boundaries`): a boundary segment between two grains whose pixels touch only
        at a corner, from (i, j) to (i+1, j+1) (2) or from (i, j+1) to (i+1, j) (3).
    low, high : ndarray of int, shape (nf, 2)
        Pixel indices on the low and high side (the high side wraps when periodic); for a diagonal face
        the pixels (i, j) and (i+1, j+1) (2) or (i, j+1) and (i+1, j) (3).
    weight : ndarray, shape (nf,)
        Area weight ``w = 1/(|n_x| + |n_y|)`` in (1/2, 1].
    grains : ndarray of int, shape (nf, 2)
        Grain ids on the low and high side.
    link_faces : ndarray of int, shape (nl, 2)
        Pairs of faces that share a pixel corner.
    link_length : ndarray, shape (nl,)
        Path length between the face centres through the shared corner (m).
    normal : ndarray, shape (nf, 2), optional
        Unit in-plane normal of the boundary each face stands for (the exact one where the film has
        seeds); its slab is a strip along the boundary line in the mechanics. None: the face's own axis.
    position : ndarray, shape (nf, 2), optional
        Where each face's slab sits on the boundary line (m, frame of the label map); None: the face
        centre. Set by :func:`place_on_boundaries`.
    link_half : ndarray, shape (nl, 2), optional
        Each face's share of ``link_length`` (its centre to the shared corner, m); None: half each.
    link_node : ndarray of int, shape (nl,), optional
        Which pixel corner each link goes through (one integer per corner): the faces around a corner are
        joined through it (:func:`~esmsim.transport._operator.star_links`); None: each link on its own.
    """

    axis: np.ndarray
    low: np.ndarray
    high: np.ndarray
    weight: np.ndarray
    grains: np.ndarray
    link_faces: np.ndarray
    link_length: np.ndarray
    normal: np.ndarray | None = None
    position: np.ndarray | None = None
    link_half: np.ndarray | None = None
    link_node: np.ndarray | None = None

    @property
    def n_faces(self) -> int:
        return int(self.axis.size)

    def face_centres(self, hx: float, hy: float) -> np.ndarray:
        """Centre (m) of each face for uniform pixels ``hx x hy``, shape (n_faces, 2); a periodic face
        between the last and the first pixel sits at the film's far edge (next to its low side). A
        diagonal face's centre is its pixel corner."""
        diag = self.axis >= 2
        cx = (self.low[:, 0] + 0.5 + 0.5 * ((self.axis == 0) | diag)) * hx
        cy = (self.low[:, 1] + 0.5 + 0.5 * (self.axis == 1) + 0.5 * np.where(self.axis == 3, -1, diag)) * hy
        return np.stack([cx, cy], -1)


def boundary_network(labels, hx, hy, *, periodic=False, normal=None) -> BoundaryNetwork:
    """Find the boundary faces of a 2-D label map and link those that share a corner.

    Parameters
    ----------
    labels : ndarray of int, shape (nx, ny)
        Grain id per pixel (axis 0 = x).
    hx, hy : array_like
        Pixel widths along x (length nx) and y (length ny), m.
    periodic : bool
        Whether the map wraps around in x and y.
    normal : callable, optional
        ``normal(g_low, g_high, centres) -> (nf, 2)`` unit boundary normals of the faces between grains
        ``g_low`` and ``g_high`` centred at ``centres`` (m, shape (nf, 2), from the origin of the map's
        first pixel; e.g. :meth:`ColumnarMicrostructure.boundary_normal`); when omitted
        all weights are 1 (no staircase correction).

    Returns
    -------
    BoundaryNetwork
    """
    labels = np.asarray(labels)
    nx, ny = labels.shape
    hx = np.broadcast_to(np.asarray(hx, float), (nx,))
    hy = np.broadcast_to(np.asarray(hy, float), (ny,))
    # the 3-D network of one layer: its x and y faces and the links through the pixel corners
    vb = volume_boundaries(labels[:, :, None], (hx, hy, np.ones(1)), periodic=(periodic, periodic))
    axis, grains = vb.axis, vb.grains
    low = np.stack(np.unravel_index(vb.low, (nx, ny, 1))[:2], -1)
    high = np.stack(np.unravel_index(vb.high, (nx, ny, 1))[:2], -1)
    if normal is not None and axis.size:
        xe = np.concatenate([[0.0], np.cumsum(hx)])
        ye = np.concatenate([[0.0], np.cumsum(hy)])
        i, j = low[:, 0], low[:, 1]
        centres = np.stack([np.where(axis == 0, xe[i + 1], 0.5 * (xe[i] + xe[i + 1])),
                            np.where(axis == 1, ye[j + 1], 0.5 * (ye[j] + ye[j + 1]))], -1)
        n = np.asarray(normal(grains[:, 0], grains[:, 1], centres), float)
        weight = 1.0 / (np.abs(n[:, 0]) + np.abs(n[:, 1]))
    else:
        n, weight = None, np.ones(axis.size)
    link_faces, link_half = vb.link_faces, vb.link_half
    link_length = link_half.sum(axis=1)
    return BoundaryNetwork(axis, low, high, weight, grains, link_faces, link_length, n, link_half=link_half,
                           link_node=vb.link_node)


def place_on_boundaries(net: BoundaryNetwork, ms, *, gb_width: float | None = None,
                        scale_range: tuple[float, float] = (0.5, 2.0), diagonals: bool = True,
                        segments=None) -> BoundaryNetwork:
    """Put the faces of a film's staircase boundaries onto the exact boundary segments.

    A staircase's faces project unevenly onto the line they stand for (they bunch up and leave gaps),
    and near triple junctions the staircase of a short boundary is longer or shorter than the true
    edge. For a film with seeds each boundary segment (:meth:`ColumnarMicrostructure.boundary_segment`)
    gets its faces, in their order along it, one after the other with lengths in proportion to their
    weights ``w h``, and the weights are scaled so that the lengths add up to the segment's: the slabs
    then tile the true edge, and ``delta`` times the edge's area (storage, ``delta * D_gb`` along it) is
    that of the true boundary whatever the voxel size. Conduction along the staircase scales as
    ``1 / w``, so it follows the longer or shorter path. Weights are scaled by at most ``scale_range``
    (the segment of a pixel-neighbour pair can be far shorter than its faces) and kept below
    ``0.45 h / gb_width`` (the slab must fit inside the cells beside it). Faces whose pair has no segment
    next to them keep their weight (the volume engine rescales its own, ``transport._tensor._gone_scale``).

    A segment shorter than a pixel can fall between pixel centres so that its two grains touch only at a
    pixel corner (the two other pixels there belong to other grains): the staircase then has no face for
    it, and its slab would be missing. With ``diagonals`` each such segment becomes a diagonal face
    (axis 2 or 3) between the two pixels, of the segment's length and normal, linked to the four faces
    around the corner (a 4 nm segment 9 nm from a tip held 4 % of the response at 8 nm pixels).

    Parameters
    ----------
    net : BoundaryNetwork
        The network of ``ms.labels`` (the whole film, uniform pixels), with the film's normals.
    ms : ColumnarMicrostructure
        The film. Without seeds (an imported label image) the faces stay at their centres.
    gb_width : float, optional
        Boundary width delta (m), for the cap on the weights.
    scale_range : (float, float)
        Smallest and largest factor on a segment's weights.
    diagonals : bool
        Add diagonal faces for the segments the staircase misses (``net`` must then be the network of
        ``ms.labels``).
    segments : (centre, tangent, length), optional
        ``ms.boundary_segment`` of the faces' sorted grain pairs at their centres, if already computed.
        Faces whose pair has no segment next to them (length 0) keep their weight and sit on the
        bisector.

    Returns
    -------
    BoundaryNetwork
        The same faces with ``position``, ``normal`` (the segments') and the scaled ``weight``, followed
        by the diagonal faces.
    """
    import dataclasses

    hx, hy = ms.spacing
    centres = net.face_centres(hx, hy)
    if ms.seeds is None or not net.n_faces:
        return dataclasses.replace(net, position=centres)
    pair = np.sort(net.grains, axis=1)
    centre, tangent, length = ms.boundary_segment(pair[:, 0], pair[:, 1], centres) if segments is None else segments
    on = ms.boundary_point(pair[:, 0], pair[:, 1], centres)
    position, weight = on.copy(), net.weight.copy()
    h_t = np.where(net.axis == 0, hy, hx)
    near = ms._displacement  # the periodic image of a displacement closest to zero (unchanged if not periodic)
    wrap = np.mod(centre, np.asarray(ms.extent)) if ms.periodic else centre
    key = np.concatenate([pair, np.round(wrap / (1e-3 * min(hx, hy))).astype(np.int64)], 1)
    _, first, group = unique_rows(key)
    group = group.ravel()
    cap = np.inf if gb_width is None else 0.45 * min(hx, hy) / gb_width
    # each segment's faces (its first face f: its centre, tangent, length), in their order along it
    f = first[group]
    along = np.einsum("ik,ik->i", near(on - centre[f]), tangent[f])
    sel = np.lexsort((along, group))
    sel = sel[length[f[sel]] > 0]
    f = f[sel]
    start = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])  # each segment's first entry in sel
    count = np.diff(np.r_[start, sel.size])
    row = np.repeat(np.arange(start.size), count)
    col = np.arange(sel.size) - start[row]

    def sums(v):  # per segment, repeated for its faces (np.sum of each, as a loop over segments would)
        return np.array([v[a:a + c].sum() for a, c in zip(start, count)]).reshape(-1)[row]

    size = weight[sel] * h_t[sel]
    scale = np.clip(length[f] / sums(size), *scale_range)
    weight[sel] = np.minimum(weight[sel] * scale, cap)
    size = weight[sel] * h_t[sel]
    # the running sum along each segment, on a (segment, face) table (a running sum over all segments less
    # the earlier ones' would not be exact)
    table = np.zeros((start.size, count.max() if count.size else 0))
    table[row, col] = size
    s = np.cumsum(table, axis=1)[row, col] - 0.5 * size - 0.5 * sums(size)
    position[sel] = centre[f] + s[:, None] * tangent[f]
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], -1)
    position = centres + near(position - centres)  # next to each face (a periodic film's wrap)
    net = dataclasses.replace(net, weight=weight, normal=normal, position=position)
    if not diagonals:
        return net
    have = {tuple(k) for k, f in zip(key, length > 0) if f}
    return with_diagonals(net, *_missing_segments(ms, have, cap), ms.labels.shape, (hx, hy))


def diagonal_pixels(axis, i, j, i1, j1):
    """``(low, high)`` pixels, shape (n, 2), of diagonal faces of ``axis`` (2 or 3) at the pixel corners
    ``(i + 1/2, j + 1/2)``; ``i1, j1``: the next row and column (wrapped where periodic)."""
    two = np.asarray(axis) == 2
    return (np.stack([i, np.where(two, j, j1)], -1), np.stack([i1, np.where(two, j1, j)], -1))


def diagonal_corner(axis, low, high):
    """The inverse of :func:`diagonal_pixels`: ``(i, j, i1, j1)`` of each diagonal face's pixel corner."""
    two = np.asarray(axis) == 2
    return low[:, 0], np.where(two, low[:, 1], high[:, 1]), high[:, 0], np.where(two, high[:, 1], low[:, 1])


def _missing_segments(ms, have, cap):
    """Diagonal faces (axis, low, high, grains, weight, normal, position) for the exact segments between
    grains whose pixels touch only at a corner, where no face of the staircase stands for the segment (``have``:
    keys (pair, rounded centre) of the segments that have faces)."""
    lab = ms.labels
    nx, ny = lab.shape
    hx, hy = ms.spacing
    per = bool(ms.periodic)
    i, j = (v.ravel() for v in np.meshgrid(np.arange(nx if per else nx - 1), np.arange(ny if per else ny - 1),
                                           indexing="ij"))
    i1, j1 = (i + 1) % nx, (j + 1) % ny
    a, c, d, b = lab[i, j], lab[i1, j], lab[i, j1], lab[i1, j1]
    corner = np.stack([(i + 1) * hx, (j + 1) * hy], -1)
    axis, where = [], []
    for ax, p, q, o1, o2 in ((2, a, b, c, d), (3, d, c, a, b)):
        sel = np.flatnonzero((p != q) & (o1 != p) & (o1 != q) & (o2 != p) & (o2 != q))
        axis.append(np.full(sel.size, ax))
        where.append(sel)
    axis, at = np.concatenate(axis), np.concatenate(where)
    low, high = diagonal_pixels(axis, i[at], j[at], i1[at], j1[at])
    empty = (np.zeros(0, int), np.zeros((0, 2), int), np.zeros((0, 2), int), np.zeros((0, 2), lab.dtype),
             np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2)))
    if not axis.size:
        return empty
    sides = np.stack([lab[low[:, 0], low[:, 1]], lab[high[:, 0], high[:, 1]]], -1)
    g = np.sort(sides, axis=1)
    centre, tangent, length = ms.boundary_segment(g[:, 0], g[:, 1], corner[at])
    v = ms._displacement(corner[at] - centre)
    t = np.sum(v * tangent, 1)
    dist = np.hypot(np.abs(v[:, 0] * tangent[:, 1] - v[:, 1] * tangent[:, 0]),
                    np.maximum(np.abs(t) - 0.5 * length, 0.0))
    wrap = np.mod(centre, np.asarray(ms.extent)) if per else centre
    key = np.concatenate([g, np.round(wrap / (1e-3 * min(hx, hy))).astype(np.int64)], 1)
    ok = (length > 0) & (dist <= max(hx, hy)) & np.array([tuple(k) not in have for k in key], bool)
    # one face per segment: the corner nearest to it
    ok = np.flatnonzero(ok)
    ok = ok[np.lexsort((dist[ok],) + tuple(key[ok].T[::-1]))]
    if not ok.size:
        return empty
    first = np.concatenate([[True], np.any(np.diff(key[ok], axis=0) != 0, axis=1)])
    k = ok[first]
    normal = np.stack([tangent[k, 1], -tangent[k, 0]], -1)
    position = corner[at[k]] - v[k]
    return axis[k], low[k], high[k], sides[k], np.minimum(length[k] / hx, cap), normal, position


def with_diagonals(net: BoundaryNetwork, axis, low, high, grains, weight, normal, position, shape,
                   spacing) -> BoundaryNetwork:
    """``net`` (faces normal to x and y of a label map of ``shape``) with diagonal faces appended (axis 2 or
    3, their pixels ``low`` and ``high`` and grains there, weights, normals and positions), each linked to
    the faces of ``net`` around its pixel corner (half-path ``h / 2`` on each side)."""
    import dataclasses

    if not len(axis):
        return net
    axis, low, high = np.asarray(axis), np.asarray(low), np.asarray(high)
    hx, hy = spacing
    ids = np.full((2,) + tuple(shape), -1, np.int64)
    real = net.axis < 2
    ids[net.axis[real], net.low[real, 0], net.low[real, 1]] = np.flatnonzero(real)
    i0, j0, i1, j1 = diagonal_corner(axis, low, high)
    around = np.stack([ids[0, i0, j0], ids[0, i0, j1], ids[1, i0, j0], ids[1, i1, j0]], -1)
    new = net.n_faces + np.arange(axis.size)
    ok = around >= 0
    links = np.stack([np.repeat(new, 4).reshape(-1, 4)[ok], around[ok]], -1)
    # the corner's node, numbered as volume_boundaries numbers the edge along z at pixel (i0, j0)'s high corner
    node = 2 * int(np.prod(shape)) + i0 * shape[1] + j0
    nodes = None if net.link_node is None else np.concatenate([net.link_node, np.repeat(node, 4).reshape(-1, 4)[ok]])
    half_real = np.where(np.arange(4) < 2, 0.5 * hy, 0.5 * hx)  # x faces' half width along y, y faces' along x
    half = np.stack([np.full(links.shape[0], 0.5 * hx), np.broadcast_to(half_real, ok.shape)[ok]], -1)

    def cat(a, b):
        return None if a is None else np.concatenate([a, b])

    return dataclasses.replace(
        net, axis=np.concatenate([net.axis, axis]).astype(net.axis.dtype), low=np.concatenate([net.low, low]),
        high=np.concatenate([net.high, high]), weight=np.concatenate([net.weight, weight]),
        grains=np.concatenate([net.grains, np.asarray(grains, net.grains.dtype)]),
        link_faces=np.concatenate([net.link_faces, links]),
        link_length=np.concatenate([net.link_length, half.sum(1)]), normal=cat(net.normal, normal),
        position=cat(net.position, position), link_half=cat(net.link_half, half), link_node=nodes)


@dataclass(frozen=True, eq=False)
class VolumeBoundaries:
    """Boundary faces of a 3-D cell grid (faces between material cells of different grains) and the links
    between faces that share a cell edge.

    Attributes
    ----------
    axis : ndarray of int, shape (nf,)
        Axis the face is normal to (0, 1, 2).
    low, high : ndarray of int, shape (nf,)
        Flat index (``(i * ny + j) * nz + k``) of the cell on the low and high side.
    grains : ndarray of int, shape (nf, 2)
        Grain ids on the low and high side.
    normal : ndarray, shape (nf, 3)
        Unit normal of the boundary plane each face stands for (the face's own axis where unknown).
    link_faces : ndarray of int, shape (nl, 2)
        Pairs of faces that share a cell edge.
    link_axis : ndarray of int, shape (nl,)
        Axis of the shared edge.
    link_edge : ndarray, shape (nl,)
        Length of the shared edge (m).
    link_half : ndarray, shape (nl, 2)
        Distance (m) from each face's centre to the shared edge (half its width across the edge).
    link_node : ndarray of int, shape (nl,)
        Which cell edge each link goes through (``k * n_cells + p`` for the edge along axis ``k`` at the
        high corner of cell ``p``).
    """

    axis: np.ndarray
    low: np.ndarray
    high: np.ndarray
    grains: np.ndarray
    normal: np.ndarray
    link_faces: np.ndarray
    link_axis: np.ndarray
    link_edge: np.ndarray
    link_half: np.ndarray
    link_node: np.ndarray | None = None

    @property
    def n_faces(self) -> int:
        return int(self.axis.size)


def volume_boundaries(labels, widths, *, active=None, periodic=(False, False), normal=None) -> VolumeBoundaries:
    """Find the boundary faces of a 3-D label grid and link those that share a cell edge.

    Parameters
    ----------
    labels : ndarray of int, shape (nx, ny, nz)
        Grain id per cell.
    widths : (ndarray, ndarray, ndarray)
        Cell widths along x, y and z (m).
    active : ndarray of bool, optional
        Material cells; faces touching void cells are not boundaries (no flux there).
    periodic : (bool, bool)
        Whether x and y wrap.
    normal : callable, optional
        ``normal(g_low, g_high, centres) -> (nf, 3)`` unit normals of the boundary planes at the face
        centres (m, grid frame; e.g. :meth:`Microstructure.boundary_normal`); default the faces' axes.

    Returns
    -------
    VolumeBoundaries
    """
    labels = np.asarray(labels)
    shape = labels.shape
    active = np.ones(shape, bool) if active is None else np.asarray(active, bool)
    h = [np.asarray(w, float) for w in widths]
    per = (bool(periodic[0]), bool(periodic[1]), False)
    idx = np.arange(labels.size).reshape(shape)
    fid, axis, low, high, cen = [], [], [], [], []
    count = 0
    edges = [np.concatenate([[0.0], np.cumsum(w)]) for w in h]
    centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
    for a in range(3):
        mask = (labels != np.roll(labels, -1, axis=a)) & active & np.roll(active, -1, axis=a)
        if not per[a]:
            mask[tuple(slice(-1, None) if b == a else slice(None) for b in range(3))] = False
        ids = np.full(shape, -1, np.int64)
        m = int(mask.sum())
        ids[mask] = count + np.arange(m)
        count += m
        fid.append(ids)
        pos = np.nonzero(mask)
        axis.append(np.full(m, a, np.int8))
        low.append(idx[mask])
        high.append(np.roll(idx, -1, axis=a)[mask])
        cen.append(np.stack([edges[b][pos[b] + 1] if b == a else centres[b][pos[b]] for b in range(3)], -1))
    axis, low, high = np.concatenate(axis), np.concatenate(low), np.concatenate(high)
    flat = labels.ravel()
    grains = np.stack([flat[low], flat[high]], -1)
    if normal is not None and axis.size:
        nrm = np.asarray(normal(grains[:, 0], grains[:, 1], np.concatenate(cen)), float)
    else:
        nrm = np.eye(3)[axis]

    lf, lk, le, lh, ln = [], [], [], [], []
    for k in range(3):
        i, j = [a for a in range(3) if a != k]
        # the edge along k at the high-i, high-j corner of cell p, and the four faces around it
        faces = (fid[i], np.roll(fid[i], -1, axis=j), fid[j], np.roll(fid[j], -1, axis=i))
        ok = np.ones(shape, bool)
        for b in (i, j):
            if not per[b]:
                ok[tuple(slice(-1, None) if c == b else slice(None) for c in range(3))] = False
        def along(v, c):  # a vector along axis c, broadcast to the grid (no copy)
            return np.broadcast_to(np.asarray(v).reshape([-1 if d == c else 1 for d in range(3)]), shape)
        pk = along(np.arange(shape[k]), k)
        hi0, hi1 = along(0.5 * h[i], i), along(0.5 * np.roll(h[i], -1), i)
        hj0, hj1 = along(0.5 * h[j], j), along(0.5 * np.roll(h[j], -1), j)
        # (face a, face b, a's distance to the edge, b's)
        pairs = ((0, 1, hj0, hj1), (2, 3, hi0, hi1), (0, 2, hj0, hi0), (0, 3, hj0, hi1), (1, 2, hj1, hi0),
                 (1, 3, hj1, hi1))
        for a, b, da, db in pairs:
            sel = ok & (faces[a] >= 0) & (faces[b] >= 0)
            lf.append(np.stack([faces[a][sel], faces[b][sel]], -1))
            lk.append(np.full(int(sel.sum()), k, np.int8))
            le.append(h[k][pk[sel]])
            lh.append(np.stack([da[sel], db[sel]], -1))
            ln.append(k * labels.size + idx[sel])
    return VolumeBoundaries(axis, low, high, grains, nrm, np.concatenate(lf).astype(np.int64), np.concatenate(lk),
                            np.concatenate(le), np.concatenate(lh), np.concatenate(ln).astype(np.int64))


def edge_factor(normal: np.ndarray, k: int) -> np.ndarray:
    """Factor on the conductance of a staircase link across a cell edge along axis ``k`` (every face type
    of the staircase carrying the plane).

    Conduction across an edge along ``k`` runs in the section normal to ``k``. There the boundary is a
    2-D staircase of weight ``w_k = |n_perp| / (|n_i| + |n_j|)`` (``n_perp = (n_i, n_j)``, the normal's
    components in the section): the true path is ``w_k`` times the staircase path, so the conductance
    gains ``1 / w_k``; and the true width of the sheet across the flow is ``w / w_k`` times the staircase
    edges' (the area ratio ``w`` shared between the two directions). Together ``w / w_k^2``. Exact where
    the staircase is uniform along ``k`` (a plane containing the ``k`` axis: ``1 / w_k``) and for aligned
    planes (1).
    """
    n = np.abs(np.asarray(normal, float))
    i, j = [a for a in range(3) if a != k]
    s = n[:, i] + n[:, j]
    w = 1.0 / n.sum(axis=1)
    wk = np.where(s > 0, np.hypot(n[:, i], n[:, j]) / np.where(s > 0, s, 1.0), 1.0)
    return w / wk ** 2


#: With the tessellation's sections (exact traces at every z cell), planes dipping at least this much
#: (degrees) are carried by their vertical faces; without them 45 deg (the voxel staircase's diagonal).
#: Measured down to 3 deg (a 3.3 deg plane 1 nm deep: 6.25, 6.23, 6.21 pm/V on its trace at 8, 4, 2 nm;
#: its staircase read 0.49 and 0.50 at 4 and 2 nm); a horizontal plane has no vertical faces
SECTION_MIN_DIP = 2.0


def steep(normal, min_dip: float = 45.0) -> np.ndarray:
    """Whether each plane (unit normals, (n, 3)) dips at least ``min_dip`` degrees from the horizontal:
    ``|n_z| tan(min_dip) <= |(n_x, n_y)|`` (45 deg: ``|n_z| <= |(n_x, n_y)|``)."""
    n = np.asarray(normal, float)
    t = np.tan(np.radians(min_dip))
    return (t * n[:, 2]) ** 2 <= (n[:, 0] ** 2 + n[:, 1] ** 2) * (1 + 1e-9)


def slab_roles(normal: np.ndarray, axis: np.ndarray, min_dip: float = 45.0):
    """How each face of a 3-D staircase stands for its boundary plane: storage weight and conductance
    factors along the plane.

    A staircase of faces normal to x, y and z has ``1 / w = |n_x| + |n_y| + |n_z|`` times the plane's area.
    Where the plane is steep (it dips at least ``min_dip``: 45 deg on voxel layers, ``|n_z| <= |(n_x, n_y)|``;
    :data:`SECTION_MIN_DIP` where the faces lie on the tessellation's sections, which have the plane's trace at
    every z cell) its vertical faces alone carry it, as in a columnar film at every depth: they store ``w_v = 1
    / (|n_x| + |n_y|)`` times their area, which puts the plane's Li at the depth where the plane is (the graded
    z cells resolve it; horizontal faces at the voxel-layer interfaces would hold part of it a whole layer too
    deep, and a sharp tip on the boundary sees the Li within a few nm of the surface). Their horizontal faces
    are junctions: no storage, and no path length between the vertical faces above and below them. Conduction
    along the plane then needs, per link across an edge along ``k``: vertically (``k`` = x or y) ``|n_xy|^2 /
    (|n_x| + |n_y|)`` (the plane's width per face is ``w_h h``, ``w_h = |n_xy| / (|n_x| + |n_y|)`` its trace's
    2-D staircase weight, and a depth step ``dz`` is ``dz / |n_xy|`` along its dip), laterally (``k`` = z)
    ``(|n_x| + |n_y|) / |n_xy|^2``. For a vertical plane these are the columnar network's ``w`` and ``1 / w``.

    Flatter planes keep the whole staircase: storage ``w``, and across an edge along ``k`` the factor
    ``w / w_k^2``, with ``w_k`` the 2-D staircase weight of the plane's section normal to ``k``
    (:func:`edge_factor`). That is right on average over a voxel layer only: the graded z cells resolve
    the vertical faces of the top layer, which then store half and conduct twice what the plane does
    there. A plane dipping 45.6 deg read 10.2 pm/V as a staircase and 14.7 pm/V on its vertical faces,
    where one dipping 44.4 deg reads 14.9 (4 nm voxels, tip on the trace); one dipping 9.6 deg 2.23, 2.32,
    2.44 pm/V at 8, 4, 2 nm as a staircase, 8.08, 8.04, 7.97 on its vertical faces: hence the sections'
    2 deg.

    Returns
    -------
    (weight, factor, junction)
        ``weight`` (nf,) storage per face area; ``factor`` (nf, 3) conductance factor across edges along
        x, y, z; ``junction`` (nf,) bool: horizontal faces of steep planes (their half path to an edge
        counts zero towards a vertical face, and they do not conduct to each other).
    """
    n = np.abs(np.asarray(normal, float))
    nxy2 = n[:, 0] ** 2 + n[:, 1] ** 2
    sxy = n[:, 0] + n[:, 1]
    steep_ = steep(n, min_dip)
    vertical = axis < 2
    weight = np.where(steep_, np.where(vertical, 1.0 / np.where(steep_, sxy, 1.0), 0.0), 1.0 / n.sum(axis=1))
    factor = np.stack([edge_factor(n, k) for k in range(3)], -1)
    s_xy, s_n2 = np.where(steep_, sxy, 1.0), np.where(steep_, nxy2, 1.0)
    steep_factor = np.stack([s_n2 / s_xy, s_n2 / s_xy, s_xy / s_n2], -1)
    factor = np.where(steep_[:, None], steep_factor, factor)
    return weight, factor, steep_ & ~vertical


def boundary_factors(ms, material) -> np.ndarray:
    """D_gb multiplier for every grain pair from its boundary class, shape (n_grains, n_grains), for a
    film ``ms`` (columnar or volume) and a :class:`~esmsim.materials.Material`.

    Low-angle boundaries get ``gb_factor_low_angle``, twins ``gb_factor_twin``,
    high-angle boundaries 1 (classes from the disorientation under the
    material's crystal symmetry, see :func:`esmsim.microstructure.classify_boundaries`).
    """
    n = ms.n_grains
    f = np.ones((n, n))
    low, twin = material["gb_factor_low_angle"], material["gb_factor_twin"]
    if low == 1.0 and twin == 1.0:
        return f
    q = ms.quaternions
    _, cls = classify_boundaries(q[:, None, :], q[None, :, :], material.symmetry)
    f[cls == 1] = low
    f[cls == 2] = twin
    return f
