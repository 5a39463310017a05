import numpy as np
import pytest
from scipy import stats

from esmsim._errors import ConfigError, ParameterError
from esmsim.config import load_config
from esmsim.io import load_microstructure, save_microstructure
from esmsim.microstructure import columnar_from_labels, columnar_voronoi, fibre_quaternions, quaternions_to_matrices
from esmsim.transport import boundary_network


def test_fibre_texture_tilt_is_half_normal():
    spread = np.radians(10.0)
    R = quaternions_to_matrices(fibre_quaternions(4000, spread=spread, rng=1))
    tilt = np.arccos(np.clip(R[:, 2, 2], -1, 1))  # angle of the crystal c axis from the film normal
    assert stats.kstest(tilt, stats.halfnorm(scale=spread).cdf).pvalue > 1e-3
    # the rotation about the fibre axis is uniform: the crystal a axis' azimuth is uniform
    az = np.arctan2(R[:, 1, 0], R[:, 0, 0])
    assert stats.kstest(az, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3
    sharp = quaternions_to_matrices(fibre_quaternions(50, spread=0.0, rng=2))
    assert np.allclose(sharp[:, :, 2], [0, 0, 1], atol=0)


def test_fibre_along_another_crystal_axis():
    R = quaternions_to_matrices(fibre_quaternions(20, crystal_axis=(1, 0, 0), spread=0.0, rng=3))
    assert np.allclose(R[:, :, 0], [0, 0, 1], atol=1e-12)  # crystal a axis along the film normal (round-off 2e-16)


def test_textured_film_and_explicit_orientations():
    ms = columnar_voronoi((200e-9, 200e-9), spacing=5e-9, thickness=50e-9, grain_size=60e-9, texture="fibre",
                          fibre_spread=np.radians(5), rng=4)
    assert np.degrees(ms.c_axis_inclination).max() < 25
    q = np.tile([1.0, 0, 0, 0], (ms.n_grains, 1))
    same = columnar_voronoi((200e-9, 200e-9), spacing=5e-9, thickness=50e-9, grain_size=60e-9, quaternions=q, rng=4)
    assert np.array_equal(same.labels, ms.labels) and np.allclose(same.c_axis_inclination, 0, atol=0)
    with pytest.raises(ParameterError, match="microstructure.texture"):
        columnar_voronoi((1e-7, 1e-7), spacing=5e-9, thickness=1e-8, grain_size=5e-8, texture="fiber")


def test_label_import_reproduces_the_tessellation():
    ms = columnar_voronoi((300e-9, 300e-9), spacing=5e-9, thickness=50e-9, grain_size=100e-9, rng=6)
    imp = columnar_from_labels(ms.labels + 7, spacing=5e-9, thickness=50e-9, quaternions=ms.quaternions, periodic=True)
    assert np.array_equal(imp.labels, ms.labels)  # relabelled to 0..n-1 in the same order
    a = boundary_network(ms.labels, 5e-9, 5e-9, periodic=True, normal=ms.boundary_normal)
    b = boundary_network(imp.labels, 5e-9, 5e-9, periodic=True, normal=imp.boundary_normal)
    assert np.array_equal(a.low, b.low) and np.array_equal(a.grains, b.grains)
    # staircase weights from fitted normals vs the exact (seed) normals: close on the bulk of the faces
    # (mean 0.01); a boundary only a few faces long cannot be fitted well and is allowed to be off
    d = np.abs(a.weight - b.weight)
    assert d.mean() < 0.02 and np.percentile(d, 90) < 0.04
    # pixel-measured boundary distance agrees with the exact one within a voxel
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    assert np.max(np.abs(imp.boundary_distance(X, Y) - ms.boundary_distance(X, Y))) < 5e-9


def test_label_import_rejects_bad_input():
    with pytest.raises(ParameterError, match="labels"):
        columnar_from_labels(np.zeros((4, 4)), spacing=1e-9, thickness=1e-8)
    with pytest.raises(ParameterError, match="quaternions"):
        columnar_from_labels(np.zeros((4, 4), int), spacing=1e-9, thickness=1e-8, quaternions=np.ones((2, 4)))


def test_save_load_round_trip(tmp_path):
    ms = columnar_voronoi((150e-9, 100e-9), spacing=5e-9, thickness=80e-9, grain_size=50e-9, periodic=False, rng=9)
    path = save_microstructure(ms, tmp_path / "film.nc")
    back = load_microstructure(path)
    assert back.labels.dtype == ms.labels.dtype and np.array_equal(back.labels, ms.labels)
    assert np.array_equal(back.quaternions, ms.quaternions) and np.array_equal(back.seeds, ms.seeds)
    assert back.spacing == ms.spacing and back.thickness == ms.thickness and back.periodic == ms.periodic
    assert back.recipe == ms.recipe
    imp = columnar_from_labels(ms.labels, spacing=5e-9, thickness=80e-9, rng=1)
    assert load_microstructure(save_microstructure(imp, tmp_path / "imp.nc")).seeds is None


def test_config_references_a_saved_microstructure(tmp_path):
    ms = columnar_voronoi((100e-9, 100e-9), spacing=5e-9, thickness=60e-9, grain_size=40e-9, rng=2)
    save_microstructure(ms, tmp_path / "film.nc")
    (tmp_path / "run.toml").write_text('[microstructure]\nfile = "film.nc"\n[scan]\npixels = [4, 4]\n')
    cfg = load_config(tmp_path / "run.toml")
    assert cfg["microstructure"]["size"] == pytest.approx((100e-9, 100e-9))
    from esmsim.simulation import build_microstructure

    assert np.array_equal(build_microstructure(cfg).labels, ms.labels)
    (tmp_path / "bad.toml").write_text('[microstructure]\nfile = "film.nc"\ngrain_size = "50 nm"\n')
    with pytest.raises(ConfigError, match="microstructure.grain_size: not allowed"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "notms.nc").write_bytes(b"not a netcdf file")
    (tmp_path / "bad2.toml").write_text('[microstructure]\nfile = "notms.nc"\n')
    with pytest.raises(ConfigError, match="microstructure.file: cannot read"):
        load_config(tmp_path / "bad2.toml")


def test_config_texture_fields(tmp_path):
    (tmp_path / "t.toml").write_text('[microstructure]\ntexture = "fibre"\nfibre_spread = "10 deg"\n')
    cfg = load_config(tmp_path / "t.toml")
    assert cfg["microstructure"]["fibre_spread"] == pytest.approx(np.radians(10))
    (tmp_path / "b.toml").write_text('[microstructure]\nfibre_spread = "10 nm"\n')
    with pytest.raises(ConfigError, match="microstructure.fibre_spread"):
        load_config(tmp_path / "b.toml")


def test_segment_grains_from_a_grooved_topography():
    """Synthetic topography: random grain heights (2 nm) + 5 nm boundary grooves + 0.3 nm noise."""
    from skimage.metrics import adapted_rand_error

    from esmsim.microstructure import segment_grains

    ms = columnar_voronoi((400e-9, 400e-9), spacing=4e-9, thickness=50e-9, grain_size=100e-9, periodic=False, rng=3)
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    rng = np.random.default_rng(0)
    height = (rng.normal(0, 2e-9, ms.n_grains)[ms.labels] - 5e-9 * np.exp(-(ms.boundary_distance(X, Y) / 6e-9) ** 2)
              + rng.normal(0, 0.3e-9, X.shape))
    labels = segment_grains(height.T, spacing=4e-9, min_grain_size=40e-9).T  # image rows are y
    # measured: adapted Rand error 0.08 and 24 segments for 20 grains (a few grains split in two)
    assert adapted_rand_error(ms.labels + 1, labels + 1)[0] < 0.15
    assert ms.n_grains <= labels.max() + 1 <= 1.25 * ms.n_grains
    film = columnar_from_labels(labels, spacing=4e-9, thickness=50e-9, rng=1)
    assert film.n_grains == labels.max() + 1
    with pytest.raises(ParameterError, match="boundaries"):
        segment_grains(height, spacing=4e-9, boundaries="grooves")


def test_config_laguerre(tmp_path):
    from esmsim.simulation import build_microstructure

    (tmp_path / "l.toml").write_text('[microstructure]\ngenerator = "columnar_laguerre"\ngrain_size_sigma = 0.3\n'
                                     'size = ["200 nm", "200 nm"]\ngrain_size = "50 nm"\n')
    ms = build_microstructure(load_config(tmp_path / "l.toml"))
    assert ms.recipe["generator"] == "columnar_laguerre" and ms.weights is not None
    back = load_microstructure(save_microstructure(ms, tmp_path / "l.nc"))
    assert np.array_equal(back.weights, ms.weights)
    (tmp_path / "v.toml").write_text('[microstructure]\ngrain_size_sigma = 0.3\n')
    with pytest.raises(ConfigError, match="microstructure.grain_size_sigma"):
        load_config(tmp_path / "v.toml")


def test_ground_truth_tables_and_topography(tmp_path):
    from esmsim.microstructure import boundary_table, grain_table, topography, triple_junctions

    ms = columnar_voronoi((300e-9, 200e-9), spacing=5e-9, thickness=80e-9, grain_size=70e-9, rng=12)
    gt = grain_table(ms)
    assert gt["volume"].sum() == pytest.approx(300e-9 * 200e-9 * 80e-9, rel=1e-12)
    assert np.allclose(np.pi / 4 * gt["equivalent_diameter"] ** 2 * 80e-9, gt["volume"], atol=0)
    bt = boundary_table(ms, "trigonal")
    assert len(bt["grains"]) == len({tuple(p) for p in bt["grains"]})
    # boundary areas: the staircase faces weighted by w, i.e. the true boundary length x thickness
    net = boundary_network(ms.labels, 5e-9, 5e-9, periodic=True, normal=ms.boundary_normal)
    assert bt["area"].sum() == pytest.approx(np.sum(net.weight) * 5e-9 * 80e-9, rel=1e-12)
    # topography: grooves of the requested depth on the boundaries, flat grain interiors
    h = topography(ms, grain_height_rms=0.0, groove_depth=2e-9, groove_width=5e-9, rng=1)
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y, indexing="ij")
    d = ms.boundary_distance(X, Y)
    assert np.allclose(h, -2e-9 * np.exp(-(d / 5e-9) ** 2), atol=0)
    assert h.min() < -1.5e-9 and np.all(h[d > 20e-9] > -2e-9 * np.exp(-16) * 1.01)
    h1 = topography(ms, grain_height_rms=1e-9, rng=3)
    assert np.array_equal(h1, topography(ms, grain_height_rms=1e-9, rng=3))
    # triple junctions: three grains meeting at a pixel corner
    lab = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    small = columnar_from_labels(lab, spacing=1e-9, thickness=1e-9, rng=0)
    assert triple_junctions(small).tolist() == [[1, 1]]


def test_cli_microstructure_writes_ground_truth(tmp_path):
    import subprocess
    import sys

    from esmsim.io import read_netcdf

    (tmp_path / "r.toml").write_text('[simulation]\nname = "r"\n[microstructure]\nsize = ["100 nm", "100 nm"]\n'
                                     'grain_size = "40 nm"\n')
    p = subprocess.run([sys.executable, "-m", "esmsim", "microstructure", "r.toml", "--out", "o"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    ds = read_netcdf(tmp_path / "o" / "r_microstructure.nc")
    for name in ("labels", "quaternion", "euler_bunge", "surface_c_axis_inclination", "boundary_misorientation",
                 "boundary_class", "boundary_area", "grain_volume", "grain_equivalent_diameter", "grain_centroid",
                 "boundary_distance", "triple_junction", "topography"):
        assert name in ds, name
    assert (tmp_path / "o" / "r_microstructure.png").stat().st_size > 10_000
    ms = load_microstructure(tmp_path / "o" / "r_microstructure.nc")
    assert ms.n_grains == ds.sizes["grain"]


def test_seeded_bicrystal_is_the_designed_boundary(tmp_path):
    from esmsim.microstructure import boundary_table, bunge_to_quaternions, columnar_seeded, matrices_to_bunge

    e = np.radians([[90, 30, 0], [90, -30, 0]])
    ms = columnar_seeded([[80e-9, 80e-9], [240e-9, 80e-9]], (320e-9, 160e-9), spacing=5e-9, thickness=100e-9,
                         euler_angles=e)
    assert np.all(ms.labels[:32] == 0) and np.all(ms.labels[32:] == 1)  # boundary plane x = 160 nm
    bt = boundary_table(ms, "trigonal")
    assert np.degrees(bt["misorientation"][0]) == pytest.approx(60.0)  # symmetric tilt +-30 deg about y
    assert bt["area"][0] == pytest.approx(160e-9 * 100e-9)
    assert np.allclose(np.degrees(ms.c_axis_inclination), 30.0, atol=0)
    q = bunge_to_quaternions(np.radians([[10, 20, 30]]))
    assert np.allclose(np.degrees(matrices_to_bunge(quaternions_to_matrices(q))), [[10, 20, 30]], atol=0)
    with pytest.raises(ParameterError, match="microstructure.seeds"):
        columnar_seeded([[400e-9, 0.0]], (320e-9, 160e-9), spacing=5e-9, thickness=1e-7)


def test_seeded_recipes_parse_and_build():
    from pathlib import Path

    from esmsim.simulation import build_microstructure

    root = Path(__file__).resolve().parents[1] / "microstructures"
    if not root.exists():
        pytest.skip("microstructures/ not present")
    tri = build_microstructure(load_config(root / "tricrystal.toml"))
    from esmsim.microstructure import triple_junctions

    assert tri.n_grains == 3 and len(triple_junctions(tri)) == 1
    single = build_microstructure(load_config(root / "single_crystal.toml"))
    assert single.n_grains == 1 and np.degrees(single.c_axis_inclination[0]) == pytest.approx(45.0)


def test_config_seeds_errors(tmp_path):
    (tmp_path / "a.toml").write_text('[microstructure]\ngenerator = "columnar_seeds"\n')
    with pytest.raises(ConfigError, match="microstructure.seeds"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text('[microstructure]\ngenerator = "columnar_seeds"\nseeds = [["10 nm", "10 nm"]]\n'
                                     'euler_angles = [["0 deg", "0 deg"]]\n')
    with pytest.raises(ConfigError, match="microstructure.euler_angles"):
        load_config(tmp_path / "b.toml")
