"""Voltage spectroscopy: the reduced Butler-Volmer model against time stepping (linear limit, and the full
nonlinear integrator as a slow test), loop shape and metrics, the run from a config."""

import numpy as np
import pytest

from esmsim._errors import ConfigError, ParameterError
from esmsim.config import parse_config
from esmsim.materials import get_material
from esmsim.microstructure import columnar_seeded
from esmsim.probe import MapSettings, VoltageSweep, loop_metrics
from esmsim.probe._voltage import _VoltageWindow
from esmsim.transport import integrate
from esmsim.transport._frequency import tip_terms
from esmsim.transport._time import F_CONST, R_CONST, integrate_butler_volmer

MAT = get_material("LiCoO2").replace(gb_enhancement=100.0, D_c_over_D_ab=0.1)
SETTINGS = MapSettings(frequency=1.0, tip_width=6e-9, tip_profile="disk", window=15e-9)


def _bicrystal():
    return columnar_seeded([[10e-9, 20e-9], [30e-9, 20e-9]], (40e-9, 40e-9), spacing=5e-9, thickness=20e-9,
                           euler_angles=[[0.3, 0.52, 0.0], [1.1, 1.22, 0.4]])


def _stepped(w, sweep, integrator):
    """On/off displacement of the tip at pixel (3, 4) by an independent implicit time integrator."""
    lab, ox, oy, grid, net, system = w.system(np.array([3]), np.array([4]), omega=None)
    tip = ((ox + 0.5) * 5e-9, (oy + 0.5) * 5e-9)
    V = sweep.voltages()
    T = sweep.step_time + sweep.off_time
    ends = np.ravel([[k * T + sweep.step_time, (k + 1) * T] for k in range(V.size)])
    c = integrator(system, tip, V, T, ends)
    return np.array([w.isotropic_displacement(system, tip, ck) for ck in c]).reshape(-1, 2).T


def test_small_bias_matches_the_linearised_condition():
    # At 1 mV the Butler-Volmer law is linear to 2e-5 (sinh expansion), so the loop must equal the time
    # stepping of the same window with the Robin condition kappa = j0 |dU/dc| / (R T) (PHYSICS.md sec. 2),
    # on the same surface/half-cell discretisation: adaptive implicit Euler with Richardson extrapolation
    # at rtol 1e-7 against the reduced model (block rational Krylov, Radau IIA at rtol 1e-8). 1e-3.
    sweep = VoltageSweep(amplitude=1e-3, steps=4, step_time=2e-3, off_time=2e-3, j0=0.1)
    w = _VoltageWindow(_bicrystal(), MAT, SETTINGS, sweep)
    loop = w.solve(3, 4)
    kappa = sweep.j0 * MAT.dU_dc * F_CONST / (R_CONST * sweep.temperature) / F_CONST

    def robin(system, tip, V, T, ends):
        diag, b = tip_terms(system, tip, profile="disk", width=6e-9, condition="butler_volmer", kappa=kappa)
        src = lambda t: V[min(int(t // T), V.size - 1)] / MAT.dU_dc if (t % T) < sweep.step_time else 0.0  # noqa: E731
        return integrate(system, ends, diag=diag, b=b, source=src, breakpoints=ends, rtol=1e-7,
                         direct_limit=10 ** 6).c

    ref = _stepped(w, sweep, robin)
    np.testing.assert_allclose(loop[:2], ref, rtol=0, atol=1e-3 * np.abs(ref).max())
    assert np.abs(ref).max() > 0


def test_loop_matches_the_full_nonlinear_integrator():
    # 0.3 V (12 thermal voltages): strongly nonlinear. The full Newton-per-step integrator of the window
    # (integrate_butler_volmer, rtol 1e-6) and the reduced model agree to 7e-6 of the largest value
    # (measured: 22.6 s against 6.4 s for 8 steps; 4 steps here, about 8 s, 117 s before the integrator's
    # Newton ran on the surface unknowns' Schur complement); 2e-4 leaves room for the stepper's rtol.
    sweep = VoltageSweep(amplitude=0.3, steps=4, step_time=2e-3, off_time=2e-3, j0=0.1)
    w = _VoltageWindow(_bicrystal(), MAT, SETTINGS, sweep)
    loop = w.solve(3, 4)

    def full(system, tip, V, T, ends):
        volt = lambda t: V[min(int(t // T), V.size - 1)] if (t % T) < sweep.step_time else 0.0  # noqa: E731
        return integrate_butler_volmer(system, ends, tip_xy=tip, profile="disk", width=6e-9, voltage=volt,
                                       j0=sweep.j0, dU_dc=MAT.dU_dc, rtol=1e-6, breakpoints=ends).c

    ref = _stepped(w, sweep, full)
    np.testing.assert_allclose(loop[:2], ref, rtol=0, atol=2e-4 * np.abs(ref).max())


def test_loop_shape_follows_the_bias():
    # LiCoO2 contracts on lithiation (trace beta < 0): a positive bias pushes Li in and the surface sinks;
    # the Li stays after the bias is off (remanent response of the same sign): the loop opens.
    sweep = VoltageSweep(amplitude=0.4, steps=8, step_time=2e-3, off_time=2e-3, j0=0.1)
    w = _VoltageWindow(_bicrystal(), MAT, SETTINGS, sweep)
    on, off, li = w.solve(3, 4)
    v = sweep.voltages()
    assert on[np.argmax(v)] < 0 < on[np.argmin(v)]
    q = v.size // 4
    # Li under the tip (a running total): in on the rising branch, out on the falling one
    assert np.all(np.diff(li[:q]) > 0) and li[0] > 0 and np.all(np.diff(li[q:3 * q]) < 0)
    # back at 0 V after +V_max: Li left under the tip (surface down); after -V_max: Li missing (up)
    assert off[2 * q - 1] < 0 < off[-1]
    # faster kinetics: the same bias moves more Li
    fast = _VoltageWindow(_bicrystal(), MAT, SETTINGS, VoltageSweep(0.4, 8, 1, 2e-3, 2e-3, j0=1.0)).solve(3, 4)
    assert abs(fast[2, q - 1]) > abs(li[q - 1])


def test_loop_metrics_and_sweep_checks():
    sweep = VoltageSweep(amplitude=2.0, steps=8)
    np.testing.assert_allclose(sweep.voltages(), [1, 2, 1, 0, -1, -2, -1, 0])
    # a loop that switches on above 1.5 V: threshold 2 V (the first step at or above it), remanence 2 units
    off = np.array([0.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    m = loop_metrics(sweep.voltages(), off)
    assert m["threshold"] == 2.0 and m["remanent"] == 2.0
    assert m["area"] == pytest.approx(0.5 * 1 * 2 + 0.5 * 2 * 1 + 1 * 2 - 0 * 0 + 1.0 * 0 - 1.0 * 1, abs=10)
    with pytest.raises(ParameterError, match="voltage.steps"):
        VoltageSweep(amplitude=1.0, steps=6)
    with pytest.raises(ParameterError, match="voltage.j0"):
        VoltageSweep(amplitude=1.0, j0=0.0)


def _config(**voltage):
    return {
        "simulation": {"name": "vx", "seed": 3},
        "microstructure": {"generator": "columnar_voronoi", "size": ["40 nm", "40 nm"], "spacing": "5 nm",
                           "thickness": "20 nm", "grain_size": "25 nm", "periodic": True},
        "material": {"name": "LiCoO2", "overrides": {"gb_enhancement": 100}},
        "tip": {"width": "6 nm", "profile": "disk"},
        "excitation": {"mode": "voltage_spectroscopy"},
        "voltage": {"amplitude": "0.3 V", "steps": 8, "step_time": "2 ms", "off_time": "2 ms", "j0": "0.1 A/m**2",
                    **voltage},
        "scan": {"pixels": [2, 2], "window": "15 nm"},
        "numerics": {"workers": 1},
    }


def test_voltage_run_from_a_config(tmp_path):
    from esmsim.simulation import run

    out = run(parse_config(_config()), out_dir=tmp_path)
    ds = out.dataset
    assert ds["off_field"].dims == ("y", "x", "step") and ds["off_field"].shape == (2, 2, 8)
    np.testing.assert_allclose(ds["dc_bias"].values, VoltageSweep(0.3, 8).voltages())
    assert np.all(ds["remanent"].values < 0) and out.figure.exists()
    pts = run(parse_config(_config(points=[["12 nm", "12 nm"]])), out_dir=tmp_path / "p").dataset
    assert pts["on_field"].dims == ("point", "step")
    with pytest.raises(ConfigError, match="voltage.steps"):
        parse_config(_config(steps=10))
