"""Relaxation spectroscopy: the reduced (rational Krylov) time-domain solve against implicit time stepping,
linear superposition, the fit of a local diffusivity, and the run from a config."""

import numpy as np
import pytest

from esmsim._errors import ConfigError, ParameterError
from esmsim.config import parse_config
from esmsim.materials import get_material
from esmsim.microstructure import columnar_seeded
from esmsim.probe import (MapSettings, RelaxationPulse, fit_relaxation, relaxation_calibration,
                          relaxation_spectroscopy, single_crystal_curves)
from esmsim.probe._relaxation import _RelaxationWindow
from esmsim.transport import integrate
from esmsim.transport._frequency import tip_rhs

D_AB = 5.387e-15
TAU = (10e-9) ** 2 / D_AB  # d^2 / D of a 10 nm tip: 19 ms


def _bicrystal(thickness=20e-9):
    # two grains with a fast boundary (D_gb/D = 100) through the middle, c axes tilted 30 and 70 degrees
    return columnar_seeded([[10e-9, 20e-9], [30e-9, 20e-9]], (40e-9, 40e-9), spacing=5e-9, thickness=thickness,
                           euler_angles=[[0.3, 0.52, 0.0], [1.1, 1.22, 0.4]])


@pytest.mark.parametrize("after", ["open_circuit", "grounded"])
def test_reduced_model_matches_time_stepping(after):
    # The same window system (bicrystal with a boundary slab, anisotropic grains) integrated by adaptive
    # implicit Euler with Richardson extrapolation at rtol 1e-7 (an independent time integrator): the
    # reduced model with its default space (1.5 shifts per decade, 4 vectors each) agrees within 1e-4 over
    # 2.5 decades of time (measured 1e-5 on a homogeneous film, see the module docstring).
    mat = get_material("LiCoO2").replace(gb_enhancement=100.0, D_c_over_D_ab=0.1)
    ms = _bicrystal()
    st = MapSettings(frequency=1.0, tip_width=10e-9, window=20e-9)
    p = RelaxationPulse(voltage=0.5, duration=0.2 * TAU, times=TAU * np.geomspace(0.03, 10, 8), after=after)
    w = _RelaxationWindow(ms, mat, st, p)
    u = w.solve(3, 4)
    lab, ox, oy, grid, net, system = w.system(np.array([3]), np.array([4]), omega=None)
    assert system.n > system.n_bulk  # the boundary slab is in the window
    tip = ((ox + 0.5) * 5e-9, (oy + 0.5) * 5e-9)
    g, b = tip_rhs(system, tip, profile="lorentzian", width=10e-9)
    r1 = integrate(system, [p.duration], diag=g, b=b * w.C0 * p.voltage, rtol=1e-7, direct_limit=10 ** 6)
    cT = r1.c[-1]
    r2 = integrate(system, p.times, diag=g if after == "grounded" else None, c0=cT, rtol=1e-7, direct_limit=10 ** 6)
    ref = np.array([w.isotropic_displacement(system, tip, c) for c in r2.c])
    assert u[-1] == pytest.approx(system.volume @ cT, rel=1e-6)  # injected Li
    assert u[-2] == pytest.approx(w.isotropic_displacement(system, tip, cT), rel=1e-5)
    np.testing.assert_allclose(u[:-2], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_grounded_relaxation_is_the_difference_of_two_pulses():
    # With the tip held at c = 0 after the pulse the problem is linear with a fixed operator, so
    # u(T + t) after a pulse of length T equals u_end(T + t) - u_end(t) of pulses of those lengths
    # (superposition of a step on and a step off): checks the relaxation phase against the pulse phase.
    mat = get_material("LiCoO2").replace(gb_enhancement=100.0)
    ms = _bicrystal(thickness=30e-9)
    st = MapSettings(frequency=1.0, tip_width=10e-9, window=20e-9)
    T, t = 0.1 * TAU, TAU * np.array([0.1, 1.0])
    w = _RelaxationWindow(ms, mat, st, RelaxationPulse(1.0, T, t, after="grounded"))
    u = w.solve(3, 4)[:2]
    # the same z cells for all (they follow each pulse's shortest time otherwise)
    on = [_RelaxationWindow(ms, mat, st, RelaxationPulse(1.0, T + tk, [tk]), w.dz).solve(3, 4)[-2] for tk in t]
    off = [_RelaxationWindow(ms, mat, st, RelaxationPulse(1.0, tk, [tk]), w.dz).solve(3, 4)[-2] for tk in t]
    # each term carries the reduced model's error (~1e-4 of itself); their difference is 4.5x (t = 0.1 tau)
    # and 44x (t = tau) smaller, so the check is 1e-3 and 1 % of u
    np.testing.assert_allclose(u, np.subtract(on, off), rtol=0, atol=2e-4 * np.abs(on).max())
    assert abs(u[0]) > 0.2 * abs(on[0])  # not a vanishing difference


def test_fit_recovers_the_diffusivity_of_a_homogeneous_film():
    # an isotropic film with D = 3e-15 m^2/s (between the calibration's grid values, which are built on a
    # film with another D_reference): the decay shape gives D within 1 %; every pixel alike.
    D_true = 3e-15
    mat = get_material("LiCoO2").replace(D_c_over_D_ab=1.0, D_ab=D_true)
    ms = columnar_seeded([[30e-9, 30e-9]], (60e-9, 60e-9), spacing=5e-9, thickness=30e-9, periodic=True,
                         euler_angles=[[0.0, 0.0, 0.0]])
    st = MapSettings(frequency=1.0, tip_width=10e-9)
    p = RelaxationPulse(voltage=1.0, duration=2e-3, times=np.geomspace(2e-3, 0.2, 10))
    res = relaxation_spectroscopy(ms, mat, st, p, points=[(6, 6), (2, 9)])
    np.testing.assert_allclose(res.u[0], res.u[1], rtol=1e-9)
    assert np.all(res.u[0] < 0)  # LiCoO2 shrinks on lithiation (beta trace < 0): the surface sinks
    cal = relaxation_calibration(ms, mat.replace(D_ab=5e-15), st, p, D=np.geomspace(5e-16, 2e-14, 7), workers=1)
    D, amp, resid = fit_relaxation(res.u, cal)
    np.testing.assert_allclose(D, D_true, rtol=0.01)
    assert np.all(resid < 0.01)
    # a faster film decays faster and is recognised as such
    fast = relaxation_spectroscopy(ms, mat.replace(D_ab=3 * D_true), st, p, points=[(6, 6)])
    assert fit_relaxation(fast.u, cal)[0][0] == pytest.approx(3 * D_true, rel=0.02)


def test_pulse_and_fit_inputs_are_checked():
    with pytest.raises(ParameterError, match="relaxation.duration"):
        RelaxationPulse(1.0, -1e-3)
    with pytest.raises(ParameterError, match="relaxation.times"):
        RelaxationPulse(1.0, 1e-3, times=[1e-3, 1e-4])
    with pytest.raises(ParameterError, match="relaxation.after"):
        RelaxationPulse(1.0, 1e-3, after="floating")
    cal_like = type("C", (), {"times": np.ones(3)})()
    with pytest.raises(ParameterError, match="u"):
        fit_relaxation(np.ones((2, 4)), cal_like)


def _config(**relaxation):
    return {
        "simulation": {"name": "rx", "seed": 3},
        "microstructure": {"generator": "columnar_voronoi", "size": ["60 nm", "60 nm"], "spacing": "5 nm",
                           "thickness": "30 nm", "grain_size": "40 nm", "periodic": True},
        "material": {"name": "LiCoO2", "overrides": {"gb_enhancement": 100}},
        "tip": {"width": "10 nm"},
        "excitation": {"mode": "relaxation_spectroscopy"},
        "relaxation": {"duration": "2 ms", "t_min": "2 ms", "t_max": "0.1 s", "n": 8, "calibration": 7,
                       **relaxation},
        "scan": {"pixels": [3, 3]},
        "numerics": {"workers": 2},
    }


def test_relaxation_run_from_a_config(tmp_path):
    from esmsim.simulation import run

    out = run(parse_config(_config()), out_dir=tmp_path)
    ds = out.dataset
    assert ds["relaxation_u"].dims == ("y", "x", "time") and ds["relaxation_u"].shape == (3, 3, 8)
    assert out.figure.exists() and out.netcdf.exists()
    truth = ds["D_single_crystal"].values
    assert np.all(np.isfinite(truth))
    # the truth is the fit of a single crystal of the tip's grain: one value per grain
    for g in np.unique(ds["grain_id"].values):
        assert np.unique(truth[ds["grain_id"].values == g]).size == 1
    # fast boundaries (D_gb/D = 100) make the apparent D near them exceed the single-crystal value
    D = ds["D_fit"].values
    near = ds["boundary_distance"].values < 5e-9
    assert near.any()
    assert np.nanmedian(D[near] / truth[near]) > 1.2
    np.testing.assert_allclose(ds["fit_curve"].values, ds["relaxation_u"].values,
                               atol=0.2 * np.abs(ds["relaxation_u"].values).max())
    pts = run(parse_config(_config(points=[["20 nm", "20 nm"]])), out_dir=tmp_path / "pts").dataset
    assert pts["relaxation_u"].dims == ("point", "time")


def test_relaxation_config_errors():
    with pytest.raises(ConfigError, match="relaxation.t_max"):
        parse_config(_config(t_min="1 s", t_max="10 ms"))
    with pytest.raises(ConfigError, match="relaxation.points"):
        parse_config(_config(points=[["200 nm", "20 nm"]]))
    with pytest.raises(ConfigError, match="relaxation.after"):
        parse_config(_config(after="floating"))


@pytest.mark.parametrize("anisotropy", [1.0, 1e-3])
def test_fit_inside_grains_recovers_the_ground_truth(anisotropy):
    # Two 100 nm grains with fast boundaries (D_gb/D = 1e3), tips at the grain centres, 50 nm from the
    # boundaries; read-outs 1 - 30 ms keep the diffusion length (<= 13 nm) well inside the grain. The fitted D
    # is within 10 % of the ground truth (the criterion): of D_ab itself for isotropic grains
    # (measured -5.1 %), of the single-crystal fit for anisotropic ones (measured -8.2 % and -2.0 %). With
    # read-outs to 0.1 s (23 nm, half the distance to the boundaries) the isotropic grain is -12 % off:
    # the boundaries then shape the decay.
    mat = get_material("LiCoO2").replace(gb_enhancement=1e3, D_c_over_D_ab=anisotropy)
    ms = columnar_seeded([[50e-9, 50e-9], [150e-9, 50e-9]], (200e-9, 100e-9), spacing=5e-9, thickness=30e-9,
                         periodic=True, euler_angles=[[0.3, 0.5, 0.0], [1.1, 1.2, 0.4]])
    st = MapSettings(frequency=1.0, tip_width=10e-9)
    p = RelaxationPulse(voltage=1.0, duration=1e-3, times=np.geomspace(1e-3, 0.03, 10))
    res = relaxation_spectroscopy(ms, mat, st, p, points=[(10, 10), (30, 10)])
    cal = relaxation_calibration(ms, mat, st, p, workers=2)
    D = fit_relaxation(res.u, cal)[0]
    truth = fit_relaxation(single_crystal_curves(ms, mat, st, p, [0, 1], workers=2), cal)[0]
    np.testing.assert_allclose(D, truth, rtol=0.10)
    if anisotropy == 1.0:
        np.testing.assert_allclose(truth, mat["D_ab"], rtol=0.01)
        np.testing.assert_allclose(D, mat["D_ab"], rtol=0.10)
