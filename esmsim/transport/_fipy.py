"""The same finite-volume problem set up in FiPy: an independent reference for the operator.

For now the static problem ``div(D grad c) = 0`` with ``c = f(rho)`` on the
surface z = 0 (FiPy's ``facesFront``) and no flux elsewhere. Face
coefficients are the harmonic means of the cell values (FiPy's default would
be arithmetic); diagonal anisotropic D is a rank-2 face tensor. Grain-boundary
slabs have no FiPy counterpart here.

The frequency-domain problem as a real 2 x 2 block system
(``div(D grad a) + omega b = 0``, ``div(D grad b) - omega a = 0``) coupled
with FiPy 4.0.3's ``&`` did not converge to the 1-D closed form
``exp(-(1+i) z / l)`` in our trials (the imaginary part stayed zero after
one solve and repeated sweeps diverged); it is left to the transport issue.
"""

from __future__ import annotations

import numpy as np

from ..microstructure._grid import Grid
from ._tip import tip_profile

__all__ = ["fipy_static_solve"]


def fipy_static_solve(grid: Grid, D: np.ndarray, tip_xy, *, profile: str, width: float) -> np.ndarray:
    """Solve the static tip problem with FiPy; returns c per unit C0, shape ``grid.shape``.

    Parameters
    ----------
    grid : Grid
    D : ndarray, shape (nx, ny, nz, 3)
        Diagonal diffusivities (m^2/s) per cell.
    tip_xy : (float, float)
        Tip position (m).
    profile, width
        Tip field profile and width (m); the profile must apply on the whole
        surface (``"lorentzian"`` or ``"point_charge"``).
    """
    import warnings

    with warnings.catch_warnings():
        # FiPy's harmonic face mean divides by zero on exterior faces (values replaced below)
        warnings.filterwarnings("ignore", message="divide by zero", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="invalid value", category=RuntimeWarning)
        return _static(grid, D, tip_xy, profile, width)


def _static(grid, D, tip_xy, profile, width):
    import fipy as fp

    nx, ny, nz = grid.shape
    mesh = fp.Grid3D(dx=grid.dx, dy=grid.dy, dz=grid.dz)
    flat = lambda arr: np.asarray(arr).transpose(2, 1, 0).ravel()  # (nx, ny, nz) -> FiPy's x-fastest order # noqa: E731
    tensor = np.zeros((3, 3, mesh.numberOfFaces))
    for k in range(3):
        tensor[k, k] = np.asarray(fp.CellVariable(mesh=mesh, value=flat(D[..., k])).harmonicFaceValue)
    ext = np.asarray(mesh.exteriorFaces)
    for k in range(3):  # exterior faces: the adjacent cell's value (only the surface faces carry flux)
        cells = np.asarray(mesh.faceCellIDs[0])[ext]
        tensor[k, k, ext] = flat(D[..., k])[cells]
    c = fp.CellVariable(mesh=mesh, value=0.0)
    fx, fy, _ = (np.asarray(v) for v in mesh.faceCenters)
    f, mask = tip_profile(np.hypot(fx - tip_xy[0], fy - tip_xy[1]), profile, width)
    if not np.all(mask):
        raise ValueError("fipy_static_solve: the tip profile must apply on the whole surface")
    c.constrain(fp.FaceVariable(mesh=mesh, value=f), where=mesh.facesFront)
    fp.DiffusionTerm(coeff=fp.FaceVariable(mesh=mesh, rank=2, value=tensor), var=c).solve(
        var=c, solver=fp.LinearLUSolver(tolerance=1e-12, iterations=10))
    return np.asarray(c.value).reshape(nz, ny, nx).transpose(2, 1, 0)
