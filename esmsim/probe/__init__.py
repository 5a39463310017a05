"""The instrument: tip positions, maps and their settings."""

from ._scan import MapResult, MapSettings, map_pixels, pixel_response, single_frequency_map

__all__ = ["MapResult", "MapSettings", "map_pixels", "pixel_response", "single_frequency_map"]
