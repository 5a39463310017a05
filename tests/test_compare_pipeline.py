"""Measured scan -> segmented film -> simulation -> registration -> metrics -> figure, and `esmsim compare`."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage
from skimage.transform import AffineTransform, warp

from esmsim._errors import ParameterError
from esmsim.cli import main
from esmsim.compare import (CompareResult, compare, compare_figure, microstructure_from_scan, simulate_scan)
from esmsim.io import write_netcdf
from esmsim.microstructure import columnar_voronoi

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "scan_0001.ibw").exists(),
                                reason=f"real measured files not found in {DATA} (a checkout without ../shared)")


def _image(values, spacing, name="image", units="m", **attrs):
    ny, nx = values.shape
    da = xr.DataArray(values, dims=("y", "x"), name=name, attrs={"units": units},
                      coords={"x": ("x", np.arange(nx) * spacing, {"units": "m"}),
                              "y": ("y", np.arange(ny) * spacing, {"units": "m"})})
    return xr.Dataset({name: da}, attrs=attrs)


def _film_scene(n=96, spacing=20e-9, rng=2, grain_px=30):
    """A topography-like image of a Voronoi film (grains ``grain_px`` pixels across): grains at random heights,
    2-pixel grooves along the boundaries."""
    ms = columnar_voronoi((n * spacing, n * spacing), spacing=spacing, thickness=1e-7,
                          grain_size=grain_px * spacing, periodic=False, rng=rng)
    x, y = ms.pixel_centers()
    dist = ms.boundary_distance(*np.meshgrid(x, y))  # (y, x)
    level = np.random.default_rng(rng).normal(0, 0.5e-9, ms.n_grains)[ms.labels.T]
    height = level - 3e-9 * np.exp(-(dist / (1.5 * spacing)) ** 2)
    return ms, dist, height


# ----------------------------------------------------------------------------------------------------------------
# segmentation -> film


def test_microstructure_from_scan_finds_the_grains_of_a_known_film():
    ms, _, height = _film_scene()
    scan = _image(height, 20e-9, "HeightRetrace")
    seg = microstructure_from_scan(scan, channel="HeightRetrace", thickness=80e-9, pixels=32, rng=1,
                                   min_grain_size=0.3e-6)
    film = seg.film
    assert abs(seg.n_grains - ms.n_grains) <= max(2, ms.n_grains // 5)
    assert film.shape == (32, 32) and film.thickness == 80e-9 and not film.periodic
    assert film.spacing == (5e-9, 5e-9) and seg.scale == pytest.approx(32 * 5e-9 / (96 * 20e-9))
    assert sorted(np.unique(film.labels)) == list(range(film.n_grains))  # labels contiguous 0 .. n-1
    assert seg.labels.shape == height.shape
    from skimage.measure import label as cc

    for g in range(film.n_grains):  # every grain is one connected piece of >= 4 pixels
        piece = film.labels == g
        assert cc(piece, connectivity=1).max() == 1 and piece.sum() >= 4
    again = microstructure_from_scan(scan, channel="HeightRetrace", thickness=80e-9, pixels=32, rng=1,
                                     min_grain_size=0.3e-6)
    assert np.array_equal(again.film.quaternions, film.quaternions)
    fibre = microstructure_from_scan(scan, channel="HeightRetrace", thickness=80e-9, pixels=32, rng=1,
                                     min_grain_size=0.3e-6, texture="fibre")
    assert np.allclose(fibre.film.c_axis_inclination, 0.0, atol=1e-9)
    true_scale = microstructure_from_scan(scan, channel="HeightRetrace", thickness=80e-9, pixels=32, spacing=None)
    assert true_scale.scale == pytest.approx(1.0) and true_scale.film.spacing[0] == pytest.approx(60e-9)


def test_microstructure_from_scan_errors():
    _, _, height = _film_scene(48)
    scan = _image(height, 20e-9, "HeightRetrace")
    with pytest.raises(ParameterError, match="did you mean"):
        microstructure_from_scan(scan, channel="HeightRetrac", thickness=1e-7)
    with pytest.raises(ParameterError, match="boundaries"):
        microstructure_from_scan(scan, channel="HeightRetrace", thickness=1e-7, boundaries="grey")
    with pytest.raises(ParameterError, match="pixels"):
        microstructure_from_scan(scan, channel="HeightRetrace", thickness=1e-7, pixels=64)
    with pytest.raises(ParameterError, match="thickness"):
        microstructure_from_scan(scan, channel="HeightRetrace", thickness=-1.0)
    px = scan.assign_coords(x=("x", np.arange(48.0), {"units": "px"}))
    with pytest.raises(ParameterError, match="pixel_size"):
        microstructure_from_scan(px, channel="HeightRetrace", thickness=1e-7)


# ----------------------------------------------------------------------------------------------------------------
# comparison of synthetic maps (no engine)


def _synthetic_pair(angle=6.0, shift_px=(2.3, -3.1), n=64, spacing=5e-9):
    """An esmsim-like 'simulated' map (amplitude in m/V, bright boundaries, ground-truth boundary distance) and a
    'measured' one, with 5 % noise, that the similarity ``angle`` (deg, counter-clockwise with row 0 on top),
    ``shift_px`` (dy, dx) about the centre maps onto the simulated one (register's convention)."""
    big_ms, dist, _ = _film_scene(2 * n, spacing, rng=5, grain_px=14)
    amp = 1e-12 * (1 + 3 * np.exp(-(dist / (1.5 * spacing)) ** 2))
    amp *= 1 + 0.2 * np.random.default_rng(1).normal(size=big_ms.n_grains)[big_ms.labels.T]
    o = n // 2
    sim = amp[o:o + n, o:o + n]
    t = math.radians(angle)
    c = (n - 1) / 2
    turn = np.array([[math.cos(t), math.sin(t), shift_px[1]], [-math.sin(t), math.cos(t), shift_px[0]], [0, 0, 1]])
    mat = np.array([[1, 0, c], [0, 1, c], [0, 0, 1]]) @ turn @ np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]])
    moving = warp(amp, AffineTransform(matrix=np.array([[1, 0, o], [0, 1, o], [0, 0, 1]]) @ mat),
                  output_shape=(n, n), order=3, preserve_range=True)
    moving = moving + 0.05 * np.median(sim) * np.random.default_rng(2).normal(size=moving.shape)
    sim_ds = _image(sim, spacing, "amplitude", "m/V", source_file="sim.nc")
    sim_ds["boundary_distance"] = (("y", "x"), dist[o:o + n, o:o + n], {"units": "m"})
    meas_ds = _image(moving, spacing, "amplitude", "m/V")
    meas_ds["boundary_distance"] = (("y", "x"), ndimage.map_coordinates(dist, _coords(mat, n, o), order=0),
                                     {"units": "m"})
    return sim_ds, meas_ds


def _coords(mat, n, o):
    """(row, col) in the big scene of every moving pixel (the transform used to make it)."""
    yy, xx = np.mgrid[0:n, 0:n]
    full = np.array([[1, 0, o], [0, 1, o], [0, 0, 1]]) @ mat
    x = full[0, 0] * xx + full[0, 1] * yy + full[0, 2]
    y = full[1, 0] * xx + full[1, 1] * yy + full[1, 2]
    return np.stack([y, x])


def test_compare_registers_scores_and_writes(tmp_path):
    sim, meas = _synthetic_pair()
    res = compare(sim, meas, out_dir=tmp_path, name="pair")
    assert isinstance(res, CompareResult)
    # turning the measured scene by 6 deg and moving it by (2.3, -3.1) px gives the simulated one
    assert res.registration.rotation == pytest.approx(6.0, abs=0.3)
    assert np.allclose(res.registration.shift_px, (2.3, -3.1), atol=0.3)
    assert res.metrics["ncc"] > 0.9 and res.metrics["ssim"] > 0.5
    assert res.metrics["boundary_source_simulated"] == "ground truth"
    assert res.metrics["boundary_source_measured"] == "ground truth"
    assert res.metrics["boundary_contrast_a"] == pytest.approx(res.metrics["boundary_contrast_b"], rel=0.25)
    assert res.units == {"simulated": "m/V", "measured": "m/V", "difference": "m/V"}
    assert np.nanmax(np.abs(res.difference)) < 0.5 * np.nanmax(res.simulated)
    prof = res.profiles
    assert prof["simulated"][0] > 2 and prof["measured"][0] > 2 and prof["simulated"][-1] == pytest.approx(1, abs=0.2)
    for key in ("figure", "json", "csv"):
        assert res.files[key].exists() and res.files[key].stat().st_size > 0
    doc = json.loads(res.files["json"].read_text())
    assert doc["metrics"]["ncc"] == pytest.approx(res.metrics["ncc"])
    rows = list(csv.reader(res.files["csv"].read_text().splitlines()))
    assert rows[0] == ["metric", "value"] and len(rows) == len(res.metrics) + 1
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave nothing behind
    assert "registration_rotation_deg" in res.table()


def test_compare_without_registration_and_standardised_difference(tmp_path):
    sim, meas = _synthetic_pair(angle=0.0, shift_px=(0.0, 0.0))
    meas["amplitude"] = meas["amplitude"] * 40  # an uncalibrated gain: the difference is standardised
    res = compare(sim, meas, register=False)
    assert res.registration is None and res.units["difference"] == "std"
    assert res.metrics["ncc"] > 0.9 and res.metrics["gain_measured_over_simulated"] == pytest.approx(40, rel=0.1)
    path = compare_figure(res, tmp_path / "f.png", title="no registration")
    assert path.exists()
    with pytest.raises(ParameterError, match="difference"):
        compare(sim, meas, register=False, difference="relative")
    with pytest.raises(ParameterError, match="did you mean"):
        compare(sim, meas, simulated_var="amplitud")
    with pytest.raises(ParameterError, match="no such file"):
        compare(tmp_path / "missing.nc", meas)


def test_cli_compare(tmp_path, capsys):
    sim, meas = _synthetic_pair()
    a, b = write_netcdf(sim, tmp_path / "sim.nc"), write_netcdf(meas, tmp_path / "meas.nc")
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "ncc" in out and "registration_rotation_deg" in out
    assert (tmp_path / "out" / "compare.png").exists() and (tmp_path / "out" / "compare_metrics.json").exists()
    assert main(["compare", str(a), str(tmp_path / "nope.nc")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--simulated-var", "phase"]) == 2


# ----------------------------------------------------------------------------------------------------------------
# a real measured file, end to end (engine: one 24 x 24 map, ~20 s)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from esmsim.io import read_measurement

    out = tmp_path_factory.mktemp("real")
    scan = read_measurement(DATA / "scan_0001.ibw")
    sim = simulate_scan(scan, channel="Amplitude1Retrace", boundaries="dark", min_grain_size=0.6e-6, pixels=24,
                        rng=0, overrides={"numerics": {"z_growth": 1.6, "z_first": 0.3}}, out_dir=out)
    res = compare(sim.dataset, scan, channel="Amplitude1Retrace", out_dir=out)
    return scan, sim, res, out


@needs_data
def test_real_scan_segmentation_simulation_comparison(real_run):
    scan, sim, res, out = real_run
    seg = sim.segmentation
    assert 5 <= seg.n_grains <= 100  # domains of a 5 um PFM scan on 24 x 24 film pixels
    ds = sim.dataset
    assert ds["amplitude"].shape == (24, 24) and np.all(np.isfinite(ds["amplitude"].values))
    assert ds.attrs["frequency_Hz"] == pytest.approx(scan.attrs["drive_frequency"])  # the scan's drive
    assert ds.attrs["scan_scale"] == pytest.approx(24 * 5e-9 / 5e-6, rel=0.03)
    # the simulation is built on the scan's own segmentation: registration on the boundaries is ~ identity
    reg = res.registration
    px = 5e-6 / 24
    assert abs(reg.rotation) < 2.0 and reg.scale == pytest.approx(1.0, abs=0.05)
    assert np.hypot(*reg.shift) < px
    for key in ("ssim", "ncc", "psd_distance", "histogram_distance", "valid_fraction", "boundary_contrast_a"):
        assert np.isfinite(res.metrics[key]), key
    assert res.metrics["valid_fraction"] > 0.9
    assert res.units == {"simulated": "m/V", "measured": "m/V", "difference": "std"}
    assert res.files["figure"].stat().st_size > 50_000 and (out / "scan_simulation.nc").exists()


@needs_data
def test_cli_compare_on_the_real_file(real_run, tmp_path, capsys):
    _, _, _, out = real_run
    code = main(["compare", str(out / "scan_simulation.nc"), str(DATA / "scan_0001.ibw"), "--out", str(tmp_path),
                 "--channel", "Amplitude1Retrace"])
    assert code == 0
    assert "grains_measured" in capsys.readouterr().out
    assert (tmp_path / "compare.png").exists()
