"""Run the points of a sweep: a local process pool or a Dask cluster, into a result store.

Each point is one :func:`esmsim.simulation.run` with one worker (``workers=1``) in a worker
process whose numerical libraries use one thread; the points run side by side. A worker returns
the run's NetCDF bytes and the main process writes them into the store, so Dask workers need no
shared file system. A run that raises is recorded as failed (error and traceback in its JSON) and
the sweep goes on.
"""

from __future__ import annotations

import copy
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from .._errors import ConfigError
from ..config import Config
from ._spec import Point, SweepSpec, expand, load_spec, parse_spec, points_from_configs
from ._store import Store, assemble

__all__ = ["SweepSummary", "run_sweep"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")
_PINNED = {"done": False}


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    store : Path
    dataset : Path or None
        ``STORE/sweep.nc`` (None when no point has finished).
    points : int
        Points in the sweep.
    succeeded : int
        Points run now that succeeded.
    failed : list of (Point, str)
        Points run now that failed, with the reason (the error; the traceback is in ``runs/<key>.json``).
    skipped : int
        Points already finished in the store (not run again).
    seconds : float
        Wall time of this call.
    warned : list of (Point, list of str)
        Points run now that succeeded with warnings (each distinct warning once; also in ``runs/<key>.json``).
    """

    store: Path
    dataset: Path | None
    points: int
    succeeded: int
    failed: list = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0
    warned: list = field(default_factory=list)

    def __str__(self) -> str:
        ran = self.succeeded + len(self.failed)
        lines = [f"esmsim: sweep of {self.points} points in {self.seconds:.1f} s: {ran} ran ({self.succeeded} ok, "
                 f"{len(self.failed)} failed), {self.skipped} skipped (already in {self.store})"]
        lines += [f"esmsim: failed {p.describe()}: {reason} (runs/{p.key}.json)" for p, reason in self.failed]
        lines += [f"esmsim: warning {p.describe()}: {'; '.join(w)}" for p, w in self.warned]
        if self.dataset is not None:
            lines.append(f"esmsim: wrote dataset {self.dataset}")
        return "\n".join(lines)


def pin_worker():
    """Worker initialiser: one thread for BLAS/OpenMP in this process (the points share the cores)."""
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    importlib.import_module("esmsim.simulation")  # loads numpy/scipy, so that threadpoolctl sees their pools
    from ..probe._scan import pin_threads

    pin_threads()
    _PINNED["done"] = True


def _quiet(config: Config) -> Config:
    """The config with the figure and extra files off (a sweep keeps the datasets only)."""
    values = copy.deepcopy(config.values)
    values["output"].update(figure=False, usid=False, gwy=False)
    return Config(values, config.source)


def _scratch_root(tmp_root):
    """Where a run writes its files before they are read back: ``tmp_root``, a Dask worker's own folder
    (cleaned by Dask), or the system's temporary folder."""
    if tmp_root is not None:
        return tmp_root
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):  # not on a Dask worker
        return None


def run_point(config: Config, tmp_root=None) -> dict:
    """Run one point; never raises for a failing run (status ``"failed"`` with error and traceback).

    Parameters
    ----------
    config : Config
        The point's config; it runs with one worker, without figure or extra files, and ignores
        ``numerics.scheduler``.
    tmp_root : path, optional
        Folder for the run's scratch files (default: a Dask worker's folder, or the system's).

    Returns a dict: ``status``, ``netcdf`` (the dataset file's bytes, or None), ``error``, ``traceback``,
    ``warnings``, ``host``, ``pid``, ``started`` (UTC, ISO 8601), ``seconds``.
    """
    if not _PINNED["done"]:
        pin_worker()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    out = {"status": "ok", "netcdf": None, "error": None, "traceback": None, "warnings": [],
           "host": platform.node(), "pid": os.getpid(), "started": started}
    tmp = tempfile.mkdtemp(prefix="esmsim-sweep-", dir=_scratch_root(tmp_root))
    try:
        from ..simulation import run

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = run(_quiet(config), out_dir=tmp, workers=1, progress=False, scheduler="")
        out["netcdf"] = Path(res.netcdf).read_bytes()
        out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    except Exception as exc:  # a failing run is recorded, not raised: the sweep goes on
        out.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t0
    return out


def _lost(reason: str) -> dict:
    return {"status": "failed", "netcdf": None, "error": reason, "traceback": None, "warnings": [], "host": None,
            "pid": None, "started": None, "seconds": None}


def _terminate(pool):
    """Stop a process pool's workers now (on Ctrl-C: their runs are lost; the store keeps finished ones)."""
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()


def _local(todo, *, workers, retries, on_result):
    from ..probe._scan import default_workers

    n = min(default_workers(workers), len(todo))
    importlib.import_module("esmsim.simulation")  # once here: forked workers start with it imported
    tries = {p.index: 0 for p in todo}
    pending = list(todo)
    scratch = tempfile.mkdtemp(prefix="esmsim-sweep-")  # removed here even when workers are stopped mid-run
    try:
        while pending:
            pending = _pool_round(pending, n, scratch, tries, retries, on_result)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pool_round(pending, n, scratch, tries, retries, on_result) -> list:
    """Run points in a new pool; returns those to run again because their worker process died."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    again = []
    pool = ProcessPoolExecutor(n, initializer=pin_worker)
    try:
        futs = {pool.submit(run_point, p.config, scratch): p for p in pending}
        for f in as_completed(futs):
            p = futs[f]
            try:
                res = f.result()
            except BrokenProcessPool:
                tries[p.index] += 1
                if tries[p.index] <= retries:
                    again.append(p)
                    continue
                k = tries[p.index]
                res = _lost(f"the worker process died ({k} {'try' if k == 1 else 'tries'}; killed, or out of memory?)")
            except Exception as exc:  # e.g. a result that cannot be sent back
                res = _lost(f"{type(exc).__name__} in the process pool: {exc}")
            on_result(p, res)
    except BaseException:
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return again


def _dask(todo, *, scheduler, local_cluster, retries, on_result):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("scheduler", "running a sweep on Dask needs distributed: pip install 'esmsim[cluster]'") \
            from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=local_cluster, threads_per_worker=1, processes=True, dashboard_address=":0",
                               host="127.0.0.1", env={v: "1" for v in _THREAD_VARS})
    try:
        try:
            client = Client(cluster if cluster is not None else scheduler)
        except (OSError, TimeoutError) as exc:
            raise ConfigError("scheduler", f"cannot reach the Dask scheduler {scheduler!r} ({exc})") from None
        with client:
            futs = {client.submit(run_point, p.config, key=f"esmsim-run-{p.key}", pure=False, retries=retries): p
                    for p in todo}
            for f in as_completed(list(futs)):
                p = futs[f]
                try:
                    res = f.result()
                except Exception as exc:  # KilledWorker (died more than allowed), cancelled: infrastructure
                    res = _lost(f"{type(exc).__name__} on the Dask cluster: {exc}")
                on_result(p, res)
    finally:
        if cluster is not None:
            cluster.close()


def _points(spec) -> tuple[list[Point], dict | None]:
    if isinstance(spec, SweepSpec):
        return expand(spec), spec.source
    if isinstance(spec, Mapping):
        s = parse_spec(spec)
        return expand(s), s.source
    if isinstance(spec, (str, Path)):
        s = load_spec(spec)
        return expand(s), s.source
    if isinstance(spec, Sequence):
        return points_from_configs(spec), None
    raise ConfigError("spec", f"got {type(spec).__name__}; expected a sweep spec (path, dict or SweepSpec) or a "
                              "list of config dicts")


def _count(value, name: str):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(name, f"got {value!r}; expected an integer >= 1")


def run_sweep(spec, store, *, workers: int | None = None, scheduler: str | None = None,
              local_cluster: int | None = None, progress: bool = True, retries: int = 2) -> SweepSummary:
    """Run every point of a sweep into a result store; points already in the store are skipped.

    Parameters
    ----------
    spec : path, mapping, SweepSpec, or list of config dicts
        A sweep spec (TOML file, its mapping, or :func:`~esmsim.sweep.parse_spec`'s result), or the
        configs to run (mappings as read from TOML, or :class:`~esmsim.config.Config`).
    store : path
        Result folder (created): ``runs/<key>.nc``, ``runs/<key>.json``, ``sweep.json``, ``sweep.nc``.
    workers : int, optional
        Local worker processes (default one per CPU, at most 8); each runs one point at a time with one
        thread.
    scheduler : str, optional
        Address of a running Dask scheduler (``"tcp://host:8786"``): the points run there.
    local_cluster : int, optional
        Start a ``distributed.LocalCluster`` of this many single-threaded worker processes and run there.
    progress : bool
        A progress bar over the points (with ETA) on stderr.
    retries : int
        Times a point whose worker died is run again (Dask ``retries=``; a broken local pool).

    Returns
    -------
    SweepSummary

    Raises
    ------
    ConfigError
        A malformed spec or an invalid point, before anything runs.
    KeyboardInterrupt
        Interrupted: finished runs stay in the store; running again resumes.

    Notes
    -----
    Every point's config is validated first. The store is content-addressed
    (:func:`~esmsim.sweep.run_hash`): a rerun skips every point whose ``runs/<key>.nc`` exists and
    reruns failed ones, and writes the same ``sweep.nc`` as an uninterrupted sweep would have.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if scheduler is not None and local_cluster is not None:
        raise ConfigError("scheduler", "give a scheduler address or local_cluster, not both")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ConfigError("scheduler", f"got {scheduler!r}; expected an address such as 'tcp://10.0.0.1:8786'")
    _count(workers, "workers")
    _count(local_cluster, "local_cluster")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError("retries", f"got {retries!r}; expected an integer >= 0")
    points, source = _points(spec)
    st = Store(store)
    st.path.mkdir(parents=True, exist_ok=True)
    st.write_manifest(points, source)
    todo = [p for p in points if not st.finished(p.key)]
    skipped = len(points) - len(todo)
    succeeded, failed, warned = [0], [], []
    runner = scheduler or (f"dask LocalCluster({local_cluster})" if local_cluster else "local processes")
    bar = tqdm(total=len(points), initial=skipped, desc="sweep", unit="run", disable=not progress)

    def on_result(point, res):
        st.record(point, {**res, "runner": runner})
        if res["status"] == "ok":
            succeeded[0] += 1
            if res.get("warnings"):
                warned.append((point, res["warnings"]))
        else:
            failed.append((point, res["error"]))
            if progress:
                bar.write(f"esmsim: {point.describe()} failed: {res['error']}", file=sys.stderr)
        bar.update(1)

    try:
        if todo and (scheduler is not None or local_cluster is not None):
            _dask(todo, scheduler=scheduler, local_cluster=local_cluster, retries=retries, on_result=on_result)
        elif todo:
            _local(todo, workers=workers, retries=retries, on_result=on_result)
    finally:
        bar.close()
    path = assemble(points, st, source=source)
    failed.sort(key=lambda item: item[0].index)
    warned.sort(key=lambda item: item[0].index)
    return SweepSummary(st.path, path, len(points), succeeded[0], failed, skipped, time.perf_counter() - t0, warned)
