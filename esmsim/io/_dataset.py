"""Labelled ESM datasets (xarray) and their files (NetCDF-4 / HDF5)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["write_netcdf", "read_netcdf", "open_netcdf", "atomic_path", "json_attrs"]

SIGN_CONVENTION = ("u3 > 0: the surface moves out of the sample (towards the tip); z points into the sample; "
                   "delta_c(t) = Re[c exp(i omega t)]; response = u3 per volt of AC bias, phase relative to the bias")


class atomic_path:
    """Context manager giving a temporary path next to ``path``; renamed onto it only on success.

    Nothing half-written is ever left under the final name.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def _plain(value):
    """numpy scalars and arrays as plain Python for JSON."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"attribute value {value!r} of type {type(value).__name__} cannot be stored")


def json_attrs(attrs: dict) -> dict:
    """``attrs`` with dict/list/tuple/bool/None values as ``json:`` strings (NetCDF attributes are flat)."""
    return {k: "json:" + json.dumps(v, default=_plain) if isinstance(v, (dict, list, tuple, bool)) or v is None else v
            for k, v in attrs.items()}


def _json_attrs(ds):
    """Copy of ``ds`` whose dict/list/tuple/bool attributes are JSON strings."""
    ds = ds.copy()
    for obj in [ds, *ds.variables.values()]:
        obj.attrs = json_attrs(obj.attrs)
    return ds


def write_netcdf(ds, path) -> Path:
    """Write a dataset to NetCDF-4 (HDF5, via h5netcdf) atomically; returns the path.

    Attributes that are dicts, lists or booleans are stored as JSON strings
    prefixed with ``json:`` and restored by :func:`read_netcdf`.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        _json_attrs(ds).to_netcdf(tmp, engine="h5netcdf")
    return path


def read_netcdf(path):
    """Read a dataset written by :func:`write_netcdf` (JSON attributes decoded)."""
    import xarray as xr

    return _decoded(xr.load_dataset(path, engine="h5netcdf"))


def open_netcdf(path):
    """Open a dataset written by :func:`write_netcdf` lazily (variables read on access; close it, e.g.
    ``with open_netcdf(p) as ds:``), JSON attributes decoded."""
    import xarray as xr

    return _decoded(xr.open_dataset(path, engine="h5netcdf"))


def _decoded(ds):
    """``ds`` with its ``json:`` attributes decoded and one-element array attributes as scalars (in place)."""
    for obj in [ds, *ds.variables.values()]:
        for k, v in list(obj.attrs.items()):
            if isinstance(v, str) and v.startswith("json:"):
                obj.attrs[k] = json.loads(v[5:])
            elif isinstance(v, np.ndarray) and v.size == 1:
                obj.attrs[k] = v.item()
    return ds
