"""Tip field profiles f(rho) on the surface (PHYSICS.md sec. 2).

The potentiostatic tip holds ``c(rho, z=0) = C0 f(rho)`` wherever the profile
applies; where it does not (outside a contact disk) the surface is no-flux.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PROFILES", "tip_profile"]

PROFILES = ("lorentzian", "point_charge", "disk")


def tip_profile(rho: np.ndarray, kind: str, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Surface profile ``f(rho)`` and the mask where the tip condition applies.

    Parameters
    ----------
    rho : ndarray
        Lateral distance from the tip (m).
    kind : {"lorentzian", "point_charge", "disk"}
        ``d^2/(rho^2 + d^2)``, ``d/sqrt(rho^2 + d^2)``, or 1 inside the contact disk of radius ``width``.
    width : float
        Field width d, or disk radius a (m).

    Returns
    -------
    f : ndarray
        Profile values (dimensionless, 1 under the tip).
    mask : ndarray of bool
        True where the tip condition applies (everywhere but outside the disk).
    """
    rho = np.asarray(rho, dtype=float)
    if kind == "lorentzian":
        return width ** 2 / (rho ** 2 + width ** 2), np.ones(rho.shape, bool)
    if kind == "point_charge":
        return width / np.sqrt(rho ** 2 + width ** 2), np.ones(rho.shape, bool)
    if kind == "disk":
        inside = rho <= width
        return inside.astype(float), inside
    raise ValueError(f"tip profile: got {kind!r}; allowed {', '.join(PROFILES)}")
