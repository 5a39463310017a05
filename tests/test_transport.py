import numpy as np
import pytest

from esmsim.microstructure import Grid, graded_widths, quaternions_to_matrices, random_quaternions
from esmsim.transport import assemble, assemble_tensor, boundary_network, solve_frequency, tip_rhs, tip_terms

D0 = 5e-15


def _two_grains(n=12, h=5e-9, nz=8, vertical=True):
    lab = np.zeros((n, n), int)
    if vertical:
        lab[n // 2:, :] = 1
    else:  # 45 degree boundary: staircase
        ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        lab[ii + jj >= n] = 1
    grid = Grid(np.full(n, h), np.full(n, h), graded_widths(0.05e-9, 1.3, 40e-9))
    return lab, grid


def test_conductance_matrix_conserves_mass():
    lab, grid = _two_grains(vertical=False)
    net = boundary_network(lab, 5e-9, 5e-9, normal=lambda a, b, _: np.tile([[1, 1]], (len(a), 1)) / np.sqrt(2))
    D = np.full(grid.shape + (3,), D0)
    s = assemble(grid, D, boundaries=net, D_gb=1e4 * D0, gb_width=1e-9)
    assert np.allclose(np.asarray(s.K.sum(axis=1)).ravel(), 0, atol=1e-12 * abs(s.K).max())
    assert (s.K - s.K.T).count_nonzero() == 0 or abs(s.K - s.K.T).max() == 0
    # storage: each slab's w delta A is taken out of the columns beside it (half a width on each side), so the
    # total is the grid's volume plus the squares (dw/2)^2 where two half-widths meet in a staircase's corner
    # column: 7.3e-4 here. (This check had rel=1e-12, passing only through pytest.approx's default abs=1e-12.)
    nb = s.n_bulk
    assert s.volume[nb:].sum() > 0.02 * grid.volumes().sum()  # the slabs hold 2.2 % of it: no trivial pass
    assert s.volume.sum() == pytest.approx(grid.volumes().sum(), rel=1e-3)
    assert np.all(s.volume > 0)


def test_uniform_surface_value_gives_uniform_static_solution():
    lab, grid = _two_grains(vertical=False)
    net = boundary_network(lab, 5e-9, 5e-9, normal=lambda a, b, _: np.tile([[1, 1]], (len(a), 1)) / np.sqrt(2))
    s = assemble(grid, np.full(grid.shape + (3,), D0), boundaries=net, D_gb=1e3 * D0, gb_width=1e-9)
    diag, b = tip_rhs(s, (0.0, 0.0), profile="disk", width=1.0)
    c = solve_frequency(s, 0.0, diag, b)[0]
    assert np.allclose(c, 1.0, rtol=1e-10, atol=0)


def test_staircase_weight():
    lab, _ = _two_grains(vertical=False)
    n = np.array([[1.0, 1.0]]) / np.sqrt(2)
    net = boundary_network(lab, 5e-9, 5e-9, normal=lambda a, b, _: np.repeat(n, len(a), 0))
    assert np.allclose(net.weight, 1 / np.sqrt(2), atol=0)
    # a straight boundary: one face per row, linked to its neighbours along y
    lab2, _ = _two_grains(vertical=True)
    net2 = boundary_network(lab2, 5e-9, 5e-9)
    assert net2.n_faces == 12 and len(net2.link_faces) == 11
    assert np.allclose(net2.link_length, 5e-9, atol=0)


def test_periodic_surface_concentration_closed_form():
    # PHYSICS.md sec. 5 item 2: c = c0 exp(-(1+i) z / l), on the graded z grid of the maps
    omega = 2 * np.pi * 350e3
    L = np.sqrt(D0 / omega)
    dz = graded_widths(L / 16, 1.15, 30 * L)
    grid = Grid([1e-9], [1e-9], dz)
    s = assemble(grid, np.full(grid.shape + (3,), D0))
    diag, b = tip_rhs(s, (0, 0), profile="disk", width=1.0)
    c = solve_frequency(s, omega, diag, b)[0]
    l = np.sqrt(2 * D0 / omega)
    z = grid.centers(2)
    exact = np.exp(-(1 + 1j) * z / l)
    near = z < 5 * l
    # second-order FV on a fine graded grid: pointwise error below 0.5 % of c0 in the layer
    assert np.max(np.abs(c[near] - exact[near])) < 5e-3


def test_boundary_with_bulk_diffusivity_is_invisible():
    """s = 1 and isotropic grains: the slab network must reproduce the boundary-free solution."""
    lab, grid = _two_grains(vertical=True)
    D = np.full(grid.shape + (3,), D0)
    plain = assemble(grid, D)
    net = boundary_network(lab, 5e-9, 5e-9)
    withgb = assemble(grid, D, boundaries=net, D_gb=D0, gb_width=1e-9)
    omega = 2 * np.pi * 1e3
    tip = (30e-9, 30e-9)  # on the boundary plane x = 30 nm
    out = []
    for s in (plain, withgb):
        diag, b = tip_rhs(s, tip, profile="lorentzian", width=10e-9)
        c = solve_frequency(s, omega, diag, b)[0]
        out.append(np.sum(c * s.volume))  # total Li
    assert out[1] == pytest.approx(out[0], rel=2e-3)


def test_fast_boundary_result_independent_of_voxel_size():
    """At fixed delta and D_gb the boundary slab gives the same Li uptake for 5 nm and 2.5 nm pixels."""
    omega = 2 * np.pi * 350e3
    totals = []
    for h, n in ((5e-9, 16), (2.5e-9, 32)):
        lab = np.zeros((n, n), int)
        lab[n // 2:, :] = 1
        dz = graded_widths(0.01e-9, 1.25, 40e-9, max_width=h)
        grid = Grid(np.full(n, h), np.full(n, h), dz)
        D = np.full(grid.shape + (3,), D0)
        s = assemble(grid, D, boundaries=boundary_network(lab, h, h), D_gb=1e4 * D0, gb_width=1e-9)
        diag, b = tip_rhs(s, (40e-9, 40e-9), profile="lorentzian", width=10e-9)
        c = solve_frequency(s, omega, diag, b)[0]
        totals.append(np.sum(c[s.n_bulk:] * s.volume[s.n_bulk:]))  # Li in the boundary slab
    assert abs(totals[1] / totals[0] - 1) < 0.03


def test_amg_and_direct_agree():
    lab, grid = _two_grains(vertical=True)
    D = np.full(grid.shape + (3,), D0)
    s = assemble(grid, D, boundaries=boundary_network(lab, 5e-9, 5e-9), D_gb=1e2 * D0, gb_width=1e-9)
    diag, b = tip_rhs(s, (30e-9, 30e-9), profile="lorentzian", width=10e-9)
    a = solve_frequency(s, 2e5, diag, b, method="direct")[0]
    m = solve_frequency(s, 2e5, diag, b, method="amg")[0]
    assert np.allclose(a, m, rtol=1e-6, atol=1e-8 * np.abs(a).max())


@pytest.mark.parametrize("method", ["zline", "amg", "split"])
def test_iterative_solvers_match_the_direct_one_with_slabs(method):
    """z-line, AMG and split preconditioned solvers against SuperLU on a polycrystal with slabs and the
    sub-grid layer."""
    from esmsim.materials import get_material
    from esmsim.microstructure import columnar_voronoi
    from esmsim.probe._scan import grain_diffusivities

    mat = get_material("LiCoO2")
    ms = columnar_voronoi((60e-9, 60e-9), spacing=5e-9, thickness=40e-9, grain_size=30e-9, rng=2)
    Dg = grain_diffusivities(ms, mat)
    omega = 2 * np.pi * 350e3
    grid = Grid(np.full(12, 5e-9), np.full(12, 5e-9), graded_widths(0.01e-9, 1.3, 40e-9, max_width=5e-9))
    net = boundary_network(ms.labels, 5e-9, 5e-9, periodic=True, normal=ms.boundary_normal)
    s = assemble(grid, np.broadcast_to(Dg[ms.labels][:, :, None, :], grid.shape + (3,)), periodic=(True, True),
                 boundaries=net, D_gb=mat.D_gb, gb_width=1e-9, omega=omega)
    assert np.iscomplexobj(s.K.data)  # the sub-grid layer makes the slab links complex
    diag, b = tip_rhs(s, (31e-9, 27e-9), profile="lorentzian", width=10e-9)
    ref = solve_frequency(s, omega, diag, b, method="direct")[0]
    # rtol bounds the residual; the error in c is up to the condition number (~1e2 here: slab and surface
    # conductances) times that, so the default 1e-10 leaves ~1e-8. Solve tighter to compare at 1e-8.
    c = solve_frequency(s, omega, diag, b, method=method, rtol=1e-12)[0]
    assert np.linalg.norm(c - ref) < 1e-8 * np.linalg.norm(ref)
    if method == "zline":  # a block of right-hand sides (the factorised line solve takes them at once)
        B = np.stack([b, np.roll(b, 7) * (1 + 2j), np.zeros_like(b)], -1)
        C = solve_frequency(s, omega, diag, B, method="zline", rtol=1e-12)[0]
        R = solve_frequency(s, omega, diag, B, method="direct")[0]
        assert np.linalg.norm(C - R, axis=0)[:2] == pytest.approx(0, abs=1e-8 * np.linalg.norm(R))
        assert not C[:, 2].any()


def test_zline_solver_in_row_blocks_gives_the_same_numbers_bit_for_bit_on_any_number_of_threads():
    """Large systems run the z-line solver in blocks of rows (products, line solves, vector work), the
    blocks in threads: the cuts must fall where the tridiagonal part couples nothing (ends of z lines),
    and for given blocks every thread count must give the same numbers bit for bit (one right-hand side
    and a block of them, which LAPACK takes as a copy). Different blocks sum the inner products in
    another order: the same solution to the solver's tolerance. A cut inside a z line would drop that
    coupling from the preconditioner."""
    from esmsim.transport._frequency import _line_cuts, _zline_solve

    rng = np.random.default_rng(3)
    grid = Grid(np.full(7, 4e-9), np.full(5, 4e-9), graded_widths(0.2e-9, 1.4, 30e-9, max_width=4e-9))
    R = quaternions_to_matrices(random_quaternions(1, rng=2))[0]
    T = np.broadcast_to(R @ np.diag([1e-14, 2e-14, 4e-15]) @ R.T, grid.shape + (3, 3))
    s = assemble_tensor(grid, T * rng.uniform(1, 2, grid.shape)[..., None, None], periodic=(True, False))
    omega = 2 * np.pi * 350e3
    diag, b = tip_terms(s, (13e-9, 9e-9), profile="lorentzian", width=6e-9)
    d = diag + 1j * omega * s.volume
    nz = grid.shape[2]
    off = s.K.diagonal(1)
    for parts in (2, 3, 8):
        cuts = _line_cuts(off, parts)
        assert len(cuts) == parts + 1 and all(c % nz == 0 for c in cuts)  # z lines whole
    B = np.stack([b, np.roll(b, 11) * (1 - 1j)], -1)
    for rhs in (b[:, None], B):
        one = _zline_solve(s.K, d, rhs, rtol=1e-12, blocks=1)
        assert np.linalg.norm(s.K @ one + d[:, None] * one - rhs) < 1e-11 * np.linalg.norm(rhs)
        for blocks in (3, 8):
            serial = _zline_solve(s.K, d, rhs, rtol=1e-12, blocks=blocks, workers=1)
            assert np.linalg.norm(serial - one) < 1e-10 * np.linalg.norm(one)
            for workers in (2, 3, 8):
                assert np.array_equal(_zline_solve(s.K, d, rhs, rtol=1e-12, blocks=blocks, workers=workers),
                                      serial)
    assert _line_cuts(np.ones(9), 4) == [0, 10]  # no line ends: one block


def test_thread_count_from_the_environment_and_refused_when_not_a_positive_integer(monkeypatch):
    """``ESMSIM_NUM_THREADS`` sets the threads of large solves (a sweep with one process per core sets 1);
    small systems always take one; a value that is not a positive integer is refused naming the variable."""
    from esmsim._errors import ParameterError
    from esmsim.transport._threads import THREADED_FROM, threads

    monkeypatch.setenv("ESMSIM_NUM_THREADS", "3")
    assert threads(THREADED_FROM) == 3 and threads(THREADED_FROM - 1) == 1
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv("ESMSIM_NUM_THREADS", bad)
        with pytest.raises(ParameterError, match="ESMSIM_NUM_THREADS"):
            threads(THREADED_FROM)
    monkeypatch.delenv("ESMSIM_NUM_THREADS")
    assert 1 <= threads(THREADED_FROM) <= 8
    from esmsim.probe._scan import _WORKER, pin_threads

    pin_threads()  # worker processes of maps and sweeps: one thread each, esmsim's own too
    try:
        assert threads(THREADED_FROM) == 1
    finally:
        _WORKER.pop("limits").restore_original_limits()


def test_split_solver_runs_all_right_hand_sides_and_refuses_strong_lateral_coupling():
    """Block COCG with the split LU: several tips (and an all-zero column) at once against SuperLU; at a
    frequency far below the lateral rate D/h^2 (1e-3 Hz) it must stop with a clear error, not return a
    poor answer."""
    from esmsim.transport._frequency import split_solve

    lab, grid = _two_grains(vertical=False)
    D = np.full(grid.shape + (3,), D0)
    s = assemble(grid, D, boundaries=boundary_network(lab, 5e-9, 5e-9), D_gb=1e3 * D0, gb_width=1e-9)
    omega = 2 * np.pi * 50e3  # the test grid's first cell (0.05 nm) resolves sqrt(D/omega) up to ~100 kHz
    cols = [tip_rhs(s, (x, 30e-9), profile="lorentzian", width=10e-9) for x in (12e-9, 30e-9, 47e-9)]
    diag = cols[0][0]  # the Lorentzian applies everywhere: the same surface conductances for every tip
    B = np.stack([b for _, b in cols] + [np.zeros(s.n)], -1)
    ref = solve_frequency(s, omega, diag, B, method="direct")[0]
    X = split_solve(s.K, s.n_bulk, diag + 1j * omega * s.volume, B)
    assert np.all(X[:, -1] == 0)
    assert np.linalg.norm(X - ref) < 1e-8 * np.linalg.norm(ref)
    with pytest.raises(RuntimeError, match="split COCG did not converge"):
        split_solve(s.K, s.n_bulk, diag + 1j * 2e-3 * np.pi * s.volume, B, maxiter=5)


def test_solve_frequency_reports_its_method_and_iterations():
    """``info`` names the method and counts the Krylov iterations; AMG stays bounded over six decades of
    omega on a polycrystal with slabs (the reason the real shifted operator preconditions it), while the
    z-line preconditioner needs more iterations at 1 Hz than at 1 MHz (lateral coupling dominates there)."""
    from esmsim.materials import get_material
    from esmsim.microstructure import columnar_voronoi
    from esmsim.probe._scan import grain_diffusivities

    mat = get_material("LiCoO2")
    ms = columnar_voronoi((60e-9, 60e-9), spacing=5e-9, thickness=40e-9, grain_size=30e-9, rng=2)
    Dg = grain_diffusivities(ms, mat)
    grid = Grid(np.full(12, 5e-9), np.full(12, 5e-9), graded_widths(0.01e-9, 1.3, 40e-9, max_width=5e-9))
    net = boundary_network(ms.labels, 5e-9, 5e-9, periodic=True, normal=ms.boundary_normal)
    s = assemble(grid, np.broadcast_to(Dg[ms.labels][:, :, None, :], grid.shape + (3,)), periodic=(True, True),
                 boundaries=net, D_gb=mat.D_gb, gb_width=1e-9)
    diag, b = tip_rhs(s, (30e-9, 30e-9), profile="lorentzian", width=10e-9)
    omegas = 2 * np.pi * np.array([1.0, 1e6])
    counts = {}
    for method in ("direct", "amg", "zline"):
        info = {}
        solve_frequency(s, omegas, diag, b, method=method, info=info)
        assert info["method"] == [method, method]
        counts[method] = info["iterations"]
    assert counts["direct"] == [0, 0]
    assert all(0 < n < 150 for n in counts["amg"])
    assert counts["zline"][0] > 2 * counts["zline"][1] > 0  # 62 and 22 measured on this 12 x 12 film
    info = {}
    solve_frequency(s, omegas, diag, b, info=info, direct_below=10)  # auto: AMG at 1 Hz, z lines at 1 MHz
    assert info["method"] == ["amg", "zline"]
    # high= picks what auto takes at 1 MHz (the volume probe's "split", with its LU in COLAMD order): the
    # same solution as the direct LU in either ordering
    info = {}
    c = solve_frequency(s, omegas, diag, b, info=info, direct_below=10, high="split", ordering="COLAMD")
    assert info["method"] == ["amg", "split"] and 0 < info["iterations"][1] < 10
    ref = solve_frequency(s, omegas[1], diag, b, method="direct")[0]
    assert np.abs(c[1] - ref).max() < 1e-8 * np.abs(ref).max()
    assert np.abs(solve_frequency(s, omegas[1], diag, b, method="direct", ordering="COLAMD")[0] - ref).max() < \
        1e-12 * np.abs(ref).max()
    with pytest.raises(ValueError, match="high"):
        solve_frequency(s, omegas, diag, b, high="amg")


@pytest.mark.parametrize("cells", [0.25, 1.0, 2.0, 4.0, 8.0, 20.0])
def test_slab_exchange_gives_the_cells_the_half_space_li_in_1d(cells):
    """A slab held at c = 1 beside a chain of cells along the normal (the first ``a + pitch / 2`` wide from the
    slab's edge, the rest ``pitch``; storage ``i omega`` times the width, links ``D / pitch``) takes through
    :func:`slab_exchange` the Li of the bulk half-space, ``1 / q`` per unit area, at every cell width
    (``cells`` decay lengths ``1 / Re q``). The half-column admittance used before gave 0.91, 0.74, 0.86, 0.94
    and 0.975 of it at 1, 2, 4, 8 and 20 decay lengths."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from esmsim.transport._operator import slab_exchange

    D, omega = 5.4e-15, 2 * np.pi * 1e3
    q = np.sqrt(1j * omega / D)
    pitch = cells / q.real
    dw = 0.1 * pitch
    a = 0.5 * (pitch - dw)
    r, theta = slab_exchange(np.array(D), np.array(a), 0.0, omega, np.array(pitch))
    n = int(60 / cells) + 20  # the chain's far end at least 60 decay lengths away
    width = np.full(n, pitch)
    width[0] = a + 0.5 * pitch
    g = D / pitch
    A = sp.diags(1j * omega * width + 2 * g).tolil()
    A.setdiag(-g, 1)
    A.setdiag(-g, -1)
    A[0, 0] = 1j * omega * width[0] + g + 1 / r
    A[n - 1, n - 1] = 1j * omega * width[-1] + g
    b = np.zeros(n, complex)
    b[0] = 1 / r
    c = spla.spsolve(A.tocsc(), b)
    assert abs(np.sum(c * width) * q - 1) < 1e-9
    assert 0 <= theta <= 1


def test_slab_exchange_limits():
    """Resolved (|q a| << 1): the two-point ``a / D``; a layer far thinner than a cell: ``1 / (D q)``."""
    from esmsim.transport._operator import slab_exchange

    D, a = 5.4e-15, 2e-9
    for omega in (1e-8, 1e-4):  # |q a| 3e-6 (the limit taken) and 3e-4 (the formula)
        r, _ = slab_exchange(np.array(D), np.array(a), 0.0, omega, np.array(2 * a + 1e-10))
        assert abs(r * D / a - 1) < 1e-3, (omega, r * D / a)
    omega = 2 * np.pi * 1e9  # 1 / Re q = 1.3e-3 nm
    r, _ = slab_exchange(np.array(D), np.array(a), 0.0, omega, np.array(2 * a))
    assert abs(r * D * np.sqrt(1j * omega / D) - 1) < 1e-3


@pytest.mark.parametrize("omega", [1e-6, 2 * np.pi * 1e3, 2 * np.pi * 350e3])
def test_layer_pieces_hold_the_layer_profile(omega):
    """:func:`layer_segments`: with the negative copy taken evenly out of the cell, every piece holds the cell's
    share of the profile ``P (e^(-qx) - m)`` (the deviation from the cell's mean) exactly, and what is left
    over the rest of the cell is its integral there. Resolved (``|q a|`` 3e-5) that is the linear profile
    through the slab's value, ``(c_slab - c_cell) (a - x) / a``; at 350 kHz the pieces end four decay lengths
    from the slab."""
    from esmsim.transport._operator import layer_segments, slab_exchange

    D, a = 5.4e-15, 2e-9
    W = 2 * a
    edges, share = layer_segments(np.array([D]), np.array([a]), omega, np.array([W]))
    edges, share = edges[0], share[0]
    r, _ = slab_exchange(np.array(D), np.array(a), 0.0, omega, np.array(W))
    q = np.sqrt(1j * omega / D)
    P = 1 / (r * D * q)  # amplitude per unit (c_slab - c_cell), exchange g = 1 / r per unit area
    m = (1 - np.exp(-q * W)) / (q * W)
    held = share / r - share.sum() / r * np.diff(edges) / W  # each piece less the copy's part there
    exact = P * ((np.exp(-q * edges[:-1]) - np.exp(-q * edges[1:])) / q - m * np.diff(edges))
    np.testing.assert_allclose(held, exact, rtol=1e-6, atol=1e-9 * np.abs(exact).max())
    if omega < 1:
        mid = 0.5 * (edges[1:] + edges[:-1])
        np.testing.assert_allclose((held / np.diff(edges)).real, (a - mid) / a, atol=1e-4)
    if omega > 1e6:
        assert edges[-1] == pytest.approx(4 * np.sqrt(2 * D / omega), rel=1e-12) and edges[-1] < W


def test_layer_pieces_move_li_without_making_any():
    """The pieces beside the slabs and their cells' negative copies (``extra_map``) redistribute Li, they add
    none: for any solution the amounts sum to zero, and the pieces sit within ``LAYER_DEPTH`` pitches of the
    surface, against the slab on their cell's side."""
    from esmsim.transport._operator import LAYER_DEPTH

    lab, grid = _two_grains(vertical=True)
    net = boundary_network(lab, 5e-9, 5e-9)
    s = assemble(grid, np.full(grid.shape + (3,), D0), boundaries=net, D_gb=1e4 * D0, gb_width=1e-9,
                 omega=2 * np.pi * 1e3)
    c = np.random.default_rng(0).normal(size=s.n) + 1j * np.random.default_rng(1).normal(size=s.n)
    b = s.extra_boxes
    amounts = (s.extra_map @ c) * (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2]) * (b[:, 5] - b[:, 4])
    assert abs(amounts.sum()) < 1e-12 * np.abs(amounts).sum()
    pieces = ~s.extra_copy
    assert pieces.sum() == 4 * s.extra_copy.sum()
    assert b[pieces, 4].max() - grid.edges(2)[0] < LAYER_DEPTH * 5e-9
    assert b[pieces, 4].max() > 0.5 * LAYER_DEPTH * 5e-9  # (not only the top layer)
    # each piece lies on its own cell's side of the boundary plane x = 30 nm, within the cell
    cell_x = 0.5 * (s.boxes[s.extra_cells[pieces], 0] + s.boxes[s.extra_cells[pieces], 1])
    mid_x = 0.5 * (b[pieces, 0] + b[pieces, 1])
    assert np.all(np.sign(mid_x - 30e-9) == np.sign(cell_x - 30e-9))
    assert np.all(np.abs(mid_x - 30e-9) < 5e-9)


def test_sparse_factorisations_run_with_one_blas_thread():
    """SuperLU's factorisations and the split solver run with BLAS on one thread: OpenBLAS's spinning threads
    made two processes side by side 30-80x slower than one. Inside, every BLAS library reports one thread;
    outside, the caller's setting is back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from esmsim.transport._threads import one_blas_thread

    seen = one_blas_thread(lambda: [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"])
    with threadpool_limits(limits=2, user_api="blas"):
        inside = seen()
        after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside)
    assert all(n == 2 for n in after)
    from esmsim.transport._frequency import split_solve, symmetric_lu

    assert hasattr(symmetric_lu, "__wrapped__") and hasattr(split_solve, "__wrapped__")
