"""Microstructures: grids, tessellations, orientations and their ground truth."""

from ._columnar import (ColumnarMicrostructure, bunge_to_quaternions, columnar_from_labels, columnar_laguerre,
                        columnar_seeded, columnar_voronoi, fibre_quaternions)
from ._defects import add_cracks, add_pores
from ._grid import Grid, graded_widths
from ._segment import segment_grains
from ._tessellation import fit_power_diagram, label_centroids, power_labels
from ._voxel import Microstructure, bicrystal, columnar_film, extrude, from_labels, laguerre, voronoi, voxel_faces
from ._truth import boundary_mask, boundary_table, grain_table, ground_truth, topography, triple_junctions, triple_lines
from ._orientations import matrices_to_bunge, quaternions_to_matrices, random_quaternions, rotate_diagonal
from ._symmetry import (BOUNDARY_CLASSES, SYMMETRIES, classify_boundaries, disorientation_angle, quat_conjugate,
                        quat_multiply, symmetry_group)

__all__ = ["Microstructure", "voronoi", "laguerre", "bicrystal", "columnar_film", "extrude", "from_labels",
           "voxel_faces", "add_pores", "add_cracks", "power_labels", "label_centroids", "fit_power_diagram",
           "ColumnarMicrostructure", "columnar_voronoi", "columnar_laguerre", "columnar_seeded", "bunge_to_quaternions", "columnar_from_labels", "fibre_quaternions", "segment_grains", "ground_truth", "boundary_mask", "boundary_table", "grain_table", "topography", "triple_junctions", "triple_lines", "Grid", "graded_widths", "matrices_to_bunge",
           "quaternions_to_matrices", "random_quaternions", "rotate_diagonal", "BOUNDARY_CLASSES", "SYMMETRIES",
           "classify_boundaries", "disorientation_angle", "quat_conjugate", "quat_multiply", "symmetry_group"]
