"""Images of a map as an Asylum Research-style Igor binary wave (``.ibw``, version 5).

One 3-D single-precision wave ``(x, y, channel)``, the way Asylum's software saves
an image: axis 0 is the fast scan axis x, axis 1 the slow axis y (index 0 at the
bottom), and each layer is one channel named by its dimension label. The pixel
pitch and the first pixel's position are the wave's x/y scaling in m. A wave note
holds ``key:value`` lines separated by ``\\r``: Asylum's keys (ScanSize,
FastScanSize, ScanPoints, DriveFrequency, InvOLS, SpringConstant, ...), the unit
of every channel and esmsim's provenance.

The layout follows WaveMetrics' Technical Note PTN003 ("Igor Binary Format"):
BinHeader5 (64 bytes), WaveHeader5 (320 bytes), the data in column-major order
(dimension 0 fastest), then the optional sections: dependency formula, note,
extended data units, extended dimension units, dimension labels (32-byte
NUL-padded fields, the first of each dimension its own label), string indices.
Only numpy and the standard library are needed (igor2 only reads).
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
import struct
from pathlib import Path
from typing import Mapping

import numpy as np

from .._errors import ParameterError
from ._dataset import atomic_path
from ._gwy import GWY_CHANNELS

__all__ = ["write_ibw"]

_BIN_HEADER = struct.Struct("<hhiiii4i4iiii")  # BinHeader5: 64 bytes
# WaveHeader5 with Igor's 2-byte packing and 4-byte pointers (written as zero): 320 bytes
_WAVE_HEADER = struct.Struct("<IIIihh6sh32siI4i4d4d4s16shhddI4I4II16ihhhBBIihhII")
_NT_FP32 = 2
_LABEL_BYTES = 32  # a dimension label: up to 31 bytes and a NUL
_MAX_NAME = 31  # MAX_WAVE_NAME5
_MAX_UNIT = 3  # MAX_UNIT_CHARS; longer units go to the extended units sections
_IGOR_EPOCH = datetime.datetime(1904, 1, 1)


# ----------------------------------------------------------------------------------------- inputs

def _finite_positive(value, field: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(field, f"got {value!r}; expected a length in m") from None
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(field, f"got {value!r}; must be a positive finite length in m")
    return v


def _layer(values, name: str) -> np.ndarray:
    """A channel as a float64 (y, x) array; complex, text and non-2-D data are refused."""
    field = f"data[{name!r}]"
    try:
        arr = np.asarray(values)
    except Exception as e:  # ragged nested lists and the like
        raise ParameterError(field, f"not an array ({type(e).__name__}: {e})") from None
    if np.iscomplexobj(arr):
        raise ParameterError(field, "complex values: write the real and imaginary parts (or amplitude and "
                                    "phase) as two channels")
    if arr.dtype.kind not in "biuf":
        raise ParameterError(field, f"dtype {arr.dtype}: expected real numbers")
    if arr.ndim != 2:
        raise ParameterError(field, f"shape {arr.shape}: expected a 2-D image (y, x)")
    if arr.size == 0:
        raise ParameterError(field, f"shape {arr.shape}: the image has no pixels")
    return arr.astype(float)


def _igor_unit(unit) -> str:
    unit = str(unit or "").strip()
    return "" if unit == "1" else ("deg" if unit == "°" else unit)


def _selection(channels, available: list[str], what: str) -> list[tuple[str, str]]:
    """``channels`` (None, names, or {name: label}) as a list of (name, label)."""
    if channels is None:
        return [(k, k) for k in available]
    if isinstance(channels, str):
        raise ParameterError("channels", f"got the string {channels!r}; expected a list of names or a "
                                         f"dict {{name: label}}")
    pairs = list(channels.items()) if isinstance(channels, Mapping) else [(c, c) for c in channels]
    if not pairs:
        raise ParameterError("channels", "empty: name at least one channel")
    for name, _ in pairs:
        if name not in available:
            close = difflib.get_close_matches(str(name), available, n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ParameterError("channels", f"no {what} {name!r}{hint} Available: {available}")
    return [(str(n), str(lab)) for n, lab in pairs]


def _coordinate_pitch(values, name: str) -> tuple[float | None, float]:
    """Pitch (None for a single pixel) and first value of a uniform coordinate in m."""
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        raise ParameterError(f"dataset.{name}", "the coordinate has non-finite values")
    if v.size < 2:
        return None, float(v[0])
    step = np.diff(v)
    pitch = float(v[-1] - v[0]) / (v.size - 1)
    if pitch == 0 or not np.allclose(step, pitch, rtol=1e-6, atol=0):
        raise ParameterError(f"dataset.{name}", f"pixels are not evenly spaced (steps {step.min():g} to "
                                                f"{step.max():g} m); an Igor wave has one pitch per axis")
    return pitch, float(v[0])


def _from_dataset(ds, channels):
    if "x" not in ds.coords or "y" not in ds.coords:
        raise ParameterError("dataset", "no x/y coordinates: expected a map on dims (y, x) with x, y in m")
    for axis in ("x", "y"):
        units = ds[axis].attrs.get("units", "m")
        if units != "m":
            raise ParameterError(f"dataset.{axis}", f"units {units!r}; expected 'm'")
    images = [k for k, v in ds.data_vars.items() if v.dims == ("y", "x")]
    table = {var: (unit, scale) for var, _, unit, scale in GWY_CHANNELS}
    if channels is None:
        chosen = [(var, var) for var, *_ in GWY_CHANNELS if var in images]
        if not chosen:
            raise ParameterError("channels", f"no image channel to write: none of "
                                             f"{[v for v, *_ in GWY_CHANNELS]} on dims (y, x); name some of "
                                             f"{images} with channels=")
    else:
        chosen = _selection(channels, images, "image variable on dims (y, x)")
    layers = []
    for var, label in chosen:
        if var in table:
            unit, scale = table[var]
        else:
            unit, scale = _igor_unit(ds[var].attrs.get("units", "")), 1.0
            if unit in ("rad", "radian", "radians"):  # Asylum phases are in degrees
                unit, scale = "deg", 180 / np.pi
        layers.append((label, _layer(ds[var].values, var) * scale, unit))
    (px, x0), (py, y0) = _coordinate_pitch(ds["x"].values, "x"), _coordinate_pitch(ds["y"].values, "y")
    fallback = px or py or float(ds.attrs.get("spacing_m", 0) or 0) or 1e-9
    x, y = ds["x"].values, ds["y"].values
    sizes = (abs(float(x[-1] - x[0])), abs(float(y[-1] - y[0])))  # first to last pixel centre
    return layers, (px or fallback, py or fallback), (x0, y0), sizes, _dataset_note(ds)


def _from_mapping(data: Mapping, channels, scan_size):
    from ._readers import _asylum_units

    if not data:
        raise ParameterError("data", "empty: expected at least one channel {name: 2-D array (y, x)}")
    if scan_size is None:
        raise ParameterError("scan_size", "required with a dict of arrays: (sx, sy) in m, first to last pixel "
                                          "centre")
    size = np.atleast_1d(np.asarray(scan_size, dtype=object))
    if size.ndim != 1 or size.size not in (1, 2):
        raise ParameterError("scan_size", f"got {scan_size!r}; expected (sx, sy) in m or one length")
    sx = _finite_positive(size[0], "scan_size")
    sy = _finite_positive(size[-1], "scan_size")
    data = {str(k): v for k, v in data.items()}
    layers, shape = [], None
    for name, label in _selection(channels, list(data), "channel"):
        value = data[name]
        arr = _layer(getattr(value, "values", value), name)
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise ParameterError(f"data[{name!r}]", f"shape {arr.shape}; the channels before it are {shape}")
        attrs = getattr(value, "attrs", None) or {}
        unit = _igor_unit(attrs.get("units")) if "units" in attrs else _asylum_units(label, "")
        layers.append((label, arr, unit))
    ny, nx = shape
    return layers, (sx / max(nx - 1, 1), sy / max(ny - 1, 1)), (0.0, 0.0), (sx, sy), {}


# ------------------------------------------------------------------------------------------- note

def _attr_dict(value) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value.removeprefix("json:"))
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _dataset_note(ds) -> dict:
    """Asylum note keys the attributes of an esmsim (or :func:`read_measurement`) dataset give."""
    a = ds.attrs
    cantilever = _attr_dict(a.get("cantilever"))
    config = _attr_dict(a.get("config_si"))
    scan = config.get("scan", {}) if isinstance(config.get("scan", {}), Mapping) else {}
    candidates = {
        "DriveFrequency": (a.get("band_center_Hz"), a.get("frequency_Hz"), a.get("drive_frequency")),
        "DriveAmplitude": (a.get("bias_amplitude_V"), a.get("drive_amplitude")),
        "InvOLS": (cantilever.get("invols"), a.get("invols")),
        "SpringConstant": (cantilever.get("spring_constant"), a.get("spring_constant")),
        "ScanRate": (scan.get("line_rate"), a.get("scan_rate")),
        "ScanAngle": (np.degrees(scan["rotation"]) if isinstance(scan.get("rotation"), (int, float)) else None,),
    }
    out = {}
    for key, values in candidates.items():
        for v in values:
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(float(v)):
                out[key] = float(v)
                break
    for key, attr in (("Seed", "seed"), ("Material", "material"), ("esmsimTitle", "title")):
        if a.get(attr) is not None and not isinstance(a.get(attr), (Mapping, list, tuple)):
            out[key] = a[attr]
    if "esmsim_version" in a:
        out["esmsimVersion"] = a["esmsim_version"]
    return out


def _note_value(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))  # the shortest text that reads back as the same double
    return str(v)


def _note_bytes(entries: dict) -> bytes:
    lines = []
    for key, value in entries.items():
        key, text = str(key), _note_value(value)
        if not key.strip() or ":" in key or any(c in key for c in "\r\n\0"):
            raise ParameterError("note", f"key {key!r}: must be non-empty, without ':', CR, LF or NUL")
        if any(c in text for c in "\r\n\0"):
            raise ParameterError("note", f"value of {key!r} ({text!r}) contains CR, LF or NUL")
        lines.append(f"{key}: {text}")  # "key: value", as most lines of an Asylum note
    text = "\r".join(lines) + "\r"  # Asylum's notes end with a CR too
    try:
        return text.encode("latin-1")  # Asylum notes are Latin-1
    except UnicodeEncodeError as e:
        raise ParameterError("note", f"{e.object[e.start:e.end]!r} cannot be written in Latin-1, the "
                                     f"encoding of Asylum notes") from None


# ---------------------------------------------------------------------------------------- writing

def _wave_name(path: Path) -> bytes:
    """An Igor standard wave name from the file name: letters, digits, '_'; starts with a letter."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", path.stem) or "wave"
    if not name[0].isalpha():
        name = "w" + name
    return name[:_MAX_NAME].encode("ascii")


def _label_bytes(label: str) -> bytes:
    try:
        raw = label.encode("latin-1")
    except UnicodeEncodeError:
        raise ParameterError("channels", f"label {label!r} cannot be written in Latin-1") from None
    if not raw or len(raw) > _LABEL_BYTES - 1 or b"\0" in raw:
        raise ParameterError("channels", f"label {label!r}: Igor dimension labels are 1 to "
                                         f"{_LABEL_BYTES - 1} bytes without NUL")
    return raw.ljust(_LABEL_BYTES, b"\0")


def _unit_fields(unit: str) -> tuple[bytes, bytes]:
    """(the 4-byte header field, the extended units text): units over 3 bytes go to the extended section."""
    raw = unit.encode("latin-1")
    return (raw.ljust(_MAX_UNIT + 1, b"\0"), b"") if len(raw) <= _MAX_UNIT else (b"\0" * (_MAX_UNIT + 1), raw)


def _checksum(header: bytes) -> int:
    """The value that makes the 16-bit sum of the header words zero (as a signed short)."""
    total = int(np.frombuffer(header, dtype="<u2").astype(np.int64).sum()) & 0xFFFF
    c = (-total) & 0xFFFF
    return c - 0x10000 if c >= 0x8000 else c


def _ibw_bytes(layers, pitch, origin, note: bytes, name: bytes) -> bytes:
    ny, nx = layers[0][1].shape
    data = np.stack([arr for _, arr, _ in layers]).astype("<f4")  # (channel, y, x) C order = Igor's (x, y, channel)
    units = {u for _, _, u in layers}
    data_unit, data_eunit = _unit_fields(units.pop() if len(units) == 1 else "")
    dim_units = [_unit_fields(u) for u in ("m", "m", "", "")]
    labels = b"\0" * _LABEL_BYTES + b"".join(_label_bytes(lab) for lab, _, _ in layers)
    now = int((datetime.datetime.now() - _IGOR_EPOCH).total_seconds())  # Igor dates: local seconds since 1904
    wave_header = _WAVE_HEADER.pack(
        0, now, now, data.size, _NT_FP32, 0, b"", 1, name, 0, 0,
        nx, ny, len(layers), 0,
        pitch[0], pitch[1], 1.0, 1.0,
        origin[0], origin[1], 0.0, 0.0,
        data_unit, b"".join(f for f, _ in dim_units),
        0, 0, 0.0, 0.0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        *([0] * 16),
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    sizes = dict(wfm=_WAVE_HEADER.size + data.nbytes, formula=0, note=len(note), dataE=len(data_eunit),
                 dimE=[len(e) for _, e in dim_units], labels=[0, 0, len(labels), 0])
    fields = (5, 0, sizes["wfm"], sizes["formula"], sizes["note"], sizes["dataE"], *sizes["dimE"],
              *sizes["labels"], 0, 0, 0)
    checksum = _checksum(_BIN_HEADER.pack(*fields) + wave_header)
    bin_header = _BIN_HEADER.pack(fields[0], checksum, *fields[2:])
    return b"".join([bin_header, wave_header, data.tobytes(), note, data_eunit,
                     *(e for _, e in dim_units), labels])


def write_ibw(data, path, *, channels=None, scan_size=None, note: Mapping | None = None) -> Path:
    """Write image channels as an Asylum Research-style Igor binary wave (``.ibw``), atomically.

    One 3-D float32 wave ``(x, y, channel)`` as Asylum saves images: axis 0 is the fast
    scan axis x, axis 1 the slow axis y; each layer is a channel named by its dimension
    label; the x/y scaling is the pixel pitch in m; the wave note holds Asylum's
    ``key:value`` metadata. Igor Pro, Asylum's software, Gwyddion, igor2 and
    :func:`esmsim.io.read_measurement` open it.

    Parameters
    ----------
    data : xarray.Dataset or dict
        A map from :func:`esmsim.simulation.run` (dims ``y, x``; coordinates ``x``, ``y`` in m
        at the pixel centres, evenly spaced), or a dict ``{name: 2-D array (y, x)}`` of
        channels of one shape (values may be DataArrays; their ``units`` attribute is used).
    path : path
        The ``.ibw`` file; its name (made an Igor wave name) names the wave.
    channels : sequence of str or dict, optional
        Which channels, in order, and their layer labels: names, or ``{name: label}``. Default for
        a dataset: the variables of :data:`esmsim.io._gwy.GWY_CHANNELS` it has (as
        :func:`esmsim.io.write_gwy`), labelled by their variable names; for a dict: all of it.
        Labels are 1 to 31 Latin-1 characters.
    scan_size : float or (float, float)
        Only with a dict: scan size (m) along x and y, from the first to the last pixel centre
        (Asylum's ``ScanSize``), so the pitch is ``scan_size / (N - 1)`` (``scan_size`` for one
        pixel). A dataset's pitch comes from its coordinates.
    note : dict, optional
        Extra ``key: value`` note entries; they replace the defaults of the same key. Keys
        without ``:``, CR or LF; values without CR or LF; Latin-1.

    Returns
    -------
    Path

    Raises
    ------
    ParameterError
        No channel; a channel not 2-D, complex or of another shape; a missing, non-positive or
        non-finite ``scan_size`` (or one given with a dataset); unevenly spaced coordinates; a
        label too long, repeated, or an Asylum channel name of another unit; a bad note entry.

    Notes
    -----
    Values are written as float32 (Asylum's type); NaN stays NaN (Igor shows it blank). Units:
    the wave has one data unit, written when all layers share it (else empty); every layer's unit
    is in the note as ``<label>Unit`` (after Asylum's ``UserCalcUnit``). Readers that take units
    from Asylum channel names (Height, Amplitude: m; Phase: deg; Frequency: Hz) need the labels
    to be such names: pass ``channels={"height": "HeightTrace", "sho_phase": "PhaseTrace"}``.
    Phases are written in degrees (``sho_phase``, and any variable in rad, are converted).

    Note entries from a dataset's attributes, where present: ``ScanSize``, ``FastScanSize``,
    ``SlowScanSize`` (m, first to last pixel centre: ``(N - 1) x pitch``, whereas esmsim's
    ``scan.size`` is ``N x pitch``), ``FastRatio``, ``SlowRatio``, ``ScanPoints``, ``ScanLines``,
    ``DriveFrequency`` (Hz: the band centre or the single frequency), ``DriveAmplitude`` (V),
    ``InvOLS`` (m/V), ``SpringConstant`` (N/m), ``ScanRate`` (Hz), ``ScanAngle`` (deg),
    ``Seed``, ``Material``, ``esmsimTitle`` and ``esmsimVersion``. The first pixel centre is the
    wave's x/y offset (``sfB``).

    References
    ----------
    WaveMetrics, Technical Note PTN003: Igor Binary Format (binary wave version 5).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from esmsim.io import read_measurement
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "img.ibw"
    >>> img = {"HeightTrace": np.zeros((4, 6)), "PhaseTrace": np.full((4, 6), 90.0)}
    >>> ds = read_measurement(write_ibw(img, p, scan_size=(50e-9, 30e-9)))
    >>> list(ds.data_vars), ds["PhaseTrace"].attrs["units"], ds.attrs["scan_size_x"], float(ds["x"][1])
    (['HeightTrace', 'PhaseTrace'], 'deg', 5e-08, 1e-08)
    """
    path = Path(path)
    if hasattr(data, "data_vars"):
        if scan_size is not None:
            raise ParameterError("scan_size", "only with a dict of arrays: a dataset's pitch comes from its "
                                              "x/y coordinates")
        layers, pitch, origin, (fast, slow), entries = _from_dataset(data, channels)
    elif isinstance(data, Mapping):
        layers, pitch, origin, (fast, slow), entries = _from_mapping(data, channels, scan_size)
    else:
        raise ParameterError("data", f"got {type(data).__name__}; expected an xarray Dataset (dims y, x) or a "
                                     f"dict {{name: 2-D array (y, x)}}")
    big = np.finfo(np.float32).max
    for label, arr, _ in layers:
        finite = arr[np.isfinite(arr)]
        if finite.size and np.abs(finite).max() > big:
            raise ParameterError("data", f"channel {label!r} has values up to {np.abs(finite).max():g}, beyond "
                                         f"single precision ({big:g}); rescale it")
    labels = [lab for lab, _, _ in layers]
    if len(set(labels)) != len(labels):
        raise ParameterError("channels", f"repeated labels in {labels}: each layer needs its own")
    from ._readers import _asylum_units

    for label, _, unit in layers:
        try:
            unit.encode("latin-1")
        except UnicodeEncodeError:
            raise ParameterError("data", f"channel {label!r}: unit {unit!r} cannot be written in Latin-1") from None
        asylum = _asylum_units(label, None)
        if asylum and unit and asylum != unit:
            raise ParameterError("channels", f"label {label!r} is an Asylum channel in {asylum!r}; this channel "
                                             f"is in {unit!r}, so readers would mislabel it")
    ny, nx = layers[0][1].shape
    scan = max(fast, slow)
    entries = {"ScanSize": scan, "FastScanSize": fast, "SlowScanSize": slow,
               "FastRatio": fast / scan if scan else 1.0, "SlowRatio": slow / scan if scan else 1.0,
               "ScanPoints": nx, "ScanLines": ny, **entries}
    entries.update({f"{label}Unit": unit for label, _, unit in layers})
    entries.setdefault("esmsimVersion", _version())
    entries.update(note or {})
    payload = _ibw_bytes(layers, pitch, origin, _note_bytes(entries), _wave_name(path))
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path


def _version() -> str:
    from .. import __version__

    return __version__
