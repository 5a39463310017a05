"""Band-excitation ESM: the cantilever's drive-band response at every pixel, with the instrument's artefacts.

The Li response u3 (m/V, from the map engine at the band centre) moves the
surface; the tip follows through the contact spring, and the cantilever's
contact resonance (set by the local contact stiffness, :mod:`._cantilever`)
shapes the detector signal over the band as BGlib's simple harmonic
oscillator. Every artefact is switchable and the clean spectra are kept.

Model choices (docs/probe.md):

- the Li response is taken constant across the band (its variation over a
  band of a few percent of f0 is ~ bandwidth / (2 f0) relative, i.e. ~ 5 %
  from edge to edge for a 40 kHz band at 350 kHz; it would fold into the
  fitted amplitude as a tilt, not a shift of f0);
- contact stiffness from Hertz with the tip radius combined with the local
  mean curvature of the topography (smoothed over the tip radius; the
  effective radius clipped to [R_tip / 10, 10 R_tip] where Hertz fails);
- the electrostatic force drives the same contact mode: a complex
  deflection ``k_es (V_dc - V_cpd) V_ac`` added to the quasi-static signal;
- thermal noise of the contact mode as an SHO of modal stiffness
  :meth:`Cantilever.modal_stiffness`, uncorrelated with the drive;
- drift shifts where each pixel is sampled, linearly in acquisition time
  (trace and retrace share each line period);
  line offsets (height) and line gains (response) are per scan line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import ParameterError
from ._cantilever import Cantilever, fit_sho, sho_parameters, sho_response

__all__ = ["BandExcitation", "Artefacts", "contact_stiffness_map", "band_excitation"]

K_BOLTZMANN = 1.380649e-23  # J/K (exact, SI 2019)


@dataclass(frozen=True)
class BandExcitation:
    """Drive band (SI units).

    Attributes
    ----------
    center : float or None
        Band centre (Hz); None: the contact resonance of the flat surface.
    bandwidth : float
        Width of the band (Hz).
    bins : int
        Frequency bins across the band.
    """

    center: float | None = None
    bandwidth: float = 40e3
    bins: int = 64

    def __post_init__(self):
        if not (self.bandwidth > 0):
            raise ParameterError("band_excitation.bandwidth", f"got {self.bandwidth!r}; must be > 0 Hz")
        if self.bins < 8:
            raise ParameterError("band_excitation.bins", f"got {self.bins!r}; at least 8 bins are needed for a fit")

    def frequencies(self, center: float) -> np.ndarray:
        """Bin frequencies (Hz) of a band centred on ``center``."""
        if self.bandwidth >= 2 * center:
            raise ParameterError("band_excitation.bandwidth", f"got {self.bandwidth:g} Hz; must be less than twice the "
                                                              f"band centre {center:g} Hz")
        return center + self.bandwidth * (np.arange(self.bins) / (self.bins - 1) - 0.5)


@dataclass(frozen=True)
class Artefacts:
    """Instrument artefacts (SI units); the defaults switch everything off.

    Attributes
    ----------
    detector_noise : float
        Deflection noise density of the detector (m/sqrt(Hz)), white.
    thermal_noise : bool
        Add the cantilever's thermal motion (contact mode as an SHO at ``temperature``).
    temperature : float
        K.
    electrostatic : float
        Electrostatic coupling k_es (m/V^2): deflection ``k_es (V_dc - V_cpd) V_ac``.
    electrostatic_phase : float
        Phase of the electrostatic deflection relative to the bias (rad).
    contact_potential : float
        Tip-sample contact potential difference V_cpd (V).
    topography_crosstalk : bool
        Contact stiffness (hence f0 and the tip-surface transfer) follows the local surface curvature.
    drift : (float, float)
        Lateral drift velocity (m/s) in x and y.
    line_offset : float
        Standard deviation of the height offset of each scan line (m).
    line_gain : float
        Standard deviation of the relative response gain of each scan line.
    """

    detector_noise: float = 0.0
    thermal_noise: bool = False
    temperature: float = 300.0
    electrostatic: float = 0.0
    electrostatic_phase: float = 0.0
    contact_potential: float = 0.0
    topography_crosstalk: bool = False
    drift: tuple[float, float] = (0.0, 0.0)
    line_offset: float = 0.0
    line_gain: float = 0.0


def contact_stiffness_map(height, spacing, tip_radius, force, sample_modulus, sample_nu, *, curvature=True,
                          periodic=True):
    """Hertz contact radius and stiffness at every surface pixel (SI units).

    Parameters
    ----------
    height : (nx, ny) array
        Surface height (m), positive out of the sample.
    spacing : float
        Pixel size (m).
    tip_radius, force : float
        Tip radius (m) and normal load (N).
    sample_modulus, sample_nu : float
        Sample Young's modulus (Pa) and Poisson's ratio.
    curvature : bool
        Combine the tip radius with the local mean curvature ``-lap(h)/2`` of the height (smoothed
        with a Gaussian of sigma = R_tip / 2): ``1/R = 1/R_tip - lap(h)/2``, R clipped to
        [R_tip/10, 10 R_tip]. False: flat surface everywhere.
    periodic : bool
        Wrap the height at the edges (periodic films).

    Returns
    -------
    radius, stiffness : (nx, ny) arrays
        Contact radius a (m) and stiffness k* = 2 a E* (N/m).
    """
    from scipy import ndimage

    from ..mechanics import hertz_contact

    h = np.asarray(height, float)
    if curvature:
        mode = "wrap" if periodic else "nearest"
        hs = ndimage.gaussian_filter(h, tip_radius / 2 / spacing, mode=mode)
        lap = ndimage.laplace(hs, mode=mode) / spacing ** 2
        inv = 1.0 / tip_radius - lap / 2
        R = np.clip(1.0 / np.maximum(inv, 1e-300), tip_radius / 10, tip_radius * 10)
        R = np.where(inv > 0, R, tip_radius * 10)
    else:
        R = np.full(h.shape, float(tip_radius))
    c = hertz_contact(force, R, sample_modulus, sample_nu)
    return np.asarray(c.radius, float), np.asarray(c.stiffness, float)


def _resample(field, dx, dy, periodic):
    """``field`` (nx, ny) sampled at (i + dx, j + dy) (pixel units), linear interpolation."""
    from scipy import ndimage

    nx, ny = field.shape
    I, J = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    coords = [I + dx, J + dy]
    mode = "grid-wrap" if periodic else "nearest"
    if np.iscomplexobj(field):
        return (ndimage.map_coordinates(field.real, coords, order=1, mode=mode)
                + 1j * ndimage.map_coordinates(field.imag, coords, order=1, mode=mode))
    return ndimage.map_coordinates(field, coords, order=1, mode=mode)


def band_excitation(response, k_clean, k_local, height, *, cantilever: Cantilever, band: BandExcitation,
                    artefacts: Artefacts, bias_ac: float, bias_dc: float = 0.0, pixel_size: float = 1.0,
                    line_rate: float = 1.0, periodic: bool = True, seed: int = 0, fit: bool = True,
                    retrace: bool = False) -> dict:
    """Band-excitation spectra of a map, clean and as recorded, with the SHO truth and fits.

    Parameters
    ----------
    response : (nx, ny) complex array
        Li response u3 per volt at the band centre (m/V), at the map pixels.
    k_clean : float
        Contact stiffness of the flat surface (N/m): the clean data's.
    k_local : (nx, ny) array
        Local contact stiffness (N/m), used when ``artefacts.topography_crosstalk``.
    height : (nx, ny) array
        Surface height at the pixels (m).
    cantilever, band, artefacts
        See :class:`Cantilever`, :class:`BandExcitation`, :class:`Artefacts`.
    bias_ac, bias_dc : float
        AC amplitude and DC offset of the tip bias (V).
    pixel_size : (float) m; line_rate : Hz
        For the drift: a line period ``1 / line_rate`` holds the trace and the retrace, so trace pixel
        (i, j) is recorded at ``t = (j + i / (2 nx)) / line_rate`` and retrace pixel (i, j) at
        ``(j + 1/2 + (nx - 1 - i) / (2 nx)) / line_rate``.
    periodic : bool
        Wrap drifted positions (periodic film) or hold the edge value.
    seed : int
        Seed of the artefacts' random numbers (noise, line offsets and gains); bit-for-bit reproducible.
    fit : bool
        Fit the SHO to the recorded spectra (:func:`fit_sho`).
    retrace : bool
        Also record the retrace: its own noise and drift, the same line gains and height offsets (the tip
        state of the line).

    Returns
    -------
    dict
        ``frequency`` (nbins,), ``center``, ``clean`` and ``recorded`` spectra (nx, ny, nbins) in volts,
        ``truth`` (SHO of the clean data: amplitude V, frequency Hz, quality, phase rad), ``fit``
        (structured, recorded data; None without ``fit``), ``height`` as recorded, ``k_recorded``,
        ``electrostatic`` (complex V offset before the resonance), ``line_gain``, ``drift`` (pixel shifts);
        with ``retrace`` also ``retrace``: ``recorded``, ``fit``, ``height``, ``k_recorded``, ``drift`` of that pass.
    """
    rng = np.random.default_rng([seed, 6])  # stream 6: the instrument (not the microstructure's)
    cl = cantilever
    response = np.asarray(response, complex)
    nx, ny = response.shape
    f0_clean = cl.resonance(k_clean)
    center = band.center if band.center is not None else float(f0_clean)
    f = band.frequencies(center)
    if not f[0] <= f0_clean <= f[-1]:
        raise ParameterError("band_excitation.center", f"the drive band {f[0]:.6g} - {f[-1]:.6g} Hz misses the contact "
                                                       f"resonance {float(f0_clean):.6g} Hz of the flat surface (from "
                                                       "the cantilever and the tip's Hertz contact); centre the band "
                                                       "on it ('auto') or widen it")
    # clean: flat contact, no artefacts
    s_clean = response * bias_ac * cl.transfer(k_clean) / cl.invols  # quasi-static detector signal, V
    A_t, phi_t = sho_parameters(s_clean)
    truth = {"amplitude": A_t, "frequency": np.full((nx, ny), float(f0_clean)),
             "quality": np.full((nx, ny), cl.quality_factor), "phase": phi_t}
    clean = sho_response(f, A_t[..., None], f0_clean, cl.quality_factor, phi_t[..., None])

    # recorded: one line period 1/line_rate holds the trace (x increasing) and the retrace (x decreasing)
    a = artefacts
    gain = 1 + a.line_gain * rng.standard_normal(ny) if a.line_gain else np.ones(ny)  # tip state per line
    offset = a.line_offset * rng.standard_normal(ny) if a.line_offset else np.zeros(ny)
    es = a.electrostatic * np.exp(1j * a.electrostatic_phase) * (bias_dc - a.contact_potential) * bias_ac / cl.invols
    k_map = np.asarray(k_local, float) if a.topography_crosstalk else np.full((nx, ny), float(k_clean))
    i, j = np.arange(nx)[:, None], np.arange(ny)[None, :]
    passes = {"trace": (j + 0.5 * i / nx) / line_rate}
    if retrace:
        passes["retrace"] = (j + 0.5 + 0.5 * (nx - 1 - i) / nx) / line_rate
    out = {"frequency": f, "center": center, "clean": clean, "truth": truth, "electrostatic": es, "line_gain": gain}
    for name, t in passes.items():
        rec = _record(response, k_map, height, t, f, cl, band, a, rng, gain=gain, offset=offset, es=es,
                      bias_ac=bias_ac, pixel_size=pixel_size, periodic=periodic, fit=fit)
        if name == "trace":
            out.update(rec)
        else:
            out["retrace"] = rec
    return out


def _record(response, k_map, height, t, f, cl, band, a, rng, *, gain, offset, es, bias_ac, pixel_size, periodic,
            fit):
    """One recorded pass: drift (sampling at the drifted positions at times ``t``), line gain and offset,
    electrostatic offset, detector and thermal noise; its SHO fit."""
    nx, ny = response.shape
    dx, dy = (a.drift[0] * t / pixel_size, a.drift[1] * t / pixel_size)
    drifted = any(a.drift)
    resp = _resample(response, dx, dy, periodic) if drifted else response
    k = _resample(k_map, dx, dy, periodic) if drifted else k_map
    h = _resample(np.asarray(height, float), dx, dy, periodic) if drifted else np.asarray(height, float).copy()
    h = h + offset[None, :]
    s = (resp * bias_ac * cl.transfer(k) / cl.invols + es) * gain[None, :]
    f0 = cl.resonance(k)
    A, phi = sho_parameters(s)
    recorded = sho_response(f, A[..., None], f0[..., None], cl.quality_factor, phi[..., None])
    df = band.bandwidth / (band.bins - 1)
    var = np.zeros((nx, ny, f.size))
    if a.detector_noise:
        var = var + (a.detector_noise / cl.invols) ** 2 * df
    if a.thermal_noise:
        kmod = cl.modal_stiffness(k)[..., None]
        g2 = np.abs(sho_response(f, 1.0, f0[..., None], cl.quality_factor, 0.0)) ** 2  # |SHO / A|^2
        S = 4 * K_BOLTZMANN * a.temperature / (kmod * 2 * np.pi * f0[..., None] * cl.quality_factor) * g2
        var = var + S * df / cl.invols ** 2
    if a.detector_noise or a.thermal_noise:
        z = rng.standard_normal((2, nx, ny, f.size))
        recorded = recorded + np.sqrt(var / 2) * (z[0] + 1j * z[1])
    return {"recorded": recorded, "fit": fit_sho(f, recorded) if fit else None, "height": h, "k_recorded": k,
            "drift": (dx, dy)}
