"""The examples of examples/ on scaled-down sweeps (issue 8, item 7).

The two example specs are read, shrunk through the Python API (60 and 80 nm films, 12 x 12 and 16 x 16
maps, 3 points each; a few seconds per sweep on two cores) and run into temporary stores; then the scripts' ``main``
functions run on the stores. Known answers: the scorer gives F1 = 1 for the ground truth itself, for
the truth moved by one pixel (the tolerance) and less for the truth moved by three; the contrast
grows with D_gb/D_ab, and is small when boundaries are no faster than the grains.
"""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from esmsim.config import tomllib
from esmsim.io import read_netcdf
from esmsim.sweep import run_sweep

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("plot_gb_contrast"), importlib.import_module("score_gb_detector")
    finally:
        sys.path.remove(str(EXAMPLES))


def _spec(name: str) -> dict:
    return tomllib.loads((EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def gb_store(tmp_path_factory):
    spec = _spec("gb_contrast_sweep.toml")
    spec["base"]["microstructure"].update(size=["60 nm", "60 nm"], grain_size="30 nm", thickness="30 nm")
    spec["base"]["tip"]["width"] = "5 nm"
    spec["base"]["numerics"]["tile"] = 12
    assert [a["field"] for a in spec["axis"]] == ["excitation.frequency", "material.gb_enhancement"]
    spec["axis"][0]["values"] = ["1 MHz"]
    spec["axis"][1]["values"] = [1, 1e2, 1e4]
    store = tmp_path_factory.mktemp("gb_store")
    summary = run_sweep(spec, store, workers=2, progress=False)
    assert summary.succeeded == 3 and not summary.failed
    return store


@pytest.fixture(scope="module")
def training_store(tmp_path_factory):
    spec = _spec("training_set.toml")
    spec["base"]["microstructure"].update(size=["80 nm", "80 nm"], thickness="30 nm")
    spec["base"]["band_excitation"]["bins"] = 16
    lhs = spec["axis"][0]["latin_hypercube"]
    lhs["num"] = 3
    lhs["fields"]["microstructure.grain_size"] = {"low": "40 nm", "high": "60 nm"}
    store = tmp_path_factory.mktemp("training_store")
    summary = run_sweep(spec, store, workers=2, progress=False)
    assert summary.succeeded == 3 and not summary.failed
    return store


def test_example_specs_expand():
    from esmsim.sweep import expand

    gb = expand(EXAMPLES / "gb_contrast_sweep.toml")
    assert len(gb) == 16
    assert sorted({p.si["material.gb_enhancement"] for p in gb}) == [1, 1e2, 1e3, 1e4]
    train = expand(EXAMPLES / "training_set.toml")
    assert len(train) == 8
    assert len({p.si["simulation.seed"] for p in train}) == 8  # a new film per image
    assert all(40e-9 <= p.si["microstructure.grain_size"] <= 80e-9 for p in train)


# ------------------------------------------------------------------------------------------- contrast figure


def test_contrast_grows_with_enhancement_and_figure_is_written(scripts, gb_store, tmp_path):
    plot, _ = scripts
    out = tmp_path / "fig.png"
    rows = plot.main([str(gb_store), "--out", str(out), "--far", "5", "--csv", str(tmp_path / "c.csv")])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert (tmp_path / "c.csv").read_text().count("\n") == 4
    c = {r["gb_enhancement"]: r["contrast"] for r in rows}
    assert list(c) == [1, 1e2, 1e4]
    assert c[1] < c[1e2] < c[1e4]
    assert abs(c[1]) < 0.25  # neutral boundaries: orientation contrast only
    assert c[1e4] > 1  # fast boundaries at 1 MHz are several times brighter
    assert all(r["n_near"] > 0 and r["n_far"] > 0 for r in rows)


def test_far_shorter_than_a_pixel_is_refused(scripts, gb_store, tmp_path):
    plot, _ = scripts
    with pytest.raises(ValueError, match="far"):
        plot.main([str(gb_store), "--out", str(tmp_path / "f.png"), "--far", "4"])


def _point(labels, x_film, y_film, spacing=5e-9):
    """A minimal point dataset: voxel labels (y, x) with the dataset's boundary_mask, tips at film positions."""
    from skimage.segmentation import find_boundaries

    ny, nx = labels.shape
    return xr.Dataset(
        {"grain_labels": (("y_voxel", "x_voxel"), labels),
         "boundary_mask": (("y_voxel", "x_voxel"), find_boundaries(labels, mode="inner", connectivity=1).astype(np.uint8))},
        coords={"x_voxel": (np.arange(nx) + 0.5) * spacing, "y_voxel": (np.arange(ny) + 0.5) * spacing,
                "x_film": (("y", "x"), x_film), "y_film": (("y", "x"), y_film)})


def test_boundaries_move_from_voxels_to_a_coarser_scan(scripts):
    plot, _ = scripts
    labels = np.zeros((8, 8), int)
    labels[:, 4:] = 1  # a boundary at x = 20 nm between voxel columns 3 and 4 (5 nm voxels)
    t = np.array([5e-9, 15e-9, 25e-9, 35e-9])  # a 4 x 4 scan: 10 nm pitch, tips on voxel faces
    X, Y = np.meshgrid(t, t)
    mask, pitch, wraps = plot.boundaries_on_tips(_point(labels, X, Y), periodic=False)
    assert pitch == pytest.approx((10e-9, 10e-9), rel=1e-12) and not wraps
    # the tips 5 nm either side of the boundary are boundary tips, the others are not
    assert mask.tolist() == [[False, True, True, False]] * 4
    # a voxel-centred scan: the boundary voxels on both sides (grain 0's side too, which the dataset's
    # boundary_mask leaves out: find_boundaries takes label 0 for background)
    assert not _point(labels, X, Y)["boundary_mask"].values[:, 3].any()
    v = (np.arange(8) + 0.5) * 5e-9
    X, Y = np.meshgrid(v, v)
    mask, pitch, wraps = plot.boundaries_on_tips(_point(labels, X, Y), periodic=False)
    assert np.array_equal(mask[0], [False, False, False, True, True, False, False, False])
    # on a periodic film the seam between columns 7 and 0 (grains 1 and 0) is a boundary too
    mask, _, wraps = plot.boundaries_on_tips(_point(labels, X, Y), periodic=True)
    assert wraps
    assert np.array_equal(mask[0], [True, False, False, True, True, False, False, True])


# ------------------------------------------------------------------------------------------------ the scorer


def test_match_tolerance_on_a_line(scripts):
    _, score = scripts
    truth = np.zeros((16, 16), bool)
    truth[:, 8] = True
    for shift, tol, f1 in [(0, 1, 1.0), (1, 1, 1.0), (2, 1, 0.0), (2, 2, 1.0)]:
        s = score.scores(score.match(np.roll(truth, shift, axis=1), truth, tolerance=tol))
        assert s["f1"] == pytest.approx(f1, abs=1e-12), (shift, tol)
    half = truth.copy()
    half[8:] = False  # half the line found, all of it right
    s = score.scores(score.match(half, truth))
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(0.5 + 1 / 16)  # row 8 is 1 px from row 7
    assert score.scores(score.match(np.zeros_like(truth), truth))["f1"] == 0.0


def test_perfect_detector_scores_one_and_degraded_less(scripts, training_store, tmp_path):
    plot, score = scripts
    rows = score.main([str(training_store), "--method", "truth", "--csv", str(tmp_path / "s.csv")])
    assert [r["point"] for r in rows] == [0, 1, 2, "all"]
    assert all(r["f1"] == 1.0 and r["precision"] == 1.0 and r["recall"] == 1.0 for r in rows)
    assert (tmp_path / "s.csv").read_text().count("\n") == 5
    assert {"simulation.seed", "material.gb_enhancement", "artefacts.detector_noise"} <= set(rows[0])
    # degraded: the truth moved by one pixel is still within the tolerance, by three it is not
    ds = read_netcdf(training_store / "sweep.nc")
    pooled = {}
    for i in range(ds.sizes["point"]):
        p = ds.isel(point=i)
        truth, _, wraps = plot.boundaries_on_tips(p, periodic=True)
        assert wraps and truth.shape == (16, 16)
        one = score.scores(score.match(np.roll(truth, 1, axis=1), truth, wrap=wraps))
        counts = score.match(np.roll(truth, 3, axis=(0, 1)), truth, wrap=wraps)
        assert one["f1"] == 1.0
        assert score.scores(counts)["f1"] < 1.0
        pooled = {k: pooled.get(k, 0) + v for k, v in counts.items()}
    assert score.scores(pooled)["f1"] < 0.9
    # a real detector: scores in [0, 1], pooled row consistent with the per-image counts
    rows = score.main([str(training_store)])
    assert all(0.0 <= r["f1"] <= 1.0 and 0.0 < r["chance_f1"] <= 1.0 for r in rows)
    assert rows[-1]["n_true"] == sum(r["n_true"] for r in rows[:-1])
    assert rows[-1]["n_detected"] == sum(r["n_detected"] for r in rows[:-1])
