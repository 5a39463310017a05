"""Parameter sweeps: many simulations from one spec, run locally or on a Dask cluster, into one store.

A spec (TOML) is a base config and axes over its fields; :func:`expand` turns it into validated
points and :func:`run_sweep` runs them (a local process pool, a Dask scheduler, or a Dask
``LocalCluster``) into a result store: one NetCDF and one provenance JSON per run, named by the
run's config hash, and ``sweep.nc`` with every finished point stacked along ``point``. Rerunning
into the same store skips finished points. See docs/sweep.md.

    >>> from esmsim.sweep import expand
    >>> points = expand({"base": {"scan": {"pixels": [8, 8]}},
    ...                  "axis": [{"field": "tip.width", "values": ["5 nm", "10 nm"]}]})
    >>> [p.si["tip.width"] for p in points]
    [5e-09, 1e-08]
"""

from ._runner import SweepSummary, run_point, run_sweep
from ._spec import Axis, Point, SweepSpec, expand, load_spec, parse_spec, points_from_configs, run_hash
from ._store import Store, assemble

__all__ = ["Axis", "Point", "SweepSpec", "SweepSummary", "Store", "assemble", "expand", "load_spec", "parse_spec",
           "points_from_configs", "run_hash", "run_point", "run_sweep"]
