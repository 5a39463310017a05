"""Saving and loading microstructures (NetCDF-4), without loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._dataset import read_netcdf, write_netcdf

__all__ = ["save_microstructure", "load_microstructure"]

_KIND = "esmsim columnar microstructure"


def save_microstructure(ms, path, *, symmetry: str | None = None, height=None) -> Path:
    """Write a :class:`~esmsim.microstructure.ColumnarMicrostructure` to NetCDF-4, atomically.

    Labels, orientations (quaternions and Bunge angles), seeds and weights,
    spacing, thickness, periodicity, the recipe and the seed; reading it back
    with :func:`load_microstructure` gives identical arrays. With ``symmetry``
    the ground truth is added: boundary table (grain pair, disorientation,
    class, area), grain table (volume, equivalent diameter, centroid), surface
    c-axis inclination map, boundary mask, distance-to-boundary map, triple
    junctions; with ``height`` (m, shape of the labels) the topography.
    """
    import xarray as xr

    from .. import __version__
    from ..microstructure import BOUNDARY_CLASSES, boundary_table, grain_table, triple_junctions

    data = {
        "labels": (("x_voxel", "y_voxel"), ms.labels, {"long_name": "grain id of each column (axis 0 = x)"}),
        "quaternion": (("grain", "quaternion_component"), ms.quaternions,
                       {"long_name": "crystal->sample rotation, scalar-first (w, x, y, z)"}),
        "euler_bunge": (("grain", "euler_angle"), ms.euler_bunge, {"units": "rad", "long_name": "Bunge ZXZ"}),
        "c_axis_inclination": (("grain",), ms.c_axis_inclination, {"units": "rad"}),
    }
    if ms.seeds is not None:
        data["seed_position"] = (("grain", "xy"), ms.seeds, {"units": "m"})
    if ms.weights is not None:
        data["power_weight"] = (("grain",), ms.weights, {"units": "m^2", "long_name": "Laguerre weight"})
    if symmetry is not None:
        from skimage.segmentation import find_boundaries

        xy = ("x_voxel", "y_voxel")
        bt, gt = boundary_table(ms, symmetry), grain_table(ms)
        x, y = ms.pixel_centers()
        X, Y = np.meshgrid(x, y, indexing="ij")
        data.update({
            "boundary_grains": (("boundary", "side"), bt["grains"]),
            "boundary_misorientation": (("boundary",), bt["misorientation"],
                                        {"units": "rad", "long_name": f"disorientation ({symmetry})"}),
            "boundary_class": (("boundary",), bt["class"], {"flag_values": list(BOUNDARY_CLASSES),
                                                            "flag_meanings": " ".join(BOUNDARY_CLASSES.values())}),
            "boundary_area": (("boundary",), bt["area"], {"units": "m^2"}),
            "grain_volume": (("grain",), gt["volume"], {"units": "m^3"}),
            "grain_equivalent_diameter": (("grain",), gt["equivalent_diameter"], {"units": "m"}),
            "grain_centroid": (("grain", "xy"), gt["centroid"], {"units": "m"}),
            "surface_c_axis_inclination": (xy, ms.c_axis_inclination[ms.labels], {"units": "rad"}),
            "boundary_mask": (xy, find_boundaries(ms.labels, mode="inner", connectivity=1).astype(np.uint8)),
            "boundary_distance": (xy, ms.boundary_distance(X, Y), {"units": "m"}),
            "triple_junction": (("junction", "ij"), triple_junctions(ms),
                                {"long_name": "pixel (i, j) whose corner (i+1/2, j+1/2) is a triple junction"}),
        })
    if height is not None:
        data["topography"] = (("x_voxel", "y_voxel"), np.asarray(height, float),
                              {"units": "m", "long_name": "surface height, positive out of the sample"})
    ds = xr.Dataset(data, attrs={"kind": _KIND, "esmsim_version": __version__, "spacing_m": list(ms.spacing),
                                 "thickness_m": ms.thickness, "periodic": bool(ms.periodic), "recipe": ms.recipe})
    return write_netcdf(ds, path)


def load_microstructure(path):
    """Read a microstructure written by :func:`save_microstructure`.

    Raises
    ------
    ParameterError
        The file is not an esmsim microstructure.
    """
    from .._errors import ParameterError
    from ..microstructure import ColumnarMicrostructure

    try:
        ds = read_netcdf(path)
    except (OSError, ValueError) as exc:
        raise ParameterError("microstructure.file", f"cannot read {str(path)!r} as NetCDF ({exc})") from None
    if ds.attrs.get("kind") != _KIND:
        raise ParameterError("microstructure.file", f"{str(path)!r} is not an esmsim microstructure file")
    seeds = ds["seed_position"].values if "seed_position" in ds else None
    spacing = ds.attrs["spacing_m"]
    return ColumnarMicrostructure(ds["labels"].values, (float(spacing[0]), float(spacing[1])),
                                  float(ds.attrs["thickness_m"]), ds["quaternion"].values, seeds,
                                  bool(ds.attrs["periodic"]), dict(ds.attrs["recipe"]),
                                  ds["power_weight"].values if "power_weight" in ds else None)
