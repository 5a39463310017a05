"""Tip response of a voxel volume (full-tensor transport, pores, cracks; no boundary paths yet)."""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ..materials import Material
from ..mechanics._contact import hertz_average_points
from ..mechanics._halfspace import box_kernel
from ..mechanics._points import tensor_box_weights
from ..microstructure._orientations import rotate_diagonal
from ..microstructure._voxel import Microstructure
from ..transport._frequency import solve_frequency, tip_terms
from ..transport._volume import volume_system, volume_tensors, voxel_cells
from ._scan import MapSettings, _z_widths, contact_average, window_range

__all__ = ["volume_response"]


def volume_response(ms: Microstructure, material: Material, settings: MapSettings, tips, *,
                    engine: str = "esmsim") -> np.ndarray:
    """Complex response (m/V) with the tip at each surface point ``(x, y)`` (m) of a voxel volume.

    Each tip is solved on a lateral window of half-width ``settings.window_for(material)`` around it
    (the whole film where that is wider), graded z cells as in the map engine, the full-tensor operator
    (grain boundaries are not represented in volumes yet: the material must have ``gb_enhancement = 1``),
    and the displacement as in the map engine: each voxel's grain Vegard tensor (``settings.vegard =
    "tensor"``) or its trace/3 with the Mindlin kernel, averaged over ``settings.contact_radius``; pores and
    cracks carry no Li.

    Parameters
    ----------
    ms : Microstructure
    material : Material
    settings : MapSettings
        Frequency, tip profile and width, z grading, bottom condition.
    tips : sequence of (float, float)
        Tip positions (m) on the surface.
    engine : {"esmsim", "fipy"}
        ``"fipy"`` solves each window with FiPy (its real 2 x 2 block system) instead: an independent
        check, for volumes whose tensors are diagonal (c axes along x, y or z) and without voids; windows
        are never periodic with FiPy.

    Returns
    -------
    ndarray of complex, shape (len(tips),)
    """
    if engine not in ("esmsim", "fipy"):
        raise ParameterError("engine", f"got {engine!r}; allowed 'esmsim', 'fipy'")
    T = volume_tensors(ms, material)
    if engine == "fipy":
        off = np.abs(T - np.eye(3) * T).max()
        if off > 1e-9 * np.abs(T).max() or ms.void.any():
            raise ParameterError("engine", "'fipy' takes diagonal tensors (c axes along x, y or z) and no pores or "
                                           "cracks; use engine='esmsim'")
    Dzz = np.array([T[..., 2, 2][~ms.void].min()])
    dz = _z_widths(ms, material, settings, np.column_stack([Dzz, Dzz, Dzz]))
    hw = int(np.ceil(settings.window_for(material) / ms.spacing[0]))
    C0 = 1.0 / material.dU_dc
    pref = (1 + material["nu"]) / np.pi * material.beta_isotropic * C0
    tensor = settings.vegard == "tensor"
    if tensor:
        B = rotate_diagonal(ms.rotations, material.principal_vegard())  # (n_grains, 3, 3), m^3/mol
    offsets, weights = hertz_average_points(settings.contact_radius)
    out = []
    hx, hy = ms.spacing[:2]
    for x, y in tips:
        if not (0 <= x <= ms.extent[0] and 0 <= y <= ms.extent[1]):
            raise ParameterError("tip position", f"({x:g}, {y:g}) m is outside the {ms.extent[0]:g} x "
                                                 f"{ms.extent[1]:g} m surface")
        ix, iy = min(int(x / hx), ms.shape[0] - 1), min(int(y / hy), ms.shape[1] - 1)
        xi, ox = window_range(ix, ix, hw, ms.shape[0], ms.periodic)
        yi, oy = window_range(iy, iy, hw, ms.shape[1], ms.periodic)
        whole = xi.size == ms.shape[0] and yi.size == ms.shape[1] and ms.periodic and engine == "esmsim"
        grid, system = volume_system(ms, material, dz, xi=None if whole else xi, yi=None if whole else yi,
                                     tensors=T, bottom=settings.bottom)
        if whole:
            ox, oy = ix, iy
        tip = ((ox + x / hx - ix) * hx, (oy + y / hy - iy) * hy)
        omega = 2 * np.pi * settings.frequency
        if engine == "fipy":
            from ..transport._fipy import fipy_frequency_solve

            Tw = T[voxel_cells(ms, dz, xi, yi)]
            Dd = np.stack([Tw[..., 0, 0], Tw[..., 1, 1], Tw[..., 2, 2]], -1)
            c = fipy_frequency_solve(grid, Dd, tip, profile=settings.tip_profile, width=settings.tip_width,
                                     omega=omega).ravel()
        else:
            diag, b = tip_terms(system, tip, profile=settings.tip_profile, width=settings.tip_width)
            c = solve_frequency(system, omega, diag, b)[0]
        if tensor:
            cols = (np.arange(ms.shape[0]), np.arange(ms.shape[1])) if whole else (xi, yi)
            beta = B[ms.labels[voxel_cells(ms, dz, *cols)]].reshape(-1, 3, 3)
            W = contact_average(lambda p: tensor_box_weights(system.boxes, p, material["nu"]), tip, offsets, weights)
            out.append(C0 * (np.einsum("nij,nij->n", W, beta) @ c))
        else:
            out.append(pref * (contact_average(lambda p: box_kernel(system.boxes, p), tip, offsets, weights) @ c))
    return np.asarray(out)
