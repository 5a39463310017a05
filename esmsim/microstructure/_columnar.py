"""Columnar thin-film microstructure: a 2-D Voronoi tessellation extruded through the film.

The grain boundaries are vertical planes; in the voxel model they lie on the
faces between pixels of different grains. Ground truth (seeds, exact distance
to the nearest boundary plane, boundary normals) comes from the tessellation
itself, not from the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.spatial import cKDTree

from .._arrays import unique_rows
from .._errors import ParameterError
from ._grid import Grid
from ._orientations import GrainOrientations, random_quaternions, recorded_seed
from ._symmetry import quat_multiply
from ._tessellation import _lift, bisector_point, drop_empty, fit_power_diagram, power_labels

__all__ = ["ColumnarMicrostructure", "columnar_voronoi", "columnar_laguerre", "columnar_seeded",
           "columnar_from_labels", "fibre_quaternions", "bunge_to_quaternions"]


SEGMENT_CANDIDATES = 24  # seeds tried first for each boundary segment (ColumnarMicrostructure.boundary_segment)


@dataclass(frozen=True, eq=False)
class ColumnarMicrostructure(GrainOrientations):
    """A columnar film: one grain label per surface pixel, constant through the thickness.

    Attributes
    ----------
    labels : ndarray of int, shape (nx, ny)
        Grain id (0 .. n_grains-1) of each column; axis 0 is x, axis 1 is y.
    spacing : tuple of float
        Pixel size ``(hx, hy)`` in m.
    thickness : float
        Film thickness in m.
    quaternions : ndarray, shape (n_grains, 4)
        Scalar-first unit quaternions of the crystal -> sample rotation of each grain.
    seeds : ndarray, shape (n_grains, 2), or None
        Voronoi seed positions (m); None for an imported label image, whose
        boundary normals and distances are then measured from the labels.
    periodic : bool
        Whether the tessellation (and labels) are periodic in x and y.
    recipe : dict
        The arguments that generated it (including ``rng`` seed when an int).
    weights : ndarray, shape (n_grains,), or None
        Power-diagram (Laguerre) weights in m^2; None for a Voronoi tessellation.
        A point belongs to the grain minimising ``|x - seed|^2 - weight``.
    """

    labels: np.ndarray
    spacing: tuple[float, float]
    thickness: float
    quaternions: np.ndarray
    seeds: np.ndarray | None
    periodic: bool = True
    recipe: dict = field(default_factory=dict)
    weights: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.labels.shape)

    @property
    def extent(self) -> tuple[float, float]:
        """Lateral size ``(Lx, Ly)`` in m."""
        return (self.labels.shape[0] * self.spacing[0], self.labels.shape[1] * self.spacing[1])

    def pixel_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)`` in m, 1-D each."""
        return ((np.arange(self.shape[0]) + 0.5) * self.spacing[0], (np.arange(self.shape[1]) + 0.5) * self.spacing[1])

    def _displacement(self, d: np.ndarray) -> np.ndarray:
        if self.periodic:
            L = np.asarray(self.extent)
            d = d - L * np.round(d / L)
        return d

    def boundary_normal(self, g1: np.ndarray, g2: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
        """Unit in-plane normal of the boundary plane between grains ``g1`` and ``g2``, shape (..., 2).

        From the Voronoi seeds when there are seeds (exact); otherwise the
        normal of the straight line fitted (principal axes) through the centres
        of the pixel faces the two grains share.

        In a periodic film two grains can meet through seed images other than the nearest pair (seeds about
        half a period apart), and through more than one pair. Give ``points`` (m, shape (..., 2), on or next
        to the boundary, e.g. the centres of the faces) to take the images nearest to each point, as
        :meth:`boundary_point` does; without them the images nearest to each other are used.
        """
        g1, g2 = np.asarray(g1), np.asarray(g2)
        if self.seeds is not None:
            if points is None:
                d = self._displacement(self.seeds[g2] - self.seeds[g1])
            else:
                p = np.asarray(points, float)
                d = self._displacement(self.seeds[g2] - p) - self._displacement(self.seeds[g1] - p)
            return d / np.linalg.norm(d, axis=-1, keepdims=True)
        table = self._fitted_normals
        return table[g1, g2]

    def boundary_point(self, g1: np.ndarray, g2: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The point of the exact boundary line between ``g1`` and ``g2`` nearest to each of ``points`` (m).

        The power bisector ``|x - s1|^2 - w1 = |x - s2|^2 - w2`` of the two seeds (minimum images next to
        the point in a periodic film). Points come back unchanged for a film without seeds.
        """
        if self.seeds is None:
            return np.array(points, float)
        return bisector_point(self.seeds, self.weights, self._displacement, g1, g2, points)

    def boundary_segment(self, g1: np.ndarray, g2: np.ndarray, points: np.ndarray):
        """The exact boundary segment between ``g1`` and ``g2`` that passes next to each of ``points``.

        The power bisector of the two seeds' images nearest to each point (as in :meth:`boundary_point`),
        cut by every other seed image (and, in a film that is not periodic, by the film's edges): the
        edge the two cells share.

        Parameters
        ----------
        g1, g2 : array_like of int, shape (n,)
            Grain ids.
        points : array_like, shape (n, 2)
            Points (m) on or next to the boundary, e.g. the centres of the pixel faces between the grains.

        Returns
        -------
        centre : ndarray, shape (n, 2)
            Midpoint (m) of the segment, the image nearest to the point in a periodic film.
        tangent : ndarray, shape (n, 2)
            Unit direction of the segment: the normal (:meth:`boundary_normal`) turned by +90 degrees.
        length : ndarray, shape (n,)
            Length (m); 0 where the two cells do not share an edge there (pixel neighbours only).

        Raises
        ------
        ValueError
            For a film without seeds (an imported label image): it has no exact boundary.
        """
        if self.seeds is None:
            raise ValueError("boundary_segment: this film has no seeds (imported labels), so no exact boundaries")
        g1, g2 = np.asarray(g1).ravel(), np.asarray(g2).ravel()
        p = np.asarray(points, float).reshape(-1, 2)
        on = self.boundary_point(g1, g2, p)
        s1 = on + self._displacement(self.seeds[g1] - on)  # the images nearest to the point
        s2 = on + self._displacement(self.seeds[g2] - on)
        d = s2 - s1
        normal = d / np.linalg.norm(d, axis=-1, keepdims=True)
        tangent = np.stack([-normal[:, 1], normal[:, 0]], -1)
        centre, length = on.copy(), np.zeros(len(p))
        if not len(p):
            return centre, tangent, length
        w = np.zeros(self.n_grains) if self.weights is None else np.asarray(self.weights, float)
        # one segment per (grain pair, image offset): clip it once, with every seed image
        key = np.concatenate([np.stack([g1, g2], -1), np.round(d / (1e-3 * min(self.spacing))).astype(np.int64)], 1)
        _, first, group = unique_rows(key)
        # the seed images nearest to a point and, in a periodic film, their eight neighbours
        shifts = (np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]) * np.asarray(self.extent)
                  if self.periodic else np.zeros((1, 2)))
        tol = 1e-9 * min(self.spacing)
        L = np.asarray(self.extent, float)
        n_seeds = len(self.seeds)

        def clip(f, rel, wr, skip):
            """The segment [lo, hi] (m along t from o) of segments f cut by the images rel (f, k, 2) (from o)
            of weights wr (f, k), but the skipped ones, and by a film's edges."""
            o, t = on[f], tangent[f]  # the line o + s t of each segment
            a = s1[f] - o
            # power(s1) <= power(image):  2 s t.(r - a) <= |r|^2 - |a|^2 + w1 - w_image
            coef = 2 * (np.einsum("fik,fk->fi", rel, t) - np.einsum("fk,fk->f", a, t)[:, None])
            rhs = np.einsum("fik,fik->fi", rel, rel) - np.sum(a * a, 1)[:, None] + w[g1[f]][:, None] - wr
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = rhs / coef
            hi = np.min(np.where(~skip & (coef > 0), ratio, np.inf), axis=1)
            lo = np.max(np.where(~skip & (coef < 0), ratio, -np.inf), axis=1)
            # an image in line with s1 across the segment (coef 0: the same x, y in a section of seeds stacked
            # in z) cuts it nowhere or everywhere: everywhere where its power is lower at every point
            gone = np.any(~skip & (coef == 0) & (rhs < 0), axis=1)
            if not self.periodic:  # the film's edges
                for dim in range(2):
                    along = t[:, dim] != 0
                    tt = np.where(along, t[:, dim], 1.0)
                    e0, e1 = (0.0 - o[:, dim]) / tt, (L[dim] - o[:, dim]) / tt
                    lo = np.where(along, np.maximum(lo, np.minimum(e0, e1)), lo)
                    hi = np.where(along, np.minimum(hi, np.maximum(e0, e1)), hi)
            return np.where(gone, 0.0, lo), np.where(gone, 0.0, hi)

        # First from the seeds nearest to each segment's point o, as points lifted to heights
        # sqrt(max w - w) (the power is then the squared distance in 3-D, plus a constant). Exact when every
        # seed within R = max over the two ends e of (|e - o| + lifted distance from e to s1) is among them:
        # a seed that cuts the segment does so at a point where it is as far as s1, so within that point's
        # |x - o| + distance to s1, which is largest at an end (convex along the line); in a periodic film
        # also R under half the period (only the nearest images can be that close). Otherwise every image.
        lift = np.sqrt(np.max(w) - w)
        k = min(n_seeds, SEGMENT_CANDIDATES)
        box = np.r_[L, 4 * (lift.max() + L.max())] if self.periodic else None

        def lifted(xy, height):  # points for the tree: in [0, box) in a periodic film
            p = np.column_stack([np.mod(xy, L) if self.periodic else xy, height])
            return p if box is None else np.where(p >= box, 0.0, p)

        tree = cKDTree(lifted(self.seeds, lift), boxsize=box)
        dist, near = tree.query(lifted(on[first], np.zeros(len(first))), k=k)
        dist, near = dist.reshape(len(first), k), near.reshape(len(first), k)
        o = on[first]
        rel = self._displacement(self.seeds[near] - o[:, None])
        seg_lo, seg_hi = clip(first, rel, w[near], (near == g1[first, None]) | (near == g2[first, None]))
        a = s1[first] - o
        reach = np.zeros(len(first))
        for e in (seg_lo, seg_hi):
            with np.errstate(invalid="ignore"):
                end = e[:, None] * tangent[first] - a
                reach = np.maximum(reach, np.abs(e) + np.sqrt(np.sum(end * end, 1) + lift[g1[first]] ** 2))
        exact = np.isfinite(reach) & ((dist[:, -1] > reach * (1 + 1e-9)) | (k == n_seeds))
        if self.periodic:
            exact &= reach < 0.5 * L.min() * (1 - 1e-9)
        # the rest with every seed image
        rest = first[~exact]
        wk = np.tile(w, len(shifts))
        step = max(1, 2 ** 20 // max(1, wk.size))  # segments per chunk: at most ~1 M seed images at once
        lo_r, hi_r = np.empty(len(rest)), np.empty(len(rest))
        for c0 in range(0, len(rest), step):
            f = rest[c0:c0 + step]
            o = on[f]
            rel = (self._displacement(self.seeds[None] - o[:, None])[:, None] + shifts[None, :, None]).reshape(
                len(f), -1, 2)  # every seed image, from o
            skip = np.zeros(rel.shape[:2], bool)  # the two seeds' own images
            for s_own, g in ((s1[f] - o, g1[f]), (s2[f] - o, g2[f])):
                cand = g[:, None] + n_seeds * np.arange(len(shifts))  # every image of the seed
                dd = np.hypot(*(np.take_along_axis(rel, cand[..., None], 1) - s_own[:, None]).transpose(2, 0, 1))
                np.put_along_axis(skip, cand, np.take_along_axis(skip, cand, 1) | (dd < tol), 1)
            lo_r[c0:c0 + step], hi_r[c0:c0 + step] = clip(f, rel, wk[None], skip)
        seg_lo[~exact], seg_hi[~exact] = lo_r, hi_r
        group = group.ravel()
        ok = (seg_hi > seg_lo)[group]
        mid = on[first][group] + (0.5 * (seg_lo + seg_hi))[group][:, None] * tangent[first][group]
        mid = np.where(ok[:, None], mid, on)
        centre = np.where(ok[:, None], on + self._displacement(mid - on), centre)
        length = np.where(ok, (seg_hi - seg_lo)[group], 0.0)
        return centre, tangent, length

    @cached_property
    def _fitted_normals(self) -> np.ndarray:
        from ..transport._boundaries import boundary_network

        net = boundary_network(self.labels, self.spacing[0], self.spacing[1], periodic=self.periodic)
        return fitted_normals(net.face_centres(*self.spacing), net.grains, net.axis, self.n_grains,
                              self._displacement)

    def boundary_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact distance (m) from points to the nearest grain-boundary plane of the tessellation.

        For a point in the cell of seed ``s1``, the distance to the bisector with
        seed ``sj`` is ``(pow_j - pow_1) / (2 |sj - s1|)`` with the power
        ``pow = |p - s|^2 - w`` (w = 0 for Voronoi); the minimum
        over the 24 nearest seeds is taken (in a convex cell the distance to the
        boundary is the distance to the nearest edge line). Periodic films use
        explicit images of the seeds, so that a grain meeting another across
        two different faces is handled.
        """
        pts = np.stack(np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float)), axis=-1)
        if self.seeds is None:
            return self._pixel_boundary_distance(pts)
        flat = pts.reshape(-1, 2)
        if self.n_grains < 2:
            return np.full(pts.shape[:-1], np.inf)
        seeds, owner = self._seed_images()
        lifted = _lift(seeds, self._image_weights())
        k = min(24, len(seeds))
        query = np.mod(flat, self.extent) if self.periodic else flat
        # nearest in the power metric: |x - s|^2 - w = lifted distance^2 - max(w); the constant cancels below
        dist, idx = cKDTree(lifted).query(np.column_stack([query, np.zeros(len(query))]), k=k)
        s1 = seeds[idx[:, 0]]
        sep = np.linalg.norm(seeds[idx[:, 1:]] - s1[:, None, :], axis=-1)
        bis = (dist[:, 1:] ** 2 - dist[:, :1] ** 2) / (2 * sep)
        bis[owner[idx[:, 1:]] == owner[idx[:, :1]]] = np.inf  # images of the point's own grain are no boundary
        return bis.min(axis=1).reshape(pts.shape[:-1])

    def _image_weights(self):
        w = np.zeros(self.n_grains) if self.weights is None else np.asarray(self.weights, float)
        return np.tile(w, 9) if self.periodic else w

    def _seed_images(self):
        """Seeds and, when periodic, their 8 neighbouring images (each image a distinct point)."""
        if not self.periodic:
            return self.seeds, np.arange(self.n_grains)
        L = np.asarray(self.extent)
        base = np.mod(self.seeds, L)
        shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]) * L
        return (base[None, :, :] + shifts[:, None, :]).reshape(-1, 2), np.tile(np.arange(self.n_grains), 9)

    def _pixel_boundary_distance(self, pts):
        """Distance (m) estimated on the pixels: from a pixel centre to the nearest pixel edge between grains."""
        from scipy import ndimage

        lab = self.labels
        edge = np.zeros(lab.shape, bool)
        for ax in (0, 1):
            diff = lab != np.roll(lab, -1, axis=ax)
            if not self.periodic:
                idx = [slice(None)] * 2
                idx[ax] = -1
                diff[tuple(idx)] = False
            edge |= diff | np.roll(diff, 1, axis=ax)
        tiles = (3, 3) if self.periodic else (1, 1)
        big = np.tile(~edge, tiles)
        dist = ndimage.distance_transform_edt(big, sampling=self.spacing)
        if self.periodic:
            nx, ny = lab.shape
            dist = dist[nx:2 * nx, ny:2 * ny]
        dist = dist + 0.5 * min(self.spacing)
        i = np.clip((pts[..., 0] / self.spacing[0]).astype(int), 0, lab.shape[0] - 1)
        j = np.clip((pts[..., 1] / self.spacing[1]).astype(int), 0, lab.shape[1] - 1)
        return dist[i, j]

    def _tree(self) -> cKDTree:
        box = self.extent if self.periodic else None
        return cKDTree(np.mod(self.seeds, self.extent) if self.periodic else self.seeds, boxsize=box)

    def grid(self, dz: np.ndarray) -> Grid:
        """The 3-D grid of the film with the given z cell widths (m)."""
        return Grid(np.full(self.shape[0], self.spacing[0]), np.full(self.shape[1], self.spacing[1]), dz)


def fitted_normals(centres, grains, axis, n: int, displacement) -> np.ndarray:
    """Table (n, n, d) of boundary-plane normals fitted through the centres of the faces each grain pair
    shares (principal axes; unoriented), for label maps without seeds (d = 2 or 3).

    Parameters
    ----------
    centres : ndarray, shape (nf, d)
        Face centres (m).
    grains : ndarray of int, shape (nf, 2)
        Grains on the two sides of each face.
    axis : ndarray of int, shape (nf,)
        Axis each face is normal to (the normal of a pair with too few faces to fit).
    n : int
        Number of grains.
    displacement : callable
        Minimum-image displacement of the map (identity when not periodic): a pair's faces are brought
        next to its first face before the fit.
    """
    d = centres.shape[1]
    table = np.zeros((n, n, d))
    table[..., 0] = 1.0
    if not len(centres):
        return table
    pairs = np.sort(grains, axis=1)
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    for k, sel in enumerate(np.split(order, np.flatnonzero(np.diff(inv[order])) + 1)):
        a, b = uniq[k]
        pts = centres[sel]
        pts = pts[0] + displacement(pts - pts[0])
        _, sv, vt = np.linalg.svd(pts - pts.mean(0), full_matrices=False)
        if len(pts) >= d and sv[d - 2] > 1e-9 * max(sv[0], 1e-300):  # the faces span a plane (a line in 2-D)
            nrm = vt[d - 1]
        else:  # too few faces, or all in a line: their own axis
            nrm = np.eye(d)[axis[sel][0]]
        table[a, b] = nrm
        table[b, a] = -nrm
    return table


def columnar_voronoi(
    size: tuple[float, float],
    *,
    spacing: float,
    thickness: float,
    grain_size: float,
    periodic: bool = True,
    texture: str = "random",
    fibre_axis=(0.0, 0.0, 1.0),
    fibre_spread: float = 0.0,
    quaternions: np.ndarray | None = None,
    rng=None,
) -> ColumnarMicrostructure:
    """Generate a columnar film from a 2-D Voronoi tessellation.

    Parameters
    ----------
    size : (float, float)
        Lateral size ``(Lx, Ly)`` in m.
    spacing : float
        Pixel size in m (same in x and y).
    thickness : float
        Film thickness in m.
    grain_size : float
        Mean equivalent-circle diameter of the grains in m; the number of
        grains is ``round(Lx Ly / (pi grain_size^2 / 4))`` (at least 1).
    periodic : bool, optional
        Periodic tessellation in x and y (default True).
    texture : {"random", "fibre"}
        Orientations uniformly random on SO(3), or a fibre texture: the crystal
        direction ``fibre_axis`` along the film normal within ``fibre_spread``.
    fibre_axis : sequence of 3 float
        Crystal direction of the fibre (default the c axis, a (003) texture for LiCoO2).
    fibre_spread : float
        Standard deviation (rad) of the fibre axis' tilt from the film normal.
    quaternions : ndarray, shape (n_grains, 4), optional
        Explicit orientations; overrides ``texture``.
    rng : int or numpy.random.Generator, optional
        Seed or generator; the same seed gives the same film bit for bit.

    Returns
    -------
    ColumnarMicrostructure

    Examples
    --------
    >>> ms = columnar_voronoi((500e-9, 500e-9), spacing=10e-9, thickness=100e-9, grain_size=150e-9, rng=1)
    >>> ms.labels.shape
    (50, 50)
    """
    nx, ny = _check_film(size, spacing, thickness, grain_size)
    Lx, Ly = nx * spacing, ny * spacing
    seed_value = recorded_seed(rng)
    rng = np.random.default_rng(rng)
    n = max(1, int(round(Lx * Ly / (np.pi * grain_size ** 2 / 4))))
    seeds = rng.uniform(0.0, 1.0, size=(n, 2)) * np.array([Lx, Ly])
    quats = _orientations(n, texture, fibre_axis, fibre_spread, quaternions, rng)
    labels = power_labels(seeds, None, (nx, ny), (spacing, spacing), periodic)
    recipe = dict(generator="columnar_voronoi", size=[Lx, Ly], spacing=spacing, thickness=thickness,
                  grain_size=grain_size, periodic=periodic, texture=texture if quaternions is None else "explicit",
                  fibre_axis=list(map(float, fibre_axis)), fibre_spread=float(fibre_spread), seed=seed_value)
    return ColumnarMicrostructure(labels, (spacing, spacing), float(thickness), quats, seeds, periodic, recipe)


def _check_film(size, spacing, thickness, grain_size):
    Lx, Ly = (float(v) for v in size)
    for name, v in (("size[0]", Lx), ("size[1]", Ly), ("spacing", spacing), ("thickness", thickness),
                    ("grain_size", grain_size)):
        if not (np.isfinite(v) and v > 0):
            raise ParameterError(f"microstructure.{name}", f"got {v!r}; must be a positive length (m)")
    nx, ny = int(round(Lx / spacing)), int(round(Ly / spacing))
    if nx < 2 or ny < 2:
        raise ParameterError("microstructure.spacing",
                             f"got {spacing:g} m for a {Lx:g} x {Ly:g} m film; need >= 2 pixels per side")
    return nx, ny


def _orientations(n, texture, fibre_axis, fibre_spread, quaternions, rng):
    if quaternions is not None:
        quats = np.asarray(quaternions, dtype=float)
        if quats.shape != (n, 4):
            raise ParameterError("microstructure.quaternions", f"shape {quats.shape}; expected ({n}, 4), one per grain")
        return quats / np.linalg.norm(quats, axis=1, keepdims=True)
    if texture == "random":
        return random_quaternions(n, rng=rng)
    if texture == "fibre":
        return fibre_quaternions(n, crystal_axis=fibre_axis, spread=fibre_spread, rng=rng)
    raise ParameterError("microstructure.texture", f"got {texture!r}; allowed 'random', 'fibre'")


def columnar_laguerre(
    size: tuple[float, float],
    *,
    spacing: float,
    thickness: float,
    grain_size: float,
    grain_size_sigma: float,
    periodic: bool = True,
    texture: str = "random",
    fibre_axis=(0.0, 0.0, 1.0),
    fibre_spread: float = 0.0,
    quaternions: np.ndarray | None = None,
    iterations: int = 60,
    rng=None,
) -> ColumnarMicrostructure:
    """Columnar film from a 2-D Laguerre (power) tessellation with lognormal grain sizes.

    Target equivalent-circle diameters are drawn from a lognormal distribution
    with mean ``grain_size`` and log-standard deviation ``grain_size_sigma``
    (median ``grain_size * exp(-sigma^2 / 2)``), scaled together so that their
    areas fill the film. The power diagram is then fitted to them: each
    iteration moves the seeds to their cells' centroids and raises each weight
    by ``(target area - area) / pi``, which grows cells that are too small.

    Parameters
    ----------
    size, spacing, thickness, grain_size, periodic, texture, fibre_axis, fibre_spread, quaternions, rng
        As in :func:`columnar_voronoi` (lengths in m, angles in rad).
    grain_size_sigma : float
        Standard deviation of ln(equivalent diameter), >= 0.
    iterations : int
        Fitting iterations (areas are within a few % after ~40).

    Returns
    -------
    ColumnarMicrostructure
        With ``seeds`` and ``weights`` (exact boundary distances and normals).
    """
    nx, ny = _check_film(size, spacing, thickness, grain_size)
    if not (np.isfinite(grain_size_sigma) and 0 <= grain_size_sigma <= 2):
        raise ParameterError("microstructure.grain_size_sigma", f"got {grain_size_sigma!r}; allowed [0, 2]")
    L = np.array([nx * spacing, ny * spacing])
    seed_value = recorded_seed(rng)
    rng = np.random.default_rng(rng)
    median = grain_size * np.exp(-grain_size_sigma ** 2 / 2)
    mean_area = np.pi / 4 * median ** 2 * np.exp(2 * grain_size_sigma ** 2)
    n = max(1, int(round(L.prod() / mean_area)))
    if n > nx * ny // 4:
        raise ParameterError("microstructure.grain_size", f"{n} grains do not fit {nx} x {ny} pixels "
                                                          "(need >= 4 pixels per grain); use a finer spacing")
    diam = median * np.exp(grain_size_sigma * rng.standard_normal(n))
    target = np.pi / 4 * diam ** 2
    target *= L.prod() / target.sum()
    quats = _orientations(n, texture, fibre_axis, fibre_spread, quaternions, rng)
    seeds, weights = fit_power_diagram(target, L, (nx, ny), periodic, rng, iterations=iterations)
    labels = power_labels(seeds, weights, (nx, ny), (spacing, spacing), periodic)
    labels, seeds, weights, quats = drop_empty(labels, seeds, weights, quats)
    recipe = dict(generator="columnar_laguerre", size=[float(L[0]), float(L[1])], spacing=spacing,
                  thickness=thickness, grain_size=grain_size, grain_size_sigma=float(grain_size_sigma),
                  periodic=periodic, texture=texture if quaternions is None else "explicit",
                  fibre_axis=list(map(float, fibre_axis)), fibre_spread=float(fibre_spread),
                  iterations=int(iterations), seed=seed_value)
    return ColumnarMicrostructure(labels, (spacing, spacing), float(thickness), quats, seeds, periodic, recipe,
                                  weights)


def bunge_to_quaternions(euler) -> np.ndarray:
    """Scalar-first quaternions of Bunge (ZXZ) angles (rad), ``R = Rz(phi1) Rx(Phi) Rz(phi2)``, shape (n, 4)."""
    e = np.atleast_2d(np.asarray(euler, float))
    if e.shape[-1] != 3:
        raise ParameterError("microstructure.euler_angles", f"got shape {e.shape}; expected (n, 3) Bunge angles")

    def rot(axis, ang):
        q = np.zeros((len(ang), 4))
        q[:, 0] = np.cos(ang / 2)
        q[:, axis] = np.sin(ang / 2)
        return q

    q = quat_multiply(quat_multiply(rot(3, e[:, 0]), rot(1, e[:, 1])), rot(3, e[:, 2]))
    q[q[:, 0] < 0] *= -1
    return q


def columnar_seeded(
    seeds,
    size: tuple[float, float],
    *,
    spacing: float,
    thickness: float,
    periodic: bool = False,
    euler_angles=None,
    texture: str = "random",
    fibre_axis=(0.0, 0.0, 1.0),
    fibre_spread: float = 0.0,
    rng=None,
) -> ColumnarMicrostructure:
    """Columnar film from chosen Voronoi seeds: single crystals, bicrystals, tricrystals, designed layouts.

    Two seeds mirrored about a plane give a bicrystal whose boundary is that
    plane; three seeds at 120 degrees a tricrystal with a triple junction; one
    seed a single crystal.

    Parameters
    ----------
    seeds : array_like, shape (n, 2)
        Seed positions (m) inside the film.
    size, spacing, thickness, periodic
        As in :func:`columnar_voronoi` (m); not periodic by default.
    euler_angles : array_like, shape (n, 3), optional
        Bunge angles (rad) per grain; otherwise ``texture`` decides (random or fibre).
    rng : int or numpy.random.Generator, optional
        Seed for random orientations.
    """
    seeds = np.atleast_2d(np.asarray(seeds, dtype=float))
    n = len(seeds)
    nx, ny = _check_film(size, spacing, thickness, max(spacing, 1e-300))
    L = np.array([nx * spacing, ny * spacing])
    if seeds.shape[1] != 2 or n < 1 or np.any(seeds < 0) or np.any(seeds >= L):
        raise ParameterError("microstructure.seeds", f"got shape {seeds.shape}; expected (n >= 1, 2) positions "
                                                     f"inside the {L[0]:g} x {L[1]:g} m film")
    seed_value = recorded_seed(rng)
    rng = np.random.default_rng(rng)
    quats = (bunge_to_quaternions(euler_angles) if euler_angles is not None
             else _orientations(n, texture, fibre_axis, fibre_spread, None, rng))
    if len(quats) != n:
        raise ParameterError("microstructure.euler_angles", f"{len(quats)} orientations for {n} seeds")
    labels = power_labels(seeds, None, (nx, ny), (spacing, spacing), periodic)
    recipe = dict(generator="columnar_seeds", size=[float(L[0]), float(L[1])], spacing=spacing, thickness=thickness,
                  periodic=periodic, seeds=seeds.tolist(),
                  euler_angles=None if euler_angles is None else np.atleast_2d(euler_angles).tolist(),
                  texture=texture, seed=seed_value)
    return ColumnarMicrostructure(labels, (spacing, spacing), float(thickness), quats, seeds,
                                  periodic, recipe)


def _shortest_arc(a, b) -> np.ndarray:
    """Quaternion of the smallest rotation taking unit vector ``a`` to ``b``."""
    c = float(np.clip(np.dot(a, b), -1.0, 1.0))
    axis = np.cross(a, b)
    if np.linalg.norm(axis) < 1e-12:
        if c > 0:
            return np.array([1.0, 0, 0, 0])
        perp = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        return np.concatenate([[0.0], perp / np.linalg.norm(perp)])
    axis /= np.linalg.norm(axis)
    h = 0.5 * np.arccos(c)
    return np.concatenate([[np.cos(h)], np.sin(h) * axis])


def fibre_quaternions(n: int, *, crystal_axis=(0.0, 0.0, 1.0), sample_axis=(0.0, 0.0, 1.0), spread: float = 0.0,
                      rng=None) -> np.ndarray:
    """Fibre-textured orientations: ``crystal_axis`` along ``sample_axis`` within a Gaussian tilt.

    Each grain is rotated about the crystal axis by a uniform angle, the axis
    is brought onto ``sample_axis``, then tilted about a random axis
    perpendicular to it by an angle drawn from N(0, ``spread``); the angle
    between the grain's crystal axis and ``sample_axis`` is therefore
    half-normal with scale ``spread`` (rad).

    Returns
    -------
    ndarray, shape (n, 4)
        Scalar-first unit quaternions (crystal -> sample).
    """
    if not (np.isfinite(spread) and 0 <= spread <= np.pi / 2):
        raise ParameterError("microstructure.fibre_spread", f"got {spread!r} rad; allowed [0, pi/2] rad")
    c = np.asarray(crystal_axis, float)
    t = np.asarray(sample_axis, float)
    if c.shape != (3,) or np.linalg.norm(c) == 0:
        raise ParameterError("microstructure.fibre_axis", f"got {crystal_axis!r}; expected a non-zero 3-vector")
    c, t = c / np.linalg.norm(c), t / np.linalg.norm(t)
    rng = np.random.default_rng(rng)
    phi = rng.uniform(0, 2 * np.pi, n)
    q_phi = np.concatenate([np.cos(phi / 2)[:, None], np.sin(phi / 2)[:, None] * c], axis=1)
    q_align = _shortest_arc(c, t)
    # tilt axes: uniform in the plane perpendicular to the sample axis
    e1 = np.cross(t, [1.0, 0, 0]) if abs(t[0]) < 0.9 else np.cross(t, [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(t, e1)
    psi = rng.uniform(0, 2 * np.pi, n)
    theta = rng.normal(0.0, spread, n) if spread > 0 else np.zeros(n)
    u = np.cos(psi)[:, None] * e1 + np.sin(psi)[:, None] * e2
    q_tilt = np.concatenate([np.cos(theta / 2)[:, None], np.sin(theta / 2)[:, None] * u], axis=1)
    q = quat_multiply(q_tilt, quat_multiply(q_align, q_phi))
    q[q[:, 0] < 0] *= -1
    return q


def relabel(lab, quaternions, rng):
    """Labels renumbered 0 .. n-1 (``numpy.unique`` order), the original values, and one orientation per grain
    (the given quaternions, checked, or uniformly random ones drawn from ``rng``)."""
    uniq, inv = np.unique(lab, return_inverse=True)
    n = uniq.size
    q = random_quaternions(n, rng=rng) if quaternions is None else np.asarray(quaternions, float)
    if q.shape != (n, 4):
        raise ParameterError("quaternions", f"shape {q.shape}; expected ({n}, 4), one per grain")
    return inv.reshape(lab.shape).astype(np.int32), uniq, q


def columnar_from_labels(labels, *, spacing: float, thickness: float, quaternions: np.ndarray | None = None,
                         periodic: bool = False, rng=None) -> ColumnarMicrostructure:
    """A columnar film from a 2-D label image (e.g. grains segmented in a measured scan).

    Parameters
    ----------
    labels : array_like of int, shape (nx, ny)
        Grain label per pixel, axis 0 = x. Any integers; relabelled to
        0 .. n-1 in order of first appearance (``numpy.unique`` order).
    spacing : float
        Pixel size in m.
    thickness : float
        Film thickness in m.
    quaternions : ndarray, shape (n, 4), optional
        Orientation per grain (after relabelling); default uniformly random.
    periodic : bool
        Whether the image wraps around.
    rng : int or numpy.random.Generator, optional
        Seed for the random orientations.

    Returns
    -------
    ColumnarMicrostructure
        Without seeds: boundary normals are fitted to the shared pixel edges and
        distances are measured on the pixels.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.size == 0 or not np.issubdtype(lab.dtype, np.integer):
        raise ParameterError("labels", f"got an array of shape {lab.shape} and dtype {lab.dtype}; "
                                       "expected a 2-D integer label image")
    if not (np.isfinite(spacing) and spacing > 0 and np.isfinite(thickness) and thickness > 0):
        raise ParameterError("spacing", f"spacing {spacing!r} and thickness {thickness!r} must be positive lengths (m)")
    new, uniq, q = relabel(lab, quaternions, rng)
    seed_value = recorded_seed(rng)
    recipe = dict(generator="label_image", spacing=float(spacing), thickness=float(thickness), periodic=periodic,
                  original_labels=uniq.tolist(), seed=seed_value)
    return ColumnarMicrostructure(new, (float(spacing), float(spacing)), float(thickness), q, None, periodic, recipe)
