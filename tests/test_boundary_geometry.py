"""Exact boundary geometry of seeded films, faces placed on it, slab strips and in-cell Li (transport issue,
voxel-size invariance)."""

import numpy as np
import pytest
from scipy.spatial import Voronoi

from esmsim.mechanics._halfspace import box_kernel, box_kernel_lateral
from esmsim.mechanics._points import tensor_box_weights
from esmsim.microstructure import Grid, columnar_seeded
from esmsim.transport import (assemble, boundary_network, place_on_boundaries, strip_boxes, strip_to_sample,
                              tip_rhs)
from esmsim.transport._tip import tip_profile

L = 160e-9
SEEDS = np.random.default_rng(5).uniform(0, 1, (12, 2)) * L


def _voronoi_edges(periodic):
    """Edges of the seeds' Voronoi diagram from scipy (an independent construction): {(a, b): [(mid, length)]}."""
    if periodic:
        pts = np.concatenate([SEEDS + np.array([i, j]) * L for i in (-1, 0, 1) for j in (-1, 0, 1)])
    else:  # mirror images across the four sides close every cell at the film's edges
        pts = np.concatenate([SEEDS, SEEDS * [-1, 1], SEEDS * [1, -1], [2 * L, 0] + SEEDS * [-1, 1],
                              [0, 2 * L] + SEEDS * [1, -1]])
    vor = Voronoi(pts)
    edges = {}
    for (p, q), rv in zip(vor.ridge_points, vor.ridge_vertices):
        a, b = sorted((p % 12, q % 12))
        if -1 in rv or a == b or (periodic and 4 not in (p // 12, q // 12)) or (not periodic and max(p, q) >= 12):
            continue
        v = vor.vertices[rv]
        edges.setdefault((a, b), []).append((v.mean(0), np.linalg.norm(v[1] - v[0]), v[1] - v[0]))
    return edges


@pytest.mark.parametrize("periodic", [True, False])
def test_boundary_segments_and_normals_are_the_voronoi_edges(periodic):
    """Every face's segment (midpoint, length) and normal against scipy's Voronoi diagram: 1e-12 nm.

    The periodic film has pairs whose seeds are about half a period apart (grains 4 and 8: 81 nm in y), which
    meet through images other than the nearest pair; their normal comes from the images next to the face."""
    h = 2e-9
    ms = columnar_seeded(SEEDS, (L, L), spacing=h, thickness=50e-9, periodic=periodic, rng=1)
    net = boundary_network(ms.labels, h, h, periodic=periodic)
    pair = np.sort(net.grains, 1)
    centre, tangent, length = ms.boundary_segment(pair[:, 0], pair[:, 1], net.face_centres(h, h))
    normal = ms.boundary_normal(pair[:, 0], pair[:, 1], net.face_centres(h, h))
    edges = _voronoi_edges(periodic)
    matched = 0
    for f in range(net.n_faces):
        cands = edges.get(tuple(pair[f]), [])
        if length[f] == 0:  # pixel neighbours whose cells do not share an edge here
            continue
        d = [np.linalg.norm((centre[f] - m + L / 2) % L - L / 2 if periodic else centre[f] - m) for m, _, _ in cands]
        k = int(np.argmin(d))
        assert d[k] < 1e-21 and abs(length[f] - cands[k][1]) < 1e-21
        edge = cands[k][2] / np.linalg.norm(cands[k][2])
        assert abs(normal[f] @ edge) < 1e-9 and abs(abs(tangent[f] @ edge) - 1) < 1e-9
        matched += 1
    assert matched > 0.97 * net.n_faces
    if periodic:  # the pair meeting across half a period: the nearest-seed normal would be wrong there
        f = np.flatnonzero((pair[:, 0] == 4) & (pair[:, 1] == 8))
        seed_pair = ms.boundary_normal(np.array([4]), np.array([8]))[0]
        assert f.size and np.all(np.abs(normal[f] @ seed_pair) < 0.9)


@pytest.mark.parametrize("h", [8e-9, 4e-9])
def test_faces_tile_the_exact_segments(h):
    """place_on_boundaries: each segment's faces lie on its line, one after the other, and their lengths
    w h add up to the segment's (within the scale range; at most a few faces of short edges are clipped)."""
    ms = columnar_seeded(SEEDS, (L, L), spacing=h, thickness=50e-9, periodic=True, rng=1)
    net = place_on_boundaries(boundary_network(ms.labels, h, h, periodic=True, normal=ms.boundary_normal), ms,
                              gb_width=0.5e-9)
    pair = np.sort(net.grains, 1)
    centre, tangent, length = ms.boundary_segment(pair[:, 0], pair[:, 1], net.face_centres(h, h))
    exact, checked = 0, 0
    key = np.concatenate([pair, np.round(np.mod(centre, L) / 1e-12)], 1)
    for k in np.unique(key, axis=0):
        sel = np.flatnonzero(np.all(key == k, 1))
        f = sel[0]
        if length[f] == 0:
            continue
        d = (net.position[sel] - centre[f] + L / 2) % L - L / 2
        assert np.all(np.abs(d @ np.array([-tangent[f, 1], tangent[f, 0]])) < 1e-18)  # on the line
        s = np.sort(d @ tangent[f])
        size = net.weight[sel] * h
        assert np.all(np.abs(s) <= 0.5 * (size.sum() - size.min()) + 1e-18)  # contiguous, centred
        assert np.all(np.abs(np.abs(net.normal[sel] @ tangent[f])) < 1e-12)
        checked += 1
        exact += abs(size.sum() / length[f] - 1) < 1e-9
    assert checked >= 30 and exact >= 0.8 * checked


@pytest.mark.parametrize("h", [8e-9, 4e-9])
def test_every_voronoi_edge_has_its_slab(h):
    """Against scipy's Voronoi diagram: every edge of the tessellation is carried by slabs whose lengths
    w h add up to the edge's (1e-9; at 8 nm one 0.5 nm edge is held at 0.5 of its faces' staircase length,
    the scale range's floor). Short edges whose grains' pixels touch only at a corner (0|11, 4.0 nm, at
    8 nm; 9|10, 3.6 nm, at 8 and 4 nm) are carried by diagonal faces linked to the four faces around that
    corner; without them those edges have no slab at all."""
    ms = columnar_seeded(SEEDS, (L, L), spacing=h, thickness=50e-9, periodic=True, rng=1)
    edges = [(a, b, m, ln) for (a, b), lst in _voronoi_edges(True).items() for m, ln, _ in lst]

    def carried(diagonals):
        net = place_on_boundaries(boundary_network(ms.labels, h, h, periodic=True, normal=ms.boundary_normal), ms,
                                  gb_width=0.5e-9, diagonals=diagonals)
        pair = np.sort(net.grains, 1)
        centre = ms.boundary_segment(pair[:, 0], pair[:, 1], net.face_centres(h, h))[0]
        out = []
        for a, b, m, ln in edges:
            sel = np.all(pair == (a, b), 1) & (np.linalg.norm((centre - m + L / 2) % L - L / 2, axis=1) < 1e-15)
            out.append(np.sum(net.weight[sel] * h) / ln)
        return net, np.array(out)

    net, ratio = carried(True)
    assert np.all(ratio > 0) and np.sum(np.abs(ratio - 1) < 1e-9) >= len(edges) - 1
    diag = np.flatnonzero(net.axis >= 2)
    assert diag.size == (2 if h == 8e-9 else 1)
    for f in diag:  # between the two corner pixels, linked to the four faces around the corner
        step = (net.high[f] - net.low[f]) % ms.shape[0]
        assert np.all(step == ([1, 1] if net.axis[f] == 2 else [1, ms.shape[1] - 1]))
        assert np.sum(np.any(net.link_faces == f, 1)) == 4
        assert tuple(net.grains[f]) == (ms.labels[tuple(net.low[f])], ms.labels[tuple(net.high[f])])
    assert np.sum(carried(False)[1] == 0) == diag.size + (h == 8e-9)  # 0|11 is listed twice (two images)


@pytest.mark.parametrize("angle", [0.0, 30.0, 117.0])
def test_strip_weights_against_a_quadrature_of_the_turned_strip(angle):
    """A strip 8 nm x 0.5 nm turned by ``angle`` about its centre, through strip_boxes/strip_to_sample, against
    the sum over 0.05 nm square columns placed on the turned strip. A square's second moments do not depend on
    its orientation, so the columns stand in for their turned selves to fourth order in 0.05 nm / 1.5 nm:
    1e-6 for the closed-form kernels; tensor_box_weights is itself a quadrature (adaptive, ~1e-4)."""
    t = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    c, half = np.array([3e-9, 1e-9]), np.array([4e-9, 0.25e-9])
    z = (0.1e-9, 2e-9)
    strip = np.array([[c[0] - half[0], c[0] + half[0], c[1] - half[1], c[1] + half[1], *z]])
    tip = c + 1.5e-9 * np.array([-t[1], t[0]]) + 1e-9 * t  # beside the strip, off its middle
    a = 0.05e-9
    u, v = np.meshgrid(np.arange(-half[0] + a / 2, half[0], a), np.arange(-half[1] + a / 2, half[1], a))
    xy = c + u.reshape(-1, 1) * t + v.reshape(-1, 1) * np.array([-t[1], t[0]])
    cols = np.stack([xy[:, 0] - a / 2, xy[:, 0] + a / 2, xy[:, 1] - a / 2, xy[:, 1] + a / 2,
                     np.full(len(xy), z[0]), np.full(len(xy), z[1])], -1)
    stand_in = strip_boxes(strip, t[None], tip)
    assert box_kernel(stand_in, tip)[0] == pytest.approx(box_kernel(cols, tip).sum(), rel=1e-6)
    lat = strip_to_sample(box_kernel_lateral(stand_in, tip), t[None], 1)[:, 0]
    np.testing.assert_allclose(lat, box_kernel_lateral(cols, tip).sum(1), rtol=1e-6)
    W = strip_to_sample(tensor_box_weights(stand_in, tip, 0.3), t[None], 2)[0]
    Wref = tensor_box_weights(cols, tip, 0.3).sum(0)
    np.testing.assert_allclose(W, Wref, atol=3e-4 * np.abs(Wref).max())


def test_in_cell_li_follows_the_given_shape():
    """DiffusionSystem.weights(shape=...): a uniform shape gives the plain weights (box integrals add up), and a
    shape that puts all the Li in the left half of each cell gives twice the left half-boxes' weights."""
    h = 8e-9
    grid = Grid(np.full(6, h), np.full(6, h), np.array([0.5e-9, 1e-9, 2e-9]))
    s = assemble(grid, np.full(grid.shape + (3,), 1e-16))
    tip = (21e-9, 26e-9)
    plain = s.weights(box_kernel, tip)
    # the closed form takes differences of large antiderivative terms: compare at 1e-12 of the largest weight
    tol = 1e-12 * plain.max()
    np.testing.assert_allclose(s.weights(box_kernel, tip, shape=lambda x, y: np.ones_like(x), radius=1.0), plain,
                               rtol=0, atol=tol)
    centre = 0.5 * (s.boxes[:, 0] + s.boxes[:, 1])
    left = s.weights(box_kernel, tip, shape=lambda x, y: (x % h < h / 2).astype(float), radius=1.0)
    halves = s.boxes.copy()
    halves[:, 1] = centre
    np.testing.assert_allclose(left, 2 * box_kernel(halves, tip), rtol=0, atol=tol)
    assert np.abs(left - plain).max() > 1e3 * tol


def test_cell_averaged_tip_data():
    """tip_rhs(average=True) gives each surface cell the Lorentzian's mean over its top face: against
    scipy's dblquad within 2e-3 (4 x 4 midpoints, spacing a = 2 nm: the rule's error is a^2/24 (|f_xx| + |f_yy|),
    at most (2 nm)^2 / 24 * 4 / (20 nm)^2 = 1.7e-3 at the tip; measured 1.3e-3), while the point value at the
    cell centre is 2 % off at the cells around a tip on a cell corner (the reason for the option)."""
    from scipy.integrate import dblquad

    h, width = 8e-9, 20e-9
    grid = Grid(np.full(8, h), np.full(8, h), np.array([1e-9, 2e-9]))
    s = assemble(grid, np.full(grid.shape + (3,), 1e-16))
    tip = (32e-9, 32e-9)  # a cell corner
    g_avg, b_avg = tip_rhs(s, tip, profile="lorentzian", width=width, average=True)
    g, b = tip_rhs(s, tip, profile="lorentzian", width=width)
    np.testing.assert_array_equal(g_avg, g)
    top = s.top_index
    for cell in (27, 28, 35, 0):  # the four cells at the corner and a far one
        x0, x1, y0, y1 = s.boxes[top[cell], :4]
        ref = dblquad(lambda y, x: tip_profile(np.hypot(x - tip[0], y - tip[1]), "lorentzian", width)[0],
                      x0, x1, y0, y1)[0] / h ** 2
        assert b_avg[top[cell]] / g[top[cell]] == pytest.approx(ref, rel=2e-3)
    assert abs(b[top[27]] / b_avg[top[27]] - 1) > 0.015


def test_map_windows_take_the_films_placed_faces():
    """Every window of the map engine (here one that wraps around the periodic film) gets the film's face
    weights, normals and positions: each slab sits on its exact boundary line, as in the whole-film network."""
    from esmsim.materials import get_material
    from esmsim.probe import MapSettings
    from esmsim.probe._scan import _Window

    h = 4e-9
    ms = columnar_seeded(SEEDS, (L, L), spacing=h, thickness=50e-9, periodic=True, rng=1)
    w = _Window(ms, get_material("LiCoO2"), MapSettings(frequency=350e3, tip_width=10e-9))
    film, _ = w._film_faces
    lab, ox, oy, xi, yi = w._labels(np.array([1]), np.array([38]), indices=True)
    assert xi[0] > xi[-1] or yi[0] > yi[-1]  # the window wraps
    net = w._window_faces(boundary_network(lab, h, h), xi, yi)
    shift = np.array([xi[0] * h, yi[0] * h])
    on = ms.boundary_point(net.grains[:, 0], net.grains[:, 1], net.position + shift)
    assert np.abs(on - (net.position + shift)).max() < 1e-18
    assert np.abs(net.position - net.face_centres(h, h)).max() < 2 * h  # next to their faces, not a period away
    f = np.flatnonzero(np.all(film.low == [xi[net.low[0, 0]], yi[net.low[0, 1]]], 1) & (film.axis == net.axis[0]))
    assert net.weight[0] == film.weight[f[0]] and np.all(net.normal[0] == film.normal[f[0]])


def test_films_without_seeds_keep_their_faces():
    """An imported label image has no exact boundaries: place_on_boundaries leaves weights as they are and puts
    each slab at its face centre; boundary_segment refuses such a film with the reason."""
    from esmsim.microstructure import columnar_from_labels

    h = 4e-9
    ms = columnar_seeded(SEEDS, (L, L), spacing=h, thickness=50e-9, periodic=True, rng=1)
    imp = columnar_from_labels(ms.labels, spacing=h, thickness=50e-9, periodic=True)
    net = boundary_network(imp.labels, h, h, periodic=True, normal=imp.boundary_normal)
    placed = place_on_boundaries(net, imp, gb_width=0.5e-9)
    np.testing.assert_array_equal(placed.weight, net.weight)
    np.testing.assert_array_equal(placed.position, net.face_centres(h, h))
    with pytest.raises(ValueError, match="no seeds"):
        imp.boundary_segment(np.array([0]), np.array([1]), np.zeros((1, 2)))


def test_scan_tips_from_the_config():
    """``scan.tips`` reaches the ScanGrid; anything else than interpolated or solved is refused by name."""
    from esmsim._errors import ConfigError
    from esmsim.config import parse_config
    from esmsim.simulation import scan_grid

    cfg = parse_config({"scan": {"rotation": "10 deg", "tips": "solved"}})
    assert scan_grid(cfg).tips == "solved"
    assert scan_grid(parse_config({})).tips == "interpolated"
    with pytest.raises(ConfigError, match="scan.tips"):
        parse_config({"scan": {"tips": "exact"}})


def test_rectangle_overlap_of_crossing_strips():
    from esmsim.transport._operator import _rectangle_overlap

    d = 0.5e-9
    one = lambda v: np.array([v], float)  # noqa: E731
    for angle in (90.0, 60.0, 20.0):
        t = np.radians(angle)
        area, cen = _rectangle_overlap(np.zeros((1, 2)), np.array([[1.0, 0.0]]), one(5e-9), one(d / 2),
                                       np.array([[0.3e-9, 0.1e-9]]), np.array([[np.cos(t), np.sin(t)]]), one(5e-9),
                                       one(d / 2))
        assert area[0] == pytest.approx(d * d / np.sin(t), rel=1e-9)  # a rhombus
        assert cen[0] == pytest.approx([0.3e-9 - 0.1e-9 / np.tan(t), 0.0], abs=1e-15)  # where the centre lines cross
    # a strip's end inside another: a quarter of the crossing square; apart: nothing
    area, cen = _rectangle_overlap(np.array([[0.0, -2e-9]]), np.array([[0.0, 1.0]]), one(2e-9), one(d / 2),
                                   np.array([[-2e-9, 0.0]]), np.array([[1.0, 0.0]]), one(2e-9), one(d / 2))
    assert area[0] == pytest.approx(d * d / 4) and cen[0] == pytest.approx([-d / 4, -d / 4])
    area, _ = _rectangle_overlap(np.zeros((1, 2)), np.array([[1.0, 0.0]]), one(1e-9), one(d / 2),
                                 np.array([[5e-9, 5e-9]]), np.array([[0.0, 1.0]]), one(1e-9), one(d / 2))
    assert area[0] == 0.0


def _coverage(system, z_cell, centre, half, step):
    """How many of ``system``'s top-layer slab strips cover each point of a square grid around ``centre``
    (m); returns the counts and the area of one point."""
    nb = system.n_bulk
    boxes, tan = system.boxes[nb:], system.slab_tangent
    top = np.abs(boxes[:, 4] - z_cell) < 1e-15
    b, t = boxes[top], tan[top]
    g = np.arange(-half, half, step) + 0.5 * step + 1e-3 * step  # off every strip edge
    px, py = np.meshgrid(centre[0] + g, centre[1] + g, indexing="ij")
    count = np.zeros(px.shape, int)
    for (x0, x1, y0, y1, _, _), (tx, ty) in zip(b, t):
        cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
        u = (px - cx) * tx + (py - cy) * ty
        v = -(px - cx) * ty + (py - cy) * tx
        count += (np.abs(u) <= 0.5 * (x1 - x0)) & (np.abs(v) <= 0.5 * (y1 - y0))
    return count, step * step


@pytest.mark.parametrize("corner", [True, False])
def test_slab_strips_count_a_junction_once(corner):
    """Where boundaries meet, their slab strips (width delta) overlap; the mechanics must hold that Li once.
    Four square grains (an X junction: the crossing delta x delta counted twice before, what a point tip
    there sees most: +29 % against the boundaries resolved as cells, validation gb_resolved) and three
    Voronoi grains (a triple junction of inclined boundaries placed on their exact lines)."""
    h, delta = 4e-9, 0.5e-9
    if corner:
        X = 64e-9
        seeds = X + 30e-9 * np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]])
        junction = (X, X)
    else:
        seeds = np.array([[40e-9, 40e-9], [90e-9, 50e-9], [60e-9, 95e-9]])
        from scipy.spatial import Voronoi
        junction = Voronoi(seeds).vertices[0]
    ms = columnar_seeded(seeds, (128e-9, 128e-9), spacing=h, thickness=20e-9)
    grid = Grid(np.full(ms.shape[0], h), np.full(ms.shape[1], h), np.full(2, 10e-9))
    net = place_on_boundaries(boundary_network(ms.labels, h, h, normal=ms.boundary_normal), ms, gb_width=delta)
    s = assemble(grid, np.full(grid.shape + (3,), 1e-15), boundaries=net, D_gb=1e-11, gb_width=delta)
    count, a = _coverage(s, 0.0, junction, 6e-9, delta / 25)
    twice = np.sum(count >= 2) * a
    if corner:
        # the cross of two strips through the junction: exactly covered, once
        assert count.max() == 1
        assert np.sum(count) * a == pytest.approx(2 * 12e-9 * delta - delta ** 2, rel=1e-3)
    else:
        # three strips meeting at angles: what is left doubly covered is well under the crossing's delta^2
        assert twice < 0.15 * delta ** 2, twice / delta ** 2


def test_volume_slab_strips_count_a_junction_once_in_every_z_cell():
    """The same four-grain junction as a voxel volume (``extrude``): the vertical strips of every z cell
    cover the cross of the two boundaries once."""
    from esmsim.materials import get_material
    from esmsim.microstructure import extrude
    from esmsim.transport._volume import volume_system

    h, X = 4e-9, 64e-9
    seeds = X + 30e-9 * np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]])
    ms = extrude(columnar_seeded(seeds, (128e-9, 128e-9), spacing=h, thickness=16e-9,
                                 euler_angles=np.radians([[0, 0, 0], [30, 0, 0], [60, 0, 0], [90, 0, 0]])), 4)
    mat = get_material("LiCoO2").replace(gb_width=0.5e-9, gb_enhancement=2e4)
    grid, s = volume_system(ms, mat, np.full(4, 4e-9))
    for z in grid.edges(2)[:-1]:
        count, a = _coverage(s, z, (X, X), 6e-9, mat["gb_width"] / 25)
        assert count.max() == 1
        assert np.sum(count) * a == pytest.approx((2 * 12e-9 - mat["gb_width"]) * mat["gb_width"], rel=1e-3)


@pytest.mark.parametrize("periodic", [True, False])
def test_segments_from_the_nearest_seeds_are_those_from_every_image(periodic, monkeypatch):
    """boundary_segment cuts each segment first with the seeds nearest to it (lifted by their weights) and
    keeps that only where a bound proves that no other seed image can cut it; elsewhere it takes every image.
    On a section of a 3-D tessellation (a power diagram: weighted seeds) the result must not depend on how
    many seeds are tried first: 2 (the pair's own, mostly: nearly every segment from every image), 4, 8 or
    all of them, bit for bit."""
    import esmsim.microstructure._columnar as col
    from esmsim.microstructure import voronoi

    ms = voronoi((120e-9, 100e-9, 60e-9), spacing=4e-9, grain_size=30e-9, periodic=periodic, rng=5).section(21e-9)
    net = boundary_network(ms.labels, *ms.spacing, periodic=periodic)
    pts = net.face_centres(*ms.spacing)
    out = []
    for k in (2, 4, 8, 10 ** 6):
        monkeypatch.setattr(col, "SEGMENT_CANDIDATES", k)
        out.append(ms.boundary_segment(net.grains[:, 0], net.grains[:, 1], pts))
    for other in out[1:]:
        for x, y in zip(out[0], other):
            assert np.array_equal(x, y)
    assert np.count_nonzero(out[0][2]) > 0.9 * net.n_faces and np.any(ms.weights != ms.weights[0])


def test_unique_rows_is_numpys_unique_of_rows():
    """``unique_rows`` (one int64 code per row) must give numpy's ``unique(axis=0)`` exactly: rows, first
    occurrences and inverse, with negative entries, one column, and spans too wide for a code (numpy's
    own path); non-integer arrays go to numpy."""
    from esmsim._arrays import unique_rows

    rng = np.random.default_rng(4)
    cases = [rng.integers(-5, 7, (300, 3)), rng.integers(0, 4, (50, 1)),
             np.stack([rng.integers(0, 3, 40), rng.integers(0, 3, 40) * 2 ** 40, rng.integers(0, 2 ** 30, 40)], -1),
             rng.integers(0, 3, (20, 2)).astype(float)]
    for a in cases:
        u, first, inv = np.unique(a, axis=0, return_index=True, return_inverse=True)
        got = unique_rows(a)
        assert np.array_equal(got[0], u) and np.array_equal(got[1], first) and np.array_equal(got[2], inv.ravel())
        assert np.array_equal(got[0][got[2]], a)


@pytest.mark.parametrize("periodic", [False, True])
def test_a_section_of_seeds_stacked_in_z_has_only_the_deeper_pairs_boundary(periodic):
    """Four seeds of a brick volume, two columns (x = 12 and 36 nm) of two seeds stacked in z (8 and 24 nm):
    below z = 16 nm the section is the deeper pair's (grains 1 and 3), whose boundary x = 24 nm spans the
    film; the shallower pair (0, 2) has no edge there. Each seed's image above or below it sits in line
    with it across the segment, so the half-plane test has no slope: it cut the segment nowhere, and the
    shallower pair's segment came back at full length (a missing facet found where there is none)."""
    from esmsim.microstructure._voxel import _tessellated

    seeds = np.array([[12, 24, 8], [12, 24, 24], [36, 24, 8], [36, 24, 24]], float) * 1e-9
    q = np.tile([1.0, 0, 0, 0], (4, 1))
    ms = _tessellated(seeds, None, (12, 12, 8), (4e-9,) * 3, q, periodic, {})
    pts = np.array([[24e-9, 10e-9], [24e-9, 30e-9]])
    for z, own, other in ((20e-9, (1, 3), (0, 2)), (12e-9, (0, 2), (1, 3))):
        sec = ms.section(z)
        assert np.allclose(sec.boundary_segment(np.full(2, own[0]), np.full(2, own[1]), pts)[2], 48e-9)
        assert np.all(sec.boundary_segment(np.full(2, other[0]), np.full(2, other[1]), pts)[2] == 0)
