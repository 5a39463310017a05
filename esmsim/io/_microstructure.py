"""Saving and loading microstructures (NetCDF-4), without loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._dataset import read_netcdf, write_netcdf

__all__ = ["save_microstructure", "load_microstructure"]

_KIND = "esmsim microstructure"
_KINDS = (_KIND, "esmsim columnar microstructure")  # the second: files of esmsim 0.1


def save_microstructure(ms, path, *, symmetry: str | None = None, height=None) -> Path:
    """Write a microstructure (columnar film or voxel volume) to NetCDF-4, atomically.

    Labels, orientations (quaternions and Bunge angles), seeds and weights,
    spacing, periodicity, pore and crack masks, the recipe, seed and defect
    truth; reading it back with :func:`load_microstructure` gives identical
    arrays. With ``symmetry`` the ground truth of
    :func:`~esmsim.microstructure.ground_truth` is added (boundary table,
    grain table, surface labels, c-axis inclination map, boundary mask,
    distance-to-boundary map, triple junctions); with ``height`` (m, shape of
    the surface) the topography.
    """
    import xarray as xr

    from .. import __version__
    from ..microstructure import BOUNDARY_CLASSES, Microstructure, ground_truth

    volume = isinstance(ms, Microstructure)
    lab_dims = ("x_voxel", "y_voxel", "z_voxel") if volume else ("x_voxel", "y_voxel")
    data = {
        "labels": (lab_dims, ms.labels, {"long_name": "grain id of each voxel (axis 0 = x, axis 2 = depth)"
                                         if volume else "grain id of each column (axis 0 = x)"}),
        "quaternion": (("grain", "quaternion_component"), ms.quaternions,
                       {"long_name": "crystal->sample rotation, scalar-first (w, x, y, z)"}),
        "euler_bunge": (("grain", "euler_angle"), ms.euler_bunge, {"units": "rad", "long_name": "Bunge ZXZ"}),
        "c_axis_inclination": (("grain",), ms.c_axis_inclination, {"units": "rad"}),
    }
    optional = {"seed_position": ("seeds", ("grain", "seed_axis"), {"units": "m"}),
                "power_weight": ("weights", ("grain",), {"units": "m^2", "long_name": "Laguerre weight"}),
                "surface_seed_position": ("surface_seeds", ("grain", "xy"), {"units": "m"}),
                "surface_power_weight": ("surface_weights", ("grain",), {"units": "m^2"}),
                "pore_mask": ("pores", lab_dims, {"long_name": "1 where the voxel is a pore"}),
                "crack_mask": ("cracks", lab_dims, {"long_name": "1 where the voxel is an open crack"}),
                "grain_depth_interval": ("grain_depths", ("grain", "side"),
                                         {"units": "m", "long_name": "[top, bottom) of grains that stop part way"})}
    for name, (attr, dims, attrs) in optional.items():
        value = getattr(ms, attr, None)
        if value is not None:
            value = np.asarray(value)
            data[name] = (dims, value.astype(np.uint8) if value.dtype == bool else value, attrs)
    if symmetry is not None:
        gt = ground_truth(ms, symmetry)
        xy = ("x_voxel", "y_voxel")
        units = {"boundary_misorientation": "rad", "boundary_area": "m^2", "grain_volume": "m^3",
                 "grain_equivalent_diameter": "m", "grain_centroid": "m", "grain_surface_area": "m^2",
                 "grain_surface_equivalent_diameter": "m", "surface_c_axis_inclination": "rad",
                 "boundary_distance": "m"}
        for key, value in gt.items():
            if key.startswith("boundary_") and key not in ("boundary_mask", "boundary_distance"):
                dims = ("boundary", "side") if value.ndim == 2 else ("boundary",)
            elif key.startswith("grain_"):
                dims = ("grain", "seed_axis" if value.shape[-1] == 3 else "xy") if value.ndim == 2 else ("grain",)
            elif key == "triple_junction":
                dims = ("junction", "ij")
            elif key == "triple_line":
                dims = ("triple_edge", "axis_ijk")
                attrs = {"long_name": "voxel edge (axis, i, j, k) where >= 3 grains meet"}
            else:
                dims = xy
            if key != "triple_line":
                attrs = {"units": units[key]} if key in units else {}
            if key == "boundary_class":
                attrs = {"flag_values": list(BOUNDARY_CLASSES), "flag_meanings": " ".join(BOUNDARY_CLASSES.values())}
            if key == "boundary_misorientation":
                attrs["long_name"] = f"disorientation ({symmetry})"
            if key == "surface_labels" and not volume:
                continue  # the labels are the surface
            data[key] = (dims, value, attrs)
    if height is not None:
        data["topography"] = (("x_voxel", "y_voxel"), np.asarray(height, float),
                              {"units": "m", "long_name": "surface height, positive out of the sample"})
    attrs = {"kind": _KIND, "esmsim_version": __version__, "spacing_m": list(ms.spacing),
             "periodic": bool(ms.periodic), "recipe": ms.recipe, "volume": int(volume)}
    if volume:
        attrs["truth"] = ms.truth
        if ms.shear is not None:
            attrs["shear"] = [float(v) for v in ms.shear]
    else:
        attrs["thickness_m"] = ms.thickness
    return write_netcdf(xr.Dataset(data, attrs=attrs), path)


def load_microstructure(path):
    """Read a microstructure written by :func:`save_microstructure` (the class it was written from).

    Raises
    ------
    ParameterError
        The file is not an esmsim microstructure.
    """
    from .._errors import ParameterError
    from ..microstructure import ColumnarMicrostructure, Microstructure

    try:
        ds = read_netcdf(path)
    except (OSError, ValueError) as exc:
        raise ParameterError("microstructure.file", f"cannot read {str(path)!r} as NetCDF ({exc})") from None
    if ds.attrs.get("kind") not in _KINDS:
        raise ParameterError("microstructure.file", f"{str(path)!r} is not an esmsim microstructure file")

    def get(name, dtype=None):
        if name not in ds:
            return None
        v = ds[name].values
        return v.astype(dtype) if dtype is not None else v

    spacing = tuple(float(v) for v in ds.attrs["spacing_m"])
    if ds.attrs.get("volume", 0):
        return Microstructure(ds["labels"].values, spacing, ds["quaternion"].values, bool(ds.attrs["periodic"]),
                              dict(ds.attrs["recipe"]), get("seed_position"), get("power_weight"),
                              get("surface_seed_position"), get("surface_power_weight"), get("pore_mask", bool),
                              get("crack_mask", bool), dict(ds.attrs.get("truth", {})),
                              None if "shear" not in ds.attrs else np.asarray(ds.attrs["shear"], float),
                              get("grain_depth_interval"))
    return ColumnarMicrostructure(ds["labels"].values, spacing, float(ds.attrs["thickness_m"]),
                                  ds["quaternion"].values, get("seed_position"), bool(ds.attrs["periodic"]),
                                  dict(ds.attrs["recipe"]), get("power_weight"))
