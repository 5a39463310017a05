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


def test_frequency_domain_matches_fipy_block_system():
    """350 kHz on a columnar polycrystal: FiPy's real 2 x 2 block system (Re c, Im c) vs the complex solve."""
    from esmsim_validation.fipy_reference import compare_frequency

    c, ref = compare_frequency()
    assert np.abs(ref.imag).max() > 0.1 * np.abs(ref).max()  # a genuinely complex field
    assert np.linalg.norm(c - ref) < 1e-10 * np.linalg.norm(ref)


def test_3d_polycrystal_with_fast_boundaries_matches_fipy():
    """Anisotropic grains (c along x, y or z) and boundary cells at 1e4 D_ab in a 3-D Voronoi volume, 350 kHz:
    the full-tensor operator against FiPy on the same cells (same scheme: round-off, far inside the 1e-3 asked)."""
    from esmsim_validation.fipy_reference import compare_polycrystal

    c, ref, gb = compare_polycrystal()
    assert 0.05 < gb.mean() < 0.5  # boundaries are a real part of the volume
    assert np.abs(ref.imag).max() > 0.1 * np.abs(ref).max()
    assert np.linalg.norm(c - ref) < 1e-10 * np.linalg.norm(ref)
    # the boundaries matter: without them the field differs by far more than the tolerance
    c1, _, _ = compare_polycrystal(enhancement=1.0, reference=False)
    assert np.linalg.norm(c1 - c) > 0.05 * np.linalg.norm(c)


def test_rotated_grains_approach_fipy_as_the_cells_shrink():
    """Two tilted grains (full tensors) under a static tip: FiPy's explicit cross terms (the harmonic face mean
    of cell gradients, swept to their fixed point) and esmsim's (arithmetic mean of centred gradients) are
    different schemes, so they meet only as h -> 0: 6.7e-2 and 2.6e-2 relative L2 at 4 and 2 nm (order
    1.4). Before esmsim's surface carried the cross flux and FiPy's walls lost it, the difference stayed at
    3.5e-2 from 2 to 1 nm, so this order would fail."""
    from esmsim.microstructure import Grid
    from esmsim.transport._fipy import fipy_time_solve
    from esmsim_validation.fipy_reference import compare_rotated

    err = []
    for h in (4e-9, 2e-9):
        c, ref = compare_rotated(h)
        err.append(np.linalg.norm(c - ref) / np.linalg.norm(ref))
    assert err[1] < 0.04 and np.log2(err[0] / err[1]) >= 1.2, err
    with pytest.raises(NotImplementedError, match="static and frequency"):  # full tensors: no time stepping
        fipy_time_solve(Grid([1e-9], [1e-9], [1e-9]), np.ones((1, 1, 1, 3, 3)), (0.0, 0.0), profile="lorentzian",
                        width=1e-8, times=[1e-3])


@pytest.mark.slow
def test_rotated_polycrystal_matches_fipy_with_its_cross_terms():
    """Grains at random orientations (full tensors) and fast boundary cells in a 3-D Voronoi volume: at 350 kHz
    within the issue's 1e-3 (measured 1.9e-4; esmsim without its cross terms 1.1e-3: the cross terms are what
    agrees); at 1 kHz the cross terms move the field by 2 % and the two schemes' versions of them differ
    (6.2e-3): FiPy is still three times closer to esmsim with them than without. About a minute (FiPy's
    sweeps)."""
    from esmsim_validation.fipy_reference import compare_rotated_polycrystal

    def rel(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    c, ref = compare_rotated_polycrystal(350e3)
    c0, _ = compare_rotated_polycrystal(350e3, cross=False, reference=False)
    assert rel(c, ref) < 1e-3 and rel(c0, ref) > 3 * rel(c, ref)
    c, ref = compare_rotated_polycrystal(1e3)
    c0, _ = compare_rotated_polycrystal(1e3, cross=False, reference=False)
    assert rel(c, ref) < 0.5 * rel(c0, ref)


@pytest.mark.parametrize("planes", ["x", "xz", "xy", "xyz"])
def test_boundary_slabs_match_fipy_cells_of_width_delta(planes):
    """Boundary slabs (sub-grid unknowns) against FiPy with each boundary plane a cell of width delta, static,
    anisotropic brick grains (validation ``compare_slabs``): one model up to O(delta / h), so 1e-3 at
    delta / h = 1/40 and about five times more at 1/8. Two vertical planes crossing ("xy") read 8.8e-3 at
    any delta while the four slabs around the crossing line were linked pairwise in series (now through
    the line, ``star_links``). All three planes ("xyz") read 4.6e-3 while the edges along x and y kept
    their pairs and the x plane's faces above and below the z plane were not linked (now 6.6e-4)."""
    from esmsim_validation.fipy_reference import compare_slabs

    c, ref = compare_slabs(planes)
    err = np.linalg.norm(c - ref) / np.linalg.norm(ref)
    assert err < 1e-3
    c5, ref5 = compare_slabs(planes, delta=0.5e-9)
    assert np.linalg.norm(c5 - ref5) / np.linalg.norm(ref5) > 1.5 * err  # converges with delta / h
    # the boundaries matter: with neutral ones the field differs far beyond the tolerance
    c1, _ = compare_slabs(planes, enhancement=1.0)
    assert np.linalg.norm(c1 - c) > 0.05 * np.linalg.norm(c)


def test_fipy_drops_negative_cross_source_terms():
    """Why the block system is written with a positive source: FiPy 4.0.3 drops ImplicitSourceTerm(-w, var=a)
    from b's equation. If a FiPy release fixes this, the workaround can go (this test will then fail)."""
    import warnings

    fp = pytest.importorskip("fipy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh = fp.Grid1D(dx=np.full(20, 0.1))
        a, b = fp.CellVariable(mesh=mesh, value=0.0), fp.CellVariable(mesh=mesh, value=0.0)
        a.constrain(1.0, where=mesh.facesLeft)
        b.constrain(0.0, where=mesh.facesLeft)
        eq = (fp.DiffusionTerm(coeff=0.5, var=a) + fp.ImplicitSourceTerm(coeff=1.0, var=b) == 0) & \
             (fp.DiffusionTerm(coeff=0.5, var=b) - fp.ImplicitSourceTerm(coeff=1.0, var=a) == 0)
        eq.solve(solver=fp.LinearLUSolver())
    assert np.allclose(a.value, 1.0, atol=0) and np.allclose(b.value, 0.0, atol=0)  # the a -> b coupling was lost


def test_time_stepping_matches_fipy():
    """The adaptive stepper against FiPy's backward Euler (Richardson-extrapolated): 1e-4 (FiPy's O(dt^2))."""
    from esmsim_validation.fipy_reference import compare_time

    ours, ref = compare_time()
    for a, r in zip(ours, ref):
        assert np.abs(a - r).max() < 1e-4 * np.abs(r).max()


def test_star_links_join_the_faces_around_a_node():
    """Two faces: their half paths in series. Four equal arms (a crossing): each pair arm / 4, so that opposite
    faces conduct arm / 2 through the node (the pairs in series gave arm / 2 each and arm between opposite
    faces, counting the other two faces' paths as well). A node's arms sum once per face."""
    from esmsim.transport._operator import star_links

    g = star_links(np.array([7]), np.array([0]), np.array([1]), np.array([2.0]), np.array([6.0]))
    assert g == pytest.approx([1.5])
    pairs = np.array([(a, b) for a in range(4) for b in range(a + 1, 4)])
    g = star_links(np.zeros(6, int), pairs[:, 0], pairs[:, 1], np.full(6, 2.0), np.full(6, 2.0))
    assert g == pytest.approx(np.full(6, 0.5))
    # per-layer arms (trailing axis) and two nodes
    g = star_links(np.array([0, 1, 1, 1]), np.array([0, 2, 2, 3]), np.array([1, 3, 4, 4]),
                   np.array([[1.0, 2.0]] * 4), np.array([[1.0, 2.0]] * 4))
    assert g == pytest.approx(np.array([[0.5, 1.0], [1 / 3, 2 / 3], [1 / 3, 2 / 3], [1 / 3, 2 / 3]]))
