"""Tip response of a voxel volume (full-tensor transport, smeared boundaries, pores, cracks)."""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ..materials import Material
from ..mechanics._halfspace import box_kernel
from ..microstructure._voxel import Microstructure
from ..transport._frequency import solve_frequency, tip_terms
from ..transport._volume import volume_system, volume_tensors
from ._scan import MapSettings, _z_widths

__all__ = ["volume_response"]


def _window(lo, hw, n, periodic):
    if periodic:
        r = np.arange(lo - hw, lo + hw + 1)
        if r.size >= n:
            return np.arange(n), lo
        return r % n, hw
    r = np.arange(max(lo - hw, 0), min(lo + hw + 1, n))
    return r, lo - r[0]


def volume_response(ms: Microstructure, material: Material, settings: MapSettings, tips) -> np.ndarray:
    """Complex response (m/V) with the tip at each surface point ``(x, y)`` (m) of a voxel volume.

    Each tip is solved on a lateral window of half-width ``settings.window_for(material)`` around it
    (the whole film where that is wider), graded z cells as in the map engine, the full-tensor operator
    with the boundaries smeared as tangential tensors, and the isotropic Mindlin kernel for the
    displacement (pores and cracks carry no Li, so they add nothing).

    Parameters
    ----------
    ms : Microstructure
    material : Material
    settings : MapSettings
        Frequency, tip profile and width, z grading, bottom condition.
    tips : sequence of (float, float)
        Tip positions (m) on the surface.

    Returns
    -------
    ndarray of complex, shape (len(pixels),)
    """
    T = volume_tensors(ms, material)
    Dzz = np.array([T[..., 2, 2][~ms.void].min()])
    dz = _z_widths(ms, material, settings, np.column_stack([Dzz, Dzz, Dzz]))
    hw = int(np.ceil(settings.window_for(material) / ms.spacing[0]))
    C0 = 1.0 / material.dU_dc
    pref = (1 + material["nu"]) / np.pi * material.beta_isotropic * C0
    out = []
    hx, hy = ms.spacing[:2]
    for x, y in tips:
        if not (0 <= x <= ms.extent[0] and 0 <= y <= ms.extent[1]):
            raise ParameterError("tip position", f"({x:g}, {y:g}) m is outside the {ms.extent[0]:g} x "
                                                 f"{ms.extent[1]:g} m surface")
        ix, iy = min(int(x / hx), ms.shape[0] - 1), min(int(y / hy), ms.shape[1] - 1)
        xi, ox = _window(ix, hw, ms.shape[0], ms.periodic)
        yi, oy = _window(iy, hw, ms.shape[1], ms.periodic)
        whole = xi.size == ms.shape[0] and yi.size == ms.shape[1] and ms.periodic
        grid, system = volume_system(ms, material, dz, xi=None if whole else xi, yi=None if whole else yi,
                                     tensors=T, bottom=settings.bottom)
        if whole:
            ox, oy = ix, iy
        tip = ((ox + x / hx - ix) * hx, (oy + y / hy - iy) * hy)
        diag, b = tip_terms(system, tip, profile=settings.tip_profile, width=settings.tip_width)
        c = solve_frequency(system, 2 * np.pi * settings.frequency, diag, b)[0]
        out.append(pref * (box_kernel(system.boxes, tip) @ c))
    return np.asarray(out)
