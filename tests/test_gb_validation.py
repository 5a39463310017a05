"""The grain-boundary validation cases as tests: Whipple / Le Claire (time domain) and the resolved bicrystal."""

import numpy as np
import pytest

from esmsim_validation import gb_fem, gb_hart, gb_resolved, gb_whipple


def test_slab_engine_reproduces_whipple_and_le_claire(tmp_path):
    results = gb_whipple.run(tmp_path)
    assert [r.case for r in results] == ["gb_whipple[profile]", "le_claire[engine vs exact]",
                                         "le_claire[true delta D_gb]"]
    assert all(r.passed for r in results), [r.line() for r in results]


@pytest.mark.slow
def test_slab_engine_matches_the_resolved_bicrystal(tmp_path):
    results = gb_resolved.run(tmp_path, fast=False)
    # the 72 random tips within 3 % (max 2.27 %, median 0.34 %, measured 2026-11-29) since the surface cells a
    # trace cuts hold both grains (cut_columnar): before, two tips within 2 nm of a boundary, on the other
    # grain's 8 nm pixel, read 7.43 and 3.03 % apart
    random = [r for r in results if "random tips" in r.case]
    assert len(random) == 1, [r.line() for r in results]
    assert all(r.passed for r in results), [r.line() for r in results]


def test_hart_effective_diffusivity_in_regime_A(tmp_path):
    (result,) = gb_hart.run(tmp_path)
    assert result.passed, result.line()


def test_slabs_in_rotated_grains_match_the_finite_element_reference(tmp_path):
    """The slab exchange leaves out the cross flux D_nt dc/dt of rotated grains: against scikit-fem with the
    plane resolved (validation gb_fem, fast run: a rotated pair and the axis-aligned control, tip on the
    plane, 8/4/2 nm voxels) the film's Li must be within 1 %, and the rotated pair must not be
    noticeably worse than the axis-aligned one (measured 0.46 % against 0.43 %)."""
    rows = gb_fem.compare(fast=True)
    assert len(rows) == 6 and all(r[3] <= gb_fem.TOL for r in rows), rows
    rotated = max(r[3] for r in rows if r[0] != (0.0, 90.0))
    aligned = max(r[3] for r in rows if r[0] == (0.0, 90.0))
    assert rotated <= 1.5 * aligned, (rotated, aligned)
    assert all(0 < r[4] < gb_fem.TOL for r in rows)  # (the plane's Li is compared, not zero by accident)


def test_slabs_match_the_finite_element_reference_between_the_two_regimes():
    """At 1 kHz the bulk layer beside the plane (0.93 nm) is a quarter to a tenth of a cell and at 10 Hz
    (9.3 nm) one to five cells: neither the sub-grid layer nor resolved cells. The film's Li against
    scikit-fem (validation gb_fem, tip 4 nm beside the plane, 8/4/2 nm, a rotated pair and the axis-aligned
    control) must be within 1 % at 1 kHz and 3 % at 10 Hz (``gb_fem.SLOW_TOL``: there the rotated pair's
    first-order error from the cross flux the exchange leaves out): measured 0.10-0.62 % and 0.11-2.03 %; with
    the half-column exchange ``tanh(q a) / (D q)`` it was up to 13.1 % and 9.2 %."""
    rows = gb_fem.compare_frequencies()
    assert len(rows) == 12
    assert all(r[3] <= gb_fem.SLOW_TOL[r[0]] for r in rows), rows
    assert all(0 < r[4] < gb_fem.SLOW_TOL[r[0]] for r in rows)


def test_a_cut_surface_cell_holds_both_grains():
    """Issue 4 item 7's mechanism against scikit-fem (validation gb_fem): the plane 3 nm into an 8 nm voxel
    between c along z and c along x (sqrt(D_zz) 30x apart), the tip 4 nm beside it on the far side. With
    the cell held in the grain of its centre the film's Li was 4.43 % off; with the cut surface cells'
    D_zz from both grains' areas (``cut_columns``) 0.28 %."""
    from esmsim.materials import get_material

    material = get_material("LiCoO2").replace(gb_width=gb_fem.DELTA, gb_enhancement=gb_fem.ENHANCEMENT)
    p = material.principal_diffusivities()
    omega = 2 * np.pi * gb_fem.FREQ
    thetas, x0, xt = np.radians(gb_fem.PAIRS_DEG[-1]), 35e-9, 31e-9
    total, _ = gb_fem.fem_li(thetas, xt, p, gb_fem.ENHANCEMENT * p[0], omega, x0=x0)
    err = abs(gb_fem.volume_li(thetas, xt, material, omega, 8e-9, x0) / total - 1)
    assert err < 0.01, err


@pytest.mark.slow
def test_plane_off_the_voxel_faces_matches_the_finite_element_reference():
    """Issue 4 item 7's mechanism against scikit-fem (validation gb_fem, full part): with the plane 1, 3 or 5
    nm into a voxel, the user's path (cut surface cells holding both grains' D_zz) within 1.5 % at 8, 4 and
    2 nm (measured max 1.15 %; 4.95 %, 1.96 %, 1.79 % with each cell in the grain of its centre)."""
    rows = gb_fem.compare_off_grid()
    per_h = [max(r[4] for r in rows if r[3] == h) for h in gb_fem.VOXELS]
    assert max(per_h) < 0.015, per_h
