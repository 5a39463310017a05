"""The assembled operator against FiPy (independent engine) on the same grid.

Static tip problem on a graded, non-uniform grid with two grains of different
diagonal anisotropic D and a depth-dependent D: both are two-point
finite-volume schemes with harmonic face means, so they must agree to
round-off (1e-10 relative), which checks the assembly, the face averaging,
the graded-grid geometry and the Dirichlet surface condition.
"""

import numpy as np
import pytest

from esmsim.microstructure import Grid, graded_widths
from esmsim.transport import assemble, solve_frequency, tip_rhs
from esmsim.transport._fipy import fipy_static_solve

D0 = 5e-15


@pytest.mark.parametrize("profile", ["lorentzian", "point_charge"])
def test_operator_matches_fipy(profile):
    grid = Grid(np.full(10, 5e-9), np.concatenate([np.full(4, 2e-9), np.full(4, 5e-9)]),
                graded_widths(0.1e-9, 1.3, 40e-9))
    D = np.empty(grid.shape + (3,))
    D[:5] = [D0, 0.5 * D0, 0.2 * D0]
    D[5:] = [0.1 * D0, D0, 0.7 * D0]
    D[:, :, 3:] *= 3.0
    tip = (22e-9, 10e-9)
    ref = fipy_static_solve(grid, D, tip, profile=profile, width=10e-9)
    s = assemble(grid, D)
    diag, b = tip_rhs(s, tip, profile=profile, width=10e-9)
    c = solve_frequency(s, 0.0, diag, b)[0].reshape(grid.shape)
    assert np.max(np.abs(c.imag)) == 0
    assert np.max(np.abs(c.real - ref)) < 1e-10 * np.max(np.abs(ref))
