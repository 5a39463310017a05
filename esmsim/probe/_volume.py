"""Tip response of a voxel volume (full-tensor transport, grain-boundary slabs, pores, cracks)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np

from .._errors import ParameterError, ResolutionWarning
from ..materials import Material
from ..mechanics._contact import hertz_average_points
from ..mechanics._halfspace import box_kernel, box_kernel_lateral
from ..mechanics._points import tensor_box_weights
from ..microstructure._orientations import rotate_diagonal
from ..microstructure._voxel import Microstructure
from ..transport._frequency import contact_profile, solve_frequency, tip_terms
from ..transport._tensor import grain_tensors
from ..transport._tip import tip_profile
from ..transport._volume import (cut_cell_shape, cut_columns, flat_boundaries, has_boundaries, snap_to_layers,
                                 surface_root, volume_system, volume_tensors, voxel_cells)
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
        u3; shape (len(tips), 3), ``(u3, u_x, u_y)`` in the film's axes, with ``settings.lateral`` (the in-plane
        displacement from trace/3 of the Vegard tensor with the Mogi kernel, as for columnar films).
    """
    tips = np.asarray(tips, float).reshape(-1, 2)
    vol = _VolumeSolver(ms, material, settings, engine)
    return np.array([vol.window(tip[None])[0] for tip in tips], complex)


class _VolumeSolver:
    """What every window of a volume shares (tensors, z cells, window half-width, mechanics constants), and
    the solve of one window for any number of tips in it (:meth:`window`)."""

    def __init__(self, ms: Microstructure, material: Material, settings: MapSettings, engine: str = "esmsim",
                 dz=None):
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
        # the z cells of the frequency (from the settings), or given (time domain: graded for its time scales)
        dz = _z_widths(ms, material, settings, np.column_stack([Dzz, Dzz, Dzz])) if dz is None else \
            np.asarray(dz, float)
        if has_boundaries(ms, material):
            # cells end on the voxel layers; beside them wider than twice the slab where horizontal faces hold
            # Li, else only no slivers
            flat = flat_boundaries(ms)
            clear = 2.2 * material["gb_width"] if flat else 0.1 * ms.spacing[2]
            if ms.seeds is None:
                warnings.warn(
                    "microstructure: a volume without its tessellation's seeds (imported labels) has its boundary "
                    "slabs on the voxel faces, up to half a voxel "
                    "off the boundary, and tips within a few nm of a boundary read differently at different voxel "
                    "sizes (a tilted-column bicrystal: 5.7, 10.7 and 18.1 pm/V on its trace at 8, 4 and 2 nm, "
                    "17.2 at all three with its seeds)" + (
                        "; boundary planes dipping under 45 deg keep their voxel staircase, which read up to 30 % "
                        "low at 45 deg" if flat else "") + " (docs/transport.md)", ResolutionWarning, stacklevel=3)
            dz = snap_to_layers(dz, ms.spacing[2], clear, ms.thickness)
        self.ms, self.material, self.settings, self.engine = ms, material, settings, engine
        self.T, self.dz = T, dz
        self.hw = int(np.ceil(settings.window_for(material) / ms.spacing[0]))
        self.C0 = 1.0 / material.dU_dc
        self.pref = (1 + material["nu"]) / np.pi * material.beta_isotropic * self.C0
        self.B = rotate_diagonal(ms.rotations, material.principal_vegard()) if settings.vegard == "tensor" else None
        self.offsets, self.weights = hertz_average_points(settings.contact_radius)
        self.surface_root = surface_root(ms, material)

    def window(self, tips: np.ndarray) -> np.ndarray:
        """Responses (m/V) at ``tips`` (m, shape (m, 2)), all solved on one window: the voxel columns that hold
        them plus the half-width on each side (the whole film where that is wider). One assembly and one
        solve with a right-hand side per tip (tips whose surface terms differ, such as disks, are solved
        apart); the displacement of each tip as :func:`volume_response` takes it."""
        omega = 2 * np.pi * self.settings.frequency
        win = self.assemble(tips, omega)
        c = self._solve(win.grid, win.systems, win.local, win.xi, win.yi, omega)
        return np.array([self._displacement(s, t, c[:, k], win.lab, win.origin)
                         for k, (s, t) in enumerate(zip(win.systems, win.local))])

    def assemble(self, tips: np.ndarray, omega: float | None) -> SimpleNamespace:
        """The window of ``tips`` (m, shape (m, 2)) assembled at ``omega`` (rad/s; None: the time domain):
        ``grid``, ``systems`` (one per tip: on the whole periodic film each tip sees every cell, slab and
        layer at its image nearest it), the tips in window coordinates ``local``, the window's columns
        ``xi, yi``, the grain of every bulk cell ``lab`` and the film coordinates (m) of the window's corner
        ``origin``.

        Raises
        ------
        ParameterError
            A tip outside the surface.
        """
        ms = self.ms
        hx, hy = ms.spacing[:2]
        for x, y in tips:
            if not (0 <= x <= ms.extent[0] and 0 <= y <= ms.extent[1]):
                raise ParameterError("tip position", f"({x:g}, {y:g}) m is outside the {ms.extent[0]:g} x "
                                                     f"{ms.extent[1]:g} m surface")
        ix = np.minimum((tips[:, 0] / hx).astype(int), ms.shape[0] - 1)
        iy = np.minimum((tips[:, 1] / hy).astype(int), ms.shape[1] - 1)
        x0, y0 = int(ix.min()), int(iy.min())
        xi, ox = window_range(x0, int(ix.max()), self.hw, ms.shape[0], ms.periodic)
        yi, oy = window_range(y0, int(iy.max()), self.hw, ms.shape[1], ms.periodic)
        whole = xi.size == ms.shape[0] and yi.size == ms.shape[1] and ms.periodic and self.engine == "esmsim"
        grid, system = volume_system(ms, self.material, self.dz, xi=None if whole else xi, yi=None if whole else yi,
                                     tensors=self.T, bottom=self.settings.bottom, omega=omega)
        if whole:  # a periodic film: every cell, slab and layer at its image nearest each tip
            local = [tuple(t) for t in tips]
            systems = [system.wrapped(t, ms.extent[:2]) for t in local]
        else:
            local = [((ox + x / hx - x0) * hx, (oy + y / hy - y0) * hy) for x, y in tips]
            systems = [system] * len(local)
        cols = (np.arange(ms.shape[0]), np.arange(ms.shape[1])) if whole else (xi, yi)
        lab = ms.labels[voxel_cells(ms, self.dz, *cols)].ravel()
        origin = (0.0, 0.0) if whole else (xi[0] * hx, yi[0] * hy)
        return SimpleNamespace(grid=grid, systems=systems, local=local, xi=xi, yi=yi, lab=lab, origin=origin)

    def _solve(self, grid, systems, local, xi, yi, omega) -> np.ndarray:
        """Concentration amplitudes, one column per tip."""
        st = self.settings
        if self.engine == "fipy":
            from ..transport._fipy import fipy_frequency_solve

            Tw = self.T[voxel_cells(self.ms, self.dz, xi, yi)]  # the cut surface cells as volume_system has them
            Tw = cut_columns(self.ms, Tw, grain_tensors(self.ms.rotations, self.material.principal_diffusivities()),
                             self.dz, xi, yi, False)
            Dd = np.stack([Tw[..., 0, 0], Tw[..., 1, 1], Tw[..., 2, 2]], -1)
            out = []
            for s, tip in zip(systems, local):
                f, _ = contact_profile(s, tip, st.tip_profile, st.tip_width, average=True)
                out.append(fipy_frequency_solve(grid, Dd, tip, profile=st.tip_profile, width=st.tip_width,
                                                omega=omega, surface=f.reshape(grid.shape[:2])).ravel())
            return np.stack(out, -1)
        terms = [tip_terms(s, tip, profile=st.tip_profile, width=st.tip_width, average=True)
                 for s, tip in zip(systems, local)]
        c = np.empty((systems[0].n, len(terms)), complex)
        # at ESM frequencies (where the z lines would carry the system) the split solver: the LU of the z
        # lines with the slabs and all their links (COLAMD ordering), then a few block COCG steps. With every
        # plane dipping 2 deg or more on its vertical faces, the slabs' links across columns made the z-line
        # COCG take 42 steps on a 4 x 4-tip window of the equiaxed example (31 before); split takes 3
        todo = list(range(len(terms)))
        while todo:  # one block per set of tips with the same surface conductances
            same = [k for k in todo if np.array_equal(terms[k][0], terms[todo[0]][0])]
            b = np.stack([terms[k][1] for k in same], -1)
            c[:, same] = solve_frequency(systems[0], omega, terms[same[0]][0], b, direct_below=DIRECT_BELOW,
                                         high="split", ordering="COLAMD")[0]
            todo = [k for k in todo if k not in same]
        return c

    def _displacement(self, system, tip, c, lab, origin=(0.0, 0.0)):
        """u3 (m/V) of one tip from its window's concentration amplitudes ``c`` (``origin``: the film
        coordinates (m) of the window's corner); ``(u3, u_x, u_y)`` with ``settings.lateral``."""
        u = [r @ c for r in self.rows(system, tip, lab, origin)]  # (row by row: u3 the same with lateral or not)
        return np.array(u) if self.settings.lateral else u[0]

    def rows(self, system, tip, lab, origin=(0.0, 0.0)) -> np.ndarray:
        """The displacement at ``tip`` as a linear map of the window's unknowns (m per mol/m^3): shape
        (1, n), u3, or (3, n), ``(u3, u_x, u_y)`` with ``settings.lateral``.

        The slabs and the sub-grid layers beside them are strips along their boundaries' traces; near the
        tip the unknowns' Li is rebuilt inside their cells along the tip profile (the layers' negative copies
        of their cells with them), and across a cell that a trace cuts as its grains' sqrt(D_zz)
        (:func:`~esmsim.transport._volume.cut_columns`). u3 from the grains' Vegard tensors (``vegard =
        "tensor"``) or trace/3 with the Mindlin kernel; (u_x, u_y) from trace/3 with the Mogi kernel, as for
        columnar films; averaged over ``settings.contact_radius``."""
        st = self.settings
        hx, hy = self.ms.spacing[:2]
        root, hz = self.surface_root, self.ms.spacing[2]

        def shape(px, py):
            return tip_profile(np.hypot(px - tip[0], py - tip[1]), st.tip_profile, st.tip_width)[0]

        rebuild = dict(shape=shape, radius=3 * max(hx, hy), cell_shape=cut_cell_shape(root, hz, origin))

        def weights_at(kernel, rank):
            return lambda p: system.all_weights(kernel, p, rank, **rebuild)

        R = self._normal(system, tip, lab, weights_at)[None]
        if st.lateral:
            lat = self.pref * contact_average(weights_at(box_kernel_lateral, 1), tip, self.offsets, self.weights)
            R = np.concatenate([R, lat])
        n = system.n
        if system.extra_boxes is None:
            return R
        # the extra boxes hold extra_map @ c
        return R[:, :n] + (system.extra_map.T @ R[:, n:].T).T

    def _normal(self, system, tip, lab, weights_at) -> np.ndarray:
        """u3 weights of every unknown and extra box (m per mol/m^3): the grains' Vegard tensors (``vegard =
        "tensor"``) or trace/3 with the Mindlin kernel."""
        if self.B is not None:
            B = self.B
            beta = B[lab]
            if system.n > system.n_bulk:  # slabs: the mean of their two grains
                sg = system.slab_grains
                beta = np.concatenate([beta, 0.5 * (B[sg[:, 0]] + B[sg[:, 1]])])
            if system.extra_boxes is not None:  # layers: their cell's grain
                beta = np.concatenate([beta, B[lab[system.extra_cells]]])
            nu = self.material["nu"]
            W = contact_average(weights_at(lambda b, q: tensor_box_weights(b, q, nu), 2), tip, self.offsets,
                                self.weights)
            return self.C0 * np.einsum("nij,nij->n", W, beta)
        return self.pref * contact_average(weights_at(box_kernel, 0), tip, self.offsets, self.weights)


class VolumeWindows:
    """The map engine's window interface (:func:`~esmsim.probe.single_frequency_map`) for a voxel volume.

    The tips of a tile share windows, one per block of ``SHARED x SHARED`` tips (scans with solved tips: the tips
    in a block of ``SHARED x SHARED`` voxel columns): the columns that hold them plus the half-width
    ``settings.window_for(material)`` on each side (``4 d``; the whole film where that is wider), assembled once
    and solved with one right-hand side per tip; each tip's displacement as :func:`volume_response` takes it.
    Volumes have no far-field split, so a tip's value depends on its window's edges within the window-truncation
    error: on the equiaxed example volume 2 and 4 times wider windows moved four tips by 0.08-0.5 % (1.8 % at a
    tip reading a tenth of the others), and a map's tiles against one window per tip (:func:`volume_response`) are
    in benchmarks/bench_volume_map.py.

    ``VolumeWindows(ms, material, settings)`` is picklable, so the tiles run on worker processes or a
    Dask cluster as the columnar ones do.
    """

    FAR_FIELD = False
    far_field = False
    ENGINE = "esmsim"
    SHARED = 4  # tips per side of a shared window: 8 x 8 took 1.1x the time and 5.5x the memory of 4 x 4

    def __init__(self, ms: Microstructure, material: Material, settings: MapSettings):
        self.solver = _VolumeSolver(ms, material, settings, self.ENGINE)  # refuses what the engine cannot take
        self.ms = ms
        self.comps = (3,) if settings.lateral else ()  # (u3, u_x, u_y) per tip with settings.lateral

    def solve_points(self, ix, iy, points, far: bool = False) -> np.ndarray:
        """Responses (m/V) at film points ``points`` (m, shape (n, 2)): the points in each block of
        ``SHARED x SHARED`` voxel columns share a window; ``ix, iy`` are not used. Shape (n,), or (n, 3) with
        ``settings.lateral`` (u3, u_x, u_y)."""
        P = np.asarray(points, float).reshape(-1, 2)
        block = np.floor(P / (self.SHARED * np.asarray(self.ms.spacing[:2]))).astype(int)
        out = np.empty((len(P),) + self.comps, complex)
        for b in np.unique(block, axis=0):
            sel = np.flatnonzero(np.all(block == b, axis=1))
            out[sel] = self.solver.window(P[sel])
        return out

    def solve_tile(self, ix, iy, far: bool = False) -> np.ndarray:
        """Responses (m/V) with the tip at the voxel centres ``ix x iy``, shape (len(ix), len(iy)) (with a last
        axis of 3 with ``settings.lateral``): each ``SHARED x SHARED`` block of these tips on one window."""
        xv, yv = self.ms.pixel_centers()
        ix, iy, k = np.asarray(ix), np.asarray(iy), self.SHARED
        out = np.empty((ix.size, iy.size) + self.comps, complex)
        for a in range(0, ix.size, k):
            for b in range(0, iy.size, k):
                X, Y = np.meshgrid(xv[ix[a:a + k]], yv[iy[b:b + k]], indexing="ij")
                out[a:a + k, b:b + k] = self.solver.window(np.stack([X.ravel(), Y.ravel()], -1)).reshape(
                    X.shape + self.comps)
        return out

    def solve(self, ix: int, iy: int):
        """Response (m/V) with the tip at voxel column ``(ix, iy)`` (``(u3, u_x, u_y)`` with ``settings.lateral``)."""
        out = self.solve_tile([ix], [iy])[0, 0]
        return out if self.comps else complex(out)

    def single_grain(self, ix, iy) -> None:
        """Never one solve for a tile: a volume's grains change with depth."""
        return None


class FipyVolumeWindows(VolumeWindows):
    """:class:`VolumeWindows` with each window solved by FiPy (``volume_response(..., engine="fipy")``)."""

    ENGINE = "fipy"


VOLUME_ENGINES = {"esmsim": VolumeWindows, "fipy": FipyVolumeWindows}
