"""Reading and writing ESM datasets and figures."""

from ._dataset import SIGN_CONVENTION, atomic_path, open_netcdf, read_netcdf, write_netcdf
from ._figures import band_figure, map_figure, microstructure_figure, loop_figure, relaxation_figure, spectroscopy_figure
from ._microstructure import load_microstructure, save_microstructure
from ._gwy import read_gwy_channels, write_gwy
from ._ibw import write_ibw
from ._readers import ReaderError, phase_to_radians, read_measurement
from ._usid import write_usid

__all__ = ["SIGN_CONVENTION", "atomic_path", "open_netcdf", "read_netcdf", "write_netcdf", "band_figure", "map_figure", "spectroscopy_figure", "relaxation_figure", "loop_figure",
           "microstructure_figure", "load_microstructure", "save_microstructure", "write_usid", "write_gwy", "read_gwy_channels", "write_ibw",
           "read_measurement", "phase_to_radians", "ReaderError"]
