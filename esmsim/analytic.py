"""Closed-form results used to validate the numerical engines (PHYSICS.md sec. 5).

All functions take and return SI quantities unless stated otherwise.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, special

__all__ = ["lorentzian_response_factor", "halfspace_lorentzian_u3", "hertz_weight"]


def hertz_weight(x):
    """Mean of ``J0(k rho)`` over a contact disk of radius a weighted by the Hertz pressure
    ``sqrt(1 - rho^2 / a^2)``: ``3 (sin x - x cos x) / x^3`` with ``x = k a`` (1 at x = 0)."""
    x = np.asarray(x, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = 3 * (np.sin(x) - x * np.cos(x)) / x ** 3
    return np.where(x < 1e-3, 1 - x ** 2 / 10, val)


def lorentzian_response_factor(Omega: float, contact: float = 0.0) -> complex:
    """``F(Omega) = 2 Int_0^inf s K0(s) / (s + sqrt(s^2 + i Omega)) ds`` (PHYSICS.md sec. 5, item 7).

    Derived by Hankel transform for a homogeneous isotropic half-space whose
    surface is held at ``C0 d^2 / (rho^2 + d^2)`` at angular frequency omega,
    ``Omega = omega d^2 / D``. Limits: F(0) = pi/2, F -> 2/sqrt(i Omega) for
    Omega -> inf. Evaluated by adaptive quadrature to ~1e-10 relative.

    With ``contact = a / d > 0`` the displacement is averaged over a contact disk of radius a weighted by
    the Hertz pressure (what a rigid tip in contact senses, by reciprocity): the integrand takes the factor
    :func:`hertz_weight` ``(s a / d)`` (the Hankel transform of the weight).

    Parameters
    ----------
    Omega : float
        Dimensionless frequency (>= 0).
    contact : float
        Contact radius over the Lorentzian width, a / d (>= 0; 0: the point under the tip).

    Returns
    -------
    complex
    """
    if Omega < 0:
        raise ValueError(f"Omega: got {Omega}; must be >= 0")

    def integrand(s):
        w = hertz_weight(s * contact) if contact > 0 else 1.0
        return 2.0 * s * special.k0(s) * w / (s + np.sqrt(s * s + 1j * Omega))

    pts = sorted({0.0, min(1.0, np.sqrt(Omega)) if Omega > 0 else 1.0, 1.0, 50.0})
    total = 0.0 + 0.0j
    for a, b in zip(pts[:-1], pts[1:]):
        if b <= a:
            continue
        re = integrate.quad(lambda s: integrand(s).real, a, b, limit=400, epsabs=0, epsrel=1e-11)[0]
        im = integrate.quad(lambda s: integrand(s).imag, a, b, limit=400, epsabs=0, epsrel=1e-11)[0]
        total += re + 1j * im
    re = integrate.quad(lambda s: integrand(s).real, pts[-1], np.inf, limit=200)[0]
    im = integrate.quad(lambda s: integrand(s).imag, pts[-1], np.inf, limit=200)[0]
    return complex(total + re + 1j * im)


def halfspace_lorentzian_u3(*, frequency: float, D: float, width: float, C0: float, beta: float, nu: float,
                            contact_radius: float = 0.0) -> complex:
    """Complex outward displacement under the tip, ``u3(0) = (1 + nu) beta C0 d F(omega d^2 / D)`` (m),
    or its Hertz-weighted mean over a contact of radius ``contact_radius`` (see
    :func:`lorentzian_response_factor`).

    Parameters
    ----------
    frequency : float
        Excitation frequency f (Hz); omega = 2 pi f.
    D : float
        Diffusivity (m^2/s).
    width : float
        Lorentzian width d (m).
    C0 : float
        Surface concentration amplitude under the tip (mol/m^3).
    beta : float
        Isotropic Vegard coefficient (m^3/mol).
    nu : float
        Poisson's ratio.
    contact_radius : float
        Contact radius a (m); 0: the point under the tip.
    """
    Omega = 2 * np.pi * frequency * width ** 2 / D
    return (1 + nu) * beta * C0 * width * lorentzian_response_factor(Omega, contact_radius / width)
