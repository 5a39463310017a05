"""Sweep specs: a base config and axes over config fields, expanded to validated points.

A spec is a TOML file (or the dict read from one)::

    seed = 1                       # seeds the random and latin_hypercube axes
    combine = "product"            # or "zip"
    base = "film.toml"             # or a [base] table: a whole simulation config

    [[axis]]
    field = "material.gb_enhancement"
    logspace = { start = 1e2, stop = 1e4, num = 3 }

    [[axis]]
    field = "tip.width"
    values = ["5 nm", "10 nm"]

This module is an edge of the package like :mod:`esmsim.config`: it reads TOML
and unit strings; every point's config is validated by
:func:`~esmsim.config.parse_config` before anything runs.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._errors import ConfigError
from ..config import SAVED_SUFFIXES, SCHEMA, Config, _read_toml, parse_config, parse_quantity

__all__ = ["Axis", "Point", "SweepSpec", "load_spec", "parse_spec", "expand", "points_from_configs", "run_hash"]

GENERATORS = ("values", "linspace", "logspace", "random", "latin_hypercube")
TOP_KEYS = ("base", "axis", "combine", "seed")
# fields that cannot change a run's numbers: left out of the run's hash (a store stays valid when they change)
NOT_HASHED = {"simulation": ("name",), "numerics": ("workers", "scheduler"), "output": tuple(SCHEMA["output"])}


@dataclass(frozen=True)
class Axis:
    """One sweep axis: one or more config fields and the values they take together.

    Attributes
    ----------
    fields : tuple of str
        Dotted config fields (``"tip.width"``, ``"material.gb_enhancement"``); several for a
        ``latin_hypercube`` axis.
    values : tuple of tuple
        ``values[k][j]``: the value of ``fields[j]`` at the axis' k-th step, as it goes into the config
        (a string with units, or a plain number in the field's SI unit).
    kind : str
        The generator that made it (``"values"``, ``"linspace"``, ...).
    """

    fields: tuple[str, ...]
    values: tuple[tuple, ...]
    kind: str = "values"

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec (see :func:`parse_spec`).

    Attributes
    ----------
    base : dict
        The base simulation config, as written.
    axes : tuple of Axis
    combine : str
        ``"product"`` (every combination; the first axis varies slowest) or ``"zip"``.
    seed : int
        Seed of the ``random`` and ``latin_hypercube`` axes.
    base_dir : Path
        Folder that relative paths in the base config are resolved against.
    source : dict
        The spec as written (provenance).
    """

    base: dict
    axes: tuple[Axis, ...]
    combine: str = "product"
    seed: int = 0
    base_dir: Path = dc_field(default_factory=Path.cwd)
    source: dict = dc_field(default_factory=dict)


@dataclass(frozen=True)
class Point:
    """One simulation of a sweep.

    Attributes
    ----------
    index : int
        Position in the sweep (0, 1, ...); the order of ``sweep.nc``.
    values : dict
        ``field -> value`` as put into the config (string with units or number).
    si : dict
        ``field -> value`` in SI units (numbers; strings for choice fields; tuples for pairs).
    config : Config
        The validated config of this point.
    key : str
        :func:`run_hash` of the config: the name of its files in the store.
    """

    index: int
    values: dict
    si: dict
    config: Config
    key: str

    def describe(self) -> str:
        """``"point 3 (tip.width = '5 nm', material.gb_enhancement = 100.0)"``."""
        items = ", ".join(f"{k} = {v!r}" for k, v in self.values.items())
        return f"point {self.index}" + (f" ({items})" if items else "")


def run_hash(config: Config) -> str:
    """SHA-256 (hex) of a config's canonical JSON (SI values) and the esmsim version.

    Material overrides enter as the material's SI parameter values, so ``"1e-14 m^2/s"`` and
    ``1e-14`` give the same hash. Fields that cannot change the numbers (``NOT_HASHED``: the
    output section, ``simulation.name``, ``numerics.workers`` and ``numerics.scheduler``) are left
    out. A saved microstructure file (``.nc``) enters by its content's SHA-256, not its path.
    """
    from .. import __version__

    values = copy.deepcopy(config.values)
    for sec, keys in NOT_HASHED.items():
        for k in keys:
            values[sec].pop(k, None)
    mat = config.material()
    values["material"] = {"name": mat.name, "parameters": {k: mat[k] for k in sorted(mat.keys())}}
    ms_file = values["microstructure"].get("file")
    if ms_file is not None and Path(ms_file).suffix in SAVED_SUFFIXES:
        values["microstructure"]["file"] = "sha256:" + hashlib.sha256(Path(ms_file).read_bytes()).hexdigest()
    elif ms_file is not None:
        values["microstructure"]["file"] = None  # a recipe's keys are already merged into the values
    text = json.dumps({"config": values, "esmsim_version": __version__}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# fields


@dataclass(frozen=True)
class _Target:
    """Where an axis field goes in the config, and how to read numbers for it."""

    path: tuple[str, ...]
    kind: str  # a config Field kind, or "parameter" for a material parameter
    dim: str | None = None
    unit: str | None = None
    example: str = ""


def _material_parameters(base: Mapping) -> dict:
    from ..materials import DEFAULT_MATERIAL, MATERIALS, get_material

    name = base.get("material", {}).get("name", DEFAULT_MATERIAL) if isinstance(base.get("material"), Mapping) \
        else DEFAULT_MATERIAL
    return get_material(name).parameters if name in MATERIALS else {}


def _all_fields(params) -> list[str]:
    out = [f"{s}.{k}" for s, fs in SCHEMA.items() for k, f in fs.items() if f.kind != "table"]
    return out + [f"material.{p}" for p in params]


def _target(name, where: str, params) -> _Target:
    """Resolve a dotted field name: ``section.key`` of the config schema or ``material.<parameter>``."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(where, f"got {name!r}; expected a dotted config field, e.g. 'tip.width'")
    parts = name.split(".")
    if len(parts) == 2 and parts[0] in SCHEMA and parts[1] in SCHEMA[parts[0]] \
            and SCHEMA[parts[0]][parts[1]].kind != "table":
        f = SCHEMA[parts[0]][parts[1]]
        return _Target(tuple(parts), f.kind, f.dim, f.unit, f.example)
    if parts[0] == "material" and (len(parts) == 2 or (len(parts) == 3 and parts[1] == "overrides")):
        p = parts[-1]
        if p in params:
            rec = params[p]
            return _Target(("material", "overrides", p), "parameter", None, rec.unit or "dimensionless",
                           f"{rec.value:g} {rec.unit}".strip())
    close = difflib.get_close_matches(name, _all_fields(params), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ConfigError(where, f"{name!r} is not a config field; {hint}fields are 'section.key' as in docs/config.md "
                             "(e.g. 'tip.width') or 'material.<parameter>' (e.g. 'material.gb_enhancement')")


def field_unit(name: str) -> str | None:
    """SI unit (pint syntax) of a sweep field's values, e.g. ``"m"`` for ``"tip.width"``; None if not numeric."""
    from ..config import _si_unit

    try:
        t = _target(name, name, _material_parameters({}))
    except ConfigError:
        return None
    if t.kind == "parameter":
        return t.unit if t.unit != "dimensionless" else "1"
    if t.kind in ("quantity", "pair", "points"):
        return t.unit or _si_unit(t.dim) or None
    if t.kind in ("angle", "angles3"):
        return "rad"
    return "1" if t.kind in ("float", "int") else None


def _number(value, target: _Target, where: str) -> float:
    """A number for a generated axis (start, stop, low, high) in the field's SI unit."""
    if target.kind == "quantity":
        return parse_quantity(value, field=where, dim=target.dim, unit=target.unit, example=target.example)
    if target.kind == "angle":
        return parse_quantity(value, field=where, unit="radian", example="30 deg")
    if target.kind == "parameter":
        return parse_quantity(value, field=where, unit=target.unit, example=target.example)
    if target.kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(where, f"got {value!r}; expected a number")
        return float(value)
    raise ConfigError(where, f"field {'.'.join(target.path)!r} is a {target.kind} field; only numeric fields "
                             "(quantities, angles, numbers, material parameters) take generated values; "
                             "list its values with values = [...]")


def _as_field_values(xs, target: _Target, where: str, *, sampled: bool = False) -> list:
    """Generated floats as config values: plain floats, integers for integer fields (sampled ones rounded)."""
    if target.kind == "int":
        ints = [int(round(x)) for x in xs]
        if sampled:
            return ints
        bad = [x for x, i in zip(xs, ints) if abs(x - i) > 1e-9 * max(1.0, abs(x))]
        if bad:
            raise ConfigError(where, f"gives {bad[0]:g} for the integer field {'.'.join(target.path)!r}; choose "
                                     "start, stop and num that give whole numbers, or use values = [...]")
        return ints
    return [float(x) for x in xs]


def _table(gen: str, raw, where: str, required: Sequence[str], optional: Mapping[str, Any]) -> dict:
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"got {raw!r}; expected a table {{ {', '.join(f'{k} = ...' for k in required)} }}")
    allowed = (*required, *optional)
    for k in raw:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{where}.{k}", f"unknown key of {gen}; {hint}allowed: {', '.join(allowed)}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(where, f"missing {', '.join(missing)}; {gen} needs {', '.join(required)}")
    return {**optional, **raw}


def _num(value, where: str, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(where, f"got {value!r}; expected an integer >= {low}")
    return value


def _flag(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, f"got {value!r}; expected true or false")
    return value


def _positive(lo: float, hi: float, where: str):
    if lo <= 0 or hi <= 0:
        raise ConfigError(where, f"got {lo:g} .. {hi:g}; log spacing needs positive values")


def _generated(gen: str, raw, target: _Target, where: str, rng) -> list:
    """Values of a one-field generator (linspace, logspace, random)."""
    if gen in ("linspace", "logspace"):
        t = _table(gen, raw, where, ("start", "stop", "num"), {})
        a, b = _number(t["start"], target, f"{where}.start"), _number(t["stop"], target, f"{where}.stop")
        n = _num(t["num"], f"{where}.num")
        if gen == "logspace":
            _positive(a, b, where)
            xs = np.geomspace(a, b, n)
        else:
            xs = np.linspace(a, b, n)
        return _as_field_values(xs, target, where)
    t = _table(gen, raw, where, ("low", "high", "num"), {"log": False})
    lo, hi = _number(t["low"], target, f"{where}.low"), _number(t["high"], target, f"{where}.high")
    n, log = _num(t["num"], f"{where}.num"), _flag(t["log"], f"{where}.log")
    if hi < lo:
        raise ConfigError(f"{where}.high", f"got {hi:g}; must be at least low = {lo:g}")
    if log:
        _positive(lo, hi, where)
        xs = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    else:
        xs = rng.uniform(lo, hi, n)
    return _as_field_values(xs, target, where, sampled=True)


def _latin_hypercube(raw, where: str, params, rng) -> Axis:
    from scipy.stats import qmc

    t = _table("latin_hypercube", raw, where, ("num", "fields"), {})
    n = _num(t["num"], f"{where}.num")
    fields = t["fields"]
    if not isinstance(fields, Mapping) or not fields:
        raise ConfigError(f"{where}.fields", f"got {fields!r}; expected a table of field = {{ low, high, log }}, e.g. "
                                             "fields.\"tip.width\" = { low = \"5 nm\", high = \"20 nm\" }")
    names, lows, highs, logs, targets = [], [], [], [], []
    for name, rng_spec in fields.items():
        fw = f"{where}.fields.{json.dumps(name)}"
        target = _target(name, fw, params)
        r = _table("a latin_hypercube field", rng_spec, fw, ("low", "high"), {"log": False})
        lo, hi = _number(r["low"], target, f"{fw}.low"), _number(r["high"], target, f"{fw}.high")
        log = _flag(r["log"], f"{fw}.log")
        if hi < lo:
            raise ConfigError(f"{fw}.high", f"got {hi:g}; must be at least low = {lo:g}")
        if log:
            _positive(lo, hi, fw)
        names.append(name)
        lows.append(math.log(lo) if log else lo)
        highs.append(math.log(hi) if log else hi)
        logs.append(log)
        targets.append(target)
    try:
        sampler = qmc.LatinHypercube(len(names), rng=rng)
    except TypeError:  # pragma: no cover - SciPy < 1.15
        sampler = qmc.LatinHypercube(len(names), seed=rng)
    unit = sampler.random(n)
    cols = []
    for j, (lo, hi, log, target) in enumerate(zip(lows, highs, logs, targets)):
        xs = lo + unit[:, j] * (hi - lo)
        cols.append(_as_field_values(np.exp(xs) if log else xs, target, f"{where}.fields.{names[j]}", sampled=True))
    return Axis(tuple(names), tuple(zip(*cols)), "latin_hypercube")


def _axis(i: int, raw, params, seed: int) -> Axis:
    where = f"axis[{i}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"got {raw!r}; expected a table [[axis]] with field and one of {', '.join(GENERATORS)}")
    gens = [g for g in GENERATORS if g in raw]
    for k in raw:
        if k not in (*GENERATORS, "field"):
            close = difflib.get_close_matches(str(k), [*GENERATORS, "field"], n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{where}.{k}", f"unknown key; {hint}allowed: field, {', '.join(GENERATORS)}")
    if len(gens) != 1:
        raise ConfigError(where, f"has {' and '.join(gens) if gens else 'no values'}; give exactly one of "
                                 f"{', '.join(GENERATORS)}")
    gen = gens[0]
    rng = np.random.default_rng([seed, i])
    if gen == "latin_hypercube":
        if "field" in raw:
            raise ConfigError(f"{where}.field", "not used with latin_hypercube: its fields are listed in "
                                                "latin_hypercube.fields")
        return _latin_hypercube(raw[gen], f"{where}.latin_hypercube", params, rng)
    if "field" not in raw:
        raise ConfigError(where, "missing field = \"section.key\", e.g. field = \"tip.width\"")
    name = raw["field"]
    target = _target(name, f"{where}.field", params)
    if gen == "values":
        vals = raw["values"]
        if not isinstance(vals, list):
            raise ConfigError(f"{where}.values", f"got {vals!r}; expected a list, e.g. values = "
                                                 f"[{target.example or 1!r}, ...]")
        if not vals:
            raise ConfigError(f"{where}.values", f"empty for {name!r}; give at least one value")
        return Axis((name,), tuple((v,) for v in vals), gen)
    vals = _generated(gen, raw[gen], target, f"{where}.{gen}", rng)
    return Axis((name,), tuple((v,) for v in vals), gen)


def parse_spec(data: Mapping, *, base_dir=None) -> SweepSpec:
    """Validate a sweep spec given as a mapping (as read from TOML).

    Parameters
    ----------
    data : mapping
        Keys ``base`` (a config table, or the path of a config TOML relative to ``base_dir``),
        ``axis`` (list of axis tables), ``combine`` (``"product"`` or ``"zip"``, default product),
        ``seed`` (int >= 0, default 0).
    base_dir : path, optional
        Folder of the spec (relative paths); default the current folder.

    Raises
    ------
    ConfigError
        Unknown key, unknown field, empty axis, zip of unequal lengths, bad value; the message names
        the axis or field, the value and what is allowed. The points' configs are checked by
        :func:`expand`.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("sweep", f"expected a table, got {type(data).__name__}")
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    for k in data:
        if k not in TOP_KEYS:
            close = difflib.get_close_matches(str(k), TOP_KEYS, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(str(k), f"unknown key of a sweep spec; {hint}allowed: {', '.join(TOP_KEYS)}")
    base = data.get("base", {})
    config_dir = base_dir
    if isinstance(base, str):
        path = (base_dir / base).resolve()
        base = _read_toml(path, "base")
        config_dir = path.parent
    if not isinstance(base, Mapping):
        raise ConfigError("base", f"got {base!r}; expected a [base] table (a simulation config) or the path of a "
                                  "config TOML")
    combine = data.get("combine", "product")
    if combine not in ("product", "zip"):
        raise ConfigError("combine", f"got {combine!r}; allowed: product, zip")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", f"got {seed!r}; expected an integer >= 0")
    raw_axes = data.get("axis")
    if raw_axes is None:
        raise ConfigError("axis", "no [[axis]] tables; a sweep needs at least one, e.g. [[axis]] field = "
                                  "\"tip.width\" values = [\"5 nm\", \"10 nm\"]")
    if not isinstance(raw_axes, list) or not raw_axes:
        raise ConfigError("axis", f"got {raw_axes!r}; expected [[axis]] tables")
    params = _material_parameters(base)
    axes = tuple(_axis(i, a, params, seed) for i, a in enumerate(raw_axes))
    seen = {}
    for i, ax in enumerate(axes):
        for f in ax.fields:
            t = _target(f, f"axis[{i}]", params).path
            if t in seen:
                raise ConfigError(f"axis[{i}]", f"sets {f!r}, which axis[{seen[t]}] sets too; each field on one "
                                                "axis (use combine = \"zip\" to vary fields together)")
            seen[t] = i
    if combine == "zip" and len({len(a) for a in axes}) > 1:
        lengths = ", ".join(f"axis[{i}] ({', '.join(a.fields)}) {len(a)} values" for i, a in enumerate(axes))
        raise ConfigError("combine", f"zip needs axes of equal length; got {lengths}")
    return SweepSpec(copy.deepcopy(dict(base)), axes, combine, seed, config_dir, copy.deepcopy(dict(data)))


def load_spec(path) -> SweepSpec:
    """Read and validate a sweep spec TOML file (``base = "..."`` is relative to its folder)."""
    path = Path(path)
    return parse_spec(_read_toml(path, str(path)), base_dir=path.parent)


def _set(data: dict, path: tuple[str, ...], value):
    node = data
    for k in path[:-1]:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            nxt = {} if nxt is None else dict(nxt) if isinstance(nxt, Mapping) else nxt
            node[k] = nxt
        node = nxt
    node[path[-1]] = value


def _si_value(config: Config, path: tuple[str, ...]):
    """The SI value of a config field (material parameters from the parsed material)."""
    if path[:2] == ("material", "overrides"):
        return float(config.material()[path[2]])
    return config.values[path[0]][path[1]]


def _validated(index: int, values: dict, data: dict, base_dir, params) -> Point:
    try:
        cfg = parse_config(data, base_dir=base_dir)
    except ConfigError as exc:
        items = ", ".join(f"{k} = {v!r}" for k, v in values.items())
        raise ConfigError(exc.field, f"{exc.message} (sweep point {index}: {items})") from None
    si = {name: _si_value(cfg, _target(name, name, params).path) for name in values}
    return Point(index, dict(values), si, cfg, run_hash(cfg))


def _check_unique(points: list[Point]):
    seen = {}
    for p in points:
        if p.key in seen:
            raise ConfigError("axis", f"{p.describe()} gives the same simulation as {seen[p.key].describe()}; "
                                      "a sweep runs each config once (vary simulation.seed for replicates)")
        seen[p.key] = p


def expand(spec) -> list[Point]:
    """The points of a sweep, each with its validated config.

    Parameters
    ----------
    spec : SweepSpec, mapping or path
        A parsed spec, the mapping of one (relative paths from the current folder), or a TOML file.

    Returns
    -------
    list of Point
        In sweep order: ``combine = "product"`` varies the last axis fastest; ``"zip"`` takes the
        axes' k-th values together.

    Raises
    ------
    ConfigError
        A malformed spec, or a point whose config fails validation (the message names the field,
        the value, what is allowed and the point's axis values).

    Examples
    --------
    >>> spec = {"base": {"scan": {"pixels": [8, 8]}},
    ...         "axis": [{"field": "material.gb_enhancement", "logspace": {"start": 1e2, "stop": 1e4, "num": 3}},
    ...                  {"field": "tip.width", "values": ["5 nm", "10 nm"]}]}
    >>> [(p.index, p.si["material.gb_enhancement"], p.si["tip.width"]) for p in expand(spec)][:3]
    [(0, 100.0, 5e-09), (1, 100.0, 1e-08), (2, 1000.0, 5e-09)]
    """
    if not isinstance(spec, SweepSpec):
        spec = parse_spec(spec) if isinstance(spec, Mapping) else load_spec(spec)
    params = _material_parameters(spec.base)
    if spec.combine == "zip":
        combos = [tuple(k for _ in spec.axes) for k in range(len(spec.axes[0]))]
    else:
        combos = list(itertools.product(*[range(len(a)) for a in spec.axes]))
    points = []
    for index, combo in enumerate(combos):
        data = copy.deepcopy(spec.base)
        values = {}
        for ax, k in zip(spec.axes, combo):
            for name, v in zip(ax.fields, ax.values[k]):
                _set(data, _target(name, name, params).path, copy.deepcopy(v))
                values[name] = v
        points.append(_validated(index, values, data, spec.base_dir, params))
    _check_unique(points)
    return points


def _leaves(data: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in data.items():
        if isinstance(v, Mapping):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def points_from_configs(configs: Sequence, *, base_dir=None) -> list[Point]:
    """Points of a sweep given as a list of configs (mappings as read from TOML, or :class:`Config`).

    The fields whose written values differ between the configs become the sweep's coordinates
    (``material.overrides.<parameter>`` for material parameters).

    Raises
    ------
    ConfigError
        An invalid config (named by its position) or two configs giving the same simulation.
    """
    if isinstance(configs, (str, Path, Mapping)) or not isinstance(configs, Sequence) or not configs:
        raise ConfigError("configs", f"got {type(configs).__name__}; expected a non-empty list of config dicts")
    parsed = []
    for i, c in enumerate(configs):
        if isinstance(c, Config):
            parsed.append(c)
            continue
        if not isinstance(c, Mapping):
            raise ConfigError(f"configs[{i}]", f"got {type(c).__name__}; expected a config dict or Config")
        try:
            parsed.append(parse_config(c, base_dir=base_dir))
        except ConfigError as exc:
            raise ConfigError(exc.field, f"{exc.message} (config {i} of the sweep)") from None
    leaves = [_leaves(c.source) for c in parsed]
    names = sorted({k for lv in leaves for k in lv})
    varying = [n for n in names if n != "microstructure.file" and len({json.dumps(lv.get(n), sort_keys=True, default=str)
                                                                       for lv in leaves}) > 1]
    points = []
    for i, (cfg, lv) in enumerate(zip(parsed, leaves)):
        values, si = {}, {}
        for n in varying:
            path = tuple(n.split("."))
            if len(path) == 3 and path[:2] == ("material", "overrides") or (len(path) == 2 and path[0] in SCHEMA
                                                                             and path[1] in SCHEMA[path[0]]):
                values[n] = lv.get(n)
                si[n] = _si_value(cfg, path) if (path[:2] != ("material", "overrides")
                                                 or path[2] in cfg.material()) else None
        points.append(Point(i, values, si, cfg, run_hash(cfg)))
    _check_unique(points)
    return points
