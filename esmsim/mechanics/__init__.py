"""Mechanics: Vegard eigenstrain to surface displacement."""

from ._contact import SILICON_TIP, Contact, hertz_average_points, hertz_contact
from ._fft import SurfaceKernel, surface_displacement_fft
from ._points import boussinesq_stress, deviator, tensor_box_weights
from ._halfspace import box_kernel, box_kernel_lateral, nucleus_of_strain, surface_displacement_points

__all__ = ["SurfaceKernel", "surface_displacement_fft", "box_kernel", "box_kernel_lateral", "nucleus_of_strain",
           "surface_displacement_points", "boussinesq_stress", "tensor_box_weights", "deviator", "Contact",
           "hertz_contact", "hertz_average_points", "SILICON_TIP"]
