"""The finite-volume operator against FiPy, the independent engine, on the same grid.

1. Static tip problem (Lorentzian, d = 10 nm) on a non-uniform grid (uniform and
   refined columns in y, graded z) with two grains of different diagonal
   anisotropic diffusivity and a depth-dependent diffusivity.
2. Frequency domain at 350 kHz on a columnar polycrystal (LiCoO2, random orientations, each grain's
   sample-frame diagonal D), FiPy solving the real 2 x 2 block system for Re c and Im c.
3. Time domain, case 1's grid: the tip switched on at t = 0, read at 0.1 and 1 ms. FiPy steps backward
   Euler with 50 and 100 equal steps per interval and the two are Richardson-extrapolated; esmsim uses
   its adaptive stepper at rtol 1e-7. Tolerance 1e-4 relative: what is left is FiPy's O(dt^2) after
   extrapolation (measured 1.4e-5).
4. 3-D polycrystal (item 8 of the transport issue): a Voronoi voxel volume of anisotropic grains (each
   grain's c axis along x, y or z, D_c / D_ab = 1e-3) with fast grain boundaries resolved as cells
   (one voxel on one side of every boundary face, isotropic D = 1e4 D_ab), graded z, 350 kHz, full-tensor
   operator (``assemble_tensor``) against FiPy's block system on the same cells.
5. Rotated grains (full tensors), static: two grains of a 32 x 32 x 24 nm film meeting at x = 16 nm, each
   R diag(D, D, 0.1 D) R^T with its own tilt (c axes 51 and 42 degrees off z: off-diagonal entries up to
   0.44 D), Lorentzian tip (d = 10 nm) 1.7 nm beside the interface, cubic cells of 4, 2 (and, full run,
   1) nm.
   FiPy lags the off-diagonal flux as an explicit source built from the *harmonic* face mean of the
   cell-gradient components (``abstractDiffusionTerm._calcAnisotropySource``) and is swept to its fixed
   point (23-61 sweeps); esmsim takes the arithmetic mean of the cells' centred gradients. The schemes
   differ, so they agree only as h -> 0: measured relative L2 6.7e-2, 2.6e-2, 8.4e-3 at 4, 2, 1 nm
   (orders 1.4, 1.6; the film's Li 3.0 %, 0.89 %, 0.08 % apart). Checked: the difference falls with
   order >= 1.2 (and within 1e-2 at 1 nm in the full run). The issue's 1e-3 would need about 0.25 nm
   cells (FiPy takes 322 s at 1 nm). Two settings were needed for this (before them the difference
   stalled at 3.5 % from 2 to 1 nm): FiPy's walls must not carry the cross terms (its explicit source sums
   them over the exterior faces too, a flux through a no-flux wall), and esmsim's surface must carry them
   (the cross part of the flux through a potentiostatic surface, :func:`tip_terms`).

6. (full run) Rotated grains at ESM frequencies (item 8 with full tensors): a 3-D Voronoi volume (40 x 40 x
   30 nm, 2.5 nm voxels, 11 grains) of LiCoO2 grains at random orientations with fast boundary cells, at
   350 kHz and 1 kHz, against FiPy's block system with its cross terms swept (:func:`fipy_frequency_solve`).
   Measured 1.9e-4 at 350 kHz (esmsim with its cross terms left out: 1.1e-3) and 6.2e-3 at 1 kHz (2.1e-2
   without). Checked: 1e-3 at 350 kHz, and at 1 kHz under half the difference without the cross
   terms (the issue's 1e-3 is not met there, for the reason of case 5). Neither scheme is the truth at these
   cells in slow problems: on ``transport_tensor``'s x-z section (one grain, c 40 deg off z, D_c / D_ab =
   1e-3, static) esmsim and FiPy are 40, 30, 14, 5.7 % and 33, 22, 13, 7.5 % (relative L2) off finite
   elements at 4, 2, 1, 0.5 nm cells, esmsim's surface cells five times closer (4.1e-3 against 2.2e-2 at
   1 nm) and FiPy's film Li closer (+0.26 % against -7.9 %); 1e-3 between them would need both far below
   a nanometre.

In cases 1-4 both codes use two-point fluxes with harmonic face means, so they must agree to round-off; the
tolerance 1e-10 (relative, max norm and L2) leaves room for the sparse LU solves only. Grain-boundary
slabs have no FiPy counterpart (they are checked against a resolved boundary in ``gb_resolved``).
"""

from __future__ import annotations

import numpy as np

from esmsim.microstructure import Grid, graded_widths
from esmsim.transport import assemble, solve_frequency, tip_rhs
from esmsim.transport._fipy import fipy_frequency_solve, fipy_static_solve, fipy_time_solve

from ._common import CaseResult, new_figure, save

TOL = 1e-10


def compare(profile: str = "lorentzian"):
    """Solve the case with esmsim and with FiPy; returns ``(grid, c_esmsim, c_fipy)``."""
    grid, D = _grid_and_D()
    tip = (22e-9, 10e-9)
    ref = fipy_static_solve(grid, D, tip, profile=profile, width=10e-9)
    s = assemble(grid, D)
    diag, b = tip_rhs(s, tip, profile=profile, width=10e-9)
    c = solve_frequency(s, 0.0, diag, b)[0].reshape(grid.shape)
    return grid, c, ref


def _grid_and_D():
    D0 = 5e-15
    grid = Grid(np.full(10, 5e-9), np.concatenate([np.full(4, 2e-9), np.full(4, 5e-9)]),
                graded_widths(0.1e-9, 1.3, 40e-9))
    D = np.empty(grid.shape + (3,))
    D[:5] = [D0, 0.5 * D0, 0.2 * D0]
    D[5:] = [0.1 * D0, D0, 0.7 * D0]
    D[:, :, 3:] *= 3.0
    return grid, D


def compare_time(times=(1e-4, 1e-3)):
    """esmsim's adaptive stepper and Richardson-extrapolated FiPy backward Euler; returns both, (nt,) + grid."""
    from esmsim.transport import integrate

    grid, D = _grid_and_D()
    tip = (22e-9, 10e-9)
    s = assemble(grid, D)
    diag, b = tip_rhs(s, tip, profile="lorentzian", width=10e-9)
    ours = integrate(s, times, diag=diag, b=b, rtol=1e-7).c.reshape((len(times),) + grid.shape)
    f1, f2 = (fipy_time_solve(grid, D, tip, profile="lorentzian", width=10e-9, times=times, steps_per_output=n)
              for n in (50, 100))
    return ours, 2 * f2 - f1


def compare_frequency(frequency: float = 350e3):
    """Complex c of esmsim and FiPy on a columnar polycrystal; returns ``(c_esmsim, c_fipy)``."""
    from esmsim.materials import get_material
    from esmsim.microstructure import columnar_voronoi
    from esmsim.probe._scan import grain_diffusivities

    ms = columnar_voronoi((60e-9, 60e-9), spacing=5e-9, thickness=40e-9, grain_size=25e-9, rng=4)
    Dg = grain_diffusivities(ms, get_material("LiCoO2"))
    omega = 2 * np.pi * frequency
    L = np.sqrt(Dg[:, 2].min() / omega)
    grid = Grid(np.full(ms.shape[0], 5e-9), np.full(ms.shape[1], 5e-9), graded_widths(0.125 * L, 1.3, 40e-9,
                                                                                       max_width=5e-9))
    D = np.broadcast_to(Dg[ms.labels][:, :, None, :], grid.shape + (3,)).copy()
    tip = (31e-9, 27e-9)
    ref = fipy_frequency_solve(grid, D, tip, profile="lorentzian", width=10e-9, omega=omega)
    s = assemble(grid, D)
    c = solve_frequency(s, omega, *tip_rhs(s, tip, profile="lorentzian", width=10e-9))[0].reshape(grid.shape)
    return c, ref


def _boundary_cells(ms, D_min, omega, depth, spacing):
    """The boundary voxels of a voxel volume (the low side of every face between two grains), graded z cells
    (first 1/8 of ``sqrt(D_min / omega)``, growth 1.3, to ``depth``, none wider than ``spacing``) and the
    voxel of each cell (:func:`voxel_cells`): ``(gb, dz, sel)``."""
    from esmsim.transport._volume import voxel_cells

    gb = np.zeros(ms.shape, bool)
    for a in range(3):
        lo = [slice(None)] * 3
        lo[a] = slice(None, -1)
        gb[tuple(lo)] |= np.diff(ms.labels, axis=a) != 0
    dz = graded_widths(0.125 * np.sqrt(D_min / omega), 1.3, depth, max_width=spacing)
    return gb, dz, voxel_cells(ms, dz, np.arange(ms.shape[0]), np.arange(ms.shape[1]))


def compare_polycrystal(frequency: float = 350e3, enhancement: float = 1e4, reference: bool = True):
    """Complex c of esmsim (full-tensor operator) and FiPy on a 3-D polycrystal with fast boundary cells.

    Returns ``(c_esmsim, c_fipy, boundary_cells)``, arrays on the graded grid (``c_fipy`` is None
    without ``reference``).
    """
    from esmsim.materials import get_material
    from esmsim.microstructure import voronoi
    from esmsim.transport._frequency import tip_terms
    from esmsim.transport._tensor import assemble_tensor

    ms = voronoi((60e-9, 60e-9, 40e-9), spacing=2.5e-9, grain_size=30e-9, periodic=False, rng=7)
    Dp = get_material("LiCoO2").principal_diffusivities()  # (D_ab, D_ab, D_c)
    axis = np.random.default_rng(3).integers(0, 3, ms.labels.max() + 1)
    Dg = np.full((axis.size, 3), Dp[0])
    Dg[np.arange(axis.size), axis] = Dp[2]
    omega = 2 * np.pi * frequency
    gb, dz, sel = _boundary_cells(ms, Dp.min(), omega, 40e-9, 2.5e-9)
    D = Dg[ms.labels][sel]
    D[gb[sel]] = enhancement * Dp[0]
    grid = Grid(np.full(ms.shape[0], 2.5e-9), np.full(ms.shape[1], 2.5e-9), dz)
    T = np.zeros(grid.shape + (3, 3))
    for k in range(3):
        T[..., k, k] = D[..., k]
    tip = (31e-9, 27e-9)
    s = assemble_tensor(grid, T)
    c = solve_frequency(s, omega, *tip_terms(s, tip, profile="lorentzian", width=10e-9),
                        method="direct")[0].reshape(grid.shape)
    ref = fipy_frequency_solve(grid, D, tip, profile="lorentzian", width=10e-9, omega=omega) if reference else None
    return c, ref, gb[sel]


ROTATED_POLY_SIZE = (40e-9, 40e-9, 30e-9)


def compare_rotated_polycrystal(frequency: float = 350e3, cross: bool = True, reference: bool = True,
                                spacing: float = 2.5e-9):
    """Case 6: a 3-D Voronoi polycrystal (40 x 40 x 30 nm, 2.5 nm voxels) of LiCoO2 grains at random
    orientations (full tensors R diag(D_ab, D_ab, D_c) R^T, off-diagonal entries up to 0.4 D_ab) with fast
    boundary cells (one voxel on the low side of every face between grains, isotropic 1e4 D_ab), graded z,
    at ``frequency`` (Hz): esmsim's full-tensor operator against FiPy's 2 x 2 block system, its explicit
    cross terms swept to their fixed point. ``cross=False`` drops the off-diagonal entries from esmsim's
    tensors (how much the cross terms move the field). Returns ``(c_esmsim, c_fipy)`` (``c_fipy`` None
    without ``reference``). ``spacing``: the voxels (m; the same seeds at any spacing)."""
    from esmsim.materials import get_material
    from esmsim.microstructure import voronoi
    from esmsim.transport._frequency import tip_terms
    from esmsim.transport._tensor import assemble_tensor, grain_tensors

    ms = voronoi(ROTATED_POLY_SIZE, spacing=spacing, grain_size=20e-9, periodic=False, rng=7)
    Dp = get_material("LiCoO2").principal_diffusivities()
    omega = 2 * np.pi * frequency
    gb, dz, sel = _boundary_cells(ms, Dp.min(), omega, ROTATED_POLY_SIZE[2], spacing)
    T = grain_tensors(ms.rotations, Dp)[ms.labels][sel]
    T[gb[sel]] = 1e4 * (2.5e-9 / spacing) * Dp[0] * np.eye(3)  # delta D_gb that of one 2.5 nm voxel
    grid = Grid(np.full(ms.shape[0], spacing), np.full(ms.shape[1], spacing), dz)
    tip = (21e-9, 17e-9)
    Te = T if cross else T * np.eye(3)
    s = assemble_tensor(grid, Te)
    c = solve_frequency(s, omega, *tip_terms(s, tip, profile="lorentzian", width=10e-9),
                        method="direct")[0].reshape(grid.shape)
    ref = fipy_frequency_solve(grid, T, tip, profile="lorentzian", width=10e-9, omega=omega) if reference else None
    return c, ref


def rotated_poly_check() -> CaseResult:
    """CaseResult of case 6 at 350 and 1 kHz (full run: FiPy's sweeps take about 25 s a frequency)."""
    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    err = {}
    for f in (350e3, 1e3):
        c, ref = compare_rotated_polycrystal(f)
        c0, _ = compare_rotated_polycrystal(f, cross=False, reference=False)
        err[f] = (rel(c, ref), rel(c0, ref))
    (hi, hi0), (lo, lo0) = err[350e3], err[1e3]
    return CaseResult("fipy_reference[350 kHz and 1 kHz, 3-D polycrystal, rotated grains]",
                      hi <= 1e-3 and lo <= 0.5 * lo0,
                      f"relative L2 difference {hi:.1e} at 350 kHz, {lo:.1e} at 1 kHz (esmsim without its cross "
                      f"terms: {hi0:.1e}, {lo0:.1e}); the schemes' cross terms differ, so at 1 kHz, where they move "
                      "the field by 2 %, the two agree to their discretisation, not to 1e-3",
                      "FiPy 2 x 2 block system, explicit cross terms swept to their fixed point",
                      "350 kHz: 1e-3 (issue); 1 kHz: under half the difference without the cross terms")


ROTATED_LEVELS = (4e-9, 2e-9, 1e-9)


def compare_rotated(h: float):
    """Case 5 at cubic cells of ``h``: ``(c_esmsim, c_fipy)`` on the grid (static, per unit C0)."""
    from scipy.spatial.transform import Rotation

    from esmsim.transport._frequency import tip_terms
    from esmsim.transport._tensor import assemble_tensor, grain_tensors

    R = Rotation.from_euler("zyx", [[20, 50, 10], [-70, 35, -25]], degrees=True).as_matrix()
    Tg = grain_tensors(R, [1e-14, 1e-14, 1e-15])
    n = [int(round(L / h)) for L in (32e-9, 32e-9, 24e-9)]
    grid = Grid(np.full(n[0], h), np.full(n[1], h), np.full(n[2], h))
    T = np.broadcast_to(Tg[(grid.centers(0) > 16e-9).astype(int)][:, None, None], grid.shape + (3, 3)).copy()
    tip = (14.3e-9, 16.7e-9)
    s = assemble_tensor(grid, T)
    c = solve_frequency(s, 0.0, *tip_terms(s, tip, profile="lorentzian", width=10e-9), method="direct")[0]
    return c.real.reshape(grid.shape), fipy_static_solve(grid, T, tip, profile="lorentzian", width=10e-9)


def rotated_check(fast: bool = True) -> CaseResult:
    """CaseResult of case 5 over ROTATED_LEVELS (without the 1 nm level when ``fast``)."""
    levels = ROTATED_LEVELS[:2] if fast else ROTATED_LEVELS
    err, li = [], []
    for h in levels:
        c, ref = compare_rotated(h)
        err.append(float(np.linalg.norm(c - ref) / np.linalg.norm(ref)))
        li.append(abs(c.sum() / ref.sum() - 1))
    order = np.log2(np.array(err[:-1]) / np.array(err[1:]))
    ok = bool(np.all(order >= 1.2)) and (fast or err[-1] <= 1e-2)
    return CaseResult("fipy_reference[static, rotated grains, 3-D]", ok,
                      f"relative L2 difference {', '.join(f'{e:.1e}' for e in err)} at "
                      f"{', '.join(f'{h * 1e9:g}' for h in levels)} nm (orders "
                      f"{', '.join(f'{o:.2f}' for o in order)}; the film's Li {', '.join(f'{v:.2%}' for v in li)} "
                      "apart); the schemes differ in the cross terms, so they meet as h -> 0",
                      "FiPy, full face tensors, explicit cross terms swept to their fixed point",
                      "order >= 1.2" + ("" if fast else ", <= 1e-2 at 1 nm") + " (the issue's 1e-3: not at these h)")


SLAB_PLANES = ("x", "xz", "xy", "xyz")


def compare_slabs(planes: str = "xyz", delta: float = 0.1e-9, h: float = 4e-9, enhancement: float | None = None):
    """Boundary slabs (the volume engine, ``assemble_tensor``) against FiPy with each boundary plane a cell
    of width delta (D_gb, isotropic), static tip problem, on a brick polycrystal: 48 x 48 x 32 nm, voxels
    of h, grains the boxes between the planes x = 24 nm, y = 24 nm and z = 16 nm named in ``planes`` (seeds
    at the boxes' centres), c axes along x, y or z (diagonal tensors, D_c / D_ab = 1e-3), delta D_gb that of
    0.5 nm at s = 2e4. FiPy's cells are esmsim's, each plane's neighbours giving up delta / 2 to it.

    The two are one model up to O(delta / h): the slab's exchange keeps the cell centres where FiPy's move
    by delta / 4, and the slab is a unknown of its own where FiPy has a cell. Returns ``(c_esmsim, c_fipy)``
    on the bulk cells (relative L2 is the check). ``enhancement``: D_gb / D_ab instead (1: neutral boundaries).
    """
    import warnings

    from esmsim.materials import get_material
    from esmsim.microstructure._voxel import _tessellated
    from esmsim.transport._frequency import tip_terms
    from esmsim.transport._volume import volume_system, volume_tensors

    n = (int(round(48e-9 / h)), int(round(48e-9 / h)), int(round(32e-9 / h)))
    size = np.array(n) * h
    axes = [(0.25, 0.75) if a in planes else (0.5,) for a in "xyz"]
    seeds = np.array([[x, y, z] for x in axes[0] for y in axes[1] for z in axes[2]]) * size
    r = np.sqrt(0.5)
    q = np.array([[1, 0, 0, 0], [r, 0, r, 0], [r, r, 0, 0], [r, 0, r, 0], [r, r, 0, 0], [1, 0, 0, 0],
                  [r, 0, r, 0], [1, 0, 0, 0]], float)[:len(seeds)]  # c along z, x, y, x, y, z, x, z
    ms = _tessellated(seeds, None, n, (h, h, h), q, False, {})
    mat = get_material("LiCoO2").replace(gb_width=delta, gb_enhancement=enhancement or 2e4 * 0.5e-9 / delta)
    T = volume_tensors(ms, mat)
    dz = np.full(2 * n[2], h / 2)
    with warnings.catch_warnings():  # the planes lie on the voxel faces: nothing to warn about
        warnings.simplefilter("ignore")
        grid, s = volume_system(ms, mat, dz)
    tip = (17.3e-9, 21.1e-9)
    c = solve_frequency(s, 0.0, *tip_terms(s, tip, profile="lorentzian", width=10e-9), method="direct")[0]

    def widths(w, plane_after):  # the plane's cell between cells plane_after and plane_after + 1
        out, bulk = [], []
        for i, wi in enumerate(w):
            out.append(wi - 0.5 * delta * ((i == plane_after) + (i - 1 == plane_after)))
            bulk.append(True)
            if i == plane_after:
                out.append(delta)
                bulk.append(False)
        return np.array(out), np.array(bulk)

    wx, bx = widths(np.full(n[0], h), n[0] // 2 - 1 if "x" in planes else -9)
    wy, by = widths(np.full(n[1], h), n[1] // 2 - 1 if "y" in planes else -9)
    wz, bz = widths(dz, dz.size // 2 - 1 if "z" in planes else -9)
    Dg = np.array([np.diag(T[ms.labels == g][0]) for g in range(ms.n_grains)])
    kz = np.minimum(((np.cumsum(wz) - wz / 2) // h).astype(int), n[2] - 1)
    D = Dg[ms.labels[(np.cumsum(bx) - 1)[:, None, None], (np.cumsum(by) - 1)[None, :, None], kz[None, None, :]]]
    D[~bx[:, None, None] | ~by[None, :, None] | ~bz[None, None, :]] = mat.D_gb
    ref = fipy_static_solve(Grid(wx, wy, wz), D, tip, profile="lorentzian", width=10e-9)
    return c[:s.n_bulk].reshape(grid.shape), ref[np.ix_(bx, by, bz)]


def slab_check() -> CaseResult:
    """CaseResult of :func:`compare_slabs` over SLAB_PLANES (each about a second, so in the fast run too)."""
    planes = SLAB_PLANES
    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    err = {p: rel(*compare_slabs(p)) for p in planes}
    coarse = rel(*compare_slabs("x", delta=0.5e-9))
    text = ", ".join(f"planes {p}: {v:.1e}" for p, v in err.items())
    return CaseResult("fipy_reference[static, brick polycrystal, boundary slabs vs cells of width delta]",
                      max(err.values()) <= 1e-3, f"relative L2 of the bulk cells, delta = 0.1 nm, h = 4 nm: {text} "
                      f"(planes x at delta = 0.5 nm: {coarse:.1e}, O(delta / h))",
                      "FiPy, each plane a cell of width delta", "1e-3 relative (issue)")


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    cf, rf = compare_frequency()
    err_f = float(np.linalg.norm(cf - rf) / np.linalg.norm(rf))
    cp, rp, _ = compare_polycrystal()
    err_p = float(np.linalg.norm(cp - rp) / np.linalg.norm(rp))
    ct, rt = compare_time()
    err_t = float(max(np.abs(a - r).max() / np.abs(r).max() for a, r in zip(ct, rt)))
    slabs = slab_check()
    rotated = rotated_check(fast)
    extra = [] if fast else [rotated_poly_check()]
    grid, c, ref = compare()
    c = c.real
    err = float(np.max(np.abs(c - ref)) / np.max(np.abs(ref)))
    fig, (a1, a2) = new_figure()
    z = grid.centers(2) * 1e9
    for i, j in ((4, 4), (5, 4), (1, 7)):
        a1.plot(z, ref[i, j], "k-", lw=2.5, alpha=0.4)
        a1.plot(z, c[i, j], "o", ms=3, label=f"column ({i}, {j})")
    a1.set(xlabel="z (nm)", ylabel="c / C0", title="esmsim (points) vs FiPy (lines)")
    a1.legend()
    im = a2.imshow(np.abs(c - ref)[:, :, 0].T, origin="lower")
    fig.colorbar(im, ax=a2, label="|esmsim - FiPy|, top layer")
    a2.set(title="difference", xlabel="i", ylabel="j")
    path = save(fig, out_dir, "fipy_reference")
    return [CaseResult("fipy_reference[static, two anisotropic grains]", err <= TOL, f"max difference {err:.1e}",
                       "FiPy 2-point FV, harmonic face means", "1e-10 relative", path),
            CaseResult("fipy_reference[350 kHz, columnar polycrystal]", err_f <= TOL,
                       f"relative L2 difference {err_f:.1e}", "FiPy 2 x 2 block system (Re c, Im c)",
                       "1e-10 relative", path),
            CaseResult("fipy_reference[350 kHz, 3-D polycrystal, fast boundary cells]", err_p <= 1e-3,
                       f"relative L2 difference {err_p:.1e}", "FiPy 2 x 2 block system on the same cells",
                       "1e-3 relative (issue); same scheme, so round-off expected", path),
            CaseResult("fipy_reference[time, 0.1 and 1 ms]", err_t <= 1e-4, f"max difference {err_t:.1e}",
                       "FiPy backward Euler, Richardson-extrapolated", "1e-4 relative", path),
            CaseResult(slabs.case, slabs.passed, slabs.measured, slabs.expected, slabs.tolerance, path),
            CaseResult(rotated.case, rotated.passed, rotated.measured, rotated.expected, rotated.tolerance, path)] + [
            CaseResult(r.case, r.passed, r.measured, r.expected, r.tolerance, path) for r in extra]
