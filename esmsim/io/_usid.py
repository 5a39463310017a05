"""Band-excitation data as a USID HDF5 file (the layout pyUSID and BGlib read).

Layout (Universal Spectroscopy and Imaging Data, pycroscopy ecosystem)::

    /                                   attrs: esmsim version, sign convention, SHO convention
    /Measurement_000                    attrs: instrument and excitation parameters
    /Measurement_000/Channel_000
        Raw_Data          complex64 (positions, bins)   recorded detector signal, V   (main)
        Raw_Data_Clean    complex64 (positions, bins)   without artefacts, V          (main)
        Position_Indices  uint32 (positions, 2)   labels [X, Y], X fastest (row-major map, y slow)
        Position_Values   float32 (positions, 2)  m
        Spectroscopic_Indices uint32 (1, bins), Spectroscopic_Values float32 (1, bins): Frequency, Hz
        Bin_Frequencies   float32 (bins,)
        Raw_Data-SHO_Fit_000/Fit        compound (positions, 1), BGlib's sho32 fields (esmsim's fit)
        Raw_Data-SHO_Truth_000/Truth    compound (positions, 1), the ground truth, same fields (R2 = 1)
    /Measurement_000/Channel_001        the retrace (when recorded): Raw_Data, its ancillaries and its Fit

Each main dataset carries ``quantity`` and ``units`` and object references to
its four ancillary datasets, whose ``labels`` and ``units`` attributes name
the dimensions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..probe._cantilever import SHO_DTYPE, SHO_FIELDS
from ._dataset import SIGN_CONVENTION, atomic_path

__all__ = ["write_usid"]



def _str_attrs(obj, **attrs):
    import h5py

    for k, v in attrs.items():
        if isinstance(v, (list, tuple)) and v and all(isinstance(e, str) for e in v):
            obj.attrs.create(k, np.array(v, dtype=h5py.string_dtype()))
        else:
            obj.attrs[k] = v


def _ancillary(group, prefix, indices, values, labels, units):
    import h5py

    dsets = []
    for name, data in ((f"{prefix}_Indices", indices), (f"{prefix}_Values", values)):
        d = group.create_dataset(name, data=data)
        d.attrs.create("labels", np.array(labels, dtype=h5py.string_dtype()))
        d.attrs.create("units", np.array(units, dtype=h5py.string_dtype()))
        dsets.append(d)
    return dsets


def _main(group, name, data, quantity, units, pos, spec):
    d = group.create_dataset(name, data=data)
    _str_attrs(d, quantity=quantity, units=units)
    for anc in (*pos, *spec):
        d.attrs[anc.name.split("/")[-1]] = anc.ref
    return d


def _sho_table(ds, suffix):
    out = np.zeros((ds.sizes["y"] * ds.sizes["x"], 1), dtype=SHO_DTYPE)
    for field, key in zip(SHO_FIELDS, ("amplitude", "frequency", "quality", "phase", "r2")):
        name = f"sho_{key}{suffix}"
        if name in ds:
            out[field][:, 0] = ds[name].values.ravel()
        elif key == "r2":
            out[field][:, 0] = 1.0
    return out


def write_usid(ds, path) -> Path:
    """Write the band-excitation part of a dataset (from :func:`esmsim.simulation.run`) as a USID HDF5 file.

    Written to a temporary name and renamed: nothing half-written is left.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``be_real``/``be_imag`` (and ``be_clean_*``, ``sho_*``) on dimensions ``y, x, frequency``.
    path : path

    Returns
    -------
    Path
    """
    import h5py

    from .. import __version__

    ny, nx, nf = ds.sizes["y"], ds.sizes["x"], ds.sizes["frequency"]
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))  # row-major: y slow, x fast
    pos_ind = np.stack([ix.ravel(), iy.ravel()], 1).astype(np.uint32)
    pos_val = np.stack([ds["x"].values[ix.ravel()], ds["y"].values[iy.ravel()]], 1).astype(np.float32)
    f = ds["frequency"].values
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            _str_attrs(h5, esmsim_version=__version__, sign_convention=SIGN_CONVENTION,
                       sho_convention=ds.attrs.get("sho_convention", ""), data_type="BELineData",
                       translator="esmsim")
            meas = h5.create_group("Measurement_000")
            cl, band = ds.attrs.get("cantilever", {}), ds.attrs.get("band_excitation", {})
            _str_attrs(meas, **{
                "BE_center_frequency_[Hz]": float(ds.attrs.get("band_center_Hz", f.mean())),
                "BE_band_width_[Hz]": float(f[-1] - f[0]) * nf / (nf - 1),
                "BE_bins": int(nf),
                "AC_amplitude_[V]": float(ds.attrs.get("bias_amplitude_V", np.nan)),
                "grid_num_rows": int(ny), "grid_num_cols": int(nx),
                "grid_scan_width_[m]": float(ds["x"].values[-1] - ds["x"].values[0]) if nx > 1 else 0.0,
                "grid_scan_height_[m]": float(ds["y"].values[-1] - ds["y"].values[0]) if ny > 1 else 0.0,
                "spring_constant_[N/m]": float(cl.get("spring_constant", np.nan)),
                "InvOLS_[m/V]": float(cl.get("invols", np.nan)),
                "quality_factor": float(cl.get("quality_factor", np.nan)),
                "seed": int(ds.attrs.get("seed", 0)), "bins_requested": int(band.get("bins", nf)),
            })
            # Channel_000: the trace (and the clean data, the truth); Channel_001: the retrace, if recorded
            channels = [("Channel_000", "be", (("Raw_Data_Clean", "be_clean"),),
                         (("Raw_Data-SHO_Fit_000", "Fit", ""), ("Raw_Data-SHO_Truth_000", "Truth", "_true")))]
            if "be_retrace_real" in ds:
                channels.append(("Channel_001", "be_retrace", (), (("Raw_Data-SHO_Fit_000", "Fit", "_retrace"),)))
            for chname, var, extra, tables in channels:
                ch = meas.create_group(chname)
                _str_attrs(ch, direction="retrace" if "retrace" in var else "trace")
                pos = _ancillary(ch, "Position", pos_ind, pos_val, ["X", "Y"], ["m", "m"])
                spec = _ancillary(ch, "Spectroscopic", np.arange(nf, dtype=np.uint32)[None, :],
                                  f.astype(np.float32)[None, :], ["Frequency"], ["Hz"])
                ch.create_dataset("Bin_Frequencies", data=f.astype(np.float32))
                ch.create_dataset("Bin_Indices", data=np.arange(nf, dtype=np.uint32))
                for name, v in (("Raw_Data", var), *extra):
                    z = (ds[f"{v}_real"].values + 1j * ds[f"{v}_imag"].values).reshape(ny * nx, nf)
                    _main(ch, name, z.astype(np.complex64), "Cantilever deflection", "V", pos, spec)
                for group, dname, suffix in tables:
                    if f"sho_amplitude{suffix}" not in ds:
                        continue
                    g = ch.create_group(group)
                    _str_attrs(g, tool="esmsim", source_dataset="Raw_Data",
                               algorithm="ground truth" if suffix == "_true" else "Levenberg-Marquardt on the complex SHO")
                    rspec = _ancillary(g, "Spectroscopic", np.zeros((1, 1), np.uint32), np.zeros((1, 1), np.float32),
                                       ["Single_Step"], ["a.u."])
                    _main(g, dname, _sho_table(ds, suffix), "SHO parameters", "compound", pos, rspec)
    return path
