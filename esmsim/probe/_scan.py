"""Single-frequency ESM map of a columnar film: one transport + mechanics solve per tip position.

Each pixel is solved on a window of the film centred on the tip (lateral
half-width ``window``, the full film depth or a few diffusion lengths,
whichever is less); the sides of the window are no-flux. At ESM frequencies
the response under the tip depends only on a neighbourhood of a few tip
widths and diffusion lengths, and pixels whose window holds a single grain
give the same answer for the same grain, so they are solved once per grain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .._errors import ParameterError
from ..materials import Material
from ..mechanics._halfspace import box_kernel, box_kernel_far, box_kernel_lateral
from ..mechanics._contact import hertz_average_points
from ..mechanics._points import boussinesq_stress, deviator, tensor_box_weights
from ..microstructure._columnar import ColumnarMicrostructure
from ..microstructure._grid import Grid, graded_widths
from ..microstructure._orientations import rotate_diagonal
from ..transport._boundaries import (boundary_factors, boundary_network, diagonal_corner, diagonal_pixels,
                                     place_on_boundaries, with_diagonals)
from ..transport._frequency import check_surface_layer, solve_frequency, split_solve, tip_terms
from ..transport._operator import assemble, strip_boxes, strip_to_sample
from ..transport._volume import cut_cell_shape, cut_columnar, cut_pixel_dzz, has_boundaries, surface_root
from ..transport._tip import tip_profile

if TYPE_CHECKING:
    from ..microstructure._voxel import Microstructure

__all__ = ["MapSettings", "MapResult", "ScanGrid", "single_frequency_map", "pixel_response"]


@dataclass(frozen=True)
class MapSettings:
    """Numerical and instrument settings of a single-frequency map (SI units).

    Attributes
    ----------
    frequency : float
        Excitation frequency (Hz).
    tip_profile : str
        ``"lorentzian"``, ``"point_charge"`` or ``"disk"``.
    tip_width : float
        Field width d (or disk radius), m.
    pixels : (int, int)
        Map size (nx, ny); tip positions are microstructure pixel centres spread evenly over the film.
    window : float, optional
        Lateral half-width of the solve window (m); default ``max(3 d, 4 L_max)`` with
        ``L_max = sqrt(max(D_gb, D_bulk) / omega)`` for Lorentzian and point-charge tips (the map adds the
        far field beyond the tip's box), ``max(4 d, 4 L_max)`` for a disk.
    bottom : str
        ``"blocking"`` or ``"reservoir"``.
    z_growth : float
        Growth ratio of the graded z cells.
    z_first : float
        First z cell as a fraction of the thinnest diffusion length sqrt(D_zz / omega).
    vegard : str
        ``"isotropic"`` (default): trace/3 of the Vegard tensor with the exact Mindlin box kernel.
        ``"tensor"``: each grain's rotated Vegard tensor through the real-space Boussinesq reciprocity
        (:func:`~esmsim.mechanics.tensor_box_weights`): column cells by one table of weights per tile,
        the sub-grid bulk layers beside slabs with their cell's grain, the slab's own Li with the mean of
        its two grains' tensors (an assumption). A (003) LiCoO2 grain responds 1.4x its trace/3 value,
        a (110) grain 0.8x; the demo map takes ~1.6x longer. Not the default while the Vegard strain of
        boundary Li is an assumption (docs/mechanics.md, "In maps").
    contact_radius : float
        Radius a (m) of the tip-surface contact (e.g. from :func:`~esmsim.mechanics.hertz_contact`): the
        displacement is averaged over the contact disk with the Hertz pressure ``sqrt(1 - rho^2/a^2)`` as
        weight (24-point quadrature), which is what a rigid tip in contact senses. 0 (default): the point
        under the tip.
    lateral : bool
        Also compute the in-plane surface displacement ``(u_x, u_y)`` at the tip (scan axes; lateral /
        vector ESM), ``MapResult.lateral``: trace/3 of the Vegard tensor with the Mogi in-plane kernel
        over the tip's window (the tensor model's deviatoric part is not in it).
    """

    frequency: float
    tip_profile: str = "lorentzian"
    tip_width: float = 10e-9
    pixels: tuple[int, int] = (32, 32)
    window: float | None = None
    bottom: str = "blocking"
    z_growth: float = 1.3
    z_first: float = 0.125
    vegard: str = "isotropic"
    contact_radius: float = 0.0
    lateral: bool = False

    def __post_init__(self):
        if self.vegard not in ("isotropic", "tensor"):
            raise ValueError(f"vegard: got {self.vegard!r}; allowed 'isotropic' or 'tensor'")
        if not (np.isfinite(self.contact_radius) and 0 <= self.contact_radius < self.tip_width * 10):
            raise ValueError(f"contact_radius: got {self.contact_radius!r} m; allowed 0 <= a < 10 tip widths")

    def diffusion_lengths(self, material: Material, Dzz_min: float) -> tuple[float, float]:
        """``(L_min, L_max)`` in m: thinnest surface layer to resolve and deepest penetration."""
        omega = 2 * np.pi * self.frequency
        L_ref = np.sqrt(material.D_reference / omega)
        L_min = max(np.sqrt(Dzz_min / omega), 0.01 * L_ref)
        return L_min, max(np.sqrt(material.D_gb / omega), L_ref)

    def window_for(self, material: Material, far: bool = False) -> float:
        """Lateral half-width of the solve window (m): ``max(4 d, 4 L_max)``, or ``max(3 d, 4 L_max)`` where
        the map engine adds the far field beyond the window (``far``; Lorentzian and point-charge tips:
        within 0.5 % of the full domain at 3 d, 0.2 % at 4 d, tests/test_scan.py)."""
        if self.window is not None:
            return float(self.window)
        return max((3 if far else 4) * self.tip_width, 4 * self.diffusion_lengths(material, material.D_reference)[1])


@dataclass(frozen=True)
class MapResult:
    """Complex response map and the tip positions it was computed at.

    Attributes
    ----------
    response : ndarray, complex, shape (nx, ny)
        Outward surface displacement per volt of AC bias (m/V), ``u3 = Re[response V exp(i omega t)]``.
    ix, iy : ndarray of int
        Microstructure pixel indices of the tip positions along x and y (for a rotated or offset scan, of
        the voxel-centred solves it interpolates, or of the voxels that hold its tips when they are solved).
    n_solves : int
        Number of factorised windows (tiles; single-grain tiles share one solve per grain).
    seconds : float
        Wall time of the map (s).
    positions : ndarray (nx, ny, 2), optional
        Film coordinates of the tips of a :class:`ScanGrid` scan (m).
    scan_x, scan_y : ndarray, optional
        Scan-frame pixel coordinates (m).
    lateral : ndarray, complex, shape (nx, ny, 2), optional
        In-plane surface displacement ``(u_x, u_y)`` per volt (m/V) along the scan's x and y axes (the
        film's for an unrotated scan) when the settings ask for it (``MapSettings.lateral``).
    """

    response: np.ndarray
    ix: np.ndarray
    iy: np.ndarray
    n_solves: int
    seconds: float
    positions: np.ndarray | None = None
    scan_x: np.ndarray | None = None
    scan_y: np.ndarray | None = None
    lateral: np.ndarray | None = None

    def tip_positions(self, ms) -> np.ndarray:
        """Film coordinates (m) of the tip at every map pixel, shape (nx, ny, 2)."""
        if self.positions is not None:
            return self.positions
        xv, yv = ms.pixel_centers()
        X, Y = np.meshgrid(xv[self.ix], yv[self.iy], indexing="ij")
        return np.stack([X, Y], -1)

    def scan_axes(self, ms) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (m) along x and y: film coordinates of the voxel-centred default scan, the
        scan frame (from its corner) otherwise."""
        if self.scan_x is not None:
            return self.scan_x, self.scan_y
        xv, yv = ms.pixel_centers()
        return xv[self.ix], yv[self.iy]


# Relative residual of the map's iterative solves. The residual is dominated by the thin surface cells
# (conductances far above the deep cells' omega V), so it overstates the accuracy: split COCG then stops
# after one iteration, and the responses are within 1e-3 of the converged solve (measured 8.2e-4 on the
# issue-6 benchmark film, 2.7e-4 on the spectroscopy test's bicrystal), below the window's 0.5 %. A second
# iteration (stopping on the preconditioned residual instead) brings them to 5e-7 but costs 32 % more map
# time (benchmarks/bench_map.py: 127.6 s against 96.7 s, same machine and session).
SOLVER_RTOL = 1e-7
FAR_CHUNK = 64  # columns per side of the chunks in which the far field's whole-film response is solved
_WEIGHT_CACHE = 128  # displacement weights kept per window engine (windows of identical geometry reuse them)


def contact_average(weights_at, tip, offsets, weights):
    """``weights_at`` (a function of a surface point) averaged over the contact quadrature
    (:func:`~esmsim.mechanics.hertz_average_points`) around ``tip``."""
    total = None
    for (dx, dy), w in zip(offsets, weights):
        term = w * weights_at((tip[0] + dx, tip[1] + dy))
        total = term if total is None else total + term
    return total


def grain_diffusivities(ms: ColumnarMicrostructure, material: Material) -> np.ndarray:
    """Diagonal sample-frame diffusivities ``(D_xx, D_yy, D_zz)`` of each grain, m^2/s, shape (n, 3)."""
    T = rotate_diagonal(ms.rotations, material.principal_diffusivities())
    return np.stack([T[:, 0, 0], T[:, 1, 1], T[:, 2, 2]], -1)


def _z_widths(ms, material, settings, Dg):
    """Graded z cells: first cell ``z_first * L_min``, down to 10 L_max or the film bottom."""
    L_min, L_max = settings.diffusion_lengths(material, Dg[:, 2].min())
    depth = min(ms.thickness, 10 * L_max)
    first = min(settings.z_first * L_min, depth / 10)
    return graded_widths(first, settings.z_growth, depth, max_width=min(ms.spacing))


def window_range(lo: int, hi: int, hw: int, n: int, periodic: bool):
    """Pixel indices of a window covering tip pixels lo..hi plus ``hw`` on each side, and the offset of lo
    in it. Periodic films wrap (a window that would overlap itself is the whole film, once)."""
    if periodic:
        r = np.arange(lo - hw, hi + hw + 1)
        if r.size >= n:
            r = np.arange(lo - (n - (hi - lo + 1)) // 2, lo - (n - (hi - lo + 1)) // 2 + n)
        return r % n, lo - r[0]
    r = np.arange(max(lo - hw, 0), min(hi + hw + 1, n))
    return r, lo - r[0]


class _Window:
    """Everything needed to solve a tile of tip positions; shared by all tiles of a map."""

    def __init__(self, ms: ColumnarMicrostructure, material: Material, settings: MapSettings):
        self.ms, self.material, self.settings = ms, material, settings
        self.Dg = grain_diffusivities(ms, material)
        self.dz = _z_widths(ms, material, settings, self.Dg)
        h = ms.spacing[0]
        self.window = settings.window_for(material, far=self.FAR_FIELD and settings.tip_profile != "disk")
        self.hw = int(np.ceil(self.window / h))
        self.C0 = 1.0 / material.dU_dc  # mol/m^3 per volt (PHYSICS.md sec. 2: C0 = V / |dU/dc|)
        self.mindlin = (1 + material["nu"]) / np.pi * material.beta_isotropic  # m^3/mol
        self.pref = self.mindlin * self.C0
        self._bulk_weights: OrderedDict = OrderedDict()  # (box geometry, tip) -> weights; bounded
        self._tables: dict = {}  # offset tables of the kernels, per window shape
        self._far = None  # far-field part of the response at every voxel (far_part), computed on first use
        self.contact_offsets, self.contact_weights = hertz_average_points(settings.contact_radius)
        if settings.vegard == "tensor":
            B = rotate_diagonal(ms.rotations, material.principal_vegard())  # (n_grains, 3, 3), m^3/mol
            self.beta_dev = deviator(B)
        self.gb_factor = boundary_factors(ms, material)
        # Tiles share one factorisation across their tips. Where omega outweighs the bulk cells' lateral
        # rates D / h^2 (ESM frequencies) that is the LU of the split operator (z lines + slabs) with block
        # COCG on the whole one: a 115 000-unknown window factorises in 0.09 s instead of 27 s. Below, the
        # full LU. A single tip on a large window (low-frequency spectroscopy) is better served by
        # solve_frequency's choice (z-line or AMG preconditioned GMRES above 40 000).
        lateral_rate = float(self.Dg[:, :2].max()) / h ** 2
        self.method = "split" if 2 * np.pi * settings.frequency >= 10 * lateral_rate else "direct"

    def _averaged(self, weights_at, tip):
        return contact_average(weights_at, tip, self.contact_offsets, self.contact_weights)

    def _range(self, lo, hi, n):
        return window_range(lo, hi, self.hw, n, self.ms.periodic)

    def _labels(self, ix, iy, indices=False):
        """Grain labels of the window of tips ``ix x iy`` and the offsets of ``(ix[0], iy[0])`` in it
        (and the film's column indices of the window when ``indices``)."""
        xi, ox = self._range(ix[0], ix[-1], self.ms.shape[0])
        yi, oy = self._range(iy[0], iy[-1], self.ms.shape[1])
        lab = self.ms.labels[np.ix_(xi, yi)]
        return (lab, ox, oy, xi, yi) if indices else (lab, ox, oy)

    @cached_property
    def _film_faces(self):
        """The film's boundary faces placed on the exact segments (:func:`place_on_boundaries`) and their
        ids by axis and low pixel, so that every window takes the same weights, normals and positions."""
        ms = self.ms
        h = ms.spacing[0]
        net = place_on_boundaries(boundary_network(ms.labels, h, h, periodic=ms.periodic, normal=ms.boundary_normal),
                                  ms, gb_width=self.material["gb_width"])
        ids = np.full((2,) + ms.shape, -1, np.int64)
        real = net.axis < 2
        ids[net.axis[real], net.low[real, 0], net.low[real, 1]] = np.flatnonzero(real)
        return net, ids

    def _window_faces(self, net, xi, yi, periodic=False):
        """The window's faces with the film's weights, normals and positions (window frame), and the film's
        diagonal faces (:func:`place_on_boundaries`) whose pixel corners lie inside the window."""
        film, ids = self._film_faces
        h = self.ms.spacing[0]
        origin = np.array([xi[0] * h, yi[0] * h])
        if net.n_faces:
            f = ids[net.axis, xi[net.low[:, 0]], yi[net.low[:, 1]]]
            assert np.all(f >= 0), "a window face that the film does not have"
            centres = net.face_centres(h, h)
            d = self.ms._displacement(film.position[f] - origin - centres)  # -> window frame
            net = dataclasses.replace(net, weight=film.weight[f], normal=film.normal[f], position=centres + d)
        diag = np.flatnonzero(film.axis >= 2)
        if not diag.size:
            return net
        # the film's diagonal faces by their pixel corner (the pixel whose upper corner it is)
        nx, ny = self.ms.shape
        at = np.full((2, nx, ny), -1, np.int64)
        ci, cj, _, _ = diagonal_corner(film.axis[diag], film.low[diag], film.high[diag])
        at[film.axis[diag] - 2, ci, cj] = diag
        # the window's pixel corners whose 2 x 2 pixels are the film's (windows may repeat film columns)
        n1, n2 = len(xi), len(yi)
        i = np.arange(n1 if periodic else n1 - 1)
        j = np.arange(n2 if periodic else n2 - 1)
        i = i[xi[(i + 1) % n1] == (xi[i] + 1) % nx]
        j = j[yi[(j + 1) % n2] == (yi[j] + 1) % ny]
        f = at[:, xi[i][:, None], yi[j][None, :]]  # (2, len(i), len(j))
        k, a_, b_ = np.nonzero(f >= 0)
        if not k.size:
            return net
        f = f[k, a_, b_]
        ci, cj = i[a_], j[b_]
        ax = film.axis[f]
        lo, hi = diagonal_pixels(ax, ci, cj, (ci + 1) % n1, (cj + 1) % n2)
        corner = np.stack([ci + 1, cj + 1], -1) * h
        position = corner + self.ms._displacement(film.position[f] - origin - corner)
        return with_diagonals(net, ax, lo, hi, film.grains[f], film.weight[f], film.normal[f], position, (n1, n2),
                              (h, h))

    def solve_tile(self, ix: np.ndarray, iy: np.ndarray, far: bool = True) -> np.ndarray:
        """Complex response (m/V) at every tip position ``(ix[a], iy[b])``; one factorisation for all.

        ``ix`` and ``iy`` are increasing microstructure pixel indices spanning
        less than the film. ``far=False`` leaves out the far-field part (:meth:`far_part`), which the map
        engine adds in the parent process.
        """
        st = self.settings
        ix, iy = np.asarray(ix), np.asarray(iy)
        lab, ox, oy, grid, net, system = self.system(ix, iy, omega=2 * np.pi * st.frequency)
        h = self.ms.spacing[0]
        tips = [((ox + a - ix[0] + 0.5) * h, (oy + b - iy[0] + 0.5) * h) for a in ix for b in iy]
        # Tips whose surface condition (where it applies) is the same share one factorisation: all tips
        # for profiles that apply everywhere (Lorentzian, point charge), one group per tip for a disk.
        # The potentiostatic terms of tip_rhs for all tips at once: conductance g to C0 f where it applies.
        tip_xy = np.array(tips)
        xy = system.top_xy
        f, mask = tip_profile(np.hypot(xy[:, 0, None] - tip_xy[None, :, 0], xy[:, 1, None] - tip_xy[None, :, 1]),
                              st.tip_profile, st.tip_width)
        nt = xy.shape[0]
        S = sp.csr_matrix((system.top_conductance, (system.top_index, np.arange(nt))), shape=(system.n, nt))
        rhs = S @ np.where(mask, f, 0.0)
        groups: dict[bytes, list[int]] = {}
        for t in range(len(tips)):
            groups.setdefault(np.packbits(mask[:, t]).tobytes(), []).append(t)
        c = self._solve_groups(system, [(S @ mask[:, m[0]].astype(float), m) for m in groups.values()], rhs)
        out = self.C0 * self._isotropic_tile(lab, grid, system, ix, iy, ox, oy, c)
        if st.vegard == "tensor":
            out += self._deviatoric(lab, grid, system, ix, iy, ox, oy, c)
            out += self._deviatoric_boundaries(lab, net, system, tips, c)
        out = out.reshape(ix.size, iy.size)
        if st.lateral:  # (u3, u_x, u_y) per tip
            lat = self.C0 * self._lateral_tile(lab, grid, system, ix, iy, ox, oy, c)
            out = np.concatenate([out[..., None], lat.reshape(ix.size, iy.size, 2)], -1)
        return out + self.far_part(ix, iy) if far else out

    def solve_points(self, ix: np.ndarray, iy: np.ndarray, points: np.ndarray, far: bool = True) -> np.ndarray:
        """Complex response (m/V) with the tip at each of ``points`` (film coordinates, m, shape (m, 2)), solved
        where it is rather than interpolated between voxel centres; one factorisation for all.

        The points' nearest voxels lie in the tile ``ix x iy`` (increasing film voxel indices), whose window
        the points share. Each point takes cell-averaged tip data (:func:`~esmsim.transport.tip_terms`
        ``average``) and its displacement integrates the Li rebuilt as ``c f(x) / mean(f)`` inside the cells
        and slab strips within three voxels of it (:meth:`~esmsim.transport.DiffusionSystem.weights`): the Li
        under an ESM tip is much thinner than the tip field, so it follows the profile across a cell. With
        the far-field split the window's part covers the columns within ``hw`` of the point's nearest voxel
        and :meth:`far_part` is interpolated bilinearly between voxel centres (it is smooth there).
        Returns shape ``(m,)``, or ``(m, 3)`` with ``settings.lateral``.
        """
        st, ms = self.settings, self.ms
        ix, iy = np.asarray(ix), np.asarray(iy)
        lab, ox, oy, grid, net, system = self.system(ix, iy, omega=2 * np.pi * st.frequency)
        h = ms.spacing[0]
        L = np.asarray(ms.extent)
        origin = np.array([(ix[0] - ox) * h, (iy[0] - oy) * h])  # the window's corner in the film frame
        tips = np.asarray(points, float) - origin
        if ms.periodic:
            tips = np.mod(tips, L)
        rhs = np.zeros((system.n, len(tips)))
        groups: dict[bytes, tuple] = {}
        for t, tip in enumerate(tips):
            d, rhs[:, t] = tip_terms(system, tip, profile=st.tip_profile, width=st.tip_width, average=True)
            groups.setdefault(np.packbits(d > 0).tobytes(), (d, []))[1].append(t)
        c = self._solve_groups(system, list(groups.values()), rhs)
        nz = self.dz.size
        nu = self.material["nu"]
        centre = 0.5 * (system.boxes[:, [0, 2]] + system.boxes[:, [1, 3]])
        layer = None if system.extra_boxes is None else 0.5 * (system.extra_boxes[:, [0, 2]]
                                                               + system.extra_boxes[:, [1, 3]])
        if st.vegard == "tensor":
            slab_beta, beta_layer = self._boundary_betas(lab, net, system)
            beta = np.concatenate([np.repeat(self.beta_dev[lab.ravel()], nz, axis=0), slab_beta]
                                  + ([] if layer is None else [beta_layer]))
        comps = 3 if st.lateral else 1
        out = np.zeros((len(tips), comps), complex)
        # across the surface cells that a boundary trace cuts the Li goes as the grains' sqrt(D_zz) (cut_columnar)
        cell_shape = cut_cell_shape(self._surface_root, h, origin)
        for t, tip in enumerate(tips):
            def shape(x, y, tip=tip):
                return tip_profile(np.hypot(x - tip[0], y - tip[1]), st.tip_profile, st.tip_width)[0]

            if self.far_field:  # the window's part: columns within hw of the point's nearest voxel
                k0 = np.floor(tip / h)
                inbox = np.all(np.abs(np.floor(centre / h) - k0) <= self.hw, axis=1)
                inlayer = None if layer is None else np.all(np.abs(np.floor(layer / h) - k0) <= self.hw, axis=1)
            else:
                inbox = np.ones(system.n, bool)
                inlayer = None if layer is None else np.ones(len(layer), bool)
            ct = c[:, t]
            # the unknowns followed by the layers (their negative cell copies rebuilt with their cells)
            amount = ct if layer is None else np.concatenate([ct, system.extra_map @ ct])
            inside = inbox if layer is None else np.concatenate([inbox, inlayer])

            def weights(kernel, rank, shape=shape):
                return self._averaged(lambda p: system.all_weights(kernel, p, rank, shape=shape, radius=3 * h,
                                                                   cell_shape=cell_shape), tip)

            def part(kernel, rank):
                return (weights(kernel, rank) * inside) @ amount

            out[t, 0] = self.C0 * self.mindlin * part(box_kernel, 0)
            if st.vegard == "tensor":
                W = deviator(weights(lambda b, q: tensor_box_weights(b, q, nu), 2))
                out[t, 0] += self.C0 * (np.einsum("nab,nab->n", W, beta) * inside) @ amount
            if st.lateral:
                out[t, 1:] = self.C0 * self.mindlin * part(box_kernel_lateral, 1)
        if far and self.far_field:
            out += self._interpolated_far(np.asarray(points, float)).reshape(len(tips), comps)
        return out if st.lateral else out[:, 0]

    def _solve_groups(self, system, groups, rhs):
        """Concentrations (all unknowns x tips) for the right-hand sides ``rhs`` (columns: tips); ``groups`` lists
        ``(diag, members)``: the tips that share one surface condition (the diagonal it adds), hence one
        factorisation (the split operator's LU with block COCG, or ``solve_frequency``'s direct one)."""
        omega = 2 * np.pi * self.settings.frequency
        c = np.zeros((system.n, rhs.shape[1]), complex)
        if self.method == "split":  # the unknowns that can hold Li, once for all groups
            keep = self._live_unknowns(system)
            Kr, nb_r = system.K[keep][:, keep], int(np.count_nonzero(keep[:system.n_bulk]))
        for diag, members in groups:
            if self.method != "split":
                c[:, members] = solve_frequency(system, omega, diag, rhs[:, members], method=self.method,
                                                rtol=SOLVER_RTOL)[0]
                continue
            check_surface_layer(system, diag, omega)
            c[np.ix_(keep, members)] = split_solve(Kr, nb_r, (diag + 1j * omega * system.volume)[keep],
                                                   rhs[np.ix_(keep, members)], rtol=SOLVER_RTOL)
        return c

    def _interpolated_far(self, points):
        """:meth:`far_part` interpolated bilinearly between voxel centres at film ``points`` (m)."""
        ix, iy, _, interp = _voxel_stencil(self.ms, points)
        return interp(self.far_part(ix, iy))

    def _live_unknowns(self, system) -> np.ndarray:
        """Unknowns that can hold Li at ESM frequencies (bool mask): every slab unknown and every cell of a
        z line linked to a slab, but only the top cells of the other z lines, down to 30 bulk diffusion
        lengths ``sqrt(max D_zz / omega)`` (below, bulk Li from the surface is < exp(-30) of the surface
        value; Li from the slabs reaches those cells only through lateral bulk links ~1e-3 of
        ``omega V``). The cells left out are held at c = 0: about half of a 2 nm window's unknowns.
        """
        nb, nz = system.n_bulk, self.dz.size
        L = np.sqrt(float(self.Dg[:, 2].max()) / (2 * np.pi * self.settings.frequency))
        k_cut = int(np.searchsorted(np.concatenate([[0.0], np.cumsum(self.dz)]), 30 * L))
        K = system.K.tocoo()
        linked = np.zeros(nb // nz, bool)
        linked[K.row[(K.row < nb) & (K.col >= nb)] // nz] = True
        keep = np.ones(system.n, bool)
        layer = np.arange(nb) % nz
        keep[:nb] = np.repeat(linked, nz) | (layer < k_cut)
        return keep

    @property
    def far_field(self) -> bool:
        """True when the isotropic response is split into the tip's box (|offset| <= ``hw`` columns, from
        the window solve) and the rest of the film (:meth:`far_part`): a Lorentzian or point-charge tip
        on a window smaller than the film. A disk tip puts no Li beyond its contact."""
        n = self.ms.shape
        return self.FAR_FIELD and self.settings.tip_profile != "disk" and any(
            2 * self.hw + 1 < n[k] for k in (0, 1))

    FAR_FIELD = True  # subclasses that do not split the response turn this off

    def far_part(self, ix, iy) -> np.ndarray | float:
        """Far-field part of the response (m/V) at tips ``ix x iy``: the Li outside each tip's box.

        The tip profile varies slowly beyond a few widths d and the Li there stays within a diffusion
        length of where it entered (bulk) or runs along the boundaries for ``sqrt(D_gb / omega)``, so far
        from the tip the concentration is the tip profile times the film's response to a uniform unit
        surface concentration (one solve of the whole film per map, :meth:`_far_map`), weighted with the
        Mindlin kernel: one FFT correlation per z layer gives it for all tips at once (with the tensor
        Vegard model also the deviatoric part: that Li times its grain's deviatoric tensor against the
        Boussinesq weights, six correlations per layer). This is the Lorentzian's 1/rho^2 tail that
        drives Li into boundaries outside any window.
        """
        if not self.far_field:
            return 0.0
        if self._far is None:
            self._far = self._far_map()
        return self._far[np.ix_(np.atleast_1d(ix), np.atleast_1d(iy))]

    def _film_system(self, omega):
        """The whole (periodic) film assembled at once, boundaries across the wrap included:
        ``(net, system)``."""
        nx, ny = self.ms.shape
        return self._assemble(self.ms.labels, omega, periodic=True, xi=np.arange(nx), yi=np.arange(ny))[1:]

    def _far_map(self) -> np.ndarray:
        """:meth:`far_part` at every voxel-centred tip of the film, shape ``ms.shape``, m/V.

        The film's response to a uniform unit surface concentration is solved in chunks of
        ``FAR_CHUNK x FAR_CHUNK`` columns, each on its own window (the chunk plus the map's half-width on
        every side, as a tile), keeping the chunk's own columns: that response is local (no lateral
        gradient in the data), so memory stays that of one window whatever the film's size. A periodic
        film small enough for one chunk is solved whole (a window covering it once would cut the
        boundaries across the wrap).
        """
        ms, st = self.ms, self.settings
        omega = 2 * np.pi * st.frequency
        h = ms.spacing[0]
        nx, ny = ms.shape
        nz = self.dz.size
        per = bool(ms.periodic)
        ze = np.concatenate([[0.0], np.cumsum(self.dz)])
        amount = np.zeros((nx, ny, nz), complex)  # Li (mol per unit C0) per column and layer
        tensor = st.vegard == "tensor"
        if tensor:  # the same Li times its deviatoric Vegard tensor: components xx, yy, zz, xy, xz, yz
            amount_dev = np.zeros((nx, ny, nz, 6), complex)
            comp = (np.array([0, 1, 2, 0, 0, 1]), np.array([0, 1, 2, 1, 2, 2]))
        if per and max(nx, ny) <= FAR_CHUNK + 2 * self.hw + 1:
            # a chunk window would cover the film once and cut its boundaries at the wrap: solve it whole
            chunks = [(None, None)]
        else:
            chunks = [(np.arange(a0, min(a0 + FAR_CHUNK, nx)), np.arange(b0, min(b0 + FAR_CHUNK, ny)))
                      for a0 in range(0, nx, FAR_CHUNK) for b0 in range(0, ny, FAR_CHUNK)]
        for ix, iy in chunks:
            if ix is None:
                ix, iy, ox, oy, shape = np.arange(nx), np.arange(ny), 0, 0, (nx, ny)
                lab = ms.labels
                net, system = self._film_system(omega)
            else:
                lab, ox, oy, _, net, system = self.system(ix, iy, omega=omega)
                shape = lab.shape
            diag = np.zeros(system.n)
            np.add.at(diag, system.top_index, system.top_conductance)  # unit concentration everywhere
            method = "split" if self.method == "split" else "auto"
            c = solve_frequency(system, omega, diag, diag.astype(complex), method=method, rtol=SOLVER_RTOL)[0]
            nb = system.n_bulk
            bulk = (c[:nb] * system.volume[:nb]).reshape(shape + (nz,))
            amount[np.ix_(ix, iy)] = bulk[ox:ox + ix.size, oy:oy + iy.size]
            # slab and boundary-layer Li in the chunk column and layer that hold their box centre
            parts = [(system.boxes[nb:], c[nb:] * system.volume[nb:])]
            if system.extra_boxes is not None:
                b = system.extra_boxes
                layer_vol = (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2]) * (b[:, 5] - b[:, 4])
                parts.append((b, (system.extra_map @ c) * layer_vol))
            if tensor:  # bulk: its grain's tensor; slabs: the mean of their grains'; layers: their cell's grain
                grains = lab[ox:ox + ix.size, oy:oy + iy.size]
                amount_dev[np.ix_(ix, iy)] = (bulk[ox:ox + ix.size, oy:oy + iy.size, :, None]
                                              * self.beta_dev[grains][:, :, None, comp[0], comp[1]])
                betas = self._boundary_betas(lab, net, system)
            for n_part, (b, q) in enumerate(parts):
                i = np.floor(0.5 * (b[:, 0] + b[:, 1]) / h).astype(int) - ox
                j = np.floor(0.5 * (b[:, 2] + b[:, 3]) / h).astype(int) - oy
                if chunks[0][0] is None:  # the whole periodic film: wrap
                    i, j = i % nx, j % ny
                k = np.clip(np.searchsorted(ze, 0.5 * (b[:, 4] + b[:, 5])) - 1, 0, nz - 1)
                own = (i >= 0) & (i < ix.size) & (j >= 0) & (j < iy.size)
                np.add.at(amount, (ix[i[own]], iy[j[own]], k[own]), q[own])
                if tensor:
                    np.add.at(amount_dev, (ix[i[own]], iy[j[own]], k[own]),
                              q[own, None] * betas[n_part][own][:, comp[0], comp[1]])
        vol = h * h * np.diff(ze)  # cell volume per layer (m^3)
        density = amount / vol
        # kernel over offsets: the Mindlin box table times the tip profile outside the tip's box
        Px, Py = (nx, ny) if per else (2 * nx, 2 * ny)
        oi = np.fft.fftfreq(Px, 1.0 / Px).astype(int)
        oj = np.fft.fftfreq(Py, 1.0 / Py).astype(int)
        OI, OJ = np.meshgrid(oi, oj, indexing="ij")
        zc = 0.5 * (ze[:-1] + ze[1:])
        # exact box integrals near the tip (the point kernel is off by ~(h / rho)^2 there)
        near = (np.abs(OI) <= 2 * self.hw + 8) & (np.abs(OJ) <= 2 * self.hw + 8)
        di, dj = OI[near][:, None], OJ[near][:, None]
        boxes = np.stack(np.broadcast_arrays((di - 0.5) * h, (di + 0.5) * h, (dj - 0.5) * h, (dj + 0.5) * h,
                                             ze[None, :-1], ze[None, 1:]), -1).reshape(-1, 6)
        comps = 3 if st.lateral else 1  # u3, and (u_x, u_y) with the Mogi in-plane kernel
        M = np.zeros((comps, Px, Py, nz))
        f = tip_profile(h * np.hypot(di[:, 0], dj[:, 0]), st.tip_profile, st.tip_width)[0]
        M[0][near] = self._averaged(lambda p: box_kernel(boxes, p), (0.0, 0.0)).reshape(-1, nz) * f[:, None]
        if st.lateral:
            lat = self._averaged(lambda p: box_kernel_lateral(boxes, p), (0.0, 0.0)).reshape(2, -1, nz)
            M[1][near], M[2][near] = lat[0] * f[:, None], lat[1] * f[:, None]
        box = (np.abs(OI) <= self.hw) & (np.abs(OJ) <= self.hw)
        M[:, box] = 0.0  # the tip's box: the window's part
        if tensor:  # deviatoric weights W_dev (m) of the tensor Vegard model, the same split
            Md = np.zeros((6, Px, Py, nz))
            Wn = deviator(self._averaged(lambda p: tensor_box_weights(boxes, p, self.material["nu"]), (0.0, 0.0)))
            Md[:, near] = np.moveaxis(Wn.reshape(-1, nz, 3, 3)[..., comp[0], comp[1]], -1, 0) * f[None, :, None]
            Md[:, box] = 0.0
        images = range(-2, 3) if per else (0,)  # one tip on the infinite periodic film: the film's images
        for a in images:
            for b in images:
                X, Y = h * (OI + a * nx), h * (OJ + b * ny)  # cell minus tip
                r2 = (X * X + Y * Y)[..., None]
                f = tip_profile(np.sqrt(r2[..., 0]), st.tip_profile, st.tip_width)[0]
                if a == 0 and b == 0:
                    f[near] = 0.0  # exact above
                point = f[..., None] * vol / (r2 + zc * zc) ** 1.5  # point kernels
                M[0] += point * zc
                if st.lateral:
                    M[1] -= point * X[..., None]
                    M[2] -= point * Y[..., None]
                if tensor:  # one-point rule: -sigma^B (Boussinesq) times the cell volume
                    S = boussinesq_stress(X[..., None], Y[..., None], zc, self.material["nu"])
                    S = deviator(np.moveaxis(S, (0, 1), (-2, -1)))
                    Md -= np.moveaxis(S[..., comp[0], comp[1]], -1, 0) * (f[..., None] * vol)[None]
        # u(t) = sum_j density(j) M(j - t): a correlation, one FFT per layer
        U = np.zeros((comps, Px, Py), complex)
        for k in range(nz):
            U += np.fft.fft2(density[:, :, k], s=(Px, Py)) * np.conj(np.fft.fft2(M[:, :, :, k]))
        out = self.C0 * self.mindlin * np.fft.ifft2(U)[:, :nx, :ny]
        if tensor:  # W_dev : beta_dev, the off-diagonal components twice
            dens = amount_dev / vol[:, None]
            Ud = np.zeros((Px, Py), complex)
            for k in range(nz):
                Ud += np.sum(np.array([1, 1, 1, 2, 2, 2])[:, None, None]
                             * np.fft.fft2(dens[:, :, k, :], s=(Px, Py), axes=(0, 1)).transpose(2, 0, 1)
                             * np.conj(np.fft.fft2(Md[:, :, :, k])), axis=0)
            out[0] += self.C0 * np.fft.ifft2(Ud)[:nx, :ny]
        return np.moveaxis(out, 0, -1) if st.lateral else out[0]

    def system(self, ix, iy, *, omega):
        """The window of tips ``ix x iy`` (increasing pixel indices) and its assembled diffusion system.

        Parameters
        ----------
        omega : float or None
            Angular frequency (rad/s) of the sub-grid boundary layers; None: time domain (quasi-static).

        Returns
        -------
        lab, ox, oy, grid, net, system
            Labels of the window, offsets of ``(ix[0], iy[0])`` in it, the grid, the boundary network and
            the :class:`~esmsim.transport.DiffusionSystem`.
        """
        lab, ox, oy, xi, yi = self._labels(np.atleast_1d(ix), np.atleast_1d(iy), indices=True)
        grid, net, system = self._assemble(lab, omega, periodic=False, xi=xi, yi=yi)
        return lab, ox, oy, grid, net, system

    def _assemble(self, lab, omega, *, periodic, xi, yi):
        """Grid, boundary network and diffusion system of the columns ``lab`` (film columns ``xi x yi``)."""
        ms = self.ms
        h = ms.spacing[0]
        grid = Grid(np.full(lab.shape[0], h), np.full(lab.shape[1], h), self.dz)
        D = self._diffusivities(lab, grid, xi, yi, periodic)
        if not has_boundaries(ms, self.material):  # neutral boundaries: the grains meet without a slab
            net = boundary_network(np.zeros_like(lab), h, h)
            return grid, net, assemble(grid, D, periodic=(periodic, periodic), bottom=self.settings.bottom)
        net = self._window_faces(boundary_network(lab, h, h, periodic=periodic), xi, yi, periodic)
        D_gb = self.material.D_gb * self.gb_factor[net.grains[:, 0], net.grains[:, 1]]
        system = assemble(grid, D, periodic=(periodic, periodic), bottom=self.settings.bottom, boundaries=net,
                          D_gb=D_gb, gb_width=self.material["gb_width"], omega=omega)
        return grid, net, system

    def _diffusivities(self, lab, grid, xi, yi, periodic):
        """Diagonal diffusivities (m^2/s) of the window's cells (film columns ``xi x yi``), shape
        ``grid.shape + (3,)``: each column its grain's, the surface cells that a boundary trace crosses with
        both grains' ``D_zz`` (:func:`~esmsim.transport._volume.cut_columnar`, from the whole film's
        :attr:`_surface_dzz`, so a window's edge cells are the film's)."""
        D = np.array(np.broadcast_to(self.Dg[lab][:, :, None, :], grid.shape + (3,)))
        return cut_columnar(self.ms, D, self.Dg, self.dz, xi, yi, periodic,
                            pixel_dzz=self._surface_dzz[np.ix_(np.asarray(xi), np.asarray(yi))])

    @cached_property
    def _surface_dzz(self):
        """D_zz (m^2/s) of every pixel's surface cells, shape ``ms.shape``: its grain's, or both grains' where a
        trace crosses it (:func:`~esmsim.transport._volume.cut_pixel_dzz`, over the whole film once)."""
        ms = self.ms
        return cut_pixel_dzz(ms, self.Dg, np.arange(ms.shape[0]), np.arange(ms.shape[1]), ms.periodic)

    @cached_property
    def _surface_root(self):
        """``sqrt(D_zz)`` of the grain at each surface point (:func:`~esmsim.transport._volume.surface_root`)."""
        return surface_root(self.ms, self.material)

    def isotropic_displacement(self, system, tip, c):
        """Outward surface displacement (m per mol/m^3 of ``c``) at ``tip`` from concentration ``c`` (real or
        complex, all unknowns of ``system``) with the isotropic Vegard coefficient trace(beta)/3, averaged
        over the contact when the settings give a contact radius."""
        nb = system.n_bulk
        # the column boxes depend on where slabs sit, not only on the window's shape: key on their geometry
        key = (hashlib.sha1(system.boxes[:nb].tobytes()).digest(), tip)
        if key not in self._bulk_weights:
            self._bulk_weights[key] = self._averaged(lambda p: box_kernel(system.boxes[:nb], p), tip)
            if len(self._bulk_weights) > _WEIGHT_CACHE:
                self._bulk_weights.popitem(last=False)
        self._bulk_weights.move_to_end(key)
        return self.mindlin * (self._bulk_weights[key] @ c[:nb]) + self._boundary_displacement(system, tip, c)

    def _offset_boxes(self, shape, grid):
        """Boxes of full column cells at every lateral offset ``(di, dj)`` from a tip at a cell centre, for a
        window of ``shape`` columns: shape ``((2 nx - 1) (2 ny - 1) nz, 6)``, offsets from ``-(n - 1)``."""
        nxw, nyw = shape
        h = grid.dx[0]
        ze = grid.edges(2)
        DI, DJ, K = np.meshgrid(np.arange(-(nxw - 1), nxw), np.arange(-(nyw - 1), nyw), np.arange(ze.size - 1),
                                indexing="ij")
        return np.stack([(DI - 0.5) * h, (DI + 0.5) * h, (DJ - 0.5) * h, (DJ + 0.5) * h, ze[K], ze[K + 1]],
                        -1).reshape(-1, 6)

    def _tip_weights(self, table, fractions, grid, system, ti, tj, kernel):
        """Weights of the bulk unknowns for a tip at window column ``(ti, tj)`` from an offset table
        (:meth:`_offset_boxes`, shape ``(2 nx - 1, 2 ny - 1, nz, ...)``).

        Column cells shrunk beside a slab within ``NEAR`` columns of the tip are integrated on their own
        boxes (an asymmetric box under the tip has components a full one lacks); farther out they take the
        table's value scaled by their volume fraction (``fractions``: :meth:`_column_fractions`).
        ``kernel(boxes, tip)`` gives exact weights.
        """
        NEAR = min(3, self.hw)  # never beyond the tip's box (the far field's part)
        nxw, nyw, nz = grid.shape
        h = grid.dx[0]
        frac, shrunk = fractions
        I, J = np.arange(nxw), np.arange(nyw)
        Wt = table[np.ix_(I - ti + nxw - 1, J - tj + nyw - 1)]  # (nxw, nyw, nz, ...)
        W = Wt * frac.reshape(frac.shape + (1,) * (Wt.ndim - 3))
        ci, cj = np.nonzero(shrunk & (np.abs(I[:, None] - ti) <= NEAR) & (np.abs(J[None, :] - tj) <= NEAR))
        cells = ((ci * nyw + cj)[:, None] * nz + np.arange(nz)[None, :]).ravel()
        W = W.reshape((-1,) + Wt.shape[3:])
        if cells.size:
            W[cells] = kernel(system.boxes[cells], ((ti + 0.5) * h, (tj + 0.5) * h))
        return W

    def _column_fractions(self, grid, system):
        """Volume fraction of each bulk cell left beside the slabs (nx, ny, nz), and the columns shrunk."""
        b = system.boxes[:system.n_bulk]
        full = grid.dx[0] * grid.dx[1] * np.diff(grid.edges(2))
        frac = ((b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2]) * (b[:, 5] - b[:, 4])).reshape(grid.shape) / full
        return frac, np.any(frac < 1 - 1e-9, axis=2)

    def _offset_table(self, name, weights, lab, grid, comps=(), masked=False):
        """Cached table of ``weights(boxes, point) -> (n,) + comps`` over the full column cells at every
        lateral offset of a window of ``lab``'s shape (:meth:`_offset_boxes`), shape
        ``(2 nx - 1, 2 ny - 1, nz) + comps``; ``masked``: zero beyond ``hw`` columns (the far field's part)."""
        key = (name, lab.shape, grid.dx[0], masked)
        table = self._tables.get(key)
        if table is None:
            boxes = self._offset_boxes(lab.shape, grid)
            table = weights(boxes, (0.0, 0.0)).reshape((2 * lab.shape[0] - 1, 2 * lab.shape[1] - 1, grid.shape[2])
                                                       + comps)
            if masked:
                di = np.abs(np.arange(-(lab.shape[0] - 1), lab.shape[0]))
                dj = np.abs(np.arange(-(lab.shape[1] - 1), lab.shape[1]))
                inside = np.maximum(di[:, None], dj[None, :]) <= self.hw
                table = table * inside.reshape(inside.shape + (1,) * (table.ndim - 2))
            self._tables[key] = table
        return table

    def _isotropic_tile(self, lab, grid, system, ix, iy, ox, oy, c):
        """Outward displacement (m per mol/m^3) at every tip of a tile, isotropic Vegard (trace/3).

        Bulk column cells through one table of Mindlin box integrals over lateral offsets (the grid is
        uniform laterally; :meth:`_tip_weights`), the slabs and the sub-grid boundary layers on their own
        boxes, all tips at once (:meth:`_boundary_tile`). Without the far-field split it agrees with the
        per-cell quadrature of :meth:`isotropic_displacement` to 1.4e-4 (measured on a tile of the test film:
        shrunk columns beyond 3 columns scaled by their volume fraction, far boundary boxes by the midpoint
        rule).
        """
        return self._trace_tile("iso", lambda b, p: self._averaged(lambda q: box_kernel(b, q), p),
                                box_kernel_far, (), lab, grid, system, ix, iy, ox, oy, c)

    def _lateral_tile(self, lab, grid, system, ix, iy, ox, oy, c):
        """In-plane displacement ``(u_x, u_y)`` (m per mol/m^3, sample axes) at every tip of a tile, shape
        (n_tips, 2): trace/3 of the Vegard tensor with the Mogi in-plane kernel
        (:func:`~esmsim.mechanics.box_kernel_lateral`); the tip's box and the far field split as for the
        normal component, bulk cells through one offset table."""
        return self._trace_tile("lat", lambda b, p: self._averaged(lambda q: box_kernel_lateral(b, q), p).T,
                                box_kernel_lateral, (2,), lab, grid, system, ix, iy, ox, oy, c)

    def _trace_tile(self, name, exact, boundary_kernel, comps, lab, grid, system, ix, iy, ox, oy, c):
        """Displacement components ``comps`` (m per mol/m^3) at every tip of a tile from the trace/3 Vegard
        strain: ``exact(boxes, tip) -> (n,) + comps`` contact-averaged box weights for the bulk cells
        (one offset table, :meth:`_tip_weights`), ``boundary_kernel`` for the slab and sub-grid boxes
        (:meth:`_boundary_tile`); split into the tip's box and :meth:`far_part` where the map uses it.
        Shape ``(n_tips,) + comps``."""
        far = self.far_field
        table = self._offset_table(name, exact, lab, grid, comps, masked=far)
        fractions = self._column_fractions(grid, system)
        cols = np.array([(ox + a - ix[0], oy + bb - iy[0]) for a in ix for bb in iy])  # tip columns
        out = self._boundary_tile(system, cols, grid.dx[0], c, far, kernel=boundary_kernel, lead=comps).T
        for t, (ti, tj) in enumerate(cols):
            W = self._tip_weights(table, fractions, grid, system, ti, tj, exact)  # (cells,) + comps
            out[t] += self.mindlin * (W.T @ c[:system.n_bulk, t])
        return out

    def _boundary_tile(self, system, cols, h, c, far, kernel=box_kernel_far, lead=()):
        """Isotropic displacement (m per mol/m^3) from the slab unknowns and the sub-grid layers at every
        tip of a tile (tip columns ``cols``), all tips in one vectorised quadrature (default: closed form
        near the tip, midpoint at >= 8 box sizes, :func:`~esmsim.mechanics.box_kernel_far`); with ``far``
        only the boxes whose centre lies within ``hw`` columns of the tip (the rest is :meth:`far_part`'s).
        ``kernel(boxes, point)`` returns weights of shape ``lead + (n,)`` (the in-plane kernel: ``(2,)``);
        the result has shape ``lead + (n_tips,)``."""
        nb = system.n_bulk
        out = np.zeros(lead + (len(cols),), complex)
        # slab strips (turned onto their boundary lines: strip_boxes), then the layers' boxes
        parts = [(system.boxes[nb:], c[nb:], system.slab_tangent)] if system.n > nb else []
        if system.extra_boxes is not None:  # bulk boundary layers beside the slabs
            parts.append((system.extra_boxes, system.extra_map @ c, system.extra_tangent))
        for boxes, conc, tangent in parts:
            i = np.floor(0.5 * (boxes[:, 0] + boxes[:, 1]) / h).astype(int)
            j = np.floor(0.5 * (boxes[:, 2] + boxes[:, 3]) / h).astype(int)
            step = max(1, 200_000 // max(len(boxes), 1))  # tips per vectorised quadrature
            for t0 in range(0, len(cols), step):
                ct = cols[t0:t0 + step]
                tip = (ct + 0.5) * h
                if tangent is None:
                    rel = boxes[None].repeat(len(ct), 0)
                else:
                    rel = strip_boxes(np.tile(boxes, (len(ct), 1)), np.tile(tangent, (len(ct), 1)),
                                      tip.repeat(len(boxes), 0)).reshape(len(ct), -1, 6)
                rel[..., :2] -= tip[:, None, :1]
                rel[..., 2:4] -= tip[:, None, 1:]
                rel = rel.reshape(-1, 6)  # every box relative to every tip
                W = self._averaged(lambda p: kernel(rel, p), (0.0, 0.0)).reshape(lead + (len(ct), -1))
                if tangent is not None and lead:  # in-plane vectors: strip frame -> sample axes
                    W = np.moveaxis(strip_to_sample(np.moveaxis(W, 0, -2), tangent, 1), -2, 0)
                if far:
                    W *= np.maximum(np.abs(i[None] - ct[:, :1]), np.abs(j[None] - ct[:, 1:])) <= self.hw
                out[..., t0:t0 + step] += np.einsum("...tm,mt->...t", W, conc[:, t0:t0 + step])
        return self.mindlin * out

    def _boundary_displacement(self, system, tip, c):
        """Isotropic displacement (m per mol/m^3) from the slab unknowns and the sub-grid layers."""
        nb = system.n_bulk
        u = (self._averaged(lambda p: box_kernel(system.kernel_boxes(p)[nb:], p), tip) @ c[nb:]
             if system.n > nb else 0.0)
        if system.extra_boxes is not None:  # bulk boundary layers beside the slabs
            u += self._averaged(lambda p: system.extra_weights(box_kernel, p), tip) @ (system.extra_map @ c)
        return self.mindlin * u

    def _deviatoric(self, lab, grid, system, ix, iy, ox, oy, c):
        """Deviatoric Vegard part of u at every tip of a tile, m/V: ``C0 sum W_dev : beta_dev c`` over the
        column cells (the trace part is the Mindlin kernel, done with the isotropic weights).

        The lateral grid is uniform, so W_dev of a full column cell depends only on its offset from the
        tip: one table over all offsets (and layers) serves every tip of the tile. Columns shrunk beside a
        slab break that: within ``NEAR`` columns of the tip their own boxes are integrated (an asymmetric
        box under the tip has odd components a full one lacks: up to 13 % of the largest weight); farther
        out they take the table's value scaled by their volume fraction.
        """
        nu = self.material["nu"]

        def exact(boxes, tip):
            return deviator(self._averaged(lambda p: tensor_box_weights(boxes, p, nu), tip))

        table = self._offset_table("dev", exact, lab, grid, (3, 3))
        beta = np.repeat(self.beta_dev[lab].reshape(-1, 3, 3), grid.shape[2], axis=0)  # per bulk cell

        nb = system.n_bulk
        fractions = self._column_fractions(grid, system)
        out = np.empty(len(ix) * len(iy), complex)
        t = 0
        for a in ix:
            for bb in iy:
                W = self._tip_weights(table, fractions, grid, system, ox + a - ix[0], oy + bb - iy[0], exact)
                out[t] = self.C0 * (np.einsum("nab,nab->n", W, beta) @ c[:nb, t])
                t += 1
        return out

    def _boundary_betas(self, lab, net, system):
        """Deviatoric Vegard tensors (m^3/mol) of the slab unknowns (the mean of their two grains', faces x
        layers) and of the sub-grid layer boxes (their cell's grain; None without layers)."""
        nz = self.dz.size
        slab = np.repeat(0.5 * (self.beta_dev[net.grains[:, 0]] + self.beta_dev[net.grains[:, 1]]), nz, axis=0)
        layer = None if system.extra_boxes is None else self.beta_dev[lab.ravel()[system.extra_cells // nz]]
        return slab, layer

    def _deviatoric_boundaries(self, lab, net, system, tips, c):
        """Deviatoric Vegard part of u from the boundary slabs and their sub-grid bulk layers, m/V.

        A layer's Li (and the negative copy of its cell) is bulk Li of that cell's grain: the grain's
        tensor. The slab's own Li takes the mean of its two grains' tensors, an assumption: what lattice
        strain Li in a grain boundary causes is not known (docs/mechanics.md). Integrated on every tip's
        own boxes (they are not on the uniform grid).
        """
        nb = system.n_bulk
        out = np.zeros(len(tips), complex)
        if system.n == nb:
            return out
        slab_beta, layer_beta = self._boundary_betas(lab, net, system)
        nu = self.material["nu"]

        def strips(p):  # the slabs' strips, turned onto their boundary lines
            W = tensor_box_weights(strip_boxes(system.boxes[nb:], system.slab_tangent, p), p, nu)
            return strip_to_sample(W, system.slab_tangent, 2)

        kernels, beta, amounts = [strips], [slab_beta], [None]
        if system.extra_boxes is not None:
            kernels.append(lambda p: system.extra_weights(lambda b, q: tensor_box_weights(b, q, nu), p, 2))
            beta.append(layer_beta)
            amounts.append(system.extra_map)
        for t, tip in enumerate(tips):
            for kernel, be, amap in zip(kernels, beta, amounts):
                W = deviator(self._averaged(kernel, tip))
                conc = c[nb:, t] if amap is None else amap @ c[:, t]
                out[t] += self.C0 * (np.einsum("nab,nab->n", W, be) @ conc)
        return out

    def solve(self, ix: int, iy: int) -> complex | np.ndarray:
        """Complex response (m/V) with the tip at microstructure pixel ``(ix, iy)`` (``(u3, u_x, u_y)`` with
        ``settings.lateral``)."""
        r = self.solve_tile(np.array([ix]), np.array([iy]))[0, 0]
        return complex(r) if np.ndim(r) == 0 else r

    def single_grain(self, ix, iy) -> int | None:
        """Grain id if the windows of all tips ``ix x iy`` hold one grain only (periodic films)."""
        if not self.ms.periodic:
            return None
        lab = self._labels(np.atleast_1d(ix), np.atleast_1d(iy))[0]
        g = lab.flat[0]
        return int(g) if np.all(lab == g) else None


class _FipyWindow(_Window):
    """The map engine with each tip's window solved by FiPy (``single_frequency_map(..., engine="fipy")``).

    The window's transport is FiPy's real 2 x 2 block system for ``(Re c, Im c)``
    (:func:`~esmsim.transport.fipy_frequency_solve`: harmonic face diffusivities, the tip's cell-averaged
    surface values held on the top faces, one sparse LU per tip); the displacement is esmsim's, from the
    same cells. An independent check of the transport, not a production path (one FiPy solve per tip:
    seconds each). FiPy has no term for the boundary slabs' sub-grid exchange and holds its surface values
    on every top face, so it takes films whose boundaries are neutral (``gb_enhancement`` 1 and every class
    factor 1: the window then has no slabs), tip profiles that apply on the whole surface (Lorentzian,
    point charge) and a blocking bottom. No far-field split: each window is the classic ``4 d`` one (or
    ``settings.window``).
    """

    FAR_FIELD = False

    def __init__(self, ms: ColumnarMicrostructure, material: Material, settings: MapSettings):
        super().__init__(ms, material, settings)
        if settings.tip_profile == "disk":
            raise ParameterError("engine", "'fipy' holds the tip's value on every surface face: use a Lorentzian or "
                                           "point-charge tip, or engine='esmsim' for the disk")
        if settings.bottom != "blocking":
            raise ParameterError("engine", f"'fipy' has a blocking bottom only (settings.bottom is "
                                           f"{settings.bottom!r}); use engine='esmsim'")
        if has_boundaries(ms, material):
            raise ParameterError("engine", "'fipy' has no term for the boundary slabs: it takes neutral boundaries "
                                           "(gb_enhancement 1 and the class factors 1); use engine='esmsim'")
        self.method = "fipy"

    def _assemble(self, lab, omega, *, periodic, xi, yi):
        grid, net, system = super()._assemble(lab, omega, periodic=periodic, xi=xi, yi=yi)  # no slabs here
        self._fipy_window = (grid, self._diffusivities(lab, grid, xi, yi, periodic))
        return grid, net, system

    def _solve_groups(self, system, groups, rhs):
        from ..transport._fipy import fipy_frequency_solve

        grid, D = self._fipy_window
        st = self.settings
        surface = rhs[system.top_index] / system.top_conductance[:, None]  # the tip's value on each top cell
        c = np.zeros((system.n, rhs.shape[1]), complex)
        for t in range(rhs.shape[1]):
            c[:, t] = fipy_frequency_solve(grid, D, (0.0, 0.0), profile=st.tip_profile, width=st.tip_width,
                                           omega=2 * np.pi * st.frequency,
                                           surface=surface[:, t].reshape(grid.shape[:2])).ravel()
        return c


ENGINES = {"esmsim": _Window, "fipy": _FipyWindow}


def pixel_response(ms, material, settings: MapSettings, ix: int, iy: int) -> complex:
    """Complex response (m/V) with the tip at microstructure pixel ``(ix, iy)``."""
    return _Window(ms, material, settings).solve(ix, iy)


_WORKER = {}


def pin_threads():
    """Worker-process initialiser: numerical libraries and esmsim's own solvers use one thread (the processes
    share the cores)."""
    os.environ["ESMSIM_NUM_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        _WORKER["limits"] = threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass


def default_workers(workers: int | None) -> int:
    """Worker processes: ``workers``, or one per CPU (at most 8) when None."""
    return min(os.cpu_count() or 1, 8) if workers is None else max(1, int(workers))


def _init_worker(ms, material, settings, factory=None):
    pin_threads()
    _WORKER["window"] = (factory or _Window)(ms, material, settings)


def _run_task(task, window=None):
    w = window if window is not None else _WORKER["window"]
    key, ix, iy = task[:3]
    if key[0] == "points":  # the parent adds the far-field part (_grid_points)
        return key, w.solve_points(ix, iy, task[3], far=False)
    if not w.FAR_FIELD:
        return key, (w.solve(ix[0], iy[0]) if key[0] == "grain" else w.solve_tile(ix, iy))
    # the parent adds the far-field part (_grid_response)
    if key[0] == "grain":
        return key, w.solve_tile(ix[:1], iy[:1], far=False)[0, 0]
    return key, w.solve_tile(ix, iy, far=False)


def _dask_task(task, token, ms, material, settings, factory=None):
    """A tile on a Dask worker: one window engine per (map, worker thread), built on first use."""
    import threading

    key = (token, threading.get_ident())
    w = _DASK_WINDOWS.get(key)
    if w is None:
        if len(_DASK_WINDOWS) > 16:
            _DASK_WINDOWS.clear()
        w = _DASK_WINDOWS[key] = (factory or _Window)(ms, material, settings)
    return _run_task(task, w)


_DASK_WINDOWS: dict = {}


def map_pixels(shape, pixels):
    """Microstructure pixel indices of ``pixels`` tip positions spread evenly over ``shape``."""
    out = []
    for n, m in zip(shape, pixels):
        if m < 1 or m > n:
            raise ValueError(f"pixels: {m} tip positions do not fit {n} microstructure pixels")
        out.append(np.floor((np.arange(m) + 0.5) * n / m).astype(int))
    return out


def single_frequency_map(
    ms: "ColumnarMicrostructure | Microstructure",
    material: Material,
    settings: MapSettings,
    *,
    workers: int | None = None,
    tile: int = 8,
    progress: bool = False,
    scan: "ScanGrid | None" = None,
    client=None,
    engine: str = "esmsim",
) -> MapResult:
    """Compute the complex ESM response at every pixel of a map.

    Parameters
    ----------
    ms : ColumnarMicrostructure or Microstructure
        A columnar film, or a voxel volume (3-D grains, pores, cracks): the tips of each of a volume's tiles
        then share one window, solved as :func:`~esmsim.probe.volume_response` solves a tip's (full tensors,
        slabs on inclined boundaries; no far-field split, :class:`~esmsim.probe._volume.VolumeWindows`);
        ``settings.lateral`` gives their in-plane displacement the same way (trace/3, Mogi kernel).
    material : Material
    settings : MapSettings
    workers : int, optional
        Worker processes (default: number of CPUs, at most 8); 1 runs in this process.
    tile : int
        Tip positions are solved in tiles of ``tile x tile`` map pixels that
        share one window and one LU factorisation (one right-hand side per tip); a volume's tiles are
        the units of work handed to the workers.
    progress : bool
        Show a progress bar with ETA (tqdm) on stderr.
    client : distributed.Client, optional
        Run the tiles on this Dask cluster (the film, material and settings are scattered to the workers
        once) instead of local processes; the result is the same bit for bit.
    scan : ScanGrid, optional
        A scan of given physical size, centre and rotation (:class:`ScanGrid`). Default: ``settings.pixels``
        tip positions spread evenly over the film, each on a voxel centre.
    engine : {"esmsim", "fipy"}
        ``"fipy"`` solves each tip's window with FiPy instead (:class:`_FipyWindow`): an independent check of
        the transport for films with neutral boundaries, Lorentzian or point-charge tips and a blocking
        bottom; one FiPy solve per tip (seconds each), no far-field split.

    Returns
    -------
    MapResult
    """
    if engine not in ENGINES:
        raise ParameterError("engine", f"got {engine!r}; allowed {', '.join(map(repr, ENGINES))}")
    factory = ENGINES[engine]
    if not isinstance(ms, ColumnarMicrostructure):  # a voxel volume: blocks of tips on shared windows
        from ._volume import VOLUME_ENGINES

        factory = VOLUME_ENGINES[engine]
    t0 = time.perf_counter()
    if scan is not None and not scan.on_voxels:
        P = scan.positions(ms)
        if scan.tips == "solved":
            resp, ix, iy, n = _grid_points(ms, material, settings, P, workers=workers, tile=tile, progress=progress,
                                           client=client, factory=factory)
        else:
            ix, iy, needed, interp = _voxel_stencil(ms, P)
            resp, n = _grid_response(ms, material, settings, ix, iy, needed=needed, workers=workers, tile=tile,
                                     progress=progress, client=client, factory=factory)
            resp = interp(resp)
        where = dict(positions=P, scan_x=scan.axis(0, ms), scan_y=scan.axis(1, ms))
    else:
        ix, iy = map_pixels(ms.shape, scan.pixels if scan is not None else settings.pixels)
        resp, n = _grid_response(ms, material, settings, ix, iy, workers=workers, tile=tile, progress=progress,
                                 client=client, factory=factory)
        where = {}
    if settings.lateral:  # (u3, u_x, u_y) per tip; (u_x, u_y) into the scan's axes
        lat = resp[..., 1:]
        if scan is not None and scan.rotation != 0.0:
            c, s = np.cos(scan.rotation), np.sin(scan.rotation)
            lat = np.stack([c * lat[..., 0] + s * lat[..., 1], -s * lat[..., 0] + c * lat[..., 1]], -1)
        return MapResult(resp[..., 0], ix, iy, n, time.perf_counter() - t0, lateral=lat, **where)
    return MapResult(resp, ix, iy, n, time.perf_counter() - t0, **where)


def _grid_response(ms, material, settings, ix, iy, *, needed=None, workers=None, tile=8, progress=False,
                   client=None, factory=None, desc="ESM map"):
    """Responses at the tip pixels ``ix x iy`` (NaN where ``needed`` is False and its whole tile is unneeded)
    and the number of solves.

    ``factory(ms, material, settings)`` makes the window engine (default :class:`_Window`; picklable); its
    ``solve_tile(ix, iy)`` gives one value (or one array of values) per tip, ``solve(ix, iy)`` one tip's.
    """
    win = (factory or _Window)(ms, material, settings)
    T = max(1, int(tile))
    tasks, tiles = [], []
    for a0 in range(0, ix.size, T):
        for b0 in range(0, iy.size, T):
            sa, sb = slice(a0, a0 + T), slice(b0, b0 + T)
            if needed is not None and not needed[sa, sb].any():
                continue
            g = win.single_grain(ix[sa], iy[sb])
            key = ("grain", g) if g is not None else ("tile", a0, b0)
            tiles.append((key, sa, sb))
            if key[0] == "tile" or not any(t[0] == key for t in tasks):
                tasks.append((key, ix[sa], iy[sb]))
    results = _execute(tasks, win, ms, material, settings, workers=workers, progress=progress, client=client,
                       factory=factory, desc=desc)
    k0, v0 = next(iter(results.items()))
    v0 = np.asarray(v0)
    shape = v0.shape if k0[0] == "grain" else v0.shape[2:]  # per tip: a value, or an array of values
    resp = np.full((ix.size, iy.size) + shape, np.nan, dtype=np.result_type(v0.dtype, np.float64))
    for key, sa, sb in tiles:
        resp[sa, sb] = results[key]
        if win.FAR_FIELD:
            resp[sa, sb] += win.far_part(ix[sa], iy[sb])
    return resp, len(tasks)


def _execute(tasks, win, ms, material, settings, *, workers, progress, client, factory=None, desc="ESM map"):
    """Run map tasks (:func:`_run_task`) here, on local worker processes or on a Dask cluster: ``{key: value}``."""
    workers = default_workers(workers)
    results = {}
    bar = pool = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="solve")
    if client is not None:
        import uuid

        from distributed import as_completed as dask_completed

        data = client.scatter([ms, material, settings], broadcast=True)
        token = uuid.uuid4().hex
        futs = [client.submit(_dask_task, task, token, *data, factory, pure=False, retries=2) for task in tasks]
        done = dask_completed(futs)
    elif workers == 1 or len(tasks) == 1:
        done = (_run_task(task, win) for task in tasks)
    else:
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(ms, material, settings, factory))
        done = as_completed([pool.submit(_run_task, task) for task in tasks])
    try:
        for item in done:
            k, val = item if isinstance(item, tuple) else item.result()
            results[k] = val
            if bar is not None:
                bar.update(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if bar is not None:
            bar.close()
    return results


def _grid_points(ms, material, settings, P, *, workers=None, tile=8, progress=False, client=None, factory=None):
    """Responses at film points ``P`` (m, shape (..., 2)), each solved where it is
    (:meth:`_Window.solve_points`), points grouped by the ``tile x tile`` block of voxels that holds their
    nearest voxel: ``(responses, ix, iy, n_solves)`` with the voxels holding the points."""
    win = (factory or _Window)(ms, material, settings)
    flat = np.asarray(P, float).reshape(-1, 2)
    n = np.array(ms.shape[:2])
    vox = np.floor(flat / np.array(ms.spacing[:2])).astype(int)
    vox = np.mod(vox, n) if ms.periodic else np.clip(vox, 0, n - 1)
    T = max(1, int(tile))
    blocks, group = np.unique(vox // T, axis=0, return_inverse=True)
    group = group.ravel()
    tasks, members = [], []
    for k, (bx, by) in enumerate(blocks):
        sel = np.flatnonzero(group == k)
        ix = np.arange(vox[sel, 0].min(), vox[sel, 0].max() + 1)
        iy = np.arange(vox[sel, 1].min(), vox[sel, 1].max() + 1)
        tasks.append((("points", int(bx), int(by)), ix, iy, flat[sel]))
        members.append(sel)
    results = _execute(tasks, win, ms, material, settings, workers=workers, progress=progress, client=client,
                       factory=factory)
    first = np.asarray(results[tasks[0][0]])
    out = np.empty((len(flat),) + first.shape[1:], complex)
    for task, sel in zip(tasks, members):
        out[sel] = results[task[0]]
    if win.far_field:
        out += win._interpolated_far(flat)
    return (out.reshape(np.shape(P)[:-1] + first.shape[1:]), np.unique(vox[:, 0]), np.unique(vox[:, 1]),
            len(tasks))


@dataclass(frozen=True)
class ScanGrid:
    """A raster scan: pixel grid of given physical size, centre and rotation on the film (SI units).

    Attributes
    ----------
    pixels : (int, int)
        Pixels along the scan's fast (x) and slow (y) axes.
    size : (float, float) or None
        Scan size (m); None: the whole film.
    center : (float, float) or None
        Scan centre on the film (m); None: the film centre.
    rotation : float
        Scan angle (rad): the scan's x axis is the film's x axis rotated counter-clockwise.
    tips : {"interpolated", "solved"}
        How a scan other than the default gets its tips' responses: bilinear interpolation between the
        surrounding voxel-centred solves (cheap; near boundaries, where the response changes within a voxel,
        tens of per cent off at 5-8 nm voxels), or each tip solved where it is
        (:meth:`_Window.solve_points`: cell-averaged tip data and the Li rebuilt inside the cells near the
        tip; about twice the cost of the default map; within ~1 % whatever the voxel size, and ~1-2 % from
        the default map at voxel centres). docs/probe.md.
    """

    pixels: tuple[int, int]
    size: tuple[float, float] | None = None
    center: tuple[float, float] | None = None
    rotation: float = 0.0
    tips: str = "interpolated"

    TIPS = ("interpolated", "solved")

    def __post_init__(self):
        if self.tips not in self.TIPS:
            raise ParameterError("scan.tips", f"got {self.tips!r}; allowed {', '.join(self.TIPS)}")

    @property
    def on_voxels(self) -> bool:
        """True for the default scan (whole film, unrotated): tips on voxel centres, solved by the tile engine."""
        return self.size is None and self.center is None and self.rotation == 0.0

    def axis(self, k: int, ms) -> np.ndarray:
        """Scan-frame coordinate (m) of the pixel centres along axis k, from the scan's corner."""
        L = self.size[k] if self.size is not None else ms.extent[k]
        return (np.arange(self.pixels[k]) + 0.5) * L / self.pixels[k]

    def positions(self, ms) -> np.ndarray:
        """Film coordinates (m) of every pixel centre, shape (nx, ny, 2).

        Raises
        ------
        ParameterError
            A pixel off a non-periodic film.
        """
        ext = np.array(ms.extent[:2], float)
        size = np.array(self.size if self.size is not None else ext, float)
        center = np.array(self.center if self.center is not None else ext / 2, float)
        u = (np.arange(self.pixels[0]) + 0.5) / self.pixels[0] - 0.5
        v = (np.arange(self.pixels[1]) + 0.5) / self.pixels[1] - 0.5
        U, V = np.meshgrid(u * size[0], v * size[1], indexing="ij")
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        P = np.stack([center[0] + c * U - s * V, center[1] + s * U + c * V], -1)
        if ms.periodic:
            return np.mod(P, ext)
        h = np.array(ms.spacing[:2])
        if np.any(P < h / 2 - 1e-12) or np.any(P > ext - h / 2 + 1e-12):
            raise ParameterError("scan.size", f"the scan (size {size.tolist()} m, centre {center.tolist()} m, "
                                              f"rotation {np.degrees(self.rotation):g} deg) leaves the non-periodic "
                                              f"film's voxel centres [{h[0] / 2:g}, {ext[0] - h[0] / 2:g}] m")
        return P


def _voxel_stencil(ms, P):
    """Voxel indices whose responses a bilinear interpolation at positions ``P`` needs, the mask of those
    needed, and the interpolation (a function of the (len(ix), len(iy)) responses)."""
    h = np.array(ms.spacing[:2])
    n = np.array(ms.shape[:2])
    g = P / h - 0.5  # index coordinates of the voxel centres
    i0 = np.floor(g).astype(int)
    w = g - i0
    corners = [(0, 0), (1, 0), (0, 1), (1, 1)]
    idx = []
    for a, b in corners:
        j = i0 + np.array([a, b])
        j = np.mod(j, n) if ms.periodic else np.clip(j, 0, n - 1)
        idx.append(j)
    ix = np.unique(np.concatenate([j[..., 0].ravel() for j in idx]))
    iy = np.unique(np.concatenate([j[..., 1].ravel() for j in idx]))
    pos_x = {v: k for k, v in enumerate(ix)}
    pos_y = {v: k for k, v in enumerate(iy)}
    lx = [np.vectorize(pos_x.get)(j[..., 0]) for j in idx]
    ly = [np.vectorize(pos_y.get)(j[..., 1]) for j in idx]
    needed = np.zeros((ix.size, iy.size), bool)
    for a, b in zip(lx, ly):
        needed[a, b] = True
    wx, wy = w[..., 0], w[..., 1]
    weights = [(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy]

    def interp(values):  # values (nx, ny, ...) at the voxel tips; trailing axes carried along
        extra = (1,) * (np.ndim(values) - 2)
        return sum(wk.reshape(wk.shape + extra) * values[a, b] for wk, a, b in zip(weights, lx, ly))

    return ix, iy, needed, interp
