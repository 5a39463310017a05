"""Crystal symmetry, disorientation angles and grain-boundary classes.

Quaternions are scalar-first ``(w, x, y, z)`` and describe the crystal ->
sample rotation ``R`` of a grain (PHYSICS.md sec. 1). A crystal symmetry
operation ``S`` (in the crystal frame) leaves the grain unchanged:
``R`` and ``R S`` are the same orientation. The misorientation from grain 1 to
grain 2 is ``R1^T R2``; its symmetry-equivalent forms are
``S1^-1 R1^T R2 S2``, and the disorientation angle is the smallest rotation
angle among them, ``min_S angle(R1^T R2 S)`` (conjugation does not change an
angle, so one side suffices for the angle).

Only the proper rotations of each Laue class matter: 432 (cubic, LiMn2O4),
32 (trigonal -3m, LiCoO2 and NMC; two-fold axes along a = x), 222
(orthorhombic, LiFePO4), 622 (hexagonal) and 1 (triclinic).
"""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError

__all__ = ["SYMMETRIES", "symmetry_group", "quat_multiply", "quat_conjugate", "disorientation_angle",
           "classify_boundaries", "BOUNDARY_CLASSES", "TWINS"]

SYMMETRIES = ("triclinic", "orthorhombic", "trigonal", "hexagonal", "cubic")

# boundary class codes (CF flag_values / flag_meanings in datasets)
BOUNDARY_CLASSES = {0: "high_angle", 1: "low_angle", 2: "twin"}


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a b`` of scalar-first quaternions (broadcasting over leading axes)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Conjugate (inverse of a unit quaternion)."""
    return np.asarray(q, float) * np.array([1.0, -1.0, -1.0, -1.0])


def _axis_angle(axis, degrees) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    h = np.radians(degrees) / 2
    return np.concatenate([[np.cos(h)], np.sin(h) * axis])


_GENERATORS = {
    "triclinic": [],
    "orthorhombic": [((1, 0, 0), 180), ((0, 0, 1), 180)],
    "trigonal": [((0, 0, 1), 120), ((1, 0, 0), 180)],
    "hexagonal": [((0, 0, 1), 60), ((1, 0, 0), 180)],
    "cubic": [((0, 0, 1), 90), ((1, 1, 1), 120)],
}

# twin (special) misorientations: LiCoO2 / NMC 60 deg about c (the stacking ABC -> ACB, not a symmetry of -3m);
# cubic Sigma3 = 60 deg about <111>
TWINS = {
    "trigonal": _axis_angle((0, 0, 1), 60),
    "hexagonal": None,
    "cubic": _axis_angle((1, 1, 1), 60),
    "orthorhombic": None,
    "triclinic": None,
}

_CACHE: dict[str, np.ndarray] = {}


def symmetry_group(symmetry: str) -> np.ndarray:
    """The proper rotations of a crystal system as unit quaternions (one of each +-q pair), shape (n, 4).

    Built as the closure of the group's generators. Sizes: triclinic 1,
    orthorhombic 4, trigonal 6, hexagonal 12, cubic 24.
    """
    if symmetry not in _GENERATORS:
        raise ParameterError("symmetry", f"got {symmetry!r}; allowed: {', '.join(SYMMETRIES)}")
    if symmetry not in _CACHE:
        group = [np.array([1.0, 0, 0, 0])]
        gens = [_axis_angle(a, d) for a, d in _GENERATORS[symmetry]]
        frontier = list(group)
        while frontier:
            new = []
            for g in frontier:
                for h in gens:
                    p = quat_multiply(g, h)
                    p = p if p[0] > 1e-12 or (abs(p[0]) <= 1e-12 and _first_nonzero(p) > 0) else -p
                    if not any(abs(abs(np.dot(p, e)) - 1) < 1e-9 for e in group):
                        group.append(p)
                        new.append(p)
            frontier = new
        _CACHE[symmetry] = np.array(group)
    return _CACHE[symmetry].copy()


def _first_nonzero(p):
    nz = p[np.abs(p) > 1e-12]
    return nz[0] if nz.size else 1.0


def _angle_from_w(w):
    return 2.0 * np.arccos(np.clip(np.abs(w), 0.0, 1.0))


def disorientation_angle(q1: np.ndarray, q2: np.ndarray, symmetry: str) -> np.ndarray:
    """Smallest rotation angle (rad) between orientations ``q1`` and ``q2`` under the crystal symmetry.

    Parameters
    ----------
    q1, q2 : ndarray, shape (..., 4)
        Scalar-first unit quaternions (crystal -> sample), broadcast together.
    symmetry : str
        One of ``SYMMETRIES``.

    Returns
    -------
    ndarray
        Disorientation angles in rad, in [0, pi].
    """
    S = symmetry_group(symmetry)
    dq = quat_multiply(quat_conjugate(q1), q2)
    # scalar part of dq * s for every s: dq . conj(s)
    w = np.abs(dq @ quat_conjugate(S).T)
    return _angle_from_w(w.max(axis=-1))


def classify_boundaries(q1, q2, symmetry: str, *, low_angle: float = np.radians(15.0),
                        twin_tolerance: float = np.radians(5.0)) -> tuple[np.ndarray, np.ndarray]:
    """Disorientation angle (rad) and class code of boundaries between orientations ``q1`` and ``q2``.

    Classes (``BOUNDARY_CLASSES``): 1 low angle (disorientation < ``low_angle``),
    2 twin (within ``twin_tolerance`` of the symmetry's twin misorientation,
    where it has one: 60 deg about c for trigonal, Sigma3 for cubic), 0 high angle.
    """
    q1, q2 = np.broadcast_arrays(np.asarray(q1, float), np.asarray(q2, float))
    angle = disorientation_angle(q1, q2, symmetry)
    cls = np.where(angle < low_angle, 1, 0)
    T = TWINS[symmetry]
    if T is not None:
        S = symmetry_group(symmetry)
        dq = quat_multiply(quat_conjugate(q1), q2)
        best = np.zeros(angle.shape)
        for s1 in S:
            y = quat_multiply(quat_conjugate(T), quat_multiply(quat_conjugate(s1), dq))
            best = np.maximum(best, np.abs(y @ quat_conjugate(S).T).max(axis=-1))
        cls = np.where((cls == 0) & (_angle_from_w(best) < twin_tolerance), 2, cls)
    return angle, cls
