import numpy as np
import pytest
from scipy import stats

from esmsim._errors import ParameterError
from esmsim.microstructure import (columnar_voronoi, graded_widths, matrices_to_bunge, quaternions_to_matrices,
                                   random_quaternions)


def test_random_orientations_are_haar():
    # under the Haar measure the c axis is uniform on the sphere: cos(Phi) ~ U(-1, 1), and R is a rotation
    R = quaternions_to_matrices(random_quaternions(20000, rng=1))
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0, atol=0)
    assert stats.kstest(R[:, 2, 2], stats.uniform(-1, 2).cdf).pvalue > 1e-3


def test_bunge_round_trip():
    R = quaternions_to_matrices(random_quaternions(500, rng=2))
    phi1, Phi, phi2 = matrices_to_bunge(R).T

    def rz(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    def rx(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    rebuilt = np.stack([rz(a) @ rx(b) @ rz(c) for a, b, c in zip(phi1, Phi, phi2)])
    assert np.allclose(rebuilt, R, atol=1e-10)


def test_same_seed_same_film_bit_for_bit():
    a = columnar_voronoi((300e-9, 200e-9), spacing=5e-9, thickness=50e-9, grain_size=80e-9, rng=11)
    b = columnar_voronoi((300e-9, 200e-9), spacing=5e-9, thickness=50e-9, grain_size=80e-9, rng=11)
    c = columnar_voronoi((300e-9, 200e-9), spacing=5e-9, thickness=50e-9, grain_size=80e-9, rng=12)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.quaternions, b.quaternions)
    assert not np.array_equal(a.labels, c.labels)
    assert a.shape == (60, 40)
    assert a.n_grains == round(300e-9 * 200e-9 / (np.pi * 80e-9 ** 2 / 4))


def test_boundary_distance_is_exact_for_the_tessellation():
    ms = columnar_voronoi((400e-9, 400e-9), spacing=10e-9, thickness=50e-9, grain_size=120e-9, rng=5)
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 400e-9, (40, 2))
    # brute force: march along 180 rays from each point until the nearest seed (over all periodic images)
    # belongs to another grain
    L = 400e-9
    images = np.concatenate([ms.seeds % L + np.array([i, j]) * L for i in (-1, 0, 1) for j in (-1, 0, 1)])
    owner = np.tile(np.arange(ms.n_grains), 9)

    def grain(p):
        return owner[np.argmin(np.linalg.norm(images[None] - p[:, None], axis=-1), axis=1)]

    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    radii = np.arange(0.5e-9, 120e-9, 0.5e-9)
    expected = []
    for p in pts:
        g = grain(p[None])[0]
        ray = p + radii[:, None, None] * np.stack([np.cos(angles), np.sin(angles)], -1)[None]
        other = grain(ray.reshape(-1, 2)).reshape(ray.shape[:2]) != g
        expected.append(radii[np.argmax(other.any(axis=1))])
    got = ms.boundary_distance(pts[:, 0], pts[:, 1])
    assert np.all(got <= np.array(expected) + 1e-12)  # never farther than a found boundary point
    # radial step 0.5 nm; rays every 2 degrees miss the perpendicular by <= 1 degree: d (1/cos(1 deg) - 1) < 0.02 nm
    assert np.all(np.array(expected) - got < 0.52e-9)


def test_labels_are_voronoi_cells():
    ms = columnar_voronoi((200e-9, 200e-9), spacing=5e-9, thickness=50e-9, grain_size=60e-9, rng=3)
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    # pixels far from any boundary belong to the nearest seed (those near it may go either way)
    far = ms.boundary_distance(X, Y) > 3e-9
    d = np.stack([X, Y], -1)[..., None, :] - ms.seeds
    d -= np.array(ms.extent) * np.round(d / np.array(ms.extent))
    nearest = np.argmin(np.linalg.norm(d, axis=-1), axis=-1)
    assert np.array_equal(nearest[far], ms.labels[far])


def test_bad_input_names_the_field():
    with pytest.raises(ParameterError, match="microstructure.grain_size"):
        columnar_voronoi((1e-7, 1e-7), spacing=1e-9, thickness=1e-8, grain_size=-1.0)
    with pytest.raises(ParameterError, match="microstructure.spacing"):
        columnar_voronoi((1e-7, 1e-7), spacing=1e-7, thickness=1e-8, grain_size=1e-8)


def test_graded_widths_cover_the_length():
    w = graded_widths(1e-12, 1.3, 50e-9, max_width=5e-9)
    assert w.sum() == pytest.approx(50e-9, rel=1e-12)
    assert w[0] == 1e-12 and w.max() <= 5e-9 * 1.5
    assert np.all(w[1:-1] / w[:-2] <= 1.3 + 1e-12)


def test_laguerre_grain_sizes_follow_the_lognormal_target():
    """>= 300 grains: mean equivalent diameter within 5 % of the target, sigma of ln(diameter) within 10 %."""
    from esmsim.microstructure import columnar_laguerre

    target, sigma = 60e-9, 0.35
    ms = columnar_laguerre((1.2e-6, 1.2e-6), spacing=5e-9, thickness=50e-9, grain_size=target,
                           grain_size_sigma=sigma, rng=1)
    area = np.bincount(ms.labels.ravel(), minlength=ms.n_grains) * 25e-18
    assert ms.n_grains >= 300 and np.all(area > 0)
    ed = np.sqrt(4 * area / np.pi)
    assert abs(ed.mean() / target - 1) < 0.05
    assert abs(np.std(np.log(ed)) / sigma - 1) < 0.10
    # the pixels are the power cells: every pixel next to a label change is within a voxel of a boundary
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    d = ms.boundary_distance(X, Y)
    lab = ms.labels
    edge = np.zeros(lab.shape, bool)
    for shift, ax in ((1, 0), (-1, 0), (1, 1), (-1, 1)):
        edge |= lab != np.roll(lab, shift, ax)
    # a boundary separates an edge pixel's centre from a neighbour's (< 1 voxel); a pixel whose 4 neighbours
    # share its grain is at least half a voxel from every boundary
    assert d[edge].max() < 5e-9 and d[~edge].min() > 2.5e-9 - 1e-12
    again = columnar_laguerre((1.2e-6, 1.2e-6), spacing=5e-9, thickness=50e-9, grain_size=target,
                              grain_size_sigma=sigma, rng=1)
    assert np.array_equal(again.labels, ms.labels) and np.array_equal(again.weights, ms.weights)


def test_laguerre_rejects_too_many_grains():
    from esmsim.microstructure import columnar_laguerre

    with pytest.raises(ParameterError, match="microstructure.grain_size"):
        columnar_laguerre((50e-9, 50e-9), spacing=5e-9, thickness=1e-8, grain_size=6e-9, grain_size_sigma=0.3)


def test_boundary_point_lies_on_the_exact_boundary():
    from esmsim.microstructure import columnar_laguerre

    ms = columnar_laguerre((300e-9, 300e-9), spacing=5e-9, thickness=50e-9, grain_size=60e-9,
                           grain_size_sigma=0.3, rng=4)
    lab = ms.labels
    i, j = np.nonzero(lab != np.roll(lab, -1, axis=0))
    g1, g2 = lab[i, j], np.roll(lab, -1, axis=0)[i, j]
    faces = np.stack([(i + 1.0) * 5e-9, (j + 0.5) * 5e-9], -1)
    p = ms.boundary_point(g1, g2, faces)
    # on the power bisector of the pair: equal power to both seeds (minimum images)
    w = ms.weights
    pw = [np.sum(ms._displacement(ms.seeds[g] - p) ** 2, -1) - w[g] for g in (g1, g2)]
    assert np.allclose(pw[0], pw[1], rtol=0, atol=1e-9 * np.abs(pw[0]).max())
    # and within a pixel diagonal of the staircase face it replaces
    assert np.all(np.linalg.norm(ms._displacement(p - faces), axis=-1) <= 5e-9 * np.sqrt(2) / 2 + 1e-12)
