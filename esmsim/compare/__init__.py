"""Comparing simulated and measured ESM maps.

Preprocessing of measured images (:mod:`esmsim.compare._preprocess`): plane
and line levelling, scar and outlier removal, phase wrapping, volts to metres.
Measured files are read by :func:`esmsim.io.read_measurement`. Registration of a
synthetic map onto a measured one (:func:`register`, :func:`resample`) and the
metrics that compare them (:func:`compare_metrics` and its parts). The whole
chain measured scan -> segmented film -> simulation -> comparison
(:func:`microstructure_from_scan`, :func:`simulate_scan`, :func:`compare`,
:func:`compare_figure`) and parameter estimation from a measured map
(:func:`fit_parameters` with a forward model from :func:`map_forward`).
"""

from ._preprocess import (find_scars, level_lines, level_plane, remove_outliers, remove_scars, volts_to_metres,
                          wrap_phase)

from ._metrics import (boundary_contrast, boundary_profile, compare_metrics, histogram_distance, ncc, psd_distance,
                       radial_psd, ssim)
from ._register import Registration, register, resample
from ._pipeline import (CompareResult, ScanSegmentation, ScanSimulation, compare, compare_figure, load_map,
                        microstructure_from_scan, simulate_scan)
from ._fit import FitResult, MapForward, fit_parameters, map_forward, misfit, scan_from_registration

__all__ = ["Registration", "register", "resample", "ssim", "ncc", "psd_distance", "radial_psd", "histogram_distance",
           "boundary_profile", "boundary_contrast", "compare_metrics",
           "level_plane", "level_lines", "find_scars", "remove_scars", "remove_outliers", "wrap_phase",
           "volts_to_metres",
           "microstructure_from_scan", "ScanSegmentation", "simulate_scan", "ScanSimulation", "compare",
           "CompareResult", "compare_figure", "load_map",
           "fit_parameters", "FitResult", "map_forward", "MapForward", "misfit", "scan_from_registration"]
