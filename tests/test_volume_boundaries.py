"""Grain-boundary slabs in voxel volumes: the 3-D face network, the operator, and responses that do not
depend on the voxel size or on how the boundary is turned."""

import numpy as np
import pytest

from esmsim.materials import get_material
from esmsim.microstructure import Grid, bicrystal, columnar_voronoi, graded_widths
from esmsim.microstructure._voxel import from_labels, voxel_faces
from esmsim.transport import assemble, assemble_tensor, boundary_network, solve_frequency, tip_terms
from esmsim.transport._boundaries import SECTION_MIN_DIP, slab_roles, volume_boundaries
from esmsim.transport._volume import snap_to_layers

OMEGA = 2 * np.pi * 1e4


def _extruded(h=4e-9):
    ms = columnar_voronoi((64e-9, 64e-9), spacing=h, thickness=40e-9, grain_size=25e-9, rng=3)
    nx, ny = ms.labels.shape
    dz = graded_widths(0.2e-9, 1.3, 30e-9, max_width=h)
    grid = Grid(np.full(nx, h), np.full(ny, h), dz)
    D = np.empty(grid.shape + (3,))
    D[..., :2], D[..., 2] = 1e-14, 3e-15
    return ms, grid, D


def test_faces_and_edge_links_of_a_label_volume():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 3, (5, 4, 3))
    h = (np.full(5, 2.0), np.full(4, 3.0), np.array([1.0, 2.0, 4.0]))
    vb = volume_boundaries(lab, h, periodic=(True, False))
    ref = voxel_faces(lab, periodic=True)  # wraps x and y: drop the y wrap
    keep = ~((ref["axis"] == 1) & (ref["index"][:, 1] == 3))
    assert vb.n_faces == keep.sum()
    assert np.all(lab.ravel()[vb.low] != lab.ravel()[vb.high])
    # each link: two faces with one cell edge in common, of the stated length, at the stated distances
    edges = [np.concatenate([[0.0], np.cumsum(w)]) for w in h]
    L = [e[-1] for e in edges]

    def rect(f):  # (3, 2) extent of face f; x unwrapped next to its low cell
        i = np.array(np.unravel_index(vb.low[f], lab.shape))
        lo = np.array([edges[a][i[a]] for a in range(3)])
        hi = np.array([edges[a][i[a] + 1] for a in range(3)])
        a = vb.axis[f]
        lo[a] = hi[a]
        return np.stack([lo, hi], -1)

    assert len(vb.link_faces) > 0
    for (fa, fb), k, ell, (da, db) in zip(vb.link_faces, vb.link_axis, vb.link_edge, vb.link_half):
        ra, rb = rect(fa), rect(fb)
        for shift in (0.0, L[0], -L[0]):  # the periodic x wrap
            rb2 = rb.copy()
            rb2[0] += shift
            lo, hi = np.maximum(ra[:, 0], rb2[:, 0]), np.minimum(ra[:, 1], rb2[:, 1])
            if np.all(hi >= lo - 1e-12):
                break
        size = hi - lo
        assert np.isclose(size[k], ell, atol=0) and np.allclose(np.delete(size, k), 0.0, atol=0)  # a common edge along k
        edge = 0.5 * (lo + hi)
        for r, d in ((ra, da), (rb2, db)):
            centre = r.mean(axis=1)
            assert np.isclose(np.linalg.norm(np.delete(centre - edge, k)), d, atol=0)


def test_extruded_film_gives_the_columnar_operator():
    """Vertical boundaries through every layer: the voxel engine's slabs (faces of all orientations, series
    links across edges) are the columnar network's, to round-off: concentrations and displacement."""
    from esmsim.mechanics._halfspace import box_kernel

    ms, grid, D = _extruded()
    nz = grid.shape[2]
    net = boundary_network(ms.labels, 4e-9, 4e-9, periodic=True, normal=ms.boundary_normal)
    s2 = assemble(grid, D, periodic=(True, True), boundaries=net, D_gb=1e-11, gb_width=1e-9, omega=OMEGA)
    T = np.zeros(grid.shape + (3, 3))
    for a in range(3):
        T[..., a, a] = D[..., a]

    def normal3(g1, g2, c):
        return np.column_stack([ms.boundary_normal(g1, g2, c[:, :2]), np.zeros(len(g1))])

    s3 = assemble_tensor(grid, T, periodic=(True, True), labels=np.repeat(ms.labels[:, :, None], nz, 2),
                         D_gb=1e-11, gb_width=1e-9, normal=normal3, omega=OMEGA)
    assert s3.n == s2.n and s3.n_bulk == s2.n_bulk
    tip = (30e-9, 34e-9)
    out = []
    for s in (s2, s3):
        c = solve_frequency(s, OMEGA, *tip_terms(s, tip, profile="lorentzian", width=10e-9), method="direct")[0]
        u = s.weights(box_kernel, tip) @ c + s.extra_weights(box_kernel, tip) @ (s.extra_map @ c)
        out.append((c, u))
    (c2, u2), (c3, u3) = out
    nb = s2.n_bulk
    assert np.allclose(c3[:nb], c2[:nb], rtol=0, atol=1e-12 * np.abs(c2).max())
    # slab unknowns: columnar face f, layer k <-> voxel face of the same axis and low pixel in layer k
    low3 = np.array(np.unravel_index(s3.slab_cells[:, 0], grid.shape)).T
    key3 = {(int(a), int(i), int(j), int(k)): m for m, (a, (i, j, k)) in
            enumerate(zip(np.where(low3[:, 0] != np.array(np.unravel_index(s3.slab_cells[:, 1], grid.shape))[0],
                                   0, 1), low3))}
    order = [key3[(int(net.axis[f]), int(net.low[f, 0]), int(net.low[f, 1]), k)] for f in range(net.n_faces)
             for k in range(nz)]
    assert np.allclose(c3[nb:][order], c2[nb:], rtol=0, atol=1e-12 * np.abs(c2).max())
    assert abs(u3 / u2 - 1) < 1e-10


@pytest.mark.parametrize("omega", [None, OMEGA])
def test_slab_operator_conserves_li(omega):
    """No flux leaves through the sides or the bottom (blocking, no tip term): every row of K sums to 0
    (each link takes from one unknown what it gives the other), with rotated tensors' cross terms and the
    complex sub-grid exchange; diagonal tensors keep K symmetric with the slabs."""
    ms = bicrystal((40e-9, 32e-9, 24e-9), spacing=4e-9, normal=(1.0, 0.5, 1.0), rng=1)
    dz = snap_to_layers(graded_widths(0.3e-9, 1.4, 20e-9, max_width=4e-9), 4e-9, 0.4e-9, 24e-9)
    grid = Grid(np.full(10, 4e-9), np.full(8, 4e-9), dz)
    lab = ms.labels[:, :, np.minimum((np.cumsum(dz) - dz / 2) // 4e-9, 5).astype(int)]
    rng = np.random.default_rng(2)
    A = rng.normal(size=(3, 3))
    T = np.broadcast_to((A @ A.T + 3 * np.eye(3)) * 1e-15, grid.shape + (3, 3)).copy()
    s = assemble_tensor(grid, T, labels=lab, D_gb=1e-11, gb_width=0.5e-9, omega=omega,
                        normal=lambda g1, g2, c: ms.boundary_normal(g1, g2, c))
    assert s.n > s.n_bulk
    row = np.abs(s.K @ np.ones(s.n))
    assert row.max() < 1e-10 * abs(s.K).max()
    d = assemble_tensor(grid, np.broadcast_to(np.eye(3) * 1e-15, grid.shape + (3, 3)), labels=lab, D_gb=1e-11,
                        gb_width=0.5e-9, omega=omega, normal=lambda g1, g2, c: ms.boundary_normal(g1, g2, c))
    assert abs(d.K - d.K.T).max() <= 1e-14 * abs(d.K).max()


@pytest.mark.parametrize("normal", [(1.0, 0.5, 0.0), (1.0, 0.0, 1.0), (1.0, 0.5, 1.0), (0.3, 0.2, 1.0), (0.0, 0.0, 1.0)])
def test_slab_storage_is_delta_times_the_boundary_area(normal):
    """Steep planes on their vertical faces (``1 / (|n_x| + |n_y|)``), flat ones on the whole staircase
    (``w``): either way the slabs store delta times the plane's area (inside the box: its projection onto
    the plane normal to its largest component, sampled on a 2000 x 2000 grid, over that component); the
    staircase's ragged rim at the box's sides costs at most a cell along the perimeter (2 h / 64 nm = 6 %;
    measured 0, -1.1, -3.0, -0.8 and 0 %; a horizontal plane is assembled without dividing by its zero
    horizontal normal)."""
    h, L = 2e-9, np.array([64e-9, 64e-9, 64e-9])
    n = np.asarray(normal) / np.linalg.norm(normal)
    ms = bicrystal(tuple(L), spacing=h, normal=normal, point=L / 2, rng=0)
    grid = Grid(np.full(32, h), np.full(32, h), np.full(32, h))
    s = assemble_tensor(grid, np.broadcast_to(np.eye(3) * 1e-15, grid.shape + (3, 3)), labels=ms.labels,
                        D_gb=1e-11, gb_width=0.5e-9, normal=lambda g1, g2, c: ms.boundary_normal(g1, g2, c))
    a = np.argmax(np.abs(n))
    b, c = np.delete(np.arange(3), a)
    u, v = np.meshgrid((np.arange(2000) + 0.5) / 2000 * L[b], (np.arange(2000) + 0.5) / 2000 * L[c], indexing="ij")
    on = L[a] / 2 - (n[b] * (u - L[b] / 2) + n[c] * (v - L[c] / 2)) / n[a]  # the plane's coordinate along a
    area = np.mean((on >= 0) & (on <= L[a])) * L[b] * L[c] / abs(n[a])
    stored = s.volume[s.n_bulk:].sum() / 0.5e-9
    assert abs(stored / area - 1) < 0.06
    weight, _, junction = slab_roles(np.repeat(n[None], 3, 0), np.arange(3))
    steep = n[2] ** 2 <= n[0] ** 2 + n[1] ** 2
    assert junction[2] == steep and (weight[2] == 0) == steep


def test_normals_fitted_without_seeds_match_the_plane():
    ms = bicrystal((48e-9, 48e-9, 32e-9), spacing=2e-9, normal=(1.0, 0.5, 1.0), rng=0)
    fitted = from_labels(ms.labels, spacing=2e-9).boundary_normal(np.array([0]), np.array([1]), None)[0]
    exact = np.array([1.0, 0.5, 1.0]) / 1.5
    assert abs(abs(fitted @ exact) - 1) < 1e-4


def test_z_cells_end_on_the_voxel_layers():
    dz = graded_widths(0.05e-9, 1.3, 61e-9, max_width=4e-9)
    snapped = snap_to_layers(dz, 4e-9, 1.1e-9, 64e-9)
    ze = np.concatenate([[0.0], np.cumsum(snapped)])
    for t in 4e-9 * np.arange(1, 17):
        assert np.isclose(ze, t, rtol=0, atol=1e-18).any()  # every interface is a cell edge
        k = np.argmin(np.abs(ze - t))
        assert ze[k] - ze[k - 1] >= 1.1e-9 - 1e-18 and (k + 1 == ze.size or ze[k + 1] - ze[k] >= 1.1e-9 - 1e-18)
    assert np.isclose(ze[-1], 64e-9, atol=0) and np.isclose(snapped[0], dz[0], atol=0)  # the surface grading is kept


def test_rotating_a_vertical_boundary_about_z_changes_nothing():
    """Grains isotropic in-plane (c along z), a round tip on the boundary: turning the boundary by 26.6 or
    45 deg is the same problem, though its staircase has 1.34 and 1.41 times its area. Without the true-area
    exchange of the unresolved bulk layer the 45 deg boundary came out 2.8 % high (both engines)."""
    from esmsim_validation.gb_volume import TURNS, columnar, volume

    vol = np.array([volume(v, 4e-9)[0] for v in TURNS.values()])
    col = np.array([columnar(v, 4e-9)[0] for v in TURNS.values()])
    assert vol.max() / vol.min() - 1 < 0.01
    assert col.max() / col.min() - 1 < 0.01
    assert abs(vol[0] / col[0] - 1) < 0.01  # the two engines on the aligned boundary


def test_a_boundary_inclined_in_depth_gives_the_same_response_at_8_4_and_2_nm():
    """The plane at 45 deg to the surface: its Li lies on the vertical faces at the depth where the plane is;
    on the whole staircase (half on faces a voxel layer down) it spread 9 % (10.6, 11.2, 11.6 pm/V).

    The tip 6 nm beside the trace: 0.69 % measured (0.36 % with the slab exchange and layer placement of
    before 2026-11-28; 0.95 % while the layer pieces' copy took the whole cell's mean out of them). It was
    2.6 % while the sub-grid layers' negative copies of their cells stayed uniform boxes and the cells near the
    tip were rebuilt along the tip profile: the layer's Li then left the cell from elsewhere than the cell held
    it (worst in 8 nm cells)."""
    from esmsim_validation.gb_volume import volume

    amps = np.array([volume((1.0, 0.0, 1.0), h) for h in (8e-9, 4e-9, 2e-9)])
    assert amps[:, 0].max() / amps[:, 0].min() - 1 < 0.03
    assert amps[:, 1].max() / amps[:, 1].min() - 1 < 0.01


def test_slabs_of_a_polycrystal_lie_on_the_exact_boundary_planes():
    """With the tessellation's sections, each vertical face's strip is placed on its grain pair's exact
    segment at the depth of its z layer: its centre is on the power bisector of the two seeds (pairs whose
    segment in that section is empty keep the staircase, a few at most)."""
    from esmsim.microstructure import random_quaternions
    from esmsim.microstructure._voxel import _tessellated

    L = np.array([48e-9, 48e-9, 24e-9])
    seeds = np.random.default_rng(4).uniform(0, 1, (6, 3)) * L
    ms = _tessellated(seeds, None, (12, 12, 6), (4e-9,) * 3, random_quaternions(6, rng=7), True, {})
    grid = Grid(np.full(12, 4e-9), np.full(12, 4e-9), np.full(6, 4e-9))
    s = assemble_tensor(grid, np.broadcast_to(np.eye(3) * 1e-15, grid.shape + (3, 3)), periodic=(True, True),
                        labels=ms.labels, D_gb=1e-11, gb_width=0.5e-9, section=ms.section,
                        normal=lambda g1, g2, c: ms.boundary_normal(g1, g2, c))
    b = s.boxes[s.n_bulk:]
    centre = np.stack([0.5 * (b[:, 0] + b[:, 1]), 0.5 * (b[:, 2] + b[:, 3]), 0.5 * (b[:, 4] + b[:, 5])], -1)
    g1, g2 = s.slab_grains.T
    lab = ms.labels.ravel()
    cells = np.sort(np.stack([lab[s.slab_cells[:, 0]], lab[s.slab_cells[:, 1]]], 1), 1)
    staircase = np.all(np.sort(s.slab_grains, 1) == cells, axis=1)
    vertical = (b[:, 5] - b[:, 4]) > 1e-9  # a horizontal slab is delta thin in z
    off = np.linalg.norm(centre - ms.boundary_point(g1, g2, centre), axis=1)
    assert (vertical & staircase).sum() > 100
    assert np.mean(off[vertical & staircase] < 1e-12) > 0.95
    # the faces of facets that a z layer's labels lack (their cells belong to other grains) lie on their
    # plane at the facet's mean depth in the layer, so within half a layer (2 nm) of it at the layer's centre
    lacking = vertical & ~staircase
    assert lacking.sum() >= 5
    assert np.all(off[lacking] < 2e-9)


def _polycrystal_system(seed, h):
    """The periodic 10-grain film of validation ``gb_volume`` (seed ``seed``) in voxels of ``h`` (m): its
    static operator with slabs (volume_system)."""
    from dataclasses import replace

    from esmsim.probe._volume import _VolumeSolver
    from esmsim.transport._volume import volume_system
    from esmsim_validation.gb_volume import material, polycrystal_film, settings

    ms = polycrystal_film(h, seed)
    mat = material()
    return volume_system(ms, mat, _VolumeSolver(ms, mat, replace(settings(), window=1e-6)).dz, omega=0.0)[1], mat


@pytest.mark.parametrize("seed", [4, 5])
def test_each_boundary_holds_the_same_area_by_depth_at_8_and_4_nm(seed):
    """Each grain pair's slab area (storage / delta) per 8 nm of depth, 8 nm voxels against 4 nm: within 5 %
    in L1 over all pairs and depths (measured 3.1 and 2.4 %; 4.3 and 3.7 % before ``_gone_scale``). A voxel
    layer takes its labels at its centre, so a facet that ends inside the layer, or that a sliver of a third
    grain cuts off there, had no faces in it: 10.8 and 6.3 % before those facets got faces of their own from
    the sections."""
    areas = []
    for h in (8e-9, 4e-9):
        s, mat = _polycrystal_system(seed, h)
        nb = s.n_bulk
        g = np.sort(s.slab_grains, 1)
        z = 0.5 * (s.boxes[nb:, 4] + s.boxes[nb:, 5])
        key = (g[:, 0] * 10 + g[:, 1]) * 6 + np.minimum((z // 8e-9).astype(int), 5)
        areas.append(np.bincount(key, weights=s.volume[nb:] / mat["gb_width"], minlength=600))
    assert np.abs(areas[0] - areas[1]).sum() / areas[1].sum() < 0.05


def _area_error(seed, h, depths, exact):
    """L1 over grain pairs and depth bins of the slabs' area (storage / delta, each slab's spread evenly over its
    z cell) against ``exact`` (:func:`facet_areas`), relative to the total."""
    s, mat = _polycrystal_system(seed, h)
    nb = s.n_bulk
    z0, z1 = s.boxes[nb:, 4], s.boxes[nb:, 5]
    area, g = s.volume[nb:] / mat["gb_width"], np.sort(s.slab_grains, 1)
    thick = np.maximum(z1 - z0, 1e-30)[:, None]  # (a horizontal face: in the bin of its depth)
    overlap = np.clip(np.minimum(z1[:, None], depths[1:]) - np.maximum(z0[:, None], depths[:-1]), 0, None)
    at = (z0[:, None] >= depths[:-1]) & (z0[:, None] < depths[1:])
    share = np.where(z1[:, None] > z0[:, None], overlap / thick, at)
    err = 0.0
    for (p, q), ref in exact.items():
        err += np.abs((area[:, None] * share)[(g[:, 0] == p) & (g[:, 1] == q)].sum(0) - ref).sum()
    return err / sum(ref.sum() for ref in exact.values())


@pytest.mark.parametrize("seed", [4, 5])
def test_each_boundary_holds_its_facets_exact_area_by_depth(seed):
    """Each grain pair's slab area in depth bins of 4-16 nm down to 48 nm against its facet's exact area,
    integrated from the tessellation's sections independently of the voxels (validation
    ``gb_volume.facet_areas``): L1 over pairs and bins measured 3.5 and 2.9 % at 8 nm voxels, 1.1 and 1.3 %
    at 4 nm (0.34 and 0.39 % at 2 nm): order 1.6-1.7 in h, from facets that end or start inside a z cell and grain
    slivers thinner than a voxel. The graded z cells of a voxel layer above and below its centre (where
    its labels are taken) had faces of pairs whose facet ends before them at the whole face's weight:
    4.4 and 4.1 % at 8 nm, 1.5 and 1.8 % at 4 nm before they took the facet's mean length over the cell
    (``_gone_scale``)."""
    from esmsim_validation.gb_volume import facet_areas

    depths = np.array([0, 4, 8, 12, 16, 24, 32, 48]) * 1e-9
    exact = facet_areas(seed, depths)
    e8, e4 = _area_error(seed, 8e-9, depths, exact), _area_error(seed, 4e-9, depths, exact)
    assert e8 < 0.04
    assert e4 < 0.5 * e8


def test_a_facet_that_ends_inside_a_voxel_layer_keeps_its_path_down():
    """Grains 5 and 7 of the seed-6 film share a facet that dips 68 deg and ends 12.7 nm deep, inside the
    8 nm voxel layer 8-16 nm, whose labels (at 12 nm) do not put the two side by side. Its faces in the
    cells above 8 nm must still conduct into the facet below: the slab-slab conductance across z = 8 nm
    at 8 nm voxels within 10 % of that at 4 nm (measured 5.84e-19 against 5.85e-19 m^3/s; 6.22e-19 at
    2 nm). Without faces below it was zero, and a tip on the facet's trace read 4.7 % above 2 nm voxels
    (its Li held in the top 8 nm)."""
    g_across = []
    for h in (8e-9, 4e-9):
        s, _ = _polycrystal_system(6, h)
        nb = s.n_bulk
        g = np.sort(s.slab_grains, 1)
        mine = np.flatnonzero((g[:, 0] == 5) & (g[:, 1] == 7))
        z0, z1 = s.boxes[nb + mine, 4], s.boxes[nb + mine, 5]
        up = mine[np.abs(z1 - 8e-9) < 1e-12]
        down = mine[np.abs(z0 - 8e-9) < 1e-12]
        g_across.append(-s.K.tocsr()[nb + up][:, nb + down].sum())
    assert g_across[1] > 0
    assert abs(g_across[0] / g_across[1] - 1) < 0.1


def test_a_periodic_film_solved_whole_does_not_depend_on_where_its_origin_is():
    """The 10-grain periodic polycrystal of ``gb_volume`` translated by 20 nm in y (seeds and tip with it)
    is the same film: the response must not change. Solved whole, cells, slabs and layers must be taken
    at their images nearest the tip, for the tip profile and for the mechanics (``DiffusionSystem.wrapped``).
    Without that the translated film read 1.86 against 2.01 pm/V at 4 nm voxels: slabs placed just
    outside [0, L) were counted on the wrong side of the film."""
    from dataclasses import replace

    from esmsim.microstructure import random_quaternions
    from esmsim.microstructure._voxel import _tessellated
    from esmsim.probe import MapSettings
    from esmsim.probe._volume import volume_response
    from esmsim_validation.gb_volume import SIZE, material, settings

    h, shift = 4e-9, 20e-9
    seeds = np.random.default_rng(4).uniform(0, 1, (10, 3)) * np.array(SIZE)
    q = random_quaternions(10, rng=7)
    st: MapSettings = replace(settings(), window=1e-6)
    amps = []
    for dy in (0.0, shift):
        moved = seeds + [0.0, dy, 0.0]
        moved[:, 1] %= SIZE[1]
        ms = _tessellated(moved, None, tuple(int(round(v / h)) for v in SIZE), (h, h, h), q, True, {})
        amps.append(np.abs(volume_response(ms, material(), st, [(80e-9, (80e-9 + dy) % SIZE[1])]))[0])
    assert amps[1] == pytest.approx(amps[0], rel=1e-6, abs=0)


def _dip_conductance(normal, h, size=(96e-9, 96e-9, 48e-9)):
    """``G dz / (delta D_gb)`` (m) of the slab network alone (its links to the bulk left out) of the
    ``gb_volume`` bicrystal in a box of ``size`` (m), the plane through its centre: c = 1 on the slabs of
    the top z cell, 0 on those of the bottom one, G the conductance between them and dz the distance of
    their centres. For a plane that crosses the whole box this is ``|n_xy|`` times its trace's length
    (the dip length is ``dz / |n_xy|``)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from esmsim_validation.gb_volume import EULER, material, settings

    from esmsim.probe._scan import _z_widths
    from esmsim.transport._volume import volume_system, volume_tensors

    n = np.asarray(normal, float) / np.linalg.norm(normal)
    ms = bicrystal(size, spacing=h, normal=tuple(n), point=np.array(size) / 2 + 0.3e-9, euler_angles=EULER)
    mat, st = material(), settings()
    T = volume_tensors(ms, mat)
    Dzz = np.array([T[..., 2, 2].min()])
    dz = snap_to_layers(_z_widths(ms, mat, st, np.column_stack([Dzz, Dzz, Dzz])), h, 0.1 * h, size[2])
    _, s = volume_system(ms, mat, dz, tensors=T, omega=2 * np.pi * st.frequency)
    nb = s.n_bulk
    K = s.K.tocsr()[nb:, nb:].tocoo()
    off = K.row != K.col
    links = sp.csr_matrix((K.data[off].real, (K.row[off], K.col[off])), shape=K.shape)
    L = links - sp.diags(np.asarray(links.sum(1)).ravel())
    zc, stores = 0.5 * (s.boxes[nb:, 4] + s.boxes[nb:, 5]), s.volume[nb:] > 0
    top, bottom = stores & (zc == zc[stores].min()), stores & (zc == zc[stores].max())
    linked = np.asarray(abs(links).sum(1)).ravel() > 0  # junctions carry no path of their own
    c, free = top.astype(float), ~(top | bottom) & linked
    c[free] = spla.spsolve(L[free][:, free].tocsc(), -L[free][:, ~free] @ c[~free])
    flux = abs((L @ c)[top].sum())
    _dip_conductance.last_dz = zc[bottom][0] - zc[top][0]
    return flux * (zc[bottom][0] - zc[top][0]) / (mat["gb_width"] * mat.D_gb)


@pytest.mark.parametrize("normal", [(1.0, 0.0, 1.0), (1.0, 0.5, 0.0)])
def test_slab_network_conducts_down_its_plane_exactly(normal):
    """delta D_gb along the plane, whatever the voxel size: the 45 deg plane across the 96 nm box (trace
    96 nm, |n_xy| = 1/sqrt(2)) and the vertical one turned 26.6 deg (trace 96 * sqrt(1.25) nm): exact to
    round-off at 8, 4 and 2 nm."""
    n = np.array(normal) / np.linalg.norm(normal)
    trace = 96e-9 / abs(n[0]) * np.hypot(n[0], n[1])  # x = x0 - (n_y y + n_z z) / n_x across y in [0, 96]
    for h in (8e-9, 4e-9, 2e-9):
        assert _dip_conductance(normal, h) == pytest.approx(np.hypot(n[0], n[1]) * trace, rel=1e-9)


def test_an_oblique_slab_network_conducts_the_same_at_every_voxel_size():
    """The oblique ``(1, 0.5, 1)`` staircase: its voxel layers meet where the faces on the two sides of an
    interface share the plane's trace (``_overlap_links``). Through the horizontal junctions instead, some
    of which touched no face of the next layer, it conducted 72.45, 71.99, 70.37 nm at 8, 4, 2 nm (3 %
    apart, 10-12 % under the plane's 80.0 nm); now 78.82, 79.12, 79.22."""
    g = [_dip_conductance((1.0, 0.5, 1.0), h) for h in (8e-9, 4e-9, 2e-9)]
    assert max(g) / min(g) - 1 < 0.006


def test_an_oblique_slab_network_conducts_as_its_plane():
    """Inside the box the oblique staircase conducts as the plane: doubling the trace (a 288 x 192 nm box
    against 192 x 96 nm, the trace inside both at every depth: 214.7 and 107.3 nm) adds the plane's own
    ``|n_xy| x 107.3 nm`` = 80.0 nm within 0.2 % (measured -0.01 % at 8 and 4 nm). What each box lacks
    (1.5 % at 8 nm, 1.0 % at 2 nm in the small one, half that in the big one) is a fixed end effect where
    the non-periodic box cuts the staircase."""
    n = np.array([1.0, 0.5, 1.0]) / 1.5
    for h in (8e-9, 4e-9):
        small = _dip_conductance((1.0, 0.5, 1.0), h, (192e-9, 96e-9, 48e-9))
        big = _dip_conductance((1.0, 0.5, 1.0), h, (288e-9, 192e-9, 48e-9))
        assert big - small == pytest.approx(np.hypot(n[0], n[1]) * 96e-9 * np.hypot(1.0, 0.5), rel=2e-3)


def test_a_3d_polycrystal_gives_the_same_tip_responses_at_8_4_and_2_nm():
    """Item 7 of the transport issue on a 3-D polycrystal: the periodic 10-grain Voronoi volume of
    ``gb_volume`` (four tips, whole film) within 3 % over 8, 4 and 2 nm voxels. Tip 2 sits 1.95 nm from a
    triple line of boundaries (3,8), (3,9), (8,9) that moves with depth: below a voxel interface the (3,8)
    staircase has more faces than above it, the segment's faces are spread differently in the two layers,
    and the faces kept their columns' links (one joined a face 10 nm away along the trace; the new ones
    near the triple line had no way up). Read 1.4, 3.6, 2.0, 0.9 % apart then; with the faces of steep
    planes joined by the trace they share wherever their columns change (``_restacked``): 0.8, 1.8, 1.9,
    0.8 %; with the planes under 45 deg on their vertical faces too: 0.2, 2.1, 0.2, 0.3 %. The cut surface
    cells holding both grains' D_zz (``cut_columns``) alone put tip 2's 8 nm cell, mostly other grains with
    the tip 2 nm inside its own, 6 % high (4.9 %); with that Li placed on each grain's side as its sqrt(D_zz)
    (``surface_root``): 0.16, 2.2, 0.27, 0.25 % (7.92, 8.09, 8.03 pm/V at tip 2, as before the cut cells)."""
    from esmsim_validation.gb_volume import polycrystal

    amps = np.array([polycrystal(h) for h in (8e-9, 4e-9, 2e-9)])
    spread = amps.max(0) / amps.min(0) - 1
    assert np.all(spread < 0.03), spread


def test_a_flat_planes_horizontal_faces_hold_its_li_on_the_plane():
    """A plane dipping under SECTION_MIN_DIP (here 1.3 deg) keeps its whole staircase; the Li of its horizontal
    faces (at the voxel layers' interfaces) goes to the mechanics at the plane's own depth under each face's
    centre (at most a voxel off the interface), from the trace in the section at the interface and the
    plane's normal. (For the 34 deg plane, before it lay on its vertical faces, that took a tip 6 nm beside
    the trace from 13.7 % to 8.1 % apart over 8/4/2 nm.)"""
    from esmsim_validation.gb_volume import EULER, SIZE, _plane, material, settings

    from esmsim.probe._scan import _z_widths
    from esmsim.transport._volume import flat_boundaries, volume_system, volume_tensors

    n, p, _ = _plane((0.02, 0.01, 1.0), 10e-9)
    assert 1 < np.degrees(np.arccos(n[2])) < SECTION_MIN_DIP
    mat, st = material(), settings()
    for h in (8e-9, 4e-9):
        ms = bicrystal(SIZE, spacing=h, normal=tuple(n), point=p, euler_angles=EULER)
        assert flat_boundaries(ms)
        T = volume_tensors(ms, mat)
        Dzz = np.array([T[..., 2, 2].min()])
        dz = snap_to_layers(_z_widths(ms, mat, st, np.column_stack([Dzz, Dzz, Dzz])), h, 2.2 * mat["gb_width"],
                            SIZE[2])
        _, s = volume_system(ms, mat, dz, tensors=T, omega=2 * np.pi * st.frequency)
        b = s.boxes[s.n_bulk:]
        square = np.isclose(b[:, 1] - b[:, 0], h, rtol=1e-9, atol=0) & np.isclose(b[:, 3] - b[:, 2], h, rtol=1e-9,
                                                                                   atol=0)
        horizontal = square & (s.volume[s.n_bulk:] > 0)
        assert horizontal.sum() > 10
        x, y, z = 0.5 * (b[horizontal, 0] + b[horizontal, 1]), 0.5 * (b[horizontal, 2] + b[horizontal, 3]), \
            0.5 * (b[horizontal, 4] + b[horizontal, 5])
        plane = p[2] - (n[0] * (x - p[0]) + n[1] * (y - p[1])) / n[2]
        interface = np.round(z / h) * h  # where the face is
        expect = interface + np.clip(plane - interface, -h, h)
        assert np.abs(z - expect).max() < 1e-6 * h
        assert np.abs(z - interface).max() > 0.2 * h  # they did move


def test_a_plane_dipping_under_45_deg_lies_on_its_vertical_faces():
    """With the tessellation's sections a plane dipping 34 deg lies on its vertical faces, placed on its trace
    at every z cell, as a steep one does. As a staircase (storage and conduction averaged over a voxel layer,
    but the graded z cells resolve the top layer's vertical faces) it read 8.69, 8.81, 8.85 pm/V on its trace
    and 5.22, 5.63, 5.24 over it 6 nm from the trace at 8/4/2 nm, and 4.26-5.22 at 8 nm with the plane moved
    by quarter voxels; now 12.86-12.90 and 4.65-4.67 for all. The response is continuous across 45 deg:
    the staircase read 10.2 pm/V at a 45.6 deg plane where 44.4 deg reads 14.9 (now 14.7). The same holds for
    shallower planes."""
    from esmsim.probe._volume import volume_response
    from esmsim_validation.gb_volume import EULER, FLAT, SIZE, Y_TIP, _plane, material, settings

    normal, depth = FLAT["flat (0.6, 0.3, 1), 34 deg dip"]
    n, p, tips = _plane(normal, depth)
    tips = np.array(tips + [(tips[0][0] - 6e-9, Y_TIP)])  # on the trace, 6 nm beside it, 6 nm over the plane
    amps = []
    for h, shift in ((8e-9, 0.0), (8e-9, 4e-9), (4e-9, 0.0), (2e-9, 0.0)):
        d = np.array([shift, 0.0, 0.0])
        ms = bicrystal(SIZE, spacing=h, normal=tuple(n), point=p + d, euler_angles=EULER)
        amps.append(np.abs(volume_response(ms, material(), settings(), tips + d[:2])))
    amps = np.array(amps)
    spread = amps.max(0) / amps.min(0) - 1
    assert np.all(spread < 0.01), spread  # measured 0.3, 0.2, 0.4 %
    # continuity across 45 deg (4 nm voxels, tip on the trace)
    steep_side, flat_side = (np.abs(volume_response(bicrystal(SIZE, spacing=4e-9, normal=tuple(m), point=q,
                                                              euler_angles=EULER), material(), settings(), t[:1]))[0]
                             for m, q, t in (_plane((1.0, 0.0, 0.98), 10e-9), _plane((1.0, 0.0, 1.02), 10e-9)))
    assert abs(flat_side / steep_side - 1) < 0.03  # measured 1.3 %
    # a plane dipping 9.6 deg, 4 nm deep under the volume's centre, tip on its trace: 8.08, 8.04, 7.97 pm/V
    # (its staircase read 2.23, 2.32, 2.44)
    n, p, tips = _plane((0.15, 0.08, 1.0), 4e-9)
    shallow = [abs(volume_response(bicrystal(SIZE, spacing=h, normal=tuple(n), point=p, euler_angles=EULER),
                                   material(), settings(), tips[:1])[0]) for h in (8e-9, 4e-9, 2e-9)]
    assert max(shallow) / min(shallow) - 1 < 0.03, shallow


@pytest.mark.parametrize("yi", [np.arange(0, 17), np.arange(0, 9), np.arange(3, 12)])
def test_a_window_holds_only_its_part_of_a_boundary(yi):
    """A window of a larger film holds the slabs of the part of a boundary inside it: storage w delta A of that
    part, and the cells beside it give up the slab's width in the mechanics as on the whole film. Before the
    segments were cut to the window, a window of 17 of the boundary's 18 pixels stored 18/17 of its part
    and one of 9 pixels twice it (the whole 36 nm segment spread over the window's faces)."""
    from esmsim.microstructure import columnar_seeded, extrude
    from esmsim.transport._volume import volume_system

    mat = get_material("LiCoO2").replace(gb_enhancement=20.0, gb_width=0.5e-9)
    h = 2e-9
    film = columnar_seeded([[24e-9, 18e-9], [60e-9, 18e-9]], (84e-9, 36e-9), spacing=h, thickness=18e-9,
                           euler_angles=np.radians([[0.0, 0.0, 0.0], [30.0, 0.0, 0.0]]))
    grid, s = volume_system(extrude(film, 9), mat, np.full(9, h), xi=np.arange(10, 29), yi=yi)
    # the plane x = 42 nm, yi.size pixels long, 18 nm deep
    assert s.volume[s.n_bulk:s.n].sum() == pytest.approx(0.5e-9 * yi.size * h * 18e-9, rel=1e-12)
    k = np.ravel_multi_index((10, 2, 0), grid.shape)  # the cell on the low side, window x 20-22 nm
    assert s.boxes[k, 1] == pytest.approx(21.75e-9, rel=1e-12)
    assert s.volume[k] == pytest.approx(1.75e-9 * h * grid.dz[0], rel=1e-12)


def test_the_threaded_assembly_gives_the_same_operator_bit_for_bit(monkeypatch):
    """Large volumes build the bulk stencil, the strips' trimming and the layers beside the slabs in a thread
    beside the slabs' placement, and write the operator into arrays on small pages (``fresh_array``): the
    operator, storage, boxes and surface contacts must be the very same as the serial assembly's (here forced
    on a small polycrystal at 350 kHz, which has layers), and numpy's huge-page switch is restored."""
    import esmsim.transport._tensor as tensor
    import esmsim.transport._threads as threads_mod
    from esmsim.microstructure import voronoi
    from esmsim.transport._volume import snap_to_layers, volume_system

    mat = get_material("LiCoO2")
    ms = voronoi((60e-9, 60e-9, 30e-9), spacing=5e-9, grain_size=25e-9, periodic=True, rng=3)
    omega = 2 * np.pi * 350e3
    dz = snap_to_layers(graded_widths(0.125 * np.sqrt(mat.principal_diffusivities().min() / omega), 1.3, 30e-9,
                                      max_width=5e-9), 5e-9, 2 * mat["gb_width"], 30e-9)
    fields = ("volume", "boxes", "top_index", "top_xy", "top_conductance", "top_area", "extra_boxes", "extra_slab")
    pools, switched = [], []
    monkeypatch.setattr(tensor, "ThreadPoolExecutor", lambda n: pools.append(n) or threads_mod.ThreadPoolExecutor(n))
    switch = threads_mod._hugepage_switch()
    monkeypatch.setattr(threads_mod, "_hugepage_switch", lambda: lambda on: switched.append(on) or switch(on))
    was = switch(True)
    runs = []
    for workers, fresh in ((1, 32 * 2 ** 20), (2, 0)):
        monkeypatch.setattr(tensor, "threads", lambda n, w=workers: w)
        monkeypatch.setattr(threads_mod, "FRESH_FROM", fresh)
        runs.append(volume_system(ms, mat, dz, omega=omega)[1])
    assert switch(was) is True  # restored after each allocation
    serial, threaded = runs
    assert pools == [1]  # the threaded run's pool, and only its
    assert switched == [False, True] * 2  # the threaded run's operator arrays (data, indices) on small pages
    assert threaded.n > serial.n_bulk and serial.extra_boxes is not None
    for a in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(serial.K, a), getattr(threaded.K, a))
    for f in fields:
        if getattr(serial, f, None) is not None:
            assert np.array_equal(getattr(serial, f), getattr(threaded, f)), f
