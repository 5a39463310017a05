"""Benchmark of relaxation and voltage spectroscopy (issue 6): the reduced models against time stepping.

One tip on a window of the map engine (a 40 x 40 nm bicrystal with a fast boundary, anisotropic grains):

- relaxation: a 0.2 tau pulse, open circuit, 8 read-outs over 0.03 - 10 tau (tau = d^2 / D), by rational
  Krylov reduction (``_RelaxationWindow``) against adaptive implicit Euler with Richardson extrapolation
  (``esmsim.transport.integrate``, rtol 1e-7, LU per step size) on the same system;
- voltage: an 8-step triangle to 0.3 V with 0 V reads, nonlinear Butler-Volmer on the tip cells, by block
  rational Krylov reduction + Radau (``_VoltageWindow``) against the full Newton-per-step integrator
  (``esmsim.transport.integrate_butler_volmer``, rtol 1e-6).

Both report the largest difference relative to the largest value.

Run from the repository root:  python benchmarks/bench_spectroscopy.py   (about 5 minutes)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.materials import get_material  # noqa: E402
from esmsim.microstructure import columnar_seeded  # noqa: E402
from esmsim.probe import MapSettings, RelaxationPulse, VoltageSweep  # noqa: E402
from esmsim.probe._relaxation import _RelaxationWindow  # noqa: E402
from esmsim.probe._voltage import _VoltageWindow  # noqa: E402
from esmsim.transport import integrate  # noqa: E402
from esmsim.transport._frequency import tip_rhs  # noqa: E402
from esmsim.transport._time import integrate_butler_volmer  # noqa: E402

MAT = get_material("LiCoO2").replace(gb_enhancement=100.0, D_c_over_D_ab=0.1)
TAU = (10e-9) ** 2 / MAT.D_reference


def film():
    return columnar_seeded([[10e-9, 20e-9], [30e-9, 20e-9]], (40e-9, 40e-9), spacing=5e-9, thickness=20e-9,
                           euler_angles=[[0.3, 0.52, 0.0], [1.1, 1.22, 0.4]])


def relaxation():
    st = MapSettings(frequency=1.0, tip_width=10e-9, window=20e-9)
    p = RelaxationPulse(voltage=0.5, duration=0.2 * TAU, times=TAU * np.geomspace(0.03, 10, 8))
    w = _RelaxationWindow(film(), MAT, st, p)
    u, m1 = measure("rational Krylov reduction", w.solve, 3, 4)
    lab, ox, oy, grid, net, system = w.system(np.array([3]), np.array([4]), omega=None)
    tip = ((ox + 0.5) * 5e-9, (oy + 0.5) * 5e-9)

    def stepped():
        g, b = tip_rhs(system, tip, profile="lorentzian", width=10e-9)
        cT = integrate(system, [p.duration], diag=g, b=b * w.C0 * p.voltage, rtol=1e-7, direct_limit=10 ** 6).c[-1]
        c = integrate(system, p.times, c0=cT, rtol=1e-7, direct_limit=10 ** 6).c
        return np.array([w.isotropic_displacement(system, tip, ck) for ck in c])

    ref, m0 = measure("adaptive implicit Euler (rtol 1e-7)", stepped)
    err = float(np.abs(u[:-2] - ref).max() / np.abs(ref).max())
    report("relaxation spectroscopy, one tip", m1, m0, {"unknowns": system.n, "max_rel_difference": err})


def voltage():
    st = MapSettings(frequency=1.0, tip_width=6e-9, tip_profile="disk", window=15e-9)
    sw = VoltageSweep(amplitude=0.3, steps=8, step_time=2e-3, off_time=2e-3, j0=0.1)
    w = _VoltageWindow(film(), MAT, st, sw)
    loop, m1 = measure("block rational Krylov + Radau", w.solve, 3, 4)
    lab, ox, oy, grid, net, system = w.system(np.array([3]), np.array([4]), omega=None)
    tip = ((ox + 0.5) * 5e-9, (oy + 0.5) * 5e-9)
    V = sw.voltages()
    T = sw.step_time + sw.off_time
    ends = np.ravel([[k * T + sw.step_time, (k + 1) * T] for k in range(V.size)])

    def full():
        volt = lambda t: V[min(int(t // T), V.size - 1)] if (t % T) < sw.step_time else 0.0  # noqa: E731
        c = integrate_butler_volmer(system, ends, tip_xy=tip, profile="disk", width=6e-9, voltage=volt, j0=sw.j0,
                                    dU_dc=MAT.dU_dc, rtol=1e-6, breakpoints=ends).c
        return np.array([w.isotropic_displacement(system, tip, ck) for ck in c]).reshape(-1, 2).T

    ref, m0 = measure("Newton per implicit step (rtol 1e-6)", full)
    err = float(np.abs(loop[:2] - ref).max() / np.abs(ref).max())
    report("voltage spectroscopy, one tip, 8 steps", m1, m0, {"unknowns": system.n, "max_rel_difference": err})


if __name__ == "__main__":
    relaxation()
    voltage()
