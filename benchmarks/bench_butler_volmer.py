"""Benchmark of the nonlinear Butler-Volmer time integrator (issue 4, item 4): Newton on the surface unknowns'
Schur complement against Newton on the whole Jacobian.

``esmsim.transport.integrate_butler_volmer`` takes implicit steps whose only nonlinearity is the Butler-Volmer
law on the surface unknowns under the tip. The candidate factorises the bulk block ``V / dt + K`` once per
step size with its response to each surface unknown, and each Newton iteration solves a dense system of the
surface unknowns (``SCHUR_MAX`` of them at most). The baseline is what the integrator did before: a sparse LU
of the whole Jacobian (bulk and surface unknowns) in every Newton iteration (``SCHUR_MAX = 0`` selects it).
Both take the same steps; the largest difference of the states is reported.

Problems:

1. the voltage-spectroscopy test's window (a 40 x 40 nm bicrystal with a fast boundary, 5 nm columns, disk
   tip of 6 nm): an 8-step triangle to 0.3 V with 0 V reads, rtol 1e-6 (``bench_spectroscopy.py``'s
   reference);
2. a 3-D grain at a random orientation (full tensor, 16 x 16 x 16 cells of 1 nm laterally, graded in z), a
   3 nm Lorentzian tip (every top cell a surface unknown: 256), a 0.1 V pulse of 20 us and its relaxation.

Run from the repository root:  python benchmarks/bench_butler_volmer.py   (about 5 minutes)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.microstructure import Grid, graded_widths, quaternions_to_matrices, random_quaternions  # noqa: E402
from esmsim.transport import _time  # noqa: E402
from esmsim.transport import assemble_tensor, grain_tensors  # noqa: E402


def voltage_window():
    from bench_spectroscopy import MAT, film

    from esmsim.probe import MapSettings, VoltageSweep
    from esmsim.probe._voltage import _VoltageWindow

    st = MapSettings(frequency=1.0, tip_width=6e-9, tip_profile="disk", window=15e-9)
    sw = VoltageSweep(amplitude=0.3, steps=8, step_time=2e-3, off_time=2e-3, j0=0.1)
    w = _VoltageWindow(film(), MAT, st, sw)
    lab, ox, oy, grid, net, system = w.system(np.array([3]), np.array([4]), omega=None)
    tip = ((ox + 0.5) * 5e-9, (oy + 0.5) * 5e-9)
    V = sw.voltages()
    T = sw.step_time + sw.off_time
    ends = np.ravel([[k * T + sw.step_time, (k + 1) * T] for k in range(V.size)])

    def volt(t):
        return V[min(int(t // T), V.size - 1)] if (t % T) < sw.step_time else 0.0

    kw = dict(tip_xy=tip, profile="disk", width=6e-9, voltage=volt, j0=sw.j0, dU_dc=MAT.dU_dc, rtol=1e-6,
              breakpoints=ends)
    return "voltage window (disk tip, 8 steps to 0.3 V)", system, ends, kw


def rotated_grain():
    grid = Grid(np.full(16, 1e-9), np.full(16, 1e-9), graded_widths(0.1e-9, 1.3, 6e-9))
    Dt = grain_tensors(quaternions_to_matrices(random_quaternions(1, rng=5)), [1e-14, 1e-14, 1e-17])[0]
    system = assemble_tensor(grid, np.broadcast_to(Dt, grid.shape + (3, 3)).copy())
    kw = dict(tip_xy=(8.3e-9, 8.1e-9), profile="lorentzian", width=3e-9, j0=1e3, dU_dc=1e-5, rtol=1e-3,
              voltage=lambda t: 0.1 if t < 2e-5 else 0.0, breakpoints=[2e-5])
    return "rotated 3-D grain (Lorentzian tip, pulse and relaxation)", system, [1e-5, 2e-5, 4e-5], kw


def run(case):
    title, system, times, kw = case()
    schur, m1 = measure("Newton on the surface Schur complement", _time.integrate_butler_volmer, system, times,
                        **kw)
    keep = _time.SCHUR_MAX
    _time.SCHUR_MAX = 0
    try:
        full, m0 = measure("Newton on the whole Jacobian (sparse LU per iteration)", _time.integrate_butler_volmer,
                           system, times, **kw)
    finally:
        _time.SCHUR_MAX = keep
    diff = float(np.abs(schur.c - full.c).max() / np.abs(full.c).max())
    report(f"Butler-Volmer integrator, {title}", m1, m0,
           {"unknowns": system.n, "steps": f"{schur.steps} / {full.steps}", "step sizes set up": schur.factorisations,
            "max_rel_difference": diff})


if __name__ == "__main__":
    run(voltage_window)
    run(rotated_grain)
