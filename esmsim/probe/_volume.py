"""Tip response of a voxel volume (full-tensor transport, grain-boundary slabs, pores, cracks)."""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ..materials import Material
from ..mechanics._contact import hertz_average_points
from ..mechanics._halfspace import box_kernel
from ..mechanics._points import tensor_box_weights
from ..microstructure._orientations import rotate_diagonal
from ..microstructure._voxel import Microstructure
from ..transport._frequency import contact_profile, solve_frequency, tip_terms
from ..transport._tip import tip_profile
from ..transport._volume import flat_boundaries, has_boundaries, snap_to_layers, volume_system, volume_tensors, voxel_cells
from ._scan import MapSettings, _z_widths, contact_average, window_range

__all__ = ["volume_response"]

DIRECT_BELOW = 2_000  # volumes: iterative above (see solve_frequency's direct_below)


def volume_response(ms: Microstructure, material: Material, settings: MapSettings, tips, *,
                    engine: str = "esmsim") -> np.ndarray:
    """Complex response (m/V) with the tip at each surface point ``(x, y)`` (m) of a voxel volume.

    Each tip is solved on a lateral window of half-width ``settings.window_for(material)`` around it
    (the whole film where that is wider), graded z cells as in the map engine, the full-tensor operator
    with grain-boundary slabs on the faces between grains when the material's boundaries differ from the
    bulk (:func:`esmsim.transport.assemble_tensor`; the z cells then end on the voxel layers), and the
    displacement as in the map engine: each voxel's grain Vegard tensor (``settings.vegard = "tensor"``)
    or its trace/3 with the Mindlin kernel, averaged over ``settings.contact_radius``; a slab's Li takes
    the mean of its two grains' tensors, the sub-grid bulk layer beside it its cell's; pores and cracks
    carry no Li.

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
        check, for volumes whose tensors are diagonal (c axes along x, y or z), without voids and without
        boundary slabs (FiPy has no term for their sub-grid exchange); windows are never periodic with FiPy.

    Returns
    -------
    ndarray of complex, shape (len(tips),)
    """
    if engine not in ("esmsim", "fipy"):
        raise ParameterError("engine", f"got {engine!r}; allowed 'esmsim', 'fipy'")
    T = volume_tensors(ms, material)
    if engine == "fipy":
        off = np.abs(T - np.eye(3) * T).max()
        if off > 1e-9 * np.abs(T).max() or ms.void.any() or has_boundaries(ms, material):
            raise ParameterError("engine", "'fipy' takes diagonal tensors (c axes along x, y or z), no pores or "
                                           "cracks and no boundary slabs (gb_enhancement and the class factors 1); "
                                           "use engine='esmsim'")
    Dzz = np.array([T[..., 2, 2][~ms.void].min()])
    dz = _z_widths(ms, material, settings, np.column_stack([Dzz, Dzz, Dzz]))
    if has_boundaries(ms, material):
        # cells end on the voxel layers; beside them wider than twice the slab where horizontal faces hold
        # Li, else only no slivers
        clear = 2.2 * material["gb_width"] if flat_boundaries(ms) else 0.1 * ms.spacing[2]
        dz = snap_to_layers(dz, ms.spacing[2], clear, ms.thickness)
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
        omega = 2 * np.pi * settings.frequency
        grid, system = volume_system(ms, material, dz, xi=None if whole else xi, yi=None if whole else yi,
                                     tensors=T, bottom=settings.bottom, omega=omega)
        if whole:
            ox, oy = ix, iy
        tip = ((ox + x / hx - ix) * hx, (oy + y / hy - iy) * hy)
        if whole:  # a periodic film: every cell, slab and layer at its image nearest the tip
            system = system.wrapped(tip, ms.extent[:2])
        if engine == "fipy":
            from ..transport._fipy import fipy_frequency_solve

            Tw = T[voxel_cells(ms, dz, xi, yi)]
            Dd = np.stack([Tw[..., 0, 0], Tw[..., 1, 1], Tw[..., 2, 2]], -1)
            f, _ = contact_profile(system, tip, settings.tip_profile, settings.tip_width, average=True)
            c = fipy_frequency_solve(grid, Dd, tip, profile=settings.tip_profile, width=settings.tip_width,
                                     omega=omega, surface=f.reshape(grid.shape[:2])).ravel()
        else:
            diag, b = tip_terms(system, tip, profile=settings.tip_profile, width=settings.tip_width, average=True)
            c = solve_frequency(system, omega, diag, b, direct_below=DIRECT_BELOW)[0]
        amount = c if system.extra_boxes is None else np.concatenate([c, system.extra_map @ c])
        cols = (np.arange(ms.shape[0]), np.arange(ms.shape[1])) if whole else (xi, yi)
        lab = ms.labels[voxel_cells(ms, dz, *cols)].ravel()
        nu = material["nu"]

        def shape(px, py, tip=tip):
            return tip_profile(np.hypot(px - tip[0], py - tip[1]), settings.tip_profile, settings.tip_width)[0]

        # slabs and the sub-grid layers beside them as strips along their boundaries' traces; near the tip
        # the unknowns' Li rebuilt inside their cells along the tip profile (the layers' negative copies of
        # their cells with them)
        rebuild = dict(shape=shape, radius=3 * max(hx, hy))

        def weights_at(kernel, rank):
            return lambda p: system.all_weights(kernel, p, rank, **rebuild)

        if tensor:
            beta = B[lab]
            if system.n > system.n_bulk:  # slabs: the mean of their two grains
                sc = system.slab_cells
                beta = np.concatenate([beta, 0.5 * (B[lab[sc[:, 0]]] + B[lab[sc[:, 1]]])])
            if system.extra_boxes is not None:  # layers: their cell's grain
                beta = np.concatenate([beta, B[lab[system.extra_cells]]])
            W = contact_average(weights_at(lambda b, q: tensor_box_weights(b, q, nu), 2), tip, offsets, weights)
            u = C0 * (np.einsum("nij,nij->n", W, beta) @ amount)
        else:
            u = pref * (contact_average(weights_at(box_kernel, 0), tip, offsets, weights) @ amount)
        out.append(u)
    return np.asarray(out)


class VolumeWindows:
    """The map engine's window interface (:func:`~esmsim.probe.single_frequency_map`) for a voxel volume:
    every tip solved on its own window by :func:`volume_response` (no far-field split: each window is the
    ``4 d`` one, or ``settings.window``; measured 0.08-0.5 % from 2 and 4 times wider windows on the
    equiaxed example volume, 1.8 % at a tip reading a tenth of the others, docs/transport.md).

    ``VolumeWindows(ms, material, settings)`` is picklable, so the map's tiles run on worker processes or a
    Dask cluster as the columnar ones do; the values are those of :func:`volume_response` at the same points
    (bit for bit in this process; to rounding on workers, which use one BLAS thread).
    """

    FAR_FIELD = False
    far_field = False
    ENGINE = "esmsim"

    def __init__(self, ms: Microstructure, material: Material, settings: MapSettings):
        if settings.lateral:
            raise ParameterError("settings.lateral", "voxel volumes give the normal displacement u3 only; set "
                                                     "lateral = false, or map a columnar film")
        if self.ENGINE == "fipy":  # what FiPy cannot take is refused here, before any worker starts
            volume_response(ms, material, settings, [], engine="fipy")
        self.ms, self.material, self.settings = ms, material, settings

    def solve_points(self, ix, iy, points, far: bool = False) -> np.ndarray:
        """Responses (m/V) at film points ``points`` (m, shape (n, 2)); ``ix, iy`` are not used."""
        return volume_response(self.ms, self.material, self.settings, np.asarray(points, float).reshape(-1, 2),
                               engine=self.ENGINE)

    def solve_tile(self, ix, iy, far: bool = False) -> np.ndarray:
        """Responses (m/V) with the tip at the voxel centres ``ix x iy``, shape (len(ix), len(iy))."""
        xv, yv = self.ms.pixel_centers()
        X, Y = np.meshgrid(xv[np.asarray(ix)], yv[np.asarray(iy)], indexing="ij")
        return self.solve_points(ix, iy, np.stack([X.ravel(), Y.ravel()], -1)).reshape(X.shape)

    def solve(self, ix: int, iy: int) -> complex:
        """Response (m/V) with the tip at voxel column ``(ix, iy)``."""
        return complex(self.solve_tile([ix], [iy])[0, 0])

    def single_grain(self, ix, iy) -> None:
        """Never one solve for a tile: a volume's grains change with depth."""
        return None


class FipyVolumeWindows(VolumeWindows):
    """:class:`VolumeWindows` with each window solved by FiPy (``volume_response(..., engine="fipy")``)."""

    ENGINE = "fipy"


VOLUME_ENGINES = {"esmsim": VolumeWindows, "fipy": FipyVolumeWindows}
