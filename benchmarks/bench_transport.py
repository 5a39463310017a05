"""Benchmark of the transport engine on a ~1-million-cell polycrystal (issue 4).

Problem: a LiCoO2 columnar polycrystal, 100 x 100 columns of 5 nm, graded z to 400 nm (first cell
sqrt(D_zz/omega)/8 at 350 kHz), random orientations (each grain's diagonal D), Lorentzian tip (d = 10 nm).

1. Candidate: esmsim frequency-domain solve with grain-boundary slabs (s = 1e4) and the sub-grid layer,
   method "auto" (z-line-preconditioned GMRES at this frequency); assembly included.
2. Same without boundaries (bulk only), esmsim, for a like-for-like comparison with FiPy.
3. Baseline: FiPy 4 on the bulk-only problem (it has no slab model): mesh, harmonic face tensor,
   Dirichlet tip on the front faces, one implicit step of TransientTerm == DiffusionTerm with
   dt = 1/omega (a real problem of the same size and conditioning), solved with its best available
   setup here: scipy conjugate gradients preconditioned by pyamg smoothed aggregation (FiPy's default, a
   sparse LU, ran > 10 minutes and 11 GB before it was stopped); FiPy's time includes its mesh.
4. Iteration counts (``solve_frequency(..., info=)``) and times of AMG-GMRES at 1 Hz, 1 kHz, 350 kHz and
   1 MHz and of z-line COCG at 350 kHz and 1 MHz on the full slab problem; the candidate's time again
   without tracemalloc (the harness traces every allocation).

Run from the repository root:  python benchmarks/bench_transport.py   (a few minutes; FiPy is slow)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.materials import get_material  # noqa: E402
from esmsim.microstructure import Grid, columnar_voronoi, graded_widths  # noqa: E402
from esmsim.probe._scan import grain_diffusivities  # noqa: E402
from esmsim.transport import assemble, boundary_network, solve_frequency, tip_rhs  # noqa: E402

FREQ = 350e3
TIP = (250e-9, 250e-9)


def setup():
    mat = get_material("LiCoO2")
    ms = columnar_voronoi((500e-9, 500e-9), spacing=5e-9, thickness=400e-9, grain_size=100e-9, rng=1)
    Dg = grain_diffusivities(ms, mat)
    omega = 2 * np.pi * FREQ
    dz = graded_widths(0.125 * np.sqrt(Dg[:, 2].min() / omega), 1.3, 400e-9, max_width=4e-9)
    grid = Grid(np.full(100, 5e-9), np.full(100, 5e-9), dz)
    D = np.broadcast_to(Dg[ms.labels][:, :, None, :], grid.shape + (3,))
    return mat, ms, grid, D, omega


def esmsim_solve(mat, ms, grid, D, omega, *, boundaries=True, method="auto", info=None):
    kw = {}
    if boundaries:
        net = boundary_network(ms.labels, 5e-9, 5e-9, periodic=True, normal=ms.boundary_normal)
        kw = dict(boundaries=net, D_gb=mat.D_gb, gb_width=mat["gb_width"], omega=omega)
    s = assemble(grid, D, periodic=(True, True), **kw)
    c = solve_frequency(s, omega, *tip_rhs(s, TIP, profile="lorentzian", width=10e-9), method=method,
                        info=info)[0]
    return s.n, c


def fipy_step(grid, D, omega):
    from fipy import LinearPCGSolver
    from fipy.solvers.pyAMG.preconditioners import SmoothedAggregationPreconditioner

    from esmsim.transport._fipy import fipy_time_solve

    # FiPy's default scipy solver is sparse LU, hopeless at this size (it ran > 10 min and 11 GB here);
    # its best setup here is conjugate gradients with pyamg's smoothed-aggregation preconditioner
    solver = LinearPCGSolver(precon=SmoothedAggregationPreconditioner(), tolerance=1e-10, iterations=1000)
    c = fipy_time_solve(grid, D, TIP, profile="lorentzian", width=10e-9, times=[1.0 / omega], steps_per_output=1,
                        solver=solver)
    return c[0].size, c[0]


def main():
    mat, ms, grid, D, omega = setup()
    (n_gb, c_gb), cand = measure("esmsim, s = 1e4 slabs, auto (z lines)", esmsim_solve, mat, ms, grid, D, omega)
    (n_bulk, _), bulk = measure("esmsim, bulk only", esmsim_solve, mat, ms, grid, D, omega, boundaries=False)
    (n_fp, _), fpm = measure("FiPy 4 (PCG + pyamg SA), bulk only, one implicit step, mesh included", fipy_step,
                             grid, D, omega)
    # the same solve without tracemalloc (measure() traces every allocation): warm, as in a sweep
    t0 = time.perf_counter()
    esmsim_solve(mat, ms, grid, D, omega)
    untraced = time.perf_counter() - t0
    iters = {"esmsim with slabs, untraced, second call (s)": round(untraced, 2)}
    runs = [(f, "amg") for f in (1.0, 1e3, 350e3, 1e6)] + [(f, "zline") for f in (350e3, 1e6)]
    for f, method in runs:  # z lines need thousands of iterations below ~10 kHz here (auto takes AMG there)
        t0 = time.perf_counter()
        info = {}
        try:
            esmsim_solve(mat, ms, grid, D, 2 * np.pi * f, method=method, info=info)
            iters[f"{method} at {f:g} Hz: iterations, s"] = (info["iterations"][0],
                                                            round(time.perf_counter() - t0, 1))
        except RuntimeError as exc:
            iters[f"{method} at {f:g} Hz"] = str(exc)
    extra = {"unknowns with slabs": n_gb, "cells (bulk only)": n_bulk, "FiPy cells": n_fp,
             "esmsim bulk only (s)": round(bulk.seconds, 2), "esmsim bulk only peak (MB)": round(bulk.peak_python_mb),
             "ratio FiPy / esmsim bulk-only time": round(fpm.seconds / bulk.seconds, 1),
             "ratio FiPy / esmsim bulk-only memory": round(fpm.peak_python_mb / bulk.peak_python_mb, 1),
             **iters}
    report("transport 1M cells 350 kHz", cand, fpm, extra)


if __name__ == "__main__":
    main()
