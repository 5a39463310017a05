"""Tensor-product voxel grids with explicit cell widths per axis (metres)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import ParameterError

__all__ = ["Grid", "graded_widths"]


@dataclass(frozen=True, eq=False)
class Grid:
    """A rectilinear grid of cells; axes are ordered (x, y, z), z into the sample.

    Attributes
    ----------
    dx, dy, dz : ndarray
        Cell widths along each axis in m (any positive values: uniform or graded).
    origin : tuple of float
        Coordinates (m) of the lower corner; the sample surface is ``z = origin[2]``.
    """

    dx: np.ndarray
    dy: np.ndarray
    dz: np.ndarray
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        for name in ("dx", "dy", "dz"):
            w = np.ascontiguousarray(np.atleast_1d(np.asarray(getattr(self, name), dtype=float)))
            if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or np.any(w <= 0):
                raise ParameterError(f"grid.{name}", "cell widths must be a non-empty 1-D array of positive numbers (m)")
            w.setflags(write=False)
            object.__setattr__(self, name, w)
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of cells ``(nx, ny, nz)``."""
        return (self.dx.size, self.dy.size, self.dz.size)

    @property
    def size(self) -> int:
        """Total number of cells."""
        return int(np.prod(self.shape))

    def edges(self, axis: int) -> np.ndarray:
        """Cell-edge coordinates along ``axis`` (m), length n + 1."""
        w = (self.dx, self.dy, self.dz)[axis]
        return self.origin[axis] + np.concatenate([[0.0], np.cumsum(w)])

    def centers(self, axis: int) -> np.ndarray:
        """Cell-centre coordinates along ``axis`` (m)."""
        e = self.edges(axis)
        return 0.5 * (e[1:] + e[:-1])

    @property
    def extent(self) -> tuple[float, float, float]:
        """Physical size ``(Lx, Ly, Lz)`` in m."""
        return (float(self.dx.sum()), float(self.dy.sum()), float(self.dz.sum()))

    def volumes(self) -> np.ndarray:
        """Cell volumes (m^3), shape ``(nx, ny, nz)``."""
        return self.dx[:, None, None] * self.dy[None, :, None] * self.dz[None, None, :]


def graded_widths(first: float, growth: float, total: float, *, max_width: float | None = None) -> np.ndarray:
    """Cell widths that start at ``first`` and grow geometrically until they sum to ``total``.

    Parameters
    ----------
    first : float
        Width of the first cell (m).
    growth : float
        Ratio of consecutive widths (>= 1).
    total : float
        Total length to cover (m). The last cell is stretched or merged so the
        sum is exactly ``total``.
    max_width : float, optional
        Widths are capped at this value (m); beyond the cap the grid is uniform.

    Returns
    -------
    ndarray
        Cell widths (m).
    """
    if not (first > 0 and total > 0 and growth >= 1.0):
        raise ParameterError("graded_widths", f"need first > 0, total > 0, growth >= 1; got {first}, {total}, {growth}")
    widths = []
    w, s = float(first), 0.0
    cap = np.inf if max_width is None else float(max_width)
    while s + w < total * (1 - 1e-12):
        widths.append(w)
        s += w
        w = min(w * growth, cap)
    rest = total - s
    if widths and rest < 0.5 * widths[-1]:
        widths[-1] += rest
    else:
        widths.append(rest)
    return np.asarray(widths)
