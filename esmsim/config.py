"""Simulation configs: one TOML file (or dict) describes a whole simulation.

This module is an edge of the package: it is the only place (with the CLI)
that parses TOML and unit strings. Lengths, frequencies, voltages and material
values may be written with units (``"20 nm"``, ``"350 kHz"``,
``"1e-14 m^2/s"``); they are parsed with pint and converted to SI once. A plain
number is taken to be in SI units already.

Every mistake raises :class:`~esmsim._errors.ConfigError` whose message names
the field, the value and what is allowed, e.g.::

    tip.width: '10 kHz' has units of 1 / [time]; expected a length, e.g. '10 nm'

The sections and their fields are listed in ``SCHEMA`` and in docs/config.md.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ._errors import ConfigError, ParameterError
from .materials import MATERIALS, get_material

__all__ = ["Config", "load_config", "parse_config", "SCHEMA", "parse_quantity"]

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Field:
    """Specification of one config field."""

    kind: str  # quantity, angle, int, float, bool, str, choice, pair, ipair, vec3, points, angles3, table
    default: Any = None
    dim: str | None = None  # pint dimensionality for quantities, e.g. "[length]"
    example: str = ""
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    doc: str = ""
    unit: str | None = None  # quantities whose dimension is simplest given as a unit, e.g. "m/V**2"


_L, _F, _V = "[length]", "1 / [time]", "[mass] * [length] ** 2 / [current] / [time] ** 3"
_T = "[time]"
_N = "[mass] * [length] / [time] ** 2"

SCHEMA: dict[str, dict[str, Field]] = {
    "simulation": {
        "name": Field("str", "esmsim", doc="name used in file names and titles"),
        "seed": Field("int", 0, low=0, doc="seed of every random thing (microstructure, orientations)"),
    },
    "microstructure": {
        "file": Field("str", None, doc="recipe TOML whose [microstructure] table is used (keys here override it), "
                                       "or a saved microstructure (.nc); relative to this config's folder"),
        "generator": Field("choice", "columnar_voronoi",
                           choices=("columnar_voronoi", "columnar_laguerre", "columnar_seeds", "voronoi", "laguerre",
                                    "bicrystal"),
                           doc="columnar film from a 2-D Voronoi (Poisson) or Laguerre (lognormal sizes) tessellation "
                               "or chosen seeds; equiaxed 3-D Voronoi or Laguerre polycrystal; bicrystal with an "
                               "inclined boundary plane"),
        "seeds": Field("points", None, dim=_L, example="100 nm", low=0.0, high=1e-3,
                       doc="seed positions [[x, y], ...] (columnar_seeds)"),
        "euler_angles": Field("angles3", None, example="30 deg", low=-2 * math.pi, high=2 * math.pi,
                              doc="Bunge angles per grain [[phi1, Phi, phi2], ...] (columnar_seeds, bicrystal; "
                                  "default: texture)"),
        "size": Field("pair", ("320 nm", "320 nm"), dim=_L, example="320 nm", low=1e-9, high=1e-3,
                      doc="lateral size [Lx, Ly]"),
        "spacing": Field("quantity", "5 nm", dim=_L, example="5 nm", low=1e-10, high=1e-5, doc="voxel size in x and y"),
        "spacing_z": Field("quantity", None, dim=_L, example="5 nm", low=1e-10, high=1e-5,
                           doc="voxel size in depth of a voxel volume (default: spacing)"),
        "thickness": Field("quantity", "100 nm", dim=_L, example="100 nm", low=1e-9, high=1e-3, doc="film thickness"),
        "grain_size": Field("quantity", "100 nm", dim=_L, example="100 nm", low=1e-9, high=1e-3,
                            doc="mean equivalent grain diameter"),
        "grain_size_sigma": Field("float", 0.0, low=0.0, high=2.0,
                                  doc="std of ln(equivalent diameter), laguerre generators only"),
        "periodic": Field("bool", True, doc="periodic in x and y"),
        "grain_height_rms": Field("quantity", "1 nm", dim=_L, example="1 nm", low=0.0, high=1e-6,
                                  doc="rms height difference between grains (topography)"),
        "groove_depth": Field("quantity", "2 nm", dim=_L, example="2 nm", low=0.0, high=1e-6,
                              doc="depth of the grooves along the boundaries (topography)"),
        "groove_width": Field("quantity", "5 nm", dim=_L, example="5 nm", low=1e-10, high=1e-6,
                              doc="width of the grooves (topography)"),
        "texture": Field("choice", "random", choices=("random", "fibre"), doc="orientation distribution"),
        "fibre_axis": Field("vec3", (0.0, 0.0, 1.0), doc="crystal direction along the film normal (fibre texture)"),
        "fibre_spread": Field("angle", "0 deg", example="10 deg", low=0.0, high=math.pi / 2,
                              doc="standard deviation of the fibre axis' tilt"),
        "column_tilt": Field("angle", "0 deg", example="15 deg", low=0.0, high=math.radians(80),
                             doc="tilt of the columns from the film normal (columnar generators; makes a voxel volume)"),
        "column_tilt_azimuth": Field("angle", "0 deg", example="30 deg", low=-2 * math.pi, high=2 * math.pi,
                                     doc="direction of the column tilt, from x"),
        "partial_grain_fraction": Field("float", 0.0, low=0.0, high=0.99,
                                        doc="fraction of columns that do not span the film (buried or nucleated "
                                            "inside; columnar generators; makes a voxel volume)"),
        "boundary_normal": Field("vec3", (1.0, 0.0, 0.0), doc="boundary-plane normal of the bicrystal (sample frame)"),
        "pore_fraction": Field("float", 0.0, low=0.0, high=0.6, doc="pore volume fraction (makes a voxel volume)"),
        "pore_radius": Field("quantity", "10 nm", dim=_L, example="10 nm", low=1e-10, high=1e-5,
                             doc="mean pore radius"),
        "pore_radius_sigma": Field("float", 0.0, low=0.0, high=1.5, doc="std of ln(pore radius)"),
        "crack_fraction": Field("float", 0.0, low=0.0, high=1.0,
                                doc="fraction of grain boundaries opened as cracks (makes a voxel volume)"),
        "crack_opening": Field("quantity", "5 nm", dim=_L, example="5 nm", low=1e-10, high=1e-5,
                               doc="crack opening (at least one voxel)"),
    },
    "material": {
        "name": Field("choice", "LiCoO2", choices=tuple(MATERIALS), doc="parameter set"),
        "overrides": Field("table", {}, doc="parameter values to change, e.g. gb_enhancement = 1e3"),
    },
    "tip": {
        "profile": Field("choice", "lorentzian", choices=("lorentzian", "point_charge", "disk"), doc="field profile f(rho)"),
        "width": Field("quantity", "10 nm", dim=_L, example="10 nm", low=1e-10, high=1e-6,
                       doc="field width d (disk: contact radius)"),
        "contact_radius": Field("quantity", "0 nm", dim=_L, example="3 nm", low=0.0, high=1e-6,
                                doc="Hertz contact radius: the displacement is averaged over the contact with the "
                                    "Hertz pressure (0: the point under the tip)"),
        "radius": Field("quantity", "20 nm", dim=_L, example="20 nm", low=1e-9, high=1e-5,
                        doc="tip radius of curvature (Hertz contact: contact stiffness, band excitation)"),
        "force": Field("quantity", "20 nN", dim=_N, example="20 nN", low=1e-12, high=1e-5,
                       doc="normal load of the tip on the surface"),
        "condition": Field("choice", "potentiostatic", choices=("potentiostatic",),
                           doc="tip boundary condition (Butler-Volmer and galvanostatic come with the transport engine)"),
    },
    "excitation": {
        "frequency": Field("quantity", "350 kHz", dim=_F, example="350 kHz", low=1e-3, high=1e8, doc="AC frequency"),
        "amplitude": Field("quantity", "1 V", dim=_V, example="1 V", low=0.0, high=100.0, doc="AC bias amplitude"),
        "dc_bias": Field("quantity", "0 V", dim=_V, example="0.5 V", low=-100.0, high=100.0,
                         doc="DC bias offset (enters the electrostatic artefact)"),
        "mode": Field("choice", "single_frequency", choices=("single_frequency", "band_excitation",
                                                             "frequency_spectroscopy", "relaxation_spectroscopy",
                                                             "voltage_spectroscopy"),
                      doc="single-frequency map at excitation.frequency, a band-excitation map around the "
                          "contact resonance ([band_excitation], [cantilever]; excitation.frequency unused), "
                          "the response over frequency at chosen points ([spectroscopy]), the relaxation "
                          "after a DC pulse ([relaxation]) or hysteresis loops under a DC staircase ([voltage]), "
                          "over the scan pixels or at chosen points"),
    },
    "relaxation": {
        "voltage": Field("quantity", "1 V", dim=_V, example="1 V", low=-100.0, high=100.0,
                         doc="DC pulse amplitude V_p (the surface under the tip is held at C0 f V_p)"),
        "duration": Field("quantity", "10 ms", dim=_T, example="10 ms", low=1e-9, high=1e4, doc="pulse length"),
        "t_min": Field("quantity", "1 ms", dim=_T, example="1 ms", low=1e-9, high=1e4,
                       doc="first read-out time after the pulse"),
        "t_max": Field("quantity", "1 s", dim=_T, example="1 s", low=1e-9, high=1e5,
                       doc="last read-out time after the pulse"),
        "n": Field("int", 20, low=2, high=1000, doc="read-out times, log-spaced from t_min to t_max"),
        "after": Field("choice", "open_circuit", choices=("open_circuit", "grounded"),
                       doc="tip after the pulse: no flux (the Li only spreads) or c = 0 under the tip"),
        "points": Field("points", None, dim=_L, example="100 nm", low=0.0, high=1e-3,
                        doc="tip positions [[x, y], ...] on the film; default: a map over scan.pixels"),
        "calibration": Field("int", 13, low=3, high=200,
                             doc="homogeneous reference films (D_reference / 30 .. 10 D_reference) for the fit"),
    },
    "voltage": {
        "amplitude": Field("quantity", "1 V", dim=_V, example="1 V", low=1e-6, high=100.0,
                           doc="largest DC bias of the triangle 0 -> +V -> -V -> 0"),
        "steps": Field("int", 32, low=4, high=4096, doc="DC steps per cycle (a multiple of 4)"),
        "cycles": Field("int", 1, low=1, high=100, doc="cycles"),
        "step_time": Field("quantity", "1 ms", dim=_T, example="1 ms", low=1e-9, high=1e4,
                           doc="duration of each on step"),
        "off_time": Field("quantity", "1 ms", dim=_T, example="1 ms", low=1e-9, high=1e4,
                          doc="duration of the 0 V read step after each on step"),
        "j0": Field("quantity", "1 A/m**2", unit="A/m**2", example="1 A/m**2", low=1e-12, high=1e6,
                    doc="exchange current density of the tip-surface reaction"),
        "alpha_a": Field("float", 0.5, low=0.01, high=0.99, doc="anodic transfer coefficient"),
        "alpha_c": Field("float", 0.5, low=0.01, high=0.99, doc="cathodic transfer coefficient"),
        "temperature": Field("quantity", "298.15 K", unit="K", example="298.15 K", low=1.0, high=2000.0,
                             doc="temperature"),
        "f_min": Field("float", 0.2, low=1e-3, high=1.0,
                       doc="surface cells where the tip profile is below this are no-flux"),
        "points": Field("points", None, dim=_L, example="100 nm", low=0.0, high=1e-3,
                        doc="tip positions [[x, y], ...] on the film; default: a map over scan.pixels"),
    },
    "spectroscopy": {
        "points": Field("points", None, dim=_L, example="100 nm", low=0.0, high=1e-3,
                        doc="tip positions [[x, y], ...] on the film (frequency_spectroscopy); each is moved to the "
                            "nearest voxel centre"),
        "f_min": Field("quantity", "1 Hz", dim=_F, example="1 Hz", low=1e-3, high=1e8, doc="lowest frequency"),
        "f_max": Field("quantity", "1 MHz", dim=_F, example="1 MHz", low=1e-3, high=1e8, doc="highest frequency"),
        "n": Field("int", 25, low=1, high=1000, doc="frequencies, log-spaced from f_min to f_max"),
    },
    "cantilever": {
        "spring_constant": Field("quantity", "3 N/m", unit="N/m", example="3 N/m", low=1e-3, high=1e4,
                                 doc="static spring constant k_c"),
        "free_resonance": Field("quantity", "80 kHz", dim=_F, example="80 kHz", low=1e2, high=1e8,
                                doc="first free flexural resonance"),
        "quality_factor": Field("float", 100.0, low=1.0, high=1e5, doc="quality factor of the contact resonance"),
        "invols": Field("quantity", "50 nm/V", unit="m/V", example="50 nm/V", low=1e-12, high=1e-3,
                        doc="inverse optical lever sensitivity (deflection per detector volt)"),
        "mode": Field("int", 1, low=1, high=3, doc="contact mode used for band excitation"),
    },
    "band_excitation": {
        "center": Field("quantity", "auto", dim=_F, example="350 kHz", low=1e2, high=1e8,
                        doc="band centre, or 'auto': the contact resonance of the flat surface"),
        "bandwidth": Field("quantity", "40 kHz", dim=_F, example="40 kHz", low=1.0, high=1e8, doc="drive band width"),
        "bins": Field("int", 64, low=8, high=4096, doc="frequency bins across the band"),
    },
    "artefacts": {
        "detector_noise": Field("quantity", "0 fm/Hz**0.5", unit="m/Hz**0.5", example="100 fm/Hz**0.5", low=0.0,
                                high=1e-6, doc="white deflection-detector noise density"),
        "thermal_noise": Field("bool", False, doc="cantilever thermal motion (contact mode as an SHO)"),
        "temperature": Field("quantity", "300 K", unit="K", example="300 K", low=0.0, high=2000.0,
                             doc="temperature of the thermal noise"),
        "electrostatic": Field("quantity", "0 pm/V**2", unit="m/V**2", example="1 pm/V**2", low=0.0, high=1e-6,
                               doc="electrostatic coupling k_es: deflection k_es (V_dc - V_cpd) V_ac"),
        "electrostatic_phase": Field("angle", "0 deg", example="30 deg", low=-2 * math.pi, high=2 * math.pi,
                                     doc="phase of the electrostatic deflection"),
        "contact_potential": Field("quantity", "0 V", dim=_V, example="0.5 V", low=-10.0, high=10.0,
                                   doc="tip-sample contact potential difference V_cpd"),
        "topography_crosstalk": Field("bool", False,
                                      doc="contact stiffness (f0, transfer) follows the local surface curvature"),
        "drift": Field("pair", ("0 nm/s", "0 nm/s"), dim="[length] / [time]", example="0.05 nm/s", low=-1e-6,
                       high=1e-6, doc="lateral drift velocity [vx, vy]"),
        "line_offset": Field("quantity", "0 nm", dim=_L, example="0.3 nm", low=0.0, high=1e-6,
                             doc="standard deviation of the height offset of each scan line"),
        "line_gain": Field("float", 0.0, low=0.0, high=1.0,
                           doc="standard deviation of the relative response gain of each scan line"),
    },
    "mechanics": {
        "vegard": Field("choice", "isotropic", choices=("isotropic", "tensor"),
                        doc="Vegard strain: trace(beta)/3 with the Mindlin kernel, or each grain's rotated tensor "
                            "(Boussinesq reciprocity; docs/mechanics.md)"),
        "lateral": Field("bool", False,
                         doc="also the in-plane surface displacement (u_x, u_y) along the scan axes under the tip (lateral / vector "
                             "ESM; trace(beta)/3 with the Mogi in-plane kernel): lateral_x/y_* variables"),
    },
    "scan": {
        "pixels": Field("ipair", "auto", low=1, high=4096,
                        doc="map size [nx, ny] (tip positions), or 'auto': one per voxel, at most 64 per axis"),
        "window": Field("quantity", "auto", dim=_L, example="30 nm", low=1e-9, high=1e-4,
                        doc="lateral half-width of the solve window around the tip, or 'auto'"),
        "bottom": Field("choice", "blocking", choices=("blocking", "reservoir"), doc="film bottom"),
        "size": Field("pair", None, dim=_L, example="200 nm", low=1e-9, high=1e-3,
                      doc="scan size [Lx, Ly], or 'auto': the whole film with tips on voxel centres"),
        "center": Field("pair", None, dim=_L, example="160 nm", low=-1e-3, high=1e-3,
                        doc="scan centre on the film [x, y], or 'auto': the film centre"),
        "rotation": Field("angle", "0 deg", example="30 deg", low=-2 * math.pi, high=2 * math.pi,
                          doc="scan angle: the scan's x axis from the film's x axis, counter-clockwise"),
        "tips": Field("choice", "interpolated", choices=("interpolated", "solved"),
                      doc="a scan other than the default: tips interpolated between voxel-centred solves, or each "
                          "solved where it is (accurate near boundaries, about twice the cost)"),
        "retrace": Field("bool", False, doc="band excitation: also record the retrace pass"),
        "line_rate": Field("quantity", "1 Hz", dim=_F, example="1 Hz", low=1e-4, high=1e4,
                           doc="scan lines per second (acquisition time, for drift)"),
    },
    "numerics": {
        "z_growth": Field("float", 1.3, low=1.01, high=2.0, doc="growth ratio of graded z cells"),
        "z_first": Field("float", 0.125, low=0.01, high=1.0, doc="first z cell / thinnest diffusion length"),
        "tile": Field("int", 8, low=1, high=64, doc="tip positions per tile side (one factorisation per tile)"),
        "engine": Field("choice", "esmsim", choices=("esmsim", "fipy"),
                        doc="transport solver of the map's windows: 'fipy' is an independent check (one FiPy solve "
                            "per tip; neutral boundaries, Lorentzian or point-charge tip, blocking bottom)"),
        "workers": Field("int", 0, low=0, high=1024, doc="worker processes (0: one per CPU)"),
        "scheduler": Field("str", None, doc="address of a Dask scheduler (e.g. 'tcp://10.0.0.1:8786') to run "
                                            "the map's tiles on instead of local processes (extra 'cluster')"),
    },
    "output": {
        "directory": Field("str", "esmsim-out", doc="output folder"),
        "figure": Field("bool", True, doc="write the PNG figure"),
        "usid": Field("bool", True, doc="band excitation: also write a USID HDF5 file (pyUSID/BGlib)"),
        "gwy": Field("bool", False, doc="also write the image channels as a Gwyddion .gwy file (extra 'io')"),
        "ibw": Field("bool", False, doc="also write the image channels as an Asylum-style Igor binary wave .ibw"),
    },
}

_UREG = None


def _ureg():
    global _UREG
    if _UREG is None:
        import pint

        _UREG = pint.UnitRegistry()
    return _UREG


def parse_quantity(value, *, field: str, dim: str | None = None, unit: str | None = None, example: str = "") -> float:
    """Convert ``value`` (number or unit string) to a float in SI units, or raise ConfigError.

    Parameters
    ----------
    value : float or str
        A number (taken as SI) or a string such as ``"20 nm"``.
    field : str
        Dotted field name for error messages.
    dim : str, optional
        Required pint dimensionality, e.g. ``"[length]"``.
    unit : str, optional
        Target unit (pint syntax) instead of SI base units, e.g. ``"m**2/s"``.
    example : str
        An example of a valid value for the message.
    """
    if isinstance(value, bool):
        raise ConfigError(field, f"got {value!r}; expected a number or a string with units, e.g. {example!r}")
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v):
            raise ConfigError(field, f"got {value!r}; expected a finite number")
        return v
    if not isinstance(value, str):
        raise ConfigError(field, f"got {value!r} ({type(value).__name__}); expected a string with units, e.g. {example!r}")
    ureg = _ureg()
    try:
        q = ureg.Quantity(value.strip())
    except Exception as exc:  # pint raises many types (undefined unit, tokenizer, syntax) for bad strings
        raise ConfigError(field, f"cannot read {value!r} as a quantity ({exc}); write e.g. {example!r}") from None
    target = ureg.Quantity(1, unit if unit else "") if unit is not None else None
    want = target.dimensionality if target is not None else (ureg.get_dimensionality(dim) if dim else None)
    if want is not None and q.dimensionality != want:
        have = str(q.dimensionality) if str(q.dimensionality) != "dimensionless" else "no units"
        what = {_L: "a length", _F: "a frequency", _V: "a voltage"}.get(dim) if unit is None else f"a value in {unit}"
        what = what or f"units of {want}"
        raise ConfigError(field, f"{value!r} has {have if have == 'no units' else 'units of ' + have}; "
                                 f"expected {what}" + (f", e.g. {example!r}" if example else ""))
    mag = q.to(unit).magnitude if unit is not None else q.to_base_units().magnitude
    if not math.isfinite(float(mag)):
        raise ConfigError(field, f"got {value!r}; expected a finite value")
    return float(mag)


def _unknown(field: str, key: str, allowed) -> ConfigError:
    close = difflib.get_close_matches(key, list(allowed), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return ConfigError(f"{field}{key}" if field else key, f"unknown {'key' if field else 'section'}; {hint}"
                                                          f"allowed: {', '.join(allowed)}")


def _range(field: str, v: float, spec: Field, unit: str = "") -> float:
    lo = -math.inf if spec.low is None else spec.low
    hi = math.inf if spec.high is None else spec.high
    if not (lo <= v <= hi):
        u = f" {unit}" if unit else ""
        raise ConfigError(field, f"got {v:g}{u}; allowed range is [{lo:g}, {hi:g}]{u}")
    return v


def _si_unit(dim):
    return {_L: "m", _F: "Hz", _V: "V", _N: "N"}.get(dim, "")


def _parse_field(name: str, value, spec: Field):
    k = spec.kind
    if value is None and spec.default is None:
        return None
    if k == "quantity":
        if value == "auto":
            if spec.default == "auto":
                return None
            raise ConfigError(name, f"'auto' is not allowed here; give a value such as {spec.example!r}")
        return _range(name, parse_quantity(value, field=name, dim=spec.dim, unit=spec.unit, example=spec.example), spec,
                      spec.unit or _si_unit(spec.dim))
    if k in ("points", "angles3"):
        width = 2 if k == "points" else 3
        if (not isinstance(value, (list, tuple)) or not value
                or not all(isinstance(r, (list, tuple)) and len(r) == width for r in value)):
            raise ConfigError(name, f"got {value!r}; expected a list of [{', '.join([spec.example] * width)}] rows")
        conv = ((lambda v, f: parse_quantity(v, field=f, dim=spec.dim, example=spec.example)) if k == "points"
                else (lambda v, f: parse_quantity(v, field=f, unit="radian", example=spec.example)))
        return tuple(tuple(_range(f"{name}[{i}][{j}]", conv(v, f"{name}[{i}][{j}]"), spec) for j, v in enumerate(r))
                     for i, r in enumerate(value))
    if k == "angle":
        return _range(name, parse_quantity(value, field=name, unit="radian", example=spec.example), spec, "rad")
    if k == "vec3":
        if (not isinstance(value, (list, tuple)) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or not any(value)):
            raise ConfigError(name, f"got {value!r}; expected three numbers, not all zero, e.g. [0, 0, 1]")
        return tuple(float(v) for v in value)
    if k == "pair":
        if value == "auto" and spec.default is None:
            return None
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(name, f"got {value!r}; expected a list of two values, e.g. [{spec.example!r}, {spec.example!r}]")
        return tuple(_range(f"{name}[{i}]", parse_quantity(v, field=f"{name}[{i}]", dim=spec.dim, example=spec.example),
                            spec, _si_unit(spec.dim)) for i, v in enumerate(value))
    if k == "ipair":
        if value == "auto" and spec.default == "auto":
            return None
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(name, f"got {value!r}; expected a list of two integers, e.g. [64, 64]")
        return tuple(int(_range(f"{name}[{i}]", v, spec)) for i, v in enumerate(value))
    if k == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(name, f"got {value!r}; expected an integer")
        return int(_range(name, value, spec))
    if k == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, f"got {value!r}; expected a number")
        return float(_range(name, float(value), spec))
    if k == "bool":
        if not isinstance(value, bool):
            raise ConfigError(name, f"got {value!r}; expected true or false")
        return value
    if k == "str":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(name, f"got {value!r}; expected a non-empty string")
        return value
    if k == "choice":
        if value not in spec.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in spec.choices], n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(name, f"got {value!r}; {hint}allowed: {', '.join(map(str, spec.choices))}")
        return value
    if k == "table":
        if not isinstance(value, Mapping):
            raise ConfigError(name, f"got {value!r}; expected a table of key = value")
        return dict(value)
    raise AssertionError(k)  # pragma: no cover


@dataclass(frozen=True)
class Config:
    """A validated simulation config: every value in SI units.

    Attributes
    ----------
    values : dict
        ``values[section][field]`` in SI (lengths m, frequencies Hz, voltages V);
        ``None`` for fields left on ``"auto"``.
    source : dict
        The config as written, with a referenced recipe file merged in (for provenance).
    """

    values: dict
    source: dict

    def __getitem__(self, section: str) -> dict:
        return self.values[section]

    def material(self):
        """The :class:`~esmsim.materials.Material` with the overrides applied."""
        return _material(self.values["material"])

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> "Config":
        """A new config with some fields replaced (values as they would be written in TOML)."""
        src = copy.deepcopy(self.source)
        for sec, fields in overrides.items():
            src.setdefault(sec, {}).update(fields)
        return parse_config(src)


def _material(section):
    name = section["name"]
    mat = get_material(name)
    values = {}
    for key, raw in section["overrides"].items():
        field = f"material.overrides.{key}"
        if key not in mat:
            raise ConfigError(field, mat.unknown_key_message(key))
        rec = mat.parameters[key]
        if isinstance(raw, str):
            values[key] = parse_quantity(raw, field=field, unit=rec.unit or "dimensionless", example=f"{rec.value:g} {rec.unit}")
        else:
            values[key] = raw
    try:
        return mat.replace(**values)
    except ParameterError as exc:
        raise ConfigError(exc.field.replace("material.", "material.overrides.", 1), exc.message) from None


def _read_toml(path: Path, field: str) -> dict:
    """Read and parse a TOML file; a missing file or bad TOML is a ConfigError on ``field``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(field, f"cannot read {str(path)!r} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(field, f"{str(path)!r} is not valid TOML: {exc}") from None


SAVED_SUFFIXES = (".nc", ".nc4", ".h5")  # microstructure.file of these suffixes is a saved film


def _resolve_recipe(data: Mapping, base_dir: Path) -> dict:
    """Merge the [microstructure] table of ``microstructure.file`` under the config's own keys."""
    section = data.get("microstructure")
    if not isinstance(section, Mapping) or "file" not in section:
        return dict(data)
    ref = section["file"]
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError("microstructure.file", f"got {ref!r}; expected the path of a recipe TOML file")
    path = (base_dir / ref).resolve()
    if path.suffix in SAVED_SUFFIXES:
        others = [k for k in section if k != "file"]
        if others:
            raise ConfigError(f"microstructure.{others[0]}", "not allowed with a saved microstructure file "
                                                             f"({path.name} defines the whole microstructure)")
        merged = dict(data)
        merged["microstructure"] = {"file": str(path)}
        return merged
    recipe = _read_toml(path, "microstructure.file")
    table = recipe.get("microstructure")
    if not isinstance(table, Mapping):
        raise ConfigError("microstructure.file", f"{str(path)!r} has no [microstructure] table")
    if "file" in table:
        raise ConfigError("microstructure.file", f"{str(path)!r} refers to another file; one level only")
    merged = dict(data)
    merged["microstructure"] = {**table, **{k: v for k, v in section.items() if k != "file"}, "file": str(path)}
    return merged


def parse_config(data: Mapping, *, base_dir=None) -> Config:
    """Validate a config given as a nested mapping (as read from TOML).

    Missing sections and fields take their defaults (``SCHEMA``). A
    ``microstructure.file`` reference is read (relative to ``base_dir``,
    default the current folder) and its ``[microstructure]`` table used under
    the keys given here.

    Raises
    ------
    ConfigError
        Unknown section or key (with suggestions), wrong type, wrong units or value out of range.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("config", f"expected a table, got {type(data).__name__}")
    data = _resolve_recipe(data, Path(base_dir) if base_dir is not None else Path.cwd())
    source = copy.deepcopy(dict(data))  # with the recipe merged in: self-contained provenance
    values = {}
    for sec in data:
        if sec not in SCHEMA:
            raise _unknown("", sec, SCHEMA)
        if not isinstance(data[sec], Mapping):
            raise ConfigError(sec, f"expected a table [{sec}], got {data[sec]!r}")
    for sec, fields in SCHEMA.items():
        given = data.get(sec, {})
        for key in given:
            if key not in fields:
                raise _unknown(f"{sec}.", key, fields)
        values[sec] = {}
        for key, spec in fields.items():
            raw = given.get(key, spec.default)
            values[sec][key] = _parse_field(f"{sec}.{key}", raw, spec)
    ms = values["microstructure"]
    if ms["file"] is not None and Path(ms["file"]).suffix in SAVED_SUFFIXES:
        from .io import load_microstructure

        try:
            saved = load_microstructure(ms["file"])
        except ParameterError as exc:
            raise ConfigError(exc.field, exc.message) from None
        ms.update(size=saved.extent[:2], spacing=saved.spacing[0], thickness=saved.thickness, periodic=saved.periodic,
                  generator=saved.recipe.get("generator", "saved"))
    if (ms["generator"] == "columnar_seeds") != (ms["seeds"] is not None):
        raise ConfigError("microstructure.seeds", "required with generator = 'columnar_seeds' and only used there")
    if ms["euler_angles"] is not None and ms["seeds"] is not None and len(ms["euler_angles"]) != len(ms["seeds"]):
        raise ConfigError("microstructure.euler_angles", f"{len(ms['euler_angles'])} rows for {len(ms['seeds'])} seeds")
    columnar = ms["generator"].startswith("columnar") or ms["generator"] == "saved"
    for key in ("column_tilt", "partial_grain_fraction"):
        if ms[key] and not columnar:
            raise ConfigError(f"microstructure.{key}", f"only used with the columnar generators, not "
                                                       f"{ms['generator']!r}")
    if ms["generator"] in ("columnar_voronoi", "voronoi") and ms["grain_size_sigma"] != 0:
        raise ConfigError("microstructure.grain_size_sigma", f"got {ms['grain_size_sigma']:g}; only used with "
                                                             "a laguerre generator (Voronoi sizes are not set)")
    cfg = Config(values, source)
    cfg.material()  # validate the overrides now
    if ms["spacing"] * 2 > min(ms["size"]):
        raise ConfigError("microstructure.spacing", f"got {ms['spacing']:g} m; must be at most half the film size "
                                                    f"{min(ms['size']):g} m")
    n_pix = [int(round(s / ms["spacing"])) for s in ms["size"]]
    if values["scan"]["pixels"] is None:
        values["scan"]["pixels"] = tuple(min(n, 64) for n in n_pix)
    sp = values["spectroscopy"]
    if values["excitation"]["mode"] == "frequency_spectroscopy":
        if sp["points"] is None:
            raise ConfigError("spectroscopy.points", "required with excitation.mode = 'frequency_spectroscopy', "
                                                     "e.g. [['100 nm', '120 nm']]")
        if sp["f_max"] < sp["f_min"]:
            raise ConfigError("spectroscopy.f_max", f"got {sp['f_max']:g} Hz; must be at least f_min "
                                                    f"{sp['f_min']:g} Hz")
        for i, (x, y) in enumerate(sp["points"]):
            if x > ms["size"][0] or y > ms["size"][1]:
                raise ConfigError(f"spectroscopy.points[{i}]", f"({x:g}, {y:g}) m lies outside the film "
                                                               f"{ms['size'][0]:g} x {ms['size'][1]:g} m")
    rx = values["relaxation"]
    if values["excitation"]["mode"] == "relaxation_spectroscopy":
        if rx["t_max"] <= rx["t_min"]:
            raise ConfigError("relaxation.t_max", f"got {rx['t_max']:g} s; must exceed t_min {rx['t_min']:g} s")
        if rx["voltage"] == 0:
            raise ConfigError("relaxation.voltage", "got 0 V; the pulse needs a non-zero amplitude")
        for i, (x, y) in enumerate(rx["points"] or []):
            if x > ms["size"][0] or y > ms["size"][1]:
                raise ConfigError(f"relaxation.points[{i}]", f"({x:g}, {y:g}) m lies outside the film "
                                                             f"{ms['size'][0]:g} x {ms['size'][1]:g} m")
    vs = values["voltage"]
    if values["excitation"]["mode"] == "voltage_spectroscopy":
        if vs["steps"] % 4:
            raise ConfigError("voltage.steps", f"got {vs['steps']}; must be a multiple of 4 (the triangle's quarters)")
        for i, (x, y) in enumerate(vs["points"] or []):
            if x > ms["size"][0] or y > ms["size"][1]:
                raise ConfigError(f"voltage.points[{i}]", f"({x:g}, {y:g}) m lies outside the film "
                                                          f"{ms['size'][0]:g} x {ms['size'][1]:g} m")
    voxel_scan = values["scan"]["size"] is None and values["scan"]["center"] is None and not values["scan"]["rotation"]
    for i, (p, n) in enumerate(zip(values["scan"]["pixels"], n_pix)):
        if p > n and voxel_scan:
            raise ConfigError(f"scan.pixels[{i}]", f"got {p}; the film has only {n} voxels along this axis "
                                                   f"(size / spacing), so at most {n} tip positions")
    if cfg.material()["gb_width"] >= ms["spacing"]:
        raise ConfigError("microstructure.spacing", f"got {ms['spacing']:g} m; must exceed the grain-boundary width "
                                                    f"{cfg.material()['gb_width']:g} m")
    return cfg


def load_config(path) -> Config:
    """Read and validate a TOML config file.

    Raises
    ------
    ConfigError
        The file cannot be read, is not valid TOML, or fails validation.
    """
    path = Path(path)
    return parse_config(_read_toml(path, str(path)), base_dir=path.parent)
