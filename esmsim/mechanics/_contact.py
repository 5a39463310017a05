"""Tip-surface contact (Hertz): contact radius, reduced modulus, contact stiffness (PHYSICS.md sec. 3).

    a = (3 F R_tip / (4 E*))^(1/3),   1/E* = (1 - nu_t^2)/E_t + (1 - nu_s^2)/E_s,   k* = 2 a E*.

The default tip is silicon (E = 169 GPa, nu = 0.27: the usual value along <110>, the axis of a
standard cantilever; Hopcroft, Nix & Kenny, J. Microelectromech. Syst. 19, 229 (2010)); coated tips
(Pt/Ir, diamond) differ and are given explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import ParameterError

__all__ = ["Contact", "hertz_contact", "hertz_average_points", "SILICON_TIP"]

SILICON_TIP = (169e9, 0.27)


@dataclass(frozen=True)
class Contact:
    """Hertzian contact of a spherical tip on a flat sample.

    Attributes
    ----------
    radius : float or ndarray
        Contact radius a (m).
    reduced_modulus : float or ndarray
        E* (Pa).
    stiffness : float or ndarray
        Normal contact stiffness k* = 2 a E* (N/m).
    indentation : float or ndarray
        Indentation depth a^2 / R_tip (m).
    """

    radius: float | np.ndarray
    reduced_modulus: float | np.ndarray
    stiffness: float | np.ndarray
    indentation: float | np.ndarray


def hertz_contact(force, tip_radius, sample_modulus, sample_nu, *, tip_modulus=SILICON_TIP[0],
                  tip_nu=SILICON_TIP[1]) -> Contact:
    """Hertz contact of a spherical tip: radius, reduced modulus and stiffness.

    Parameters
    ----------
    force : float or ndarray
        Normal load F (N), > 0.
    tip_radius : float
        Tip radius of curvature R_tip (m), > 0.
    sample_modulus : float or ndarray
        Sample modulus E_s (Pa): Young's modulus of an isotropic sample, or a grain's indentation
        modulus M = E_s / (1 - nu_s^2) with ``sample_nu = 0``.
    sample_nu : float
        Sample Poisson's ratio.
    tip_modulus, tip_nu : float
        Tip Young's modulus (Pa) and Poisson's ratio (default silicon).

    Returns
    -------
    Contact
    """
    F = np.asarray(force, float)
    for name, v in (("force", F), ("tip_radius", tip_radius), ("sample_modulus", sample_modulus),
                    ("tip_modulus", tip_modulus)):
        v = np.asarray(v, float)
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ParameterError(name, f"got {v if v.size < 5 else '...'}; must be positive and finite")
    for name, v in (("sample_nu", sample_nu), ("tip_nu", tip_nu)):
        if not -1.0 < v < 0.5:
            raise ParameterError(name, f"got {v!r}; Poisson's ratio must lie in (-1, 0.5)")
    inv = (1 - tip_nu ** 2) / tip_modulus + (1 - sample_nu ** 2) / np.asarray(sample_modulus, float)
    E_star = 1.0 / inv
    a = np.cbrt(3 * F * tip_radius / (4 * E_star))
    return Contact(radius=a, reduced_modulus=E_star, stiffness=2 * a * E_star, indentation=a ** 2 / tip_radius)


def hertz_average_points(radius: float, n_radial: int = 3, n_angular: int = 8):
    """Quadrature of the Hertz-pressure-weighted mean over a contact disk.

    A rigid tip pressed on the surface senses, by reciprocity, the surface displacement averaged with the
    contact pressure ``p(rho) ~ sqrt(1 - rho^2 / a^2)``. Radially Gauss-Jacobi in ``u = rho^2 / a^2``
    (weight ``sqrt(1 - u)``, exact for polynomials of degree ``2 n_radial - 1`` in u), angularly
    ``n_angular`` equally spaced points.

    Parameters
    ----------
    radius : float
        Contact radius a (m), >= 0 (0 gives the single point at the centre).
    n_radial, n_angular : int

    Returns
    -------
    offsets : ndarray, shape (m, 2)
        Points relative to the tip (m).
    weights : ndarray, shape (m,)
        Summing to 1.
    """
    from scipy.special import roots_jacobi

    if not (np.isfinite(radius) and radius >= 0):
        raise ParameterError("contact radius", f"got {radius!r} m; must be finite and >= 0")
    if radius == 0:
        return np.zeros((1, 2)), np.ones(1)
    x, w = roots_jacobi(int(n_radial), 0.5, 0.0)
    r = radius * np.sqrt((1 + x) / 2)
    th = 2 * np.pi * (np.arange(n_angular) + 0.5) / n_angular
    R, T = np.meshgrid(r, th, indexing="ij")
    weights = np.repeat(w / w.sum(), n_angular) / n_angular
    return np.column_stack([(R * np.cos(T)).ravel(), (R * np.sin(T)).ravel()]), weights
