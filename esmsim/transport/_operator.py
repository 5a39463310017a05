"""Vectorised finite-volume diffusion operator on a tensor-product grid.

Unknowns are the cell-average concentrations of the bulk cells (index
``(i * ny + j) * nz + k``) followed by the grain-boundary slab unknowns
(``n_bulk + f * nz + k`` for boundary face ``f`` and layer ``k``).

The operator is assembled as a symmetric conductance matrix ``K`` (m^3/s: molar flux per unit
concentration difference) and a storage vector
``V`` (m^3), so that ``V dc/dt = -K c + b`` and, in the frequency domain,
``(i omega V + K) c = b``. Face conductances use the harmonic average of the
two half-cell resistances, which is exact for piecewise-constant coefficients
in 1-D.

This first engine uses the diagonal of each grain's sample-frame tensor
``D = R diag(D_1, D_2, D_3) R^T`` (two-point fluxes). Under an ESM tip the
concentration boundary layer (sqrt(D/omega) ~ 0.01-1 nm) is much thinner than
the lateral scale of the tip field (~10 nm), where the solution is locally
one-dimensional in z and depends only on ``D_zz = n.D.n``; the off-diagonal
terms matter at lateral scales comparable to the diffusion length and are added
by the full-tensor engine (issue 4).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .._arrays import unique_rows
from ..microstructure._grid import Grid
from ._boundaries import BoundaryNetwork

__all__ = ["DiffusionSystem", "assemble", "layer_boxes", "layer_segments", "slab_exchange", "stays_on_face",
           "strip_boxes", "strip_to_sample"]


@dataclass(frozen=True, eq=False)
class DiffusionSystem:
    """An assembled diffusion problem without its surface condition.

    Attributes
    ----------
    K : scipy.sparse.csr_matrix
        Conductance matrix (m^3/s), symmetric positive semi-definite.
    volume : ndarray
        Storage of each unknown (m^3).
    top_index : ndarray of int
        Unknowns that touch the top surface z = 0.
    top_xy : ndarray, shape (nt, 2)
        Surface coordinates (m) of the centre of each such contact.
    top_conductance : ndarray
        Conductance (m^3/s) between each top unknown and the surface value.
    boxes : ndarray, shape (n, 6)
        Extent ``(x0, x1, y0, y1, z0, z1)`` (m) of the region each unknown
        represents (cells; boundary slabs of width ``w delta``), for the mechanics.
    n_bulk : int
        Number of bulk-cell unknowns.
    top_area : ndarray, optional
        Surface area (m^2) of each top contact (for flux and Robin conditions).
    extra_boxes : ndarray, shape (m, 6), optional
        Boxes of Li the unknowns do not place where it is: the bulk boundary layers beside the
        grain-boundary slabs in a frequency-domain system (``assemble(..., omega=...)``), pieces across
        the cell beside each slab (:func:`layer_segments`), with a negative copy of the bulk cell that holds
        their sum on average.
    extra_map : scipy.sparse matrix, shape (m, n), optional
        Concentration (mol/m^3) of each extra box as a linear function of the unknowns; the mechanics
        adds ``extra_weights(kernel, point) @ (extra_map @ c)``.
    extra_cells : ndarray of int, shape (m,), optional
        The bulk cell (unknown index) each extra box belongs to: its grain's Vegard tensor applies.
    extra_copy : ndarray of bool, shape (m,), optional
        Which extra boxes are the negative copies of their cell (the rest are the layers themselves).
        :meth:`all_weights` integrates a copy as its cell is integrated, so that the layer's Li leaves
        the cell where the cell holds it.
    slab_tangent : ndarray, shape (n - n_bulk, 2), optional
        Unit direction of the boundary line along which each slab unknown lies. A slab's box
        (``boxes[n_bulk:]``) is then a strip in its own frame: length ``w h`` along the tangent, width
        ``delta`` across it, centred on the slab's position, and turned about its vertical centre line
        onto the tangent. Use :meth:`kernel_boxes` (kernels invariant under rotation about z) and
        :func:`strip_to_sample` (vector and tensor kernels) to integrate over it.
    extra_tangent : ndarray, shape (m, 2), optional
        Own x axis of each extra box, as ``slab_tangent`` (the layers beside slab strips are strips);
        ``(1, 0)`` for an axis-aligned box. Integrate over them with :meth:`extra_weights`.
    slab_cells : ndarray of int, shape (n - n_bulk, 2), optional
        The bulk cells (unknown indices) on the low and high side of each slab unknown (voxel volumes,
        :func:`assemble_tensor`).
    slab_grains : ndarray of int, shape (n - n_bulk, 2), optional
        The grain pair of each slab unknown's boundary (voxel volumes). Those of the cells beside it but
        where a facet that a z cell's labels lack got faces of its own (:func:`assemble_tensor`).
    top_cross : ndarray, shape (nt, 2), optional
        ``A (D_zx, D_zy)`` (m^4/s) of each top contact: the cross part of the flux through its top face,
        ``A (D_zx dc/dx + D_zy dc/dy)`` at the surface, which a surface condition that fixes the lateral
        gradient there adds to the right-hand side (:func:`tip_terms`). None: diagonal tensors.
    """

    K: sp.csr_matrix
    volume: np.ndarray
    top_index: np.ndarray
    top_xy: np.ndarray
    top_conductance: np.ndarray
    boxes: np.ndarray
    n_bulk: int
    top_area: np.ndarray | None = None
    extra_boxes: np.ndarray | None = None
    extra_map: sp.spmatrix | None = None
    extra_cells: np.ndarray | None = None
    slab_tangent: np.ndarray | None = None
    slab_cells: np.ndarray | None = None
    slab_grains: np.ndarray | None = None
    extra_tangent: np.ndarray | None = None
    extra_copy: np.ndarray | None = None
    top_cross: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.volume.size)

    def kernel_boxes(self, point) -> np.ndarray:
        """Boxes of every unknown for a kernel evaluated at ``point`` (m): the cells as they are, each slab
        strip as the axis-aligned box that sits where ``point`` sees the strip in the strip's own frame
        (:func:`strip_boxes`). Exact for kernels invariant under rotation about z (the Mindlin normal
        displacement); vector and tensor kernels then need :func:`strip_to_sample` on the slab part."""
        if self.slab_tangent is None:
            return self.boxes
        out = self.boxes.copy()
        out[self.n_bulk:] = strip_boxes(self.boxes[self.n_bulk:], self.slab_tangent, point)
        return out

    def extra_weights(self, kernel, point, rank: int = 0) -> np.ndarray:
        """``kernel(boxes, point)`` over the extra boxes (strips turned onto their tangents), in sample axes;
        ``rank`` as in :meth:`weights`. Multiply by ``extra_map @ c``."""
        return _turned(kernel, self.extra_boxes, self.extra_tangent, point, rank)

    def wrapped(self, point, period) -> "DiffusionSystem":
        """The system with every contact, box and extra box moved by whole periods ``(Lx, Ly)`` (m) so that
        its centre lies within half a period of ``point`` (m): the nearest image of each, for the tip
        profile and the mechanics of a laterally periodic film solved whole. Slabs placed onto their
        boundaries can sit just outside ``[0, L)``; without this a slab at y = 97 nm in a 96 nm film was
        17 nm from a tip at y = 80 nm and the same slab at y = 1 nm (a finer voxel size) 79 nm."""
        L = np.asarray(period, float)
        p = np.asarray(point, float)

        def shift(xy):
            return L * np.round((xy - p) / L)

        xy = self.top_xy - shift(self.top_xy)

        def boxes(b):
            if b is None:
                return None
            d = shift(0.5 * (b[:, [0, 2]] + b[:, [1, 3]]))
            out = b.copy()
            out[:, 0:2] -= d[:, :1]
            out[:, 2:4] -= d[:, 1:]
            return out

        return replace(self, top_xy=xy, boxes=boxes(self.boxes), extra_boxes=boxes(self.extra_boxes))

    def all_weights(self, kernel, point, rank: int = 0, **rebuild) -> np.ndarray:
        """:meth:`weights` of the unknowns followed by :meth:`extra_weights` of the extra boxes, along the
        unknown axis (the last for ``rank`` 1, else the first); multiply by
        ``concatenate([c, extra_map @ c])``. ``rebuild`` (``shape``, ``radius``, ``pieces``, ``cell_shape``) as in
        :meth:`weights`.

        Each negative copy of a cell (``extra_copy``) takes its cell's weight, rebuilt where the cell is:
        with the cell's Li rebuilt along the tip profile and the copy left a uniform box, the layer's Li
        would be taken out of the cell somewhere other than where the cell put it. A tip 6 nm beside a
        45 deg boundary in a voxel volume read 2.6 % apart between 8 and 2 nm voxels with that
        mismatch, 0.4 % without it.
        """
        W = self.weights(kernel, point, rank, **rebuild)
        if self.extra_boxes is None:
            return W
        E = self.extra_weights(kernel, point, rank)
        axis = -1 if rank == 1 else 0
        if self.extra_copy is not None:
            rows = np.flatnonzero(self.extra_copy)
            if rank == 1:
                E[:, rows] = W[:, self.extra_cells[rows]]
            else:
                E[rows] = W[self.extra_cells[rows]]
        return np.concatenate([W, E], axis=axis)

    def weights(self, kernel, point, rank: int = 0, *, shape=None, radius: float = 0.0,
                pieces: int = 4, cell_shape=None) -> np.ndarray:
        """``kernel(boxes, point)`` over every unknown, the slabs as strips along their boundary lines.

        Parameters
        ----------
        kernel : callable
            ``kernel(boxes, point)``: the weight of each box (m^3/mol per unit concentration, or any
            linear functional) for an isotropic half-space (invariant under rotation about z).
        point : (float, float)
            Surface point (m).
        rank : {0, 1, 2}
            Rank of the kernel's result per box, in sample axes: 0 a scalar (n,), 1 an in-plane vector
            (2, n) (``box_kernel_lateral``), 2 a tensor (n, 3, 3) (``tensor_box_weights``).
        shape : callable, optional
            ``shape(x, y)`` (arrays, m): how the Li is distributed inside a bulk cell or slab. Cells whose
            centre lies within ``radius`` (m) of ``point`` are cut into ``pieces`` x ``pieces`` columns,
            slab strips into ``pieces`` along their length, each piece holding ``c shape / mean(shape)``.
            Under an ESM tip the Li is a layer much thinner than the tip field, so it follows the tip profile
            across a cell (``c ~ f(x)``): with cell-averaged tip data (:func:`tip_terms` ``average``) this
            puts the Li under a tip that is not at a cell centre where the profile puts it. A cell over which
            the shape is zero throughout (beyond a disk's contact) keeps its Li uniform.
        radius : float
            Distance (m) within which cells and strips are rebuilt (three cells is enough: measured).
        pieces : int
            Pieces per side of a cell (and along a strip).
        cell_shape : callable, optional
            ``cell_shape(pieces)`` (boxes (m, 6), m): a further factor on ``shape`` for each piece of the bulk
            cells only (slab strips keep ``shape``), e.g. the grains' share of a cell that a boundary trace
            cuts.
        """
        W = kernel(self.kernel_boxes(point), point)
        if shape is not None:
            self._rebuild(W, kernel, point, rank, shape, radius, pieces, cell_shape)
        if self.slab_tangent is None or rank == 0:
            return W
        nb = self.n_bulk
        if rank == 1:
            W[..., nb:] = strip_to_sample(W[..., nb:], self.slab_tangent, 1)
        else:
            W[nb:] = strip_to_sample(W[nb:], self.slab_tangent, 2)
        return W

    def _rebuild(self, W, kernel, point, rank, shape, radius, pieces, cell_shape=None):
        """Replace in ``W`` the weights of the cells (``pieces`` x ``pieces`` columns) and slab strips
        (``pieces`` along their length) within ``radius`` of ``point`` by those of Li ``c shape / mean(shape)``
        (see :meth:`weights`); slab results stay in the strips' frames."""
        nb = self.n_bulk

        def per_box(v):  # (m,) against a kernel result of this rank
            return v[None] if rank == 1 else v[:, None, None] if rank == 2 else v

        groups = [(np.arange(nb), None, (pieces, pieces))]
        if self.slab_tangent is not None:
            groups.append((np.arange(nb, self.n), self.slab_tangent, (pieces, 1)))
        for idx, tangent, (na, nc) in groups:
            own = self.boxes[idx]
            cx, cy = 0.5 * (own[:, 0] + own[:, 1]), 0.5 * (own[:, 2] + own[:, 3])
            # a cell exactly at the radius (voxel-centred tips, radius a whole number of cells) is left out
            # whatever the last bit of the tip position: two scans that put a tip 1e-24 m apart agree
            sel = np.hypot(cx - point[0], cy - point[1]) <= radius * (1 - 1e-9)
            if not sel.any():
                continue
            sub, cx, cy = own[sel], cx[sel], cy[sel]
            t = None if tangent is None else tangent[sel]
            wa, wc = (sub[:, 1] - sub[:, 0]) / na, (sub[:, 3] - sub[:, 2]) / nc
            acc, mean = 0.0, 0.0
            for a in range(na):
                for c in range(nc):
                    da = sub[:, 0] + (a + 0.5) * wa - cx  # the piece's centre from the box's, own frame
                    dc = sub[:, 2] + (c + 0.5) * wc - cy
                    if t is None:
                        px, py = cx + da, cy + dc
                    else:  # turned onto the strip's line
                        px, py = cx + da * t[:, 0] - dc * t[:, 1], cy + da * t[:, 1] + dc * t[:, 0]
                    piece = np.stack([px - wa / 2, px + wa / 2, py - wc / 2, py + wc / 2, sub[:, 4], sub[:, 5]], -1)
                    if t is not None:
                        piece = strip_boxes(piece, t, point)
                    f = shape(px, py) if t is not None or cell_shape is None else shape(px, py) * cell_shape(piece)
                    acc = acc + kernel(piece, point) * per_box(f)
                    mean = mean + f / (na * nc)
            # a profile that is zero over a whole cell (a disk tip's cells beyond its contact) leaves the cell's
            # Li as it is: no shape to follow there (0/0 before)
            live = mean > 0
            rows, acc, mean = idx[sel][live], (acc[:, live] if rank == 1 else acc[live]), mean[live]
            if rank == 1:
                W[:, rows] = acc / per_box(mean)
            else:
                W[rows] = acc / per_box(mean)


def _turned(kernel, boxes, tangent, point, rank):
    """``kernel`` over boxes given in their own frames (``tangent`` their x axes; None: sample frame)."""
    if tangent is None:
        return kernel(boxes, point)
    W = kernel(strip_boxes(boxes, tangent, point), point)
    return W if rank == 0 else strip_to_sample(W, tangent, rank)


def strip_boxes(boxes: np.ndarray, tangent: np.ndarray, point) -> np.ndarray:
    """Axis-aligned stand-ins of strips for a kernel evaluated at ``point``.

    ``boxes`` (n, 6) are strips in their own frames (x along ``tangent`` (n, 2), turned about their
    vertical centre lines); ``point`` (m) is one point (2,) or one per box (n, 2). Each box comes back
    shifted so that its point has the same offset from it, in
    sample axes, as it has from the strip in the strip's frame. A kernel invariant under rotation about
    z gives the strip's weight on the returned box; a vector or tensor result is in the strip's frame
    (:func:`strip_to_sample`).
    """
    p = np.asarray(point, float)
    px, py = p[..., 0], p[..., 1]  # one point, or one per box (shape (n, 2))
    cx, cy = 0.5 * (boxes[:, 0] + boxes[:, 1]), 0.5 * (boxes[:, 2] + boxes[:, 3])
    dx, dy = px - cx, py - cy
    q1 = dx * tangent[:, 0] + dy * tangent[:, 1]  # the point in the strip's frame
    q2 = -dx * tangent[:, 1] + dy * tangent[:, 0]
    out = boxes.copy()
    out[:, :2] += (px - q1 - cx)[:, None]
    out[:, 2:4] += (py - q2 - cy)[:, None]
    return out


def star_links(node, fa, fb, arm_a, arm_b) -> np.ndarray:
    """Conductances of links between boundary faces that meet at common nodes (cell edges or pixel corners).

    Each face reaches the node through its half path (conductance ``arm``, the same for a face in every
    link at that node); the faces around a node are joined through it, a node without resistance, so the
    star of their arms is replaced by the equivalent links ``arm_a arm_b / sum(arms at the node)`` (the
    star-mesh transform: exact for the faces, no unknown for the node). With two faces this is their half
    paths in series, ``1 / (1 / arm_a + 1 / arm_b)``. Linking every pair in series instead, where three or
    four faces meet (a triple or quadruple line), conducts more than the junction does: two vertical planes
    crossing in a brick polycrystal read 8.8e-3 (relative L2) from FiPy with each plane a cell of width
    delta at any delta, 6.6e-4 with the node at delta / h = 1/40 (validation ``fipy_reference``).

    Parameters
    ----------
    node : ndarray of int, shape (nl,), or None
        The node of each link; None (or empty): every link on its own node, its two half paths in series.
    fa, fb : ndarray of int, shape (nl,)
        The two faces of each link.
    arm_a, arm_b : ndarray, shape (nl,) or (nl, m)
        Conductance of each face's half path to the node (any units; trailing axes, e.g. z layers, allowed).
    """
    if node is None or not np.size(node):
        return arm_a * arm_b / (arm_a + arm_b)
    node = np.asarray(node, np.int64)
    key = np.concatenate([node, node])
    face = np.concatenate([fa, fb]).astype(np.int64)
    arm = np.concatenate([arm_a, arm_b])
    _, first, _ = unique_rows(np.stack([key, face], -1))  # each face once per node
    nodes, at = np.unique(key[first], return_inverse=True)
    total = np.zeros((nodes.size,) + arm.shape[1:], arm.dtype)
    np.add.at(total, at, arm[first])
    return arm_a * arm_b / total[np.searchsorted(nodes, node)]


def _along(d, t):
    """Component of vectors ``d`` (n, 2) along unit vectors ``t`` (n, 2)."""
    return d[:, 0] * t[:, 0] + d[:, 1] * t[:, 1]


def lateral_period(grid: Grid, periodic) -> list:
    """The film's period (m) along x and y where ``periodic`` says it wraps, else None (for
    :func:`trim_crossings`)."""
    return [grid.edges(a)[-1] - grid.edges(a)[0] if p else None for a, p in zip((0, 1), periodic)]


def pair_key(grains) -> np.ndarray:
    """One integer per boundary face for its (unordered) grain pair, ``grains`` (n, 2)."""
    g = np.sort(np.asarray(grains, np.int64), axis=1)
    return g[:, 0] * (int(g.max(initial=0)) + 1) + g[:, 1]


def _rectangle_overlap(ca, ta, la, wa, cb, tb, lb, wb):
    """Area (m^2) and centroid (m, (m, 2)) of the intersection of rectangles a and b (centres ``c`` (m, 2),
    unit long axes ``t`` (m, 2), half length ``l`` and half width ``w`` (m,)), per pair.

    The intersection of two convex polygons is the convex hull of the corners of each inside the other and
    of the crossings of their edges; its points are ordered by angle about their mean for the shoelace.
    """
    def corners(c, t, ln, wd):
        n = np.stack([-t[:, 1], t[:, 0]], -1)
        s = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float)  # counter-clockwise in the own frame
        return (c[:, None] + s[None, :, :1] * (ln[:, None, None] * t[:, None])
                + s[None, :, 1:] * (wd[:, None, None] * n[:, None]))

    def inside(p, c, t, ln, wd, tol):
        d = p - c[:, None]
        u = d[..., 0] * t[:, None, 0] + d[..., 1] * t[:, None, 1]
        v = -d[..., 0] * t[:, None, 1] + d[..., 1] * t[:, None, 0]
        return (np.abs(u) <= ln[:, None] * (1 + tol)) & (np.abs(v) <= wd[:, None] * (1 + tol))

    A, B = corners(ca, ta, la, wa), corners(cb, tb, lb, wb)
    tol = 1e-9
    pts = [A, B]
    ok = [inside(A, cb, tb, lb, wb, tol), inside(B, ca, ta, la, wa, tol)]
    # crossings of every edge of a with every edge of b
    a0, a1 = A, np.roll(A, -1, axis=1)
    b0, b1 = B, np.roll(B, -1, axis=1)
    da = (a1 - a0)[:, :, None]
    db = (b1 - b0)[:, None, :]
    r = (b0[:, None, :] - a0[:, :, None])
    den = da[..., 0] * db[..., 1] - da[..., 1] * db[..., 0]
    safe = np.where(np.abs(den) > 0, den, 1.0)
    s = (r[..., 0] * db[..., 1] - r[..., 1] * db[..., 0]) / safe
    u = (r[..., 0] * da[..., 1] - r[..., 1] * da[..., 0]) / safe
    hit = (np.abs(den) > 0) & (s >= -tol) & (s <= 1 + tol) & (u >= -tol) & (u <= 1 + tol)
    pts.append((a0[:, :, None] + s[..., None] * da).reshape(len(ca), 16, 2))
    ok.append(hit.reshape(len(ca), 16))
    P, V = np.concatenate(pts, 1), np.concatenate(ok, 1)
    nv = V.sum(1)
    mean = np.where(nv[:, None] > 0, (P * V[..., None]).sum(1) / np.maximum(nv, 1)[:, None], 0.0)
    ang = np.arctan2(P[..., 1] - mean[:, None, 1], P[..., 0] - mean[:, None, 0])
    ang = np.where(V, ang, -np.inf)  # left out: first in the order, on top of the first point kept
    order = np.argsort(ang, axis=1)
    P = np.take_along_axis(P, order[..., None], 1)
    V = np.take_along_axis(V, order, 1)
    first = np.argmax(V, axis=1)
    P = np.where(V[..., None], P, P[np.arange(len(P)), first][:, None])
    x, y = P[..., 0], P[..., 1]
    cross = x * np.roll(y, -1, 1) - np.roll(x, -1, 1) * y
    area = 0.5 * cross.sum(1)
    cx = ((x + np.roll(x, -1, 1)) * cross).sum(1)
    cy = ((y + np.roll(y, -1, 1)) * cross).sum(1)
    big = np.abs(area) > 1e-30
    centroid = np.where(big[:, None], np.stack([cx, cy], -1) / (6 * np.where(big, area, 1.0))[:, None], mean)
    return np.where(nv >= 3, np.abs(area), 0.0), centroid


def trim_crossings(centre, tangent, half_len, half_wid, group, layer=None, period=(None, None)):
    """Shorten the slab strips where strips of different boundaries overlap (at junctions), so that the Li of
    the overlap is counted once in the mechanics.

    Each boundary's strips tile its trace; where two boundaries meet, their strips (width delta) overlap in
    an area of about delta^2, which held the Li of both. Under a point tip at a junction that column is
    what the tip sees most: a tip on a four-grain junction read 29 % above the same junction with the
    boundaries resolved as cells (7.6 of 29.2 pm/V there came from the delta x delta column itself), and
    0.25 nm away 23 %. For each overlapping pair, one strip gives up the overlap's area from its end nearer
    the overlap: the one that ends there while the other is continued by a strip of the same direction (a
    T-junction's stem, not its bar), else the one whose end is nearer the overlap, else (a crossing of four
    grains' boundaries) the one more along y. At most a quarter of a strip's length goes at each end.

    Parameters
    ----------
    centre : ndarray, shape (n, 2)
        Strip centres (m).
    tangent : ndarray, shape (n, 2)
        Unit directions of the strips' lengths.
    half_len, half_wid : ndarray, shape (n,)
        Half length and half width (m).
    group : ndarray of int, shape (n,)
        Which boundary (grain pair) each strip belongs to; strips of one boundary are not trimmed
        against each other (they tile its trace end to end).
    layer : ndarray of int, shape (n,), optional
        Strips interact only within one layer (z cell).
    period : (float or None, float or None)
        Period (m) of a laterally periodic film along x and y (None: not periodic); strips meet across it.

    Returns
    -------
    (centre, half_len)
        The trimmed strips (new arrays).
    """
    from scipy.spatial import cKDTree

    centre = np.asarray(centre, float)
    half_len = np.asarray(half_len, float)
    n = len(centre)
    out_c, out_l = centre.copy(), half_len.copy()
    if n < 2:
        return out_c, out_l
    layer = np.zeros(n) if layer is None else np.asarray(layer, float)
    reach = 2 * np.hypot(half_len, half_wid).max()  # circumcircles that meet
    far = 10.0 * (reach + np.ptp(centre) + 1e-6)  # layers apart
    L = np.array([np.inf if v is None else float(v) for v in period])
    box = np.array([L[0], L[1], far * (layer.max() + 2)])
    low = centre.min(0)
    for k in range(2):  # a non-periodic axis: a box much wider than the strips, so nothing wraps
        if not np.isfinite(L[k]):
            box[k] = far

    def points(xy, lay):  # in [0, box), for the tree
        q = np.column_stack([xy, lay * far])
        for k in range(2):
            q[:, k] = np.mod(q[:, k], L[k]) if np.isfinite(L[k]) else q[:, k] - low[k] + reach
            q[q[:, k] >= box[k], k] = 0.0
        return q

    def nearest(d):  # a difference of positions, to its nearest image
        Lf = np.where(np.isfinite(L), L, 0.0)
        return d - Lf * np.round(d / np.where(Lf > 0, Lf, 1.0))

    pairs = cKDTree(points(centre, layer), boxsize=box).query_pairs(reach, output_type="ndarray")
    if not pairs.size:
        return out_c, out_l
    near_a, near_b = pairs[:, 0], pairs[:, 1]
    other = group[near_a] != group[near_b]  # (most pairs are neighbours along one boundary)
    a, b = near_a[other], near_b[other]
    cb = centre[a] + nearest(centre[b] - centre[a])  # b's image nearest a
    # strips of two boundaries whose circumcircles meet (the tree's reach is the largest strips')
    keep = np.hypot(*(cb - centre[a]).T) <= np.hypot(half_len[a], half_wid[a]) + np.hypot(half_len[b], half_wid[b])
    a, b, cb = a[keep], b[keep], cb[keep]
    area, cen = _rectangle_overlap(centre[a], tangent[a], half_len[a], half_wid[a],
                                   cb, tangent[b], half_len[b], half_wid[b])
    hit = area > 1e-6 * (half_wid[a] * half_wid[b])
    a, b, cb, area, cen = a[hit], b[hit], cb[hit], area[hit], cen[hit]
    if not a.size:
        return out_c, out_l

    def end_towards(i, p):  # +1 or -1: the end of strip i nearer p
        d = nearest(p - centre[i])
        return np.where(_along(d, tangent[i]) >= 0, 1.0, -1.0)

    # the strips that may continue one of the overlapping strips: those within the tree's reach of one
    # (a strip that starts where another ends has its centre within the two half lengths of the other's)
    hit_strip = np.zeros(n, bool)
    hit_strip[a] = hit_strip[b] = True
    cand = hit_strip.copy()
    cand[near_b[hit_strip[near_a]]] = True
    cand[near_a[hit_strip[near_b]]] = True
    cand = np.flatnonzero(cand)
    m = cand.size
    ends = np.concatenate([centre[cand] + half_len[cand, None] * tangent[cand],
                           centre[cand] - half_len[cand, None] * tangent[cand]])
    tree = cKDTree(points(ends, np.tile(layer[cand], 2)), boxsize=box)
    tol = 1e-3 * half_wid.min()

    def continued(i, sign):  # another strip of the same direction starts where strip i ends
        e = centre[i] + (sign * half_len[i])[:, None] * tangent[i]
        # the strip ends within tol of e (at most a few strips end at one point; 16 is ample)
        _, near = tree.query(points(e, layer[i]), k=min(16, 2 * m), distance_upper_bound=tol)
        near = near.reshape(len(i), -1)
        found = near < 2 * m
        j = cand[np.where(found, near, 0) % m]
        parallel = np.abs(tangent[j, 0] * tangent[i, None, 1] - tangent[j, 1] * tangent[i, None, 0]) < 1e-6
        return np.any(found & (j != i[:, None]) & parallel, axis=1)

    sa, sb = end_towards(a, cen), end_towards(b, cen)
    cont_a, cont_b = continued(a, sa), continued(b, sb)
    # otherwise the strip that ends nearer the overlap, then the one more along y (a four-grain junction's
    # x faces): by geometry, not by the order of the faces, so a translated film is trimmed the same way
    gap_a = half_len[a] - np.abs(_along(nearest(cen - centre[a]), tangent[a]))
    gap_b = half_len[b] - np.abs(_along(nearest(cen - cb), tangent[b]))
    tie = np.isclose(gap_a, gap_b, rtol=0, atol=1e-6 * half_wid.min())
    later = np.where(tie, np.abs(tangent[b, 1]) > np.abs(tangent[a, 1]) + 1e-9, gap_b < gap_a)
    trim_b = (cont_a & ~cont_b) | ((cont_a == cont_b) & later)
    who, side = np.where(trim_b, b, a), np.where(trim_b, sb, sa)
    cut = area / (2 * half_wid[who])
    total = np.zeros((n, 2))  # length cut at the + and - end
    np.add.at(total, (who, (side < 0).astype(int)), cut)
    total = np.minimum(total, 0.5 * half_len[:, None])  # never more than a quarter of the strip per end
    out_l = half_len - 0.5 * total.sum(1)
    out_c = centre + (0.5 * (total[:, 1] - total[:, 0]))[:, None] * tangent
    return out_c, out_l


def strip_to_sample(values: np.ndarray, tangent: np.ndarray, rank: int) -> np.ndarray:
    """Turn kernel results of strips (:func:`strip_boxes`) from the strips' frames to sample axes.

    ``rank`` 1: in-plane vectors of shape ``(2, n)`` (leading axes allowed before the 2);
    ``rank`` 2: tensors of shape ``(n, 3, 3)``, ``R W R^T``.
    """
    tx, ty = tangent[:, 0], tangent[:, 1]
    if rank == 1:
        v1, v2 = values[..., 0, :], values[..., 1, :]
        return np.stack([v1 * tx - v2 * ty, v1 * ty + v2 * tx], axis=-2)
    R = np.zeros((len(tangent), 3, 3))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = tx, -ty, ty, tx, 1.0
    return R @ values @ np.swapaxes(R, 1, 2)


def _links_to_matrix(n, la, lb, lg, diag_extra=None):
    """Symmetric conductance matrix from links ``(a_l, b_l, g_l)`` plus extra diagonal terms.

    ``la``, ``lb``, ``lg`` are lists of pieces of the link arrays; they are emptied as the pieces are
    copied into the matrix's triplets, so the links are never held twice (the 1.5 M-unknown benchmark's
    assembly peaked at 964 MB with the pieces concatenated first). The diagonal is summed with bincount, so
    the matrix is built from ``2 L + n`` triplets, not ``4 L``.
    """
    sizes = [np.size(a) for a in la]
    L = sum(sizes)
    it = np.int32 if n < 2 ** 31 - 1 else np.int64  # 32-bit indices halve the index memory
    dtype = np.result_type(float, *lg)
    rows, cols = np.empty(2 * L + n, it), np.empty(2 * L + n, it)
    data = np.empty(2 * L + n, dtype)
    diag = np.zeros(n, dtype)
    start = 0
    for size in sizes:
        a, b, g = la.pop(0), lb.pop(0), lg.pop(0)
        piece, mirror = slice(start, start + size), slice(L + start, L + start + size)
        rows[piece], cols[piece], rows[mirror], cols[mirror] = a, b, b, a
        np.negative(g, out=data[piece])
        data[mirror] = data[piece]
        for ends in (a, b):
            diag.real += np.bincount(ends, np.real(g), minlength=n)
            if np.iscomplexobj(g):
                diag.imag += np.bincount(ends, g.imag, minlength=n)
        start += size
    if diag_extra is not None:
        diag += diag_extra
    on = np.flatnonzero(diag)  # the diagonal's nonzero entries only (most bulk cells have no link)
    rows, cols, data = rows[:2 * L + on.size], cols[:2 * L + on.size], data[:2 * L + on.size]
    rows[2 * L:] = cols[2 * L:] = on
    data[2 * L:] = diag[on]
    del diag, on
    K = sp.coo_matrix((data, (rows, cols)), shape=(n, n))
    del data, rows, cols
    K = K.tocsr()
    K.sum_duplicates()
    return K


def assemble(
    grid: Grid,
    D: np.ndarray,
    *,
    periodic: tuple[bool, bool] = (False, False),
    bottom: str = "blocking",
    boundaries: BoundaryNetwork | None = None,
    D_gb: float | None = None,
    gb_width: float | None = None,
    omega: float | None = None,
    boundary_position: np.ndarray | None = None,
) -> DiffusionSystem:
    """Assemble the finite-volume diffusion operator.

    Parameters
    ----------
    grid : Grid
        The cells; z = ``grid.origin[2]`` is the sample surface.
    D : ndarray, shape (nx, ny, nz, 3)
        Diagonal sample-frame diffusivities ``(D_xx, D_yy, D_zz)`` per cell, m^2/s.
    periodic : (bool, bool)
        Periodic in x and y; otherwise the sides are no-flux.
    bottom : {"blocking", "reservoir"}
        Bottom of the film: no flux, or held at delta_c = 0 (a Li reservoir).
    boundaries : BoundaryNetwork, optional
        Grain-boundary faces of the (columnar) label map, extruded through all layers.
    D_gb : float or ndarray, shape (n_faces,)
        Boundary diffusivity (m^2/s), one value or one per face (boundary classes); required with ``boundaries``.
    gb_width : float
        Boundary width delta (m); required with ``boundaries``.
    omega : float, optional
        Angular frequency (rad/s) of a frequency-domain solve. With boundaries, the exchange between a
        slab and the bulk column beside it then accounts for the bulk boundary layer of thickness
        ``sqrt(D_n / omega)`` that grows out of the slab sideways (:func:`slab_exchange`: the cells beside
        the slab take what the half-space takes, ``A D_n q`` per unit slab value, ``q = sqrt(i omega / D_n)``;
        the plain two-point conductance where the cells resolve the layer), and the mechanics places that
        Li across the cell as the layer's profile (:func:`layer_segments`, ``DiffusionSystem.extra_boxes``).
        ``K`` is then complex and valid at that frequency only. The unresolved part of that exchange
        (``theta = 1 - Re tanh(qa)/qa``) goes through the boundary's true area ``w A`` rather than the
        staircase face's ``A``: the conductance is ``A (1 - theta (1 - w)) / r``. A thin layer beside an
        inclined boundary exchanges through the boundary's area; the staircase has ``1 / w`` times more
        (measured: the response on a boundary turned by 45 degrees in a film whose grains are isotropic
        in-plane came out 2.8 % above the same boundary along x without it, 0.1 % with it).
    boundary_position : ndarray, shape (n_faces, 2), optional
        Where each boundary face really is (m, grid frame), e.g. the nearest point of the exact
        boundary line to the face centre; default ``boundaries.position`` (:func:`place_on_boundaries`),
        else the face centre. A staircase puts faces up to half a pixel off the line; the slab's
        surface contact (tip field), its mechanics strip and its bulk-layer boxes are placed at the
        given point instead (the conductances stay those of the staircase).

    With ``boundaries.normal`` each slab's mechanics box is a strip along its boundary line (length
    ``w h``, width ``delta``; ``DiffusionSystem.slab_tangent``) rather than a box along the face.

    Returns
    -------
    DiffusionSystem
    """
    nx, ny, nz = grid.shape
    D = np.asarray(D, dtype=float)
    if D.shape != (nx, ny, nz, 3):
        raise ValueError(f"D: shape {D.shape} does not match grid {grid.shape} + (3,)")
    if bottom not in ("blocking", "reservoir"):
        raise ValueError(f"bottom: got {bottom!r}; allowed 'blocking' or 'reservoir'")
    if not np.all(np.isfinite(D)) or np.any(D <= 0):
        raise ValueError("D: diffusivities must be finite and positive (m^2/s)")
    if boundaries is not None and D_gb is not None and (not np.all(np.isfinite(D_gb)) or np.any(np.asarray(D_gb) <= 0)):
        raise ValueError("D_gb: boundary diffusivities must be finite and positive (m^2/s)")
    hx, hy, hz = grid.dx, grid.dy, grid.dz
    full = (nx, ny, nz)
    nb = nx * ny * nz
    idx = np.arange(nb, dtype=np.int32 if nb < 2 ** 31 - 1 else np.int64).reshape(full)
    # half-cell resistances per unit area along each axis (cell centres stay where they are)
    half = (hx[:, None, None], hy[None, :, None], hz[None, None, :])
    res = [np.broadcast_to(0.5 * half[a], full) / np.maximum(D[..., a], 1e-300) for a in range(3)]

    # Boundary slabs take a width w*delta/2 out of each neighbouring column: effective column widths
    have_gb = boundaries is not None and boundaries.n_faces > 0
    wx = np.broadcast_to(hx[:, None], (nx, ny)).copy()
    wy = np.broadcast_to(hy[None, :], (nx, ny)).copy()
    gb_x = np.zeros((nx, ny), bool)  # x-face between (i, j) and (i+1, j) is a boundary
    gb_y = np.zeros((nx, ny), bool)
    if have_gb:
        if D_gb is None or gb_width is None:
            raise ValueError("D_gb and gb_width are required with boundaries")
        ax, w = boundaries.axis, boundaries.weight
        li, lj = boundaries.low[:, 0], boundaries.low[:, 1]
        hi_, hj = boundaries.high[:, 0], boundaries.high[:, 1]
        delta = float(gb_width)
        dw = delta * w  # effective slab width (area-corrected for staircases)
        h_lo = np.where(ax == 0, hx[li], hy[lj])  # normal widths of the two cells
        h_hi = np.where(ax == 0, hx[hi_], hy[hj])
        diagonal = ax >= 2  # a segment between pixels that touch at a corner (place_on_boundaries)
        if diagonal.any():
            if boundaries.normal is None:
                raise ValueError("boundaries: diagonal faces need their boundary normals")
            nd = np.abs(np.asarray(boundaries.normal, float))
            # twice the distance from each pixel's centre to the segment's line through the corner
            h_lo = np.where(diagonal, nd[:, 0] * hx[li] + nd[:, 1] * hy[lj], h_lo)
            h_hi = np.where(diagonal, nd[:, 0] * hx[hi_] + nd[:, 1] * hy[hj], h_hi)
        if np.any(dw >= 0.5 * np.minimum(h_lo, h_hi)):
            raise ValueError(f"gb_width: {delta:g} m must be smaller than half the pixel size")
        gb_x[li[ax == 0], lj[ax == 0]] = True
        gb_y[li[ax == 1], lj[ax == 1]] = True
        for sel, target in ((ax == 0, wx), (ax == 1, wy)):
            np.subtract.at(target, (li[sel], lj[sel]), 0.5 * dw[sel])
            np.subtract.at(target, (hi_[sel], hj[sel]), 0.5 * dw[sel])
    hz3 = hz[None, None, :]
    area = (np.broadcast_to(wy[:, :, None] * hz3, full), np.broadcast_to(wx[:, :, None] * hz3, full),
            np.broadcast_to((wx * wy)[:, :, None], full))

    la, lb, lg = [], [], []
    for a, blocked in ((0, gb_x), (1, gb_y), (2, None)):
        n_a = full[a]
        per = periodic[a] if a < 2 else False
        lo = np.arange(n_a if per else n_a - 1)
        hi = (lo + 1) % n_a
        face_area = 0.5 * (np.take(area[a], lo, axis=a) + np.take(area[a], hi, axis=a))
        g = face_area / (np.take(res[a], lo, axis=a) + np.take(res[a], hi, axis=a))
        if blocked is not None:  # flux across a boundary face goes through the slab unknown instead
            g = np.where(np.take(blocked, lo, axis=a)[..., None], 0.0, g)
        la.append(np.take(idx, lo, axis=a).ravel())
        lb.append(np.take(idx, hi, axis=a).ravel())
        lg.append(g.ravel())

    diag = np.zeros(nb)
    if bottom == "reservoir":
        diag[idx[:, :, -1].ravel()] += (area[2][:, :, -1] / res[2][:, :, -1]).ravel()

    volume = (area[2] * hz3).ravel()
    xe, ye, ze = grid.edges(0), grid.edges(1), grid.edges(2)
    xc, yc = grid.centers(0), grid.centers(1)
    # mechanics boxes of the columns, shrunk on the sides where a slab sits
    bx0 = np.broadcast_to(xe[:-1, None], (nx, ny)).copy()
    bx1 = np.broadcast_to(xe[1:, None], (nx, ny)).copy()
    by0 = np.broadcast_to(ye[None, :-1], (nx, ny)).copy()
    by1 = np.broadcast_to(ye[None, 1:], (nx, ny)).copy()
    if have_gb:
        # where each slab sits: its face centre, or the given point on the exact boundary
        fx = np.where(ax == 0, xe[li + 1], xc[li])
        fy = np.where(ax == 0, yc[lj], ye[lj + 1])
        if boundary_position is None:
            boundary_position = boundaries.position
        stay = np.ones(ax.size, bool)
        if boundary_position is not None:
            pos = np.asarray(boundary_position, float)
            if pos.shape != (ax.size, 2):
                raise ValueError(f"boundary_position: shape {pos.shape}; expected ({ax.size}, 2)")
            stay = stays_on_face(np.stack([pos[:, 0] - fx, pos[:, 1] - fy], -1), dw) & ~diagonal
            fx, fy = pos[:, 0], pos[:, 1]
        # the columns beside a slab that stays on its face give up its width there; where it moved onto the
        # boundary they keep their boxes: a gap at the face and bulk Li doubled under the strip put a hole
        # up to half a column from the boundary (a tip on a 26.6 deg boundary in grains with fast vertical
        # diffusion: -6 % at 2 nm against 8 and 4 nm; 0.1 % without)
        for sel, lo_edge, hi_edge in ((stay & (ax == 0), bx1, bx0), (stay & (ax == 1), by1, by0)):
            np.subtract.at(lo_edge, (li[sel], lj[sel]), 0.5 * dw[sel])
            np.add.at(hi_edge, (hi_[sel], hj[sel]), 0.5 * dw[sel])
    col = lambda v: np.repeat(v.ravel(), nz)  # noqa: E731
    lay = lambda v: np.tile(v, nx * ny)  # noqa: E731
    boxes = [np.stack([col(bx0), col(bx1), col(by0), col(by1), lay(ze[:-1]), lay(ze[1:])], -1)]
    top_index = [idx[:, :, 0].ravel()]
    top_xy = [np.stack(np.meshgrid(xc, yc, indexing="ij"), -1).reshape(-1, 2)]
    top_g = [(area[2][:, :, 0] / res[2][:, :, 0]).ravel()]
    top_a = [area[2][:, :, 0].ravel()]
    n = nb

    extra_boxes = extra_map = extra_cells = slab_tangent = extra_tangent = extra_copy = None
    if have_gb:
        nf = boundaries.n_faces
        n = nb + nf * nz
        Dgb = np.broadcast_to(np.asarray(D_gb, dtype=float), (nf,))
        gidx = nb + np.arange(nf * nz).reshape(nf, nz)
        h_t = np.where(ax == 0, hy[lj], hx[li])  # tangential (in-plane) width of the face
        face_area = h_t[:, None] * hz[None, :]  # staircase face area per layer
        volume = np.concatenate([volume, (dw[:, None] * face_area).ravel()])
        # exchange with the bulk on both sides: centre to slab edge in the bulk, then half the slab
        layers = []
        for side, (ci, cj, hn) in ((-1, (li, lj, h_lo)), (1, (hi_, hj, h_hi))):
            Dn = np.where(ax[:, None] == 0, D[ci, cj, :, 0], D[ci, cj, :, 1])
            if diagonal.any():
                Dnn = nd[:, :1] ** 2 * D[ci, cj, :, 0] + nd[:, 1:] ** 2 * D[ci, cj, :, 1]  # n.D.n
                Dn = np.where(diagonal[:, None], Dnn, Dn)
            a_half = (0.5 * (hn - dw))[:, None]
            r, theta = slab_exchange(Dn, a_half, (0.5 * dw / Dgb)[:, None], omega, hn[:, None])
            g_ex = face_area / r
            if omega:
                # the part of the exchange through a bulk layer the column does not resolve goes through the
                # boundary's true area w A, not the staircase's A
                g_ex = g_ex * (1.0 - theta * (1.0 - w[:, None]))
            if diagonal.any():  # a diagonal face exchanges through the segment's own area w A
                g_ex = np.where(diagonal[:, None], face_area * w[:, None] / r, g_ex)
            if omega:
                edges, share = layer_segments(Dn, a_half, omega, hn[:, None])
                layers.append((side, idx[ci, cj, :].ravel(), g_ex.ravel(), edges.reshape(-1, edges.shape[-1]),
                               share.reshape(-1, share.shape[-1])))
            la.append(idx[ci, cj, :].ravel())
            lb.append(gidx.ravel())
            lg.append(g_ex.ravel())
        # vertical conduction inside the slab
        if nz > 1:
            dzc = 0.5 * (hz[:-1] + hz[1:])
            la.append(gidx[:, :-1].ravel())
            lb.append(gidx[:, 1:].ravel())
            lg.append(((Dgb * dw * h_t)[:, None] / dzc[None, :]).ravel())
        # lateral conduction along the staircase (through pixel corners)
        if boundaries.link_faces.size:
            fa, fb = boundaries.link_faces[:, 0], boundaries.link_faces[:, 1]
            half = boundaries.link_half
            if half is None:
                half = np.repeat(0.5 * boundaries.link_length[:, None], 2, axis=1)
            # each face's half path (its own D_gb and staircase factor 1 / w) to the corner, joined there
            arm_a, arm_b = delta * Dgb[fa] / (half[:, 0] * w[fa]), delta * Dgb[fb] / (half[:, 1] * w[fb])
            gl = star_links(boundaries.link_node, fa, fb, arm_a, arm_b)
            gl = gl[:, None] * hz[None, :]
            la.append(gidx[fa].ravel())
            lb.append(gidx[fb].ravel())
            lg.append(gl.ravel())
        diag = np.concatenate([diag, np.zeros(nf * nz)])
        if bottom == "reservoir":
            diag[gidx[:, -1]] += Dgb * dw * h_t / (0.5 * hz[-1])
        # surface contact of each slab
        top_index.append(gidx[:, 0])
        top_xy.append(np.stack([fx, fy], -1))
        top_g.append(Dgb * dw * h_t / (0.5 * hz[0]))
        top_a.append(dw * h_t)
        # geometry of the slabs for the mechanics: strips along the boundary line, in their own frames
        half_t = 0.5 * h_t
        rep = lambda v: np.repeat(v, nz)  # noqa: E731
        tile = lambda v: np.tile(v, nf)  # noqa: E731
        if boundaries.normal is None:  # along the face
            tangent = np.stack([(ax == 1).astype(float), (ax == 0).astype(float)], -1)
        else:
            nrm = np.asarray(boundaries.normal, float)
            tangent = np.stack([-nrm[:, 1], nrm[:, 0]], -1)
        slab_tangent = np.repeat(tangent, nz, axis=0)
        sw = np.full(nf, 0.5 * delta)  # half width across
        # half length along; where two boundaries' strips overlap (junctions) the overlap is counted once
        mxy, sl = trim_crossings(np.stack([fx, fy], -1), tangent, w * half_t, sw, pair_key(boundaries.grains),
                                 period=lateral_period(grid, periodic))
        mx, my = mxy[:, 0], mxy[:, 1]
        boxes.append(np.stack([rep(mx - sl), rep(mx + sl), rep(my - sw), rep(my + sw), tile(ze[:-1]), tile(ze[1:])],
                              -1))
        if layers:  # each (face, layer): the face's rectangle in the other two axes
            is_x = np.repeat(ax != 1, nz)  # a diagonal face's low pixel is on its low x side
            across, along = rep(np.where(ax != 1, fx, fy)), rep(np.where(ax != 1, fy, fx))
            rect = np.stack([along - rep(half_t), along + rep(half_t), tile(ze[:-1]), tile(ze[1:])], -1)
            strips = (np.ones(nf * nz, bool), np.stack([rep(mx), rep(my)], -1), slab_tangent,
                      np.stack([rep(sl), rep(sw)], -1))
            extra_boxes, extra_map, extra_cells, extra_tangent, extra_copy = layer_boxes(
                layers, np.where(is_x, 0, 1), across, rect, rep(0.5 * dw), gidx.ravel(),
                face_area.ravel(), boxes[0], volume, n, strips=strips,
                keep=near_surface(rect[:, 2] - ze[0], rep(np.maximum(h_lo, h_hi))))

    K = _links_to_matrix(n, la, lb, lg, diag)  # empties the lists
    return DiffusionSystem(K, volume, np.concatenate(top_index), np.concatenate(top_xy),
                           np.concatenate(top_g), np.concatenate(boxes), nb, np.concatenate(top_a),
                           extra_boxes, extra_map, extra_cells, slab_tangent, extra_tangent=extra_tangent,
                           extra_copy=extra_copy)


def stays_on_face(shift, dw) -> np.ndarray:
    """Whether each slab, moved by ``shift`` (m, (n, 2)) from its face onto its boundary, still sits on the
    face: by at most a quarter of its width ``dw`` (m). The cells beside such a slab give up its width in
    the mechanics; beside a moved one they keep their boxes (a gap at the face and bulk Li doubled under
    the strip would put a hole up to half a cell from the boundary)."""
    return np.hypot(shift[:, 0], shift[:, 1]) <= 0.25 * np.asarray(dw)


def slab_exchange(Dn, a, r_slab, omega, pitch=None):
    """Resistance (per unit area, s/m) between a bulk cell's centre and a boundary slab's centre.

    ``a`` (m) is the bulk distance from the cell centre to the slab's edge, ``Dn`` the cell's diffusivity
    normal to the face, ``r_slab = (w delta / 2) / D_gb`` the slab's own half, ``pitch`` (m, default ``2 a``)
    the cells' width along the normal. Static: ``a / D_n + r_slab``.

    In the frequency domain (``omega`` > 0) the bulk part is chosen so that the cells beside the slab take
    from it what the bulk half-space takes from a plane at the slab's value (1-D): ``1 / (D_n q) - 1 / Y``,
    ``q = sqrt(i omega / D_n)``, where ``Y`` is the input admittance (per unit area) of the chain of cells
    along the normal: the first of width ``a + pitch / 2`` from the slab's edge, the rest of width
    ``pitch``, each storing ``i omega`` times its width and linked by ``D_n / pitch``. A uniform chain's is
    ``(s + sqrt(s^2 + 4 s g)) / 2`` (``s = i omega pitch``, ``g = D_n / pitch``). It is ``a / D_n`` where the
    cells resolve the bulk layer (``|q a| << 1``; below 1e-4 that limit is taken) and ``1 / (D_n q)`` where
    the layer is much thinner than a cell. The exact half-column admittance ``tanh(q a) / (D_n q)`` used
    before is exact only between the face and the cell's centre value; with the cell's mean in its place it
    delivered 0.74-0.94 of the exact Li where a cell is 2-8 decay lengths wide, and the film's Li beside a
    plane was 8-13 % off finite elements at 1 kHz (validation ``gb_fem``: now within 0.7 %).

    Returns
    -------
    (r, theta)
        ``theta = 1 - Re tanh(qa)/qa``, the share of the exchange through a bulk layer the column does not
        resolve (None without ``omega``): it goes through the boundary's true area (:func:`assemble`).
    """
    Dn = np.maximum(Dn, 1e-300)
    if not omega:
        return a / Dn + r_slab, None
    q = np.sqrt(1j * omega / Dn)
    qa = q * a
    # tanh(qa) / qa, written to stay finite for |qa| >> 1 (tanh -> 1)
    th = np.where(qa.real > 20, 1.0 + 0j, np.tanh(np.where(qa.real > 20, 0, qa)))
    theta = np.clip(1.0 - (th / qa).real, 0.0, 1.0)
    pitch = 2 * a if pitch is None else pitch
    s_rest, g_rest = 1j * omega * pitch, Dn / pitch
    y_rest = 0.5 * (s_rest + np.sqrt(s_rest * s_rest + 4 * s_rest * g_rest))
    y_first = 1j * omega * (a + 0.5 * pitch) + 1.0 / (1.0 / g_rest + 1.0 / y_rest)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # the two terms cancel to a / D_n as q a -> 0 (relative error ~ |q a| below the switch)
        r = np.where(np.abs(qa) < 1e-4, a / Dn + 0j, 1.0 / (Dn * q) - 1.0 / y_first)
    return r + r_slab, theta


#: Edges of the pieces that hold the Li beside a slab, as fractions of ``min(4 / Re q, cell width)``
#: (:func:`layer_segments`). At 1 kHz a point tip on a boundary read -28, -18 % (8, 4 nm cells) with one
#: piece and the cell's mean taken out of it, -5.8, -2.1 % with three and -5.2, -1.6 % with these four
#: against the resolved bicrystal; with the rest of the cell's mean taken out instead, -0.6, -1.7 %.
LAYER_PIECES = np.array([0.0, 0.05, 0.15, 0.4, 1.0])


def layer_segments(Dn, a, omega, pitch=None):
    """Where the Li a slab exchanges with the bulk cell beside it sits in that cell (frequency domain).

    Across the cell (width ``W = a + pitch / 2`` from the slab's edge, ``a`` and ``pitch`` as in
    :func:`slab_exchange`) the bulk profile is the cell's mean plus the 1-D layer ``e^(-q x)`` less its
    mean ``m`` over the cell (``q = sqrt(i omega / D_n)``), ``c_cell + P (e^(-qx) - m)``, with the amplitude
    that carries the exchanged flux, ``P = g (c_slab - c_cell) / (A D_n q)``: the cell's Li stays the cell's,
    the profile moves it towards the slab. That is a linear profile where the cells resolve the layer and
    the whole exchanged Li within a few ``1 / Re q`` of the slab where the layer is much thinner than a
    cell. Pieces from the slab's edge out to ``X = min(4 / Re q, W)`` (``LAYER_PIECES``) hold
    ``P (e^(-qx) - e_t)``, ``e_t`` the mean of ``e^(-qx)`` over the rest of the cell ``[X, W]`` (its value at
    ``W`` where ``X = W``), and a negative copy of the cell removes their sum from it evenly: the cell then
    holds the profile exactly on every piece and its mean on ``[X, W]``. (With ``m`` in place of ``e_t`` the
    copy took ``m X`` of the Li, 7 % at 8 nm and 350 kHz, back out of the pieces; a tip 6 nm beside a plane
    inclined in depth read 0.95 % apart between 8, 4 and 2 nm, 0.36 % before.)

    Returns
    -------
    (edges, share)
        ``edges`` (..., K + 1), m from the slab's edge; ``share`` (..., K), s: the Li of piece ``k`` is
        ``share[k] g (c_slab - c_cell)`` (mol, ``g`` the exchange conductance in m^3/s); the copy removes
        ``sum(share) g (c_slab - c_cell)``.
    """
    Dn = np.maximum(np.asarray(Dn, float), 1e-300)
    a = np.broadcast_to(a, Dn.shape)
    width = np.broadcast_to(2 * a if pitch is None else a + 0.5 * np.asarray(pitch), Dn.shape)[..., None]
    q = np.sqrt(1j * omega / Dn)[..., None]
    X = np.minimum(4.0 / q.real, width)
    edges = X * LAYER_PIECES
    rest = width - X
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.exp(-q * X) * np.where(rest > 0, -np.expm1(-q * rest) / (q * rest), 1.0)  # mean over [X, W]
    dx = np.diff(edges, axis=-1)
    piece = np.exp(-q * edges[..., :-1]) * -np.expm1(-q * dx) / q - tail * dx  # integral of e^(-qx) - e_t
    return edges, piece / (Dn[..., None] * q)


#: Pieces of bulk Li beside a slab are kept for faces that start less than this many cell pitches below the
#: surface; deeper, the cell's Li stays uniform (a lateral shift of at most a pitch ``h`` seen from a depth
#: ``z`` changes that Li's weight by about ``(h / z)^2 / 8``, 0.2 % there). Pieces at every depth put the
#: 1 M-cell benchmark volume at 1086 MB.
LAYER_DEPTH = 8.0


def near_surface(depth, pitch):
    """Which slab faces get pieces of bulk Li (:func:`layer_boxes` ``keep``): those starting ``depth`` (m) below
    the surface less than ``LAYER_DEPTH`` times their cells' ``pitch`` (m)."""
    return np.asarray(depth) < LAYER_DEPTH * np.asarray(pitch)


def layer_boxes(layers, axis, pos, rect, half_dw, slab, area, bulk_boxes, volume, n, strips=None,
                keep=None):
    """Boxes and linear map of the bulk Li beside the slabs, placed as :func:`layer_segments` finds it
    (see ``DiffusionSystem.extra_boxes``).

    Each piece ``k`` holds ``share_k g (c_slab - c_cell)`` in a box of the face's area between ``edges_k`` and
    ``edges_(k+1)`` from the slab's edge; their sum is removed from the cell's own box (a negative copy).

    Parameters
    ----------
    layers : list of (side, cells, g, edges, share)
        Per side of the slabs (-1 low, +1 high), per slab unknown: the bulk cell (unknown index), the
        exchange conductance (m^3/s), and ``edges`` (m, K + 1) and ``share`` (m, K) of :func:`layer_segments`.
    axis : ndarray of int
        Axis the face is normal to, per slab unknown.
    pos : ndarray
        Coordinate (m) of the face along ``axis``.
    rect : ndarray, shape (m, 4)
        Extent (m) of the face along the two other axes, in axis order.
    half_dw : ndarray
        Half the slab's width (m).
    slab, area : ndarray
        Slab unknown index and face area (m^2).
    strips : (ndarray, ndarray, ndarray, ndarray), optional
        ``(mask, centre, tangent, half_size)`` of slabs that are strips along a boundary trace (``mask`` (m,)
        bool; their strip centres (m, 2), tangents (m, 2) and half length and width (m, 2), m). Their pieces
        are strips too, beside the slab strip on the side of their cell, as long as it, their widths scaled
        so that each holds its Li at the same concentration (the face area over the strip's length and
        height).

    Returns
    -------
    (boxes, map, cells, tangent, copy)
        ``tangent`` (per box, 2): the direction of each box's own x axis (``(1, 0)``: axis-aligned),
        as ``DiffusionSystem.extra_tangent``; ``copy``: which boxes are the negative copies of their cell.
    """
    if keep is not None:
        axis, pos, rect, half_dw, slab, area = (np.asarray(v)[keep] for v in (axis, pos, rect, half_dw, slab, area))
        layers = [(side, cell[keep], g[keep], edges[keep], share[keep]) for side, cell, g, edges, share in layers]
        if strips is not None:
            strips = tuple(np.asarray(v)[keep] for v in strips)
    m = slab.size
    k_n = layers[0][4].shape[1] if layers else 0
    per = (k_n + 1) * m  # per side: the pieces, then the cells' copies
    total = per * len(layers)
    it = np.int32 if max(n, 2 * total) < 2 ** 31 - 1 else np.int64
    # the outputs, written in place (lists of pieces concatenated held them twice)
    out_boxes, out_tan = np.empty((total, 6)), np.empty((total, 2))
    out_cells = np.empty(total, np.result_type(*[np.asarray(lay[1]).dtype for lay in layers]) if layers else int)
    out_copy = np.zeros(total, bool)
    cols, vals = np.empty((total, 2), it), np.empty((total, 2), complex)  # each row: (cell, slab), sorted
    others = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    rows = np.arange(m)
    if strips is not None:
        mask, centre, tan, half = strips
        frame_y = np.stack([-tan[:, 1], tan[:, 0]], -1)  # the strip frame's y axis
        facing = np.sign(np.take_along_axis(frame_y, np.minimum(axis, 1)[:, None], 1))
        scale = area / (2 * half[:, 0] * (rect[:, 3] - rect[:, 2]))  # the face's width across per unit strip width
    for j, (side, cell, g, edges, share) in enumerate(layers):
        base = j * per
        cop = slice(base + k_n * m, base + per)
        edge = pos + side * half_dw
        moved = 0.0
        for k in range(k_n):
            lay = slice(base + k * m, base + (k + 1) * m)
            coef = share[:, k] * g  # mol per unit (c_slab - c_cell)
            moved = moved + coef
            across = np.sort(np.stack([edge + side * edges[:, k], edge + side * edges[:, k + 1]]), axis=0)
            layer = out_boxes[lay]
            layer[rows, 2 * axis] = across[0]
            layer[rows, 2 * axis + 1] = across[1]
            for t in range(2):
                layer[rows, 2 * others[:, t]] = rect[:, 2 * t]
                layer[rows, 2 * others[:, t] + 1] = rect[:, 2 * t + 1]
            out_tan[lay] = (1.0, 0.0)
            if strips is not None:
                lo, wid = scale * edges[:, k], 0.5 * scale * (edges[:, k + 1] - edges[:, k])
                mid = centre + (side * facing * (half[:, 1:] + (lo + wid)[:, None])) * frame_y
                strip = np.stack([mid[:, 0] - half[:, 0], mid[:, 0] + half[:, 0], mid[:, 1] - wid, mid[:, 1] + wid,
                                  layer[:, 4], layer[:, 5]], -1)
                layer[mask] = strip[mask]
                out_tan[lay][mask] = tan[mask]
            out_cells[lay] = cell
            conc = coef / (area * (edges[:, k + 1] - edges[:, k]))
            cols[lay, 0], cols[lay, 1] = cell, slab
            vals[lay, 0], vals[lay, 1] = -conc, conc
        out_boxes[cop] = bulk_boxes[cell]
        out_tan[cop] = (1.0, 0.0)
        out_cells[cop] = cell
        out_copy[cop] = True
        conc_cell = moved / volume[cell]
        cols[cop, 0], cols[cop, 1] = cell, slab
        vals[cop, 0], vals[cop, 1] = conc_cell, -conc_cell
    # rows with cell > slab never occur (slab unknowns follow the bulk), so each row's columns are sorted
    M = sp.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, 2 * total + 1, 2, dtype=it)), shape=(total, n))
    return out_boxes, M, out_cells, out_tan, out_copy
