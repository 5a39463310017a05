"""Li transport: finite-volume operator, grain-boundary network, tip conditions, solvers."""

from ._boundaries import BoundaryNetwork, boundary_network
from ._frequency import solve_frequency, tip_rhs
from ._operator import DiffusionSystem, assemble
from ._tip import PROFILES, tip_profile

__all__ = ["BoundaryNetwork", "boundary_network", "solve_frequency", "tip_rhs", "DiffusionSystem", "assemble",
           "PROFILES", "tip_profile"]
