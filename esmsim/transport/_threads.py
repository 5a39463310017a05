"""Threads for the large array work of the transport engine (assembly writes, Krylov products and line
solves): numpy, scipy's sparse products and LAPACK release the GIL on large arrays, so blocks of rows run
in parallel. The numbers never depend on the thread count: work is only split where each block's result
is the same computed alone."""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

#: Rows (cells or unknowns) from which the engine uses threads; below, their overhead outweighs the work.
THREADED_FROM = 200_000


def threads(n: int) -> int:
    """Threads for work on ``n`` rows: the environment variable ``ESMSIM_NUM_THREADS`` if set (e.g. 1 in a
    sweep that runs one process per core), else the cores this process may use (at most 8); one below
    :data:`THREADED_FROM`.

    Raises
    ------
    ParameterError
        ``ESMSIM_NUM_THREADS`` is not a positive integer.
    """
    if n < THREADED_FROM:
        return 1
    env = os.environ.get("ESMSIM_NUM_THREADS")
    if env is not None and env.strip():
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            from .._errors import ParameterError

            raise ParameterError("ESMSIM_NUM_THREADS", f"got {env!r}; allowed a positive integer (threads)")
        return value
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


#: Bytes from which :func:`fresh_array` asks numpy for small pages.
FRESH_FROM = 32 * 2 ** 20

_HUGEPAGE = threading.Lock()


def _hugepage_switch():
    """numpy's switch of its ``madvise(MADV_HUGEPAGE)`` on large arrays (``_set_madvise_hugepage``, which
    returns the previous setting; the documented one besides the environment variable
    ``NUMPY_MADVISE_HUGEPAGE``), or None where this numpy has none."""
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    return getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)


def fresh_array(n: int, dtype) -> np.ndarray:
    """``np.empty(n, dtype)``, from :data:`FRESH_FROM` bytes on ordinary (4 kB) pages. numpy advises the
    kernel to back large arrays with transparent huge pages; with the kernel's default ``defrag = madvise``
    the first touch of such an array then waits for the kernel to compact memory: writing a fresh 410 MB
    operator took 0.68-0.77 s on this project's 2-core machine, 0.34-0.40 s on small pages (a second write,
    into memory freed by the first, 0.27 s and 0.33 s). numpy's switch is process-wide: it is turned off for
    this one allocation only (under a lock) and restored; the array is numpy's own (traced by tracemalloc
    like any other)."""
    dtype = np.dtype(dtype)
    switch = _hugepage_switch()
    if int(n) * dtype.itemsize < FRESH_FROM or switch is None:
        return np.empty(n, dtype)
    with _HUGEPAGE:
        was = switch(False)
        try:
            return np.empty(n, dtype)
        finally:
            switch(was)


_BLAS = None


def one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread (threadpoolctl). SuperLU calls BLAS on small supernodes, many times;
    OpenBLAS's threads then spin between the calls, and two processes side by side on two cores (each with
    its pool) ran the volume windows' factorisations 30-80x slower than one alone (validation gb_volume's
    whole-film tips: 22 s against 0.8 s at 8 nm; 0.8 s each with ``OPENBLAS_NUM_THREADS=1``)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        global _BLAS
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        with _BLAS.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return run


def later(pool, fn, *args):
    """``fn(*args)`` as a future: run by ``pool`` (a ``concurrent.futures`` executor) beside the caller, or
    here and now without one (its ``result()`` the value; an exception is raised at once)."""
    if pool is not None:
        return pool.submit(fn, *args)
    done = Future()
    done.set_result(fn(*args))
    return done


#: Row blocks of the Krylov vectors of a threaded solve: fixed, so that the partial sums of the inner
#: products, and with them the iterates, do not depend on how many threads run them.
ROW_BLOCKS = 8


class RowBlocks:
    """Blocks of rows ``cuts[j]:cuts[j + 1]`` and a runner for work on each (a context manager holding a
    pool of ``workers`` threads; in order in this thread with one worker or one block; the first exception
    of a task is raised).

    ``run(task)`` returns ``[task(j) for every block j]``; ``dot(A, B)`` the column-wise unconjugated
    products ``sum_i A_ij B_ij``, summed block by block in block order (one block: numpy's sum itself).
    """

    def __init__(self, cuts, workers: int = 1):
        self.cuts = list(cuts)
        self.slices = [slice(a, b) for a, b in zip(self.cuts[:-1], self.cuts[1:])]
        self.workers = min(int(workers), len(self.slices))
        self._pool = None

    def __enter__(self):
        if self.workers > 1:
            self._pool = ThreadPoolExecutor(self.workers)
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def run(self, task) -> list:
        if self._pool is None:
            return [task(j) for j in range(len(self.slices))]
        return [f.result() for f in [self._pool.submit(task, j) for j in range(len(self.slices))]]

    def dot(self, A, B):
        parts = self.run(lambda j: np.einsum("ij,ij->j", A[self.slices[j]], B[self.slices[j]]))
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total

    def norm(self, A):
        """Column norms of ``A`` (numpy's own with one block)."""
        parts = self.run(lambda j: np.linalg.norm(A[self.slices[j]], axis=0))
        if len(parts) == 1:
            return parts[0]
        total = parts[0] ** 2
        for p in parts[1:]:
            total = total + p ** 2
        return np.sqrt(total)
