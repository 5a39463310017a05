"""Images of a map as a Gwyddion ``.gwy`` file (gwyfile, in the ``io`` extra).

One data field per channel, with its physical size, offset and SI units, the
title Gwyddion shows, and the ground-truth channels beside the measured ones.
Gwyddion's row 0 is the top of the image, so rows are written with y
decreasing; :func:`read_gwy_channels` undoes that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._errors import ParameterError
from ._dataset import atomic_path

__all__ = ["write_gwy", "read_gwy_channels", "GWY_CHANNELS"]

#: (dataset variable, Gwyddion title, unit, scale to that unit); written when present in the dataset.
GWY_CHANNELS = (
    ("height", "Height", "m", 1.0),
    ("sho_amplitude", "BE amplitude (SHO fit)", "V", 1.0),
    ("sho_phase", "BE phase (SHO fit)", "deg", 180 / np.pi),
    ("sho_frequency", "Contact resonance (SHO fit)", "Hz", 1.0),
    ("sho_quality", "Quality factor (SHO fit)", "", 1.0),
    ("amplitude", "ESM amplitude (truth)", "m/V", 1.0),
    ("phase", "ESM phase (truth)", "deg", 1.0),
    ("grain_id", "Grain id (truth)", "", 1.0),
    ("boundary_distance", "Distance to boundary (truth)", "m", 1.0),
)


def _gwyfile():
    try:
        import gwyfile
    except ImportError:
        raise ParameterError("output.gwy", "writing .gwy files needs gwyfile: pip install 'esmsim[io]'") from None
    return gwyfile


def write_gwy(ds, path) -> Path:
    """Write the image channels of a map dataset to a Gwyddion file, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        A map from :func:`esmsim.simulation.run` (dimensions ``y, x``).
    path : path

    Returns
    -------
    Path
    """
    _gwyfile()
    from gwyfile.objects import GwyContainer, GwyDataField, GwySIUnit

    x, y = ds["x"].values, ds["y"].values
    dx = x[1] - x[0] if x.size > 1 else float(ds.attrs.get("spacing_m", 1e-9))
    dy = y[1] - y[0] if y.size > 1 else dx
    obj = GwyContainer()
    k = 0
    for var, title, unit, scale in GWY_CHANNELS:
        if var not in ds or ds[var].dims != ("y", "x"):
            continue
        data = np.ascontiguousarray(ds[var].values[::-1].astype(float) * scale)  # row 0 = top (largest y)
        obj[f"/{k}/data"] = GwyDataField(data, xreal=float(dx * x.size), yreal=float(dy * y.size),
                                         xoff=float(x[0] - dx / 2), yoff=float(y[0] - dy / 2),
                                         si_unit_xy=GwySIUnit(unitstr="m"), si_unit_z=GwySIUnit(unitstr=unit))
        obj[f"/{k}/data/title"] = title
        k += 1
    if k == 0:
        raise ParameterError("dataset", "no image channel to write (expected e.g. 'amplitude' on dims y, x)")
    path = Path(path)
    with atomic_path(path) as tmp:
        obj.tofile(str(tmp))
    return path


def read_gwy_channels(path) -> dict:
    """Channels of a Gwyddion file as ``{title: (array (y, x) with y increasing, unit, xreal, yreal)}``."""
    gwyfile = _gwyfile()
    obj = gwyfile.load(str(path))
    out = {}
    for key in obj:
        if key.endswith("/data") and key.count("/") == 2:
            field = obj[key]
            title = obj.get(key + "/title", key)
            unit = field.si_unit_z.unitstr if field.si_unit_z is not None else ""
            out[title] = (np.asarray(field.data)[::-1], unit, field.xreal, field.yreal)
    return out
