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
match the flat boundary they represent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BoundaryNetwork", "boundary_network"]


@dataclass(frozen=True, eq=False)
class BoundaryNetwork:
    """Boundary faces of a 2-D label map and their connectivity.

    Attributes
    ----------
    axis : ndarray of int, shape (nf,)
        0 for a face normal to x (between pixels (i, j) and (i+1, j)), 1 for y.
    low, high : ndarray of int, shape (nf, 2)
        Pixel indices on the low and high side (the high side wraps when periodic).
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

    @property
    def n_faces(self) -> int:
        return int(self.axis.size)

    def face_centres(self, hx: float, hy: float) -> np.ndarray:
        """Centre (m) of each face for uniform pixels ``hx x hy``, shape (n_faces, 2); a periodic face
        between the last and the first pixel sits at the film's far edge (next to its low side)."""
        cx = (self.low[:, 0] + 0.5 + 0.5 * (self.axis == 0)) * hx
        cy = (self.low[:, 1] + 0.5 + 0.5 * (self.axis == 1)) * hy
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
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")

    # face id maps: xid[i, j] = face between (i, j) and (i+1, j); yid[i, j] between (i, j) and (i, j+1)
    xid = np.full((nx, ny), -1, dtype=np.int64)
    yid = np.full((nx, ny), -1, dtype=np.int64)
    xmask = labels != np.roll(labels, -1, axis=0)
    ymask = labels != np.roll(labels, -1, axis=1)
    if not periodic:
        xmask[-1, :] = False
        ymask[:, -1] = False
    nfx, nfy = int(xmask.sum()), int(ymask.sum())
    xid[xmask] = np.arange(nfx)
    yid[ymask] = nfx + np.arange(nfy)

    low = np.concatenate([np.stack([ii[xmask], jj[xmask]], -1), np.stack([ii[ymask], jj[ymask]], -1)])
    high = np.concatenate([np.stack([(ii[xmask] + 1) % nx, jj[xmask]], -1),
                           np.stack([ii[ymask], (jj[ymask] + 1) % ny], -1)])
    axis = np.concatenate([np.zeros(nfx, np.int8), np.ones(nfy, np.int8)])
    grains = np.stack([labels[low[:, 0], low[:, 1]], labels[high[:, 0], high[:, 1]]], -1)
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

    # corner links: vertex (i+1/2, j+1/2) touches xid[i, j], xid[i, j+1], yid[i, j], yid[i+1, j]
    vi = np.arange(nx if periodic else nx - 1)
    vj = np.arange(ny if periodic else ny - 1)
    VI, VJ = np.meshgrid(vi, vj, indexing="ij")
    VI1, VJ1 = (VI + 1) % nx, (VJ + 1) % ny
    faces = [xid[VI, VJ], xid[VI, VJ1], yid[VI, VJ], yid[VI1, VJ]]
    hyj, hyj1, hxi, hxi1 = hy[VJ], hy[VJ1], hx[VI], hx[VI1]
    pairs = [
        (0, 1, 0.5 * (hyj + hyj1)), (2, 3, 0.5 * (hxi + hxi1)),
        (0, 2, 0.5 * (hyj + hxi)), (0, 3, 0.5 * (hyj + hxi1)),
        (1, 2, 0.5 * (hyj1 + hxi)), (1, 3, 0.5 * (hyj1 + hxi1)),
    ]
    lf, ll = [], []
    for a, b, length in pairs:
        ok = (faces[a] >= 0) & (faces[b] >= 0)
        lf.append(np.stack([faces[a][ok], faces[b][ok]], -1))
        ll.append(length[ok])
    link_faces = np.concatenate(lf) if lf else np.zeros((0, 2), np.int64)
    link_length = np.concatenate(ll) if ll else np.zeros(0)
    return BoundaryNetwork(axis, low, high, weight, grains, link_faces, link_length, n)


def place_on_boundaries(net: BoundaryNetwork, ms, *, gb_width: float | None = None,
                        scale_range: tuple[float, float] = (0.5, 2.0)) -> BoundaryNetwork:
    """Put the faces of a film's staircase boundaries onto the exact boundary segments.

    A staircase's faces project unevenly onto the line they stand for (they bunch up and leave gaps),
    and near triple junctions the staircase of a short boundary is longer or shorter than the true
    edge. For a film with seeds each boundary segment (:meth:`ColumnarMicrostructure.boundary_segment`)
    gets its faces, in their order along it, one after the other with lengths in proportion to their
    weights ``w h``, and the weights are scaled so that the lengths add up to the segment's: the slabs
    then tile the true edge, and ``delta`` times the edge's area (storage, ``delta * D_gb`` along it) is
    that of the true boundary whatever the voxel size. Conduction along the staircase scales as
    ``1 / w``, so it follows the longer or shorter path. Weights are scaled by at most ``scale_range``
    (the segment of a pixel-neighbour pair can be far shorter than its faces, or missing) and kept
    below ``0.45 h / gb_width`` (the slab must fit inside the cells beside it).

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

    Returns
    -------
    BoundaryNetwork
        The same faces with ``position``, ``normal`` (the segments') and the scaled ``weight``.
    """
    import dataclasses

    hx, hy = ms.spacing
    centres = net.face_centres(hx, hy)
    if ms.seeds is None or not net.n_faces:
        return dataclasses.replace(net, position=centres)
    pair = np.sort(net.grains, axis=1)
    centre, tangent, length = ms.boundary_segment(pair[:, 0], pair[:, 1], centres)
    on = ms.boundary_point(pair[:, 0], pair[:, 1], centres)
    position, weight = on.copy(), net.weight.copy()
    h_t = np.where(net.axis == 0, hy, hx)
    near = ms._displacement  # the periodic image of a displacement closest to zero (unchanged if not periodic)
    wrap = np.mod(centre, np.asarray(ms.extent)) if ms.periodic else centre
    key = np.concatenate([pair, np.round(wrap / (1e-3 * min(hx, hy))).astype(np.int64)], 1)
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    cap = np.inf if gb_width is None else 0.45 * min(hx, hy) / gb_width
    for sel in np.split(order, bounds):
        f = sel[0]
        if length[f] <= 0:
            continue
        along = near(on[sel] - centre[f]) @ tangent[f]
        sel = sel[np.argsort(along, kind="stable")]
        size = weight[sel] * h_t[sel]
        scale = np.clip(length[f] / size.sum(), *scale_range)
        weight[sel] = np.minimum(weight[sel] * scale, cap)
        size = weight[sel] * h_t[sel]
        s = np.cumsum(size) - 0.5 * size - 0.5 * size.sum()
        position[sel] = centre[f] + s[:, None] * tangent[f]
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], -1)
    position = centres + near(position - centres)  # next to each face (a periodic film's wrap)
    return dataclasses.replace(net, weight=weight, normal=normal, position=position)
