"""Reading and writing ESM datasets and figures."""

from ._dataset import SIGN_CONVENTION, atomic_path, read_netcdf, write_netcdf
from ._figures import map_figure, microstructure_figure
from ._microstructure import load_microstructure, save_microstructure

__all__ = ["SIGN_CONVENTION", "atomic_path", "read_netcdf", "write_netcdf", "map_figure", "microstructure_figure", "load_microstructure", "save_microstructure"]
