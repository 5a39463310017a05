"""Li transport: finite-volume operator, grain-boundary network, tip conditions, solvers."""

from ._boundaries import BoundaryNetwork, boundary_network, place_on_boundaries
from ._frequency import CONDITIONS, solve_frequency, tip_rhs, tip_terms
from ._operator import DiffusionSystem, assemble, strip_boxes, strip_to_sample
from ._tensor import assemble_tensor, grain_tensors
from ._time import TimeResult, integrate, integrate_butler_volmer
from ._volume import volume_system, volume_tensors
from ._tip import PROFILES, tip_profile

__all__ = ["integrate_butler_volmer", "volume_system", "volume_tensors", "CONDITIONS", "tip_terms", "assemble_tensor", "grain_tensors", "integrate", "TimeResult", "BoundaryNetwork", "boundary_network", "place_on_boundaries", "solve_frequency", "tip_rhs", "DiffusionSystem", "assemble", "strip_boxes", "strip_to_sample",
           "PROFILES", "tip_profile"]
