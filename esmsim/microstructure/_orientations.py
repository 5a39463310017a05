"""Crystal orientations: sampling and conversions.

Convention: a grain's rotation ``R`` maps crystal-frame vectors to the sample
frame (PHYSICS.md sec. 1); a crystal tensor ``T`` becomes ``R T R^T``.
Quaternions are stored scalar-first ``(w, x, y, z)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_quaternions", "quaternions_to_matrices", "matrices_to_bunge", "rotate_diagonal"]


def random_quaternions(n: int, *, rng=None) -> np.ndarray:
    """Unit quaternions uniformly distributed on SO(3) (Haar measure).

    A normalised 4-D standard normal vector is uniform on the 3-sphere, whose
    double cover of SO(3) makes the rotations Haar-distributed.

    Parameters
    ----------
    n : int
        Number of orientations.
    rng : int or numpy.random.Generator, optional
        Seed or generator.

    Returns
    -------
    ndarray, shape (n, 4)
        Scalar-first unit quaternions with ``w >= 0``.
    """
    rng = np.random.default_rng(rng)
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return q


def quaternions_to_matrices(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (crystal -> sample) from scalar-first quaternions, shape (n, 3, 3)."""
    q = np.asarray(q, dtype=float)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)


def matrices_to_bunge(R: np.ndarray) -> np.ndarray:
    """Bunge Euler angles (phi1, Phi, phi2) in radians, ZXZ, of the crystal->sample rotations ``R``.

    With ``R = Rz(phi1) Rx(Phi) Rz(phi2)``, the crystal c axis in the sample
    frame is ``R[:, 2] = (sin phi1 sin Phi, -cos phi1 sin Phi, cos Phi)``.
    """
    R = np.asarray(R, dtype=float)
    Phi = np.arccos(np.clip(R[:, 2, 2], -1.0, 1.0))
    phi1 = np.arctan2(R[:, 0, 2], -R[:, 1, 2])
    phi2 = np.arctan2(R[:, 2, 0], R[:, 2, 1])
    small = np.abs(np.sin(Phi)) < 1e-10
    phi1 = np.where(small, np.arctan2(R[:, 1, 0], R[:, 0, 0]), phi1)
    phi2 = np.where(small, 0.0, phi2)
    return np.stack([np.mod(phi1, 2 * np.pi), Phi, np.mod(phi2, 2 * np.pi)], axis=-1)


def rotate_diagonal(R: np.ndarray, principal: np.ndarray) -> np.ndarray:
    """Sample-frame tensors ``R diag(principal) R^T`` for each rotation, shape (n, 3, 3)."""
    R = np.asarray(R, dtype=float)
    return np.einsum("nik,k,njk->nij", R, np.asarray(principal, dtype=float), R)


class GrainOrientations:
    """Per-grain orientation views shared by the microstructure classes (which hold ``quaternions``)."""

    quaternions: np.ndarray

    @property
    def n_grains(self) -> int:
        return int(self.quaternions.shape[0])

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
        return np.arccos(np.clip(np.abs(self.rotations[:, 2, 2]), 0.0, 1.0))


def recorded_seed(rng):
    """The seed to write into a recipe: ``rng`` when it is an int (it reproduces the draw), else None
    (a Generator's state is not a recipe)."""
    return int(rng) if isinstance(rng, (int, np.integer)) else None
