"""Three-dimensional voxel microstructures: equiaxed tessellations, tilted and partial columns, bicrystals,
imported label volumes, and the pores and cracks added to them.

Axes are ``(x, y, z)`` with z into the sample; voxel layer 0 lies under the
surface. ``labels`` holds the grain of every voxel of the tessellation; pores
and cracks are separate masks over it (a void voxel keeps the label of the
grain it was cut from, so the tessellation itself is never lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .._errors import ParameterError
from ._columnar import ColumnarMicrostructure, _orientations, bunge_to_quaternions, fitted_normals, relabel
from ._orientations import GrainOrientations, recorded_seed
from ._tessellation import bisector_point, drop_empty, fit_power_diagram, power_labels

__all__ = ["Microstructure", "voronoi", "laguerre", "bicrystal", "columnar_film", "extrude", "from_labels", "voxel_faces"]


@dataclass(frozen=True, eq=False)
class Microstructure(GrainOrientations):
    """A voxel microstructure: a grain label per voxel, orientations, defects and the exact geometry behind them.

    Attributes
    ----------
    labels : ndarray of int32, shape (nx, ny, nz)
        Grain id (0 .. n_grains-1) of every voxel; z index 0 is the layer under the surface.
    spacing : tuple of float
        Voxel size ``(hx, hy, hz)`` in m.
    quaternions : ndarray, shape (n_grains, 4)
        Scalar-first unit quaternions of the crystal -> sample rotation of each grain.
    periodic : bool
        Whether x and y wrap (z never does).
    recipe : dict
        Generator name, its arguments and the seed.
    seeds, weights : ndarray or None
        3-D seeds (m) and power weights (m^2) of the tessellation when it is one (None: Voronoi weights or
        an imported volume).
    shear : ndarray, shape (2,), or None
        Columns that lean (:func:`columnar_film`): the tessellation of ``seeds`` is sheared, the point
        (x, y, z) lying in the grain that holds (x - z s_x, y - z s_y, z). None: not sheared.
    grain_depths : ndarray, shape (n_grains, 2), or None
        Depth interval ``[top, bottom)`` (m) of each grain in a tessellation whose grains stop part way
        (:func:`columnar_film`'s partial grains): at depth z the grains outside theirs are left out of the
        tessellation. None: every grain spans the film.
    surface_seeds, surface_weights : ndarray or None
        The 2-D power diagram that the centre plane of the first voxel layer cuts from the tessellation
        (a plane section of a power diagram is a power diagram); gives the exact boundary lines at the surface.
    pores, cracks : ndarray of bool, shape (nx, ny, nz), or None
        Void voxels: pores and intergranular cracks.
    truth : dict
        Ground truth not held in the arrays: pore centres and radii (m), cracked grain pairs and the
        opening (m), the depth interval (m) of grains that do not span the film.
    """

    labels: np.ndarray
    spacing: tuple[float, float, float]
    quaternions: np.ndarray
    periodic: bool = True
    recipe: dict = field(default_factory=dict)
    seeds: np.ndarray | None = None
    weights: np.ndarray | None = None
    surface_seeds: np.ndarray | None = None
    surface_weights: np.ndarray | None = None
    pores: np.ndarray | None = None
    cracks: np.ndarray | None = None
    truth: dict = field(default_factory=dict)
    shear: np.ndarray | None = None
    grain_depths: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.labels.shape)

    @property
    def extent(self) -> tuple[float, float, float]:
        """Size ``(Lx, Ly, Lz)`` in m."""
        return tuple(n * h for n, h in zip(self.labels.shape, self.spacing))

    @property
    def thickness(self) -> float:
        return self.extent[2]

    @property
    def void(self) -> np.ndarray:
        """Voxels without material (pores or cracks), bool (nx, ny, nz)."""
        v = np.zeros(self.shape, bool)
        for m in (self.pores, self.cracks):
            if m is not None:
                v |= m
        return v

    @property
    def material_labels(self) -> np.ndarray:
        """Grain labels with -1 on void voxels."""
        return np.where(self.void, -1, self.labels).astype(np.int32)

    @property
    def surface_labels(self) -> np.ndarray:
        """Grain of each surface pixel (the first voxel layer), shape (nx, ny)."""
        return self.labels[:, :, 0]

    def surface(self) -> ColumnarMicrostructure:
        """The surface layer as a columnar film: the probe's view, with the exact surface boundary lines."""
        return ColumnarMicrostructure(self.surface_labels, self.spacing[:2], self.thickness, self.quaternions,
                                      self.surface_seeds, self.periodic, self.recipe, self.surface_weights)

    def pixel_centers(self):
        return self.surface().pixel_centers()

    def boundary_distance(self, x, y) -> np.ndarray:
        """In-plane distance (m) from surface points to the nearest grain-boundary line of the surface."""
        return self.surface().boundary_distance(x, y)

    def _displacement(self, d: np.ndarray) -> np.ndarray:
        """The periodic image of displacements ``d`` (m, (..., 3)) closest to zero (x and y wrap)."""
        d = np.array(d, float)
        if self.periodic:
            L = np.asarray(self.extent[:2])
            d[..., :2] -= L * np.round(d[..., :2] / L)
        return d

    def boundary_normal(self, g1: np.ndarray, g2: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Unit normal of the boundary plane between grains ``g1`` and ``g2`` next to ``points``, shape (..., 3).

        Exact from the tessellation's seeds (a power-diagram face is normal to the line between its two
        seeds; in a periodic volume the seed images nearest to each point, m), sheared with the columns
        (``shear``), and horizontal on the layer interfaces where one of the two grains ends
        (``grain_depths``). Without seeds (imported label volumes, and films from an imported label image)
        the plane fitted through the voxel faces the two grains share (principal axes), the same for every
        point.
        """
        g1, g2 = np.asarray(g1), np.asarray(g2)
        if self.seeds is not None:
            p = self._unsheared(points)
            d = self._displacement(self.seeds[g2] - p) - self._displacement(self.seeds[g1] - p)
            if self.shear is not None:  # the plane n'.(x - z s) = c: normal (n'_x, n'_y, n'_z - n'_xy . s)
                d = d.copy()
                d[..., 2] -= d[..., :2] @ np.asarray(self.shear, float)
            if self.grain_depths is not None:  # where a grain ends: a horizontal boundary
                d = np.where(self._ends(g1, g2, np.asarray(points, float)[..., 2])[..., None], [0.0, 0.0, 1.0], d)
            return d / np.linalg.norm(d, axis=-1, keepdims=True)
        return self._fitted_normals[g1, g2]

    def _active(self, g, z) -> np.ndarray:
        """Whether grains ``g`` are in the tessellation at depths ``z`` (m)."""
        top, bottom = np.asarray(self.grain_depths, float)[np.asarray(g)].T
        return _present(top, bottom, z)

    def _ends(self, g1, g2, z) -> np.ndarray:
        """Whether points at depths ``z`` (m) on an interface between voxel layers have ``g1`` or ``g2`` in
        the tessellation on one side only (the horizontal face where a grain ends)."""
        hz = self.spacing[2]
        k = np.round(z / hz)
        # an interface inside the film (the surface is none; thin z cells under it have centres near 0)
        edge = (k >= 1) & (np.abs(z / hz - k) < 1e-7)
        above, below = (k - 0.5) * hz, (k + 0.5) * hz
        change = (self._active(g1, above) != self._active(g1, below)) | (self._active(g2, above) !=
                                                                          self._active(g2, below))
        return edge & change

    def _unsheared(self, points) -> np.ndarray:
        """Points (m, (..., 3)) in the frame of the tessellation's seeds (the same without a shear)."""
        p = np.asarray(points, float)
        if self.shear is None:
            return p
        q = p.copy()
        q[..., :2] -= p[..., 2:3] * np.asarray(self.shear, float)
        return q

    def boundary_point(self, g1: np.ndarray, g2: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        """The point of the exact boundary plane between ``g1`` and ``g2`` nearest to each of ``points`` (m),
        shape (..., 3): the power bisector of the two seeds (images next to the point in a periodic volume).
        With a shear, the sheared image of the point nearest to the unsheared one (on the plane, next to it).
        None for a volume without seeds."""
        if self.seeds is None:
            return None
        q = bisector_point(self.seeds, self.weights, self._displacement, g1, g2, self._unsheared(points))
        if self.shear is not None:
            q = q.copy()
            q[..., :2] += q[..., 2:3] * np.asarray(self.shear, float)
        return q

    def section(self, z: float) -> ColumnarMicrostructure | None:
        """The tessellation's section at depth ``z`` (m) as a columnar film: the 2-D power diagram of the
        plane (seeds' x, y; weights ``w - (z - s_z)^2``), with the labels of the voxel layer that holds
        ``z``. None for a volume without seeds."""
        if self.seeds is None:
            return None
        s2, w2 = _surface_power(self.seeds, self.weights, z)
        if self.shear is not None:
            s2 = s2 + z * np.asarray(self.shear, float)
        layer = min(int(z / self.spacing[2]), self.shape[2] - 1)
        if self.grain_depths is not None:  # grains that stop part way: left out where the layer's labels have
            # them absent (judged at the layer's centre, as the labels are, not at z: a grain ending between
            # the two would get a bisector with a huge weight gap, metres off)
            w2 = _without_absent(w2, self._active(np.arange(len(s2)), (layer + 0.5) * self.spacing[2]),
                                 self.extent[:2])
        return ColumnarMicrostructure(self.labels[:, :, layer], self.spacing[:2], self.thickness, self.quaternions,
                                      s2, self.periodic, self.recipe, w2)

    @cached_property
    def _fitted_normals(self) -> np.ndarray:
        f = voxel_faces(self.material_labels, self.periodic)
        return fitted_normals(voxel_face_centres(f, self.spacing), f["grains"], f["axis"], self.n_grains,
                              self._displacement)

    def as_columnar(self) -> ColumnarMicrostructure:
        """The same film as a :class:`ColumnarMicrostructure` when it is one (columns through the film, no voids).

        Raises
        ------
        ParameterError
            The grains change with depth or there are pores or cracks.
        """
        if self.void.any() or not np.all(self.labels == self.labels[:, :, :1]):
            raise ParameterError("microstructure", f"{self.recipe.get('generator', 'this')} microstructure is not "
                                 "columnar (grains change with depth, or pores/cracks); map it with the volume engine "
                                 "(single_frequency_map or volume_response take it as it is)")
        return self.surface()


def extrude(cms: ColumnarMicrostructure, nz: int) -> Microstructure:
    """A columnar film as a voxel volume of ``nz`` layers (constant labels through the thickness)."""
    hz = cms.thickness / nz
    labels = np.repeat(cms.labels[:, :, None], nz, axis=2).astype(np.int32)
    return Microstructure(labels, (*cms.spacing, hz), cms.quaternions, cms.periodic, dict(cms.recipe),
                          *_columns(cms.seeds, cms.weights), surface_seeds=cms.seeds, surface_weights=cms.weights)


def _columns(seeds, weights):
    """3-D seeds and weights of a 2-D power diagram's columns (all seeds at depth 0: every section of the
    3-D diagram is the 2-D one), or (None, None) without seeds."""
    if seeds is None:
        return None, None
    s = np.asarray(seeds, float)
    return np.column_stack([s, np.zeros(len(s))]), None if weights is None else np.asarray(weights, float)


def voxel_face_centres(faces: dict, spacing) -> np.ndarray:
    """Centres (m, (m, 3)) of the faces of :func:`voxel_faces` (a periodic face between the last voxel and
    the first sits at the far edge, next to its low side)."""
    return (faces["index"] + 0.5 + 0.5 * np.eye(3)[faces["axis"]]) * np.asarray(spacing)


def voxel_faces(labels, periodic: bool) -> dict[str, np.ndarray]:
    """The voxel faces between different labels: the boundaries as data.

    Parameters
    ----------
    labels : ndarray of int, 2-D or 3-D
        Label per voxel; negative labels (void) are skipped.
    periodic : bool
        Whether axes 0 and 1 wrap.

    Returns
    -------
    dict
        ``axis`` (m,) the axis the face is normal to; ``index`` (m, d) the voxel on its low side
        (its neighbour is index + 1 along ``axis``, wrapped when periodic); ``grains`` (m, 2) the
        labels on the low and high side.
    """
    lab = np.asarray(labels)
    axes, idx, pairs = [], [], []
    for ax in range(lab.ndim):
        if periodic and ax < 2:
            hi = np.roll(lab, -1, axis=ax)
            lo = lab
        else:
            sl_lo = [slice(None)] * lab.ndim
            sl_lo[ax] = slice(0, -1)
            sl_hi = [slice(None)] * lab.ndim
            sl_hi[ax] = slice(1, None)
            lo, hi = lab[tuple(sl_lo)], lab[tuple(sl_hi)]
        mask = (lo != hi) & (lo >= 0) & (hi >= 0)
        where = np.argwhere(mask)
        axes.append(np.full(len(where), ax, np.int8))
        idx.append(where)
        pairs.append(np.column_stack([lo[mask], hi[mask]]))
    return {"axis": np.concatenate(axes), "index": np.concatenate(idx).astype(np.int32),
            "grains": np.concatenate(pairs).astype(np.int32)}


def _spacing3(spacing) -> tuple[float, float, float]:
    h = np.atleast_1d(np.asarray(spacing, dtype=float))
    if h.size == 1:
        h = np.repeat(h, 3)
    if h.size != 3 or not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise ParameterError("microstructure.spacing", f"got {spacing!r}; expected a positive voxel size (m) or "
                                                       "three of them (hx, hy, hz)")
    return tuple(float(v) for v in h)


def _check_volume(size, spacing, grain_size=None):
    size = np.atleast_1d(np.asarray(size, dtype=float))
    if size.shape != (3,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ParameterError("microstructure.size", f"got {size.tolist()!r}; expected three positive lengths "
                                                    "(Lx, Ly, Lz) in m")
    h = _spacing3(spacing)
    shape = tuple(int(round(L / hh)) for L, hh in zip(size, h))
    if min(shape) < 2:
        raise ParameterError("microstructure.spacing", f"got {h} m for a {size.tolist()} m volume; "
                                                       "need >= 2 voxels per side")
    if grain_size is not None and not (np.isfinite(grain_size) and grain_size > 0):
        raise ParameterError("microstructure.grain_size", f"got {grain_size!r}; must be a positive length (m)")
    return shape, h


_ABSENT = 1e6  # times the squared extent: the weight taken off a grain where it is not in the tessellation


def _present(top, bottom, z) -> np.ndarray:
    """Whether grains with depth intervals ``[top, bottom)`` (m) are in the tessellation at depth ``z``."""
    return (top <= z) & (z < bottom)


def _without_absent(w, present, extent_xy) -> np.ndarray:
    """Power weights (m^2) with the grains not ``present`` taken out of the diagram: a weight offset that no
    such seed can overcome in a film of lateral extent ``extent_xy`` (m)."""
    return np.where(present, w, w - _ABSENT * float(max(extent_xy)) ** 2)


def _surface_power(seeds, weights, z0):
    """2-D power diagram of the plane z = z0 cut from a 3-D one: same x, y; weights w - (z0 - s_z)^2."""
    w = np.zeros(len(seeds)) if weights is None else np.asarray(weights, float)
    return seeds[:, :2].copy(), w - (z0 - seeds[:, 2]) ** 2


def _tessellated(seeds, weights, shape, h, quats, periodic, recipe) -> Microstructure:
    labels = power_labels(seeds, weights, shape, h, periodic)
    labels, seeds, weights, quats = drop_empty(labels, seeds, weights, quats)
    s2, w2 = _surface_power(seeds, weights, 0.5 * h[2])
    return Microstructure(labels, h, quats, periodic, recipe, seeds, weights, s2, w2)


def voronoi(size, *, spacing, grain_size: float, periodic: bool = True, texture: str = "random",
            fibre_axis=(0.0, 0.0, 1.0), fibre_spread: float = 0.0, quaternions=None, rng=None) -> Microstructure:
    """Equiaxed polycrystal from a 3-D Voronoi tessellation of uniformly random (Poisson) seeds.

    Parameters
    ----------
    size : (float, float, float)
        ``(Lx, Ly, Lz)`` in m; z is the depth.
    spacing : float or (float, float, float)
        Voxel size in m.
    grain_size : float
        Mean equivalent-sphere diameter (m); the number of grains is ``round(V / (pi d^3 / 6))``.
    periodic, texture, fibre_axis, fibre_spread, quaternions, rng
        As in :func:`columnar_voronoi`.
    """
    shape, h = _check_volume(size, spacing, grain_size)
    L = np.array(shape) * np.array(h)
    seed_value = recorded_seed(rng)
    rng = np.random.default_rng(rng)
    n = max(1, int(round(L.prod() / (np.pi / 6 * grain_size ** 3))))
    _check_count(n, shape)
    seeds = rng.uniform(0.0, 1.0, size=(n, 3)) * L
    quats = _orientations(n, texture, fibre_axis, fibre_spread, quaternions, rng)
    recipe = dict(generator="voronoi", size=L.tolist(), spacing=list(h), grain_size=float(grain_size),
                  periodic=bool(periodic), texture=texture if quaternions is None else "explicit",
                  fibre_axis=list(map(float, fibre_axis)), fibre_spread=float(fibre_spread), seed=seed_value)
    return _tessellated(seeds, None, shape, h, quats, periodic, recipe)


def _check_count(n, shape):
    if n > np.prod(shape) // 8:
        raise ParameterError("microstructure.grain_size", f"{n} grains do not fit {shape} voxels (need >= 8 voxels "
                                                          "per grain); use a finer spacing or larger grains")


def laguerre(size, *, spacing, grain_size: float, grain_size_sigma: float, periodic: bool = True,
             texture: str = "random", fibre_axis=(0.0, 0.0, 1.0), fibre_spread: float = 0.0, quaternions=None,
             iterations: int = 40, rng=None) -> Microstructure:
    """Equiaxed polycrystal from a 3-D Laguerre (power) tessellation with lognormal grain sizes.

    Target equivalent-sphere diameters are lognormal with mean ``grain_size``
    and log-standard deviation ``grain_size_sigma``, scaled together so that
    their volumes fill the domain; a centroidal power diagram is fitted to
    them on a coarsened grid (see :func:`fit_power_diagram`) and the full grid
    is labelled once with the result.

    Parameters
    ----------
    size, spacing, periodic, texture, fibre_axis, fibre_spread, quaternions, rng
        As in :func:`voronoi`.
    grain_size : float
        Mean equivalent-sphere diameter (m).
    grain_size_sigma : float
        Standard deviation of ln(diameter), in [0, 2].
    iterations : int
        Fitting iterations.
    """
    shape, h = _check_volume(size, spacing, grain_size)
    if not (np.isfinite(grain_size_sigma) and 0 <= grain_size_sigma <= 2):
        raise ParameterError("microstructure.grain_size_sigma", f"got {grain_size_sigma!r}; allowed [0, 2]")
    L = np.array(shape) * np.array(h)
    seed_value = recorded_seed(rng)
    rng = np.random.default_rng(rng)
    median = grain_size * np.exp(-grain_size_sigma ** 2 / 2)
    mean_volume = np.pi / 6 * median ** 3 * np.exp(4.5 * grain_size_sigma ** 2)
    n = max(1, int(round(L.prod() / mean_volume)))
    _check_count(n, shape)
    diam = median * np.exp(grain_size_sigma * rng.standard_normal(n))
    target = np.pi / 6 * diam ** 3
    target *= L.prod() / target.sum()
    quats = _orientations(n, texture, fibre_axis, fibre_spread, quaternions, rng)
    seeds, weights = fit_power_diagram(target, L, shape, periodic, rng, iterations=iterations)
    recipe = dict(generator="laguerre", size=L.tolist(), spacing=list(h), grain_size=float(grain_size),
                  grain_size_sigma=float(grain_size_sigma), periodic=bool(periodic),
                  texture=texture if quaternions is None else "explicit", fibre_axis=list(map(float, fibre_axis)),
                  fibre_spread=float(fibre_spread), iterations=int(iterations), seed=seed_value)
    return _tessellated(seeds, weights, shape, h, quats, periodic, recipe)


def bicrystal(size, *, spacing, normal=(1.0, 0.0, 0.0), point=None, euler_angles=None, texture: str = "random",
              rng=None) -> Microstructure:
    """Two grains separated by the plane through ``point`` with unit normal ``normal`` (not periodic).

    Grain 0 lies on the side the normal points away from. An inclined normal
    gives a boundary plane that meets the surface at an angle, so the surface
    trace and the buried boundary differ.

    Parameters
    ----------
    size, spacing
        As in :func:`voronoi` (m).
    normal : sequence of 3 float
        Boundary-plane normal in the sample frame (need not be unit length).
    point : sequence of 3 float, optional
        A point (m) of the plane; default the centre of the volume.
    euler_angles : array_like, shape (2, 3), optional
        Bunge angles (rad) of the two grains; otherwise random (seeded by ``rng``).
    """
    shape, h = _check_volume(size, spacing)
    L = np.array(shape) * np.array(h)
    nrm = np.asarray(normal, float)
    if nrm.shape != (3,) or not np.all(np.isfinite(nrm)) or np.linalg.norm(nrm) == 0:
        raise ParameterError("microstructure.boundary_normal", f"got {normal!r}; expected a non-zero 3-vector")
    nrm = nrm / np.linalg.norm(nrm)
    p = L / 2 if point is None else np.asarray(point, float)
    if p.shape != (3,):
        raise ParameterError("microstructure.boundary_point", f"got {point!r}; expected (x, y, z) in m")
    seed_value = recorded_seed(rng)
    rng = np.random.default_rng(rng)
    if euler_angles is not None:
        quats = bunge_to_quaternions(euler_angles)
        if len(quats) != 2:
            raise ParameterError("microstructure.euler_angles", f"{len(quats)} orientations for 2 grains")
    else:
        quats = _orientations(2, texture, (0, 0, 1), 0.0, None, rng)
    a = float(L.max())  # mirrored seeds: their bisector is the plane
    seeds = np.stack([p - a * nrm, p + a * nrm])
    recipe = dict(generator="bicrystal", size=L.tolist(), spacing=list(h), boundary_normal=nrm.tolist(),
                  boundary_point=p.tolist(),
                  euler_angles=None if euler_angles is None else np.atleast_2d(euler_angles).tolist(),
                  texture=texture, seed=seed_value)
    return _tessellated(seeds, None, shape, h, quats, False, recipe)


def columnar_film(base: ColumnarMicrostructure, *, spacing_z: float | None = None, tilt: float = 0.0,
                  tilt_azimuth: float = 0.0, partial_fraction: float = 0.0, rng=None) -> Microstructure:
    """A columnar film in 3-D: columns tilted from the normal and grains that do not span the thickness.

    The columns of ``base`` lean by ``tilt`` towards the azimuth
    ``tilt_azimuth``: at depth z the film's section is ``base`` shifted by
    ``z tan(tilt) (cos(azimuth), sin(azimuth))``. A fraction
    ``partial_fraction`` of the grains stops part way: half of them (rounded
    down) grow from the substrate and are overgrown below the surface (buried
    grains the probe cannot see), the others nucleated inside the film and
    reach the surface but not the substrate; each ends at a depth uniform in
    [0.2, 0.8] of the thickness. Where a grain is absent its column belongs
    to its power-diagram neighbours.

    A ``base`` with seeds gives a volume that keeps its exact geometry: the base's columns as 3-D seeds,
    the tilt as ``shear`` and the partial grains' depth intervals as ``grain_depths`` (so that the
    transport puts boundary slabs on the true planes, :meth:`Microstructure.section`); an imported label
    image gives a volume without seeds.

    Parameters
    ----------
    base : ColumnarMicrostructure
        A generated film (with seeds); an imported one accepts tilt only.
    spacing_z : float, optional
        Layer thickness (m); default the lateral pixel size.
    tilt, tilt_azimuth : float
        Column tilt from the normal and its azimuth from x (rad); tilt < 80 degrees.
    partial_fraction : float
        Fraction of grains that do not span the thickness, in [0, 1).
    rng : int or numpy.random.Generator
        Chooses the partial grains and their depths.
    """
    hz = base.spacing[0] if spacing_z is None else float(spacing_z)
    if not (np.isfinite(hz) and 0 < hz <= base.thickness / 2):
        raise ParameterError("microstructure.spacing_z", f"got {hz!r}; need 0 < spacing_z <= thickness / 2")
    if not (np.isfinite(tilt) and 0 <= tilt < np.radians(80)):
        raise ParameterError("microstructure.column_tilt", f"got {tilt!r} rad; allowed [0, 80) deg")
    if not (np.isfinite(partial_fraction) and 0 <= partial_fraction < 1):
        raise ParameterError("microstructure.partial_grain_fraction", f"got {partial_fraction!r}; allowed [0, 1)")
    nz = int(round(base.thickness / hz))
    hz = base.thickness / nz
    seed_value = recorded_seed(rng)
    rng = np.random.default_rng(rng)
    n = base.n_grains
    top, bottom = np.zeros(n), np.full(n, base.thickness)  # depth interval each grain occupies
    if partial_fraction > 0:
        if base.seeds is None:
            raise ParameterError("microstructure.partial_grain_fraction", "needs a generated film with seeds "
                                                                          "(an imported label image has none)")
        k = int(round(partial_fraction * n))
        chosen = rng.choice(n, size=k, replace=False)
        depth = rng.uniform(0.2, 0.8, size=k) * base.thickness
        buried = chosen[: k // 2]
        top[buried] = depth[: k // 2]
        bottom[chosen[k // 2:]] = depth[k // 2:]
    shift = np.tan(tilt) * np.array([np.cos(tilt_azimuth), np.sin(tilt_azimuth)])
    z = (np.arange(nz) + 0.5) * hz
    labels = np.empty((*base.shape, nz), np.int32)
    nx, ny = base.shape
    Lxy = np.array(base.extent)
    w0 = np.zeros(n) if base.weights is None else np.asarray(base.weights, float)
    surf_s = surf_w = None
    for k, zk in enumerate(z):
        if base.seeds is None:
            di, dj = (np.round(zk * shift / np.array(base.spacing))).astype(int)
            labels[:, :, k] = _shifted(base.labels, di, dj, base.periodic)
            continue
        s = base.seeds + zk * shift
        w = _without_absent(w0, _present(top, bottom, zk), Lxy)
        labels[:, :, k] = power_labels(s, w, (nx, ny), base.spacing, base.periodic)
        if k == 0:
            surf_s, surf_w = s, w
    recipe = dict(base.recipe, generator_3d="columnar_film", spacing_z=hz, column_tilt=float(tilt),
                  column_tilt_azimuth=float(tilt_azimuth), partial_grain_fraction=float(partial_fraction),
                  seed_3d=seed_value)
    # the film is the base's power diagram sheared, each grain in it over its depth interval: it keeps its
    # exact geometry (sections, boundary planes), which puts the boundary slabs on their planes
    seeds3, weights3 = _columns(base.seeds, base.weights)
    labels, quats, surf_s, surf_w, top, bottom, seeds3, weights3 = drop_empty(
        labels, base.quaternions, surf_s, surf_w, top, bottom, seeds3, weights3)
    return Microstructure(labels, (*base.spacing, hz), quats, base.periodic, recipe, seeds3, weights3,
                          surface_seeds=surf_s, surface_weights=surf_w,
                          shear=shift if seeds3 is not None and tilt > 0 else None,
                          grain_depths=np.column_stack([top, bottom]) if seeds3 is not None and partial_fraction > 0
                          else None,
                          truth={"grain_top_depth": top.tolist(), "grain_bottom_depth": bottom.tolist()})


def _shifted(lab, di, dj, periodic):
    if periodic:
        return np.roll(lab, (di, dj), axis=(0, 1))
    nx, ny = lab.shape
    i = np.clip(np.arange(nx) - di, 0, nx - 1)
    j = np.clip(np.arange(ny) - dj, 0, ny - 1)
    return lab[np.ix_(i, j)]


def from_labels(labels, *, spacing, quaternions=None, periodic: bool = False, rng=None) -> Microstructure:
    """A microstructure from a 3-D label volume (or a 2-D image, taken as one layer).

    Parameters
    ----------
    labels : array_like of int, shape (nx, ny, nz) or (nx, ny)
        Grain label per voxel, axis 0 = x, axis 2 = depth. Any integers; relabelled
        to 0 .. n-1 in ``numpy.unique`` order.
    spacing : float or (float, float, float)
        Voxel size (m); a 2-D image needs the layer thickness as the third.
    quaternions : ndarray, shape (n, 4), optional
        Orientation per grain (after relabelling); default uniformly random.
    periodic : bool
        Whether x and y wrap.
    rng : int or numpy.random.Generator, optional
        Seed for the random orientations.
    """
    lab = np.asarray(labels)
    if lab.ndim not in (2, 3) or lab.size == 0 or not np.issubdtype(lab.dtype, np.integer):
        raise ParameterError("labels", f"got an array of shape {lab.shape} and dtype {lab.dtype}; "
                                       "expected a 2-D or 3-D integer label image")
    if lab.ndim == 2:
        lab = lab[:, :, None]
    h = _spacing3(spacing)
    new, uniq, q = relabel(lab, quaternions, rng)
    seed_value = recorded_seed(rng)
    recipe = dict(generator="label_volume", spacing=list(h), periodic=bool(periodic),
                  original_labels=uniq.tolist(), seed=seed_value)
    return Microstructure(new, h, q, bool(periodic), recipe)
