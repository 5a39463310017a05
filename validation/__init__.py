"""Validation cases of esmsim against closed-form results (PHYSICS.md sec. 5).

Each case module has ``run(out_dir, fast) -> list[CaseResult]`` and writes
its figure into ``out_dir``. Run them all with ``python -m validation`` (from
a source checkout) or ``esmsim validate``; ``--fast`` runs the CI subset.
"""

from __future__ import annotations

import importlib

# name -> (module, in the fast subset); the fast subset runs in CI
CASES = {
    "mechanics_point": ("mechanics_point", True),
    "fipy_reference": ("fipy_reference", True),
    "transport_1d_periodic": ("transport_1d", True),
    "halfspace_lorentzian": ("halfspace", True),
    "gb_contrast": ("gb_contrast", True),
    "transport_tensor": ("transport_tensor", True),
    "gb_resolved": ("gb_resolved", True),
    "gb_volume": ("gb_volume", True),
    "gb_fem": ("gb_fem", True),
    "gb_whipple": ("gb_whipple", True),
    "gb_hart": ("gb_hart", True),
    "point_source": ("point_source", True),
    "disk_flux": ("disk_flux", True),
    "relaxation": ("relaxation", True),
    "mechanics_fem": ("mechanics_fem", True),
    "cantilever": ("cantilever", True),
}


def load(name: str):
    """The module of a case."""
    return importlib.import_module(f".{CASES[name][0]}", __name__)


from ._runner import run_validation  # noqa: E402

__all__ = ["CASES", "load", "run_validation"]
