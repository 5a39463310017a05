"""Boundary slabs against an independent finite-element solve: rotated grains, planes off the voxel faces.

The volume engine's slab exchanges with the cells beside it through the normal part of the flux only
(``D_nn``, :func:`esmsim.transport.slab_exchange`): in a rotated grain the tangential-gradient part
``D_nt dc/dt`` of the flux into the plane is left out, and the face carries no bulk cross term either.
Whether that matters needs a reference that is consistent where an anisotropic grain meets the plane;
esmsim's own resolved cells are not (their faces take the arithmetic mean of ``D_nt`` with the plane's
zero). This case takes scikit-fem.

Problem: an x-z section, 64 nm wide and 32 nm deep (one cell along y, periodic), two LiCoO2 grains
turned about y (their c axes in the section, so ``D_xz`` is not zero: up to 0.5 D_ab), a vertical
boundary plane at x = 32 nm of width delta = 0.5 nm and isotropic D_gb = 1e4 D_ab, a Lorentzian line tip
(d = 10 nm) at x = 36, 32 or 28 nm, 350 kHz (bulk diffusion lengths 0.05 nm along ab and 0.0016 nm along
c, the plane's 5 nm), no flux on the sides and the bottom.

- esmsim: :func:`esmsim.transport.assemble_tensor` with the slab on the faces between the grains
  (voxels of 8, 4 and 2 nm, z cells from 0.2 pm growing by 1.3 to the voxel), :func:`solve_frequency`;
- reference: scikit-fem, biquadratic quadrilaterals on a tensor mesh with the plane resolved (nodes on its
  faces and across it), graded from 0.4 pm at the plane's faces and at the surface (growth 1.25) to
  0.5 nm; the tip a Dirichlet condition at the surface nodes. Halving the mesh moves the result by 2e-7.

Checked: the amplitude of the Li in the film (per unit length along y: the plane holds 64-77 % of it)
within 1 % of the reference for every orientation pair, tip and voxel size; the plane's and the bulk's
Li are reported. The orientation pairs include an axis-aligned one (c along z and along x: no cross
terms at all) as the control. Measured (full run): 0.12-0.63 % for all, plateauing at 0.4-0.5 % at
2 nm, the rotated pairs no worse than the axis-aligned one; the plane's Li 0.41-0.51 %, the bulk's
0.13-1.3 % (the largest for the axis-aligned pair). So the left-out cross flux does not show at this
level; what is left is the slab's own sub-grid layer and width bookkeeping. A trial that added each
side's ``D_nt`` flux into the slab (the cell's own centred gradient) moved 3-D random tips by up to
5.7 %; it was not kept. The tolerance 1 % is twice that plateau.

Second part (full run), the mechanism behind issue 4 item 7 (voxel-size invariance at random tips): the
same section through the user's path (a :func:`~esmsim.microstructure.bicrystal` volume, the slabs on the
tessellation's exact trace, the cells labelled by their centres), the plane at 33, 35 or 37 nm, 1, 3 and 5
nm into a voxel, tips on it and 4 nm to either side, against the reference with the plane where the
tessellation puts it. With each cell in the grain of its centre: max 4.95 %, 1.96 %, 1.79 % at 8, 4, 2 nm,
all from the pair with c along z on one side and along x on the other (the bulk layer under a 350 kHz tip
holds Li as sqrt(D_zz), 30x apart), the rotated pair within 1.6 %; with the plane on the voxel faces (32
nm) 0.17-0.69 % at all three. So an 8 nm voxel labelled the other grain for 3 nm beside the trace cost up
to 5 % of the film's Li. Now the surface cells that a trace cuts hold both grains side by side
(:func:`esmsim.transport._volume.cut_columns`: ``D_zz`` the square of the area-weighted mean of the grains'
``sqrt(D_zz)``, exact areas beside the trace): max 1.15 %, 0.70 %, 0.60 % at 8, 4, 2 nm, the rotated pair
within 0.66 %. Checked: within 3 % (the issue's figure for item 7).

Third part: the slab on the faces at 1 kHz and 10 Hz, tip 4 nm beside the plane, against the same
reference. At 1 kHz the bulk diffusion length beside the plane (0.93 nm along ab) is a quarter to a tenth
of a cell, between the sub-grid layer (350 kHz, 0.05 nm) and cells that resolve it (10 Hz, 9.3 nm). With
the half-column exchange ``tanh(q a) / (D q)`` used before, the film's Li was 3.8-5.8 %, 8.3-13.1 % and
8.4-10.3 % off at 8, 4 and 2 nm at 1 kHz (10 Hz: 4.2-9.2 %, 0.8-2.6 %, 0.4-0.7 %): it is exact between the
face and the cell's centre value, and with the cell's mean in its place it delivers 0.74-0.94 of the exact
Li in 1-D where a cell is 2-8 decay lengths wide. :func:`slab_exchange` now makes the chain of cells beside
the slab take the half-space's Li: 0.10-0.62 % at 1 kHz, 0.11-2.03 % at 10 Hz. Checked: within 1 % at 1 kHz
(as at 350 kHz) and 3 % at 10 Hz, where the cells resolve the layer and the cross flux ``D_nt dc/dt`` into the
plane that the exchange leaves out is a first-order error in the rotated pair (2.03, 1.12, 0.57 % at 8, 4,
2 nm; the axis-aligned control within 0.26 %).

Needs scikit-fem (``pip install "esmsim[test]"``).
"""

from __future__ import annotations

import warnings

import numpy as np

from esmsim.materials import get_material
from esmsim.microstructure import Grid, graded_widths
from esmsim.transport import assemble_tensor, solve_frequency
from esmsim.transport._frequency import tip_terms

from ._common import CaseResult, new_figure, save

TOL = 0.01
LX, LZ, X0 = 64e-9, 32e-9, 32e-9
DELTA = 0.5e-9
ENHANCEMENT = 1e4
FREQ = 350e3
WIDTH = 10e-9
PAIRS_DEG = ((40.0, -65.0), (10.0, 80.0), (-30.0, 55.0), (0.0, 90.0))  # the last: axis-aligned control
TIPS = (36e-9, 32e-9, 28e-9)
VOXELS = (8e-9, 4e-9, 2e-9)


def about_y(theta: float) -> np.ndarray:
    """The rotation by ``theta`` (rad) about y."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def tensor(theta: float, principal) -> np.ndarray:
    """``R diag(D_ab, D_ab, D_c) R^T`` for a rotation by ``theta`` (rad) about y (m^2/s)."""
    R = about_y(theta)
    return R @ np.diag(principal) @ R.T


def _graded(length, first, ratio, largest):
    """Node positions from 0 to ``length``: steps from ``first`` growing by ``ratio`` up to ``largest``."""
    x, h = [0.0], first
    while x[-1] < length:
        x.append(min(length, x[-1] + h))
        h = min(h * ratio, largest)
    if len(x) > 2 and length - x[-2] < 0.3 * (x[-2] - x[-3]):
        del x[-2]
    return np.array(x)


def fem_li(thetas, xt, principal, D_gb, omega, x0=X0, largest=0.5e-9, first=0.4e-12):
    """The reference: complex Li per unit length along y (mol/m per unit C0) in the film and in the plane
    (at ``x0``), by scikit-fem with the plane resolved."""
    return fem_solve(thetas, xt, principal, D_gb, omega, x0, largest, first)[:2]


def fem_solve(thetas, xt, principal, D_gb, omega, x0=X0, largest=0.5e-9, first=0.4e-12):
    """:func:`fem_li`'s solve: returns ``(film Li, plane Li, probe)``, ``probe(x, z)`` the FE field at
    points (m). ``D_gb=None``: no plane (the two grains meet at ``x0``)."""
    try:
        import skfem
    except ImportError as exc:  # pragma: no cover - scikit-fem is in the test extra
        raise ImportError("the finite-element reference needs scikit-fem: pip install \"esmsim[test]\"") from exc

    side = _graded(x0 - 0.5 * DELTA, first, 1.25, largest)
    x = np.unique(np.concatenate([x0 - 0.5 * DELTA - side, np.linspace(x0 - 0.5 * DELTA, x0 + 0.5 * DELTA, 5),
                                  x0 + 0.5 * DELTA + _graded(LX - x0 - 0.5 * DELTA, first, 1.25, largest)]))
    z = _graded(LZ, first, 1.25, largest)
    mesh = skfem.MeshQuad.init_tensor(x, z)
    basis = skfem.Basis(mesh, skfem.ElementQuad2(), intorder=5)
    centre = mesh.p[0, mesh.t].mean(0)
    T1, T2 = (tensor(t, principal)[np.ix_([0, 2], [0, 2])] for t in thetas)
    plane = np.abs(centre - x0) < 0.5 * DELTA
    coef = {}
    for key, (i, j) in (("xx", (0, 0)), ("zz", (1, 1)), ("xz", (0, 1))):
        v = np.where(centre < x0, T1[i, j], T2[i, j])
        if D_gb is not None:
            v = np.where(plane, D_gb if i == j else 0.0, v)
        coef[key] = np.repeat(v[:, None], basis.X.shape[1], 1)

    @skfem.BilinearForm
    def stiffness(u, v, w):
        gu, gv = u.grad, v.grad
        return w["xx"] * gu[0] * gv[0] + w["zz"] * gu[1] * gv[1] + w["xz"] * (gu[0] * gv[1] + gu[1] * gv[0])

    @skfem.BilinearForm
    def mass(u, v, w):
        return u * v

    @skfem.Functional
    def integral(w):
        return w["c"]

    A = stiffness.assemble(basis, **coef) + 1j * omega * mass.assemble(basis)
    top = basis.get_dofs(lambda p: np.abs(p[1]) < 1e-15)  # (np.isclose's default atol is 1e-8 m: 10 nm)
    c = np.zeros(basis.N, complex)
    px = basis.doflocs[0, top.all()]
    c[top.all()] = WIDTH ** 2 / ((px - xt) ** 2 + WIDTH ** 2)
    c = skfem.solve(*skfem.condense(A, x=c, D=top))
    total = integral.assemble(basis, c=basis.interpolate(c))
    inside = skfem.Basis(mesh, skfem.ElementQuad2(), intorder=5, elements=np.flatnonzero(plane))
    return (total, integral.assemble(inside, c=inside.interpolate(c)),
            lambda px, pz: basis.probes(np.array([px, pz], float)) @ c)


def esmsim_li(thetas, xt, principal, D_gb, omega, h):
    """esmsim's Li per unit length along y in the film and in the slabs (voxels of ``h``)."""
    dz = graded_widths(0.125 * np.sqrt(principal[2] / omega), 1.3, LZ, max_width=h)
    grid = Grid(np.full(int(round(LX / h)), h), np.full(1, h), dz)
    right = np.broadcast_to((grid.centers(0) > X0)[:, None, None], grid.shape)
    D = np.where(right[..., None, None], tensor(thetas[1], principal), tensor(thetas[0], principal))
    s = assemble_tensor(grid, D, periodic=(False, True), labels=right.astype(int), D_gb=D_gb, gb_width=DELTA,
                        normal=lambda g1, g2, c: np.tile([1.0, 0.0, 0.0], (len(g1), 1)), omega=omega)
    c = solve_frequency(s, omega, *tip_terms(s, (xt, 0.5 * h), profile="lorentzian", width=WIDTH),
                        method="direct")[0]
    li = s.volume * c / h
    return li.sum(), li[s.n_bulk:].sum()


def volume_li(thetas, xt, material, omega, h, x0):
    """The film's Li per unit length along y by the user's path: a :func:`~esmsim.microstructure.bicrystal`
    volume (two voxels along y) with the plane at ``x0`` anywhere in a voxel, :func:`volume_system` with
    its sections (the slabs on the exact trace, the cells labelled by their centres) and the z cells of
    :func:`~esmsim.probe.volume_response` (ending on the voxel layers, no slivers); the line tip's
    Lorentzian in x alone on every surface unknown."""
    import dataclasses

    from esmsim.microstructure import bicrystal
    from esmsim.transport._volume import snap_to_layers, volume_system
    from scipy.spatial.transform import Rotation

    ms = bicrystal((LX, 2 * h, LZ), spacing=h, normal=(1.0, 0.0, 0.0), point=(x0, h, 0.5 * LZ))
    quats = Rotation.from_matrix(np.array([about_y(t) for t in thetas])).as_quat()  # (x, y, z, w)
    ms = dataclasses.replace(ms, quaternions=np.roll(quats, 1, axis=1))  # esmsim's (w, x, y, z)
    Dc = material.principal_diffusivities()[2]
    dz = snap_to_layers(graded_widths(0.125 * np.sqrt(Dc / omega), 1.3, LZ, max_width=h), h, 0.1 * h, LZ)
    _, s = volume_system(ms, material, dz, omega=omega)
    diag, b = np.zeros(s.n), np.zeros(s.n, complex)
    np.add.at(diag, s.top_index, s.top_conductance)
    np.add.at(b, s.top_index, s.top_conductance * WIDTH ** 2 / ((s.top_xy[:, 0] - xt) ** 2 + WIDTH ** 2))
    c = solve_frequency(s, omega, diag, b, method="direct")[0]
    return np.sum(s.volume * c) / (2 * h)


def compare(fast: bool = False, frequency: float = FREQ, pairs=None, tips=None):
    """Rows ``(pair_deg, tip, h, total error, plane error, bulk error)`` (relative, complex amplitudes) at
    ``frequency`` (Hz); ``pairs`` and ``tips`` default to all (``fast``: one pair and its control, one tip)."""
    principal = get_material("LiCoO2").principal_diffusivities()
    D_gb = ENHANCEMENT * principal[0]
    omega = 2 * np.pi * frequency
    pairs = pairs if pairs is not None else PAIRS_DEG[::3] if fast else PAIRS_DEG
    tips = tips if tips is not None else TIPS[1:2] if fast else TIPS
    rows = []
    for pair in pairs:
        thetas = np.radians(pair)
        for xt in tips:
            total, plane = fem_li(thetas, xt, principal, D_gb, omega)
            for h in VOXELS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # (the mesh warnings of the coarse voxels are the point)
                    t, p = esmsim_li(thetas, xt, principal, D_gb, omega, h)
                rows.append((pair, xt, h, abs(t / total - 1), abs(p / plane - 1),
                             abs((t - p) / (total - plane) - 1)))
    return rows


SLOW_FREQS = (1e3, 10.0)  # the lower frequencies (Hz): the bulk diffusion length 0.93 and 9.3 nm
# their tolerances: 1 kHz as 350 kHz; at 10 Hz the cells resolve the layer and the cross flux D_nt dc/dt into
# the plane, which the slab exchange leaves out, is a first-order error of rotated grains (2.03, 1.12, 0.57 %
# at 8, 4, 2 nm; the axis-aligned control 0.26 %): the 3 %
SLOW_TOL = {1e3: TOL, 10.0: 0.03}


def compare_frequencies(freqs=SLOW_FREQS):
    """Rows ``(freq, pair_deg, h, total error, plane error)``: :func:`compare` at lower frequencies, the tip
    at 28 nm (4 nm beside the plane), the rotated and the axis-aligned pair."""
    return [(f, r[0], r[2], r[3], r[4]) for f in freqs
            for r in compare(frequency=f, pairs=(PAIRS_DEG[0], PAIRS_DEG[-1]), tips=(28e-9,))]


OFF_GRID = (33e-9, 35e-9, 37e-9)  # planes 1, 3 and 5 nm into a voxel (its 8 nm cell's centre at 36 nm)


def compare_off_grid():
    """Rows ``(pair_deg, x0, tip, h, error)``: the user's path (:func:`volume_li`) against the reference with
    the plane at ``x0`` off the voxel faces (issue 4 item 7's mechanism: which grain the cells near the
    trace hold)."""
    material = get_material("LiCoO2").replace(gb_width=DELTA, gb_enhancement=ENHANCEMENT)
    principal = material.principal_diffusivities()
    omega = 2 * np.pi * FREQ
    rows = []
    for pair in (PAIRS_DEG[0], PAIRS_DEG[-1]):
        thetas = np.radians(pair)
        for x0 in OFF_GRID:
            for xt in (x0 - 4e-9, x0, x0 + 4e-9):
                total, _ = fem_li(thetas, xt, principal, ENHANCEMENT * principal[0], omega, x0=x0)
                for h in VOXELS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        rows.append((pair, x0, xt, h, abs(volume_li(thetas, xt, material, omega, h, x0) / total - 1)))
    return rows


def run(out_dir, fast: bool = True):
    rows = compare(fast)
    off = [] if fast else compare_off_grid()
    slow = compare_frequencies()
    fig, (a1, a2) = new_figure()
    labels = [f"{p[0]:g}/{p[1]:g} deg, x = {xt * 1e9:g}" for p, xt in dict.fromkeys((r[0], r[1]) for r in rows)]
    for k, h in enumerate(VOXELS):
        err = [r[3] * 100 for r in rows if r[2] == h]
        a1.bar(np.arange(len(err)) + 0.25 * (k - 1), err, 0.25, label=f"h = {h * 1e9:g} nm")
        a2.plot([r[4] * 100 for r in rows if r[2] == h], [r[5] * 100 for r in rows if r[2] == h], "o",
                label=f"h = {h * 1e9:g} nm")
    a1.axhline(TOL * 100, color="k", lw=0.8)
    a1.set_xticks(np.arange(len(labels)), labels, rotation=60, fontsize=6)
    a1.set(ylabel="|Li esmsim / FE - 1| (%)", title="boundary slab in rotated LiCoO2 grains, 350 kHz")
    a1.legend(fontsize=7)
    a2.set(xlabel="plane's Li error (%)", ylabel="bulk's Li error (%)", title="where the difference is")
    a2.legend(fontsize=7)
    path = save(fig, out_dir, "gb_fem")
    worst = max(rows, key=lambda r: r[3])
    out = []
    for f in sorted({r[0] for r in slow}, reverse=True):
        sel = [r for r in slow if r[0] == f]
        per_h = [max(r[3] for r in sel if r[2] == h) for h in VOXELS]
        out.append(CaseResult(
            f"gb_fem[slab vs resolved plane, {f:g} Hz]", bool(max(per_h) <= SLOW_TOL[f]),
            f"{len(sel)} solves (rotated and axis-aligned pair, tip 4 nm beside the plane): film's Li max "
            f"{', '.join(f'{v:.2%}' for v in per_h)} at {', '.join(f'{h * 1e9:g}' for h in VOXELS)} nm; the plane's "
            f"Li max {max(r[4] for r in sel):.2%}", "scikit-fem, plane resolved", f"{SLOW_TOL[f]:.0%}", path))
    if off:
        per_h = {h: max(r[4] for r in off if r[3] == h) for h in VOXELS}
        aligned = max(r[4] for r in off if r[0] == PAIRS_DEG[-1])
        rotated = max(r[4] for r in off if r[0] != PAIRS_DEG[-1])
        out.append(CaseResult(
            "gb_fem[plane off the voxel faces, 8/4/2 nm]", bool(max(per_h.values()) <= 0.03),
            f"{len(off)} solves (planes at {', '.join(f'{x * 1e9:g}' for x in OFF_GRID)} nm, tips on and 4 nm "
            f"beside them): max {', '.join(f'{v:.2%}' for v in per_h.values())} at "
            f"{', '.join(f'{h * 1e9:g}' for h in VOXELS)} nm (c along z | c along x: {aligned:.2%}; rotated "
            f"pair: {rotated:.2%})",
            "scikit-fem, the plane where the tessellation puts it", "3 % (issue 4 item 7)", path))
    return out + [CaseResult(
        "gb_fem[slab vs resolved plane, rotated grains]", bool(worst[3] <= TOL),
        f"{len(rows)} solves: max {worst[3]:.2%} ({worst[0][0]:g}/{worst[0][1]:g} deg, tip {worst[1] * 1e9:g} nm, "
        f"h = {worst[2] * 1e9:g} nm); plane's Li max {max(r[4] for r in rows):.2%}, bulk's max "
        f"{max(r[5] for r in rows):.2%}",
        "scikit-fem, plane resolved (Quad2, 0.4 pm at its faces)", f"{TOL:.0%}", path)]
