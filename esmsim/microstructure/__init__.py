"""Microstructures: grids, tessellations, orientations and their ground truth."""

from ._columnar import ColumnarMicrostructure, columnar_voronoi
from ._grid import Grid, graded_widths
from ._orientations import matrices_to_bunge, quaternions_to_matrices, random_quaternions, rotate_diagonal

__all__ = ["ColumnarMicrostructure", "columnar_voronoi", "Grid", "graded_widths", "matrices_to_bunge",
           "quaternions_to_matrices", "random_quaternions", "rotate_diagonal"]
