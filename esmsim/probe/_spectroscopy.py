"""Spectroscopy at chosen tip positions: the response over frequency.

Frequency spectroscopy solves the map engine's window problem at each
frequency; the window (``max(3 d, 4 sqrt(D_gb / omega))`` plus the map's far
field, capped by the film) and the z grading follow the frequency, so 1 Hz
solves the whole film and 1 MHz a few tip widths. A voxel volume
(:class:`~esmsim.microstructure.Microstructure`: grains that change with
depth, pores, cracks) is solved by the volume engine
(:func:`~esmsim.probe.volume_response`) the same way, without a far field.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

from .._errors import ParameterError
from ..microstructure._voxel import Microstructure
from ._scan import MapSettings, _Window, default_workers, pin_threads

__all__ = ["frequency_spectroscopy"]


def _points(ms, points):
    pts = np.atleast_2d(np.asarray(points, int))
    if pts.shape[1] != 2 or np.any(pts < 0) or np.any(pts >= np.array(ms.shape[:2])):
        raise ParameterError("points", f"got {np.asarray(points).tolist()}; expected (i, j) pixel indices within "
                                       f"{ms.shape[:2]}")
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
    st = replace(settings, frequency=float(f), lateral=False)  # the normal response
    if isinstance(ms, Microstructure):
        return _volume_points(ms, material, st, pts)
    w = _Window(ms, material, st)
    w.method = "auto"  # one tip per window: iterative solvers on the large low-frequency windows
    return [w.solve(int(i), int(j)) for i, j in pts]


def frequency_spectroscopy(ms, material, settings: MapSettings, points, frequencies, *, workers=None) -> np.ndarray:
    """Complex response (m/V) at tip pixels ``points`` over ``frequencies``.

    Parameters
    ----------
    ms : ColumnarMicrostructure or Microstructure
        A columnar film (the map engine's windows with their far field) or a voxel volume (the volume
        engine: full tensors, boundaries on their true planes, pores and cracks; windows without a far
        field, the whole film where the window is wider).
    material : Material
    settings : MapSettings
        Its ``frequency`` is replaced by each of ``frequencies``; window and z cells follow the
        frequency (``window = None``: the automatic window).
    points : (n, 2) int array
        Microstructure pixel indices of the tip (the tip at the pixel's centre).
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


def _volume_points(ms, material, settings, pts):
    """The volume engine at one frequency: one window for all points where a window is the whole film
    anyway (low frequencies), else one per point."""
    from ._volume import _VolumeSolver

    solver = _VolumeSolver(ms, material, settings)
    xv, yv = ms.pixel_centers()
    tips = np.column_stack([xv[pts[:, 0]], yv[pts[:, 1]]])
    if 2 * solver.hw + 1 >= max(ms.shape[:2]):
        return list(solver.window(tips))
    return [solver.window(t[None])[0] for t in tips]
