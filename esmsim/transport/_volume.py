"""Transport in voxel volumes: full per-grain tensors, pores and cracks.

Grain boundaries are not represented in voxel volumes yet. Smearing a boundary's ``delta * D_gb``
into the voxels beside it (an enhanced tangential tensor) was tried and rejected: at ESM frequencies
the boundary is thicker than the bulk diffusion length (Harrison regime C), its own storage ``delta``
sets the response, and a smeared channel stores Li over a whole voxel; on a bicrystal with the tip on
the boundary it gave 32, 40 and 42 pm/V at 8, 4 and 2 nm voxels against 27 pm/V for the resolved
boundary. The columnar engine's slab unknowns with the sub-grid bulk layer are right there (validation
case ``gb_resolved``); carrying them to inclined 3-D boundaries is the next step. Until then a volume
refuses a material with boundary enhancement instead of silently dropping it.
"""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ..microstructure._grid import Grid
from ..microstructure._voxel import Microstructure
from ._tensor import assemble_tensor, grain_tensors

__all__ = ["volume_tensors", "volume_system", "voxel_cells"]


def volume_tensors(ms: Microstructure, material) -> np.ndarray:
    """Diffusivity tensor ``R diag(D) R^T`` of every voxel's grain (m^2/s), shape (nx, ny, nz, 3, 3).

    Raises
    ------
    ParameterError
        The material has grain-boundary enhancement (``gb_enhancement != 1``), which voxel volumes
        do not represent yet.
    """
    if material["gb_enhancement"] != 1.0:
        raise ParameterError("material.gb_enhancement", f"got {material['gb_enhancement']:g}; voxel volumes "
                             "do not carry grain-boundary paths yet (columnar films do): set it to 1 for a "
                             "volume, or simulate a columnar film")
    grains = grain_tensors(ms.rotations, material.principal_diffusivities())
    return grains[ms.labels]


def voxel_cells(ms: Microstructure, dz, xi, yi):
    """Index (``np.ix_``) of the voxel behind every cell of the window ``xi x yi`` on graded z cells ``dz``:
    each cell takes the voxel layer that holds its centre."""
    dz = np.asarray(dz, float)
    zc = np.cumsum(dz) - 0.5 * dz
    if zc[-1] > ms.thickness:
        raise ParameterError("dz", f"the z cells reach {dz.sum():g} m, deeper than the film ({ms.thickness:g} m)")
    layer = np.minimum((zc / ms.spacing[2]).astype(int), ms.shape[2] - 1)
    return np.ix_(np.asarray(xi), np.asarray(yi), layer)


def volume_system(ms: Microstructure, material, dz, *, xi=None, yi=None, tensors=None, bottom="blocking"):
    """Assemble the full-tensor system of a volume (or a lateral window of it) on graded z cells.

    Parameters
    ----------
    ms : Microstructure
    material : Material
    dz : ndarray
        z cell widths (m) from the surface, summing to at most the thickness; each cell takes the
        voxel layer that holds its centre.
    xi, yi : ndarray of int, optional
        Voxel columns of a lateral window (wrapped indices for periodic films); default all.
        A window is not periodic; the whole film keeps the film's periodicity.
    tensors : ndarray, optional
        Precomputed :func:`volume_tensors`.
    bottom : {"blocking", "reservoir"}

    Returns
    -------
    (Grid, DiffusionSystem)
    """
    T = volume_tensors(ms, material) if tensors is None else tensors
    whole = xi is None and yi is None
    xi = np.arange(ms.shape[0]) if xi is None else np.asarray(xi)
    yi = np.arange(ms.shape[1]) if yi is None else np.asarray(yi)
    sel = voxel_cells(ms, dz, xi, yi)
    grid = Grid(np.full(xi.size, ms.spacing[0]), np.full(yi.size, ms.spacing[1]), dz)
    periodic = (ms.periodic, ms.periodic) if whole else (False, False)
    system = assemble_tensor(grid, T[sel], active=~ms.void[sel], periodic=periodic, bottom=bottom)
    return grid, system
