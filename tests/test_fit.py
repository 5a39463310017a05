"""Parameter fitting from a measured map: misfits, the surrogate search, forward models from configs,
alignment of the forward model on a registered scan, and recovery of D_gb/D_bulk and D_bulk."""

import math

import numpy as np
import pytest

from esmsim._errors import ConfigError, ParameterError
from esmsim.compare import (FitResult, MapForward, fit_parameters, map_forward, misfit, register,
                            scan_from_registration)
from esmsim.config import parse_config
from esmsim.microstructure import columnar_voronoi

H = 5e-9  # m, voxel size of the engine tests


# ----------------------------------------------------------------------------------------------------------------
# misfits


def test_misfit_values_and_invariances():
    rng = np.random.default_rng(0)
    m = rng.uniform(1, 2, (16, 16))
    assert misfit(m, m) == 0.0
    assert misfit(1.1 * m, m) == pytest.approx(0.1, rel=1e-12)
    assert misfit(3.0 * m, m, metric="gain_l2") == pytest.approx(0.0, abs=1e-12)  # unknown gain
    assert misfit(3.0 * m + 2.0, m, metric="ncc") == pytest.approx(0.0, abs=1e-12)  # gain and offset
    assert misfit(5.0 * m, m, metric="psd", spacing=H) == pytest.approx(0.0, abs=1e-12)
    # complex: the phase counts
    z = m * np.exp(1j * 0.3)
    assert misfit(z * np.exp(1j * 0.1), z) == pytest.approx(abs(np.exp(0.1j) - 1), rel=1e-12)
    # NaN pixels are left out
    mn = m.copy()
    mn[:4] = np.nan
    assert misfit(1.1 * m, mn) == pytest.approx(0.1, rel=1e-12)


def test_misfit_profile_sees_boundary_contrast_not_gain():
    b = np.zeros((24, 24), bool)
    b[:, 12] = True
    dist = np.abs(np.arange(24) - 12)[None, :] * np.ones((24, 1))
    img = 1 + 2 * np.exp(-dist / 1.5)
    assert misfit(7 * img, img, metric="profile", spacing=H, boundaries=b) == pytest.approx(0.0, abs=1e-12)
    weaker = 1 + 1 * np.exp(-dist / 1.5)
    assert misfit(weaker, img, metric="profile", spacing=H, boundaries=b) > 0.2


def test_misfit_errors():
    m = np.ones((8, 8))
    with pytest.raises(ParameterError, match="metric"):
        misfit(m, m, metric="l3")
    with pytest.raises(ParameterError, match="spacing"):
        misfit(m, m, metric="psd")
    with pytest.raises(ParameterError, match="boundaries"):
        misfit(m, m, metric="profile", spacing=H)
    with pytest.raises(ParameterError, match="shape"):
        misfit(np.ones((8, 9)), m)


# ----------------------------------------------------------------------------------------------------------------
# the search, on a cheap analytic stand-in for an ESM map


def _toy_scene(n=32, rng=3):
    """Voronoi film: exact distance to the nearest boundary (m) and a per-grain D_zz / D_ab factor."""
    ms = columnar_voronoi((n * H, n * H), spacing=H, thickness=1e-7, grain_size=50e-9, rng=rng)
    x, y = ms.pixel_centers()
    X, Y = np.meshgrid(x, y)  # (y, x)
    dist = ms.boundary_distance(X, Y)
    factor = 0.05 + np.sin(ms.c_axis_inclination) ** 2  # D_zz / D_ab, as the layered oxide's tensor gives
    return dist, factor[ms.labels.T]


def _toy_forward(dist, factor, omega=2 * np.pi * 350e3):
    """ESM-like toy: interiors sqrt(D_zz / omega) (the high-Omega limit of PHYSICS.md 5.7), boundaries add a
    bump that grows with log(s) and spreads over the tip width."""
    def forward(p):
        interior = np.sqrt(factor * p["D_ab"] / omega)
        bump = 0.6 * np.log10(p.get("gb_enhancement", 300.0)) * np.exp(-(dist / p.get("tip_width", 10e-9)) ** 2)
        return interior * (1 + bump)
    return forward


def test_fit_recovers_toy_parameters_with_noise_in_budget():
    dist, factor = _toy_scene()
    forward = _toy_forward(dist, factor)
    truth = {"gb_enhancement": 300.0, "D_ab": 2e-15}
    clean = forward(truth)
    meas = clean + 0.05 * np.median(clean) * np.random.default_rng(1).standard_normal(clean.shape)
    calls = []
    fit = fit_parameters(meas, forward, parameters={"gb_enhancement": (10, 1e4, "log"), "D_ab": (3e-16, 2e-14)},
                         budget=30, rng=0, callback=lambda p, v: calls.append(v))
    assert isinstance(fit, FitResult)
    assert fit.n_evaluations <= 30 and fit.n_evaluations == len(fit.history) == len(calls)
    assert fit.params["gb_enhancement"] == pytest.approx(300, rel=0.05)
    assert fit.params["D_ab"] == pytest.approx(2e-15, rel=0.03)
    lo, hi = fit.near_optimal["D_ab"]
    assert lo <= fit.params["D_ab"] <= hi
    # Gauss-Newton standard errors: the truth lies within a few of them (white noise, exact model)
    for k, v in truth.items():
        assert abs(fit.params[k] - v) < 4 * fit.standard_error[k], k
    assert fit.correlation.shape == (2, 2) and fit.correlation[0, 1] == pytest.approx(fit.correlation[1, 0])
    assert "gb_enhancement" in fit.table() and "correlation" in fit.table()
    # the same seed gives the same search
    again = fit_parameters(meas, forward, parameters={"gb_enhancement": (10, 1e4, "log"), "D_ab": (3e-16, 2e-14)},
                           budget=30, rng=0)
    assert [v for _, v in again.history] == [v for _, v in fit.history]


def test_fit_three_parameters_and_uncalibrated_metric():
    """Tip width as a third parameter; with an unknown gain (gain_l2) D_ab is not identifiable, s still is."""
    dist, factor = _toy_scene()
    forward = _toy_forward(dist, factor)
    truth = {"gb_enhancement": 300.0, "D_ab": 2e-15, "tip_width": 8e-9}
    meas = forward(truth)
    box = {"gb_enhancement": (10, 1e4), "D_ab": (3e-16, 2e-14), "tip_width": (3e-9, 30e-9)}
    fit = fit_parameters(meas, forward, parameters=box, budget=45, rng=2)
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=0.1), k
    meas = forward({"gb_enhancement": 300.0, "D_ab": 2e-15})  # tip width 10 nm, as the model below assumes
    meas = 4.0 * meas + 0.05 * np.median(meas) * np.random.default_rng(3).standard_normal(meas.shape)
    fit = fit_parameters(meas, forward, parameters={"gb_enhancement": (10, 1e4), "D_ab": (3e-16, 2e-14)},
                         metric="gain_l2", budget=24, rng=0, tolerance=0.1)
    assert fit.params["gb_enhancement"] == pytest.approx(300, rel=0.1)
    lo, hi = fit.near_optimal["D_ab"]
    assert hi / lo > 2  # a gain hides D_ab (not s, found above)


def test_fit_argument_errors():
    f = _toy_forward(*_toy_scene(16))
    m = f({"gb_enhancement": 100.0, "D_ab": 1e-15})
    with pytest.raises(ParameterError, match="parameters.D_ab"):
        fit_parameters(m, f, parameters={"D_ab": (1e-14, 1e-15)})
    with pytest.raises(ParameterError, match="parameters.D_ab"):
        fit_parameters(m, f, parameters={"D_ab": (0.0, 1e-15, "log")})
    with pytest.raises(ParameterError, match="parameters.D_ab"):
        fit_parameters(m, f, parameters={"D_ab": (1e-16, 1e-15, "cubic")})
    with pytest.raises(ParameterError, match="budget"):
        fit_parameters(m, f, parameters={"D_ab": (1e-16, 1e-15)}, budget=5)
    with pytest.raises(ParameterError, match="metric"):
        fit_parameters(m, f, parameters={"D_ab": (1e-16, 1e-15)}, metric="nope")
    with pytest.raises(ParameterError, match="spacing"):
        fit_parameters(m, f, parameters={"D_ab": (1e-16, 1e-15)}, metric="psd")
    with pytest.raises(ParameterError, match="forward"):
        fit_parameters(m, lambda p: np.ones((3, 3)), parameters={"D_ab": (1e-16, 1e-15)})


# ----------------------------------------------------------------------------------------------------------------
# forward models from a config (the engine, tiny maps)


def _config(n, **extra):
    base = {"simulation": {"seed": 5}, "microstructure": {"size": [n * H, n * H], "spacing": H,
                                                          "grain_size": "30 nm"},
            "scan": {"pixels": [n, n], "window": "15 nm"}, "numerics": {"z_growth": 1.6, "z_first": 0.3}}
    for k, v in extra.items():
        base.setdefault(k, {}).update(v)
    return parse_config(base)


def test_map_forward_parameter_names():
    fw = map_forward(_config(8))
    cfg = fw.config_for({"gb_enhancement": 50.0, "D_ab": 3e-15, "tip_width": 7e-9, "scan.window": 2e-8,
                         "material.overrides.gb_width": 5e-10})
    mat = cfg.material()
    assert mat["gb_enhancement"] == 50.0 and mat["D_ab"] == 3e-15 and mat["gb_width"] == 5e-10
    assert cfg["tip"]["width"] == 7e-9 and cfg["scan"]["window"] == 2e-8
    with pytest.raises(ConfigError, match="did you mean 'D_ab'"):
        fw.config_for({"D_abb": 1e-15})
    with pytest.raises(ParameterError, match="excitation.mode"):
        map_forward(_config(8, excitation={"mode": "band_excitation"}))
    with pytest.raises(ParameterError, match="output"):
        map_forward(_config(8), output="height")


def test_map_forward_physics_on_a_tiny_map():
    """Interiors scale as sqrt(D_ab) (high Omega, PHYSICS.md 5.7); faster boundaries raise the boundary pixels."""
    fw = map_forward(_config(12))
    base = fw({"gb_enhancement": 300.0, "D_ab": 2e-15})
    dist = fw.film.boundary_distance(*np.meshgrid(*fw.film.pixel_centers()))
    interior = dist > 1.4 * H
    assert base.shape == (12, 12) and np.all(base > 0) and interior.sum() > 5
    quad = fw({"gb_enhancement": 300.0, "D_ab": 8e-15})
    ratio = np.median(quad[interior] / base[interior])
    assert ratio == pytest.approx(2.0, rel=0.1)
    slow_gb = fw({"gb_enhancement": 10.0, "D_ab": 2e-15})
    near = dist < 0.5 * H
    assert np.mean(base[near]) > 1.5 * np.mean(slow_gb[near])
    assert fw.n_calls == 3 and fw.seconds > 0


def _assert_recovered(fw, clean):
    """A 20-map fit of ``clean`` (simulated at gb_enhancement 300, D_ab 2e-15) with 5 % complex noise finds
    both within 15 % and 10 %."""
    g = np.random.default_rng(7)
    meas = clean + 0.05 * np.median(np.abs(clean)) * (g.standard_normal(clean.shape)
                                                      + 1j * g.standard_normal(clean.shape))
    fit = fit_parameters(meas, fw, parameters={"gb_enhancement": (10, 3000), "D_ab": (3e-16, 2e-14)},
                         budget=20, rng=0)
    assert fit.params["gb_enhancement"] == pytest.approx(300, rel=0.15)
    assert fit.params["D_ab"] == pytest.approx(2e-15, rel=0.10)


def test_map_forward_of_a_voxel_volume():
    """A 3-D polycrystal (grains change with depth) is mapped by the volume engine: the forward model gives
    what single_frequency_map gives for the config with the parameters applied, and a fit recovers both
    parameters from its 6 x 6 map with 5 % noise as from a columnar film's (measured 294 and 2.06e-15, 20
    maps, ~16 s)."""
    from esmsim.microstructure import Microstructure
    from esmsim.probe import single_frequency_map
    from esmsim.simulation import map_settings, scan_grid

    cfg = parse_config({"simulation": {"seed": 3},
                        "microstructure": {"generator": "voronoi", "size": ["48 nm", "48 nm"], "thickness": "24 nm",
                                           "spacing": "4 nm", "grain_size": "30 nm"},
                        "scan": {"pixels": [6, 6]}, "numerics": {"workers": 1}})
    fw = map_forward(cfg, output="complex")
    assert isinstance(fw.film, Microstructure)
    truth = {"gb_enhancement": 300.0, "D_ab": 2e-15}
    clean = fw(truth)
    c = fw.config_for(truth)
    want = single_frequency_map(fw.film, c.material(), map_settings(c), workers=1, scan=scan_grid(c)).response.T
    assert clean.shape == (6, 6) and np.allclose(clean, want, rtol=1e-12, atol=0)
    _assert_recovered(fw, clean)


def test_aligned_forward_reproduces_a_rotated_scan():
    """A scan turned and shifted on the film (the engine's own interpolation) is reproduced to round-off by the
    aligned forward model started half a degree and a pixel off; the geometry it finds is the true one."""
    n = 12
    L = n * H
    true_scan = {"size": [L, L], "center": [L / 2 - 1.3 * H, L / 2 + 0.8 * H], "rotation": math.radians(6.0)}
    p = {"gb_enhancement": 300.0, "D_ab": 2e-15}
    meas = MapForward(_config(n, scan=true_scan), output="complex")(p)
    start = {"size": [L, L], "center": [L / 2 - 0.5 * H, L / 2], "rotation": math.radians(5.5)}
    fw = MapForward(_config(n, scan=start), output="complex", align_to=meas)
    sim = fw(p)
    assert misfit(sim, meas) < 1e-6
    geo = fw.scans[-1]
    assert math.degrees(geo["rotation"]) == pytest.approx(6.0, abs=0.01)
    assert np.allclose(geo["center"], true_scan["center"], atol=0.01 * H)
    assert geo["size"][0] == pytest.approx(L, rel=1e-3)
    with pytest.raises(ParameterError, match="align_to"):
        MapForward(_config(n), align_to=np.ones((3, 3)))


def test_scan_from_registration_signs():
    """register(measured scan, whole-film map) -> the scan's centre and rotation on the film (engine-free)."""
    from scipy import ndimage

    n, h = 64, 1.0
    L = n * h
    g = np.random.default_rng(4)
    field = ndimage.gaussian_filter(g.normal(size=(n, n)), 2.5, mode="wrap")  # periodic "film", indexed (x, y)
    theta, cx, cy = math.radians(8.0), L / 2 + 3.3, L / 2 - 2.6
    u = (np.arange(n) + 0.5) / n - 0.5
    U, V = np.meshgrid(u * L, u * L, indexing="ij")
    gx = (cx + math.cos(theta) * U - math.sin(theta) * V) / h - 0.5
    gy = (cy + math.sin(theta) * U + math.cos(theta) * V) / h - 0.5
    scan = ndimage.map_coordinates(field, [gx, gy], order=3, mode="grid-wrap").T  # (y, x)
    reg = register(scan, field.T, spacing_moving=h, spacing_fixed=h)
    geo = scan_from_registration(reg, film_extent=(L, L))["scan"]
    assert math.degrees(geo["rotation"]) == pytest.approx(8.0, abs=0.3)
    assert geo["center"][0] == pytest.approx(cx, abs=0.3) and geo["center"][1] == pytest.approx(cy, abs=0.3)
    assert geo["pixels"] == [n, n] and geo["size"][0] == pytest.approx(L, rel=0.01)


def test_fit_on_tiny_engine_maps():
    """Fast recovery check on 12 x 12 engine maps (5 grains, 5 % noise, no registration): ~15 s."""
    fw = map_forward(_config(12), output="complex")
    truth = {"gb_enhancement": 300.0, "D_ab": 2e-15}
    clean = fw(truth)
    _assert_recovered(fw, clean)


# ----------------------------------------------------------------------------------------------------------------
# the full recovery: a rotated, shifted, noisy synthetic measurement (minutes)


@pytest.mark.slow
def test_recovery_from_a_registered_noisy_measurement():
    """Truth gb_enhancement 300, D_ab 2e-15 m^2/s (LiCoO2, 350 kHz, d = 10 nm), 32 x 32 pixels of 5 nm, 13
    grains; the measurement is a scan turned by 7 deg and shifted by (3.4, -2.1) px, simulated with the
    default numerics (the fit uses coarser ones), with 2 % line gains and complex white noise of 8 % of the
    median amplitude. Registration onto a guess map, then a 30-simulation fit with the forward model aligned
    on the registered scan. Measured: see docs/compare_fit.md."""
    n = 32
    L = n * H
    base = {"simulation": {"seed": 3}, "microstructure": {"size": [L, L], "spacing": H, "grain_size": "50 nm"},
            "excitation": {"frequency": "350 kHz"}}
    truth = {"gb_enhancement": 300.0, "D_ab": 2e-15}
    theta, (sy, sx) = 7.0, (3.4, -2.1)
    meas_cfg = parse_config({**base, "scan": {"pixels": [n, n], "size": [L, L], "rotation": math.radians(theta),
                                              "center": [L / 2 + sx * H, L / 2 + sy * H]}})
    truth_fw = MapForward(meas_cfg, output="complex")
    clean = truth_fw(truth)
    film = truth_fw.film
    g = np.random.default_rng(1)
    sigma = 0.08 * np.median(np.abs(clean))
    meas = clean * (1 + 0.02 * g.standard_normal((n, 1))) + sigma * (g.standard_normal(clean.shape)
                                                                    + 1j * g.standard_normal(clean.shape))
    fit_cfg = parse_config({**base, "scan": {"pixels": [n, n], "window": "20 nm"},
                            "numerics": {"z_growth": 1.6, "z_first": 0.3}})
    guess = MapForward(fit_cfg, film)({"gb_enhancement": 100.0, "D_ab": 1e-14})
    reg = register(np.abs(meas), guess, spacing_moving=H, spacing_fixed=H)
    # scan turned by theta (y up) = registration rotation -theta (row 0 on top); shift = scan centre offset
    assert reg.rotation == pytest.approx(-theta, abs=0.5)
    assert np.hypot(reg.shift_px[0] - sy, reg.shift_px[1] - sx) < 1.0
    forward = MapForward(fit_cfg.with_overrides(scan_from_registration(reg, film_extent=film.extent)), film,
                         output="complex", align_to=meas)
    fit = fit_parameters(meas, forward, parameters={"gb_enhancement": (10, 3000), "D_ab": (3e-16, 2e-14)},
                         budget=30, rng=0)
    assert fit.params["gb_enhancement"] == pytest.approx(300, rel=0.15)
    assert fit.params["D_ab"] == pytest.approx(2e-15, rel=0.10)
    best = forward.scans[[p for p, _ in fit.history].index(fit.params)]
    assert math.degrees(best["rotation"]) == pytest.approx(theta, abs=0.1)
