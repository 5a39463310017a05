"""The instrument: tip positions, maps and their settings; the cantilever and band excitation."""

from ._cantilever import Cantilever, contact_resonance, contact_wavenumber, fit_sho, sho_parameters, sho_response
from ._relaxation import (RelaxationCalibration, RelaxationPulse, RelaxationResult, fit_relaxation,
                          relaxation_calibration, relaxation_spectroscopy, single_crystal_curves)
from ._spectroscopy import frequency_spectroscopy
from ._voltage import VoltageSweep, loop_metrics, voltage_spectroscopy
from ._scan import MapResult, MapSettings, ScanGrid, map_pixels, pixel_response, single_frequency_map
from ._volume import volume_response

__all__ = ["Cantilever", "contact_resonance", "contact_wavenumber", "fit_sho", "sho_parameters", "sho_response", "frequency_spectroscopy",
           "RelaxationPulse", "RelaxationResult", "RelaxationCalibration", "relaxation_spectroscopy",
           "relaxation_calibration", "single_crystal_curves", "fit_relaxation", "VoltageSweep", "voltage_spectroscopy",
           "loop_metrics",
           "MapResult", "MapSettings", "ScanGrid", "map_pixels", "pixel_response", "single_frequency_map", "volume_response"]
