"""Relaxation spectroscopy: the reduced (rational Krylov) time-domain solve against implicit time stepping,
linear superposition, the fit of a local diffusivity, and the run from a config."""

from dataclasses import replace

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


def _anisotropic():
    """LiCoO2 with a fast boundary (D_gb/D = 100) and D_c/D_ab = 0.1."""
    return get_material("LiCoO2").replace(gb_enhancement=100.0, D_c_over_D_ab=0.1)


def _pulse(after="open_circuit", n=8):
    """A 0.2 tau pulse read over 0.03 - 10 tau."""
    return RelaxationPulse(voltage=0.5, duration=0.2 * TAU, times=TAU * np.geomspace(0.03, 10, n), after=after)


def _stepped(system, g, b, p, output):
    """The pulse (potentiostatic tip terms ``g``, ``b`` scaled to the pulse) and the relaxation by adaptive
    implicit Euler at rtol 1e-7: the state at the end of the pulse and ``output(c)`` at the read-outs."""
    cT = integrate(system, [p.duration], diag=g, b=b, rtol=1e-7, direct_limit=10 ** 6).c[-1]
    r2 = integrate(system, p.times, diag=g if p.after == "grounded" else None, c0=cT, rtol=1e-7,
                   direct_limit=10 ** 6)
    return cT, np.array([output(c) for c in r2.c])


@pytest.mark.parametrize("after", ["open_circuit", "grounded"])
def test_reduced_model_matches_time_stepping(after):
    # The same window system (bicrystal with a boundary slab, anisotropic grains) integrated by adaptive
    # implicit Euler with Richardson extrapolation at rtol 1e-7 (an independent time integrator): the
    # reduced model with its default space (1.5 shifts per decade, 4 vectors each) agrees within 1e-4 over
    # 2.5 decades of time (measured 1e-5 on a homogeneous film, see the module docstring).
    mat = _anisotropic()
    ms = _bicrystal()
    st = MapSettings(frequency=1.0, tip_width=10e-9, window=20e-9)
    p = _pulse(after)
    w = _RelaxationWindow(ms, mat, st, p)
    u = w.solve(3, 4)
    lab, ox, oy, grid, net, system = w.system(np.array([3]), np.array([4]), omega=None)
    assert system.n > system.n_bulk  # the boundary slab is in the window
    tip = ((ox + 0.5) * 5e-9, (oy + 0.5) * 5e-9)
    g, b = tip_rhs(system, tip, profile="lorentzian", width=10e-9)
    cT, ref = _stepped(system, g, b * w.C0 * p.voltage, p, lambda c: w.isotropic_displacement(system, tip, c))
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


# --- voxel volumes (the volume engine's windows; full tensors: a nonsymmetric operator) ---

def _volume(rng=3):
    from esmsim.microstructure import voronoi

    return voronoi((30e-9, 30e-9, 15e-9), spacing=5e-9, grain_size=20e-9, rng=rng)


@pytest.mark.parametrize("after", ["open_circuit", "grounded"])
def test_volume_reduced_model_matches_time_stepping(after):
    # A 3-D polycrystal with rotated anisotropic grains (D_c/D_ab = 0.1) and boundary slabs (D_gb/D = 100):
    # the operator is not symmetric, so the reduced model takes general LUs and the projected operator's
    # exponential. Against adaptive implicit Euler at rtol 1e-7 on the same window system (the reference moves
    # 1e-8 and 3e-8 from rtol 1e-7 to 1e-8): the volumes' default space (1.5 shifts per decade, 6 vectors
    # each) within 1e-5 (measured 7.7e-7 open circuit, 1.3e-6 grounded, at the first read-out, 0.03 tau after
    # the pulse). With the columnar films' 4 vectors it was 5.2e-5 and 4.1e-4: the reason volumes take 6. (Not
    # monotone: with 8 it was 2.4e-6 and 3.7e-5. A Galerkin projection of a nonsymmetric operator is not the
    # best fit in its space; the projected operator stays stable, its symmetric part positive definite.)
    from esmsim.probe._relaxation import _is_symmetric, _VolumeRelaxation

    mat = _anisotropic()
    ms = _volume()
    st = MapSettings(frequency=1.0, tip_width=10e-9, window=10e-9)
    p = _pulse(after)
    tip = np.array([[12.5e-9, 17.5e-9]])
    w = _VolumeRelaxation(ms, mat, st, p)
    u = w.solve_points(tip)[0]
    sol = w.solver
    win = sol.assemble(tip, None)
    system = win.systems[0]
    assert system.n > system.n_bulk and not _is_symmetric(system.K)
    g, b = tip_rhs(system, win.local[0], profile="lorentzian", width=10e-9, average=True)
    R = sol.rows(system, win.local[0], win.lab, win.origin)[0] / sol.C0
    cT, ref = _stepped(system, g, b * sol.C0 * p.voltage, p, lambda c: R @ c)
    assert u[-1] == pytest.approx(system.volume @ cT, rel=1e-5)  # injected Li
    assert u[-2] == pytest.approx(R @ cT, rel=1e-5)
    np.testing.assert_allclose(u[:-2], ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    four = _VolumeRelaxation(ms, mat, st, replace(p, repeats=4)).solve_points(tip)[0]
    assert 1e-5 < np.abs(four[:-2] - ref).max() / np.abs(ref).max() < 1e-3


def test_general_reduced_model_equals_the_symmetric_one_on_a_symmetric_operator():
    # The nonsymmetric path (general LUs, exponentials of the projected operator) on a columnar window,
    # whose operator is symmetric: the same curves as the symmetric path (eigen-decomposition) within 1e-7
    # (measured 2e-8: the two LUs round differently, and the basis's last vectors per shift are nearly
    # dependent, so Gram-Schmidt carries that rounding up; the space's own error is ~1e-5).
    from esmsim.probe._relaxation import _is_symmetric, _relax

    mat = _anisotropic()
    st = MapSettings(frequency=1.0, tip_width=10e-9, window=20e-9)
    p = _pulse()
    w = _RelaxationWindow(_bicrystal(), mat, st, p)
    lab, ox, oy, grid, net, system = w.system(np.array([3]), np.array([4]), omega=None)
    assert _is_symmetric(system.K)
    tip = ((ox + 0.5) * 5e-9, (oy + 0.5) * 5e-9)
    terms = [tip_rhs(system, tip, profile="lorentzian", width=10e-9)]
    out = [_relax(system.K, system.volume, terms, lambda t, c: w.isotropic_displacement(system, tip, c), p, w.C0,
                  symmetric=sym)[0] for sym in (True, False)]
    np.testing.assert_allclose(out[1], out[0], rtol=1e-7)
    np.testing.assert_allclose(out[0], w.solve(3, 4), rtol=1e-12)  # the window's own solve


def test_volume_relaxation_converges_to_the_columnar_engine():
    # An extruded columnar bicrystal (c along z: the same operator in both engines) at tips that are voxel
    # centres at 6 and at 2 nm, one 27 nm and one 3 nm from the boundary (s = 200). The volume engine averages
    # the tip profile over each surface cell and rebuilds the Li inside the cells for the mechanics; the
    # columnar relaxation windows take the profile at the cell centre. Their curves approach each other as
    # the voxels shrink: measured 3.9 and 3.2 % apart at 6 nm, 0.58 and 0.34 % at 2 nm. (Before the volume
    # windows cut the boundary segments to the window, the tip beside the boundary stayed 2.9 % apart at 2 nm
    # and 2.3 % at 1.2 nm: the window held 17 of the boundary's 18 pixels and scaled its slabs by 18/17.)
    from esmsim.microstructure import extrude

    mat = get_material("LiCoO2").replace(gb_enhancement=200.0, gb_width=0.5e-9)  # delta narrower than 2 nm / 2
    euler = np.radians([[0.0, 0.0, 0.0], [30.0, 0.0, 0.0]])
    st = MapSettings(frequency=1.0, tip_width=10e-9, window=18e-9)
    p = _pulse(n=6)
    gaps = []
    for h in (6e-9, 2e-9):
        film = columnar_seeded([[24e-9, 18e-9], [60e-9, 18e-9]], (84e-9, 36e-9), spacing=h, thickness=18e-9,
                               euler_angles=euler)
        pts = np.round(np.array([[15e-9, 21e-9], [39e-9, 15e-9]]) / h - 0.5).astype(int)
        col = relaxation_spectroscopy(film, mat, st, p, points=pts)
        vol = relaxation_spectroscopy(extrude(film, round(18e-9 / h)), mat, st, p, points=pts)
        assert np.all(np.sign(vol.u) == np.sign(col.u))
        gaps.append(np.abs(vol.u / col.u - 1).max(axis=1))
    gaps = np.array(gaps)
    assert np.all(gaps[1] < 0.25 * gaps[0]), gaps
    assert np.all(gaps[1] < 0.01), gaps


def test_volume_relaxation_map_tiles_share_a_window():
    # A map of a volume: the tips of a tile share one window (their columns plus the half-width), here the
    # whole periodic film (the default half-width, 4 sqrt(D t_max), is wider than it), so a 2 x 2 tile equals
    # four tiles of one tip and the tips solved at points, to the LUs' rounding.
    mat = _anisotropic()
    ms = _volume()
    st = MapSettings(frequency=1.0, tip_width=10e-9)
    p = _pulse(n=5)
    one = relaxation_spectroscopy(ms, mat, st, p, pixels=(2, 2), tile=1, workers=1)
    shared = relaxation_spectroscopy(ms, mat, st, p, pixels=(2, 2), tile=2, workers=1)
    pts = relaxation_spectroscopy(ms, mat, st, p, points=np.stack(np.meshgrid(one.ix, one.iy, indexing="ij"),
                                                                  -1).reshape(-1, 2))
    assert one.u.shape == (2, 2, 5) and one.n_solves == 4 and shared.n_solves == 1
    np.testing.assert_array_equal(one.u.reshape(4, 5), pts.u)
    np.testing.assert_allclose(shared.u, one.u, rtol=1e-9)
    assert np.ptp(one.u[..., 0]) > 0.1 * np.abs(one.u[..., 0]).max()  # four different tips


def test_volume_relaxation_with_pores():
    # Pores: a void layer cuts the bottom layer of material off from the tip, whose block of the operator is
    # then singular at rest (no flux in or out): the pulse space starts at a small shift (1e-3 / t_max), not
    # at the steady state (a pored Laguerre volume's run stopped on "Factor is exactly singular"). Its
    # void rows' diagonal 1 must not hide the rotated tensors' asymmetry either. The cut-off layer takes no
    # Li; the curve decays from the end of the pulse.
    from dataclasses import replace as with_

    from esmsim.probe._relaxation import _is_symmetric, _VolumeRelaxation

    ms = _volume()
    pores = np.zeros(ms.shape, bool)
    pores[:, :, 1] = True
    ms = with_(ms, pores=pores)
    mat = get_material("LiCoO2").replace(gb_enhancement=100.0)
    p = _pulse(n=5)
    w = _VolumeRelaxation(ms, mat, MapSettings(frequency=1.0, tip_width=10e-9), p)
    tips = np.array([[7.5e-9, 7.5e-9], [22.5e-9, 12.5e-9]])
    out = w.solve_points(tips)
    win = w.solver.assemble(tips[:1], None)
    assert not _is_symmetric(win.systems[0].K)
    assert np.all(np.isfinite(out)) and np.all(out[:, -1] > 0)  # Li injected
    assert np.all(np.abs(out[:, 0]) < np.abs(out[:, -2]))  # decaying after the pulse
