"""Measured SPM files as labelled datasets: one reader, the vendor formats ESM users meet.

:func:`read_measurement` returns an :class:`xarray.Dataset` with one data
variable per channel, whatever the file format:

* images on dimensions ``("y", "x")``, spectroscopy with extra dimensions
  after them (``("y", "x", "voltage")``, ``("y", "x", "frequency")``);
* coordinates ``x`` and ``y`` in metres at the pixel centres, starting at 0
  (the file's own offset of the first pixel is kept as the dataset attributes
  ``x_offset``/``y_offset``); ``y`` increases upwards, as the image is shown
  by the instrument software;
* the unit of every variable and coordinate in its ``units`` attribute, as the
  file states it (phase stays in degrees when the file has degrees:
  :func:`phase_to_radians` converts);
* instrument metadata in the dataset attributes where the file has them:
  ``drive_frequency`` (Hz), ``drive_amplitude`` (V), ``invols`` (m/V),
  ``spring_constant`` (N/m), ``scan_size_x``/``scan_size_y`` (m), plus
  ``source_file``, ``format`` and the raw key/value pairs as
  ``instrument_metadata`` (a dict of strings).

The heavy optional readers (igor2, gwyfile, tifffile) are imported when a file
of their kind is read; h5py and xarray when any file is read.
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
import struct
from pathlib import Path

import numpy as np

from .._errors import EsmsimError, ParameterError

__all__ = ["read_measurement", "phase_to_radians", "ReaderError", "READER_KINDS", "ASYLUM_CHANNELS"]


class ReaderError(EsmsimError, ValueError):
    """A measured file that cannot be read: truncated, not of the expected format, or without data.

    Parameters
    ----------
    path : path
        The file.
    message : str
        What was expected and what was found.
    """

    def __init__(self, path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


#: Formats :func:`read_measurement` reads, by ``kind`` (``"hdf5"``: USID or NSID, whichever the file holds).
READER_KINDS = ("ibw", "gwy", "usid", "nsid", "hdf5", "tiff", "npy", "npz")
_EXTENSIONS = {".ibw": "ibw", ".gwy": "gwy", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5",
               ".tif": "tiff", ".tiff": "tiff", ".npy": "npy", ".npz": "npz"}

#: Asylum Research channel names (without the Trace/Retrace suffix) and their units.
ASYLUM_CHANNELS = {
    "Height": "m", "ZSensor": "m", "Deflection": "m", "Amplitude": "m", "Amplitude1": "m", "Amplitude2": "m",
    "Phase": "deg", "Phase1": "deg", "Phase2": "deg", "Frequency": "Hz", "Frequency1": "Hz", "Frequency2": "Hz",
    "Inphase": "m", "Inphase1": "m", "Inphase2": "m", "Quadrature": "m", "Quadrature1": "m", "Quadrature2": "m",
    "Lateral": "V", "UserIn0": "V", "UserIn1": "V", "UserIn2": "V", "UserCalc": "", "UserCalcB": "",
    "Current": "A", "Current2": "A", "Potential": "V", "Bias": "V", "Drive": "V", "Dissipation": "W", "Count": "",
    "Capacitance": "F", "CapacitancePhase": "deg",
}
_SUFFIXES = ("Trace", "Retrace", "")
_VOCABULARY = sorted({f"{nap}{base}{s}" for base in ASYLUM_CHANNELS for s in _SUFFIXES for nap in ("", "Nap")},
                     key=len, reverse=True)

#: Dataset attribute -> metadata keys that give it (Asylum notes, esmsim/BGlib USID attributes), in SI units.
_METADATA_KEYS = {
    "drive_frequency": ("DriveFrequency", "BE_center_frequency_[Hz]", "drive_frequency"),
    "drive_amplitude": ("DriveAmplitude", "AC_amplitude_[V]", "BE_amplitude_[V]", "drive_amplitude"),
    "invols": ("InvOLS", "InvOLS_[m/V]", "invols"),
    "spring_constant": ("SpringConstant", "spring_constant_[N/m]", "spring_constant"),
    "scan_size_x": ("FastScanSize", "ScanSize", "scan_size_x"),
    "scan_size_y": ("SlowScanSize", "ScanSize", "scan_size_y"),
    "scan_rate": ("ScanRate",),
}
_TEXT_KEYS = {"imaging_mode": ("ImagingMode",)}

#: Length units -> metres (coordinates are converted to metres; data keep the file's units).
_LENGTH = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "μm": 1e-6, "micron": 1e-6, "nm": 1e-9, "pm": 1e-12,
           "Å": 1e-10, "angstrom": 1e-10}
_DEGREES = {"deg", "degree", "degrees", "°"}
_RADIANS = {"rad", "radian", "radians"}


# --------------------------------------------------------------------------------------------- helpers

def _require(module: str, package: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"reading {what} files needs the optional package {package}: "
                          f'pip install "esmsim[io]"') from None


def _text(value) -> str:
    """An HDF5/Igor attribute value (bytes, numpy scalar, 1-element array) as text."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value).decode("latin-1")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _texts(value) -> list[str]:
    return [_text(v) for v in np.atleast_1d(value)]


def _float(value):
    try:
        v = float(str(value).strip().split()[0])
    except (ValueError, IndexError):
        return None
    return v if math.isfinite(v) else None


def _standard_metadata(meta: dict) -> dict:
    """The dataset attributes :data:`_METADATA_KEYS` can fill from raw ``meta`` (a dict of strings)."""
    out = {}
    for attr, keys in _METADATA_KEYS.items():
        for k in keys:
            if k in meta and (v := _float(meta[k])) is not None:
                out[attr] = v
                break
    for attr, keys in _TEXT_KEYS.items():
        for k in keys:
            if meta.get(k, "").strip():
                out[attr] = meta[k].strip()
                break
    return out


def _unit(text: str) -> str:
    text = text.strip()
    return "deg" if text == "°" else text


def _dim_name(label: str) -> str:
    name = re.sub(r"\W+", "_", label.strip()).strip("_").lower()
    return name or "dim"


class _Builder:
    """Collects variables and coordinates; a dimension that clashes with one already there is renamed."""

    def __init__(self):
        self.vars: dict = {}
        self.coords: dict = {}

    def add(self, name: str, dims, data, attrs: dict, coords: dict):
        name = name or "data"
        base, k = name, 2
        while name in self.vars or name in self.coords:
            name, k = f"{base}_{k}", k + 1
        dims = list(dims)
        for i, d in enumerate(dims):
            values, cattrs = coords.get(d, (np.arange(np.shape(data)[i]), {}))
            if d in self.coords:
                old = self.coords[d][0]
                same = old.shape == np.shape(values) and np.allclose(old, values, rtol=1e-12, atol=0, equal_nan=True)
                if same:
                    continue
                d = dims[i] = f"{d}_{name}"
            self.coords[d] = (np.asarray(values), dict(cattrs))
        self.vars[name] = (tuple(dims), data, attrs)

    def dataset(self, path, fmt: str, attrs: dict):
        import xarray as xr

        if not self.vars:
            raise ReaderError(path, f"no data channel found in this {fmt} file")
        ds = xr.Dataset({k: (d, v, a) for k, (d, v, a) in self.vars.items()},
                        coords={k: (k, v, a) for k, (v, a) in self.coords.items()})
        out = {"source_file": str(path), "format": fmt}
        for axis in ("x", "y"):
            c = ds.coords.get(axis)
            if c is not None and c.attrs.get("units") == "m" and c.size > 1:
                out[f"scan_size_{axis}"] = float(c.size * (c.values[-1] - c.values[0]) / (c.size - 1))
        out.update(attrs)  # the instrument's stated scan size wins over the pixel count times the pitch
        ds.attrs.update(out)
        return ds


def _axis(values, units: str, name: str):
    """A coordinate in metres (length units converted) starting at 0 for x/y; returns (values, attrs, offset)."""
    values = np.asarray(values, dtype=float)
    units = (units or "").strip()
    offset = None
    if units in _LENGTH:
        values = values * _LENGTH[units]
        units = "m"
    if name in ("x", "y") and values.size and math.isfinite(values[0]):
        offset = float(values[0])
        values = values - values[0]
    attrs = {"units": units}
    if name in ("x", "y"):
        attrs["long_name"] = f"image {name} (pixel centres)"
    return values, attrs, offset


# ------------------------------------------------------------------------------------ Asylum .ibw

def _repair_asylum_label(label: str) -> str:
    """An Asylum channel label as stored by igor2 (``Phase1Retracece``) repaired to the channel name.

    The longest name of the Asylum vocabulary (:data:`ASYLUM_CHANNELS` with ``Trace``/``Retrace``
    and ``Nap``) that starts the label; a label no name starts is returned unchanged.
    """
    label = label.split("\0", 1)[0].strip()
    for name in _VOCABULARY:
        if label.startswith(name):
            return name
    return label


def _asylum_units(name: str, fallback: str = "") -> str:
    base = name[3:] if name.startswith("Nap") else name
    for s in ("Retrace", "Trace"):
        if base.endswith(s):
            base = base[: -len(s)]
            break
    return ASYLUM_CHANNELS.get(base, fallback)


def _ibw_raw_labels(raw: bytes, wave: dict, version: int):
    """Dimension labels cut at their terminating NUL (igor2 keeps the bytes after it); None if not v5."""
    if version != 5:
        return None
    bh = wave["bin_header"]
    off = 64 + int(bh["wfmSize"]) + int(bh["formulaSize"]) + int(bh["noteSize"]) + int(bh["dataEUnitsSize"]) \
        + int(np.sum(bh["dimEUnitsSize"]))
    out = []
    for size in np.asarray(bh["dimLabelsSize"], int):
        chunk = raw[off:off + size]
        off += size
        out.append([chunk[i:i + 32].split(b"\0", 1)[0].decode("latin-1") for i in range(0, len(chunk), 32)])
    # a consistency check against igor2's reading: each of its labels starts with ours
    for ours, theirs in zip(out, wave.get("labels", [])):
        if len(ours) != len(theirs) or not all(_text(t).startswith(o) for o, t in zip(ours, theirs)):
            return None
    return out


def _parse_note(note: str) -> dict:
    meta = {}
    for line in re.split(r"[\r\n]+", note):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip()] = value.strip()
    return meta


def _read_ibw(path: Path):
    binarywave = _require("igor2.binarywave", "igor2", "Igor binary wave (.ibw)")
    raw = path.read_bytes()
    if len(raw) < 2 or (struct.unpack("<h", raw[:2])[0] not in (1, 2, 3, 5)
                        and struct.unpack(">h", raw[:2])[0] not in (1, 2, 3, 5)):
        raise ReaderError(path, "not an Igor binary wave (.ibw): the first two bytes are not a wave version "
                                "1, 2, 3 or 5")
    try:
        d = binarywave.load(str(path))
    except Exception as e:  # igor2 raises TypeError/ValueError/struct.error on truncated or corrupt files
        raise ReaderError(path, f"not a readable Igor binary wave (.ibw), truncated or corrupt "
                                f"({type(e).__name__}: {e})") from e
    version, wave = int(d["version"]), d["wave"]
    if version == 5:
        bh = wave["bin_header"]
        need = 64 + sum(int(np.sum(bh[k])) for k in ("wfmSize", "formulaSize", "noteSize", "dataEUnitsSize",
                                                      "dimEUnitsSize", "dimLabelsSize", "sIndicesSize",
                                                      "optionsSize1", "optionsSize2"))
        if len(raw) < need:
            raise ReaderError(path, f"truncated Igor binary wave: its header declares {need} bytes, "
                                    f"the file has {len(raw)}")
    header = wave["wave_header"]
    data = np.asarray(wave["wData"])
    if data.size == 0:
        raise ReaderError(path, "the Igor wave holds no data points")
    note = wave.get("note", b"")
    meta = _parse_note(_text(note) if isinstance(note, bytes) else str(note))
    labels = _ibw_raw_labels(raw, wave, version)
    if labels is None:
        labels = [[_repair_asylum_label(_text(s)) for s in lab] for lab in wave.get("labels", [])]
    if version == 5:
        units_of = [_text(b"".join(np.atleast_1d(u))) for u in header["dimUnits"]]
        sfA, sfB = np.asarray(header["sfA"], float), np.asarray(header["sfB"], float)
        data_units = _text(b"".join(np.atleast_1d(header["dataUnits"])))
    else:  # versions 1-3: one scaled axis
        units_of = [_text(b"".join(np.atleast_1d(header.get("xUnits", b""))))] + [""] * 3
        sfA = np.array([float(header.get("hsA", 1.0)), 1.0, 1.0, 1.0])
        sfB = np.array([float(header.get("hsB", 0.0)), 0.0, 0.0, 0.0])
        data_units = _text(b"".join(np.atleast_1d(header.get("dataUnits", b""))))
    wave_name = _text(header.get("bname", b"wave"))

    nd = data.ndim
    # the channel axis is the last axis that labels its layers (a 3-D wave without labels: axis 2)
    chan_axis = None
    for a in range(nd - 1, 0, -1):
        if a < len(labels) and len(labels[a]) == data.shape[a] + 1 and any(labels[a][1:]):
            chan_axis = a
            break
    if chan_axis is None and nd == 3:
        chan_axis = 2
    space = [a for a in range(nd) if a != chan_axis]
    # an image: axis 0 is the fast scan axis (x), axis 1 the slow one (y); shown as (y, x)
    names = ["x", "y"] + [f"index_{i}" for i in range(len(space) - 2)] if len(space) >= 2 else ["index"]
    order = [1, 0] + list(range(2, len(space))) if len(space) >= 2 else [0]
    coords, offsets = {}, {}
    for name, a in zip(names, space):
        units = units_of[a] or ("px" if name in ("x", "y") else "")
        values, cattrs, off = _axis(sfB[a] + sfA[a] * np.arange(data.shape[a]), units, name)
        coords[name] = (values, cattrs)
        if off is not None:
            offsets[f"{name}_offset"] = off
    n_layers = data.shape[chan_axis] if chan_axis is not None else 1
    chan_labels = labels[chan_axis][1:] if chan_axis is not None and chan_axis < len(labels) else []
    b = _Builder()
    for k in range(n_layers):
        layer = np.take(data, k, axis=chan_axis) if chan_axis is not None else data
        label = chan_labels[k] if k < len(chan_labels) else ""
        name = label or (wave_name if n_layers == 1 else f"{wave_name}_{k}")
        units = _asylum_units(name, data_units if n_layers == 1 else "")
        if units == "" and name.startswith("UserCalc"):
            units = _unit(meta.get("UserCalcBUnit" if name.startswith("UserCalcB") else "UserCalcUnit", ""))
        if units == "" and f"{name}Unit" in meta:  # the same rule for any layer (esmsim writes "<label>Unit")
            units = _unit(meta[f"{name}Unit"])
        b.add(name, [names[i] for i in order], np.transpose(layer, order), {"units": units, "long_name": name},
              coords)
    attrs = {**offsets, **_standard_metadata(meta), "wave_name": wave_name, "igor_wave_version": version,
             "instrument_metadata": meta}
    return b.dataset(path, "ibw", attrs)


# ---------------------------------------------------------------------------------------- Gwyddion

def _check_gwy_size(path: Path):
    """gwyfile loops forever on a truncated file: check the top-level object's declared size first."""
    with open(path, "rb") as f:
        head = f.read(4 + 256 + 4)
    if head[:4] != b"GWYP":
        raise ReaderError(path, "not a Gwyddion native file (.gwy): no 'GWYP' signature")
    pos = head.find(b"\0", 4)
    if pos < 0 or len(head) < pos + 5:
        raise ReaderError(path, "truncated Gwyddion file: the header is incomplete")
    size = struct.unpack("<I", head[pos + 1:pos + 5])[0]
    need, have = pos + 5 + size, path.stat().st_size
    if have < need:
        raise ReaderError(path, f"truncated Gwyddion file: it declares {need} bytes, the file has {have}")


def _read_gwy(path: Path):
    gwyfile = _require("gwyfile", "gwyfile", "Gwyddion (.gwy)")
    _check_gwy_size(path)
    try:
        obj = gwyfile.load(str(path))
    except Exception as e:
        raise ReaderError(path, f"not a readable Gwyddion file ({type(e).__name__}: {e})") from e
    keys = sorted((int(m.group(1)), k) for k in obj if (m := re.fullmatch(r"/(\d+)/data", k)))
    b, meta, offsets = _Builder(), {}, {}
    for i, key in keys:
        field = obj[key]
        # the same conversion as read_gwy_channels (esmsim's own writer): row 0 of a data field is the top
        data = np.asarray(field.data)[::-1]
        if data.ndim != 2:
            raise ReaderError(path, f"data field {key} is not 2-D (shape {data.shape})")
        ny, nx = data.shape
        unit_xy = field.get("si_unit_xy")
        unit_xy = _unit(unit_xy.get("unitstr", "") or "") if unit_xy is not None else ""
        unit_z = field.get("si_unit_z")
        unit_z = _unit(unit_z.get("unitstr", "") or "") if unit_z is not None else ""
        coords = {}
        for dim, n, real, off in (("x", nx, field["xreal"], field.get("xoff", 0.0)),
                                  ("y", ny, field["yreal"], field.get("yoff", 0.0))):
            step = float(real) / n
            values, cattrs, first = _axis(float(off) + step * (np.arange(n) + 0.5), unit_xy, dim)
            coords[dim] = (values, cattrs)
            offsets.setdefault(f"{dim}_offset", first)
        title = _text(obj.get(f"{key}/title", f"data_{i}"))
        b.add(title, ("y", "x"), data, {"units": unit_z, "long_name": title}, coords)
        if not meta and f"/{i}/meta" in obj:
            meta = {str(k): _text(v) for k, v in obj[f"/{i}/meta"].items()}
    return b.dataset(path, "gwy", {**offsets, **_standard_metadata(meta), "instrument_metadata": meta})


# -------------------------------------------------------------------------------------- USID / NSID

def _deref(dset, name):
    ref = dset.attrs.get(name)
    if ref is None:
        return dset.parent[name] if name in dset.parent else None
    if isinstance(ref, (str, bytes, np.bytes_)):
        return dset.file[_text(ref)]
    return dset.file[ref]


def _is_usid_main(obj) -> bool:
    return all(k in obj.attrs for k in ("Position_Indices", "Spectroscopic_Indices"))


def _speed(col) -> int:
    return int(np.count_nonzero(np.diff(col)))


def _grid(path, indices, values, labels, what: str):
    """Sizes, flat index of each row and coordinates of an ancillary (rows, dims) index/value table."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 2 or len(labels) != indices.shape[1]:
        raise ReaderError(path, f"{what} indices have shape {indices.shape} but {len(labels)} labels")
    if indices.size and indices.min() < 0:
        raise ReaderError(path, f"{what} indices are negative")
    sizes = tuple(int(indices[:, j].max()) + 1 if len(indices) else 0 for j in range(indices.shape[1]))
    flat = np.ravel_multi_index(tuple(indices.T), sizes) if indices.size else np.zeros(0, int)
    coords = []
    for j in range(indices.shape[1]):
        uniq, first = np.unique(indices[:, j], return_index=True)
        c = np.full(sizes[j], np.nan)
        c[uniq] = values[first, j] if values is not None else uniq
        coords.append(c)
    return sizes, flat, coords


def _order_dims(names, speeds):
    """y, x first (in that order) then the others from the slowest to the fastest varying."""
    order = [names.index(d) for d in ("y", "x") if d in names]
    rest = sorted((i for i in range(len(names)) if i not in order), key=lambda i: speeds[i])
    return order + rest


def _usid_var(path, dset, b: _Builder, name: str, meta_attrs: dict):
    pos_i, pos_v = _deref(dset, "Position_Indices"), _deref(dset, "Position_Values")
    spec_i, spec_v = _deref(dset, "Spectroscopic_Indices"), _deref(dset, "Spectroscopic_Values")
    if pos_i is None or spec_i is None:
        raise ReaderError(path, f"USID main dataset {dset.name} has no Position/Spectroscopic_Indices")
    p_idx = pos_i[()]
    p_labels = _texts(pos_i.attrs.get("labels", [f"dim_{j}" for j in range(p_idx.shape[1])]))
    p_units = _texts((pos_v if pos_v is not None else pos_i).attrs.get("units", [""] * len(p_labels)))
    s_idx = spec_i[()].T  # stored (dims, steps)
    s_labels = _texts(spec_i.attrs.get("labels", [f"spec_{j}" for j in range(s_idx.shape[1])]))
    s_units = _texts((spec_v if spec_v is not None else spec_i).attrs.get("units", [""] * len(s_labels)))
    if dset.ndim != 2 or dset.shape != (len(p_idx), len(s_idx)):
        raise ReaderError(path, f"USID main dataset {dset.name} has shape {dset.shape}, its ancillary datasets "
                                f"say ({len(p_idx)}, {len(s_idx)})")
    p_sizes, p_flat, p_coords = _grid(path, p_idx, None if pos_v is None else np.asarray(pos_v[()], float),
                                      p_labels, "position")
    s_sizes, s_flat, s_coords = _grid(path, s_idx, None if spec_v is None else np.asarray(spec_v[()], float).T,
                                      s_labels, "spectroscopic")
    if len(np.unique(p_flat)) != len(p_flat):
        raise ReaderError(path, f"{dset.name}: the same position appears twice in Position_Indices")
    if len(np.unique(s_flat)) != len(s_flat):
        raise ReaderError(path, f"{dset.name}: the same step appears twice in Spectroscopic_Indices")
    p_names = [_dim_name(lab) for lab in p_labels]
    p_speed = [_speed(p_idx[:, j]) for j in range(len(p_names))]
    if "x" in p_names and "y" in p_names:
        fx, fy = p_speed[p_names.index("x")], p_speed[p_names.index("y")]
        order = "row-major (x fastest)" if fx > fy else "column-major (y fastest)" if fy > fx else "single"
        meta_attrs.setdefault("position_order", order)
    s_keep = [j for j in range(len(s_labels)) if s_sizes[j] > 1]
    s_names = [_dim_name(s_labels[j]) for j in range(len(s_labels))]
    complete = len(p_flat) == math.prod(p_sizes) and len(s_flat) == math.prod(s_sizes)

    data = dset[()]
    fields = [(None, data)] if data.dtype.names is None else [(f, data[f]) for f in data.dtype.names]
    porder = _order_dims(p_names, p_speed)
    sorder = sorted(s_keep, key=lambda j: _speed(s_idx[:, j]))
    dims = [p_names[j] for j in porder] + [s_names[j] for j in sorder]
    coords = {}
    for j in porder:
        values, cattrs, off = _axis(p_coords[j], p_units[j] if pos_v is not None else "px", p_names[j])
        coords[p_names[j]] = (values, cattrs)
        if off is not None:
            meta_attrs.setdefault(f"{p_names[j]}_offset", off)
    for j in sorder:
        values, cattrs, _ = _axis(s_coords[j], s_units[j], s_names[j])
        coords[s_names[j]] = (values, cattrs)
    quantity = _text(dset.attrs.get("quantity", ""))
    units = _unit(_text(dset.attrs.get("units", "")))
    for field, arr in fields:
        arr = np.asarray(arr)
        if complete:
            out = np.empty((math.prod(p_sizes), math.prod(s_sizes)), dtype=arr.dtype)
        else:
            out = np.full((math.prod(p_sizes), math.prod(s_sizes)),
                          np.nan, dtype=np.result_type(arr.dtype, np.float32))
        out[p_flat[:, None], s_flat[None, :]] = arr
        out = out.reshape(p_sizes + s_sizes)
        dropped = [len(p_sizes) + j for j in range(len(s_sizes)) if j not in s_keep]  # single steps, size 1
        out = np.transpose(out, porder + [len(p_sizes) + j for j in sorder] + dropped)
        out = out.reshape(out.shape[:len(porder) + len(sorder)])
        vname, vunits, long_name = name, units, quantity or name
        if field is not None:  # a compound field such as "Amplitude [V]": name Fit_Amplitude, units V
            m = re.fullmatch(r"\s*(.*?)\s*(?:\[(.*)\])?\s*", field)
            vname = f"{name}_{re.sub(r'[^0-9A-Za-z]+', '_', m.group(1)).strip('_')}"
            vunits, long_name = _unit(m.group(2) or ""), f"{quantity or name}: {field}"
        b.add(vname, dims, out, {"units": vunits, "long_name": long_name, "hdf5_path": dset.name}, coords)


def _group_attrs(obj) -> dict:
    meta = {}
    node = obj
    chain = []
    while True:
        chain.append(node)
        if node.name == "/":
            break
        node = node.parent
    for node in reversed(chain):
        for k, v in node.attrs.items():
            if isinstance(v, (str, bytes, np.bytes_, int, float, np.number)) or (
                    isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "biufSUO"):
                try:
                    meta[str(k)] = _text(v)
                except Exception:  # an attribute that is not text (a reference): not metadata
                    pass
    return meta


def _read_usid(path: Path, h5):
    import h5py

    mains = []
    h5.visititems(lambda n, o: mains.append(o) if isinstance(o, h5py.Dataset) and _is_usid_main(o) else None)
    if not mains:
        raise ReaderError(path, "no USID main dataset (one with Position_Indices and Spectroscopic_Indices "
                                "references) in this HDF5 file")
    # names: the channel name of a single-step channel (pycroscopy's image translators), else the dataset
    # name, prefixed by its channel group where two datasets share it
    bases = []
    for d in mains:
        spec = _deref(d, "Spectroscopic_Indices")
        labels = _texts(spec.attrs.get("labels", [])) if spec is not None else []
        single = spec is not None and spec.shape[-1] == 1 and len(labels) == 1 and labels[0] not in ("Single_Step", "")
        bases.append(labels[0] if single else d.name.rsplit("/", 1)[-1])
    names = list(bases)
    for level in (1, 2):
        dup = {n for n in names if names.count(n) > 1}
        if not dup:
            break
        for i, d in enumerate(mains):
            if names[i] in dup:
                parts = d.name.strip("/").split("/")
                prefix = parts[1] if level == 1 and len(parts) > 2 else "_".join(parts[:-1])
                names[i] = f"{prefix}_{bases[i]}"
    b, attrs = _Builder(), {}
    meta = {}
    for d, name in zip(mains, names):
        meta.update(_group_attrs(d.parent))
        _usid_var(path, d, b, name, attrs)
    return b.dataset(path, "usid", {**attrs, **_standard_metadata(meta), "instrument_metadata": meta})


def _is_nsid_main(obj) -> bool:
    return "DIMENSION_LIST" in obj.attrs and _text(obj.attrs.get("CLASS", b"")) != "DIMENSION_SCALE"


def _read_nsid(path: Path, h5):
    import h5py

    mains = []
    h5.visititems(lambda n, o: mains.append(o) if isinstance(o, h5py.Dataset) and _is_nsid_main(o) else None)
    if not mains:
        raise ReaderError(path, "no NSID dataset (one with HDF5 dimension scales attached) in this HDF5 file")
    b, attrs, meta = _Builder(), {}, {}
    for d in mains:
        names, types, coords = [], [], []
        for i, dim in enumerate(d.dims):
            scale = dim[0] if len(dim) else None
            if scale is not None:
                label = _text(scale.attrs.get("name", dim.label or scale.name.rsplit("/", 1)[-1]))
                values, units = scale[()], _text(scale.attrs.get("units", ""))
                types.append(_text(scale.attrs.get("dimension_type", "")).upper())
            else:
                label, values, units = dim.label or f"dim_{i}", np.arange(d.shape[i]), ""
                types.append("")
            names.append(_dim_name(label))
            coords.append((values, units))
        if not {"x", "y"} <= set(names):  # sidpy images: the first spatial dimension is x, the second y
            spatial = [i for i, t in enumerate(types) if t == "SPATIAL"]
            if len(spatial) == 2:
                names[spatial[0]], names[spatial[1]] = "x", "y"
        for i, n in enumerate(names):
            if names.count(n) > 1:
                names[i] = f"{n}_{i}"
        order = [names.index(n) for n in ("y", "x") if n in names]
        order += [i for i in range(len(names)) if i not in order]
        vcoords = {}
        for i in order:
            values, cattrs, off = _axis(coords[i][0], coords[i][1], names[i])
            vcoords[names[i]] = (values, cattrs)
            if off is not None:
                attrs.setdefault(f"{names[i]}_offset", off)
        quantity = _text(d.attrs.get("quantity", ""))
        base = d.name.rsplit("/", 1)[-1]
        name = quantity if quantity and quantity.lower() != "generic" else base
        b.add(name, [names[i] for i in order], np.transpose(d[()], order),
              {"units": _unit(_text(d.attrs.get("units", ""))), "long_name": quantity or base,
               "hdf5_path": d.name}, vcoords)
        meta.update(_group_attrs(d))
        for sub in ("original_metadata", "metadata"):
            if sub in d.parent and isinstance(d.parent[sub], h5py.Group):
                meta.update(_group_attrs(d.parent[sub]))
    return b.dataset(path, "nsid", {**attrs, **_standard_metadata(meta), "instrument_metadata": meta})


def _read_hdf5(path: Path, kind: str):
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise ReaderError(path, f"not a readable HDF5 file, truncated or corrupt ({e})") from e
    with h5:
        if kind == "hdf5":
            found = []

            def visit(n, o):
                if isinstance(o, h5py.Dataset):
                    if _is_usid_main(o):
                        found.append("usid")
                        return True
                    if _is_nsid_main(o):
                        found.append("nsid")
            h5.visititems(visit)
            if not found:
                raise ReaderError(path, "HDF5 file with neither a USID main dataset nor an NSID dataset "
                                        "with dimension scales")
            kind = "usid" if "usid" in found else "nsid"
        return (_read_usid if kind == "usid" else _read_nsid)(path, h5)


# ----------------------------------------------------------------------------------- TIFF and numpy

def _pixel_axes(shape, pixel_size):
    ny, nx = shape
    if pixel_size is None:
        return {"y": (np.arange(ny, dtype=float), {"units": "px", "long_name": "image y (pixel index)"}),
                "x": (np.arange(nx, dtype=float), {"units": "px", "long_name": "image x (pixel index)"})}
    dy, dx = pixel_size
    return {"y": (dy * np.arange(ny), {"units": "m", "long_name": "image y (pixel centres)"}),
            "x": (dx * np.arange(nx), {"units": "m", "long_name": "image x (pixel centres)"})}


def _read_tiff(path: Path, pixel_size):
    tifffile = _require("tifffile", "tifffile", "TIFF")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data, axes = series.asarray(), series.axes
    except Exception as e:
        raise ReaderError(path, f"not a readable TIFF file, truncated or corrupt ({type(e).__name__}: {e})") from e
    if "Y" not in axes or "X" not in axes:
        raise ReaderError(path, f"TIFF series without image axes (axes {axes!r}, shape {data.shape})")
    other = [i for i, a in enumerate(axes) if a not in "YX"]
    data = np.transpose(data, other + [axes.index("Y"), axes.index("X")])
    data = data.reshape((-1,) + data.shape[-2:])[:, ::-1]  # TIFF row 0 is the top of the image
    b = _Builder()
    coords = _pixel_axes(data.shape[1:], pixel_size)
    for k, layer in enumerate(data):
        name = "image" if len(data) == 1 else f"channel_{k}"
        b.add(name, ("y", "x"), layer, {"units": "", "long_name": name}, coords)
    return b.dataset(path, "tiff", {})


def _read_numpy(path: Path, kind: str, pixel_size):
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ReaderError(path, f"not a readable numpy {kind} file, truncated or corrupt "
                                f"({type(e).__name__}: {e})") from e
    if kind == "npy":
        if isinstance(loaded, np.lib.npyio.NpzFile):
            loaded.close()
            raise ReaderError(path, "this .npy file holds an .npz archive: read it with kind='npz'")
        arrays = {"image": loaded}
    else:
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ReaderError(path, "not an .npz archive (a single array: read it with kind='npy')")
        with loaded:
            try:
                arrays = {k: loaded[k] for k in loaded.files}
            except Exception as e:
                raise ReaderError(path, f"a member of the .npz archive cannot be read ({type(e).__name__}: {e})") from e
    b, attrs, shape = _Builder(), {}, None
    for name, arr in arrays.items():
        if arr.ndim == 0:
            attrs[name] = arr.item()
            continue
        if arr.ndim == 1:
            b.add(name, (f"{name}_index",), arr, {"units": ""}, {})
            continue
        if shape is None:
            shape = arr.shape[:2]
        if arr.shape[:2] != shape:
            raise ReaderError(path, f"array {name!r} has shape {arr.shape}; the images before it are {shape}")
        dims = ("y", "x") + tuple(f"index_{i}" for i in range(arr.ndim - 2))
        b.add(name, dims, arr, {"units": ""}, _pixel_axes(shape, pixel_size))
    return b.dataset(path, kind, attrs)


# ------------------------------------------------------------------------------------------- public

def read_measurement(path, *, kind: str | None = None, pixel_size=None):
    """Read a measured SPM file (Asylum, Gwyddion, USID, NSID, TIFF, numpy) as a labelled dataset.

    Parameters
    ----------
    path : path
        The file.
    kind : {"ibw", "gwy", "usid", "nsid", "hdf5", "tiff", "npy", "npz"}, optional
        The format; by default from the extension (``.h5``/``.hdf5``: USID when the file has a USID
        main dataset, else NSID).
    pixel_size : float or (float, float), optional
        Pixel pitch in m, one value or ``(dy, dx)``; only for TIFF and numpy files, which carry no
        scale. Without it ``x`` and ``y`` count pixels (``units="px"``).

    Returns
    -------
    xarray.Dataset
        One variable per channel on ``("y", "x")`` (spectroscopy: more dimensions after them, e.g.
        ``("y", "x", "voltage")``), each with ``units`` as the file states them. Coordinates ``x``,
        ``y`` in m at pixel centres from 0 (``x_offset``/``y_offset``: the file's position of the
        first pixel). Dataset attributes: ``source_file``, ``format`` and, where known,
        ``drive_frequency`` (Hz), ``drive_amplitude`` (V), ``invols`` (m/V), ``spring_constant``
        (N/m), ``scan_size_x``/``scan_size_y`` (m), ``instrument_metadata`` (raw key/value text).

    Raises
    ------
    ReaderError
        The file is truncated, not of the format, or holds no data.
    ParameterError
        Unknown ``kind``, an extension with no known format, or a bad ``pixel_size``.
    ImportError
        The optional package a format needs (igor2, gwyfile, tifffile) is missing:
        ``pip install "esmsim[io]"``.

    Notes
    -----
    Formats:

    * ``ibw``: Asylum Research Igor binary waves (igor2). Axis 0 of the wave is the fast scan axis
      (x), axis 1 the slow one (y); layers of a 3-D wave are channels, named by their dimension
      labels (read up to their terminating NUL; the garbled labels igor2 returns, e.g.
      ``Phase1Retracece``, are repaired from the Asylum channel vocabulary when the raw labels
      cannot be read). Channel units from the Asylum names (Height, Amplitude, Deflection,
      ZSensor: m; Phase: deg; Frequency: Hz; UserIn: V). Metadata from the wave note.
    * ``gwy``: Gwyddion data fields ``/N/data`` named by ``/N/data/title``, size ``xreal``,
      ``yreal`` and units ``si_unit_z``; metadata from ``/N/meta``. Rows are flipped as in
      :func:`esmsim.io.read_gwy_channels` (Gwyddion's row 0 is the top).
    * ``usid``: every main dataset (with Position/Spectroscopic ancillaries). Pixels are placed by
      their Position_Indices, so row-major (x fastest), column-major (y fastest) or any other order
      reads the same; the order found is the attribute ``position_order``. Spectroscopic dimensions
      of one step are dropped; a channel of one step is named by its spectroscopic label (e.g.
      ``HeightRetrace``), others by the dataset name (prefixed by the channel group when two share a
      name); compound datasets (SHO fits) give one variable per field. Missing pixels are NaN.
    * ``nsid``: every dataset with HDF5 dimension scales (sidpy), named by its ``quantity``;
      dimensions from the scales' names and units.
    * ``tiff``, ``npy``, ``npz``: arrays as ``(y, x[, ...])`` (TIFF rows flipped: row 0 is the top),
      data units unknown (``""``); without ``pixel_size`` the coordinates count pixels.

    ``scan_size_x`` is the instrument's scan size where the file states one (Asylum ``FastScanSize``:
    first to last pixel centre), otherwise the pixel count times the pitch (Gwyddion's ``xreal``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "img.npy"
    >>> np.save(p, np.zeros((4, 6)))
    >>> ds = read_measurement(p, pixel_size=10e-9)
    >>> ds["image"].dims, float(ds["x"][1]), ds.attrs["scan_size_x"]
    (('y', 'x'), 1e-08, 6e-08)
    """
    path = Path(path)
    if kind is None:
        kind = _EXTENSIONS.get(path.suffix.lower())
        if kind is None:
            raise ParameterError("kind", f"cannot tell the format of {path.name!r} from its extension "
                                         f"{path.suffix!r}; pass kind= one of {', '.join(READER_KINDS)}")
    elif kind not in READER_KINDS:
        close = difflib.get_close_matches(str(kind), READER_KINDS, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ParameterError("kind", f"unknown format {kind!r}: expected one of {', '.join(READER_KINDS)}{hint}")
    if pixel_size is not None:
        if kind not in ("tiff", "npy", "npz"):
            raise ParameterError("pixel_size", f"only for tiff/npy/npz files; {kind} files carry their own scale")
        try:
            ps = np.asarray(pixel_size, dtype=float)
        except (TypeError, ValueError):
            ps = np.array([np.nan])
        if ps.ndim > 1 or ps.size not in (1, 2) or not np.all(np.isfinite(ps)) or np.any(ps <= 0):
            raise ParameterError("pixel_size", f"got {pixel_size!r}: expected a positive pitch in m or (dy, dx)")
        ps = np.broadcast_to(ps.ravel(), (2,))
        pixel_size = (float(ps[0]), float(ps[1]))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if kind == "ibw":
        return _read_ibw(path)
    if kind == "gwy":
        return _read_gwy(path)
    if kind in ("usid", "nsid", "hdf5"):
        return _read_hdf5(path, kind)
    if kind == "tiff":
        return _read_tiff(path, pixel_size)
    return _read_numpy(path, kind, pixel_size)


def phase_to_radians(phase, *, units: str | None = None):
    """A phase in radians, from degrees or radians.

    Parameters
    ----------
    phase : xarray.DataArray or array_like
        Phase; a DataArray states its unit in ``attrs["units"]``.
    units : {"deg", "rad"}, optional
        The unit of ``phase``; required for arrays, by default the DataArray's ``units``.

    Returns
    -------
    xarray.DataArray or numpy.ndarray
        The phase in rad (a DataArray keeps its coordinates, ``units`` becomes ``"rad"``).

    Examples
    --------
    >>> phase_to_radians([180.0, -90.0], units="deg")
    array([ 3.14159265, -1.57079633])
    """
    attrs = getattr(phase, "attrs", None)
    if units is None:
        units = attrs.get("units") if attrs is not None else None
        if units is None:
            raise ParameterError("units", "the phase states no unit: expected units='deg' or units='rad'")
    u = _unit(str(units)).lower()
    if u not in _DEGREES | _RADIANS:
        raise ParameterError("units", f"got {units!r}: expected 'deg' or 'rad'")
    factor = np.pi / 180 if u in _DEGREES else 1.0
    if attrs is not None:
        out = phase * factor
        out.attrs = {**attrs, "units": "rad"}
        return out
    return np.asarray(phase, dtype=float) * factor
