"""Spectroscopy at chosen tip positions: the response over frequency.

Frequency spectroscopy solves the map engine's window problem at each
frequency; the window (``max(3 d, 4 sqrt(D_gb / omega))`` plus the map's far
field, capped by the film) and the z grading follow the frequency, so 1 Hz
solves the whole film and 1 MHz a few tip widths.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

from .._errors import ParameterError
from ._scan import MapSettings, _Window, default_workers, pin_threads

__all__ = ["frequency_spectroscopy"]


def _points(ms, points):
    pts = np.atleast_2d(np.asarray(points, int))
    if pts.shape[1] != 2 or np.any(pts < 0) or np.any(pts >= np.array(ms.shape)):
        raise ParameterError("points", f"got {np.asarray(points).tolist()}; expected (i, j) pixel indices within "
                                       f"{ms.shape}")
    return pts


def _pool_map(fn, tasks, workers):
    workers = default_workers(workers)
    if workers == 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    with ProcessPoolExecutor(workers, initializer=pin_threads) as pool:
        return list(pool.map(fn, tasks))


def _freq_task(args):
    """All points at one frequency: one window engine, so its far field (one film solve) is shared."""
    ms, material, settings, f, pts = args
    w = _Window(ms, material, replace(settings, frequency=float(f), lateral=False))  # the normal response
    w.method = "auto"  # one tip per window: iterative solvers on the large low-frequency windows
    return [w.solve(int(i), int(j)) for i, j in pts]


def frequency_spectroscopy(ms, material, settings: MapSettings, points, frequencies, *, workers=None) -> np.ndarray:
    """Complex response (m/V) at tip pixels ``points`` over ``frequencies``.

    Parameters
    ----------
    ms : ColumnarMicrostructure
    material : Material
    settings : MapSettings
        Its ``frequency`` is replaced by each of ``frequencies``; window and z cells follow the
        frequency (``window = None``: the automatic window).
    points : (n, 2) int array
        Microstructure pixel indices of the tip.
    frequencies : (m,) array
        Hz, e.g. ``np.geomspace(1, 1e6, 25)``.
    workers : int, optional
        Processes (default: CPUs, at most 8).

    Returns
    -------
    ndarray, complex, shape (n, m)
    """
    pts = _points(ms, points)
    f = np.asarray(frequencies, float)
    if f.ndim != 1 or np.any(~(f > 0)):
        raise ParameterError("frequencies", "must be a 1-D array of positive frequencies (Hz)")
    tasks = [(ms, material, settings, fk, pts) for fk in f]  # per frequency: the far field is one film solve
    return np.array(_pool_map(_freq_task, tasks, workers), complex).T
