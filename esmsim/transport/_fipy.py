"""The same finite-volume problem set up in FiPy: an independent reference for the operator.

The static problem ``div(D grad c) = 0`` and the frequency-domain problem ``i omega c = div(D grad c)``
with ``c = f(rho)`` on the surface z = 0 (FiPy's ``facesFront``) and no flux elsewhere. Face
coefficients are the harmonic means of the cell values (FiPy's default would be arithmetic); diagonal
anisotropic D is a rank-2 face tensor. Grain-boundary slabs have no FiPy counterpart here.

The frequency domain is FiPy's coupled real 2 x 2 block system for ``c = a + i b``:
``div(D grad a) + omega b = 0`` and ``omega a - div(D grad b) = 0``. The second equation must be written
with the source term positive: FiPy 4.0.3 silently drops an ``ImplicitSourceTerm`` of another variable
whose coefficient is negative (``div(D grad b) - omega a``, or ``coeff=-omega``, leaves the a -> b block
empty; we read the assembled matrix to find this), which is why an earlier attempt "did not converge".
"""

from __future__ import annotations

import numpy as np

from ..microstructure._grid import Grid
from ._tip import tip_profile

__all__ = ["fipy_static_solve", "fipy_frequency_solve", "fipy_time_solve"]


def fipy_static_solve(grid: Grid, D: np.ndarray, tip_xy, *, profile: str, width: float) -> np.ndarray:
    """Solve the static tip problem with FiPy; returns c per unit C0, shape ``grid.shape``.

    Parameters
    ----------
    grid : Grid
    D : ndarray, shape (nx, ny, nz, 3) or (nx, ny, nz, 3, 3)
        Diagonal diffusivities (m^2/s) per cell, or full (rotated) tensors. FiPy takes the
        off-diagonal part of the flux as an explicit source from the last iterate's cell gradients
        (their harmonic face mean), so full tensors are solved by sweeps to a fixed point; the faces
        take the harmonic mean of the diagonal and the arithmetic mean of the off-diagonal entries,
        and only the surface among the exterior faces keeps its cross terms (on the walls they would
        put the cross flux through a no-flux face).
    tip_xy : (float, float)
        Tip position (m).
    profile, width
        Tip field profile and width (m); the profile must apply on the whole
        surface (``"lorentzian"`` or ``"point_charge"``).
    """
    return _solve(grid, D, tip_xy, profile, width)


SWEEP_TOL = 1e-10  # largest change of c per unit C0 between sweeps at the fixed point (full tensors)
MAX_SWEEPS = 500


def fipy_frequency_solve(grid: Grid, D: np.ndarray, tip_xy, *, profile: str, width: float,
                         omega: float, surface=None) -> np.ndarray:
    """Solve the frequency-domain tip problem with FiPy; returns complex c per unit C0, shape ``grid.shape``.

    Parameters are those of :func:`fipy_static_solve`, plus the angular frequency ``omega`` (rad/s) and
    ``surface`` (optional, shape (nx, ny)): the surface value of each top cell instead of the profile at
    its face centre (e.g. the profile averaged over the face, :func:`contact_profile` ``average``). FiPy
    solves the real 2 x 2 block system for Re c and Im c; with full tensors each part's cross terms are
    explicit sources and the coupled system is swept to its fixed point (4 sweeps at 350 kHz, 9 at 1 kHz
    on a 3-D polycrystal).
    """
    return _solve(grid, D, tip_xy, profile, width, omega=float(omega), surface=surface)


def fipy_time_solve(grid: Grid, D: np.ndarray, tip_xy, *, profile: str, width: float, times,
                    steps_per_output: int = 200, solver=None) -> np.ndarray:
    """The potentiostatic tip switched on at t = 0, in FiPy: ``TransientTerm == DiffusionTerm``.

    Backward Euler with equal steps between output times (``steps_per_output`` of them), so the result
    carries FiPy's first-order time error; returns c per unit C0 at each time, shape ``(n_times,) + grid.shape``.
    ``solver`` is a FiPy solver (default its sparse LU).
    """
    return _solve(grid, D, tip_xy, profile, width, times=np.asarray(times, float), steps=int(steps_per_output),
                  solver=solver)


def _solve(grid, D, tip_xy, profile, width, omega=0.0, times=None, steps=0, solver=None, surface=None):
    import warnings

    with warnings.catch_warnings():
        # FiPy's harmonic face mean divides by zero on exterior faces (values replaced below)
        warnings.filterwarnings("ignore", message="divide by zero", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="invalid value", category=RuntimeWarning)
        return _fipy_problem(grid, D, tip_xy, profile, width, omega, times, steps, solver, surface)


def _fipy_problem(grid, D, tip_xy, profile, width, omega, times, steps, solver, surface=None):
    import fipy as fp

    nx, ny, nz = grid.shape
    mesh = fp.Grid3D(dx=grid.dx, dy=grid.dy, dz=grid.dz)
    flat = lambda arr: np.asarray(arr).transpose(2, 1, 0).ravel()  # (nx, ny, nz) -> FiPy's x-fastest order # noqa: E731
    full = D.ndim == 5
    if full and times is not None:
        raise NotImplementedError("full tensors: the static and frequency-domain problems only")
    diag = np.stack([D[..., k, k] for k in range(3)], -1) if full else D
    tensor = np.zeros((3, 3, mesh.numberOfFaces))
    for k in range(3):
        tensor[k, k] = np.asarray(fp.CellVariable(mesh=mesh, value=flat(diag[..., k])).harmonicFaceValue)
    ext = np.asarray(mesh.exteriorFaces)
    cells = np.asarray(mesh.faceCellIDs[0])[ext]
    for k in range(3):  # exterior faces: the adjacent cell's value (only the surface faces carry flux)
        tensor[k, k, ext] = flat(diag[..., k])[cells]
    if full:
        front = np.asarray(mesh.facesFront)
        for k in range(3):
            for m in range(3):
                if k != m:
                    tensor[k, m] = np.asarray(fp.CellVariable(mesh=mesh, value=flat(D[..., k, m])).arithmeticFaceValue)
                    tensor[k, m, ext] = np.where(front[ext], flat(D[..., k, m])[cells], 0.0)
    c = fp.CellVariable(mesh=mesh, value=0.0)
    fx, fy, _ = (np.asarray(v) for v in mesh.faceCenters)
    f, mask = tip_profile(np.hypot(fx - tip_xy[0], fy - tip_xy[1]), profile, width)
    if not np.all(mask):
        raise ValueError("fipy_static_solve: the tip profile must apply on the whole surface")
    if surface is not None:  # each face takes the value of the top cell under it
        i = np.clip(np.searchsorted(grid.edges(0), fx) - 1, 0, nx - 1)
        j = np.clip(np.searchsorted(grid.edges(1), fy) - 1, 0, ny - 1)
        f = np.asarray(surface, float)[i, j]
    c.constrain(fp.FaceVariable(mesh=mesh, value=f), where=mesh.facesFront)
    coeff = fp.FaceVariable(mesh=mesh, rank=2, value=tensor)
    back = lambda v: np.array(v.value, copy=True).reshape(nz, ny, nx).transpose(2, 1, 0)  # noqa: E731 (FiPy reuses its buffer)
    if times is not None:
        eq = fp.TransientTerm(var=c) == fp.DiffusionTerm(coeff=coeff, var=c)
        out, t = [], 0.0
        for t_out in times:
            dt = (t_out - t) / steps
            for _ in range(steps):
                eq.solve(var=c, dt=dt, solver=solver or fp.LinearLUSolver(tolerance=1e-12, iterations=10))
            t = t_out
            out.append(back(c))
        return np.asarray(out)
    if omega == 0.0:
        eq = fp.DiffusionTerm(coeff=coeff, var=c)
        if not full:
            eq.solve(var=c, solver=fp.LinearLUSolver(tolerance=1e-12, iterations=10))
            return back(c)
        _sweep(lambda: eq.sweep(var=c, solver=fp.LinearLUSolver(tolerance=1e-12, iterations=10)), (c,))
        return back(c)
    b = fp.CellVariable(mesh=mesh, value=0.0)
    b.constrain(0.0, where=mesh.facesFront)
    eq_a = fp.DiffusionTerm(coeff=coeff, var=c) + fp.ImplicitSourceTerm(coeff=omega, var=b) == 0
    eq_b = fp.ImplicitSourceTerm(coeff=omega, var=c) - fp.DiffusionTerm(coeff=coeff, var=b) == 0
    eq = eq_a & eq_b
    if not full:
        eq.solve(solver=fp.LinearLUSolver(tolerance=1e-12, iterations=1))
        return back(c) + 1j * back(b)
    _sweep(lambda: eq.sweep(solver=fp.LinearLUSolver(tolerance=1e-12, iterations=1)), (c, b))  # both parts
    return back(c) + 1j * back(b)


def _sweep(sweep, variables):
    """Call ``sweep()`` until no value of ``variables`` (FiPy CellVariables) changes by more than SWEEP_TOL:
    the fixed point of FiPy's explicit cross terms (full tensors)."""
    for _ in range(MAX_SWEEPS):
        old = [np.array(v.value, copy=True) for v in variables]
        sweep()
        if max(np.abs(np.asarray(v.value) - o).max() for v, o in zip(variables, old)) < SWEEP_TOL:
            return
    raise RuntimeError(f"FiPy's sweeps did not settle below {SWEEP_TOL:g} in {MAX_SWEEPS} sweeps")
