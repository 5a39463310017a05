"""The result store of a sweep: one file per run, and the assembled dataset.

    STORE/
      sweep.json          the points (index, key, axis values) and the spec, written when the sweep starts
      runs/<key>.nc       each run's dataset, written atomically when the run completes (presence = finished)
      runs/<key>.json     its provenance: config as written and in SI, seed, version, host, timing, status
                          ("ok" or "failed", with the error and traceback)
      sweep.nc            all finished points stacked along ``point`` (written atomically at the end)

``<key>`` is :func:`~esmsim.sweep.run_hash` of the point's config, so a store is a cache: a point
whose ``runs/<key>.nc`` exists is not run again, whatever sweep it came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io._dataset import _json_attrs, atomic_path, json_attrs, open_netcdf
from ._spec import field_unit

__all__ = ["Store", "assemble"]

# run attributes that are not outputs (they change from run to run): kept in the provenance only
NOT_OUTPUTS = frozenset({"wall_time_s", "seconds", "host", "started"})
SUMMARIES = ("mean", "median", "min", "max")  # of the amplitude map: scalar outputs of every run


class Store:
    """A sweep's result folder (see the module docstring for its layout)."""

    def __init__(self, path):
        self.path = Path(path)
        self.runs = self.path / "runs"

    def nc(self, key: str) -> Path:
        return self.runs / f"{key}.nc"

    def provenance_path(self, key: str) -> Path:
        return self.runs / f"{key}.json"

    def finished(self, key: str) -> bool:
        """Whether the run ``key`` has completed (its dataset is in the store)."""
        return self.nc(key).is_file()

    def provenance(self, key: str) -> dict | None:
        p = self.provenance_path(key)
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    def _write_json(self, path: Path, data: dict):
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=_plain) + "\n", encoding="utf-8")

    def write_manifest(self, points, source: dict | None):
        """``sweep.json``: what the store is being filled with (deterministic: no times)."""
        from .. import __version__

        self._write_json(self.path / "sweep.json", {
            "esmsim_version": __version__, "spec": source,
            "points": [{"index": p.index, "key": p.key, "values": p.values} for p in points]})

    def record(self, point, result: dict):
        """Write a run's provenance, then (if it succeeded) its dataset: the dataset's presence marks it finished."""
        from .. import __version__

        prov = {"index": point.index, "key": point.key, "values": point.values, "si": point.si,
                "config": point.config.source, "config_si": point.config.values,
                "seed": point.config["simulation"]["seed"], "esmsim_version": __version__,
                **{k: v for k, v in result.items() if k != "netcdf"}}
        self._write_json(self.provenance_path(point.key), prov)
        if result["status"] == "ok":
            with atomic_path(self.nc(point.key)) as tmp:
                tmp.write_bytes(result["netcdf"])


def _plain(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def _coord(name: str, values: list):
    """A coordinate over ``point`` from the points' SI values of one field (None, i.e. "auto": NaN)."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    given = [v for v in values if v is not None]
    note = {"note": "NaN: 'auto'"} if len(given) < len(values) else {}
    if all(isinstance(v, bool) for v in given) and given and not note:
        return ("point", np.asarray(values, np.uint8), {"long_name": f"{name} (1: true)"})
    if all(number(v) for v in given):
        ints = given and not note and all(isinstance(v, int) for v in given)
        return ("point", np.asarray([np.nan if v is None else v for v in values], int if ints else float), note)
    if given and all(isinstance(v, tuple) and len(v) == len(given[0]) and all(number(x) for x in v) for v in given):
        nan = (np.nan,) * len(given[0])
        return (("point", f"{name}.component"), np.asarray([nan if v is None else v for v in values], float), note)
    return ("point", np.asarray([v if isinstance(v, str) else json.dumps(v) for v in values], dtype=object))


def _scalars(ds) -> dict:
    """A run's scalar outputs: 0-d variables, numeric attributes (not timings), amplitude summaries."""
    out = {k: float(v.values) for k, v in ds.data_vars.items() if v.ndim == 0}
    for k, v in ds.attrs.items():
        if k in NOT_OUTPUTS or isinstance(v, bool) or k in ds.variables:
            continue
        if isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = v
    if "amplitude" in ds:
        a = np.asarray(ds["amplitude"].values, float)
        for s in SUMMARIES:
            out[f"amplitude_{s}"] = float(getattr(np, s)(a))
    return out


def assemble(points, store, *, source: dict | None = None, path=None):
    """Stack the finished runs of ``points`` along ``point`` and write ``sweep.nc`` atomically.

    Coordinates over ``point``: the point index, ``run`` (the run's key) and one per sweep field
    (SI values, named by the field, e.g. ``material.gb_enhancement``). Data variables: each run's
    scalar outputs over ``point`` (0-d variables, numeric attributes except timings, and
    ``amplitude_mean``/``_median``/``_min``/``_max``), and every variable of the runs whose dims and
    shape agree across the runs, stacked as ``(point, ...)``; coordinates equal in every run stay
    shared. Variables whose shapes differ are listed in the attribute ``not_stacked``. Points that
    failed are absent (their indices in ``failed_points``). No timings or host names: a resumed sweep
    writes the same dataset as an uninterrupted one.

    Memory is that of one run: the runs are read one at a time, and the stacked numeric variables are
    written into the file run by run (open the result lazily, ``xarray.open_dataset``, for sweeps
    larger than memory).

    Parameters
    ----------
    points : list of Point
    store : Store or path
    source : dict, optional
        The spec as written, stored as the ``sweep_spec`` attribute.
    path : path, optional
        Where to write; default ``STORE/sweep.nc``.

    Returns
    -------
    Path or None
        None when no point has finished.
    """
    import xarray as xr

    from .. import __version__

    store = store if isinstance(store, Store) else Store(store)
    done = sorted((p for p in points if store.finished(p.key)), key=lambda p: p.index)
    failed = sorted(p.index for p in points if not store.finished(p.key))
    if not done:
        return None
    # pass 1, one run open at a time: each variable's signature, the small values (coordinates, strings)
    # and the scalar outputs. Numeric data variables are not read here: pass 2 streams them into the file.
    sigs, small, scalars = [], [], []
    for p in done:
        with _open_run(store.nc(p.key)) as ds:
            sigs.append({k: (v.dims, v.shape, v.dtype) for k, v in ds.variables.items()})
            small.append({k: v.values for k, v in ds.variables.items() if not _streamed(k, v, ds)})
            scalars.append(_scalars(ds))
            if p is done[0]:
                first_attrs = {k: dict(v.attrs) for k, v in ds.variables.items()}
                first_coords = set(ds.coords)
    coords = {"point": ("point", np.array([p.index for p in done]), {"long_name": "index of the sweep point"}),
              "run": ("point", np.array([p.key for p in done], dtype=object),
                      {"long_name": "run key: runs/<run>.nc and runs/<run>.json in the store"})}
    fields = list(done[0].si)
    every = sorted(points, key=lambda p: p.index)
    rows = np.array([store.finished(p.key) for p in every])
    for f in fields:  # laid out from every point, so that a failed point does not change the coordinate's type
        dims, values, *attrs = _coord(f, [p.si.get(f) for p in every])
        values = values[rows]
        attrs = dict(attrs[0]) if attrs else {}
        unit = field_unit(f)
        if unit is not None and values.dtype.kind in "fiu":
            attrs["units"] = unit
        coords[f] = (dims, values, {"long_name": f"sweep field {f} (SI)", **attrs})
    data_vars, not_stacked, streamed = {}, [], []
    for name, (dims, shape, dtype) in sigs[0].items():
        if not all(name in sg and sg[name][:2] == (dims, shape) for sg in sigs):
            not_stacked.append(name)
            continue
        attrs = first_attrs[name]
        streams = [name not in sm for sm in small]
        if any(streams) and not all(streams):  # numeric in some runs only: cannot share one variable
            not_stacked.append(name)
            continue
        if streams[0]:  # a numeric data variable: written run by run below, in the runs' common type
            streamed.append((name, dims, shape, np.result_type(*(sg[name][2] for sg in sigs)), attrs))
            continue
        values = [sm[name] for sm in small]
        if name in first_coords and all(np.array_equal(v, values[0]) for v in values[1:]):
            coords[name] = (dims, values[0], attrs)
        elif name in first_coords:
            target = f"{name}_of_point" if name in dims else name
            coords[target] = (("point", *dims), np.stack(values), attrs)
        else:
            data_vars[name] = (("point", *dims), np.stack(values), attrs)
    for k in scalars[0]:
        if k in data_vars or k in coords or k in sigs[0]:
            continue
        if all(k in s for s in scalars):
            data_vars[k] = ("point", np.asarray([s[k] for s in scalars]), {"long_name": f"run output {k}"})
    out = xr.Dataset(data_vars, coords=coords)
    out.attrs.update({
        "title": "esmsim parameter sweep", "esmsim_version": __version__, "sweep_fields": fields,
        "sweep_spec": source if source is not None else {}, "failed_points": failed,
        "not_stacked": sorted(not_stacked),
        "layout": "one entry per finished point along 'point'; each run's dataset and provenance in runs/<run>.nc "
                  "and runs/<run>.json",
    })
    path = Path(path) if path is not None else store.path / "sweep.nc"
    with atomic_path(path) as tmp:
        _json_attrs(out).to_netcdf(tmp, engine="h5netcdf")  # all but the streamed variables
        if streamed:
            _stream(tmp, store, done, streamed)
    return path


def _open_run(path):
    """A run's dataset opened lazily; a spectroscopy run's ``point`` (its tips) renamed, as it is not the
    sweep's point."""
    ds = open_netcdf(path)
    return ds.rename({"point": "spectroscopy_point"}) if "point" in ds.dims else ds


def _streamed(name, var, ds) -> bool:
    """Numeric (not boolean) data variables with at least one dimension go to the file run by run."""
    return name not in ds.coords and var.ndim > 0 and var.dtype.kind in "fiuc"


def _stream(tmp, store, done, streamed):
    """Write the stacked numeric variables into the file ``tmp`` one run at a time (memory of one run)."""
    import h5netcdf

    with h5netcdf.File(tmp, "a") as f:
        target = {}
        for name, dims, shape, dtype, attrs in streamed:
            for d, n in zip(("point", *dims), (len(done), *shape)):
                if d not in f.dimensions:
                    f.dimensions[d] = n
            var = f.create_variable(name, ("point", *dims), dtype=dtype)
            for k, v in json_attrs(attrs).items():
                var.attrs[k] = v
            target[name] = var
        for i, p in enumerate(done):
            with _open_run(store.nc(p.key)) as ds:
                for name, var in target.items():
                    var[i, ...] = ds[name].values
