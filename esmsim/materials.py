"""Material parameter sets with units, sources and valid ranges.

Every value is stored in SI units together with its unit string, a one-line
description, the source it comes from and the range of values the model
accepts. A parameter set is immutable; :meth:`Material.replace` makes a
modified copy in one line::

    >>> from esmsim.materials import get_material
    >>> lco = get_material("LiCoO2").replace(D_ab=1e-14, gb_enhancement=1e3)
    >>> lco["D_ab"]
    1e-14

Unknown keys are rejected with the closest valid names::

    >>> get_material("LiCoO2").replace(D_abb=1e-14)
    Traceback (most recent call last):
    ...
    esmsim._errors.ParameterError: material.D_abb: unknown parameter of LiCoO2; did you mean 'D_ab'? ...

Crystal frames: for the layered oxides (trigonal, R-3m) the crystal z axis is
the hexagonal c axis and the Li layers are perpendicular to it; for LiFePO4
(orthorhombic, Pnma) the crystal axes are a, b, c with fast Li channels along
b; LiMn2O4 is cubic (isotropic diffusion and Vegard strain).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ._errors import ParameterError

__all__ = ["Parameter", "Material", "get_material", "MATERIALS", "DEFAULT_MATERIAL"]

DEFAULT_MATERIAL = "LiCoO2"


@dataclass(frozen=True)
class Parameter:
    """One physical parameter with provenance.

    Attributes
    ----------
    value : float
        Value in SI units.
    unit : str
        SI unit of ``value`` (pint syntax, e.g. ``"m**2/s"``; ``""`` if dimensionless).
    description : str
        What the parameter is.
    source : str
        Where the value comes from (paper, parameter set, or "derived from ...").
    valid : tuple of float
        Inclusive range ``(low, high)`` of values the model accepts.
    """

    value: float
    unit: str
    description: str
    source: str
    valid: tuple[float, float]

    def check(self, name: str, value) -> float:
        """Return ``value`` as float after checking type and range; raise ParameterError."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ParameterError(
                name, f"got {value!r} ({type(value).__name__}); expected a number in {self.unit or 'dimensionless'}"
            )
        value = float(value)
        lo, hi = self.valid
        if not math.isfinite(value) or not (lo <= value <= hi):
            unit = f" {self.unit}" if self.unit else ""
            raise ParameterError(name, f"got {value:g}{unit}; allowed range is [{lo:g}, {hi:g}]{unit}")
        return value


def _p(value, unit, description, source, valid):
    return Parameter(float(value), unit, description, source, (float(valid[0]), float(valid[1])))


@dataclass(frozen=True)
class Material:
    """An electrode material: named, immutable set of :class:`Parameter`.

    Use ``material["D_ab"]`` for a value (SI), ``material.parameters["D_ab"]``
    for the full record, :meth:`replace` for a modified copy and
    :meth:`table` for a human-readable listing with units and sources.

    Attributes
    ----------
    name : str
        Material name, e.g. ``"LiCoO2"``.
    symmetry : {"trigonal", "cubic", "orthorhombic"}
        Crystal system; decides which diffusivity and Vegard keys exist.
    parameters : mapping of str to Parameter
        The parameter records.
    """

    name: str
    symmetry: str
    parameters: Mapping[str, Parameter] = field(repr=False)

    def __post_init__(self):
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    def __reduce__(self):
        # a mappingproxy does not pickle: rebuild from a plain dict (process pools, Dask workers)
        return (Material, (self.name, self.symmetry, dict(self.parameters)))

    # -- access ---------------------------------------------------------
    def __getitem__(self, key: str) -> float:
        return self._record(key).value

    def __contains__(self, key) -> bool:
        return key in self.parameters

    def keys(self):
        """Names of the parameters."""
        return self.parameters.keys()

    def as_dict(self) -> dict[str, float]:
        """Parameter values (SI) as a plain dict."""
        return {k: p.value for k, p in self.parameters.items()}

    def _record(self, key: str) -> Parameter:
        try:
            return self.parameters[key]
        except KeyError:
            raise ParameterError(f"material.{key}", self.unknown_key_message(key)) from None

    def unknown_key_message(self, key: str) -> str:
        """Message for an unknown parameter name, with the closest valid names."""
        close = difflib.get_close_matches(str(key), list(self.parameters), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        return f"unknown parameter of {self.name}; {hint}valid keys: {', '.join(self.parameters)}"

    def replace(self, **overrides) -> "Material":
        """Return a copy with some values changed (SI units), each range-checked.

        Raises
        ------
        ParameterError
            For an unknown key (with close-match suggestions) or a value outside
            the parameter's valid range.
        """
        new = dict(self.parameters)
        for key, value in overrides.items():
            rec = self._record(key)
            new[key] = Parameter(rec.check(f"material.{key}", value), rec.unit, rec.description,
                                 "user override", rec.valid)
        return Material(self.name, self.symmetry, new)

    def table(self) -> str:
        """Multi-line listing: key, value, unit, valid range, source."""
        rows = [f"{self.name} ({self.symmetry})"]
        for k, p in self.parameters.items():
            rows.append(f"  {k:16s} {p.value:<12.4g} {p.unit:12s} [{p.valid[0]:g}, {p.valid[1]:g}]  {p.source}")
        return "\n".join(rows)

    # -- derived quantities (all SI) --------------------------------------
    def principal_diffusivities(self) -> np.ndarray:
        """Crystal-frame principal diffusivities ``(D_1, D_2, D_3)`` in m^2/s."""
        if self.symmetry == "trigonal":
            d = self["D_ab"]
            return np.array([d, d, d * self["D_c_over_D_ab"]])
        if self.symmetry == "cubic":
            return np.full(3, self["D"])
        return np.array([self["D_a"], self["D_b"], self["D_c"]])

    def principal_vegard(self) -> np.ndarray:
        """Crystal-frame Vegard coefficients ``(beta_1, beta_2, beta_3)`` in m^3/mol."""
        if self.symmetry == "trigonal":
            return np.array([self["beta_a"], self["beta_a"], self["beta_c"]])
        if self.symmetry == "cubic":
            return np.full(3, self["beta"])
        return np.array([self["beta_a"], self["beta_b"], self["beta_c"]])

    @property
    def beta_isotropic(self) -> float:
        """Isotropic-equivalent Vegard coefficient ``trace(beta)/3`` in m^3/mol.

        The eigenstrain ``beta_iso * delta_c * I`` has the same volume change as
        the anisotropic one; it is what the isotropic mechanics uses.
        """
        return float(np.sum(self.principal_vegard()) / 3.0)

    @property
    def D_reference(self) -> float:
        """Largest principal bulk diffusivity in m^2/s (the D_bulk of ``gb_enhancement``)."""
        return float(np.max(self.principal_diffusivities()))

    @property
    def D_gb(self) -> float:
        """Grain-boundary diffusivity ``gb_enhancement * D_reference`` in m^2/s."""
        return self["gb_enhancement"] * self.D_reference

    @property
    def dU_dc(self) -> float:
        """Magnitude of the open-circuit-potential slope ``|dU/dx| / c_max`` in V m^3/mol."""
        return self["dU_dx"] / self["c_max"]


# ---------------------------------------------------------------------------
# Parameter sets.  Sources are abbreviated; full references in docs/materials.md.
_AI2020 = "PyBaMM Ai2020 (Ai et al., J. Electrochem. Soc. 167, 013512 (2020))"
_YAHIA = ("derived: secant x=1->0.5 of Li_xCoO2 lattice data, Ben Yahia et al., Chem. Mater. 25, 3468 (2013): "
          "da/a=-0.25 %, dc/c=+2.41 % over 0.5*c_lattice_max (PHYSICS.md sec. 6)")
_GB = "common assumption (PHYSICS.md sec. 6)"
_OCV = "slope of the OCV curve away from plateaus (PHYSICS.md sec. 6)"
_T = "room temperature"

_COMMON_RANGES = {
    "E": (1e9, 1e12),
    "nu": (0.0, 0.4999),
    "gb_width": (1e-10, 5e-9),
    "gb_enhancement": (1e-6, 1e7),
    "gb_factor": (1e-8, 1e8),
    "dU_dx": (1e-3, 10.0),
    "temperature": (150.0, 600.0),
    "c_max": (1e3, 2e5),
    "beta": (-1e-5, 1e-5),
    "D": (1e-25, 1e-8),
}


def _common(*, c_max, c_src, E, nu, mech_src, gb_enh, gb_src, dU_dx, dU_src=_OCV):
    r = _COMMON_RANGES
    return {
        "c_max": _p(c_max, "mol/m**3", "maximum Li concentration", c_src, r["c_max"]),
        "E": _p(E, "Pa", "Young's modulus (isotropic)", mech_src, r["E"]),
        "nu": _p(nu, "", "Poisson's ratio", mech_src, r["nu"]),
        "gb_width": _p(1e-9, "m", "grain-boundary width delta", _GB + ": 0.5-1 nm", r["gb_width"]),
        "gb_enhancement": _p(gb_enh, "", "D_gb / D_bulk (s < 1: blocking boundary)", gb_src, r["gb_enhancement"]),
        "gb_factor_low_angle": _p(1.0, "", "D_gb multiplier of low-angle boundaries (disorientation < 15 deg)",
                                  "default: no class dependence", r["gb_factor"]),
        "gb_factor_twin": _p(1.0, "", "D_gb multiplier of twin boundaries (trigonal: 60 deg about c; cubic: Sigma3)",
                             "default: no class dependence; PHYSICS.md sec. 6: some LiCoO2 boundaries, e.g. twins, "
                             "slow Li (set < 1/gb_enhancement for a blocking twin)", r["gb_factor"]),
        "dU_dx": _p(dU_dx, "V", "|dU/dx|, OCV slope per unit Li fraction", dU_src, r["dU_dx"]),
        "temperature": _p(298.15, "K", "temperature", _T, r["temperature"]),
    }


def _licoo2() -> Material:
    D, B = _COMMON_RANGES["D"], _COMMON_RANGES["beta"]
    params = {
        "a_lattice": _p(2.816e-10, "m", "hexagonal lattice parameter a", "standard crystallography (R-3m)", (2e-10, 4e-10)),
        "c_lattice": _p(14.05e-10, "m", "hexagonal lattice parameter c", "standard crystallography (R-3m)", (1e-9, 2e-9)),
        "D_ab": _p(5.387e-15, "m**2/s", "Li diffusivity within the Li layers (a-b plane)",
                   _AI2020 + "; literature 5.4e-15..1e-13, thin films 1e-17..1e-15", D),
        "D_c_over_D_ab": _p(1e-3, "", "anisotropy D_c / D_ab (c axis nearly blocked)",
                            "single-crystal SIMS studies: <= 1e-3 (PHYSICS.md sec. 6)", (0.0, 1.0)),
        "beta_a": _p(9.6e-8, "m**3/mol", "Vegard coefficient along a (per mol/m^3 Li added)", _YAHIA, B),
        "beta_c": _p(-9.3e-7, "m**3/mol", "Vegard coefficient along c (per mol/m^3 Li added)", _YAHIA, B),
    }
    params.update(_common(
        c_max=49943, c_src=_AI2020 + " (51 600 from the lattice)", E=375e9, nu=0.2,
        mech_src=_AI2020 + "; nanoindentation gives 150-200 GPa",
        gb_enh=1e4, gb_src="order of magnitude of fast-path enhancement (LiMn2O4 SIMS ~5e4, J. Power Sources 189, 643 "
                           "(2009)); mixed for LiCoO2 (twins can block)", dU_dx=1.0))
    return Material("LiCoO2", "trigonal", params)


def _nmc811() -> Material:
    D, B = _COMMON_RANGES["D"], _COMMON_RANGES["beta"]
    lat = ("approximate, derived: secant x=1->0.5 of NMC811 lattice vs x (a -1.7 %, c +1.9 %), "
           "Maerker et al., Chem. Mater. 31, 2545 (2019); not in PHYSICS.md, review")
    params = {
        "a_lattice": _p(2.872e-10, "m", "hexagonal lattice parameter a", "NMC811 pristine, Maerker et al. 2019", (2e-10, 4e-10)),
        "c_lattice": _p(14.20e-10, "m", "hexagonal lattice parameter c", "NMC811 pristine, Maerker et al. 2019", (1e-9, 2e-9)),
        "D_ab": _p(4e-15, "m**2/s", "Li diffusivity within the Li layers",
                   "PyBaMM Chen2020 (Chen et al., J. Electrochem. Soc. 167, 080534 (2020))", D),
        "D_c_over_D_ab": _p(1e-3, "", "anisotropy D_c / D_ab", "assumed as for LiCoO2 (layered R-3m)", (0.0, 1.0)),
        "beta_a": _p(5.4e-7, "m**3/mol", "Vegard coefficient along a", lat, B),
        "beta_c": _p(-6.0e-7, "m**3/mol", "Vegard coefficient along c", lat, B),
    }
    params.update(_common(
        c_max=63104, c_src="PyBaMM Chen2020", E=199e9, nu=0.3,
        mech_src="approximate literature value for NMC (nanoindentation ~150-200 GPa); review",
        gb_enh=1e2, gb_src="no direct measurement; moderate fast path assumed", dU_dx=1.0))
    return Material("NMC811", "trigonal", params)


def _limn2o4() -> Material:
    D, B = _COMMON_RANGES["D"], _COMMON_RANGES["beta"]
    params = {
        "a_lattice": _p(8.24e-10, "m", "cubic lattice parameter (LiMn2O4)", "Ohzuku et al., J. Electrochem. Soc. 137, 769 (1990)", (7e-10, 9e-10)),
        "D": _p(1.23e-15, "m**2/s", "Li diffusivity (isotropic, cubic spinel)", "SIMS on films, J. Power Sources 189, 643 (2009)", D),
        "beta": _p(1.05e-6, "m**3/mol", "Vegard coefficient (isotropic)",
                   "derived: a 8.04 -> 8.24 A for x 0 -> 1 in Li_xMn2O4, Ohzuku et al. 1990, over c_max", B),
    }
    params.update(_common(
        c_max=23743, c_src="derived from the lattice: 8 Li per cubic cell of a = 8.24 A", E=194e9, nu=0.3,
        mech_src="approximate literature value (DFT/nanoindentation); review",
        gb_enh=5.3e4, gb_src="SIMS, J. Power Sources 189, 643 (2009): delta*D_gb = 6.55e-20 m^3/s at delta = 1 nm",
        dU_dx=1.0))
    return Material("LiMn2O4", "cubic", params)


def _lifepo4() -> Material:
    D, B = _COMMON_RANGES["D"], _COMMON_RANGES["beta"]
    lat = ("derived: FePO4 -> LiFePO4 lattice change (a +5.17 %, b +3.71 %, c -1.98 %), "
           "Andersson et al., Solid State Ionics 130, 41 (2000), over c_max")
    params = {
        "D_a": _p(1e-21, "m**2/s", "Li diffusivity along a", "assumed 1e-4 of D_b (1D channels; Morgan et al., "
                  "Electrochem. Solid-State Lett. 7, A30 (2004))", D),
        "D_b": _p(1e-17, "m**2/s", "Li diffusivity along b (fast channels)", "PHYSICS.md sec. 6: 1e-18..1e-16", D),
        "D_c": _p(1e-21, "m**2/s", "Li diffusivity along c", "assumed 1e-4 of D_b (as D_a)", D),
        "beta_a": _p(2.27e-6, "m**3/mol", "Vegard coefficient along a", lat, B),
        "beta_b": _p(1.63e-6, "m**3/mol", "Vegard coefficient along b", lat, B),
        "beta_c": _p(-8.7e-7, "m**3/mol", "Vegard coefficient along c", lat, B),
    }
    params.update(_common(
        c_max=22794, c_src="derived from the lattice: 4 Li per Pnma cell of 291.4 A^3", E=124.5e9, nu=0.25,
        mech_src="DFT, Maxisch & Ceder, Phys. Rev. B 73, 174112 (2006)",
        gb_enh=1.0, gb_src="no measurement; neutral default", dU_dx=0.1,
        dU_src="two-phase plateau: the linearised model is a rough approximation"))
    return Material("LiFePO4", "orthorhombic", params)


MATERIALS: Mapping[str, Material] = MappingProxyType(
    {m.name: m for m in (_licoo2(), _nmc811(), _limn2o4(), _lifepo4())}
)


def get_material(name: str = DEFAULT_MATERIAL, **overrides) -> Material:
    """Return the named parameter set, optionally with overrides (SI units).

    Parameters
    ----------
    name : str
        One of ``"LiCoO2"`` (default), ``"NMC811"``, ``"LiMn2O4"``, ``"LiFePO4"``
        (case-insensitive).
    **overrides : float
        Parameter values to change, in SI units; see :meth:`Material.replace`.

    Raises
    ------
    ParameterError
        Unknown material name or parameter, or a value out of range.
    """
    lookup = {k.lower(): v for k, v in MATERIALS.items()}
    mat = lookup.get(str(name).lower())
    if mat is None:
        close = difflib.get_close_matches(str(name), list(MATERIALS), n=3, cutoff=0.3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ParameterError("material.name", f"unknown material {name!r}; {hint}available: {', '.join(MATERIALS)}")
    return mat.replace(**overrides) if overrides else mat
