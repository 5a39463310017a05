"""Transport in voxel volumes: full per-grain tensors, pores, cracks and grain-boundary slabs.

Grain boundaries are slab unknowns on the cell faces between grains, of all three orientations
(:func:`assemble_tensor` with ``labels``): each stores ``w delta`` times its face, exchanges with the
cells on both sides through the half-column admittance (the sub-grid bulk layer at ESM frequencies)
and conducts ``delta D_gb`` to the slabs that share an edge with it, with staircase weights from the
boundary planes' normals (:meth:`Microstructure.boundary_normal`). It is the columnar engine's slab
model carried to inclined 3-D boundaries; on an extruded columnar film both give the same operator.

Smearing a boundary's ``delta * D_gb`` into the voxels beside it (an enhanced tangential tensor) was
tried and rejected: at ESM frequencies the boundary is thicker than the bulk diffusion length
(Harrison regime C), its own storage ``delta`` sets the response, and a smeared channel stores Li
over a whole voxel; on a bicrystal with the tip on the boundary it gave 32, 40 and 42 pm/V at 8, 4
and 2 nm voxels against 27 pm/V for the resolved boundary.
"""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ..microstructure._grid import Grid
from ..microstructure._voxel import Microstructure, voxel_face_centres, voxel_faces
from ._boundaries import SECTION_MIN_DIP, steep
from ._tensor import assemble_tensor, grain_tensors

__all__ = ["flat_boundaries", "has_boundaries", "snap_to_layers", "volume_tensors", "volume_system", "voxel_cells"]


def volume_tensors(ms: Microstructure, material) -> np.ndarray:
    """Diffusivity tensor ``R diag(D) R^T`` of every voxel's grain (m^2/s), shape (nx, ny, nz, 3, 3)."""
    grains = grain_tensors(ms.rotations, material.principal_diffusivities())
    return grains[ms.labels]


def has_boundaries(ms: Microstructure, material) -> bool:
    """Whether the volume's grain boundaries carry slabs: the material's boundaries differ from the bulk
    (``gb_enhancement`` or a class factor other than 1) and there is more than one grain."""
    differ = any(material[k] != 1.0 for k in ("gb_enhancement", "gb_factor_low_angle", "gb_factor_twin"))
    return differ and ms.n_grains > 1


def flat_boundaries(ms: Microstructure) -> bool:
    """Whether any boundary plane of the volume is carried by its horizontal faces, which then hold Li
    (:func:`~esmsim.transport.slab_roles`), so that the z cells beside the voxel layers' interfaces must be
    wider than twice the slab: planes dipping less than 45 deg, or with the tessellation's sections less
    than :data:`~esmsim.transport._boundaries.SECTION_MIN_DIP`."""
    f = voxel_faces(ms.material_labels, ms.periodic)
    if not len(f["axis"]):
        return False
    n = ms.boundary_normal(f["grains"][:, 0], f["grains"][:, 1], voxel_face_centres(f, ms.spacing))
    return bool(np.any(~steep(n, 45.0 if ms.seeds is None else SECTION_MIN_DIP)))


def snap_to_layers(dz, hz: float, clearance: float, thickness: float) -> np.ndarray:
    """Graded z cells made to end on the voxel layers' interfaces (depths ``k hz``), with every cell next
    to such an interface at least ``clearance`` (m) thick (the cells beside a horizontal boundary slab
    must be wider than twice the slab); the other cells keep their edges. The cells reach down to the
    next interface below ``sum(dz)`` (at most ``thickness``).

    Raises
    ------
    ParameterError
        The voxel layers are thinner than ``clearance``.
    """
    if hz < clearance:
        raise ParameterError("microstructure.spacing", f"voxel layers of {hz:g} m are thinner than {clearance:g} m, "
                                                       "twice the grain-boundary width: refine delta or coarsen z")
    ze = np.concatenate([[0.0], np.cumsum(dz)])
    depth = min(hz * np.ceil(ze[-1] / hz * (1 - 1e-12)), thickness)
    cuts = hz * np.arange(1, int(round(depth / hz)) + 1)
    keep = np.ones(ze.size, bool)
    for t in cuts:
        keep &= np.abs(ze - t) >= clearance
    keep[0] = True
    return np.diff(np.unique(np.concatenate([ze[keep], cuts])))


def voxel_cells(ms: Microstructure, dz, xi, yi):
    """Index (``np.ix_``) of the voxel behind every cell of the window ``xi x yi`` on graded z cells ``dz``:
    each cell takes the voxel layer that holds its centre."""
    dz = np.asarray(dz, float)
    zc = np.cumsum(dz) - 0.5 * dz
    if zc[-1] > ms.thickness:
        raise ParameterError("dz", f"the z cells reach {dz.sum():g} m, deeper than the film ({ms.thickness:g} m)")
    layer = np.minimum((zc / ms.spacing[2]).astype(int), ms.shape[2] - 1)
    return np.ix_(np.asarray(xi), np.asarray(yi), layer)


def volume_system(ms: Microstructure, material, dz, *, xi=None, yi=None, tensors=None, bottom="blocking",
                  omega: float | None = None):
    """Assemble the full-tensor system of a volume (or a lateral window of it) on graded z cells.

    Parameters
    ----------
    ms : Microstructure
    material : Material
    dz : ndarray
        z cell widths (m) from the surface, summing to at most the thickness; each cell takes the
        voxel layer that holds its centre. With boundary slabs (:func:`has_boundaries`) give cells that
        end on the voxel layers (:func:`snap_to_layers`).
    xi, yi : ndarray of int, optional
        Voxel columns of a lateral window (wrapped indices for periodic films); default all.
        A window is not periodic; the whole film keeps the film's periodicity.
    tensors : ndarray, optional
        Precomputed :func:`volume_tensors`.
    bottom : {"blocking", "reservoir"}
    omega : float, optional
        Angular frequency (rad/s) of a frequency-domain solve: the slabs' exchange with the bulk then
        resolves the bulk boundary layer beside them (see :func:`assemble_tensor`).

    Returns
    -------
    (Grid, DiffusionSystem)
    """
    whole = xi is None and yi is None
    xi = np.arange(ms.shape[0]) if xi is None else np.asarray(xi)
    yi = np.arange(ms.shape[1]) if yi is None else np.asarray(yi)
    sel = voxel_cells(ms, dz, xi, yi)
    grid = Grid(np.full(xi.size, ms.spacing[0]), np.full(yi.size, ms.spacing[1]), dz)
    periodic = (ms.periodic, ms.periodic) if whole else (False, False)
    slabs = {}
    if has_boundaries(ms, material):
        from ..probe._scan import boundary_factors

        origin = np.array([xi[0] * ms.spacing[0], yi[0] * ms.spacing[1], 0.0])
        slabs = dict(labels=ms.labels[sel], D_gb=material.D_gb * boundary_factors(ms, material),
                     gb_width=material["gb_width"], omega=omega,
                     normal=lambda g1, g2, c: ms.boundary_normal(g1, g2, c + origin),
                     section=None if ms.seeds is None else ms.section, section_origin=(int(xi[0]), int(yi[0])))
    try:
        # the cells' tensors straight from the grains' (the film's own voxel tensors are never made here)
        D = tensors[sel] if tensors is not None else \
            grain_tensors(ms.rotations, material.principal_diffusivities())[ms.labels[sel]]
        system = assemble_tensor(grid, D, active=~ms.void[sel], periodic=periodic, bottom=bottom, **slabs)
    except ValueError as e:
        if str(e).startswith("gb_width"):
            raise ParameterError("material.gb_width", str(e)[len("gb_width: "):]) from None
        raise
    return grid, system
