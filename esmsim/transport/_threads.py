"""Threads for the large array work of the transport engine (assembly writes, Krylov products and line
solves): numpy, scipy's sparse products and LAPACK release the GIL on large arrays, so blocks of rows run
in parallel. The numbers never depend on the thread count: work is only split where each block's result
is the same computed alone."""

from __future__ import annotations

import os

#: Rows (cells or unknowns) from which the engine uses threads; below, their overhead outweighs the work.
THREADED_FROM = 200_000


def threads(n: int) -> int:
    """Threads for work on ``n`` rows: the cores this process may use (at most 8), one below
    :data:`THREADED_FROM`."""
    if n < THREADED_FROM:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def run_all(task, items, workers: int) -> None:
    """``task(item)`` for every item, in ``workers`` threads (in order in this thread when 1); the first
    exception is raised."""
    if workers <= 1:
        for item in items:
            task(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(task, item) for item in items]:
            f.result()
