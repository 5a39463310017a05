"""Cantilever in contact: contact resonance (Euler-Bernoulli) and the band-excitation SHO.

Contact resonance (contact-resonance AFM model, Rabe et al.): a uniform
Euler-Bernoulli beam clamped at its base with the tip at its free end coupled
to the surface by a normal spring k* (the contact stiffness). With ``x = kappa L``
the wavenumber of a flexural mode, the modes satisfy

    x^3 (1 + cos x cosh x) + 3 (k*/k_c) (sin x cosh x - cos x sinh x) = 0,

``k_c = 3 E I / L^3`` the static spring constant; ``k* -> 0`` gives the free
modes (x1 = 1.8751), ``k* -> inf`` a pinned end (x1 = 3.9266). Frequencies scale
as x^2, so ``f0 = f_free (x / 1.8751)^2`` for the first mode. Tip mass, tip
height and lateral coupling are left out.

Band excitation (PHYSICS.md sec. 4): around the contact resonance the
detector signal is the simple harmonic oscillator of BGlib's convention,

    H(f) = A exp(i phi) f0^2 / (f^2 - i f f0 / Q - f0^2),

so ``|H(f0)| = A Q`` and ``arg H(f0) = phi + pi/2``. The quasi-static limit
``H(0) = -A exp(i phi)`` is the signal of the surface moving slowly: the tip
follows the surface through the spring, ``deflection = u k*/(k* + k_c)``,
read in volts through the InvOLS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import ParameterError

__all__ = ["Cantilever", "contact_wavenumber", "contact_resonance", "sho_response", "sho_parameters", "fit_sho",
           "SHO_FIELDS", "SHO_DTYPE", "FREE_ROOTS", "PINNED_ROOTS"]

# Roots of 1 + cos x cosh x = 0 (clamped-free) and tan x = tanh x (clamped-pinned), first three modes.
FREE_ROOTS = (1.8751040687119611, 4.694091132974175, 7.854757438237613)
PINNED_ROOTS = (3.9266023120479185, 7.068582745628732, 10.210176122813031)

#: BGlib's field names of the SHO compound dataset (``sho32``), in its order.
SHO_FIELDS = ("Amplitude [V]", "Frequency [Hz]", "Quality Factor", "Phase [rad]", "R2 Criterion")
#: BGlib's ``sho32``: the five fields as float32.
SHO_DTYPE = np.dtype({"names": list(SHO_FIELDS), "formats": [np.float32] * len(SHO_FIELDS)})


@dataclass(frozen=True)
class Cantilever:
    """A rectangular cantilever in contact (SI units).

    Attributes
    ----------
    spring_constant : float
        Static spring constant k_c (N/m).
    free_resonance : float
        First free flexural resonance f_free (Hz).
    quality_factor : float
        Quality factor Q of the contact resonance.
    invols : float
        Inverse optical lever sensitivity (m/V): deflection per detector volt.
    mode : int
        Contact mode used for band excitation (1, 2 or 3).
    """

    spring_constant: float = 3.0
    free_resonance: float = 75e3
    quality_factor: float = 100.0
    invols: float = 50e-9
    mode: int = 1

    def __post_init__(self):
        for name in ("spring_constant", "free_resonance", "quality_factor", "invols"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ParameterError(f"cantilever.{name}", f"got {v!r}; must be positive and finite")
        if self.mode not in (1, 2, 3):
            raise ParameterError("cantilever.mode", f"got {self.mode!r}; allowed: 1, 2, 3")

    def resonance(self, contact_stiffness):
        """Contact resonance f0 (Hz) for contact stiffness k* (N/m); see :func:`contact_resonance`."""
        return contact_resonance(contact_stiffness, self)

    def modal_stiffness(self, contact_stiffness):
        """Effective stiffness of the contact mode (N/m), ``k_c (x / 1.8751)^4``.

        The modal mass of a uniform beam mode is the same for all modes to within
        the mode shape, so the modal stiffness scales with f^2; used for the
        cantilever's thermal noise.
        """
        x = contact_wavenumber(np.asarray(contact_stiffness, float) / self.spring_constant, self.mode)
        return self.spring_constant * (x / FREE_ROOTS[0]) ** 4

    def transfer(self, contact_stiffness):
        """Quasi-static deflection per surface displacement, ``k* / (k* + k_c)``."""
        k = np.asarray(contact_stiffness, float)
        return k / (k + self.spring_constant)


def _characteristic(x, alpha):
    """The contact-mode equation divided by (1 + alpha), finite for alpha = inf."""
    w = np.where(np.isinf(alpha), 0.0, 1.0 / (1.0 + np.where(np.isinf(alpha), 0.0, alpha)))
    c, s, ch, sh = np.cos(x), np.sin(x), np.cosh(x), np.sinh(x)
    return w * x ** 3 * (1 + c * ch) + 3 * (1 - w) * (s * ch - c * sh)


def contact_wavenumber(alpha, mode: int = 1):
    """Dimensionless wavenumber x = kappa L of a contact mode, for k*/k_c = ``alpha`` (array).

    The root of the contact-mode equation (module docstring) between the
    free root and the pinned root of the same mode, by bisection to round-off
    (vectorised; 60 halvings of an interval < 2.1).

    Parameters
    ----------
    alpha : float or ndarray
        Contact stiffness over cantilever spring constant, >= 0 (``inf``: pinned).
    mode : int
        1, 2 or 3.
    """
    a = np.asarray(alpha, float)
    if np.any(~(a >= 0)):
        raise ParameterError("alpha", "k*/k_c must be >= 0 (inf allowed)")
    if mode not in (1, 2, 3):
        raise ParameterError("mode", f"got {mode!r}; allowed: 1, 2, 3")
    lo = np.full(a.shape, FREE_ROOTS[mode - 1])
    hi = np.full(a.shape, PINNED_ROOTS[mode - 1])
    g_lo = _characteristic(lo + 1e-12, a)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        g = _characteristic(mid, a)
        same = np.sign(g) == np.sign(g_lo)
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    x = 0.5 * (lo + hi)
    return np.where(a == 0, FREE_ROOTS[mode - 1], x)


def contact_resonance(contact_stiffness, cantilever: Cantilever):
    """Contact resonance frequency f0 (Hz) of ``cantilever.mode`` for contact stiffness k* (N/m).

    ``f0 = f_free (x / 1.8751)^2`` with x from :func:`contact_wavenumber`.
    """
    x = contact_wavenumber(np.asarray(contact_stiffness, float) / cantilever.spring_constant, cantilever.mode)
    return cantilever.free_resonance * (x / FREE_ROOTS[0]) ** 2


def sho_response(f, amplitude, frequency, quality, phase):
    """BGlib's simple harmonic oscillator ``A exp(i phi) f0^2 / (f^2 - i f f0 / Q - f0^2)``.

    Parameters broadcast against each other and against ``f`` (Hz); a map's
    parameters of shape (...,) with ``f`` of shape (nbins,) need ``[..., None]``.
    """
    f = np.asarray(f, float)
    f0 = np.asarray(frequency, float)
    return amplitude * np.exp(1j * np.asarray(phase)) * f0 ** 2 / (f ** 2 - 1j * f * f0 / quality - f0 ** 2)


def sho_parameters(quasi_static):
    """Amplitude A (same unit) and phase phi (rad) of the SHO whose quasi-static limit is ``quasi_static``.

    ``H(0) = -A exp(i phi)``, so ``A = |s|`` and ``phi = arg(-s)`` in (-pi, pi].
    """
    s = np.asarray(quasi_static)
    return np.abs(s), np.angle(-s)


def fit_sho(f, spectra, *, iterations: int = 30):
    """Least-squares fit of BGlib's SHO to complex spectra, vectorised over pixels.

    An algebraic fit (the SHO multiplied out, ``H f^2 = u + v H + i w f H``, linear
    in u = A exp(i phi) f0^2, v = f0^2, w = f0/Q) gives the start; Levenberg-Marquardt
    on the complex residual (four real parameters per pixel, analytic Jacobian)
    refines it. Noise-free SHO spectra are recovered to round-off.

    Parameters
    ----------
    f : (nbins,) array
        Bin frequencies (Hz).
    spectra : (..., nbins) complex array

    Returns
    -------
    structured ndarray (...,)
        Fields :data:`SHO_FIELDS` (float32 as in BGlib's ``sho32``), phase in (-pi, pi],
        R2 = 1 - sum|H - fit|^2 / sum|H - mean H|^2. All NaN where the fit fails (non-finite parameters,
        Q = 0 in float32, or a resonance below half or above twice the band's frequencies: noise-only
        spectra).
    """
    f = np.asarray(f, float)
    H = np.asarray(spectra, complex)
    if H.shape[-1] != f.size or f.ndim != 1 or f.size < 4:
        raise ParameterError("spectra", f"last axis {H.shape[-1:]} must match {f.size} bin frequencies (>= 4)")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # runaway fits are flagged NaN below
        return _fit_sho(f, H, iterations)


def _fit_sho(f, H, iterations):
    shape = H.shape[:-1]
    H = H.reshape(-1, f.size)
    fc = f.mean()
    x = f / fc  # scaled frequencies: the normal equations stay well conditioned
    # algebraic start: rows Re/Im of  u + v H + i w x H = H x^2
    Hr, Hi = H.real, H.imag
    one, zero = np.ones_like(Hr), np.zeros_like(Hr)
    rows_r = np.stack([one, zero, Hr, -x * Hi], -1)
    rows_i = np.stack([zero, one, Hi, x * Hr], -1)
    M = np.concatenate([rows_r, rows_i], 1)
    rhs = np.concatenate([x ** 2 * Hr, x ** 2 * Hi], 1)
    MtM = np.einsum("pki,pkj->pij", M, M)
    Mtb = np.einsum("pki,pk->pi", M, rhs)
    u = np.linalg.solve(MtM + 1e-300 * np.eye(4), Mtb[..., None])[..., 0]
    v = np.clip(u[:, 2], x.min() ** 2 * 0.25, x.max() ** 2 * 4)
    x0 = np.sqrt(v)
    q = np.clip(x0 / np.maximum(u[:, 3], 1e-12), 0.5, 1e6)
    c = (u[:, 0] + 1j * u[:, 1]) / v
    p = np.stack([x0, np.log(q), c.real, c.imag], -1)

    def model(p):
        x0, Q = p[:, 0:1], np.exp(p[:, 1:2])
        den = x ** 2 - 1j * x * x0 / Q - x0 ** 2
        g = x0 ** 2 / den
        cc = (p[:, 2:3] + 1j * p[:, 3:4])
        return g, den, cc

    def residual(p):
        g, _, cc = model(p)
        return H - cc * g

    lam = np.full(len(H), 1e-3)
    r = residual(p)
    cost = np.sum(np.abs(r) ** 2, 1)
    for _ in range(iterations):
        g, den, cc = model(p)
        x0, Q = p[:, 0:1], np.exp(p[:, 1:2])
        dg_dx0 = 2 * x0 / den - x0 ** 2 * (-1j * x / Q - 2 * x0) / den ** 2
        dg_dlnQ = -x0 ** 2 * (1j * x * x0 / Q) / den ** 2
        J = np.stack([cc * dg_dx0, cc * dg_dlnQ, g, 1j * g], -1)  # d model / d p, complex (P, n, 4)
        Jr = np.concatenate([J.real, J.imag], 1)
        rr = np.concatenate([r.real, r.imag], 1)
        A = np.einsum("pki,pkj->pij", Jr, Jr)
        b = np.einsum("pki,pk->pi", Jr, rr)
        diag = np.einsum("pii->pi", A)
        step = np.linalg.solve(A + (lam[:, None] * np.maximum(diag, 1e-300))[..., None] * np.eye(4),
                               b[..., None])[..., 0]
        trial = p + step
        trial[:, 0] = np.abs(trial[:, 0])
        r_t = residual(trial)
        cost_t = np.sum(np.abs(r_t) ** 2, 1)
        ok = cost_t <= cost
        p = np.where(ok[:, None], trial, p)
        r = np.where(ok[:, None], r_t, r)
        cost = np.where(ok, cost_t, cost)
        lam = np.where(ok, lam * 0.2, lam * 10.0)
    cc = p[:, 2] + 1j * p[:, 3]
    ss_tot = np.sum(np.abs(H - H.mean(1, keepdims=True)) ** 2, 1)
    out = np.empty(len(H), dtype=SHO_DTYPE)
    out["Amplitude [V]"] = np.abs(cc)
    out["Frequency [Hz]"] = p[:, 0] * fc
    out["Quality Factor"] = np.exp(p[:, 1])
    out["Phase [rad]"] = np.angle(cc)
    out["R2 Criterion"] = 1 - cost / np.where(ss_tot > 0, ss_tot, np.inf)
    # a fit that ran away (noise-only spectra): non-finite parameters or a resonance far outside the band
    bad = ~(np.isfinite(p).all(1) & (p[:, 0] * fc > 0.5 * f.min()) & (p[:, 0] * fc < 2 * f.max())
            & np.isfinite(cost) & (out["Quality Factor"] > 0) & np.isfinite(out["Amplitude [V]"]))
    for name in SHO_FIELDS:
        out[name][bad] = np.nan
    return out.reshape(shape)
