"""The assembled operator against FiPy (independent engine) on the same grid.

Static tip problem on a graded, non-uniform grid with two grains of different
diagonal anisotropic D and a depth-dependent D (validation/fipy_reference.py):
both are two-point finite-volume schemes with harmonic face means, so they
must agree to round-off (1e-10 relative), which checks the assembly, the face
averaging, the graded-grid geometry and the Dirichlet surface condition.
"""

import numpy as np
import pytest

from esmsim_validation.fipy_reference import compare


@pytest.mark.parametrize("profile", ["lorentzian", "point_charge"])
def test_operator_matches_fipy(profile):
    _, c, ref = compare(profile)
    assert np.max(np.abs(c.imag)) == 0
    assert np.max(np.abs(c.real - ref)) < 1e-10 * np.max(np.abs(ref))
