"""Mechanics: Vegard eigenstrain to surface displacement."""

from ._halfspace import box_kernel, nucleus_of_strain, surface_displacement_points

__all__ = ["box_kernel", "nucleus_of_strain", "surface_displacement_points"]
