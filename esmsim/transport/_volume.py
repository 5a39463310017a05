"""Transport in voxel volumes: full per-grain tensors, pores, cracks and grain-boundary slabs.

Grain boundaries are slab unknowns on the cell faces between grains, of all three orientations
(:func:`assemble_tensor` with ``labels``): each stores ``w delta`` times its face, exchanges with the
cells on both sides through :func:`slab_exchange` (the bulk layer beside it at the solve's frequency)
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
from ..microstructure._columnar import ColumnarMicrostructure
from ..microstructure._voxel import Microstructure, voxel_face_centres, voxel_faces
from ._boundaries import SECTION_MIN_DIP, boundary_factors, steep
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


CUT_SAMPLES = 16  # midpoints per lateral axis that measure the grains' areas in a cell of three or more grains
# (a cell of two: the exact area on either side of their bisector)
CUT_MIN = 1e-9  # smaller shares of a cell are round-off (a plane on the voxel faces)


def _top_labels(ms: Microstructure, xi, yi) -> np.ndarray:
    """Grain of each first-layer voxel of the window, -1 for void, shape (len(xi), len(yi))."""
    idx = np.ix_(np.asarray(xi), np.asarray(yi), [0])
    lab = ms.labels[idx][:, :, 0].astype(np.int64)
    for m in (ms.pores, ms.cracks):
        if m is not None:
            lab[m[idx][:, :, 0]] = -1
    return lab


def cut_columns(ms: Microstructure, D: np.ndarray, grain_T: np.ndarray, dz, xi, yi, periodic: bool) -> np.ndarray:
    """Surface cells that a boundary trace crosses, with ``D_zz`` the square of the area-weighted mean of the
    grains' ``sqrt(D_zz)`` over the cell's footprint (in place; returns ``D``).

    A cell takes the grain of its centre. Under a tip at ESM frequencies the bulk Li is a layer thinner
    than a voxel, under each point of the surface as deep as ``sqrt(D_zz / omega)`` of the grain there, and
    no flux crosses between neighbouring parts of a cell: a cell that a trace crosses is side-by-side
    columns of its grains, whose admittances ``A_g sqrt(i omega D_zz,g)`` add. Holding the whole cell in
    the centre's grain put the film's Li up to 4.95 % off at 8 nm cells (validation ``gb_fem``, the plane
    1-5 nm into a voxel, c along z beside c along x). The z row and column of the cell's tensor are
    scaled by ``s = sqrt(D_zz' / D_zz)`` (``S D S`` with ``S = diag(1, 1, s)``), which keeps it positive
    definite; a mean of whole tensors (Voigt, Reuss or of square roots) moved the tilted grains' cross
    terms and put rotated pairs further off.

    Only the cells of the first voxel layer (where the ESM response is; in slow problems, where Li goes
    deeper and the columns exchange, the static limit would be the arithmetic mean) and only volumes with
    seeds: the exact tessellation (:meth:`Microstructure.section`) at each cell's centre depth, among the
    grains of the cell's 3 x 3 neighbourhood; the area on each side of a bisector exactly, cells of three
    or more grains by ``CUT_SAMPLES`` midpoints per axis.
    """
    if ms.seeds is None:
        return D
    hz = ms.spacing[2]
    zc = np.cumsum(dz) - 0.5 * np.asarray(dz)
    top = np.flatnonzero(zc < hz)
    if not top.size:
        return D
    xi, yi = np.asarray(xi), np.asarray(yi)
    cut = _cut_means([ms.section(0.0), ms.section(hz)], _top_labels(ms, xi, yi), xi, yi, ms.spacing[:2],
                     np.sqrt(grain_T[:, 2, 2]), periodic)
    if cut is None:
        return D
    ci, cj, mean = cut
    for k in top:
        scale = mean(zc[k] / hz) / np.sqrt(D[ci, cj, k, 2, 2])
        D[ci, cj, k, 2, :] *= scale[:, None]
        D[ci, cj, k, :, 2] *= scale[:, None]
    return D


def cut_columnar(ms, D: np.ndarray, grain_D: np.ndarray, dz, xi, yi, periodic: bool, pixel_dzz=None) -> np.ndarray:
    """:func:`cut_columns` for a columnar film: the window's cells ``D`` (diagonal diffusivities, shape
    (nx, ny, nz, 3), m^2/s) whose footprint a boundary trace crosses take ``D_zz`` the square of the
    area-weighted mean of their grains' ``sqrt(D_zz)`` (``grain_D`` (n_grains, 3)), in the cells centred
    less than one pixel ``h`` deep (in place; returns ``D``). ``pixel_dzz`` (shape (len(xi), len(yi)),
    optional): those surface values already computed (:func:`cut_pixel_dzz`, e.g. once for a whole film).

    The trace is the same at every depth of a columnar film; the depth limit is the volume's first voxel
    layer carried over (a pixel's depth: where the ESM layer is, at all frequencies a map uses). A tip about
    2 nm beside a boundary sat on the other grain's 8 nm pixel, and the 72 random tips of validation
    ``gb_resolved`` had two more than 3 % apart between 8, 4 and 2 nm pixels (7.43 and 3.03 %); with these
    cells and the Li placed across them by the grains' ``sqrt(D_zz)`` (:func:`cut_cell_shape`) none (max
    2.27 %). Films without seeds (imported labels) keep their cells whole.
    """
    if ms.seeds is None:
        return D
    top = np.cumsum(dz) - 0.5 * np.asarray(dz) < ms.spacing[0]
    if top.any():
        if pixel_dzz is None:
            pixel_dzz = cut_pixel_dzz(ms, grain_D, xi, yi, periodic)
        D[:, :, top, 2] = np.asarray(pixel_dzz)[:, :, None]
    return D


def cut_pixel_dzz(ms, grain_D: np.ndarray, xi, yi, periodic: bool) -> np.ndarray:
    """The surface ``D_zz`` (m^2/s) of :func:`cut_columnar` for the pixels ``xi x yi`` of a columnar film with
    seeds, shape (len(xi), len(yi)): each pixel's grain's, the pixels a trace crosses the square of their
    grains' area-weighted mean ``sqrt(D_zz)``."""
    xi, yi = np.asarray(xi), np.asarray(yi)
    lab = ms.labels[np.ix_(xi, yi)].astype(np.int64)
    out = grain_D[lab, 2].copy()
    if ms.seeds is None:  # imported labels: no exact traces, the pixels keep their grain
        return out
    cut = _cut_means([ms, ms], lab, xi, yi, ms.spacing, np.sqrt(grain_D[:, 2]), periodic)
    if cut is not None:
        ci, cj, mean = cut
        out[ci, cj] = mean(0.0) ** 2
    return out


def _cut_means(sections, lab, xi, yi, spacing, root, periodic):
    """The cells of a window (grain labels ``lab``, film columns ``xi x yi`` (arrays); -1 void) that a boundary trace
    crosses, as ``(ci, cj, mean)``: ``mean(t)`` the area-weighted mean of ``root`` (per grain) over each
    cell's footprint at the fraction ``t`` of the way from ``sections[0]`` to ``sections[1]`` (columnar
    films: the tessellation at the top and bottom of the depth range); None where no trace crosses."""
    nx, ny = lab.shape
    pad = np.pad(lab, 1, mode="wrap" if periodic else "edge")
    cand = np.stack([pad[1 + a:1 + a + nx, 1 + b:1 + b + ny] for a in (-1, 0, 1) for b in (-1, 0, 1)], -1)
    near = (lab >= 0) & np.any((cand != lab[..., None]) & (cand >= 0), axis=-1)
    if not near.any():
        return None
    i, j = np.nonzero(near)
    own = lab[i, j]
    cand = np.where(cand[i, j] >= 0, cand[i, j], own[:, None])  # (m, 9); voids stand in as the cell's grain
    centre = np.stack([(xi[i] + 0.5) * spacing[0], (yi[j] + 0.5) * spacing[1]], -1)
    # which neighbours' grains reach into each cell at the range's top or bottom: the area on their side of
    # the bisector with the cell's own grain (b is the same at every depth, a linear in it, so an area that
    # is zero at both is zero in between)
    lines = [[_bisector(sec, own, cand[:, q], centre) for q in range(9)] for sec in sections]
    reach = np.stack([(_rectangle_fraction(*lines[0][q], *spacing) > CUT_MIN) |
                      (_rectangle_fraction(*lines[1][q], *spacing) > CUT_MIN) for q in range(9)], -1)
    reach &= cand != own[:, None]
    rows = np.flatnonzero(reach.any(axis=1))
    if not rows.size:
        return None
    other = np.sort(np.where(reach[rows], cand[rows], -1), axis=1)
    n_other = np.sum((other >= 0) & np.concatenate([np.ones((rows.size, 1), bool), other[:, 1:] != other[:, :-1]],
                                                   axis=1), axis=1)
    pair = n_other == 1  # the cell's grain and one other: the exact area on the other's side of their bisector
    pr = rows[pair]
    their = other[pair, -1]
    line = [_bisector(sec, own[pr], their, centre[pr]) for sec in sections]
    # a cell that three or more grains share (by a triple line): the owners of CUT_SAMPLES^2 midpoints
    multi = rows[~pair]
    if multi.size:
        g = (np.arange(CUT_SAMPLES) + 0.5) / CUT_SAMPLES - 0.5
        off = np.stack(np.broadcast_arrays(g[:, None] * spacing[0], g[None, :] * spacing[1]), -1)
        pts = centre[multi, None, :] + off.reshape(1, -1, 2)
        cm = cand[multi]

        def power(sec):
            d = sec._displacement(sec.seeds[cm][:, None, :, :] - pts[:, :, None, :])
            return np.einsum("mpcd,mpcd->mpc", d, d) - _power_weights(sec)[cm][:, None, :]

        m0, m1 = (power(sec) for sec in sections)

    def mean(t):
        # at a point (x, y, z) the power to every seed is a quadratic in z common to all seeds plus a part
        # linear in z (shear included): the bisectors and powers at the range's top and bottom give any depth
        out = np.empty(rows.size)
        far = _rectangle_fraction(line[0][0] + t * (line[1][0] - line[0][0]), line[0][1], *spacing)
        out[pair] = (1 - far) * root[own[pr]] + far * root[their]
        if multi.size:
            out[~pair] = root[np.take_along_axis(cm, np.argmin(m0 + t * (m1 - m0), axis=-1), axis=1)].mean(axis=1)
        return out

    return i[rows], j[rows], mean


def surface_root(ms: Microstructure | ColumnarMicrostructure, material):
    """``root(x, y)``: ``sqrt(D_zz)`` (m/s^1/2) of the grain that owns each surface point (film coordinates, m)
    in the tessellation's section at z = 0 (a columnar film's own tessellation); None for a film without
    seeds.

    Under an ESM tip the bulk Li at a surface point goes as ``f sqrt(D_zz)`` of the grain there, so a cell
    that a trace cuts (:func:`~esmsim.transport._volume.cut_columns`, which gives it both grains' storage) holds
    its Li on each grain's side in that proportion: the mechanics places it so. A tip 2 nm from a triple line
    inside an 8 nm cell that is mostly other grains read 6 % high with the cell's Li spread as the profile
    alone."""
    if ms.seeds is None:
        return None
    from ..microstructure._tessellation import power_tree

    sec = ms if isinstance(ms, ColumnarMicrostructure) else ms.section(0.0)
    tree = power_tree(sec.seeds, sec.weights, ms.extent[:2], ms.periodic)
    root = np.sqrt(grain_tensors(ms.rotations, material.principal_diffusivities())[:, 2, 2])
    period = np.asarray(ms.extent[:2], float)

    def owner_root(x, y):
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        p = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], -1)
        if ms.periodic:
            p[:, :2] = np.mod(p[:, :2], period)
        return root[tree.query(p)[1]].reshape(x.shape)

    return owner_root


def cut_cell_shape(root, depth: float, origin=(0.0, 0.0)):
    """``cell_shape`` for :meth:`~esmsim.transport.DiffusionSystem.weights`: the cells that
    :func:`cut_columns` (:func:`cut_columnar`) changes, centred less than ``depth`` (m) deep, hold their Li
    across their footprint as the grains' ``sqrt(D_zz)`` (``root``, :func:`surface_root`), as the surface
    has them; ``origin`` (m): the film coordinates of the system's corner. None when ``root`` is."""
    if root is None:
        return None

    def cell_shape(piece):
        out = np.ones(len(piece))
        top = piece[:, 4] + piece[:, 5] < 2 * depth
        if top.any():  # the mean over 4 x 4 midpoints of each piece, once per column of pieces
            xy, back = np.unique(piece[top, :4], axis=0, return_inverse=True)
            g = (np.arange(4) + 0.5) / 4
            px = xy[:, :1] + (xy[:, 1:2] - xy[:, :1]) * g[None, :] + origin[0]
            py = xy[:, 2:3] + (xy[:, 3:4] - xy[:, 2:3]) * g[None, :] + origin[1]
            out[top] = root(px[:, :, None], py[:, None, :]).mean(axis=(1, 2))[back.ravel()]
        return out

    return cell_shape


def _power_weights(sec) -> np.ndarray:
    """The power weights (m^2) of a section's seeds, zeros for a Voronoi one."""
    return np.zeros(len(sec.seeds)) if sec.weights is None else np.asarray(sec.weights, float)


def _bisector(sec, ga, gb, centre):
    """The power bisector of grains ``ga`` and ``gb`` in section ``sec`` near each cell centre, as
    ``(a, b)``: the points ``centre + q`` on ``gb``'s side are those with ``b . q > a`` (exact: the power
    difference is linear in the point, with the seeds' images nearest to the centre)."""
    w = _power_weights(sec)
    da = sec._displacement(sec.seeds[ga] - centre)  # seed positions relative to the centre
    db = sec._displacement(sec.seeds[gb] - centre)
    # P_b - P_a at centre + q: |q - db|^2 - |q - da|^2 - w_b + w_a = -2 q.(db - da) + E
    E = np.einsum("md,md->m", db, db) - np.einsum("md,md->m", da, da) - w[gb] + w[ga]
    return 0.5 * E, db - da


def _rectangle_fraction(a, b, hx, hy):
    """Fraction of the rectangle ``|q_x| <= hx / 2, |q_y| <= hy / 2`` where ``b . q > a`` (exact)."""
    a = np.asarray(a, float)
    bx, by = b[:, 0], b[:, 1]
    swap = np.abs(bx) > np.abs(by)  # integrate across the steeper direction
    bx, by = np.where(swap, by, bx), np.where(swap, bx, by)
    wx, wy = np.where(swap, hy, hx), np.where(swap, hx, hy)
    flip = by < 0  # b . q > a  <=>  -b . q < -a: the complement
    bx, by, a = np.where(flip, -bx, bx), np.where(flip, -by, by), np.where(flip, -a, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        # q_y > (a - bx q_x) / by: the covered length in y is clip(u(q_x), 0, wy), u linear in q_x
        u0 = 0.5 * wy - a / by
        s = bx / by
        F = lambda u: np.where(u < 0, 0.0, np.where(u < wy, 0.5 * u * u, wy * u - 0.5 * wy * wy))  # noqa: E731
        steep = np.abs(s) * wx > 1e-9 * wy
        area = np.where(steep, (F(u0 + 0.5 * s * wx) - F(u0 - 0.5 * s * wx)) / np.where(steep, s, 1.0),
                        np.clip(u0, 0, wy) * wx)
        frac = np.where(by > 0, area / (wx * wy), (a < 0).astype(float))
    return np.clip(np.where(flip, 1.0 - frac, frac), 0.0, 1.0)


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
        origin = np.array([xi[0] * ms.spacing[0], yi[0] * ms.spacing[1], 0.0])
        slabs = dict(labels=ms.labels[sel], D_gb=material.D_gb * boundary_factors(ms, material),
                     gb_width=material["gb_width"], omega=omega,
                     normal=lambda g1, g2, c: ms.boundary_normal(g1, g2, c + origin),
                     section=None if ms.seeds is None else ms.section, section_origin=(int(xi[0]), int(yi[0])))
    try:
        # the cells' tensors straight from the grains' (the film's own voxel tensors are never made here)
        grain_T = grain_tensors(ms.rotations, material.principal_diffusivities())
        D = tensors[sel] if tensors is not None else grain_T[ms.labels[sel]]
        D = cut_columns(ms, D, grain_T, dz, xi, yi, periodic[0])
        system = assemble_tensor(grid, D, active=~ms.void[sel], periodic=periodic, bottom=bottom, **slabs)
    except ValueError as e:
        if str(e).startswith("gb_width"):
            raise ParameterError("material.gb_width", str(e)[len("gb_width: "):]) from None
        raise
    return grid, system
