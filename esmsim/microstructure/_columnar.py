"""Columnar thin-film microstructure: a 2-D Voronoi tessellation extruded through the film.

The grain boundaries are vertical planes; in the voxel model they lie on the
faces between pixels of different grains. Ground truth (seeds, exact distance
to the nearest boundary plane, boundary normals) comes from the tessellation
itself, not from the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from .._errors import ParameterError
from ._grid import Grid
from ._orientations import matrices_to_bunge, quaternions_to_matrices, random_quaternions

__all__ = ["ColumnarMicrostructure", "columnar_voronoi"]


@dataclass(frozen=True, eq=False)
class ColumnarMicrostructure:
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
    seeds : ndarray, shape (n_grains, 2)
        Voronoi seed positions (m).
    periodic : bool
        Whether the tessellation (and labels) are periodic in x and y.
    recipe : dict
        The arguments that generated it (including ``rng`` seed when an int).
    """

    labels: np.ndarray
    spacing: tuple[float, float]
    thickness: float
    quaternions: np.ndarray
    seeds: np.ndarray
    periodic: bool = True
    recipe: dict = field(default_factory=dict)

    @property
    def n_grains(self) -> int:
        return int(self.quaternions.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.labels.shape)

    @property
    def extent(self) -> tuple[float, float]:
        """Lateral size ``(Lx, Ly)`` in m."""
        return (self.labels.shape[0] * self.spacing[0], self.labels.shape[1] * self.spacing[1])

    @property
    def rotations(self) -> np.ndarray:
        """Crystal -> sample rotation matrices, shape (n_grains, 3, 3)."""
        return quaternions_to_matrices(self.quaternions)

    @property
    def euler_bunge(self) -> np.ndarray:
        """Bunge Euler angles (rad), shape (n_grains, 3)."""
        return matrices_to_bunge(self.rotations)

    @property
    def c_axis_inclination(self) -> np.ndarray:
        """Angle (rad, 0..pi/2) between each grain's crystal c axis and the surface normal."""
        return np.arccos(np.abs(self.rotations[:, 2, 2]))

    def pixel_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)`` in m, 1-D each."""
        return ((np.arange(self.shape[0]) + 0.5) * self.spacing[0], (np.arange(self.shape[1]) + 0.5) * self.spacing[1])

    def _displacement(self, d: np.ndarray) -> np.ndarray:
        if self.periodic:
            L = np.asarray(self.extent)
            d = d - L * np.round(d / L)
        return d

    def boundary_normal(self, g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
        """Unit in-plane normal of the boundary plane between grains ``g1`` and ``g2``, shape (..., 2)."""
        d = self._displacement(self.seeds[np.asarray(g2)] - self.seeds[np.asarray(g1)])
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def boundary_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact distance (m) from points to the nearest grain-boundary plane of the tessellation.

        For a point in the cell of seed ``s1``, the distance to the bisector with
        seed ``sj`` is ``(|p - sj|^2 - |p - s1|^2) / (2 |sj - s1|)``; the minimum
        over the 12 nearest seeds is taken.
        """
        pts = np.stack(np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float)), axis=-1)
        flat = pts.reshape(-1, 2)
        k = min(12, self.n_grains)
        if k < 2:
            return np.full(pts.shape[:-1], np.inf)
        tree = self._tree()
        dist, idx = tree.query(np.mod(flat, self.extent) if self.periodic else flat, k=k)
        s1 = self.seeds[idx[:, 0]]
        sep = np.linalg.norm(self._displacement(self.seeds[idx[:, 1:]] - s1[:, None, :]), axis=-1)
        bis = (dist[:, 1:] ** 2 - dist[:, :1] ** 2) / (2 * sep)
        return bis.min(axis=1).reshape(pts.shape[:-1])

    def _tree(self) -> cKDTree:
        box = self.extent if self.periodic else None
        return cKDTree(np.mod(self.seeds, self.extent) if self.periodic else self.seeds, boxsize=box)

    def grid(self, dz: np.ndarray) -> Grid:
        """The 3-D grid of the film with the given z cell widths (m)."""
        return Grid(np.full(self.shape[0], self.spacing[0]), np.full(self.shape[1], self.spacing[1]), dz)


def columnar_voronoi(
    size: tuple[float, float],
    *,
    spacing: float,
    thickness: float,
    grain_size: float,
    periodic: bool = True,
    rng=None,
) -> ColumnarMicrostructure:
    """Generate a columnar film from a 2-D Voronoi tessellation with random orientations.

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
    Lx, Ly = (float(s) for s in size)
    for name, v in (("size[0]", Lx), ("size[1]", Ly), ("spacing", spacing), ("thickness", thickness),
                    ("grain_size", grain_size)):
        if not (np.isfinite(v) and v > 0):
            raise ParameterError(f"microstructure.{name}", f"got {v!r}; must be a positive length (m)")
    nx, ny = int(round(Lx / spacing)), int(round(Ly / spacing))
    if nx < 2 or ny < 2:
        raise ParameterError("microstructure.spacing", f"got {spacing:g} m for a {Lx:g} x {Ly:g} m film; need >= 2 pixels per side")
    Lx, Ly = nx * spacing, ny * spacing
    seed_value = rng if isinstance(rng, (int, np.integer)) else None
    rng = np.random.default_rng(rng)
    n = max(1, int(round(Lx * Ly / (np.pi * grain_size ** 2 / 4))))
    seeds = rng.uniform(0.0, 1.0, size=(n, 2)) * np.array([Lx, Ly])
    quats = random_quaternions(n, rng=rng)
    xc = (np.arange(nx) + 0.5) * spacing
    yc = (np.arange(ny) + 0.5) * spacing
    X, Y = np.meshgrid(xc, yc, indexing="ij")
    tree = cKDTree(seeds, boxsize=(Lx, Ly) if periodic else None)
    _, lab = tree.query(np.stack([X.ravel(), Y.ravel()], axis=-1))
    labels = lab.reshape(nx, ny).astype(np.int32)
    recipe = dict(generator="columnar_voronoi", size=[Lx, Ly], spacing=spacing, thickness=thickness,
                  grain_size=grain_size, periodic=periodic, seed=seed_value)
    return ColumnarMicrostructure(labels, (spacing, spacing), float(thickness), quats, seeds, periodic, recipe)
