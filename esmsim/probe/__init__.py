"""The instrument: tip positions, maps and their settings."""

from ._scan import MapResult, MapSettings, map_pixels, pixel_response, single_frequency_map
from ._volume import volume_response

__all__ = ["MapResult", "MapSettings", "map_pixels", "pixel_response", "single_frequency_map", "volume_response"]
